"""Blocked queues: a job stuck at the head of a queue in RUNNABLE, told once per queue and reason.

AWS Batch sends a "Batch Job Queue Blocked" event when a RUNNABLE job at the head of a queue cannot be
placed, and writes the same coded reason into the job's `statusReason` (see blocked_reasons). One Slack
message is posted per (queue, code) within `blocked_alert_quiet_seconds` (Powertools idempotency with
that expiry), however many events and jobs report it, in plain words with what to check. For this
stack's own queues (the normal, high- and low-priority queues: STACK_JOB_QUEUE_ARNS) the checks name
its template parameters, which apply to all three; for the other queues it alerts on
(AdditionalAlertQueueArns) they say what to check in that queue's own compute environment.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, NamedTuple

from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_dispatch.alerts.blocked_reasons import (
    NETWORK_HINT,
    QUEUE_BLOCKED_DETAIL_TYPE,
    STATE_CHANGE_DETAIL_TYPE,
    TIME_LIMIT_REASONS,
    UNKNOWN_REASON,
    ReasonInfo,
    describe,
    is_blocked_reason,
    reason_code,
)
from batch_dispatch.aws.console_links import batch_compute_environments_url, batch_job_url, batch_queue_url
from batch_dispatch.observability import MetricUnit, logger, metrics
from batch_dispatch.settings import FailureNotifySettings
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
from batch_dispatch.slack.post_once import post_once

IDEMPOTENCY_PREFIX = "queue-blocked"


def _detail(event: dict[str, Any]) -> dict[str, Any]:
    detail = event.get("detail")
    return detail if isinstance(detail, dict) else {}


def is_blocked_event(event: dict[str, Any]) -> bool:
    """A Queue Blocked event, or a state change that reports a RUNNABLE job with a blocked reason."""
    detail = _detail(event)
    detail_type = event.get("detail-type")
    if detail_type == QUEUE_BLOCKED_DETAIL_TYPE:
        return True
    return (
        detail_type in (STATE_CHANGE_DETAIL_TYPE, None)
        and detail.get("status") == "RUNNABLE"
        and is_blocked_reason(detail.get("statusReason"))
    )


class BlockedSummary(NamedTuple):
    queue_arn: str
    queue_name: str
    code: str
    status_reason: str
    job_id: str | None
    job_name: str | None
    region: str
    source: str  # detail-type of the event that told us
    time_limit_seconds: int = 0
    ours: bool = False  # one of this stack's queues: advice may name the stack's parameters

    @property
    def info(self) -> ReasonInfo:
        return describe(self.code)

    @property
    def cancels_after(self) -> int | None:
        """Seconds after which the queue's time-limit action cancels such jobs, if it does."""
        if self.ours and self.time_limit_seconds > 0 and self.code in TIME_LIMIT_REASONS:
            return self.time_limit_seconds
        return None


def summarize_blocked(
    event: dict[str, Any],
    *,
    region: str,
    time_limit_seconds: int = 0,
    own_queue_arns: Collection[str] = (),
) -> BlockedSummary:
    """The blocked queue and why; `own_queue_arns` are this stack's queues (the others' advice is theirs)."""
    detail = _detail(event)
    queue = str(detail.get("jobQueue") or "")
    if not queue:  # the Queue Blocked event also lists the queue ARN in resources
        queue = next((str(r) for r in event.get("resources", []) if ":job-queue/" in str(r)), "")
    status_reason = str(detail.get("statusReason") or "")
    event_region = event.get("region")
    return BlockedSummary(
        queue_arn=queue or "(unknown queue)",
        queue_name=queue.rsplit("/", 1)[-1] if queue else "(unknown queue)",
        code=reason_code(status_reason),
        status_reason=status_reason,
        job_id=str(detail["jobId"]) if detail.get("jobId") else None,
        job_name=str(detail["jobName"]) if detail.get("jobName") else None,
        region=str(event_region) if isinstance(event_region, str) and event_region else region,
        source=str(event.get("detail-type") or STATE_CHANGE_DETAIL_TYPE),
        time_limit_seconds=time_limit_seconds,
        ours=bool(queue) and queue in own_queue_arns,
    )


def build_blocked_message(summary: BlockedSummary, mention: str = "") -> dict[str, Any]:
    """Block Kit message: the reason in plain words, what to check, the job at the head of the queue."""
    lead = mention_lead(mention)
    queue = slack_text(summary.queue_name, 200)
    info = summary.info
    blocks: list[dict[str, Any]] = [
        header(f"Batch queue BLOCKED: {summary.queue_name}"),
        section(
            f"{lead}:no_entry: Jobs in queue *{queue}* are stuck in RUNNABLE: "
            f"*{slack_text(info.title, 300)}*.\n"
            f"*Reason code:* `{code_safe(slack_text(summary.code, 100))}`"
        ),
    ]
    if summary.status_reason:
        blocks.append(
            section(f"*Status reason:*\n```{code_safe(slack_text(summary.status_reason, 1500))}```")
        )
    else:  # the checks may refer to the status reason "above"
        blocks.append(section("*Status reason:* _Batch gave none._"))
    checks = "\n".join(f"• {slack_text(check, 600)}" for check in info.checks_for(summary.ours))
    if summary.code in ("UNKNOWN", "UNDETERMINED") or info is UNKNOWN_REASON:
        checks += f"\n• {NETWORK_HINT}"
    blocks.append(section(f"*What to check*\n{checks}"))
    if summary.cancels_after:
        blocks.append(
            context(
                f"The queue cancels jobs stuck for this reason after {summary.cancels_after} s "
                "(JobStateTimeLimitActions); each cancelled job gets its own alert."
            )
        )
    elif summary.code in TIME_LIMIT_REASONS:
        setting = (
            "Set RunnableTimeLimitSeconds"
            if summary.ours
            else "Give the queue a job state time limit action (jobStateTimeLimitActions)"
        )
        blocks.append(
            context(
                f"Jobs stay RUNNABLE until this is fixed. {setting} to have the queue cancel them "
                "automatically."
            )
        )
    if summary.job_id:
        name = slack_text(summary.job_name or summary.job_id, 200)
        job_id = code_safe(slack_text(summary.job_id, 200))
        blocks.append(context(f"Job at the head of the queue: *{name}* `{job_id}`"))
    links = []
    if summary.queue_name != "(unknown queue)":
        links.append(("Open queue in Batch console", batch_queue_url(summary.region, summary.queue_name)))
    links.append(("Compute environments", batch_compute_environments_url(summary.region)))
    if summary.job_id:
        links.append(("Open job in Batch console", batch_job_url(summary.region, summary.job_id)))
    blocks.append(link_buttons(links))
    title, code = slack_text(info.title, 300), slack_text(summary.code, 100)
    fallback = f"{lead}Batch queue BLOCKED: {queue} — {title} ({code})"
    return message(fallback, blocks)


def log_blocked(summary: BlockedSummary, *, duplicate: bool) -> None:
    logger.info(
        "Blocked queue alert already posted" if duplicate else "Blocked queue alert posted",
        extra={"queue": summary.queue_name, "reason_code": summary.code, "job_id": summary.job_id},
    )


def notify_blocked(
    raw_event: dict[str, Any], settings: FailureNotifySettings, lambda_context: LambdaContext | None = None
) -> dict[str, Any]:
    """One message per (queue, reason code) per quiet period, however many events and jobs report it."""
    summary = summarize_blocked(
        raw_event,
        region=settings.aws_region,
        time_limit_seconds=settings.runnable_time_limit_seconds,
        own_queue_arns=settings.own_job_queue_arns,
    )
    posted = post_once(
        IDEMPOTENCY_PREFIX,
        f"{summary.queue_arn}#{summary.code}",
        build_blocked_message(summary, settings.slack_mention),
        settings,
        lambda_context,
        expires_after_seconds=settings.blocked_alert_quiet_seconds,
    )
    log_blocked(summary, duplicate=not posted)
    metrics.add_metric(
        name="QueueBlockedNotified" if posted else "DuplicateSkipped", unit=MetricUnit.Count, value=1
    )
    return {"blocked": True, "queue": summary.queue_name, "reasonCode": summary.code, "notified": posted}
