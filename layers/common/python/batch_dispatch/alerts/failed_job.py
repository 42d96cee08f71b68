"""A FAILED job: the facts an on-call needs, the Slack message that says them, and posting it once.

The message leads with the cause (the container's reason and exit code when Batch's own status reason
is generic), then what that class of failure means and what to do (failure_classes), then one line per
earlier attempt, the last log lines of the failed attempt (log_tail), and the details. Only the LAST
attempt decides (Batch sends FAILED once, after every retry). The log group is the one the event names,
else this stack's job log group for this stack's job definition, else Batch's default.

One message per failure: an array PARENT says how many children failed (no attempts, exit code or log
of its own); a multi-node job is told by its parent (the job that was submitted, whose status, reason,
exit code and log come from the main node): the FAILED events of its nodes (`jobId#N`) post nothing.
Everything a user controls is redacted (redaction) and escaped for Slack, within its limits (slack.blocks).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_dispatch.alerts.blocked_reasons import cancellation_code
from batch_dispatch.alerts.channels import channel_for
from batch_dispatch.alerts.failure_classes import (
    JOB_DEFINITION_SETTINGS,
    STACK_PARAMETER_SETTINGS,
    Diagnosis,
    Facts,
    JobSettingNames,
    cause_line,
    diagnose,
    format_duration,
    is_generic,
    job_type_settings,
)
from batch_dispatch.alerts.job_state import Attempt, ContainerDetail, JobDetail, JobStateChange, parse_event
from batch_dispatch.alerts.log_tail import OFF, OK, LogTail, read_budget, read_tail
from batch_dispatch.alerts.redaction import Redactor, redactor_for
from batch_dispatch.alerts.rerun_button import rerun_buttons
from batch_dispatch.aws.console_links import batch_job_url, log_stream_url
from batch_dispatch.job_types import DEFAULT, definition_family, is_stack_definition, job_type_name
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
from batch_dispatch.slack.post_once import post_once, remaining_seconds

IDEMPOTENCY_PREFIX = "failure-alert"
DEFAULT_LOG_GROUP = "/aws/batch/job"
DETAIL_TYPE = "Batch Job State Change"
PLACEHOLDER = "none"  # the job definition's default for a parameter the caller did not send
MAX_PARAMETER_VALUE = 300
MAX_PARAMETERS_SHOWN = 25
MAX_EARLIER_ATTEMPTS = 9  # Batch allows 10 attempts
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_ACCOUNT = re.compile(r"^\d{12}$")


class EarlierAttempt(NamedTuple):
    number: int
    cause: str
    ran_seconds: float | None


class FailureSummary(NamedTuple):
    job_name: str
    job_id: str
    region: str
    queue_name: str | None
    job_definition: str | None
    status_reason: str | None
    attempt_count: int
    exit_code: int | None
    attempt_reason: str | None  # the last attempt's container reason
    container_name: str | None
    duration_seconds: float | None
    duration_basis: str  # "last attempt", "since created" or "unknown"
    parameters: Mapping[str, str]
    diagnosis: Diagnosis
    facts: Facts
    cause: str
    account: str | None = None
    array_index: int | None = None
    node_index: int | None = None
    num_nodes: int | None = None
    log_group: str | None = None
    log_stream: str | None = None
    cancelled_code: str | None = None  # set when the queue's JobStateTimeLimitActions cancelled the job
    array_size: int | None = None  # array parents: children in total and how many failed
    array_failed: int | None = None
    earlier_attempts: tuple[EarlierAttempt, ...] = ()

    @property
    def console_url(self) -> str:
        return batch_job_url(self.region, self.job_id)

    @property
    def log_url(self) -> str | None:
        if not self.log_stream:
            return None
        return log_stream_url(self.region, self.log_group or DEFAULT_LOG_GROUP, self.log_stream)

    @property
    def is_array_parent(self) -> bool:
        return self.array_size is not None and self.array_index is None

    @property
    def cancelled(self) -> bool:
        return self.diagnosis.failure_class.cancelled

    @property
    def never_ran(self) -> bool:
        return self.duration_basis != "last attempt"


def job_type_of(settings: FailureNotifySettings, job_definition_arn: str | None) -> str | None:
    """The job type of this stack that ran the job, from its job definition's name: `default` for the
    stack's own job definition, the catalog name for `<stack>_<job type>`, None for another stack's job
    (AdditionalAlertQueueArns)."""
    family = definition_family(job_definition_arn)
    if family and family == definition_family(settings.job_definition_arn):
        return DEFAULT
    return job_type_name(settings.job_name_prefix, job_definition_arn)


def setting_names(job_type: str | None) -> JobSettingNames:
    """Where the advice says to change a job of `job_type` (None: another stack's job)."""
    if job_type is None:
        return JOB_DEFINITION_SETTINGS
    return STACK_PARAMETER_SETTINGS if job_type == DEFAULT else job_type_settings(job_type)


def default_log_group(settings: FailureNotifySettings, job_definition_arn: str | None) -> str:
    """Where a job logs when its event does not say: the stack's job log group for the job types of
    its catalog (every one logs there), else Batch's default.

    Batch events carry `logConfiguration` only when the job definition sets it explicitly in a form
    the event includes; the stack knows its own job types' group (JOB_LOG_GROUP_NAME).
    """
    return (
        settings.job_log_group_name
        if job_type_of(settings, job_definition_arn) is not None
        else DEFAULT_LOG_GROUP
    )


def summarize(
    event: JobStateChange,
    default_region: str = "us-east-1",
    default_log_group: str = DEFAULT_LOG_GROUP,
    *,
    job_type: str | None = None,
    redactor: Redactor | None = None,
) -> FailureSummary:
    """The facts an on-call needs, read from the LAST attempt, with secrets redacted from every text.

    `job_type` is the stack's job type that ran the job (None: another stack's), so the advice names
    the setting to change where it is (JobSettingNames)."""
    redact = (redactor or Redactor()).text
    job = event.detail
    attempt = job.attempts[-1] if job.attempts else None
    container = _failed_container(job, attempt)
    array = job.array_properties
    array_parent = array is not None and array.index is None and array.size is not None
    if container is None and attempt is None and not array_parent:
        container = job.container  # no attempt at all: the job-level container is all there is
    region = event.region if event.region and _REGION.match(event.region) else default_region
    duration, basis = _duration(job, attempt)
    log_stream = container.log_stream_name if container is not None and attempt is not None else None
    status_reason = _redacted(job.status_reason or (attempt.status_reason if attempt else None), redact)
    container_reason = _redacted(container.reason if container else None, redact)
    exit_code = container.exit_code if container and not array_parent else None
    array_failed = array.status_summary.get("FAILED") if array and array.status_summary else None
    facts = Facts(
        status_reason=status_reason,
        attempt_reason=_redacted(attempt.status_reason if attempt else None, redact),
        container_reason=container_reason,
        exit_code=exit_code,
        memory_mib=_memory(job, container),
        timeout_seconds=job.timeout_seconds,
        ran_seconds=duration if basis == "last attempt" else None,
        array_size=array.size if array_parent and array else None,
        array_failed=array_failed if array_parent else None,
        depends_on=tuple(job.depends_on),
        queue_cancel_code=cancellation_code(job.status_reason),
        setting_names=setting_names(job_type),
    )
    diagnosis = diagnose(facts)
    # A cancel's cause is the caller's own reason, as given (the class line below says "Cancelled"); its
    # exit code is only how Batch stopped the job.
    cancel_reason = status_reason if diagnosis.key == "cancelled" else None
    return FailureSummary(
        job_name=job.job_name or "(unnamed job)",
        job_id=job.job_id or "(unknown job id)",
        region=region,
        queue_name=_arn_name(job.job_queue),
        job_definition=_arn_name(job.job_definition),
        status_reason=status_reason,
        attempt_count=len(job.attempts),
        exit_code=exit_code,
        attempt_reason=container_reason,
        container_name=container.name if container else None,
        duration_seconds=duration,
        duration_basis=basis,
        parameters={
            str(k): redact(_as_text(v)) for k, v in job.parameters.items() if _as_text(v) != PLACEHOLDER
        },
        diagnosis=diagnosis,
        facts=facts,
        cause=cancel_reason or cause_line(facts),
        account=event.account if event.account and _ACCOUNT.match(event.account) else None,
        array_index=array.index if array else None,
        node_index=job.node_details.node_index if job.node_details else None,
        num_nodes=job.node_properties.num_nodes if job.node_properties else None,
        log_group=_log_group(job, container, default_log_group) if log_stream else None,
        log_stream=log_stream,
        cancelled_code=facts.queue_cancel_code,
        array_size=facts.array_size,
        array_failed=facts.array_failed,
        earlier_attempts=tuple(_earlier_attempts(job, redact)),
    )


def _redacted(text: str | None, redact: Any) -> str | None:
    return redact(text) if text else text


def _earlier_attempts(job: JobDetail, redact: Any) -> list[EarlierAttempt]:
    """One line per attempt before the last: its own cause, in the same words as the lead."""
    earlier = []
    for number, attempt in enumerate(job.attempts[:-1][:MAX_EARLIER_ATTEMPTS], start=1):
        container = _failed_container(job, attempt)
        facts = Facts(
            status_reason=_redacted(attempt.status_reason, redact),
            container_reason=_redacted(container.reason if container else None, redact),
            exit_code=container.exit_code if container else None,
        )
        ran = None
        if attempt.started_at and attempt.stopped_at and attempt.stopped_at >= attempt.started_at:
            ran = (attempt.stopped_at - attempt.started_at) / 1000
        earlier.append(EarlierAttempt(number, cause_line(facts), ran))
    return earlier


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
    """Containers as the job definition describes them (essential flag, log configuration, memory)."""
    found: list[ContainerDetail] = []
    props = [job.ecs_properties] if job.ecs_properties else []
    if job.node_properties:
        props += [r.ecs_properties for r in job.node_properties.node_range_properties if r.ecs_properties]
    for prop in props:
        found += [c for task in prop.task_properties for c in task.containers]
    return found


def _container_sources(job: JobDetail, container: ContainerDetail | None) -> list[ContainerDetail]:
    """Where a setting of the failed container may be found: itself, its definition, then the job's."""
    candidates: list[ContainerDetail | None] = [container]
    if container is not None and container.name:
        candidates += [c for c in _definition_containers(job) if c.name == container.name]
    candidates.append(job.container)
    if job.node_properties:
        candidates += [r.container for r in job.node_properties.node_range_properties]
    return [c for c in candidates if c is not None]


def _memory(job: JobDetail, container: ContainerDetail | None) -> int | None:
    """The memory the failed container had: its own, its definition's, or the job's."""
    return next((c.memory_mib for c in _container_sources(job, container) if c.memory_mib), None)


def _log_group(job: JobDetail, container: ContainerDetail | None, default: str) -> str:
    return next((c.log_group for c in _container_sources(job, container) if c.log_group), default)


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


# --------------------------------------------------------------------------------------------------------
# The Slack message


class MessageOptions(NamedTuple):
    mention: str = ""
    environment: str = ""
    mention_on_cancel: bool = False
    rerun_button: bool = False  # EnableRerunButton, and a job of this stack: the Rerun button(s)


def title_line(summary: FailureSummary, environment: str = "") -> str:
    """`[dev · 123456789012 · us-east-1] Batch job FAILED: name` (the header, and the fallback's start)."""
    where = " · ".join(part for part in (environment, summary.account, summary.region) if part)
    kind = "Batch array job" if summary.is_array_parent else "Batch job"
    verb = "CANCELLED" if summary.cancelled else "FAILED"
    return f"[{where}] {kind} {verb}: {summary.job_name}"


def build_message(
    summary: FailureSummary,
    mention: str = "",
    *,
    options: MessageOptions | None = None,
    tail: LogTail | None = None,
) -> dict[str, Any]:
    """Block Kit blocks plus a plain `text` fallback (for notifications), within Slack's limits."""
    options = options or MessageOptions(mention=mention)
    diagnosis = summary.diagnosis
    quiet = not diagnosis.failure_class.mention and not options.mention_on_cancel
    lead = "" if quiet else mention_lead(options.mention)
    emoji = ":no_entry_sign:" if summary.cancelled else ":x:"
    cause = code_safe(slack_text(summary.cause, 1200))
    title = diagnosis.title[:1].upper() + diagnosis.title[1:]
    blocks: list[dict[str, Any]] = [
        header(title_line(summary, options.environment)),
        section(
            f"{lead}{emoji} *{cause}*\n"
            f"*{slack_text(title, 100)}:* {slack_text(diagnosis.meaning, 900)}\n"
            f"*Next step:* {slack_text(diagnosis.next_step, 700)}"
        ),
        fields_section(_fields(summary)),
    ]
    if summary.earlier_attempts:
        blocks.append(section(_earlier_attempts_text(summary)))
    if tail is not None and tail.status == OK:
        blocks.append(section(_tail_text(tail, summary)))
    elif tail is not None and tail.note:
        blocks.append(context(slack_text(tail.note, 1500)))
    for label, reason in (
        ("Batch status reason", summary.status_reason),
        ("Container", summary.attempt_reason),
    ):
        if reason and not is_generic(reason) and reason.strip() not in summary.cause:  # said once only
            blocks.append(context(f"{label}: {code_safe(slack_text(reason, 1000))}"))
    blocks += _parameter_sections(summary.parameters)

    links = [("Open job in Batch console", summary.console_url)]
    if summary.log_url:
        links.append(("View log stream", summary.log_url))
    actions = link_buttons(links)
    if options.rerun_button:
        actions["elements"] += rerun_buttons(summary.job_id, array_parent=summary.is_array_parent)
    blocks.append(actions)
    if summary.log_group and summary.log_stream:
        group = code_safe(slack_text(summary.log_group, 500))
        stream = code_safe(slack_text(summary.log_stream, 800))
        blocks.append(context(f"Logs: `{group}` / `{stream}`"))

    fallback = (
        f"{lead}{slack_text(title_line(summary, options.environment), 400)} — "
        f"{code_safe(slack_text(summary.cause, 500))} ({slack_text(diagnosis.title, 100)})"
    )
    return message(fallback, blocks)


def _fields(summary: FailureSummary) -> list[str]:
    queue = slack_text(summary.queue_name, 200) if summary.queue_name else "unknown queue"
    fields = [
        f"*Job ID*\n`{code_safe(slack_text(summary.job_id, 200))}`",
        f"*Queue*\n{queue}",
        f"*Job definition*\n{slack_text(summary.job_definition or 'unknown', 300)}",
    ]
    if summary.is_array_parent:
        failed = summary.array_failed if summary.array_failed is not None else "some"
        fields.append(f"*Children failed*\n{failed} of {summary.array_size}")
    else:
        fields.append(f"*Attempts*\n{summary.attempt_count}")
        if summary.exit_code is not None:
            fields.append(f"*Exit code (last attempt)*\n{summary.exit_code}")
    waited = format_duration(summary.duration_seconds)
    if summary.is_array_parent:
        fields.append(f"*Ended*\n{waited} after it was created")
    elif summary.never_ran:
        after = f" (ended {waited} after it was created)" if summary.duration_seconds is not None else ""
        fields.append(f"*Ran for*\nnever started{after}")
    else:
        fields.append(f"*Ran for*\n{format_duration(summary.duration_seconds)} (last attempt)")
    if summary.facts.memory_mib and summary.diagnosis.key in ("out_of_memory", "killed_by_signal"):
        fields.append(f"*Memory*\n{summary.facts.memory_mib} MiB")
    if summary.facts.timeout_seconds and summary.diagnosis.key == "timed_out":
        fields.append(f"*Timeout*\n{format_duration(summary.facts.timeout_seconds)}")
    if summary.array_index is not None:
        fields.append(f"*Array index*\n{summary.array_index}")
    if summary.node_index is not None:
        of = f" of {summary.num_nodes}" if summary.num_nodes else ""
        fields.append(f"*Node index*\n{summary.node_index}{of}")
    elif summary.num_nodes:
        fields.append(f"*Nodes*\n{summary.num_nodes} (result of the main node)")
    if summary.container_name:
        fields.append(f"*Container*\n{slack_text(summary.container_name, 200)}")
    return fields


def _earlier_attempts_text(summary: FailureSummary) -> str:
    lines = ["*Earlier attempts*"]
    for attempt in summary.earlier_attempts:
        ran = f" · ran {format_duration(attempt.ran_seconds)}" if attempt.ran_seconds is not None else ""
        lines.append(f"• attempt {attempt.number}: {code_safe(slack_text(attempt.cause, 250))}{ran}")
    return "\n".join(lines)


def _tail_text(tail: LogTail, summary: FailureSummary) -> str:
    """The tail in a code block, the newest lines kept when they do not all fit one section."""
    attempt = f" of attempt {summary.attempt_count}" if summary.attempt_count else ""
    rendered = [code_safe(slack_text(line, 600)) for line in tail.lines]
    room = MAX_SECTION_TEXT - 120  # the title, the fences and the note about cut lines
    kept: list[str] = []
    for line in reversed(rendered):
        if sum(len(k) + 1 for k in kept) + len(line) + 1 > room:
            break
        kept.append(line)
    kept.reverse()
    cut = len(rendered) - len(kept)
    title = f"*Last {len(kept)} log line{'' if len(kept) == 1 else 's'}{attempt}*"
    if cut:
        title += f" _({cut} earlier lines left out to fit Slack)_"
    body = "\n".join(kept) or " "
    return f"{title}\n```{body}```"


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
    if event.detail.node_details is not None or "#" in (event.detail.job_id or ""):
        return "node of a multi-node job (its parent job's alert tells the failure)"
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
    """`summarize` with this stack's region, log group, job definition and redaction patterns."""
    definition = event.detail.job_definition
    return summarize(
        event,
        default_region=settings.aws_region,
        default_log_group=default_log_group(settings, definition),
        job_type=job_type_of(settings, definition),
        redactor=redactor_for(settings.log_redact_patterns),
    )


def read_log_tail(
    summary: FailureSummary,
    settings: FailureNotifySettings,
    lambda_context: LambdaContext | None = None,
    *,
    max_lines: int | None = None,
) -> LogTail:
    """The failed attempt's last `max_lines` log lines (default: the stack's LOG_TAIL_LINES), leaving the
    Slack post the time it needs (never raises)."""
    if summary.is_array_parent:  # each child has its own log; the parent's alert points to the digest
        return LogTail(OFF)
    policy = settings.delivery_policy()
    reserved = policy.safety_margin_seconds + policy.timeout_seconds + 2  # + the secret and the record
    return read_tail(
        summary.log_group,
        summary.log_stream,
        max_lines=settings.log_tail_lines if max_lines is None else max_lines,
        budget_seconds=read_budget(remaining_seconds(lambda_context), reserved),
        redactor=redactor_for(settings.log_redact_patterns),
    )


def post_failure_alert(
    event: JobStateChange,
    summary: FailureSummary,
    settings: FailureNotifySettings,
    lambda_context: LambdaContext | None = None,
) -> NotifyOutcome:
    """Post the failed job's own message, once per job and attempt count."""
    channel = channel_for(event.detail.job_definition, settings)
    logger.append_keys(job_id=summary.job_id, job_name=summary.job_name, job_type=channel.job_type)
    tail = read_log_tail(summary, settings, lambda_context, max_lines=channel.log_tail_lines)
    options = MessageOptions(
        channel.mention,
        settings.environment,
        settings.mention_on_cancel if channel.mention_on_cancel is None else channel.mention_on_cancel,
        rerun_button=settings.rerun_button
        and channel.rerun_button
        and is_stack_definition(settings.job_name_prefix, event.detail.job_definition),
    )
    alert = build_message(summary, options=options, tail=tail)

    key = f"{event.detail.job_id or event.id}#{summary.attempt_count}#FAILED"
    secret_name = channel.secret_name or None
    if not post_once(IDEMPOTENCY_PREFIX, key, alert, settings, lambda_context, secret_name=secret_name):
        metrics.add_metric(name="DuplicateSkipped", unit=MetricUnit.Count, value=1)
        logger.info("Duplicate delivery, alert already posted")
        return NotifyOutcome(notified=True, job_id=summary.job_id, duplicate=True)
    metrics.add_metric(name="FailureNotified", unit=MetricUnit.Count, value=1)
    logger.info(
        "Failure alert posted",
        extra={
            "failure_class": summary.diagnosis.key,
            "exit_code": summary.exit_code,
            "attempts": summary.attempt_count,
            "queue": summary.queue_name,
            "log_tail": tail.status,
        },
    )
    return NotifyOutcome(notified=True, job_id=summary.job_id)
