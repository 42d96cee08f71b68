"""`batch-dispatch backfill JOB_TYPE --from T1 --to T2`: the ticks the job type's schedule would have made
in [T1, T2), each submitted through the schedule's own path (batch_dispatch.submit.schedule.submit_tick)
with the tick's idempotency key (schedule ARN + scheduled time), so a tick that already ran is skipped."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from batch_dispatch.aws.batch_jobs import find_job_by_name
from batch_dispatch.job_types import JobType
from batch_dispatch.schedule_times import UnsupportedExpressionError
from batch_dispatch.submit.schedule import ScheduleTick, submit_tick, tick_job_spec
from batch_dispatch_cli.aws import discard_metrics
from batch_dispatch_cli.catalog import job_type_named, load_catalog, submit_settings
from batch_dispatch_cli.context import Operator, operator_command
from batch_dispatch_cli.errors import OperatorError
from batch_dispatch_cli.output import iso
from batch_dispatch_cli.schedules import StackSchedule, job_type_schedule
from batch_dispatch_cli.stack import DeployedStack
from batch_dispatch_cli.timeparse import InvalidInputError, TimeRange, parse_range

MAX_TICKS = 1000  # more needs --yes: a typo in a range should not submit a year of jobs


def schedule_of(operator: Operator, stack: DeployedStack, job_type: JobType) -> StackSchedule:
    """The job type's schedule in Scheduler, with the registry's expression where the entry carries it."""
    schedule = job_type_schedule(operator.aws.client("scheduler"), stack, job_type)
    if schedule is None:
        raise OperatorError(
            f"{job_type.name} has no schedule: use `batch-dispatch run {job_type.name}` instead"
        )
    return schedule


def ticks_in(schedule: StackSchedule, window: TimeRange) -> list[datetime]:
    try:
        ticks = schedule.times.ticks(window.start, window.end, schedule.anchor)
    except UnsupportedExpressionError as error:
        raise OperatorError(f"cannot list the ticks of {schedule.expression}: {error}") from None
    return [tick for tick in ticks if window.contains(tick)]


@click.command()
@click.argument("job_type")
@click.option(
    "--from", "start", required=True, metavar="TIME", help="First time, included (ISO 8601, -3d, now)."
)
@click.option("--to", "end", required=True, metavar="TIME", help="Last time, excluded (ISO 8601, -3d, now).")
@click.option("--dry-run", is_flag=True, help="List the ticks (and which already ran); submit nothing.")
@click.option("--yes", is_flag=True, help=f"Allow more than {MAX_TICKS} ticks.")
@operator_command
def backfill(operator: Operator, job_type: str, start: str, end: str, dry_run: bool, yes: bool) -> int:
    """Submit the ticks JOB_TYPE's schedule would have made in [--from, --to); ticks that already ran
    are skipped (the schedule's own idempotency keys)."""
    try:
        window = parse_range(start, end)
    except InvalidInputError as error:
        raise OperatorError(str(error)) from None
    stack, out = operator.stack, operator.output
    with operator.aws.lent_to_layer():
        chosen = job_type_named(load_catalog(stack), job_type, stack)
    schedule = schedule_of(operator, stack, chosen)
    ticks = ticks_in(schedule, window)
    if len(ticks) > MAX_TICKS and not yes:
        raise OperatorError(
            f"{len(ticks)} ticks of {schedule.expression} in that range, more than {MAX_TICKS}: "
            "narrow the range, or pass --yes"
        )
    settings = submit_settings(stack)
    results: list[dict[str, Any]] = []
    verb = "Checking" if dry_run else "Submitting"
    with operator.aws.lent_to_layer(), out.progress(f"{verb} {len(ticks)} ticks", len(ticks)) as advance:
        for moment in ticks:
            tick = ScheduleTick(schedule.arn, moment, dict(schedule.parameters), chosen.name)
            if dry_run:
                existing = find_job_by_name(
                    chosen.job_queue_arn, tick_job_spec(tick, chosen.job_name_prefix).job_name
                )
                outcome = "already-ran" if existing else "would-submit"
                # The same keys for every tick: null where no job exists yet.
                job = {
                    "jobId": existing.job_id if existing else None,
                    "jobName": existing.job_name if existing else None,
                }
            else:
                submitted = submit_tick(tick, settings)
                discard_metrics()
                outcome = "skipped" if submitted.duplicate else "submitted"
                job = {"jobId": submitted.job.job_id, "jobName": submitted.job.job_name}
            results.append({"scheduledTime": tick.scheduled_time_iso, "outcome": outcome, **job})
            advance(1)

    counts = {name: sum(1 for r in results if r["outcome"] == name) for name in _OUTCOMES[dry_run]}
    out.document(
        {
            "jobType": chosen.name,
            "schedule": {
                "name": schedule.name,
                "expression": schedule.expression,
                "timezone": schedule.timezone,
            },
            "from": iso(window.start),
            "to": iso(window.end),
            "dryRun": dry_run,
            "ticks": results,
            "counts": counts,
        }
    )
    out.table(
        f"{chosen.name}: {len(ticks)} tick(s) of {schedule.expression} "
        f"from {iso(window.start)} to {iso(window.end)}" + (" (dry run)" if dry_run else ""),
        ("scheduled time", "outcome", "job"),
        [(r["scheduledTime"], _LABELS[r["outcome"]], r["jobName"] or "") for r in results],
    )
    out.line(
        ", ".join(f"{count} {_LABELS[name]}" for name, count in counts.items()) if results else "No ticks."
    )
    return 0


_OUTCOMES = {True: ("would-submit", "already-ran"), False: ("submitted", "skipped")}
_LABELS = {
    "submitted": "submitted",
    "skipped": "skipped (already submitted)",
    "would-submit": "would submit",
    "already-ran": "already ran",
}
