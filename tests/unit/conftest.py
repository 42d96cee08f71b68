"""Fixtures of the unit tests that rerun jobs: this stack's job definitions in moto Batch, and S3."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from batch_dispatch.submit.rerun import RerunPolicy
from tests.conftest import MotoBatch

STACK = "batch-dispatch-test"
BUCKET = "intake-bucket"
PREFIX = "_batch-dispatch/manifests/"


@dataclass
class Stack:
    batch: MotoBatch
    definition: str  # <stack>_default
    foreign_definition: str  # another stack's
    policy: RerunPolicy

    def submit(self, name: str, *, failed: bool = True, definition: str | None = None, **request: Any) -> str:
        """A job submitted by hand (as the stack's functions would), ended SUCCEEDED or FAILED."""
        with pytest.MonkeyPatch.context() as patch:
            if failed:
                patch.setenv("MOTO_SIMPLE_BATCH_FAIL_AFTER", "0")
            return str(
                boto3.client("batch").submit_job(
                    jobName=name,
                    jobQueue=self.batch.job_queue_arn,
                    jobDefinition=definition or self.definition,
                    **request,
                )["jobId"]
            )

    def jobs(self) -> dict[str, dict[str, Any]]:
        """Top-level jobs in the queue, by name, described."""
        return {j["jobName"]: j for j in self.batch.jobs() if ":" not in j["jobId"]}

    def rerun_jobs(self) -> list[dict[str, Any]]:
        return [j for name, j in self.jobs().items() if "-rerun-" in name]


@pytest.fixture
def rerun_stack(moto_batch: MotoBatch) -> Stack:
    batch = boto3.client("batch")

    def register(name: str) -> str:
        return str(
            batch.register_job_definition(
                jobDefinitionName=name,
                type="container",
                platformCapabilities=["FARGATE"],
                retryStrategy={"attempts": 1},
                parameters={"key": "none", "manifestBucket": "none", "manifestKey": "none"},
                containerProperties={
                    "image": "public.ecr.aws/docker/library/busybox:1.37.0",
                    "command": ["echo", "Ref::key", "Ref::manifestKey"],
                    "environment": [{"name": "ENVIRONMENT", "value": "test"}],
                    "resourceRequirements": [
                        {"type": "VCPU", "value": "0.25"},
                        {"type": "MEMORY", "value": "512"},
                    ],
                },
            )["jobDefinitionArn"]
        )

    boto3.client("s3").create_bucket(Bucket=BUCKET)
    return Stack(
        batch=moto_batch,
        definition=register(f"{STACK}_default"),
        foreign_definition=register("other-stack_default"),
        policy=RerunPolicy(
            stack_name=STACK, idempotency_table_name=moto_batch.table_name, manifest_prefix=PREFIX
        ),
    )
