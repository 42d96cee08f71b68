"""The on-demand path: a job of a job type submitted now by a person (`batch-dispatch run`), not a tick.

It takes the schedule's path: the job type's definition and queue from the catalog, a job name that
starts with the job type's prefix and derives from the request's key, the shared idempotency table
through `submit_once` (with the same look-up of an earlier submit by name). A request with an
idempotency key submits once however often it is repeated; a request without one gets a fresh key,
so each is a new job.

Its parameters are those the job type's schedule would send (`ScheduleInput`): the schedule's own
parameters (ScheduleParameters), `scheduledTime` (the time of the request) and `scheduleName`, exactly
as a tick builds them; then the request's parameters over them. A job type without a schedule gets the
request's parameters only, and Batch fills in the rest from its job definition's defaults.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from batch_dispatch.aws.batch_jobs import JobSpec, safe_job_name
from batch_dispatch.job_types import JobType
from batch_dispatch.submit.once import SubmitOutcome, submit_once
from batch_dispatch.submit.schedule import ScheduleTick, batch_parameters, tick_parameters

IDEMPOTENCY_PREFIX = "on-demand"
TRIGGER = "on-demand"


def new_request_key() -> str:
    """A key no other request has: a request without one of its own is a new job."""
    return uuid.uuid4().hex


def request_idempotency_key(job_type: JobType, request_key: str) -> dict[str, str]:
    """What the idempotency record is keyed on: the same key names a different request per job type."""
    return {"jobType": job_type.name, "requestKey": request_key}


class ScheduleInput(NamedTuple):
    """What the job type's schedule sends besides its time: its ARN (whose last part is the
    `scheduleName` parameter) and the `parameters` of its Input."""

    schedule_arn: str
    parameters: Mapping[str, Any]


def on_demand_parameters(
    job_type: JobType,
    parameters: Mapping[str, Any],
    requested_at: datetime,
    schedule: ScheduleInput | None = None,
) -> dict[str, str]:
    """The request's job parameters as Batch strings: a tick of `schedule` at `requested_at`, then
    `parameters` over it; without a schedule, `parameters` alone."""
    values: dict[str, str] = {}
    if schedule is not None:
        tick = ScheduleTick(
            schedule.schedule_arn, requested_at.astimezone(UTC), dict(schedule.parameters), job_type.name
        )
        values.update(tick_parameters(tick))
    values.update(batch_parameters(dict(parameters)))
    return values


def on_demand_job_spec(
    job_type: JobType,
    parameters: Mapping[str, Any],
    request_key: str,
    requested_at: datetime,
    schedule: ScheduleInput | None = None,
) -> JobSpec:
    """The request's job: `<job type prefix>-run-<key>-<hash>`, with `on_demand_parameters`."""
    values = on_demand_parameters(job_type, parameters, requested_at, schedule)
    return JobSpec(
        job_name=safe_job_name(
            job_type.job_name_prefix, f"run-{request_key}", f"{TRIGGER}|{job_type.name}|{request_key}"
        ),
        parameters=values,
        tags={"batch-dispatch:trigger": TRIGGER, "batch-dispatch:job-type": job_type.name},
    )


def submit_on_demand(
    job_type: JobType,
    *,
    table_name: str,
    parameters: Mapping[str, Any] | None = None,
    request_key: str | None = None,
    requested_at: datetime | None = None,
    schedule: ScheduleInput | None = None,
) -> SubmitOutcome:
    """Submit one job of `job_type` now, once per `request_key` (None: a new key, so a new job), with
    what `schedule` (the job type's, if it has one) would send and `parameters` over it. A repeated key
    returns the first request's job with `duplicate=True`."""
    key = request_key or new_request_key()
    when = requested_at or datetime.now(UTC)
    spec = on_demand_job_spec(job_type, parameters or {}, key, when, schedule)
    return submit_once(
        spec,
        job_type=job_type,
        table_name=table_name,
        key_prefix=IDEMPOTENCY_PREFIX,
        idempotency_key=request_idempotency_key(job_type, key),
        reconcile=True,
    )
