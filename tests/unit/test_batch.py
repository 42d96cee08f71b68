"""SubmitJob: valid job names, and retries of throttling within the time budget."""

from __future__ import annotations

import re

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from batch_dispatch.aws import clients
from batch_dispatch.aws.batch_jobs import (
    JobSpec,
    RetryPolicy,
    SubmitFailedError,
    is_retryable,
    safe_job_name,
    submit_job,
)

VALID_JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
QUEUE = "arn:aws:batch:us-east-1:123456789012:job-queue/q"
DEFINITION = "arn:aws:batch:us-east-1:123456789012:job-definition/d:1"


@pytest.mark.parametrize(
    "readable",
    ["report.csv", "a b/c+d%e.csv", "café/résumé.pdf", "x" * 1024, "///", "", "-_-", "日本語/データ.csv"],
)
def test_job_names_are_always_valid_for_batch(readable):
    name = safe_job_name("batch-dispatch-prod", readable, unique=readable)

    assert VALID_JOB_NAME.match(name), name


def test_job_names_keep_the_end_of_long_inputs_and_stay_distinct():
    first = safe_job_name("p", "deep/" * 100 + "report-1.csv", unique="1")
    second = safe_job_name("p", "deep/" * 100 + "report-1.csv", unique="2")

    assert "report-1-csv" in first
    assert first != second
    assert len(first) <= 128


def _throttled() -> dict:
    return {
        "Error": {"Code": "TooManyRequestsException", "Message": "Too Many Requests"},
        "ResponseMetadata": {"HTTPStatusCode": 429},
    }


def test_throttling_is_retried_until_submit_succeeds():
    batch = boto3.client("batch")
    expected = {
        "jobName": "j",
        "jobQueue": QUEUE,
        "jobDefinition": DEFINITION,
        "parameters": {"k": "v"},
        "propagateTags": True,
    }
    with Stubber(batch) as stub:
        stub.add_client_error(
            "submit_job", "TooManyRequestsException", http_status_code=429, expected_params=expected
        )
        stub.add_client_error("submit_job", "ServerException", http_status_code=500, expected_params=expected)
        stub.add_response("submit_job", {"jobName": "j", "jobId": "id-1", "jobArn": "arn:job"}, expected)
        clients.use_client("batch", batch)
        waits: list[float] = []

        job = submit_job(
            JobSpec(job_name="j", parameters={"k": "v"}),
            job_queue=QUEUE,
            job_definition=DEFINITION,
            remaining_seconds=lambda: 60.0,
            sleep=waits.append,
        )

        stub.assert_no_pending_responses()
    clients.reset_clients()
    assert job.job_id == "id-1"
    assert len(waits) == 2


def test_throttling_gives_up_before_the_time_budget_runs_out():
    batch = boto3.client("batch")
    with Stubber(batch) as stub:
        for _ in range(3):
            stub.add_client_error("submit_job", "TooManyRequestsException", http_status_code=429)
        clients.use_client("batch", batch)

        with pytest.raises(SubmitFailedError, match="TooManyRequestsException"):
            submit_job(
                JobSpec(job_name="j"),
                job_queue=QUEUE,
                job_definition=DEFINITION,
                remaining_seconds=lambda: 2.5,
                retry=RetryPolicy(base_seconds=1.0, safety_margin_seconds=2.0),
                sleep=lambda _: None,
            )
    clients.reset_clients()


def test_client_errors_are_not_retried():
    batch = boto3.client("batch")
    with Stubber(batch) as stub:
        stub.add_client_error(
            "submit_job", "ClientException", "Job queue does not exist", http_status_code=400
        )
        clients.use_client("batch", batch)

        with pytest.raises(ClientError, match="does not exist"):
            submit_job(
                JobSpec(job_name="j"), job_queue=QUEUE, job_definition=DEFINITION, sleep=lambda _: None
            )
    clients.reset_clients()


def test_retryable_classification():
    assert is_retryable(ClientError(_throttled(), "SubmitJob"))
    assert is_retryable(
        ClientError({"Error": {"Code": "ClientException", "Message": "Too Many Requests."}}, "SubmitJob")
    )
    assert not is_retryable(
        ClientError(
            {
                "Error": {"Code": "ClientException", "Message": "bad"},
                "ResponseMetadata": {"HTTPStatusCode": 400},
            },
            "SubmitJob",
        )
    )
    assert not is_retryable(ValueError("x"))
