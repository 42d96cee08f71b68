"""The watchdog's Slack messages: a job type late and recovered, a job still running, a missed tick.

Each leads with the job type, says what was expected and what happened, and ends with what to do (a
console link, or the exact `batch-dispatch backfill` command that catches a missed tick up).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple

from batch_dispatch.alerts.watchdog.job_history import JobSeen
from batch_dispatch.aws.console_links import batch_job_url
from batch_dispatch.slack.blocks import (
    code_safe,
    context,
    header,
    link_buttons,
    mention_lead,
    message,
    section,
    slack_text,
)


class Where(NamedTuple):
    """Which stack spoke: shown small under every message, as the failure alerts show it."""

    environment: str
    region: str

    def line(self) -> str:
        return " · ".join(part for part in ("batch-dispatch", self.environment, self.region) if part)


def when(moment: datetime | None) -> str:
    """`2026-12-04 02:14 UTC` (minutes are the resolution anyone acts on)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "unknown"


def span(seconds: float) -> str:
    """`4h`, `1d 1h`, `25m`, `2h 5m`: the non-zero parts, seconds only under an hour."""
    total = int(seconds)
    if total >= 3600:
        total -= total % 60
    parts = [
        (total // 86400, "d"),
        (total % 86400 // 3600, "h"),
        (total % 3600 // 60, "m"),
        (total % 60, "s"),
    ]
    return " ".join(f"{n}{unit}" for n, unit in parts if n) or "0s"


def iso(moment: datetime) -> str:
    """`2026-12-04T02:00:00Z`, as `batch-dispatch` and Scheduler write times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _job(job: JobSeen) -> str:
    return f"{slack_text(job.job_name or job.job_id, 200)} (`{code_safe(slack_text(job.job_id, 100))}`)"


class LateFacts(NamedTuple):
    job_type: str
    every_seconds: int
    since: datetime  # the last success, or the start of the watch when there was none
    checked_at: datetime
    last_success: str = ""  # the job id of the last success ("" = none seen)
    last_failure: JobSeen | None = None
    running: tuple[JobSeen, ...] = ()
    next_run: str = ""  # already worded: "2026-12-04 08:00 UTC", "about ...", "none (schedule disabled)"


def late_message(facts: LateFacts, where: Where, mention: str = "") -> dict[str, Any]:
    every = span(facts.every_seconds)
    without = facts.checked_at - facts.since
    name = slack_text(facts.job_type, 80)
    since = (
        f"no success since {when(facts.since)}"
        if facts.last_success
        else f"no success since the watch began at {when(facts.since)}"
    )
    lines = [f"{mention_lead(mention)}:hourglass: *{name}*: {since} (expected every {every})."]
    failure = facts.last_failure
    if failure is not None:
        reason = slack_text(failure.reason or "no reason given", 500)
        lines.append(f"Last failure: {_job(failure)} at {when(failure.stopped_at)}: {reason}.")
    else:
        lines.append("Last failure: none seen.")
    for job in facts.running[:3]:
        lines.append(f"Running now: {_job(job)} since {when(job.started_at)}.")
    if facts.next_run:
        lines.append(f"Next run: {facts.next_run}.")
    links = (
        [(f"Last failure {failure.job_id[:8]}", batch_job_url(where.region, failure.job_id))]
        if failure
        else []
    )
    blocks = [
        header(f"{facts.job_type}: no success for {span(without.total_seconds())}"),
        section("\n".join(lines)),
        *([link_buttons(links)] if links else []),
        context(slack_text(where.line(), 300)),
    ]
    fallback = f"{facts.job_type}: {since} (expected every {every})"
    return message(fallback, blocks)


def recovered_message(
    job_type: str, late_since: datetime, success: JobSeen | None, where: Where, mention: str = ""
) -> dict[str, Any]:
    name = slack_text(job_type, 80)
    if success is not None and success.stopped_at is not None:
        gap = span((success.stopped_at - late_since).total_seconds())
        what = f"{_job(success)} succeeded at {when(success.stopped_at)} (no success for {gap} before it)"
    else:
        what = "a job succeeded"
    text = f"{mention_lead(mention)}:white_check_mark: *{name}* recovered: {what}."
    blocks = [header(f"{job_type}: recovered"), section(text), context(slack_text(where.line(), 300))]
    if success is not None:
        blocks.insert(
            2, link_buttons([("Open job in Batch console", batch_job_url(where.region, success.job_id))])
        )
    return message(f"{job_type} recovered: {what}", blocks)


def long_running_message(
    job_type: str, job: JobSeen, ran_seconds: float, expected_seconds: int, where: Where, mention: str = ""
) -> dict[str, Any]:
    ran, expected = span(ran_seconds), span(expected_seconds)
    text = (
        f"{mention_lead(mention)}:snail: *{slack_text(job_type, 80)}*: job {_job(job)} still running after "
        f"{ran} (expected at most {expected}). Started at {when(job.started_at)}."
    )
    blocks = [
        header(f"{job_type}: still running after {ran}"),
        section(text),
        link_buttons([("Open job in Batch console", batch_job_url(where.region, job.job_id))]),
        context(slack_text(where.line(), 300)),
    ]
    return message(f"{job_type}: {job.job_name or job.job_id} still running after {ran}", blocks)


class MissedFacts(NamedTuple):
    job_type: str
    schedule_name: str
    scheduled_time: datetime
    why: str  # what failed, e.g. "Scheduler could not invoke ScheduleSubmitFunction (...) after 20 retries"
    backfill_to: datetime


def backfill_command(job_type: str, start: datetime, end: datetime) -> str:
    return f"batch-dispatch backfill {job_type} --from {iso(start)} --to {iso(end)}"


def missed_tick_message(facts: MissedFacts, where: Where, mention: str = "") -> dict[str, Any]:
    command = backfill_command(facts.job_type, facts.scheduled_time, facts.backfill_to)
    text = (
        f"{mention_lead(mention)}:calendar: *{slack_text(facts.job_type, 80)}*: the tick of schedule "
        f"*{slack_text(facts.schedule_name, 200)}* at {when(facts.scheduled_time)} submitted no job: "
        f"{slack_text(facts.why, 600)}.\n"
        f"Catch up: `{code_safe(slack_text(command, 400))}` (ticks that already ran are skipped).\n"
        "The tick stays in ScheduleDLQ until it is redriven (`batch-dispatch dlq redrive --queue "
        "ScheduleDLQ`, which submits nothing twice) or deleted."
    )
    blocks = [
        header(f"{facts.job_type}: missed run at {when(facts.scheduled_time)}"),
        section(text),
        context(slack_text(where.line(), 300)),
    ]
    return message(
        f"{facts.job_type}: missed run at {when(facts.scheduled_time)}. Catch up: {command}", blocks
    )
