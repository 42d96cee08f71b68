"""A FAILED job: the facts an on-call needs, read from the last attempt, and the Slack message that says them.

Only the LAST attempt matters (Batch sends FAILED once, after every retry). The log group is the one the
event names, else this stack's job log group for this stack's job definition, else Batch's default.
Everything a user controls is escaped for Slack and truncated to its limits (slack.blocks).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_dispatch.alerts.blocked_reasons import cancellation_code, describe
from batch_dispatch.alerts.job_state import Attempt, ContainerDetail, JobDetail, JobStateChange, parse_event
from batch_dispatch.aws.console_links import batch_job_url, log_stream_url
from batch_dispatch.observability import MetricUnit, logger, metrics, tracer
from batch_dispatch.settings import FailureNotifySettings
from batch_dispatch.slack.blocks import (
    MAX_SECTION_TEXT,
    code_safe,
    context,
    fields_section,
    header,
    link_buttons,
    mention_lead,
    message,
    section,
    slack_text,
)
from batch_dispatch.slack.post_once import post_once

IDEMPOTENCY_PREFIX = "failure-alert"
DEFAULT_LOG_GROUP = "/aws/batch/job"
DETAIL_TYPE = "Batch Job State Change"
MAX_PARAMETER_VALUE = 300
MAX_PARAMETERS_SHOWN = 25
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")


class FailureSummary(NamedTuple):
    job_name: str
    job_id: str
    region: str
    queue_name: str | None
    job_definition: str | None
    status_reason: str | None
    attempt_count: int
    exit_code: int | None
    attempt_reason: str | None
    container_name: str | None
    duration_seconds: float | None
    duration_basis: str  # "last attempt" or "since created"
    parameters: Mapping[str, str]
    array_index: int | None = None
    node_index: int | None = None
    num_nodes: int | None = None
    log_group: str | None = None
    log_stream: str | None = None
    cancelled_code: str | None = None  # set when the queue's JobStateTimeLimitActions cancelled the job
    array_size: int | None = None  # array parents: children in total and how many failed
    array_failed: int | None = None

    @property
    def console_url(self) -> str:
        return batch_job_url(self.region, self.job_id)

    @property
    def log_url(self) -> str | None:
        if not self.log_stream:
            return None
        return log_stream_url(self.region, self.log_group or DEFAULT_LOG_GROUP, self.log_stream)


def default_log_group(settings: FailureNotifySettings, job_definition_arn: str | None) -> str:
    """Where a job logs when its event does not say: our job definition's log group, else Batch's default.

    Batch events carry `logConfiguration` only when the job definition sets it explicitly in a form
    the event includes; the stack knows its own definition's group (JOB_LOG_GROUP_NAME).
    """
    ours = _definition_family(settings.job_definition_arn)
    if ours and _definition_family(job_definition_arn) == ours:
        return settings.job_log_group_name
    return DEFAULT_LOG_GROUP


def _definition_family(arn: str | None) -> str:
    """`arn:...:job-definition/name:3` -> `name`."""
    return (arn or "").rsplit("/", 1)[-1].split(":", 1)[0]


def summarize(
    event: JobStateChange, default_region: str = "us-east-1", default_log_group: str = DEFAULT_LOG_GROUP
) -> FailureSummary:
    """The facts an on-call needs, read from the LAST attempt."""
    job = event.detail
    attempt = job.attempts[-1] if job.attempts else None
    container = _failed_container(job, attempt)
    if container is None and attempt is None:
        container = job.container  # no attempt at all: the job-level container is all there is
    region = event.region if event.region and _REGION.match(event.region) else default_region
    duration, basis = _duration(job, attempt)
    log_stream = container.log_stream_name if container is not None and attempt is not None else None
    return FailureSummary(
        job_name=job.job_name or "(unnamed job)",
        job_id=job.job_id or "(unknown job id)",
        region=region,
        queue_name=_arn_name(job.job_queue),
        job_definition=_arn_name(job.job_definition),
        status_reason=job.status_reason or (attempt.status_reason if attempt else None),
        attempt_count=len(job.attempts),
        exit_code=container.exit_code if container else None,
        attempt_reason=container.reason if container else None,
        container_name=container.name if container else None,
        duration_seconds=duration,
        duration_basis=basis,
        parameters={str(k): _as_text(v) for k, v in job.parameters.items()},
        array_index=job.array_properties.index if job.array_properties else None,
        node_index=job.node_details.node_index if job.node_details else None,
        num_nodes=job.node_properties.num_nodes if job.node_properties else None,
        log_group=_log_group(job, container, default_log_group) if log_stream else None,
        log_stream=log_stream,
        cancelled_code=cancellation_code(job.status_reason),
        array_size=job.array_properties.size if job.array_properties else None,
        array_failed=(
            job.array_properties.status_summary.get("FAILED")
            if job.array_properties and job.array_properties.status_summary
            else None
        ),
    )


def _failed_container(job: JobDetail, attempt: Attempt | None) -> ContainerDetail | None:
    if attempt is None:
        return None
    if attempt.container is not None:
        return attempt.container
    containers = [c for task in attempt.task_properties for c in task.containers]
    if not containers:
        return None
    essential = {c.name: c.essential for c in _definition_containers(job) if c.name}

    def is_essential(c: ContainerDetail) -> bool:
        flag = c.essential if c.essential is not None else essential.get(c.name or "")
        return flag is not False  # ECS: containers are essential unless marked otherwise

    def failed(c: ContainerDetail) -> bool:
        return c.exit_code not in (None, 0)

    ranked = (
        lambda c: is_essential(c) and failed(c),
        lambda c: is_essential(c) and bool(c.reason),
        failed,
        lambda c: bool(c.reason),
        is_essential,
    )
    for rule in ranked:
        for candidate in containers:
            if rule(candidate):
                return candidate
    return containers[0]


def _definition_containers(job: JobDetail) -> list[ContainerDetail]:
    """Containers as the job definition describes them (essential flag, log configuration)."""
    found: list[ContainerDetail] = []
    props = [job.ecs_properties] if job.ecs_properties else []
    if job.node_properties:
        props += [r.ecs_properties for r in job.node_properties.node_range_properties if r.ecs_properties]
    for prop in props:
        found += [c for task in prop.task_properties for c in task.containers]
    return found


def _log_group(job: JobDetail, container: ContainerDetail | None, default: str) -> str:
    candidates: list[ContainerDetail | None] = [container]
    if container is not None and container.name:
        candidates += [c for c in _definition_containers(job) if c.name == container.name]
    candidates.append(job.container)
    if job.node_properties:
        candidates += [r.container for r in job.node_properties.node_range_properties]
    for candidate in candidates:
        if candidate is not None and candidate.log_group:
            return candidate.log_group
    return default


def _duration(job: JobDetail, attempt: Attempt | None) -> tuple[float | None, str]:
    if attempt and attempt.started_at and attempt.stopped_at and attempt.stopped_at >= attempt.started_at:
        return (attempt.stopped_at - attempt.started_at) / 1000, "last attempt"
    stopped = (attempt.stopped_at if attempt else None) or job.stopped_at
    if job.created_at and stopped and stopped >= job.created_at:
        return (stopped - job.created_at) / 1000, "since created"
    return None, "unknown"


def _arn_name(arn: str | None) -> str | None:
    """`...:job-queue/name` -> `name`; `...:job-definition/name:3` -> `name:3`."""
    if not arn:
        return None
    return arn.rsplit("/", 1)[-1] if "/" in arn else arn


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), default=str)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    if seconds < 1:
        return f"{int(seconds * 1000)} ms"
    total = round(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    while parts and parts[0][0] == 0:
        parts.pop(0)
    return " ".join(f"{n}{unit}" for n, unit in parts) or "0s"


# --------------------------------------------------------------------------------------------------------
# The Slack message


def build_message(summary: FailureSummary, mention: str = "") -> dict[str, Any]:
    """Block Kit blocks plus a plain `text` fallback (for notifications), within Slack's limits."""
    lead = mention_lead(mention)
    name = slack_text(summary.job_name, 200)
    queue = slack_text(summary.queue_name, 200) if summary.queue_name else "unknown queue"
    attempts = f"{summary.attempt_count} attempt{'s' if summary.attempt_count != 1 else ''}"

    verb = "CANCELLED" if summary.cancelled_code else "FAILED"
    blocks: list[dict[str, Any]] = [header(f"Batch job {verb}: {summary.job_name}")]
    if summary.cancelled_code:
        intro = (
            f"{lead}:no_entry_sign: *{name}* was cancelled by queue *{queue}* after waiting too long in "
            f"RUNNABLE: {slack_text(describe(summary.cancelled_code).title, 300)}."
        )
    else:
        intro = f"{lead}:x: *{name}* failed after {attempts} in queue *{queue}*."
    if summary.status_reason:
        intro += f"\n*Status reason:* {code_safe(slack_text(summary.status_reason, 1000))}"
    blocks.append(section(intro))

    fields = [
        f"*Job ID*\n`{code_safe(slack_text(summary.job_id, 200))}`",
        f"*Queue*\n{queue}",
        f"*Job definition*\n{slack_text(summary.job_definition or 'unknown', 300)}",
        f"*Attempts*\n{summary.attempt_count}",
        f"*Exit code (last attempt)*\n{'none' if summary.exit_code is None else summary.exit_code}",
        f"*Ran for*\n{format_duration(summary.duration_seconds)}"
        + (f" ({summary.duration_basis})" if summary.duration_seconds is not None else ""),
    ]
    if summary.array_index is not None:
        fields.append(f"*Array index*\n{summary.array_index}")
    if summary.node_index is not None:
        of = f" of {summary.num_nodes}" if summary.num_nodes else ""
        fields.append(f"*Node index*\n{summary.node_index}{of}")
    if summary.container_name:
        fields.append(f"*Container*\n{slack_text(summary.container_name, 200)}")
    if summary.array_size is not None and summary.array_index is None:
        failed = f"{summary.array_failed} of " if summary.array_failed is not None else ""
        fields.append(f"*Array children failed*\n{failed}{summary.array_size} (digest follows)")
    blocks.append(fields_section(fields))

    if summary.attempt_reason:
        reason = code_safe(slack_text(summary.attempt_reason, MAX_SECTION_TEXT - 60))
        blocks.append(section(f"*Last attempt reason:*\n```{reason}```"))

    blocks += _parameter_sections(summary.parameters)

    links = [("Open job in Batch console", summary.console_url)]
    if summary.log_url:
        links.append(("View log stream", summary.log_url))
    else:
        blocks.append(context("No log stream: the last attempt never reached RUNNING."))
    blocks.append(link_buttons(links))
    if summary.log_group and summary.log_stream:
        group = code_safe(slack_text(summary.log_group, 500))
        stream = code_safe(slack_text(summary.log_stream, 800))
        blocks.append(context(f"Logs: `{group}` / `{stream}`"))

    return message(_fallback_text(summary, lead, name, queue, attempts), blocks)


def _parameter_sections(parameters: Mapping[str, str]) -> list[dict[str, Any]]:
    if not parameters:
        return []
    names = sorted(parameters)
    lines = [
        f"• `{code_safe(slack_text(n, 100))}`: {code_safe(slack_text(parameters[n], MAX_PARAMETER_VALUE))}"
        for n in names[:MAX_PARAMETERS_SHOWN]
    ]
    if len(names) > MAX_PARAMETERS_SHOWN:
        lines.append(f"_…and {len(names) - MAX_PARAMETERS_SHOWN} more parameters (see the Batch console)_")
    sections: list[dict[str, Any]] = []
    chunk = "*Parameters*"
    for line in lines:
        if len(chunk) + 1 + len(line) > MAX_SECTION_TEXT:
            sections.append(section(chunk))
            chunk = line
        else:
            chunk += "\n" + line
    sections.append(section(chunk))
    return sections


def _fallback_text(summary: FailureSummary, lead: str, name: str, queue: str, attempts: str) -> str:
    verb = "CANCELLED" if summary.cancelled_code else "FAILED"
    parts = [
        f"{lead}Batch job {verb}: {name} ({slack_text(summary.job_id, 200)}) in {queue} after {attempts}"
    ]
    if summary.exit_code is not None:
        parts.append(f"exit code {summary.exit_code}")
    reason = summary.attempt_reason or summary.status_reason
    if reason:
        parts.append(code_safe(slack_text(reason, 500)))
    return " — ".join(parts)


# --------------------------------------------------------------------------------------------------------
# The use case: one Slack message per failed job, however often the event is delivered


class NotifyOutcome(NamedTuple):
    notified: bool
    job_id: str | None = None
    duplicate: bool = False
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        if not self.notified:
            return {"notified": False, "reason": self.reason}
        return {"notified": True, "jobId": self.job_id, "duplicate": self.duplicate}


def skip_reason(event: JobStateChange) -> str | None:
    """Why this event gets no alert, or None if it does."""
    if event.detail_type is not None and event.detail_type != DETAIL_TYPE:
        return f"detail-type {event.detail_type[:100]}"
    if event.detail.status != "FAILED":
        return f"status {(event.detail.status or 'missing')[:50]}"
    return None


@tracer.capture_method(capture_response=False)
def notify_failure(
    raw_event: Any, settings: FailureNotifySettings, lambda_context: LambdaContext | None = None
) -> NotifyOutcome:
    """Post one Slack message for a FAILED job; anything else is skipped without error.

    Raises webhook.SlackPermanentError / webhook.SlackTransientError when Slack does not take the message
    (the idempotency record is released, so Lambda's retry or a DLQ redrive can post it).
    """
    event = parse_event(raw_event)
    if reason := skip_reason(event):
        logger.info(
            "Not a failed job, nothing to post", extra={"reason": reason, "job_id": event.detail.job_id}
        )
        metrics.add_metric(name="AlertSkipped", unit=MetricUnit.Count, value=1)
        return NotifyOutcome(notified=False, reason=reason)

    return post_failure_alert(event, summarize_for(event, settings), settings, lambda_context)


def summarize_for(event: JobStateChange, settings: FailureNotifySettings) -> FailureSummary:
    """`summarize` with this stack's region and log group defaults."""
    return summarize(
        event,
        default_region=settings.aws_region,
        default_log_group=default_log_group(settings, event.detail.job_definition),
    )


def post_failure_alert(
    event: JobStateChange,
    summary: FailureSummary,
    settings: FailureNotifySettings,
    lambda_context: LambdaContext | None = None,
) -> NotifyOutcome:
    """Post the failed job's own message, once per job and attempt count."""
    logger.append_keys(job_id=summary.job_id, job_name=summary.job_name)
    alert = build_message(summary, settings.slack_mention)

    key = f"{event.detail.job_id or event.id}#{summary.attempt_count}#FAILED"
    if not post_once(IDEMPOTENCY_PREFIX, key, alert, settings, lambda_context):
        metrics.add_metric(name="DuplicateSkipped", unit=MetricUnit.Count, value=1)
        logger.info("Duplicate delivery, alert already posted")
        return NotifyOutcome(notified=True, job_id=summary.job_id, duplicate=True)
    metrics.add_metric(name="FailureNotified", unit=MetricUnit.Count, value=1)
    logger.info(
        "Failure alert posted",
        extra={
            "exit_code": summary.exit_code,
            "attempts": summary.attempt_count,
            "queue": summary.queue_name,
        },
    )
    return NotifyOutcome(notified=True, job_id=summary.job_id)
