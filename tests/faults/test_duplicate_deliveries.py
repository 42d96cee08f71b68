"""Duplicate and concurrent deliveries of one event to each function: exactly one job / one message."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import boto3

from emulator.core import Emulator
from emulator.runtime import Invocation
from tests.faults.conftest import dlq_of, failed_job_event, s3_body, s3_keys, sqs_event

COPIES = 6


def deliver_at_once(copies: int, deliver: Callable[[], Invocation]) -> list[Invocation]:
    """`copies` threads released together, each delivering the same event through the emulator."""
    barrier = threading.Barrier(copies)
    outcomes: list[Invocation] = []
    lock = threading.Lock()

    def one() -> None:
        barrier.wait()
        outcome = deliver()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=one) for _ in range(copies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_one_tick_delivered_six_times_at_once_submits_one_job(local: Emulator):
    # Given Lambda's async retries come back after the first delivery has finished
    local.runtime.retry_delay_seconds = 0.5
    tick = local.schedules()[0].input_for("2026-11-23T12:00:00Z")

    # When EventBridge Scheduler delivers the same tick six times at once
    outcomes = deliver_at_once(COPIES, lambda: local.invoke("ScheduleSubmitFunction", tick))

    # Then there is one job, every delivery ends well, and nothing is parked
    (job,) = local.jobs_submitted()
    assert [o.error for o in outcomes] == [None] * COPIES
    assert {o.result["jobId"] for o in outcomes} == {job["jobId"]}
    assert sorted(o.result["duplicate"] for o in outcomes) == [False] + [True] * (COPIES - 1)
    assert dlq_of(local, "ScheduleSubmitFunction") == []


def test_one_upload_notification_in_six_concurrent_batches_submits_one_job(local: Emulator):
    # Given six SQS batches carrying the same notification (S3 and SQS deliver at least once)
    local.runtime.retry_delay_seconds = 0.5
    body = s3_body(local.bucket(), "incoming/twice%20over.csv")

    # When six pollers hand them to the function at once (failed items are redelivered by SQS)
    outcomes = deliver_at_once(COPIES, lambda: local.invoke("S3SubmitFunction", sqs_event(local, [body])))

    # Then one job, no message left failed, none in the DLQ
    assert s3_keys(local) == ["incoming/twice over.csv"]
    assert all(o.error is None for o in outcomes)
    assert local.dlq_messages()["IntakeDLQ"] == []


def test_the_same_notification_queued_many_times_and_drained_by_concurrent_pollers_is_one_job(
    local: Emulator,
):
    # Given the real intake queue holds the same notification six times among other uploads
    sqs: Any = boto3.client("sqs")
    queue_url = local.stack.queue_url("IntakeQueue")
    same = s3_body(local.bucket(), "incoming/same.csv")
    others = [s3_body(local.bucket(), f"incoming/other-{n}.csv") for n in range(8)]
    for body in [same] * COPIES + others:
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)

    # When the event source mapping's pollers drain it with the template's concurrency
    local.drain(retry_visibility_seconds=0)

    # Then every object has exactly one job
    assert s3_keys(local) == sorted(["incoming/same.csv"] + [f"incoming/other-{n}.csv" for n in range(8)])
    assert local.dlq_messages()["IntakeDLQ"] == []


def test_one_failed_event_delivered_six_times_at_once_posts_one_message(local: Emulator):
    # Given EventBridge delivers one FAILED event six times at once
    local.runtime.retry_delay_seconds = 0.5
    event = failed_job_event(local)

    # When the function runs for each delivery concurrently
    outcomes = deliver_at_once(COPIES, lambda: local.invoke("FailureNotifyFunction", event))

    # Then Slack gets one message, and the other deliveries end as duplicates (not in the DLQ)
    (message,) = local.slack_messages()
    assert event["detail"]["jobId"] in str(message)
    assert [o.error for o in outcomes] == [None] * COPIES
    assert sum(1 for o in outcomes if o.result.get("duplicate")) == COPIES - 1
    assert dlq_of(local, "FailureNotifyFunction") == []
