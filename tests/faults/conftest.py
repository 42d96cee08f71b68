"""Fault injection: the emulator (template.yaml in moto, handlers in-process) with faults put in its way.

Each test gets a freshly deployed stack (`local`, tests/conftest.py) and asserts on real outcomes:
jobs in moto Batch, messages in the Slack stand-in, bodies in the DLQs, and the constant log lines
the functions write (Powertools JSON on stdout, read back with caplog).
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders

from emulator.core import Emulator
from emulator.throttle import ResponseBody

pytestmark = pytest.mark.integration


# --- what the functions logged --------------------------------------------------------------------


def logged(caplog: pytest.LogCaptureFixture, message: str) -> list[logging.LogRecord]:
    """The records the functions logged with this (constant) message; their `extra` keys are attributes.

    Powertools' logger propagates to the root logger, where caplog listens (its own stdout handler
    keeps the stream of the first test that imported it, so capsys would miss later tests' lines).
    """
    return [r for r in caplog.records if r.name == "batch-dispatch" and r.getMessage() == message]


# --- faults on a function's own boto3 client (a botocore before-send hook, like emulator/throttle.py) ---


def error_response(url: str, status: int, code: str, message: str, *, json_10: bool = False) -> AWSResponse:
    """An AWS error answer as the service sends it: rest-json (Batch) or JSON 1.0 (DynamoDB)."""
    error_type = f"com.amazonaws.dynamodb.v20120810#{code}" if json_10 else code
    body = json.dumps({"__type": error_type, "message": message}).encode()
    headers = HTTPHeaders()
    headers["Content-Type"] = "application/x-amz-json-1.0" if json_10 else "application/json"
    if not json_10:
        headers["x-amzn-ErrorType"] = f"{code}:http://internal.amazon.com/coral/com.amazonaws.batch/"
    headers["x-amzn-RequestId"] = str(uuid.uuid4())
    headers["Content-Length"] = str(len(body))
    return AWSResponse(url, status, headers, ResponseBody(body))


class FirstCallsFail:
    """Answer the first `count` matching calls with an error response; let the rest through to moto."""

    def __init__(
        self,
        count: int,
        respond: Callable[[str], AWSResponse],
        matches: Callable[[Any], bool] = lambda _request: True,
    ) -> None:
        self.remaining = count
        self.respond = respond
        self.matches = matches
        self.injected = 0
        self.passed = 0
        self._lock = threading.Lock()

    def install(self, client: Any, event: str) -> FirstCallsFail:
        client.meta.events.register(event, self._before_send)
        return self

    def _before_send(self, request: Any, **_kwargs: Any) -> AWSResponse | None:
        if not self.matches(request):
            return None
        with self._lock:
            if self.remaining > 0:
                self.remaining -= 1
                self.injected += 1
                return self.respond(request.url)
            self.passed += 1
        return None


def batch_server_error(url: str) -> AWSResponse:
    return error_response(url, 500, "ServerException", "Internal server error")


def dynamodb_throttled(url: str) -> AWSResponse:
    return error_response(
        url,
        400,
        "ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded.",
        json_10=True,
    )


# --- events -----------------------------------------------------------------------------------------


def s3_body(bucket: str, key: str, *, event_name: str = "ObjectCreated:Put", size: int = 10) -> str:
    """An S3 event notification body as S3 sends it to SQS (key already URL-encoded by the caller)."""
    return json.dumps(
        {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "awsRegion": "us-east-1",
                    "eventTime": "2026-01-15T10:30:00.000Z",
                    "eventName": event_name,
                    "s3": {
                        "s3SchemaVersion": "1.0",
                        "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                        "object": {
                            "key": key,
                            "size": size,
                            "eTag": uuid.uuid4().hex,
                            "sequencer": uuid.uuid4().hex[:16].upper(),
                        },
                    },
                }
            ]
        }
    )


def sqs_event(local: Emulator, bodies: list[str]) -> dict[str, Any]:
    """An SQS event for S3SubmitFunction, one record per body, as the event source mapping sends it."""
    queue_arn = local.stack.queue_arn("IntakeQueue")
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": uuid.uuid4().hex,
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1768473000000"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            }
            for body in bodies
        ]
    }


def failed_job_event(local: Emulator, index: int = 0) -> dict[str, Any]:
    """A FAILED "Batch Job State Change" of a new job in our queue, from job-failed-container.json."""
    from tests.conftest import load_event

    event = load_event("batch/job-failed-container.json")
    job_id = str(uuid.uuid4())
    event["id"] = str(uuid.uuid4())
    event["detail"].update(
        jobId=job_id,
        jobName=f"fault-job-{index}",
        jobArn=f"arn:aws:batch:us-east-1:123456789012:job/{job_id}",
        jobQueue=local.stack.outputs["JobQueueArn"],
    )
    event["resources"] = [event["detail"]["jobArn"]]
    return event


def s3_keys(local: Emulator) -> list[str]:
    return sorted(job["parameters"]["key"] for job in local.jobs_submitted() if "key" in job["parameters"])


def dlq_of(local: Emulator, function: str) -> list[str]:
    return local.dlq_messages()[local.stack.functions[function].dead_letter_queue or "IntakeDLQ"]


def idempotency_table(local: Emulator) -> Any:
    name = local.stack.functions["S3SubmitFunction"].environment["IDEMPOTENCY_TABLE_NAME"]
    return boto3.resource("dynamodb").Table(name)
