"""The stack's schedules as EventBridge Scheduler holds them.

A schedule belongs to the stack when its target is the stack's ScheduleSubmitFunction; the job type is
the `jobType` of its Input (none: the default job type). Scheduler knows what the registry does not:
the schedule's ARN (part of every tick's idempotency key), when it started counting (rate schedules
tick from there), and the parameters each tick carries.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from batch_dispatch.job_types import DEFAULT, JobType
from batch_dispatch.schedule_times import Schedule, UnsupportedExpressionError
from batch_dispatch.submit.on_demand import ScheduleInput
from batch_dispatch_cli.errors import OperatorError
from batch_dispatch_cli.stack import DeployedStack


class StackSchedule(NamedTuple):
    job_type: str
    name: str
    arn: str
    expression: str
    timezone: str = "UTC"
    enabled: bool = True
    anchor: datetime | None = None  # StartDate, else CreationDate: where rate() ticks count from
    parameters: dict[str, Any] = {}  # noqa: RUF012 - NamedTuple default, never mutated

    @property
    def times(self) -> Schedule:
        return Schedule(self.expression, self.timezone)

    def next_run(self, now: datetime) -> datetime | None:
        if not self.enabled:
            return None
        try:
            return self.times.next_after(now, self.anchor)
        except UnsupportedExpressionError:
            return None

    def period(self) -> timedelta | None:
        try:
            return self.times.period()
        except UnsupportedExpressionError:
            return None

    @property
    def input(self) -> ScheduleInput:
        """What each tick sends besides its time, for a run on demand to send the same."""
        return ScheduleInput(self.arn, self.parameters)

    def with_registry(self, job_type: JobType) -> StackSchedule:
        """The registry entry's expression, time zone and state where it carries them."""
        if not job_type.schedule_expression:
            return self
        return self._replace(
            expression=job_type.schedule_expression,
            timezone=job_type.schedule_timezone or self.timezone,
            enabled=job_type.schedule_enabled,
        )


def targets_function(target_arn: str, function_name: str) -> bool:
    """`arn:...:function:NAME` or `...:function:NAME:qualifier` (or a bare name) is NAME."""
    name = target_arn.split(":function:", 1)[-1].split(":", 1)[0]
    return bool(function_name) and name == function_name.rsplit(":", 1)[-1]


def stack_schedules(scheduler: Any, function_name: str) -> dict[str, StackSchedule]:
    """job type -> its schedule, for every schedule whose target is `function_name`."""
    found: dict[str, StackSchedule] = {}
    for page in scheduler.get_paginator("list_schedules").paginate():
        for summary in page.get("Schedules", []):
            if not targets_function(str(summary.get("Target", {}).get("Arn", "")), function_name):
                continue
            schedule = scheduler.get_schedule(
                Name=summary["Name"], GroupName=summary.get("GroupName", "default")
            )
            stack_schedule = from_get_schedule(schedule)
            found.setdefault(stack_schedule.job_type, stack_schedule)
    return found


def job_type_schedule(scheduler: Any, stack: DeployedStack, job_type: JobType) -> StackSchedule | None:
    """The job type's schedule in Scheduler, with the registry's expression where the entry carries it;
    None when the job type has no schedule. A schedule the registry (or, for the default job type, the
    stack's ScheduleExpression) declares but Scheduler does not hold is an OperatorError."""
    found = stack_schedules(scheduler, stack.output("ScheduleSubmitFunctionName"))
    schedule = found.get(job_type.name)
    if schedule is not None:
        return schedule.with_registry(job_type)
    declared = job_type.schedule_expression or (
        stack.parameters.get("ScheduleExpression", "") if job_type.is_default else ""
    )
    if declared:
        raise OperatorError(
            f"{job_type.name} declares schedule {declared}, but no Scheduler schedule targets "
            f"{stack.name}'s ScheduleSubmitFunction for it: deploy the stack again"
        )
    return None


def from_get_schedule(schedule: dict[str, Any]) -> StackSchedule:
    target = schedule.get("Target", {})
    try:
        document = json.loads(target.get("Input") or "{}")
    except ValueError:
        document = {}
    document = document if isinstance(document, dict) else {}
    parameters = document.get("parameters")
    anchor = schedule.get("StartDate") or schedule.get("CreationDate")
    return StackSchedule(
        job_type=str(document.get("jobType") or DEFAULT),
        name=str(schedule["Name"]),
        arn=str(schedule["Arn"]),
        expression=str(schedule.get("ScheduleExpression", "")),
        timezone=str(schedule.get("ScheduleExpressionTimezone") or "UTC"),
        enabled=schedule.get("State", "ENABLED") == "ENABLED",
        anchor=_instant(anchor),
        parameters=parameters if isinstance(parameters, dict) else {},
    )


def _instant(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).replace(microsecond=0)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).replace(microsecond=0)
    return None
