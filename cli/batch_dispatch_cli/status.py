"""`batch-dispatch status`: each job type's schedule, last runs and jobs in flight, then the DLQs.

Exit code 1 when something needs a person: a DLQ holds messages, a job type failed in the last 24 hours,
or a job type has not succeeded within its ExpectSuccessEvery: the watchdog's expectation
(batch_dispatch.expectations; `auto` is the schedule's longest gap plus a grace), so status calls a job
type late exactly when the watchdog alerts it.

Warnings do not change the exit code: two job types with the same upload route (Catalog.overlaps) are
a catalog to tidy, not a failure; routing still picks one of them, always the same.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import click

from batch_dispatch.job_types import Catalog, JobType
from batch_dispatch_cli.catalog import load_catalog
from batch_dispatch_cli.context import Operator, operator_command
from batch_dispatch_cli.errors import ATTENTION
from batch_dispatch_cli.jobs import Activity, activity, finished_at, job_type_jobs
from batch_dispatch_cli.output import duration, iso, when
from batch_dispatch_cli.schedules import StackSchedule, stack_schedules

FAILURE_WINDOW = timedelta(hours=24)


class JobTypeStatus(NamedTuple):
    job_type: JobType
    schedule: StackSchedule | None
    activity: Activity
    expected_every: timedelta | None
    attention: list[str]

    def as_json(self, now: datetime) -> dict[str, Any]:
        schedule = self.schedule
        return {
            "name": self.job_type.name,
            "schedule": None
            if schedule is None
            else {
                "expression": schedule.expression,
                "timezone": schedule.timezone,
                "enabled": schedule.enabled,
                "nextRun": iso(schedule.next_run(now)),
                "name": schedule.name,
            },
            "expectSuccessEverySeconds": int(self.expected_every.total_seconds())
            if self.expected_every
            else None,
            "lastSuccess": _job(self.activity.last_success),
            "lastFailure": _job(self.activity.last_failure),
            "running": self.activity.running,
            "runnable": self.activity.runnable,
            "failedLast24h": self.activity.failed_recently,
            "attention": self.attention,
        }


def _job(summary: dict[str, Any] | None) -> dict[str, Any] | None:
    if summary is None:
        return None
    return {"jobId": summary["jobId"], "jobName": summary.get("jobName"), "at": iso(finished_at(summary))}


def expected_interval(job_type: JobType, schedule: StackSchedule | None) -> timedelta | None:
    """How often the job type should succeed, its grace included; None: not checked (off, or `auto`
    without an enabled repeating schedule). The schedule as Scheduler holds it is the one `auto` follows."""
    if schedule is not None:
        job_type = job_type._replace(
            schedule_expression=schedule.expression,
            schedule_timezone=schedule.timezone,
            schedule_enabled=schedule.enabled,
        )
    seconds = job_type.expect_success_every_seconds
    return timedelta(seconds=seconds) if seconds else None


def lateness(
    job_type: JobType, schedule: StackSchedule | None, found: Activity, now: datetime
) -> tuple[timedelta | None, str | None]:
    interval = expected_interval(job_type, schedule)
    if interval is None:
        return interval, None
    last = finished_at(found.last_success) if found.last_success else None
    # never succeeded: count from when the schedule started (status keeps no watch of its own)
    since = last or (schedule.anchor if schedule else None)
    if since is None or now - since <= interval:
        return interval, None
    if last is None:
        return interval, f"{job_type.name}: no success since its schedule started ({when(since, now)})"
    gap, every = duration((now - last).total_seconds()), duration(interval.total_seconds())
    return interval, f"{job_type.name}: no success for {gap} (expected every {every})"


def job_type_status(
    job_type: JobType, schedule: StackSchedule | None, summaries: list[dict[str, Any]], now: datetime
) -> JobTypeStatus:
    found = activity(summaries, now, FAILURE_WINDOW)
    interval, late = lateness(job_type, schedule, found, now)
    attention = [late] if late else []
    if found.failed_recently:
        attention.append(f"{job_type.name}: {found.failed_recently} failed in the last 24 h")
    return JobTypeStatus(job_type, schedule, found, interval, attention)


def route_text(job_type: JobType, catalog: Catalog) -> str:
    """An upload route as a key pattern: `incoming/csv/*.csv` (`*` takes every key), in an attached
    bucket `s3://partner-drop/orders/*.csv`."""
    pattern = f"{job_type.route_prefix}*{job_type.route_suffix}"
    return f"s3://{job_type.bucket}/{pattern}" if catalog.names_bucket(job_type) else pattern


def overlap_warnings(catalog: Catalog) -> list[str]:
    """One line per pair of job types with the same upload route, naming the one routing starts for
    uploads that fit both: the catalog's routing between the two, in their bucket."""
    warnings = []
    for first, second in catalog.overlaps():
        one = catalog.job_types[first]
        between = catalog._replace(job_types={first: one, second: catalog.job_types[second]})
        bucket = one.bucket if catalog.names_bucket(one) else catalog.intake_bucket or None
        chosen = between.route(one.route_prefix + one.route_suffix, bucket)
        picks = f"; uploads that fit it start {chosen.name} only" if chosen else ""
        warnings.append(f"{first} and {second} have the same upload route {route_text(one, catalog)}{picks}")
    return warnings


def queue_depth(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes.get("ApproximateNumberOfMessages", 0)) + int(
        attributes.get("ApproximateNumberOfMessagesNotVisible", 0)
    )


@click.command()
@operator_command
def status(operator: Operator) -> int:
    """Each job type: schedule and next run, last success and failure, jobs running and waiting, failures
    in the last 24 h; then each dead-letter queue's depth. Exit code 1 when something needs attention."""
    stack, out, now = operator.stack, operator.output, datetime.now(UTC)
    with operator.aws.lent_to_layer():
        catalog = load_catalog(stack)
    schedules = stack_schedules(operator.aws.client("scheduler"), stack.output("ScheduleSubmitFunctionName"))
    batch = operator.aws.client("batch")
    rows: list[JobTypeStatus] = []
    for name in sorted(catalog.job_types, key=lambda n: (n != "default", n)):
        job_type = catalog.job_types[name]
        found = schedules.get(name)
        schedule = found.with_registry(job_type) if found else None
        rows.append(
            job_type_status(job_type, schedule, job_type_jobs(batch, stack.job_queue_arns, job_type), now)
        )
    sqs = operator.aws.client("sqs")
    depths = {name: queue_depth(sqs, url) for name, url in stack.dead_letter_queues.items()}
    attention = [reason for row in rows for reason in row.attention]
    attention += [f"{name}: {depth} message(s) parked" for name, depth in depths.items() if depth]
    warnings = overlap_warnings(catalog)

    out.document(
        {
            "stack": stack.name,
            "region": stack.region,
            "checkedAt": iso(now),
            "jobTypes": [row.as_json(now) for row in rows],
            "deadLetterQueues": [
                {"name": name, "url": stack.dead_letter_queues[name], "messages": depth}
                for name, depth in depths.items()
            ],
            "attention": attention,
            "warnings": warnings,
        }
    )
    out.line(f"batch-dispatch stack {stack.name} ({stack.region}) at {now:%Y-%m-%d %H:%M} (all times UTC)")
    out.table(
        "Job types",
        (
            "job type",
            "schedule",
            "next run",
            "last success",
            "last failure",
            "running",
            "runnable",
            "failed 24h",
        ),
        [_row(row, now) for row in rows],
    )
    out.table(
        "Dead-letter queues", ("queue", "messages"), [(name, str(depth)) for name, depth in depths.items()]
    )
    if warnings:
        out.line("Warnings:", style="bold yellow")
        for warning in warnings:
            out.line(f"  - {warning}", style="yellow")
    if attention:
        out.line("Needs attention:", style="bold red")
        for reason in attention:
            out.line(f"  - {reason}", style="red")
        return ATTENTION
    out.line("Nothing needs attention (see the warnings)." if warnings else "All clear.", style="green")
    return 0


def _row(row: JobTypeStatus, now: datetime) -> tuple[str, ...]:
    schedule = row.schedule
    if schedule is None:
        described, next_run = "-", "-"
    else:
        described = schedule.expression + ("" if schedule.timezone == "UTC" else f" {schedule.timezone}")
        described += "" if schedule.enabled else " (disabled)"
        next_run = when(schedule.next_run(now), now)
    found = row.activity
    return (
        row.job_type.name,
        described,
        next_run,
        when(finished_at(found.last_success), now) if found.last_success else "never",
        when(finished_at(found.last_failure), now) if found.last_failure else "-",
        str(found.running),
        str(found.runnable),
        str(found.failed_recently),
    )
