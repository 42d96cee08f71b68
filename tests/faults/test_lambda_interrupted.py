"""A Lambda that runs out of time in the middle of a batch, or dies between SubmitJob and saving it."""

from __future__ import annotations

import time
from typing import Any

import pytest

from batch_dispatch.aws import clients
from emulator import runtime
from emulator.core import Emulator
from emulator.runtime import LocalContext
from tests.faults.conftest import (
    FirstCallsFail,
    batch_server_error,
    idempotency_table,
    logged,
    s3_body,
    s3_keys,
    sqs_event,
)

DEFERRED = "Time budget nearly spent, leaving record for redelivery"
ADOPTED = "Adopted job submitted by an earlier attempt"


class SandboxKilled(BaseException):
    """What Lambda does at its timeout or on an out-of-memory kill: no except clause gets to run."""


def count_submits(local: Emulator) -> FirstCallsFail:
    """Counts the SubmitJob calls the function makes (fails none)."""
    return FirstCallsFail(0, batch_server_error).install(
        clients.client("batch"), "before-send.batch.SubmitJob"
    )


def test_time_running_out_after_two_records_defers_the_rest_and_their_redelivery_submits_each_once(
    local: Emulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    # Given the first invocation's remaining time drops to 1 s once two jobs are submitted
    submits = count_submits(local)
    contexts: list[LocalContext] = []

    class RunningOut(LocalContext):
        def get_remaining_time_in_millis(self) -> int:
            first = self is contexts[0]
            return 1_000 if first and submits.passed >= 2 else super().get_remaining_time_in_millis()

    def new_context(**kwargs: Any) -> LocalContext:
        contexts.append(RunningOut(**kwargs))
        return contexts[-1]

    monkeypatch.setattr(runtime, "LocalContext", new_context)
    keys = [f"incoming/budget/{n}.csv" for n in range(6)]
    event = sqs_event(local, [s3_body(local.bucket(), key) for key in keys])
    caplog.clear()

    # When SQS hands the six records to the function in one batch
    outcome = local.invoke("S3SubmitFunction", event)

    # Then the last four are reported failed (not started), SQS redelivers them, and each object is one job
    late = [r["messageId"] for r in event["Records"][2:]]
    assert [f["itemIdentifier"] for f in outcome.result["batchItemFailures"]] == late
    assert len(contexts) == 2  # the batch, then the redelivery of the four
    assert s3_keys(local) == sorted(keys)
    assert submits.passed == 6
    assert local.dlq_messages()["IntakeDLQ"] == []
    deferred = logged(caplog, DEFERRED)
    assert [getattr(r, "message_id", None) for r in deferred] == late


def expire_in_progress_records(local: Emulator) -> int:
    """Let time pass until the INPROGRESS records of a dead invocation expire (Lambda's timeout)."""
    table = idempotency_table(local)
    expired = 0
    for item in table.scan()["Items"]:
        if item.get("status") == "INPROGRESS":
            table.update_item(
                Key={"id": item["id"]},
                UpdateExpression="SET in_progress_expiration = :past",
                ExpressionAttributeValues={":past": int(time.time() * 1000) - 1},
            )
            expired += 1
    return expired


def crash_after_the_first_submit(local: Emulator) -> None:
    crashed: list[bool] = []

    def after_call(**_kwargs: Any) -> None:
        if not crashed:
            crashed.append(True)
            raise SandboxKilled("Task timed out after 60.00 seconds")

    clients.client("batch").meta.events.register("after-call.batch.SubmitJob", after_call)


def test_a_crash_after_submit_is_not_doubled_and_the_redelivery_adopts_the_job(
    local: Emulator, caplog: pytest.LogCaptureFixture
):
    # Given the sandbox dies right after SubmitJob returned, before the idempotency record is completed
    crash_after_the_first_submit(local)
    event = sqs_event(local, [s3_body(local.bucket(), "incoming/crash.csv")])
    with pytest.raises(SandboxKilled):
        local.invoke("S3SubmitFunction", event)
    (job,) = local.jobs_submitted()

    # When SQS redelivers the message while the record is still INPROGRESS, and again after it expired
    for record in event["Records"]:
        record["attributes"]["ApproximateReceiveCount"] = "2"
    early = local.runtime.invoke("S3SubmitFunction", event)
    assert expire_in_progress_records(local) == 1
    caplog.clear()
    late = local.invoke("S3SubmitFunction", event)

    # Then the early one fails (to be redelivered), the late one adopts the job by name: one job in all
    assert [f["itemIdentifier"] for f in early.result["batchItemFailures"]] == [
        event["Records"][0]["messageId"]
    ]
    assert late.result == {"batchItemFailures": []}
    assert [j["jobId"] for j in local.jobs_submitted()] == [job["jobId"]]
    (adopted,) = logged(caplog, ADOPTED)
    assert getattr(adopted, "job_id", None) == job["jobId"]
    assert local.dlq_messages()["IntakeDLQ"] == []


def test_a_tick_that_crashed_after_submit_is_adopted_by_the_retry(
    local: Emulator, caplog: pytest.LogCaptureFixture
):
    # Given the sandbox dies right after SubmitJob for a tick
    crash_after_the_first_submit(local)
    with pytest.raises(SandboxKilled):
        local.tick("2026-11-23T12:00:00Z")
    (job,) = local.jobs_submitted()

    # When the record expires and Lambda retries the tick
    assert expire_in_progress_records(local) == 1
    caplog.clear()
    retry = local.tick("2026-11-23T12:00:00Z")

    # Then the retry adopts the job submitted before the crash
    assert retry.error is None
    assert retry.result == {"jobId": job["jobId"], "jobName": job["jobName"], "duplicate": True}
    assert len(local.jobs_submitted()) == 1
    assert logged(caplog, ADOPTED)
