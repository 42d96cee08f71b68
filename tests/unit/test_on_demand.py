"""The on-demand path (`batch-dispatch run`): the schedule's naming and queue, once per request key."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from batch_dispatch.job_types import JobType, default_job_type
from batch_dispatch.submit.on_demand import (
    ScheduleInput,
    on_demand_job_spec,
    on_demand_parameters,
    submit_on_demand,
)
from batch_dispatch.submit.schedule import ScheduleTick, tick_job_spec

VALID_JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
REQUESTED_AT = datetime(2026, 11, 23, 12, 30, tzinfo=UTC)
NIGHTLY_SCHEDULE = ScheduleInput(
    "arn:aws:scheduler:us-east-1:123456789012:schedule/default/nightly-report-schedule",
    {"report": "daily-sales", "days": 1},
)


def job_type_of(moto_batch) -> JobType:
    return default_job_type(
        job_definition_arn=moto_batch.job_definition_arn,
        job_queue_arn=moto_batch.job_queue_arn,
        job_name_prefix="batch-dispatch-test",
    )._replace(name="nightly-report", job_name_prefix="nightly-report", environment={"MODE": "full"})


def test_the_job_is_named_after_the_job_type_and_the_key_with_string_parameters():
    job_type = default_job_type(job_definition_arn="arn:d", job_queue_arn="arn:q", job_name_prefix="nightly")

    spec = on_demand_job_spec(job_type, {"day": "2026-11-22", "limit": 5}, "catch-up 22nd", REQUESTED_AT)

    assert VALID_JOB_NAME.match(spec.job_name)
    assert spec.job_name.startswith("nightly-run-catch-up-22nd-")
    # No schedule: the request's parameters only (Batch takes the rest from the job definition)
    assert spec.parameters == {"day": "2026-11-22", "limit": "5"}
    assert spec.tags["batch-dispatch:trigger"] == "on-demand"


def test_a_scheduled_job_type_gets_what_its_schedule_sends_at_the_request_time():
    job_type = default_job_type(job_definition_arn="arn:d", job_queue_arn="arn:q", job_name_prefix="nightly")

    spec = on_demand_job_spec(job_type, {}, "k", REQUESTED_AT, NIGHTLY_SCHEDULE)

    tick = ScheduleTick(NIGHTLY_SCHEDULE.schedule_arn, REQUESTED_AT, {"report": "daily-sales", "days": 1})
    assert spec.parameters == tick_job_spec(tick, "nightly").parameters
    assert spec.parameters == {
        "report": "daily-sales",
        "days": "1",
        "scheduledTime": "2026-11-23T12:30:00Z",
        "scheduleName": "nightly-report-schedule",
    }


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"report": "weekly"}, {"report": "weekly", "days": "1"}),
        ({"scheduledTime": "2026-11-20T02:00:00Z"}, {"scheduledTime": "2026-11-20T02:00:00Z"}),
        ({"scheduleName": "by-hand"}, {"scheduleName": "by-hand"}),
    ],
)
def test_the_requests_parameters_win_over_the_schedules(given, expected):
    job_type = default_job_type(job_definition_arn="arn:d", job_queue_arn="arn:q", job_name_prefix="nightly")

    parameters = on_demand_parameters(job_type, given, REQUESTED_AT, NIGHTLY_SCHEDULE)

    assert parameters.items() >= expected.items()
    assert set(parameters) == {"report", "days", "scheduledTime", "scheduleName"}


def test_a_request_submits_a_job_of_the_job_type_with_its_environment(moto_batch):
    outcome = submit_on_demand(
        job_type_of(moto_batch), table_name=moto_batch.table_name, parameters={"day": "22"}
    )

    (job,) = moto_batch.jobs()
    assert job["jobId"] == outcome.job.job_id
    assert job["jobName"].startswith("nightly-report-run-")
    assert job["jobDefinition"] == moto_batch.job_definition_arn
    assert job["parameters"]["day"] == "22"
    assert {"name": "MODE", "value": "full"} in job["container"]["environment"]
    assert outcome.duplicate is False


def test_the_same_request_key_twice_submits_one_job(moto_batch):
    job_type = job_type_of(moto_batch)

    first = submit_on_demand(job_type, table_name=moto_batch.table_name, request_key="ticket-42")
    second = submit_on_demand(job_type, table_name=moto_batch.table_name, request_key="ticket-42")

    assert len(moto_batch.jobs()) == 1
    assert second.duplicate is True
    assert second.job.job_id == first.job.job_id


def test_requests_without_a_key_are_new_jobs_each_time(moto_batch):
    job_type = job_type_of(moto_batch)

    submit_on_demand(job_type, table_name=moto_batch.table_name)
    submit_on_demand(job_type, table_name=moto_batch.table_name)

    assert len(moto_batch.jobs()) == 2


def test_one_key_names_a_different_request_per_job_type(moto_batch):
    nightly = job_type_of(moto_batch)
    other = nightly._replace(name="thumbnails", job_name_prefix="thumbnails")

    submit_on_demand(nightly, table_name=moto_batch.table_name, request_key="k")
    submit_on_demand(other, table_name=moto_batch.table_name, request_key="k")

    prefixes = sorted(job["jobName"].split("-run-")[0] for job in moto_batch.jobs())
    assert prefixes == ["nightly-report", "thumbnails"]
