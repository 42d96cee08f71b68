"""DynamoDB throttling on the idempotency table, and Slack failing in every way it does."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from batch_dispatch.aws import clients
from emulator.core import Emulator
from emulator.slack_stub import Reply
from tests.faults.conftest import (
    FirstCallsFail,
    dlq_of,
    dynamodb_throttled,
    failed_job_event,
    logged,
    s3_body,
    s3_keys,
    sqs_event,
)

# More than botocore's own tries per call (4: the clients' standard mode reports "max retries: 3"), so the
# function itself sees the error once, and its retry gets through.
THROTTLED_CALLS = 5
NOTIFY = "FailureNotifyFunction"


def throttle_idempotency_table(local: Emulator, count: int) -> FirstCallsFail:
    table = local.stack.functions["S3SubmitFunction"].environment["IDEMPOTENCY_TABLE_NAME"]

    def on_the_table(request: Any) -> bool:
        body = request.body or b"{}"
        return bool(json.loads(body).get("TableName") == table)

    return FirstCallsFail(count, dynamodb_throttled, on_the_table).install(
        clients.client("dynamodb"), "before-send.dynamodb"
    )


def test_a_throttled_idempotency_table_fails_records_that_are_redelivered_once_each(
    local: Emulator, caplog: pytest.LogCaptureFixture
):
    # Given the idempotency table throttles its next 5 requests
    fault = throttle_idempotency_table(local, THROTTLED_CALLS)
    keys = [f"incoming/ddb/{n}.csv" for n in range(3)]

    # When a batch of three uploads arrives (SQS redelivers what fails)
    outcome = local.invoke("S3SubmitFunction", sqs_event(local, [s3_body(local.bucket(), k) for k in keys]))

    # Then the throttled records failed first, and in the end each upload is exactly one job
    assert fault.injected == THROTTLED_CALLS
    assert outcome.result["batchItemFailures"]
    assert s3_keys(local) == sorted(keys)
    assert local.dlq_messages()["IntakeDLQ"] == []
    assert logged(caplog, "Upload submit failed")


def test_a_throttled_idempotency_table_delays_a_tick_into_one_job(local: Emulator):
    # Given the idempotency table throttles its next 5 requests
    fault = throttle_idempotency_table(local, THROTTLED_CALLS)

    # When a tick arrives (Lambda retries a failed one)
    outcome = local.tick("2026-11-23T12:00:00Z")

    # Then Lambda's retry submits it, once
    assert fault.injected == THROTTLED_CALLS
    assert outcome.error is None
    assert outcome.attempts == 2
    assert len(local.jobs_submitted()) == 1
    assert dlq_of(local, "ScheduleSubmitFunction") == []


def fast_slack_settings(local: Emulator) -> None:
    """Keep the function's Slack waits short: 1 s timeout, one retry, 3 s budget per invocation."""
    local.stack.functions[NOTIFY].environment.update(
        SLACK_TIMEOUT_SECONDS="1", SLACK_MAX_RETRIES="1", SLACK_BUDGET_SECONDS="3"
    )


@pytest.mark.parametrize(
    "reply",
    [Reply.rate_limited(retry_after=1), Reply.server_error(500), Reply.server_error(503), Reply.hang(1.5)],
    ids=["429", "500", "503", "timeout"],
)
def test_slack_failing_longer_than_one_invocation_is_delivered_once_by_lambdas_retry(
    local: Emulator, caplog: pytest.LogCaptureFixture, reply: Reply
):
    # Given Slack fails the next three posts (more than one invocation's retries)
    fast_slack_settings(local)
    local.slack.script(reply, reply, reply)
    event = failed_job_event(local)

    # When the FAILED event arrives (and EventBridge delivers it once more afterwards)
    outcome = local.invoke(NOTIFY, event)
    again = local.invoke(NOTIFY, event)

    # Then Lambda's retry delivered it, exactly once, and the failed try says why
    assert outcome.error is None
    assert outcome.attempts == 2
    assert again.result["duplicate"] is True
    (message,) = local.slack_messages()
    assert event["detail"]["jobId"] in json.dumps(message)
    assert dlq_of(local, NOTIFY) == []
    (failure,) = logged(caplog, "Slack notification failed")
    assert getattr(failure, "error_kind", None) in {"rate_limited", "http_500", "http_503", "timeout"}


def redrive(local: Emulator) -> int:
    """`make redrive DLQ=FailureNotifyDLQ`: re-invoke the function with each parked event, then delete it."""
    sqs: Any = boto3.client("sqs")
    url = local.stack.queue_url("FailureNotifyDLQ")
    moved = 0
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            local.invoke(NOTIFY, json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    return moved


@pytest.mark.parametrize("mode", ["no_service", "channel_is_archived"])
def test_a_revoked_webhook_parks_the_alert_and_after_the_fix_a_redrive_delivers_it_once(
    local: Emulator, caplog: pytest.LogCaptureFixture, mode: str
):
    # Given the webhook is revoked (404 no_service) or its channel archived (410)
    local.slack.set_mode(mode)
    event, other = failed_job_event(local, 1), failed_job_event(local, 2)

    # When two FAILED events arrive
    outcomes = [local.invoke(NOTIFY, event), local.invoke(NOTIFY, other)]

    # Then both are parked in FailureNotifyDLQ after Lambda's retries, with a log line saying what to fix
    assert [o.error["type"] for o in outcomes if o.error] == ["SlackPermanentError"] * 2
    assert [json.loads(b) for b in dlq_of(local, NOTIFY)] == [event, other]
    assert local.slack_messages() == []
    failures = logged(caplog, "Slack notification failed")
    assert len(failures) == 6  # three attempts each
    assert {getattr(r, "error_kind", None) for r in failures} == {mode}
    assert logged(caplog, "Slack webhook looks revoked, re-read its secret")

    # When the webhook is fixed and the operator redrives the DLQ twice, and EventBridge repeats one event
    local.slack.set_mode("ok")
    assert redrive(local) == 2
    assert redrive(local) == 0
    local.invoke(NOTIFY, event)

    # Then each alert is delivered exactly once and the DLQ is empty
    texts = [json.dumps(m) for m in local.slack_messages()]
    assert len(texts) == 2
    assert sum(event["detail"]["jobId"] in t for t in texts) == 1
    assert sum(other["detail"]["jobId"] in t for t in texts) == 1
    assert dlq_of(local, NOTIFY) == []
