"""The schedule path: one job per (schedule, scheduled time), however often the tick is delivered.

Two event shapes are accepted: the Input template.yaml gives EventBridge Scheduler
(`{"scheduledTime", "scheduleArn", "parameters", "jobType"}`, placeholders filled in by Scheduler), and
the classic EventBridge "Scheduled Event" of a user's own `rate()`/`cron()` rule (`detail.jobType`). A tick
without a job type is the default job type's (the stack's own schedule).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, NamedTuple

from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_dispatch.aws.batch_jobs import JobSpec, safe_job_name
from batch_dispatch.job_types import DEFAULT, JobType, catalog_for, default_for
from batch_dispatch.observability import MetricUnit, logger, metrics
from batch_dispatch.settings import JobSubmitSettings
from batch_dispatch.submit.once import SubmitOutcome, submit_once

IDEMPOTENCY_PREFIX = "schedule-tick"
CLASSIC_DETAIL_TYPE = "Scheduled Event"


class InvalidScheduleEventError(ValueError):
    """The event is neither EventBridge Scheduler input nor a classic Scheduled Event."""


class UnknownJobTypeError(LookupError):
    """The tick names a job type this stack's catalog does not have (a schedule left behind?)."""


class ScheduleTick(NamedTuple):
    """One tick of one schedule, whichever shape delivered it."""

    schedule_arn: str
    scheduled_time: datetime  # UTC
    parameters: dict[str, Any]
    job_type: str = DEFAULT

    @property
    def schedule_name(self) -> str:
        return self.schedule_arn.rsplit("/", 1)[-1]

    @property
    def scheduled_time_iso(self) -> str:
        return self.scheduled_time.strftime("%Y-%m-%dT%H:%M:%SZ")

    @property
    def idempotency_key(self) -> dict[str, str]:
        key = {"scheduleArn": self.schedule_arn, "scheduledTime": self.scheduled_time_iso}
        return key if self.job_type == DEFAULT else key | {"jobType": self.job_type}


def parse_tick(event: Any) -> ScheduleTick:
    """Normalise either accepted event shape, or raise InvalidScheduleEventError saying what was expected."""
    if not isinstance(event, dict):
        raise InvalidScheduleEventError(f"expected a JSON object, got {type(event).__name__}")
    problems: list[str] = []
    if "detail-type" in event:
        if event.get("detail-type") != CLASSIC_DETAIL_TYPE:
            problems.append("detail-type")
        when = _time(event.get("time"), "time", problems)
        resources = event.get("resources")
        first = resources[0] if isinstance(resources, list) and resources else None
        if not _is_text(first):
            problems.append("resources")
        found = event.get("detail")
        detail: dict[str, Any] = found if isinstance(found, dict) else {}
        parameters = detail.get("parameters")
        job_type = _job_type(detail.get("jobType"), problems)
        if problems or when is None:
            raise _invalid(problems)
        return ScheduleTick(str(first), when, parameters if isinstance(parameters, dict) else {}, job_type)

    when = _time(event.get("scheduledTime"), "scheduledTime", problems)
    arn = event.get("scheduleArn")
    if not _is_text(arn):
        problems.append("scheduleArn")
    parameters = event.get("parameters")
    if parameters is None:
        parameters = {}
    elif not isinstance(parameters, dict):
        problems.append("parameters")
    job_type = _job_type(event.get("jobType"), problems)
    if problems or when is None:
        raise _invalid(problems)
    return ScheduleTick(str(arn), when, parameters, job_type)


def _job_type(value: Any, problems: list[str]) -> str:
    if value in (None, ""):
        return DEFAULT
    if not isinstance(value, str):
        problems.append("jobType")
        return DEFAULT
    return value


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _time(value: Any, name: str, problems: list[str]) -> datetime | None:
    """An ISO-8601 time as UTC (a time without offset is taken as UTC)."""
    if not _is_text(value):
        problems.append(name)
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        problems.append(name)
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _invalid(problems: list[str]) -> InvalidScheduleEventError:
    return InvalidScheduleEventError(
        "ScheduleSubmitFunction accepts EventBridge Scheduler input "
        '{"scheduledTime", "scheduleArn", "parameters"} or a "Scheduled Event"; '
        f"invalid or missing: {', '.join(sorted(set(problems)))}"
    )


def batch_parameters(parameters: dict[str, Any]) -> dict[str, str]:
    """Batch parameters are strings: scalars become their text, anything nested becomes JSON."""
    return {
        str(name): value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        for name, value in parameters.items()
    }


def tick_parameters(tick: ScheduleTick) -> dict[str, str]:
    """The job parameters a tick carries: its schedule's own (the Input's `parameters`), then its
    scheduled time and the schedule's name, which the schedule's parameters cannot override."""
    parameters = batch_parameters(tick.parameters)
    parameters.update(scheduledTime=tick.scheduled_time_iso, scheduleName=tick.schedule_name)
    return parameters


def tick_job_spec(tick: ScheduleTick, prefix: str) -> JobSpec:
    """The tick's job, with its parameters: named after the job type (`prefix`) and the time; the
    stack's own job type also names the schedule (a job type has one schedule, the stack may have
    several)."""
    stamp = tick.scheduled_time.strftime("%Y%m%dT%H%M%SZ")
    parameters = tick_parameters(tick)
    middle = f"{tick.schedule_name}-{stamp}" if tick.job_type == DEFAULT else stamp
    return JobSpec(
        job_name=safe_job_name(prefix, middle, f"{tick.schedule_arn}|{tick.scheduled_time_iso}"),
        parameters=parameters,
        tags={"batch-dispatch:trigger": "schedule", "batch-dispatch:job-type": tick.job_type},
    )


def job_type_of(tick: ScheduleTick, settings: JobSubmitSettings) -> JobType:
    """The tick's job type from the catalog, or UnknownJobTypeError saying what to do."""
    if tick.job_type == DEFAULT:  # the stack's own schedule: no registry read needed
        return default_for(settings)
    job_type = catalog_for(settings).get(tick.job_type)
    if job_type is None:
        raise UnknownJobTypeError(
            f"schedule {tick.schedule_name} names job type {tick.job_type!r}, which is not in this stack's "
            "catalog: deploy the job type again, or delete the schedule"
        )
    return job_type


def submit_tick(
    tick: ScheduleTick, settings: JobSubmitSettings, lambda_context: LambdaContext | None = None
) -> SubmitOutcome:
    """Submit the tick's job once. Ticks are rare, so every one also checks Batch for an earlier submit."""
    job_type = job_type_of(tick, settings)
    return submit_once(
        tick_job_spec(tick, job_type.job_name_prefix),
        job_type=job_type,
        table_name=settings.idempotency_table_name,
        key_prefix=IDEMPOTENCY_PREFIX,
        idempotency_key=tick.idempotency_key,
        lambda_context=lambda_context,
        reconcile=True,
    )


def handle(
    event: Any, settings: JobSubmitSettings, lambda_context: LambdaContext | None = None
) -> SubmitOutcome:
    """ScheduleSubmitFunction's one call. Raises InvalidScheduleEventError for an event of neither shape."""
    try:
        tick = parse_tick(event)
    except InvalidScheduleEventError:
        # Raised on purpose: Lambda's async retries end with the event parked in the schedule DLQ.
        logger.exception("Rejected schedule event")
        metrics.add_metric(name="RecordRejected", unit=MetricUnit.Count, value=1)
        raise
    logger.append_keys(
        schedule_arn=tick.schedule_arn, scheduled_time=tick.scheduled_time_iso, job_type=tick.job_type
    )
    return submit_tick(tick, settings, lambda_context)
