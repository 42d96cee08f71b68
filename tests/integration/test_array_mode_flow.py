"""Burst mode (SubmitMode=ARRAY) end to end: SQS batches -> S3SubmitFunction -> one array job per batch.

Outcomes are read from moto itself: array jobs (arrayProperties.size), manifest lines in S3, the
idempotency records, the DLQ. Every object must appear exactly once across all manifests and
per-object jobs.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from batch_dispatch import settings as settings_module
from batch_dispatch.aws import clients
from batch_dispatch.job_types import JobType, default_for
from batch_dispatch.settings import S3SubmitSettings
from batch_dispatch.submit import array_mode
from batch_dispatch.submit.claims import upload_record_id
from batch_dispatch.submit.s3_events import parse_body
from emulator.core import Emulator, s3_notification
from emulator.throttle import SubmitJobThrottle

pytestmark = pytest.mark.integration

FUNCTION = "S3SubmitFunction"
PREFIX = "_batch-dispatch/manifests/"


@pytest.fixture(scope="module")
def emulator_parameters() -> dict[str, str]:
    return {"SubmitMode": "ARRAY", "IntakeBatchSize": "100"}


class Uploads:
    """Notification bodies for keys, and SQS batches of them as the event source mapping sends."""

    def __init__(self, local: Emulator) -> None:
        self.local = local
        self.bucket = local.bucket()
        self.bodies: dict[str, str] = {}

    def body(self, key: str) -> str:
        if key not in self.bodies:
            self.bodies[key] = s3_notification(self.bucket, key, len(self.bodies))
        return self.bodies[key]

    def event(self, keys: list[str], receive_count: int = 1) -> dict[str, Any]:
        arn = self.local.stack.queue_arn("IntakeQueue")
        return {
            "Records": [
                {
                    "messageId": str(uuid.uuid4()),
                    "receiptHandle": "handle",
                    "body": self.body(key),
                    "attributes": {"ApproximateReceiveCount": str(receive_count)},
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                    "eventSourceARN": arn,
                    "awsRegion": "us-east-1",
                }
                for key in keys
            ]
        }

    def invoke(self, keys: list[str], receive_count: int = 1) -> tuple[dict[str, Any], set[str]]:
        """One invocation (no redelivery); returns the event and the keys of its failed messages."""
        event = self.event(keys, receive_count)
        outcome = self.local.runtime.invoke(FUNCTION, event)
        assert outcome.error is None, outcome.error
        failed = {f["itemIdentifier"] for f in outcome.result["batchItemFailures"]}
        by_id = {r["messageId"]: r for r in event["Records"]}
        return event, {_key_of(by_id[m]["body"]) for m in failed}


def _key_of(body: str) -> str:
    from urllib.parse import unquote_plus

    return unquote_plus(json.loads(body)["Records"][0]["s3"]["object"]["key"])


def jobs_per_key(local: Emulator) -> Counter[str]:
    per_object, _calls = local.jobs_per_object()
    return Counter({key: n for (_bucket, key), n in per_object.items()})


def array_sizes(local: Emulator) -> list[int]:
    return sorted(
        j["arrayProperties"]["size"]
        for j in local.describe_jobs()
        if j.get("arrayProperties", {}).get("size")
    )


def records(local: Emulator) -> dict[str, dict[str, Any]]:
    """The idempotency records (the loop guard's counters share the table: left out)."""
    table = local.stack.physical_ids["IdempotencyTable"]
    items = boto3.client("dynamodb").scan(TableName=table)["Items"]
    return {
        i["id"]["S"]: {k: next(iter(v.values())) for k, v in i.items()}
        for i in items
        if not i["id"]["S"].startswith("loop-guard#")
    }


def default_type(local: Emulator) -> JobType:
    return default_for(
        settings_module.from_environment(S3SubmitSettings, local.stack.functions[FUNCTION].environment)
    )


def keys(n: int, tag: str = "f") -> list[str]:
    return [f"incoming/{tag}-{i:03d} x+y.csv" for i in range(n)]


def test_real_uploads_become_array_jobs_and_the_manifests_never_become_jobs(local: Emulator):
    wanted = keys(40)
    for key in wanted:
        local.upload(key)

    local.drain()

    assert jobs_per_key(local) == Counter(wanted)  # each once, across all manifests
    assert not any(k.startswith(PREFIX) for k in jobs_per_key(local))
    s3 = boto3.client("s3")
    assert s3.list_objects_v2(Bucket=local.bucket("ManifestBucket"), Prefix=PREFIX)["KeyCount"] >= 1
    assert s3.list_objects_v2(Bucket=local.bucket(), Prefix=PREFIX)["KeyCount"] == 0
    assert local.dlq_messages()["IntakeDLQ"] == []


def test_a_manifest_never_reaches_the_function(local: Emulator):
    # Given the bucket array mode writes its manifests to
    local.drain()  # the intake bucket's s3:TestEvent
    # When a manifest lands there
    local.upload(f"{PREFIX}0123456789abcdef.jsonl", b'{"bucket": "b", "key": "k"}\n', "ManifestBucket")

    # Then no message reaches the intake queue: no invocation is spent on it
    assert local.drain() == 0
    assert local.jobs_submitted() == []


def test_one_batch_is_one_array_job_whose_manifest_lists_each_object_once(local: Emulator):
    uploads = Uploads(local)
    wanted = keys(25)

    _event, failed = uploads.invoke(wanted)

    assert failed == set()
    (job,) = local.jobs_submitted()
    assert array_sizes(local) == [25]
    body = (
        boto3.client("s3")
        .get_object(Bucket=job["parameters"]["manifestBucket"], Key=job["parameters"]["manifestKey"])["Body"]
        .read()
    )
    lines = [json.loads(line) for line in body.decode().splitlines()]
    assert Counter(line["key"] for line in lines) == Counter(wanted)
    assert job["parameters"]["objectCount"] == "25"
    # each object's record is its claim naming the manifest, whose record names the job
    objects = [r for rid, r in records(local).items() if rid.startswith("s3-object#")]
    assert len(objects) == 25
    manifest_key = job["parameters"]["manifestKey"]
    assert {(r["status"], r["manifestKey"]) for r in objects} == {("INPROGRESS", manifest_key)}
    (manifest_record,) = [r for rid, r in records(local).items() if rid.startswith("s3-manifest#")]
    assert manifest_record["status"] == "COMPLETED"
    assert json.loads(manifest_record["data"])["jobId"] == job["jobId"]


def test_duplicates_inside_a_batch_and_across_batches_are_submitted_once(local: Emulator):
    uploads = Uploads(local)
    first = keys(10)

    _event, failed = uploads.invoke(first + first[:3])  # three delivered twice in one batch
    assert failed == set()
    _event, failed = uploads.invoke(first[2:6] + keys(2, "new"))  # four again, two new

    assert failed == set()
    assert array_sizes(local) == [2, 10]
    assert jobs_per_key(local) == Counter(first + keys(2, "new"))


def test_objects_claimed_by_a_running_invocation_are_left_to_it_and_come_back_if_it_dies(local: Emulator):
    uploads = Uploads(local)
    wanted = keys(8)
    table = local.stack.physical_ids["IdempotencyTable"]
    dynamodb = boto3.client("dynamodb")
    held = wanted[:3]
    upload_of = {k: parse_body(uploads.body(k))[0] for k in wanted}
    for key in held:  # another invocation is submitting these right now
        dynamodb.put_item(
            TableName=table,
            Item={
                "id": {"S": upload_record_id(upload_of[key], default_type(local))},  # type: ignore[arg-type]
                "status": {"S": "INPROGRESS"},
                "expiration": {"N": str(int(time.time()) + 3600)},
                "manifestKey": {"S": f"{PREFIX}other.jsonl"},
                "claimExpiry": {"N": str(int(time.time() * 1000) + 60_000)},
            },
        )

    _event, failed = uploads.invoke(wanted)

    # The held ones are duplicates in flight: the other invocation's messages carry them, so ours are
    # acknowledged (not failed and sent round again).
    assert failed == set()
    assert array_sizes(local) == [5]
    # The other invocation dies before submitting: SQS redelivers ITS messages, which find the claims
    # stale and take them over.
    for key in held:
        dynamodb.update_item(
            TableName=table,
            Key={"id": {"S": upload_record_id(upload_of[key], default_type(local))}},  # type: ignore[arg-type]
            UpdateExpression="SET claimExpiry = :zero",
            ExpressionAttributeValues={":zero": {"N": "0"}},
        )
    _event, failed = uploads.invoke(held, receive_count=2)
    assert failed == set()
    assert array_sizes(local) == [3, 5]
    assert jobs_per_key(local) == Counter(wanted)


def test_a_crash_after_submit_job_is_adopted_by_name_not_submitted_again(local: Emulator, monkeypatch):
    uploads = Uploads(local)
    wanted = keys(6)
    table = local.stack.physical_ids["IdempotencyTable"]
    dynamodb = boto3.client("dynamodb")

    # Given an invocation killed right after SubmitJob (no manifest record, its claims left live: a
    # real kill runs no cleanup, so the whole batch is redelivered)
    submit_array = array_mode.submit_array

    class Killed(BaseException):  # not an Exception: nothing of ours catches it, as with a real kill
        pass

    def killed_after(*args: Any) -> None:
        submit_array(*args)
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(array_mode, "submit_array", killed_after)
        with pytest.raises(Killed):
            local.runtime.invoke(FUNCTION, uploads.event(wanted))
    assert array_sizes(local) == [6]
    for rid, record in records(local).items():
        if rid.startswith("s3-manifest#"):
            dynamodb.delete_item(TableName=table, Key={"id": {"S": rid}})
        else:
            assert record["status"] == "INPROGRESS"
            # ... and its deadline passes before SQS redelivers
            dynamodb.update_item(
                TableName=table,
                Key={"id": {"S": rid}},
                UpdateExpression="SET claimExpiry = :zero",
                ExpressionAttributeValues={":zero": {"N": "0"}},
            )

    # When SQS redelivers half of them in ARRAY mode and the other half after a switch to PER_OBJECT
    _event, failed = uploads.invoke(wanted[:3], receive_count=2)
    assert failed == set()
    local.update_function_environment(FUNCTION, SUBMIT_MODE="PER_OBJECT")
    _event, failed = uploads.invoke(wanted[3:], receive_count=2)

    # Then the array job found by name is adopted: still one job, every object COMPLETED in it
    assert failed == set()
    assert array_sizes(local) == [6]
    assert len(local.jobs_submitted()) == 1
    (job,) = local.jobs_submitted()
    objects = {rid: r for rid, r in records(local).items() if rid.startswith("s3-object#")}
    assert len(objects) == 6
    assert all(r["status"] == "COMPLETED" for r in objects.values())
    assert {json.loads(r["data"])["jobId"].split(":")[0] for r in objects.values()} == {job["jobId"]}


def test_switching_from_per_object_to_array_never_runs_an_object_twice(local: Emulator):
    uploads = Uploads(local)
    early, late = keys(3, "early"), keys(4, "late")
    local.update_function_environment(FUNCTION, SUBMIT_MODE="PER_OBJECT")
    _event, failed = uploads.invoke(early)
    assert failed == set()

    local.update_function_environment(FUNCTION, SUBMIT_MODE="ARRAY")
    _event, failed = uploads.invoke(early + late)
    assert failed == set()
    local.update_function_environment(FUNCTION, SUBMIT_MODE="PER_OBJECT")
    _event, failed = uploads.invoke(late)

    assert failed == set()
    assert array_sizes(local) == [4]
    assert jobs_per_key(local) == Counter(early + late)


def test_a_throttled_array_submit_is_retried_and_submitted_once(local: Emulator):
    uploads = Uploads(local)
    throttle = SubmitJobThrottle(rate_per_second=4, burst=1)
    batch = throttle.install(clients.client("batch"))
    spent: list[bool] = []

    def spend_the_token_once(**_kwargs: Any) -> None:
        if not spent:  # the account's token is spent by someone else: the first SubmitJob gets a 429
            spent.append(throttle.bucket.take())

    batch.meta.events.register_first("before-send.batch.SubmitJob", spend_the_token_once)

    _event, failed = uploads.invoke(keys(12))

    assert failed == set()
    assert throttle.stats.throttled >= 1
    assert array_sizes(local) == [12]
    assert jobs_per_key(local) == Counter(keys(12))


def test_a_redelivered_batch_reads_the_records_first_and_claims_nothing_it_finds_submitted(local: Emulator):
    uploads = Uploads(local)
    wanted = keys(30)
    _event, failed = uploads.invoke(wanted)
    assert failed == set()
    transactions: list[int] = []
    dynamodb = clients.client("dynamodb")  # the function's own client: count what reaches DynamoDB
    count = lambda params, **_kw: transactions.append(len(params["TransactItems"]))  # noqa: E731 - API params
    dynamodb.meta.events.register("before-parameter-build.dynamodb.TransactWriteItems", count)
    try:
        # When SQS redelivers the whole batch (its invocation's answer was lost)
        _event, failed = uploads.invoke(wanted, receive_count=2)
    finally:
        dynamodb.meta.events.unregister("before-parameter-build.dynamodb.TransactWriteItems", count)

    # Then nothing failed, nothing was submitted again, and no claim transaction was even tried
    assert failed == set()
    assert array_sizes(local) == [30]
    assert transactions == []


def test_a_burst_drained_into_worker_process_environments_submits_each_object_once(local: Emulator):
    from emulator.environments import ExecutionEnvironments

    # Given 240 notifications on the real queue, 40 of them twice, and two warm execution environments
    uploads = Uploads(local)
    wanted = keys(240, "burst")
    sqs: Any = boto3.client("sqs")
    queue_url = local.stack.queue_url("IntakeQueue")
    for key in wanted + wanted[::6]:
        sqs.send_message(QueueUrl=queue_url, MessageBody=uploads.body(key))

    # When the pollers drain it in batches of 100 into those processes
    with ExecutionEnvironments(local.stack, FUNCTION, 2) as environments:
        local.drain(retry_visibility_seconds=0, environments=environments)

    # Then every object is in exactly one array job, and nothing is parked
    assert jobs_per_key(local) == Counter(wanted)
    assert local.dlq_messages()["IntakeDLQ"] == []


class SubmitJobRefused:
    """The function's Batch client, whose SubmitJob AWS refuses (a bad job definition, say)."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def submit_job(self, **_request: Any) -> dict[str, Any]:
        raise ClientError(
            {
                "Error": {"Code": "ClientException", "Message": "Job definition is INACTIVE"},
                "ResponseMetadata": {"HTTPStatusCode": 400},
            },
            "SubmitJob",
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_a_malformed_body_in_an_array_batch_fails_alone_and_is_parked_in_the_dlq(local: Emulator):
    # Given a batch of four uploads and one body that is not an S3 notification
    uploads = Uploads(local)
    event = uploads.event(keys(4))
    malformed = {**event["Records"][0], "messageId": str(uuid.uuid4()), "body": '{"hello": "world"}'}
    event["Records"].append(malformed)

    # When the function handles it the way the event source mapping delivers it (redelivering failures)
    outcome = local.invoke(FUNCTION, event)

    # Then only the malformed message is reported failed, and it ends in the DLQ; the uploads are one job
    assert outcome.result["batchItemFailures"] == [{"itemIdentifier": malformed["messageId"]}]
    assert local.dlq_messages()["IntakeDLQ"] == [malformed["body"]]
    assert array_sizes(local) == [4]
    assert jobs_per_key(local) == Counter(keys(4))


def test_an_array_job_batch_refuses_fails_every_message_into_the_dlq(local: Emulator):
    # Given SubmitJob refuses every job
    clients.use_client("batch", SubmitJobRefused(clients.client("batch")))
    uploads = Uploads(local)
    event = uploads.event(keys(5))

    # When the batch is delivered, and redelivered until the queue's maxReceiveCount
    outcome = local.invoke(FUNCTION, event)

    # Then every message is reported failed each time, and all five end in the DLQ; no job exists
    assert {f["itemIdentifier"] for f in outcome.result["batchItemFailures"]} == {
        r["messageId"] for r in event["Records"]
    }
    assert sorted(local.dlq_messages()["IntakeDLQ"]) == sorted(r["body"] for r in event["Records"])
    assert local.jobs_submitted() == []
