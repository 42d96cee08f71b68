"""Buckets the stack does not own, end to end, and the loop guard.

Scope: template.yaml with job-types/examples.yaml added, deployed into moto with AttachedBuckets naming
two buckets created outside the stack before the deploy (versioned, EventBridge notifications turned
on, as their owner would). Real uploads go through moto's S3 -> EventBridge -> the stack's rule ->
IntakeQueue -> S3SubmitFunction. EventBridge S3 events in AWS's own shapes (from
https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html) are put on the bus and reach the
queue through the template's rules. A job stand-in writes each job's output back into its bucket, as a
job that triggers itself would.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import boto3
import pytest

from emulator.core import Emulator, create_outside_bucket
from emulator.runtime import sqs_record
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration

EXAMPLES = REPO_ROOT / "job-types" / "examples.yaml"
TEAM = "team-landing"  # the default job type's route applies here
PARTNER = "partner-orders-example"  # the partner-orders job type's UploadBucket (orders/)
STACK_SECRET = "batch-dispatch/slack-webhook"
ODD_KEYS = ["drop/daily report 2026.csv", "drop/a+b=c.csv", "drop/100% done.csv", "drop/café/résumé.pdf"]


@pytest.fixture(scope="module")
def emulator_parameters() -> dict[str, str]:
    return {"AttachedBuckets": f"{TEAM},{PARTNER}", "OutputPrefix": "results/"}


@pytest.fixture(scope="module")
def emulator_job_types() -> Path:
    return EXAMPLES


@pytest.fixture(scope="module")
def emulator_outside_buckets() -> tuple[str, ...]:
    return (TEAM, PARTNER)


def jobs_by_key(local: Emulator) -> Counter[tuple[str, str, str]]:
    """(job type, bucket, key) -> jobs."""
    return Counter(
        (job["job_type"], job["parameters"]["bucket"], job["parameters"]["key"])
        for job in local.jobs_submitted()
        if "key" in job["parameters"]
    )


def object_event(detail_type: str, bucket: str, key: str, **object_fields: Any) -> dict[str, Any]:
    """An S3 event as EventBridge delivers it (the documented example's fields), key as stored."""
    detail: dict[str, Any] = {
        "version": "0",
        "bucket": {"name": bucket},
        "object": {"key": key, **object_fields},
        "request-id": "N4N7GDK58NMKJ12R",
        "requester": "123456789012",
        "source-ip-address": "203.0.113.10",
    }
    if detail_type == "Object Created":
        detail["reason"] = "PutObject"
    elif detail_type == "Object Deleted":
        detail.update(reason="DeleteObject", **{"deletion-type": "Permanently Deleted"})
    elif detail_type == "Object Restore Completed":
        detail.update(**{"restore-expiry-time": "2026-12-20T00:00:00Z", "source-storage-class": "GLACIER"})
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-12-04T10:30:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": detail,
    }


def created(bucket: str, key: str, version: str | None, sequencer: str) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "size": 2048,
        "etag": "b1946ac92492d2347c6235b4d2611184",
        "sequencer": sequencer,
    }
    if version is not None:
        fields["version-id"] = version
    return object_event("Object Created", bucket, key, **fields)


def intake_url(local: Emulator) -> str:
    return local.stack.queue_url("IntakeQueue")


def test_a_file_landing_in_a_bucket_created_outside_the_stack_reaches_its_job(local: Emulator):
    # Given two buckets made outside the stack, attached by name
    # When files land in them
    local.upload_to(PARTNER, "orders/2026/order 17.json")
    local.upload_to(TEAM, "drop/report.csv")
    local.drain()

    # Then each reached the job type whose route fits, in its bucket, once
    assert jobs_by_key(local) == Counter(
        {
            ("partner-orders", PARTNER, "orders/2026/order 17.json"): 1,
            ("default", TEAM, "drop/report.csv"): 1,
        }
    )
    assert local.dlq_messages()["IntakeDLQ"] == []


def test_a_bucket_the_stack_does_not_attach_sends_nothing(local: Emulator):
    # Given a bucket with EventBridge notifications on, but not in AttachedBuckets
    create_outside_bucket("someone-elses-bucket")
    local.drain()  # the intake bucket's s3:TestEvent

    local.upload_to("someone-elses-bucket", "drop/report.csv")

    # Then its uploads never reach the queue
    assert local.drain() == 0
    assert local.jobs_submitted() == []


def test_eventbridge_object_created_events_become_the_right_jobs_once(local: Emulator):
    # Given "Object Created" events for odd keys, from a versioned and an unversioned bucket, each
    # delivered twice (EventBridge delivers at least once)
    events = [
        created(TEAM, key, f"v{i}.IYV3p45BT0ac8hjHg1houSd", f"00617F0829932{i}")
        for i, key in enumerate(ODD_KEYS)
    ]
    events += [created(PARTNER, "orders/unversioned+1%.json", None, "00617F08299329D189")]
    for event in events + events:
        local.publish_event(event)

    local.drain()

    # Then every object got one job, with its key exactly as stored, by the job type of its bucket
    expected = {("default", TEAM, key): 1 for key in ODD_KEYS}
    expected[("partner-orders", PARTNER, "orders/unversioned+1%.json")] = 1
    assert jobs_by_key(local) == Counter(expected)
    assert local.dlq_messages()["IntakeDLQ"] == []


def test_deletes_and_restores_never_reach_the_queue_and_submit_nothing_if_they_do(local: Emulator):
    # Given an "Object Deleted" and an "Object Restore Completed" event of an attached bucket
    deleted = object_event(
        "Object Deleted", TEAM, "drop/old.csv", **{"version-id": "1QW9", "sequencer": "0A"}
    )
    restored = object_event("Object Restore Completed", TEAM, "drop/archive.csv", size=5, etag="b19")

    # When they are put on the bus: the rule takes only "Object Created"
    local.drain()  # the intake bucket's s3:TestEvent
    local.publish_event(deleted)
    local.publish_event(restored)
    assert local.drain() == 0

    # And when they reach the queue anyway (another rule, a replay): skipped, not failures
    sqs = boto3.client("sqs")
    for event in (deleted, restored):
        sqs.send_message(QueueUrl=intake_url(local), MessageBody=json.dumps(event))
    assert local.drain() >= 1
    assert local.jobs_submitted() == []
    assert local.dlq_messages()["IntakeDLQ"] == []


def test_the_same_upload_as_a_notification_and_through_eventbridge_is_one_job(local: Emulator):
    # Given a bucket with both notifications and EventBridge turned on: one real upload (moto's S3
    # sends its EventBridge event), and the notification S3 sends to the queue for the same version
    # (key URL-encoded)
    key = "drop/both ways+1 100% é.csv"
    version = boto3.client("s3").put_object(Bucket=TEAM, Key=key, Body=b"data")["VersionId"]
    notification = {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2026-12-04T10:30:00.123Z",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": TEAM, "arn": f"arn:aws:s3:::{TEAM}"},
                    "object": {"key": quote_plus(key, safe="/"), "size": 4, "versionId": version},
                },
            }
        ]
    }
    boto3.client("sqs").send_message(QueueUrl=intake_url(local), MessageBody=json.dumps(notification))

    local.drain()

    # Then one job was submitted for it
    assert jobs_by_key(local) == Counter({("default", TEAM, key): 1})


def test_uploads_under_an_output_prefix_never_start_a_job(local: Emulator):
    # Given partner-orders writes under orders/loaded/, the default job type under results/
    for bucket, key in [
        (PARTNER, "orders/loaded/order 17.json"),
        (TEAM, "results/report.csv"),
        (local.bucket(), "results/report.csv"),
        (PARTNER, "orders/new.json"),
    ]:
        local.upload_to(bucket, key)

    local.drain()

    # Then only the upload outside an output prefix started a job, and nothing failed
    assert jobs_by_key(local) == Counter({("partner-orders", PARTNER, "orders/new.json"): 1})
    assert local.dlq_messages()["IntakeDLQ"] == []
    # And the jobs are told where to write
    batch = boto3.client("batch")
    (job,) = local.jobs_submitted()
    (definition,) = batch.describe_job_definitions(jobDefinitions=[job["jobDefinition"]])["jobDefinitions"]
    environment = {e["name"]: e["value"] for e in definition["containerProperties"]["environment"]}
    assert environment["BATCH_DISPATCH_OUTPUT_PREFIX"] == "orders/loaded/"


def next_name(key: str) -> str:
    """A job that writes its result next to its input, under a new name (report.csv -> report+1.csv)."""
    stem, _, suffix = key.rpartition(".")
    return f"{stem}+1.{suffix}"


def loop_jobs(local: Emulator, prefix: str = "loop/") -> list[dict[str, Any]]:
    return [j for j in local.jobs_submitted() if j["parameters"].get("key", "").startswith(prefix)]


def run_loop(local: Emulator, rounds: int, output_key: Callable[[str], str], with_lineage: bool) -> None:
    for _ in range(rounds):
        local.jobs_write_outputs(output_key, with_lineage=with_lineage, input_prefix="loop/")
        local.drain()


def parked(local: Emulator) -> list[dict[str, Any]]:
    """The IntakeDLQ's messages with their attributes (left in the queue)."""
    sqs = boto3.client("sqs")
    url = local.stack.queue_url("IntakeDLQ")
    messages = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=0
    ).get("Messages", [])
    return messages


def test_a_self_triggering_job_stops_after_n_jobs_with_one_alert_and_nothing_lost(local: Emulator):
    # Given a job that writes its output back into its input prefix, tagged with its lineage
    local.upload_to(TEAM, "loop/report.csv")
    local.drain()
    run_loop(local, 4, next_name, with_lineage=True)
    assert len(loop_jobs(local)) == 5  # LoopGuardMaxJobs

    # When its fifth job writes again, and three other files land in the same batch
    local.jobs_write_outputs(next_name, with_lineage=True, input_prefix="loop/")
    others = ["other/a.csv", "other/b.csv", "other/c.csv"]
    for key in others:
        local.upload_to(TEAM, key)
    sqs = boto3.client("sqs")
    messages = sqs.receive_message(QueueUrl=intake_url(local), MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == 4
    queue_arn = local.stack.queue_arn("IntakeQueue")
    invocation = local.invoke("S3SubmitFunction", {"Records": [sqs_record(m, queue_arn) for m in messages]})
    for message in messages:  # what the event source mapping does after a successful batch
        sqs.delete_message(QueueUrl=intake_url(local), ReceiptHandle=message["ReceiptHandle"])

    # Then the batch succeeded: the other files got their jobs, the loop's sixth did not
    assert invocation.error is None
    assert invocation.result == {"batchItemFailures": []}
    assert {key for _, _, key in jobs_by_key(local)} >= set(others)
    assert len(loop_jobs(local)) == 5
    # And the looping upload is parked in the IntakeDLQ, saying why
    (message,) = parked(local)
    assert "loop/report+1+1+1+1+1.csv" in message["Body"]
    assert message["MessageAttributes"]["ErrorCode"]["StringValue"] == "LoopGuardTripped"
    assert f"s3://{TEAM}/loop/report.csv" in message["MessageAttributes"]["ErrorMessage"]["StringValue"]
    # And the job type's channel was told once, with what to do
    (alert,) = local.slack_posts()
    assert alert["webhook_secret"] == STACK_SECRET
    assert "Loop guard stopped default jobs" in alert["text"]
    assert "BATCH_DISPATCH_LINEAGE" in json.dumps(alert)

    # When the loop would go on, and the parked message is replayed within the window
    # no job ran for it: nothing more is written
    assert local.jobs_write_outputs(next_name, input_prefix="loop/") == 0
    redrive(local)
    local.drain()

    # Then it is parked again, without a second alert
    assert len(loop_jobs(local)) == 5
    assert len(parked(local)) == 1
    assert len(local.slack_posts()) == 1


def redrive(local: Emulator) -> None:
    """Move the IntakeDLQ's messages back to IntakeQueue, as `make redrive DLQ=IntakeDLQ` does."""
    sqs = boto3.client("sqs")
    url = local.stack.queue_url("IntakeDLQ")
    for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        sqs.send_message(QueueUrl=intake_url(local), MessageBody=message["Body"])
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def test_a_job_rewriting_its_own_key_without_lineage_metadata_stops_after_n_jobs(local: Emulator):
    # Given a job that overwrites its input (a new version of the same key, no metadata)
    local.upload_to(TEAM, "loop/in-place.csv")
    local.drain()

    run_loop(local, 8, lambda key: key, with_lineage=False)

    # Then the key's own lineage stopped it after five jobs
    assert len(loop_jobs(local)) == 5
    assert len(parked(local)) == 1
    assert len(local.slack_posts()) == 1


def test_outputs_written_under_the_output_prefix_start_nothing(local: Emulator):
    # Given a job that writes under the stack's OutputPrefix, without any metadata
    local.upload_to(TEAM, "loop/report.csv")
    local.drain()

    run_loop(local, 3, lambda key: f"results/{key}", with_lineage=False)

    # Then its outputs never started a job and nothing was parked or alerted
    assert len(loop_jobs(local)) == 1
    assert jobs_by_key(local) == Counter({("default", TEAM, "loop/report.csv"): 1})
    assert parked(local) == []
    assert local.slack_posts() == []


def test_a_job_type_on_an_attached_bucket_may_read_its_prefix_there(local: Emulator):
    # Given the partner-orders job type (UploadBucket, UploadPrefix orders/)
    iam = boto3.client("iam")
    roles = {name: local.stack.physical_ids[name] for name in ("JobRole", "S3SubmitFunctionRole")}

    # Then the shared job role and S3SubmitFunction's role may read orders/ there (Platform 15, 16)
    for role in roles.values():
        policy = iam.get_role_policy(RoleName=role, PolicyName="read-upload-bucket-partner-orders")
        (statement,) = policy["PolicyDocument"]["Statement"]
        assert statement["Action"] == "s3:GetObject"
        assert statement["Resource"] == f"arn:aws:s3:::{PARTNER}/orders/*"


def test_the_loop_guard_alert_takes_its_turn_on_the_webhook_with_failure_alerts(local: Emulator):
    # Given a self-triggering job one round from the loop guard, and a job of the same channel that failed
    local.upload_to(TEAM, "loop/report.csv")
    local.drain()
    run_loop(local, 4, next_name, with_lineage=True)
    with local.jobs_fail(exit_code=1):
        local.upload_to(TEAM, "other/broken.csv")
        local.drain()

    # When the loop guard stops the loop, and the failure is told right after
    run_loop(local, 1, next_name, with_lineage=True)
    local.publish_batch_events()

    # Then both alerts went to the stack's channel, a second apart (Slack takes one a second per webhook)
    posts = [r for r in local.slack.requests if r.status == 200 and isinstance(r.payload, dict)]
    assert [local.webhook_secrets.get(r.path) for r in posts] == [STACK_SECRET, STACK_SECRET]
    assert "Loop guard" in posts[0].payload["text"]
    assert posts[1].received_at - posts[0].received_at >= 1.0
