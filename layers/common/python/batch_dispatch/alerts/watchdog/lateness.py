"""Lateness: a job type whose last success is older than its ExpectSuccessEvery is late.

One lateness episode per gap between successes: the first check that finds the type late opens the
episode (a conditional write: at most one run wins) and posts "no success since ...", later checks of the
same episode post nothing, and the first check after a new success posts "recovered" and closes it. The
episode is named after the success it follows, so a later gap is a new episode with its own alert. A type
that never succeeded is measured from the first check that watched it.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_dispatch.alerts.channels import channel_of
from batch_dispatch.alerts.watchdog.job_history import JobHistory
from batch_dispatch.alerts.watchdog.messages import (
    LateFacts,
    Where,
    late_message,
    recovered_message,
    span,
    when,
)
from batch_dispatch.alerts.watchdog.post_finding import post_finding
from batch_dispatch.alerts.watchdog.state import LatenessState, WatchStore
from batch_dispatch.job_types import JobType
from batch_dispatch.observability import MetricUnit, logger, metrics
from batch_dispatch.schedule_times import Schedule, UnsupportedExpressionError
from batch_dispatch.settings import WatchdogSettings
from batch_dispatch.slack.post_once import post_once

LATE_PREFIX = "late-run"
RECOVERED_PREFIX = "late-run-recovered"
MIN_MEMORY = timedelta(days=30)

OFF, ON_TIME, LATE, ALERTED, RECOVERED = "off", "on-time", "late", "late-alerted", "recovered"


def check_lateness(
    job_type: JobType,
    history: JobHistory,
    store: WatchStore,
    settings: WatchdogSettings,
    lambda_context: LambdaContext | None = None,
) -> str:
    """Post what the job type's lateness calls for, once. Returns what it found (OFF, ON_TIME, ...)."""
    every = job_type.expect_success_every_seconds
    if not every:
        return OFF
    now = history.now
    state = store.watch(job_type.name, now, now + max(MIN_MEMORY, timedelta(seconds=3 * every)))
    seen = history.last_success(job_type)
    if (
        seen is not None
        and seen.stopped_at
        and (not state.last_success_at or seen.stopped_at > state.last_success_at)
    ):
        store.note_success(job_type.name, seen.stopped_at, seen.job_id)
        state = state._replace(last_success_at=seen.stopped_at, last_success_job=seen.job_id)
    since = state.last_success_at or state.watch_since
    episode = f"{job_type.name}#{int(since.timestamp())}"
    late = now - since > timedelta(seconds=every)

    recovered = bool(state.episode) and (state.episode != episode or not late)
    if recovered:  # a success ended the open episode
        _recover(job_type, state, history, store, settings, lambda_context)
        state = state._replace(episode="", episode_alerted=False)
    if not late:
        return RECOVERED if recovered else ON_TIME

    if not state.episode and not store.open_episode(job_type.name, episode, since):
        return LATE  # another run opened it: that run posts
    if state.episode_alerted:
        return LATE
    facts = LateFacts(
        job_type=job_type.name,
        every_seconds=every,
        since=since,
        checked_at=now,
        last_success=state.last_success_job,
        last_failure=history.last_failure(job_type),
        running=tuple(history.running(job_type)),
        next_run=next_run(job_type, history),
    )
    channel = channel_of(job_type, settings.slack_mention)
    post_finding(
        LATE_PREFIX,
        episode,
        late_message(facts, _where(settings), channel.mention),
        channel,
        settings,
        lambda_context,
        mark_alerted=partial(store.mark_episode_alerted, job_type.name, episode),
        metric="LateRunNotified",
        log_message="Job type late",
        log_extra={"job_type": job_type.name, "since": when(since), "expected_every": span(every)},
    )
    return ALERTED


def _recover(
    job_type: JobType,
    state: LatenessState,
    history: JobHistory,
    store: WatchStore,
    settings: WatchdogSettings,
    lambda_context: LambdaContext | None,
) -> None:
    """Say the job type recovered (only if its lateness was said), then close the episode."""
    if state.episode_alerted:
        channel = channel_of(job_type, settings.slack_mention)
        text = recovered_message(
            job_type.name,
            state.episode_since or history.now,
            history.last_success(job_type),
            _where(settings),
            channel.mention,
        )
        post_once(
            RECOVERED_PREFIX,
            state.episode,
            text,
            settings,
            lambda_context,
            secret_name=channel.secret_name or None,
        )
        metrics.add_metric(name="LateRunRecovered", unit=MetricUnit.Count, value=1)
    store.close_episode(job_type.name, state.episode)
    logger.info("Job type recovered", extra={"job_type": job_type.name, "episode": state.episode})


def next_run(job_type: JobType, history: JobHistory) -> str:
    """When the job type's schedule fires next, in words ("" for a type without a schedule)."""
    if not job_type.schedule_expression:
        return ""
    if not job_type.schedule_enabled:
        return "none (the schedule is disabled)"
    schedule = Schedule(job_type.schedule_expression, job_type.schedule_timezone)
    now = history.now
    try:
        upcoming = schedule.next_after(now)
        return when(upcoming) if upcoming else "none (the schedule has no later run)"
    except UnsupportedExpressionError:
        pass  # rate() counts from the schedule's creation, which only Scheduler knows
    try:
        period = schedule.period()
    except (UnsupportedExpressionError, ValueError):
        period = None
    newest = history.newest(job_type)
    if period and newest is not None and newest.created_at is not None:
        # Its newest job was submitted on a tick (near enough): the ticks go on from there.
        steps = (now - newest.created_at) // period + 1
        return f"about {when(newest.created_at + steps * period)}"
    return f"within {span(period.total_seconds())}" if period else job_type.schedule_expression


def _where(settings: WatchdogSettings) -> Where:
    return Where(settings.environment, settings.aws_region)
