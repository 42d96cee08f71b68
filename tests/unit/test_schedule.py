"""The schedule path: event shapes, job naming, one job per (schedule, scheduled time)."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

from batch_dispatch import settings as settings_module
from batch_dispatch.aws import clients
from batch_dispatch.aws.batch_jobs import find_job_by_name
from batch_dispatch.aws.idempotency import reset_persistence
from batch_dispatch.settings import ConfigurationError, ScheduleSubmitSettings
from batch_dispatch.submit.schedule import InvalidScheduleEventError, parse_tick, submit_tick, tick_job_spec
from tests.conftest import AtomicClient, create_id_table, load_event

VALID_JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")


def test_scheduler_input_is_parsed():
    tick = parse_tick(load_event("schedule/scheduler-tick.json"))

    assert tick.schedule_arn.endswith("schedule/default/batch-dispatch-dev-ScheduleSubmitFunctionSchedule")
    assert tick.scheduled_time == datetime(2026, 11, 23, 12, tzinfo=UTC)
    assert tick.parameters == {"mode": "full", "window": "3h"}


def test_classic_scheduled_event_is_parsed():
    tick = parse_tick(load_event("schedule/classic-scheduled-event.json"))

    assert tick.schedule_arn == "arn:aws:events:us-east-1:123456789012:rule/nightly-batch"
    assert tick.scheduled_time_iso == "2026-11-23T15:00:00Z"
    assert tick.parameters == {}


@pytest.mark.parametrize(
    "event",
    [
        load_event("schedule/malformed.json"),
        {},
        [],
        "text",
        {"scheduledTime": "2026-11-23T12:00:00Z"},
        {"detail-type": "Object Created", "time": "2026-11-23T12:00:00Z", "resources": ["x"]},
    ],
)
def test_malformed_events_are_rejected_with_what_was_expected(event):
    with pytest.raises(
        InvalidScheduleEventError, match=r"accepts EventBridge Scheduler input|expected a JSON"
    ):
        parse_tick(event)


def test_equivalent_time_formats_share_one_dedup_key():
    zulu = parse_tick({"scheduledTime": "2026-11-23T12:00:00Z", "scheduleArn": "arn:s"})
    offset = parse_tick({"scheduledTime": "2026-11-23T13:00:00+01:00", "scheduleArn": "arn:s"})

    assert zulu.scheduled_time_iso == offset.scheduled_time_iso == "2026-11-23T12:00:00Z"
    assert tick_job_spec(zulu, "p").job_name == tick_job_spec(offset, "p").job_name


def test_job_spec_carries_string_parameters_and_the_scheduled_time():
    tick = parse_tick(
        {
            "scheduledTime": "2026-11-23T12:00:00Z",
            "scheduleArn": "arn:aws:scheduler:us-east-1:123456789012:schedule/default/nightly",
            "parameters": {"mode": "full", "limit": 5, "dry": False, "tables": ["a", "b"]},
        }
    )

    spec = tick_job_spec(tick, "batch-dispatch-dev")

    assert spec.parameters == {
        "mode": "full",
        "limit": "5",
        "dry": "false",
        "tables": '["a","b"]',
        "scheduledTime": "2026-11-23T12:00:00Z",
        "scheduleName": "nightly",
    }
    assert VALID_JOB_NAME.match(spec.job_name)
    assert spec.job_name.startswith("batch-dispatch-dev-nightly-20261123T120000Z-")


def test_a_tick_submits_one_job_with_its_parameters(moto_batch, lambda_context):
    tick = parse_tick(load_event("schedule/scheduler-tick.json"))

    outcome = submit_tick(tick, settings_module.load(ScheduleSubmitSettings), lambda_context)

    jobs = moto_batch.jobs()
    assert [job["jobId"] for job in jobs] == [outcome.job.job_id]
    assert jobs[0]["parameters"]["mode"] == "full"
    assert jobs[0]["parameters"]["scheduledTime"] == "2026-11-23T12:00:00Z"
    assert outcome.duplicate is False


def test_the_same_tick_delivered_twice_submits_one_job(moto_batch, lambda_context):
    tick = parse_tick(load_event("schedule/scheduler-tick.json"))

    first = submit_tick(tick, settings_module.load(ScheduleSubmitSettings), lambda_context)
    second = submit_tick(tick, settings_module.load(ScheduleSubmitSettings), lambda_context)

    assert len(moto_batch.jobs()) == 1
    assert second.duplicate is True
    assert second.job.job_id == first.job.job_id


class BatchThatForgot:
    """Batch lists a job for about 7 days; a tick redriven from the DLQ later finds no job by name."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def list_jobs(self, **_request: Any) -> dict[str, Any]:
        return {"jobSummaryList": []}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_a_tick_redriven_after_batch_forgot_its_job_is_still_submitted_once(moto_batch, lambda_context):
    # Given a tick that was submitted
    tick = parse_tick(load_event("schedule/scheduler-tick.json"))
    settings = settings_module.load(ScheduleSubmitSettings)
    first = submit_tick(tick, settings, lambda_context)

    # When it is delivered again after Batch stopped listing the job (only the idempotency record knows)
    clients.use_client("batch", BatchThatForgot(boto3.client("batch")))
    again = submit_tick(tick, settings, lambda_context)

    # Then no second job is submitted
    assert len(moto_batch.jobs()) == 1
    assert again.duplicate is True
    assert again.job.job_id == first.job.job_id


def test_different_scheduled_times_submit_different_jobs(moto_batch, lambda_context):
    event = load_event("schedule/scheduler-tick.json")
    later = {**event, "scheduledTime": "2026-11-23T15:00:00Z"}

    submit_tick(parse_tick(event), settings_module.load(ScheduleSubmitSettings), lambda_context)
    submit_tick(parse_tick(later), settings_module.load(ScheduleSubmitSettings), lambda_context)

    assert len(moto_batch.jobs()) == 2


def test_concurrent_deliveries_submit_one_job(moto_batch, lambda_context):
    # Given DynamoDB as it behaves (atomic conditional writes) and one tick
    clients.use_client("dynamodb", AtomicClient(boto3.client("dynamodb")))
    reset_persistence()
    tick = parse_tick(load_event("schedule/scheduler-tick.json"))
    settings = settings_module.load(ScheduleSubmitSettings)

    def deliver(_: int) -> str:
        try:
            return submit_tick(tick, settings, lambda_context).job.job_id
        except IdempotencyAlreadyInProgressError:
            return "in-progress"  # Lambda retries this delivery later; it then finds the job.

    # When it is delivered eight times, four at once
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(deliver, range(8)))

    # Then one job, and every delivery that did not find it in progress answers with it
    assert len(moto_batch.jobs()) == 1
    assert {o for o in outcomes if o != "in-progress"} == {moto_batch.jobs()[0]["jobId"]}


def test_a_job_submitted_before_a_crash_is_adopted_not_resubmitted(moto_batch, lambda_context):
    """SubmitJob succeeded but the function died before the idempotency record was completed."""
    tick = parse_tick(load_event("schedule/scheduler-tick.json"))
    settings = settings_module.load(ScheduleSubmitSettings)
    submit_tick(tick, settings, lambda_context)
    import boto3

    boto3.client("dynamodb").delete_table(TableName=moto_batch.table_name)  # the record is lost
    create_id_table(moto_batch.table_name)

    retried = submit_tick(tick, settings, lambda_context)

    assert len(moto_batch.jobs()) == 1
    assert retried.duplicate is True
    assert find_job_by_name(settings.job_queue_arn, retried.job.job_name) is not None


def test_missing_configuration_is_reported_by_name(monkeypatch):
    monkeypatch.delenv("JOB_QUEUE_ARN", raising=False)
    monkeypatch.delenv("JOB_DEFINITION_ARN", raising=False)
    monkeypatch.setenv("IDEMPOTENCY_TABLE_NAME", "t")
    settings_module.reset()

    with pytest.raises(
        ConfigurationError, match=r"JOB_QUEUE_ARN.*JOB_DEFINITION_ARN|JOB_DEFINITION_ARN.*JOB_QUEUE_ARN"
    ):
        settings_module.load(ScheduleSubmitSettings)
    settings_module.reset()
