"""FailureNotifyFunction's one call: route each Batch event its rule delivers to the right alert.

- "Batch Job Queue Blocked", or a RUNNABLE job with a blocked statusReason -> one message per (queue,
  reason code) per quiet period (blocked_queue).
- A FAILED job -> storm tracking decides: its own message (failed_job) or counted in the window's digest
  (storm/); the first job past the threshold posts a "storm started" notice. A job type's alerts go to
  its own channel (channels).
- A SUCCEEDED job of a job type that asked for it -> one short message (succeeded_job).
- Anything else -> nothing, no error.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_dispatch.alerts.blocked_queue import is_blocked_event, notify_blocked
from batch_dispatch.alerts.channels import channel_for
from batch_dispatch.alerts.failed_job import (
    DETAIL_TYPE,
    NotifyOutcome,
    notify_failure,
    post_failure_alert,
    skip_reason,
    summarize_for,
)
from batch_dispatch.alerts.job_state import JobStateChange, parse_event
from batch_dispatch.alerts.storm.messages import storm_notice
from batch_dispatch.alerts.storm.model import DIGEST, FailedJob, StormConfig, cause_of
from batch_dispatch.alerts.storm.tracker import StormTracker
from batch_dispatch.alerts.succeeded_job import notify_succeeded
from batch_dispatch.observability import MetricUnit, logger, metrics, tracer
from batch_dispatch.settings import FailureNotifySettings
from batch_dispatch.slack.post_once import post_once

SUCCEEDED = "SUCCEEDED"


@tracer.capture_method(capture_response=False)
def handle(
    event: Any, settings: FailureNotifySettings, lambda_context: LambdaContext | None = None
) -> dict[str, Any]:
    """Post what the event calls for. Slack and DynamoDB errors propagate on purpose: Lambda's async
    retries run, then the event lands in the DLQ."""
    if isinstance(event, dict) and is_blocked_event(event):
        return notify_blocked(event, settings, lambda_context)
    parsed = parse_event(event)
    if parsed.detail.status == SUCCEEDED and parsed.detail_type in (DETAIL_TYPE, None):
        return notify_success(parsed, settings, lambda_context).as_dict()
    return notify_failure_or_count(event, settings, lambda_context).as_dict()


def notify_success(
    event: JobStateChange, settings: FailureNotifySettings, lambda_context: LambdaContext | None = None
) -> NotifyOutcome:
    """Post a SUCCEEDED job if its job type asked for successes (its own rule sends them), else nothing."""
    channel = channel_for(event.detail.job_definition, settings)
    if not channel.notify_succeeded:
        reason = "status SUCCEEDED"
        logger.info(
            "Not a failed job, nothing to post", extra={"reason": reason, "job_id": event.detail.job_id}
        )
        metrics.add_metric(name="AlertSkipped", unit=MetricUnit.Count, value=1)
        return NotifyOutcome(notified=False, reason=reason)
    summary = summarize_for(event, settings)
    return notify_succeeded(
        event.detail.job_id or event.id or "(unknown job id)", summary, channel, settings, lambda_context
    )


def notify_failure_or_count(
    raw_event: Any, settings: FailureNotifySettings, lambda_context: LambdaContext | None = None
) -> NotifyOutcome:
    """A FAILED job: its own message, or (in a storm, or an array child) counted in a digest."""
    event = parse_event(raw_event)
    if not settings.storm_enabled or skip_reason(event) is not None:
        return notify_failure(raw_event, settings, lambda_context)
    summary = summarize_for(event, settings)
    job = FailedJob(
        job_id=event.detail.job_id or event.id or "(unknown job id)",
        job_name=summary.job_name,
        queue_arn=event.detail.job_queue or "",
        cause=cause_of(summary.facts),
        log_url=summary.log_url,
        channel=channel_for(event.detail.job_definition, settings).secret_name,
    )
    decision = StormTracker(StormConfig.from_settings(settings)).record_failure(job)
    logger.append_keys(job_id=job.job_id, storm_group=decision.group, storm_rank=decision.rank)
    if decision.decision != DIGEST:
        return post_failure_alert(event, summary, settings, lambda_context)
    if decision.starts_storm:
        notice = storm_notice(job.queue_arn, decision.window, settings, settings.slack_mention)
        post_once("storm-started", f"{decision.group}#{decision.window}", notice, settings, lambda_context)
    metrics.add_metric(name="FailureDigested", unit=MetricUnit.Count, value=1)
    logger.info("Failure counted in the storm digest", extra={"window": decision.window})
    return NotifyOutcome(notified=False, job_id=job.job_id, reason=f"counted in digest ({decision.group})")
