"""The schedule path: one job per (schedule, scheduled time), however often the tick is delivered."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from batch_dispatch.batch import JobSpec, safe_job_name
from batch_dispatch.config import SubmitSettings
from batch_dispatch.submission import SubmitOutcome, submit_once

IDEMPOTENCY_PREFIX = "schedule-tick"


class InvalidScheduleEventError(ValueError):
    """The event is neither EventBridge Scheduler input nor a classic Scheduled Event."""


class SchedulerInput(BaseModel):
    """The Input template.yaml gives EventBridge Scheduler (placeholders filled in by Scheduler)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    scheduled_time: datetime = Field(alias="scheduledTime")
    schedule_arn: str = Field(alias="scheduleArn", min_length=1)
    parameters: dict[str, Any] = Field(default_factory=dict)

    @field_validator("parameters", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value


class ClassicScheduledEvent(BaseModel):
    """An EventBridge rule's "Scheduled Event" (a user's existing `rate()`/`cron()` rule)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    detail_type: str = Field(alias="detail-type", pattern="^Scheduled Event$")
    time: datetime
    resources: list[str] = Field(min_length=1)
    detail: dict[str, Any] = Field(default_factory=dict)


class ScheduleTick(BaseModel):
    """What the two event shapes have in common."""

    model_config = ConfigDict(frozen=True)

    schedule_arn: str
    scheduled_time: datetime
    parameters: dict[str, Any]

    @property
    def schedule_name(self) -> str:
        return self.schedule_arn.rsplit("/", 1)[-1]

    @property
    def scheduled_time_iso(self) -> str:
        return self.scheduled_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_tick(event: Any) -> ScheduleTick:
    """Normalise either accepted event shape, or raise InvalidScheduleEventError saying what was expected."""
    if not isinstance(event, dict):
        raise InvalidScheduleEventError(f"expected a JSON object, got {type(event).__name__}")
    try:
        if "detail-type" in event:
            classic = ClassicScheduledEvent.model_validate(event)
            params = classic.detail.get("parameters") if isinstance(classic.detail, dict) else None
            return ScheduleTick(
                schedule_arn=classic.resources[0],
                scheduled_time=_as_utc(classic.time),
                parameters=params if isinstance(params, dict) else {},
            )
        scheduler = SchedulerInput.model_validate(event)
    except ValidationError as exc:
        fields = ", ".join(sorted({".".join(str(p) for p in e["loc"]) or "event" for e in exc.errors()}))
        raise InvalidScheduleEventError(
            "ScheduleSubmitFunction accepts EventBridge Scheduler input "
            '{"scheduledTime", "scheduleArn", "parameters"} or a "Scheduled Event"; '
            f"invalid or missing: {fields}"
        ) from None
    return ScheduleTick(
        schedule_arn=scheduler.schedule_arn,
        scheduled_time=_as_utc(scheduler.scheduled_time),
        parameters=scheduler.parameters,
    )


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def batch_parameters(parameters: dict[str, Any]) -> dict[str, str]:
    """Batch parameters are strings: scalars become their text, anything nested becomes JSON."""
    return {
        str(name): value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        for name, value in parameters.items()
    }


def job_spec_for(tick: ScheduleTick, prefix: str) -> JobSpec:
    stamp = tick.scheduled_time.strftime("%Y%m%dT%H%M%SZ")
    parameters = batch_parameters(tick.parameters)
    parameters.update(scheduledTime=tick.scheduled_time_iso, scheduleName=tick.schedule_name)
    return JobSpec(
        job_name=safe_job_name(
            prefix, f"{tick.schedule_name}-{stamp}", f"{tick.schedule_arn}|{tick.scheduled_time_iso}"
        ),
        parameters=parameters,
        tags={"batch-dispatch:trigger": "schedule"},
    )


def submit_scheduled_job(
    tick: ScheduleTick, settings: SubmitSettings, lambda_context: LambdaContext | None = None
) -> SubmitOutcome:
    """Submit the tick's job once. Ticks are rare, so every one also checks Batch for an earlier submit."""
    return submit_once(
        job_spec_for(tick, settings.job_name_prefix),
        key_prefix=IDEMPOTENCY_PREFIX,
        idempotency_key={"scheduleArn": tick.schedule_arn, "scheduledTime": tick.scheduled_time_iso},
        settings=settings,
        lambda_context=lambda_context,
        reconcile=True,
    )
