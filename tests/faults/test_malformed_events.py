"""Malformed events of every kind, for each function: processed (nothing to do, no error) or parked in the
right DLQ with the documented log line, never taking unrelated records of the same batch down with them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from emulator.core import Emulator
from tests.faults.conftest import dlq_of, failed_job_event, logged, s3_body, s3_keys, sqs_event

SCHEDULE_ARN = "arn:aws:scheduler:us-east-1:123456789012:schedule/default/nightly"
BAD_TICKS: list[Any] = [
    [],  # not an object
    "2026-11-23T12:00:00Z",
    None,
    {},  # missing fields
    {"scheduleArn": SCHEDULE_ARN},
    {"scheduledTime": "2026-11-23T12:00:00Z"},
    {"scheduledTime": "not a time", "scheduleArn": SCHEDULE_ARN},  # wrong types
    {"scheduledTime": "2026-11-23T12:00:00Z", "scheduleArn": ["arn"]},
    {"scheduledTime": "2026-11-23T12:00:00Z", "scheduleArn": SCHEDULE_ARN, "parameters": "x"},
    {"detail-type": "Scheduled Event", "time": "2026-11-23T12:00:00Z", "resources": []},
]


def test_every_malformed_tick_is_parked_in_the_schedule_dlq_and_a_good_one_still_runs(
    local: Emulator, caplog: pytest.LogCaptureFixture
):
    # Given malformed ticks of every kind, and one good tick among them
    good = {"scheduledTime": "2026-11-23T12:00:00Z", "scheduleArn": SCHEDULE_ARN, "parameters": {}}

    # When each is delivered (Lambda's async semantics: two retries, then the function's DLQ)
    outcomes = [
        local.invoke("ScheduleSubmitFunction", event) for event in [*BAD_TICKS[:5], good, *BAD_TICKS[5:]]
    ]

    # Then only the good tick submits, every bad one lands in the schedule DLQ as it was sent
    assert [o.error["type"] if o.error else None for o in outcomes].count("InvalidScheduleEventError") == len(
        BAD_TICKS
    )
    assert [j["parameters"]["scheduledTime"] for j in local.jobs_submitted()] == ["2026-11-23T12:00:00Z"]
    assert [json.loads(b) for b in dlq_of(local, "ScheduleSubmitFunction")] == BAD_TICKS
    # And each try said so in one constant line
    assert len(logged(caplog, "Rejected schedule event")) == 3 * len(BAD_TICKS)


def sns(payload: dict[str, Any]) -> str:
    return json.dumps(
        {"TopicArn": "arn:aws:sns:us-east-1:123456789012:uploads", "MessageId": "m-1", **payload}
    )


def test_malformed_s3_bodies_are_parked_alone_and_their_batch_mates_are_processed(
    local: Emulator, caplog: pytest.LogCaptureFixture
):
    # Given one SQS batch mixing malformed bodies with valid ones (uploads and valid-but-irrelevant)
    bucket = local.bucket()
    upload = json.loads(s3_body(bucket, "incoming/x.csv"))
    record = upload["Records"][0]
    no_bucket = {"Records": [{**record, "s3": {"object": record["s3"]["object"]}}]}
    no_key = {"Records": [{**record, "s3": {**record["s3"], "object": {"size": 3, "sequencer": "0A"}}}]}
    malformed = [
        "not json {",
        json.dumps(["a", "list"]),
        json.dumps({"hello": "world"}),
        json.dumps({"Records": []}),
        json.dumps({"Records": "x"}),
        json.dumps(no_bucket),
        json.dumps(no_key),
        s3_body(bucket, "incoming/%C3%28broken.csv"),  # percent-encoding of invalid UTF-8
        sns({"Type": "SubscriptionConfirmation", "Message": "You have chosen to subscribe", "Token": "t"}),
        sns({"Type": "Notification", "Message": "not json either"}),
    ]
    irrelevant = [
        json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": bucket}),
        s3_body(bucket, "incoming/gone.csv", event_name="ObjectRemoved:Delete"),
        s3_body(bucket, "incoming/folder/", size=0),
    ]
    uploads = [
        s3_body(bucket, "incoming/good-1.csv"),
        sns({"Type": "Notification", "Message": s3_body(bucket, "incoming/good-2.csv")}),
    ]
    bodies = [malformed[0], *uploads[:1], *malformed[1:6], *irrelevant, *malformed[6:], *uploads[1:]]
    event = sqs_event(local, bodies)
    bad_ids = [r["messageId"] for r in event["Records"] if r["body"] in malformed]

    # When the function gets the batch (SQS redelivers the failed items until maxReceiveCount)
    outcome = local.invoke("S3SubmitFunction", event)

    # Then exactly the malformed bodies are failed items, parked in IntakeDLQ; the good uploads are jobs
    assert [f["itemIdentifier"] for f in outcome.result["batchItemFailures"]] == bad_ids
    assert sorted(local.dlq_messages()["IntakeDLQ"]) == sorted(malformed)
    assert s3_keys(local) == ["incoming/good-1.csv", "incoming/good-2.csv"]
    # And every rejection logged the constant line with the message id and a reason (never the body)
    rejected = logged(caplog, "Rejected SQS message: not an S3 event notification")
    assert {getattr(r, "message_id", None) for r in rejected} == set(bad_ids)
    assert all(getattr(r, "reason", "") and "broken" not in getattr(r, "reason", "") for r in rejected)
    assert len(logged(caplog, "S3 notification record skipped")) == len(irrelevant)


IRRELEVANT_TO_THE_NOTIFIER: list[Any] = [
    [1, 2],
    "FAILED",
    None,
    {"detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2", "detail": {"state": "x"}},
    {"detail-type": "Batch Job State Change", "source": "aws.batch"},  # missing detail
    {"detail-type": "Batch Job State Change", "source": "aws.batch", "detail": None},
    {"detail-type": "Batch Job State Change", "source": "aws.batch", "detail": ["FAILED"]},
    {"detail-type": "Batch Job State Change", "source": "aws.batch", "detail": {"status": "SUCCEEDED"}},
    {"detail-type": "Batch Job State Change", "source": "aws.batch", "detail": {"status": 7}},
]


def test_events_the_notifier_has_nothing_to_say_about_are_processed_quietly(
    local: Emulator, caplog: pytest.LogCaptureFixture
):
    # Given non-Batch events, Batch events without a usable detail, and one real FAILED event among them
    failed = failed_job_event(local)

    # When each is delivered to FailureNotifyFunction
    outcomes = [local.invoke("FailureNotifyFunction", e) for e in [*IRRELEVANT_TO_THE_NOTIFIER, failed]]

    # Then none fails or is parked, only the FAILED job gets a message, and each skip is logged once
    assert [o.error for o in outcomes] == [None] * len(outcomes)
    assert [o.result["notified"] for o in outcomes] == [False] * len(IRRELEVANT_TO_THE_NOTIFIER) + [True]
    (message,) = local.slack_messages()
    assert failed["detail"]["jobId"] in json.dumps(message)
    assert dlq_of(local, "FailureNotifyFunction") == []
    assert len(logged(caplog, "Not a failed job, nothing to post")) == len(IRRELEVANT_TO_THE_NOTIFIER)
