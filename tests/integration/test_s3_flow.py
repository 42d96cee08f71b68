"""S3 uploads end to end: real uploads to the template's bucket, S3 -> SQS -> S3SubmitFunction -> Batch."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import boto3
import pytest

from batch_dispatch.aws import clients
from emulator.core import Emulator
from tests.conftest import load_event

pytestmark = pytest.mark.integration

ODD_KEYS = [
    "incoming/daily report 2026-11-23.csv",
    "incoming/a+b.csv",
    "incoming/100%.csv",
    "incoming/café/résumé.pdf",
    "incoming/" + "/".join(f"level{i}" for i in range(30)) + "/deep.csv",
    "incoming/" + "k" * (1024 - len("incoming/")),
]


def is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def keys_of(jobs: list[dict[str, Any]]) -> Counter[str]:
    return Counter(job["parameters"]["key"] for job in jobs if job["parameters"].get("key"))


def test_an_upload_reaches_batch_through_the_bucket_notification(local: Emulator):
    local.upload("incoming/report.csv")

    local.drain()

    (job,) = local.jobs_submitted()
    assert job["parameters"]["bucket"] == local.bucket()
    assert job["parameters"]["key"] == "incoming/report.csv"
    assert job["jobQueue"] == local.stack.outputs["JobQueueArn"]
    assert local.dlq_messages()["IntakeDLQ"] == []


def test_every_odd_key_arrives_decoded_exactly(local: Emulator):
    for key in ODD_KEYS:
        local.upload(key)

    local.drain()

    assert keys_of(local.jobs_submitted()) == Counter(ODD_KEYS)
    assert all(len(job["jobName"]) <= 128 for job in local.jobs_submitted())


def test_many_uploads_at_once_become_one_job_each(local: Emulator):
    keys = [f"incoming/batch/file-{n:03d}.csv" for n in range(120)]
    for key in keys:
        local.upload(key)

    local.drain()

    assert keys_of(local.jobs_submitted()) == Counter(keys)
    assert local.dlq_messages()["IntakeDLQ"] == []


def test_the_same_notification_delivered_twice_makes_one_job(local: Emulator):
    sqs = boto3.client("sqs")
    queue_url = local.stack.outputs["IntakeQueueUrl"]
    local.upload("incoming/once.csv")
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0)[
        "Messages"
    ]
    (original,) = [m for m in messages if "ObjectCreated" in m["Body"]]  # S3 also sent its s3:TestEvent
    sqs.send_message(QueueUrl=queue_url, MessageBody=original["Body"])  # S3 delivered it again

    local.drain()

    assert keys_of(local.jobs_submitted()) == Counter({"incoming/once.csv": 1})


def test_the_duplicate_sample_event_makes_one_job(local: Emulator):
    outcome = local.invoke("S3SubmitFunction", load_event("s3/sqs-duplicate.json"))

    assert outcome.result == {"batchItemFailures": []}
    assert len(local.jobs_submitted()) == 1


def test_test_events_deletes_and_folder_markers_submit_nothing_and_fail_nothing(local: Emulator):
    for name in ("sqs-test-event.json", "sqs-object-removed.json", "sqs-folder-marker.json"):
        outcome = local.invoke("S3SubmitFunction", load_event(f"s3/{name}"))
        assert outcome.result == {"batchItemFailures": []}, name

    assert local.jobs_submitted() == []
    assert local.dlq_messages()["IntakeDLQ"] == []


def test_a_malformed_body_is_parked_in_the_dlq_and_its_batch_mates_are_submitted(local: Emulator):
    event = load_event("s3/sqs-malformed.json")
    bad = [r for r in event["Records"] if not is_json(r["body"])]

    outcome = local.invoke("S3SubmitFunction", event)

    assert [f["itemIdentifier"] for f in outcome.result["batchItemFailures"]] == [r["messageId"] for r in bad]
    assert len(local.jobs_submitted()) == len(event["Records"]) - len(bad)
    assert local.dlq_messages()["IntakeDLQ"] == [r["body"] for r in bad]


def test_a_garbage_message_on_the_real_queue_ends_in_the_dlq(local: Emulator):
    boto3.client("sqs").send_message(QueueUrl=local.stack.outputs["IntakeQueueUrl"], MessageBody="not json {")
    local.upload("incoming/good.csv")

    local.drain(retry_visibility_seconds=0)

    assert keys_of(local.jobs_submitted()) == Counter({"incoming/good.csv": 1})
    assert local.dlq_messages()["IntakeDLQ"] == ["not json {"]


class ThrottlingBatch:
    """The real (moto) Batch client, but SubmitJob answers TooManyRequestsException `failures` times."""

    def __init__(self, failures: int) -> None:
        self._client = boto3.client("batch")
        self.remaining_failures = failures
        self.throttled = 0

    def submit_job(self, **kwargs: Any) -> Any:
        if self.remaining_failures > 0:
            self.remaining_failures -= 1
            self.throttled += 1
            raise self._client.exceptions.ClientException(
                {
                    "Error": {"Code": "TooManyRequestsException", "Message": "Too Many Requests"},
                    "ResponseMetadata": {"HTTPStatusCode": 429},
                },
                "SubmitJob",
            )
        return self._client.submit_job(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_throttled_submits_are_retried_and_nothing_is_lost_or_doubled(local: Emulator):
    keys = [f"incoming/throttled-{n}.csv" for n in range(12)]
    for key in keys:
        local.upload(key)
    throttling = ThrottlingBatch(failures=10)
    clients.use_client("batch", throttling)
    try:
        local.drain(retry_visibility_seconds=0)
    finally:
        clients.reset_clients()

    assert throttling.throttled == 10
    assert keys_of(local.jobs_submitted()) == Counter(keys)
    assert local.dlq_messages()["IntakeDLQ"] == []


def test_sns_wrapped_notifications_are_unwrapped(local: Emulator):
    outcome = local.invoke("S3SubmitFunction", load_event("s3/sqs-sns-wrapped.json"))

    assert outcome.result == {"batchItemFailures": []}
    (job,) = local.jobs_submitted()
    inner = json.loads(json.loads(load_event("s3/sqs-sns-wrapped.json")["Records"][0]["body"])["Message"])
    assert job["parameters"]["bucket"] == inner["Records"][0]["s3"]["bucket"]["name"]
