"""Operations alerts: route each Batch event to the right Slack message, and render storm digests.

- FAILED job -> storm tracking decides: its own message (failure_alert, unchanged format and idempotency)
  or counted in the window's digest (storm.py); the first job past the threshold posts a "storm" notice.
- "Batch Job Queue Blocked", or a RUNNABLE job with a blocked statusReason -> one message per (queue,
  reason code) per quiet period (blocked.py).
- Storm window close / end check (StormDigestFunction) -> digest and "storm ended" messages.
Every Slack post goes through Powertools idempotency, so at-least-once delivery never posts twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_dispatch.blocked import (
    IDEMPOTENCY_PREFIX as BLOCKED_PREFIX,
)
from batch_dispatch.blocked import (
    build_blocked_message,
    is_blocked_event,
    log_blocked,
    summarize_blocked,
)
from batch_dispatch.failure_alert import (
    MAX_HEADER_TEXT,
    NotifyOutcome,
    NotifySettings,
    _code_safe,
    _context,
    _section,
    batch_console_url,
    cap_blocks,
    default_log_group,
    normalize_mention,
    notify_failure,
    parse_event,
    post_once,
    safe,
    skip_reason,
    summarize,
    truncate,
)
from batch_dispatch.observability import MetricUnit, logger, metrics, tracer
from batch_dispatch.storm import (
    DIGEST,
    FailedJob,
    Renderer,
    StormCloser,
    StormConfig,
    StormTracker,
    WindowReport,
    cause_of,
    iso,
    summarize_causes,
)

DIGEST_SAMPLES = 5


def storm_config(settings: NotifySettings) -> StormConfig:
    return StormConfig(
        table_name=settings.alert_state_table_name,
        queue_url=settings.storm_queue_url,
        threshold=settings.storm_threshold,
        window_seconds=settings.storm_window_seconds,
        grace_seconds=settings.storm_grace_seconds,
    )


# --------------------------------------------------------------------------------------------------------
# FailureNotifyFunction: one entry point for every event its rules deliver


@tracer.capture_method(capture_response=False)
def handle_batch_event(
    raw_event: Any, settings: NotifySettings, lambda_context: LambdaContext | None = None
) -> dict[str, Any]:
    if isinstance(raw_event, dict) and is_blocked_event(raw_event):
        return notify_blocked(raw_event, settings, lambda_context)
    return notify_failure_or_count(raw_event, settings, lambda_context).as_dict()


def notify_blocked(
    raw_event: dict[str, Any], settings: NotifySettings, lambda_context: LambdaContext | None = None
) -> dict[str, Any]:
    summary = summarize_blocked(
        raw_event, region=settings.aws_region, time_limit_seconds=settings.runnable_time_limit_seconds
    )
    message = build_blocked_message(summary, settings.slack_mention)
    posted = post_once(
        BLOCKED_PREFIX,
        f"{summary.queue_arn}#{summary.code}",
        message,
        settings,
        lambda_context,
        expires_after_seconds=settings.blocked_alert_quiet_seconds,
    )
    log_blocked(summary, duplicate=not posted)
    metrics.add_metric(
        name="QueueBlockedNotified" if posted else "DuplicateSkipped", unit=MetricUnit.Count, value=1
    )
    return {"blocked": True, "queue": summary.queue_name, "reasonCode": summary.code, "notified": posted}


def notify_failure_or_count(
    raw_event: Any, settings: NotifySettings, lambda_context: LambdaContext | None = None
) -> NotifyOutcome:
    """A FAILED job: its own message, or (in a storm, or an array child) counted in a digest."""
    event = parse_event(raw_event)
    if not settings.storm_enabled or skip_reason(event) is not None:
        return notify_failure(raw_event, settings, lambda_context)
    summary = summarize(
        event,
        default_region=settings.aws_region,
        default_log_group=default_log_group(settings, event.detail.job_definition),
    )
    job = FailedJob(
        job_id=event.detail.job_id or event.id or "(unknown job id)",
        job_name=summary.job_name,
        queue_arn=event.detail.job_queue or "",
        cause=cause_of(
            summary.exit_code, summary.attempt_reason, summary.status_reason, summary.cancelled_code
        ),
        log_url=summary.log_url,
    )
    verdict = StormTracker(storm_config(settings)).record_failure(job)
    logger.append_keys(job_id=job.job_id, storm_group=verdict.group, storm_rank=verdict.rank)
    if verdict.decision != DIGEST:
        return notify_failure(raw_event, settings, lambda_context)
    if verdict.starts_storm:
        notice = build_storm_notice(job.queue_arn, verdict.window, settings)
        post_once("storm-started", f"{verdict.group}#{verdict.window}", notice, settings, lambda_context)
    metrics.add_metric(name="FailureDigested", unit=MetricUnit.Count, value=1)
    logger.info("Failure counted in the storm digest", extra={"window": verdict.window})
    return NotifyOutcome(notified=False, job_id=job.job_id, reason=f"counted in digest ({verdict.group})")


# --------------------------------------------------------------------------------------------------------
# StormDigestFunction


def process_storm_message(
    body: str | Mapping[str, Any], settings: NotifySettings, lambda_context: LambdaContext | None = None
) -> dict[str, Any]:
    message = json.loads(body) if isinstance(body, str) else dict(body)
    renderer = SlackRenderer(settings)

    def post(key: str, slack_message: dict[str, Any]) -> bool:
        posted = post_once("storm", key, slack_message, settings, lambda_context)
        if posted:
            metrics.add_metric(name="StormDigestPosted", unit=MetricUnit.Count, value=1)
        return posted

    outcome = StormCloser(storm_config(settings)).handle(message, post, renderer)
    if outcome is None:
        return {"kind": message.get("kind"), "group": message.get("group")}
    return {
        "kind": "close",
        "group": outcome.report.group,
        "digested": len(outcome.report.digested),
        "individual": outcome.report.individual,
        "posted": outcome.posted,
    }


# --------------------------------------------------------------------------------------------------------
# Messages


def _queue_name(queue_arn: str) -> str:
    return queue_arn.rsplit("/", 1)[-1] if queue_arn else "unknown queue"


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": safe(text, MAX_HEADER_TEXT)}}


def _lead(settings: NotifySettings) -> str:
    mention = normalize_mention(settings.slack_mention)
    return f"{mention} " if mention else ""


def build_storm_notice(queue_arn: str, window: int, settings: NotifySettings) -> dict[str, Any]:
    queue = safe(_queue_name(queue_arn), 200)
    closes = iso(window + (settings.storm_window_seconds + settings.storm_grace_seconds) * 1000)
    text = (
        f"{_lead(settings)}:rotating_light: *Failure storm in queue {queue}*: more than "
        f"{settings.storm_threshold} jobs failed within {settings.storm_window_seconds} s. Individual alerts "
        f"are paused for this window; a digest of every further failure follows at about {closes}."
    )
    return {
        "text": truncate(f"Failure storm in queue {queue}: digest follows at {closes}", 3000),
        "blocks": [_header(f"Failure storm: {_queue_name(queue_arn)}"), _section(text)],
    }


class SlackRenderer(Renderer):
    def __init__(self, settings: NotifySettings) -> None:
        self.settings = settings

    def digest(self, report: WindowReport, config: StormConfig) -> dict[str, Any]:
        queue = safe(_queue_name(report.queue_arn), 200)
        total, only_here = report.total, len(report.digested)
        causes = safe(summarize_causes(report.causes()), 1500)
        span = f"{iso(report.window)} to {iso(report.window + config.window_seconds * 1000)}"
        lead = _lead(self.settings)
        split = (
            f"{report.individual} posted on {'its' if report.individual == 1 else 'their'} own above, "
            f"{only_here} counted only here"
        )
        if report.parent_id:
            parent = safe(report.parent_id, 200)
            title = f"{total} children of array job {report.parent_id} failed"
            intro = (
                f"{lead}:package: *{total} children of array job `{_code_safe(parent)}` failed*: "
                f"{causes}.\n_{split}._"
            )
        else:
            title = f"{total} jobs failed in {_queue_name(report.queue_arn)}"
            intro = f"{lead}:rotating_light: *{total} jobs failed in queue {queue}*: {causes}.\n_{split}._"
        blocks: list[dict[str, Any]] = [
            _header(f"Failure digest: {title}"),
            _section(f"{intro}\n_Window:_ {span} · queue *{queue}*"),
        ]
        lines = []
        count = len(report.digested)
        for job in report.digested[:DIGEST_SAMPLES]:
            link = f" · <{job['log_url']}|log>" if job.get("log_url") else ""
            console = batch_console_url(self.settings.aws_region, job["job_id"])
            lines.append(
                f"• <{console}|{safe(job['job_name'], 120)}> `{_code_safe(safe(job['job_id'], 120))}`: "
                f"{safe(job['cause'], 200)}{link}"
            )
        if lines:
            more = count - len(lines)
            suffix = f"\n_…and {more} more (all counted above)._" if more > 0 else ""
            blocks.append(_section("*Examples*\n" + "\n".join(lines) + suffix))
        if report.parent_id:
            blocks.append(
                {
                    "type": "actions",
                    "elements": [
                        {
                            "type": "button",
                            "text": {"type": "plain_text", "text": "Open array job in Batch console"},
                            "url": batch_console_url(self.settings.aws_region, report.parent_id),
                        }
                    ],
                }
            )
        blocks.append(
            _context(
                f"Every failure in this window is counted here or in its own message ({report.total} in all)."
            )
        )
        fallback = f"Failure digest: {title}: {summarize_causes(report.causes())} ({split})"
        return {"text": truncate(safe(fallback, 3000), 3000), "blocks": cap_blocks(blocks)}

    def storm_ended(
        self,
        group: str,
        queue_arn: str,
        since: int,
        last_window: int,
        total: int,
        report: WindowReport,
        config: StormConfig,
    ) -> dict[str, Any]:
        queue = safe(_queue_name(queue_arn), 200)
        after = (
            f"the next window had {report.individual} failure(s), each posted on its own"
            if report.individual
            else f"no job failed in the {config.window_seconds} s after it"
        )
        text = (
            f":white_check_mark: *Failure storm in queue {queue} is over*: it began {iso(since)}; "
            f"{total} failures were counted in digests; {after}."
        )
        return {
            "text": truncate(f"Failure storm in queue {queue} is over ({total} failures in digests)", 3000),
            "blocks": [_header(f"Failure storm over: {_queue_name(queue_arn)}"), _section(text)],
        }
