"""Failure alerts: read a "Batch Job State Change" event and build the Slack message an on-call can act on.

The event's `detail` is a DescribeJobs JobDetail, in one of several layouts:
- classic container jobs: `attempts[].container` (exitCode, reason, logStreamName);
- ECS-properties jobs (and multi-container multi-node jobs): `attempts[].taskProperties[].containers[]`,
  with `essential` only known from `ecsProperties.taskProperties[].containers[]` (matched by name);
- multi-node children (`jobId#N`, `nodeDetails.nodeIndex`) and array children (`jobId:N`,
  `arrayProperties.index`).
Only the LAST attempt matters (Batch sends FAILED once, after every retry). `logStreamName` exists only
if the attempt reached RUNNING; the log group is the job definition's `awslogs-group` or `/aws/batch/job`.

Every field is optional and parsing is lenient (a malformed field is dropped, never fatal): an alert with
gaps beats a crashed notifier. Everything a user controls is escaped for Slack and truncated to its limits.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

from aws_lambda_powertools.utilities.idempotency import idempotent_function
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from batch_dispatch import slack
from batch_dispatch.config import load_settings
from batch_dispatch.idempotency import IDEMPOTENCY_TTL_SECONDS, idempotency_config, persistence_layer
from batch_dispatch.observability import MetricUnit, logger, metrics, tracer
from batch_dispatch.runnable_reasons import cancellation_code, describe

IDEMPOTENCY_PREFIX = "failure-alert"
DEFAULT_LOG_GROUP = "/aws/batch/job"
DETAIL_TYPE = "Batch Job State Change"

# Slack Block Kit limits (https://api.slack.com/reference/block-kit/blocks).
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_FIELDS = 10
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_BUTTON_URL = 3000
# Our own bounds: Slack accepts ~40k chars of `text`, but a notification preview needs far less.
MAX_FALLBACK_TEXT = 3000
MAX_PARAMETER_VALUE = 300
MAX_PARAMETERS_SHOWN = 25

_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_MENTION = re.compile(r"^<(!here|!channel|!everyone|!subteam\^[A-Z0-9]+|@[UW][A-Z0-9]+)(\|[^<>]*)?>$")
_BARE_MENTIONS = {"@here": "<!here>", "@channel": "<!channel>", "here": "<!here>", "channel": "<!channel>"}
_ELLIPSIS = "…"


# --------------------------------------------------------------------------------------------------------
# Settings


class NotifySettings(BaseModel):
    """FailureNotifyFunction's environment (template.yaml sets the first four; the rest have defaults)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    slack_webhook_secret_name: str = Field(alias="SLACK_WEBHOOK_SECRET_NAME", min_length=1)
    idempotency_table_name: str = Field(alias="IDEMPOTENCY_TABLE_NAME", min_length=1)
    slack_mention: str = Field(default="", alias="SLACK_MENTION")
    job_queue_arn: str = Field(default="", alias="JOB_QUEUE_ARN")
    job_definition_arn: str = Field(default="", alias="JOB_DEFINITION_ARN")
    job_log_group_name: str = Field(default=DEFAULT_LOG_GROUP, alias="JOB_LOG_GROUP_NAME")
    aws_region: str = Field(default="us-east-1", alias="AWS_REGION")
    # Delivery tuning: the worst case (timeouts, Retry-After waits) must stay well inside the Lambda timeout.
    slack_timeout_seconds: int = Field(default=5, alias="SLACK_TIMEOUT_SECONDS", ge=1, le=30)
    slack_max_retries: int = Field(default=2, alias="SLACK_MAX_RETRIES", ge=0, le=5)
    slack_backoff_seconds: float = Field(default=0.5, alias="SLACK_BACKOFF_SECONDS", ge=0, le=10)
    slack_max_retry_after_seconds: int = Field(default=10, alias="SLACK_MAX_RETRY_AFTER_SECONDS", ge=0, le=60)
    slack_budget_seconds: float = Field(default=20, alias="SLACK_BUDGET_SECONDS", gt=0, le=300)
    slack_secret_max_age_seconds: int = Field(default=300, alias="SLACK_SECRET_MAX_AGE_SECONDS", ge=0)
    # Operations (template.yaml sets these; without a table and queue, storm tracking is off and every
    # FAILED job gets its own message, as before).
    alert_state_table_name: str = Field(default="", alias="ALERT_STATE_TABLE_NAME")
    storm_queue_url: str = Field(default="", alias="STORM_QUEUE_URL")
    storm_threshold: int = Field(default=10, alias="STORM_THRESHOLD", ge=1, le=1000)
    storm_window_seconds: int = Field(default=300, alias="STORM_WINDOW_SECONDS", ge=10, le=780)
    storm_grace_seconds: int = Field(default=90, alias="STORM_GRACE_SECONDS", ge=0, le=120)
    blocked_alert_quiet_seconds: int = Field(default=21600, alias="BLOCKED_ALERT_QUIET_SECONDS", ge=60)
    runnable_time_limit_seconds: int = Field(default=0, alias="RUNNABLE_TIME_LIMIT_SECONDS", ge=0)

    @property
    def storm_enabled(self) -> bool:
        return bool(self.alert_state_table_name and self.storm_queue_url)

    def delivery_policy(self) -> slack.DeliveryPolicy:
        return slack.DeliveryPolicy(
            timeout_seconds=self.slack_timeout_seconds,
            max_retries=self.slack_max_retries,
            backoff_seconds=self.slack_backoff_seconds,
            max_retry_after_seconds=self.slack_max_retry_after_seconds,
            budget_seconds=self.slack_budget_seconds,
            secret_max_age_seconds=self.slack_secret_max_age_seconds,
        )


def notify_settings() -> NotifySettings:
    """Validated on every invocation (microseconds; nothing stale to reset between emulator deploys).

    Raises ConfigurationError naming every missing or malformed variable.
    """
    return load_settings(NotifySettings)


# --------------------------------------------------------------------------------------------------------
# Event model: every field optional, unknown fields kept (AWS adds fields).


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class LogConfiguration(_Lenient):
    log_driver: str | None = Field(default=None, alias="logDriver")
    options: dict[str, Any] = Field(default_factory=dict)


class ContainerDetail(_Lenient):
    name: str | None = None
    essential: bool | None = None
    exit_code: int | None = Field(default=None, alias="exitCode")
    reason: str | None = None
    log_stream_name: str | None = Field(default=None, alias="logStreamName")
    log_configuration: LogConfiguration | None = Field(default=None, alias="logConfiguration")
    task_arn: str | None = Field(default=None, alias="taskArn")


class TaskProperties(_Lenient):
    containers: list[ContainerDetail] = Field(default_factory=list)
    task_arn: str | None = Field(default=None, alias="taskArn")


class EcsProperties(_Lenient):
    task_properties: list[TaskProperties] = Field(default_factory=list, alias="taskProperties")


class Attempt(_Lenient):
    container: ContainerDetail | None = None
    task_properties: list[TaskProperties] = Field(default_factory=list, alias="taskProperties")
    started_at: int | None = Field(default=None, alias="startedAt")
    stopped_at: int | None = Field(default=None, alias="stoppedAt")
    status_reason: str | None = Field(default=None, alias="statusReason")


class ArrayProperties(_Lenient):
    index: int | None = None
    size: int | None = None
    status_summary: dict[str, int] = Field(default_factory=dict, alias="statusSummary")


class NodeDetails(_Lenient):
    node_index: int | None = Field(default=None, alias="nodeIndex")
    is_main_node: bool | None = Field(default=None, alias="isMainNode")


class NodeRange(_Lenient):
    target_nodes: str | None = Field(default=None, alias="targetNodes")
    container: ContainerDetail | None = None
    ecs_properties: EcsProperties | None = Field(default=None, alias="ecsProperties")


class NodeProperties(_Lenient):
    num_nodes: int | None = Field(default=None, alias="numNodes")
    main_node: int | None = Field(default=None, alias="mainNode")
    node_range_properties: list[NodeRange] = Field(default_factory=list, alias="nodeRangeProperties")


class JobDetail(_Lenient):
    job_name: str | None = Field(default=None, alias="jobName")
    job_id: str | None = Field(default=None, alias="jobId")
    job_arn: str | None = Field(default=None, alias="jobArn")
    job_queue: str | None = Field(default=None, alias="jobQueue")
    job_definition: str | None = Field(default=None, alias="jobDefinition")
    status: str | None = None
    status_reason: str | None = Field(default=None, alias="statusReason")
    attempts: list[Attempt] = Field(default_factory=list)
    created_at: int | None = Field(default=None, alias="createdAt")
    started_at: int | None = Field(default=None, alias="startedAt")
    stopped_at: int | None = Field(default=None, alias="stoppedAt")
    parameters: dict[str, Any] = Field(default_factory=dict)
    container: ContainerDetail | None = None
    ecs_properties: EcsProperties | None = Field(default=None, alias="ecsProperties")
    array_properties: ArrayProperties | None = Field(default=None, alias="arrayProperties")
    node_details: NodeDetails | None = Field(default=None, alias="nodeDetails")
    node_properties: NodeProperties | None = Field(default=None, alias="nodeProperties")


class BatchJobStateChange(_Lenient):
    id: str | None = None
    detail_type: str | None = Field(default=None, alias="detail-type")
    source: str | None = None
    account: str | None = None
    region: str | None = None
    time: str | None = None
    detail: JobDetail = Field(default_factory=JobDetail)


ModelT = TypeVar("ModelT", bound=BaseModel)


def _lenient_validate(model: type[ModelT], data: Any, max_rounds: int = 50) -> ModelT:
    """Validate `data`, dropping each field that fails (wrong type, null list...) instead of failing."""
    if not isinstance(data, dict):
        return model()
    data = json.loads(json.dumps(data, default=str))  # a private deep copy we may prune
    for _ in range(max_rounds):
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            pruned = False
            for error in exc.errors(include_url=False):
                pruned = _prune(data, error["loc"]) or pruned
            if not pruned:
                break
    return model()


def _prune(data: Any, loc: tuple[int | str, ...]) -> bool:
    node = data
    for part in loc[:-1]:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if in_dict or in_list:
            node = node[part]
        else:
            break
    else:
        last = loc[-1] if loc else None
        if isinstance(node, dict) and last in node:
            del node[last]
            return True
        if isinstance(node, list) and isinstance(last, int) and last < len(node):
            del node[last]
            return True
    # The failing location is deeper than the data (e.g. a discriminator): drop the nearest existing key.
    return _prune(data, loc[:-1]) if len(loc) > 1 else False


def parse_event(event: Any) -> BatchJobStateChange:
    """The event as a model. Never raises: missing or malformed fields become None/empty."""
    return _lenient_validate(BatchJobStateChange, event)


# --------------------------------------------------------------------------------------------------------
# What the message says, independent of Slack


@dataclass(frozen=True)
class FailureSummary:
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
    parameters: dict[str, str] = field(default_factory=dict)
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
        return batch_console_url(self.region, self.job_id)

    @property
    def log_url(self) -> str | None:
        if not self.log_stream:
            return None
        return cloudwatch_log_url(self.region, self.log_group or DEFAULT_LOG_GROUP, self.log_stream)


def default_log_group(settings: NotifySettings, job_definition_arn: str | None) -> str:
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
    event: BatchJobStateChange, default_region: str = "us-east-1", default_log_group: str = DEFAULT_LOG_GROUP
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
        if candidate is not None and candidate.log_configuration is not None:
            group = candidate.log_configuration.options.get("awslogs-group")
            if isinstance(group, str) and group:
                return group
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
# Links


def _console_domain(region: str) -> str:
    if region.startswith("cn-"):
        return f"{region}.console.amazonaws.cn"
    if region.startswith("us-gov-"):
        return f"{region}.console.amazonaws-us-gov.com"
    return f"{region}.console.aws.amazon.com"


def batch_console_url(region: str, job_id: str) -> str:
    return (
        f"https://{_console_domain(region)}/batch/home?region={region}#jobs/detail/{quote(job_id, safe=':')}"
    )


def console_encode(text: str) -> str:
    """CloudWatch console fragment encoding: URL-encode, then `%` -> `$25` (`/` -> `$252F`)."""
    return quote(text, safe="").replace("%", "$25")


def cloudwatch_log_url(region: str, log_group: str, log_stream: str) -> str:
    return (
        f"https://{_console_domain(region)}/cloudwatch/home?region={region}"
        f"#logsV2:log-groups/log-group/{console_encode(log_group)}/log-events/{console_encode(log_stream)}"
    )


# --------------------------------------------------------------------------------------------------------
# Slack text safety


def escape(text: Any) -> str:
    """Slack's three control characters, so user text can never become a mention or a link."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _code_safe(text: str) -> str:
    """Backticks in user text would close our code spans; use a look-alike (U+02CB) instead."""
    return text.replace("`", "\u02cb")


def truncate(text: str, limit: int) -> str:
    """`text` cut to `limit` characters with an ellipsis, never splitting an `&amp;`-style entity."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 0)]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:] and len(cut) - amp <= 5:
        cut = cut[:amp]
    return cut + _ELLIPSIS


def safe(text: Any, limit: int) -> str:
    """Escaped and truncated user text (truncate the raw text first: escaping only makes it longer)."""
    return truncate(escape(truncate(str(text), limit)), limit)


def normalize_mention(mention: str) -> str:
    """A Slack mention token as configured, or "" if it is not one (then it would only print literally)."""
    mention = mention.strip()
    if not mention:
        return ""
    mention = _BARE_MENTIONS.get(mention, mention)
    if _MENTION.match(mention):
        return mention
    logger.warning("SLACK_MENTION is not a Slack mention token; ignoring it", extra={"mention": mention})
    return ""


# --------------------------------------------------------------------------------------------------------
# The Slack message


def build_message(summary: FailureSummary, mention: str = "") -> dict[str, Any]:
    """Block Kit blocks plus a plain `text` fallback (for notifications), within Slack's limits."""
    mention = normalize_mention(mention)
    lead = f"{mention} " if mention else ""
    name = safe(summary.job_name, 200)
    queue = safe(summary.queue_name, 200) if summary.queue_name else "unknown queue"
    attempts = f"{summary.attempt_count} attempt{'s' if summary.attempt_count != 1 else ''}"

    verb = "CANCELLED" if summary.cancelled_code else "FAILED"
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": safe(f"Batch job {verb}: {summary.job_name}", MAX_HEADER_TEXT),
            },
        }
    ]
    if summary.cancelled_code:
        intro = (
            f"{lead}:no_entry_sign: *{name}* was cancelled by queue *{queue}* after waiting too long in "
            f"RUNNABLE: {safe(describe(summary.cancelled_code).title, 300)}."
        )
    else:
        intro = f"{lead}:x: *{name}* failed after {attempts} in queue *{queue}*."
    if summary.status_reason:
        intro += f"\n*Status reason:* {_code_safe(safe(summary.status_reason, 1000))}"
    blocks.append(_section(intro))

    fields = [
        f"*Job ID*\n`{_code_safe(safe(summary.job_id, 200))}`",
        f"*Queue*\n{queue}",
        f"*Job definition*\n{safe(summary.job_definition, 300) if summary.job_definition else 'unknown'}",
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
        fields.append(f"*Container*\n{safe(summary.container_name, 200)}")
    if summary.array_size is not None and summary.array_index is None:
        failed = f"{summary.array_failed} of " if summary.array_failed is not None else ""
        fields.append(f"*Array children failed*\n{failed}{summary.array_size} (digest follows)")
    blocks.append(
        {
            "type": "section",
            "fields": [{"type": "mrkdwn", "text": truncate(f, MAX_FIELD_TEXT)} for f in fields[:MAX_FIELDS]],
        }
    )

    if summary.attempt_reason:
        reason = _code_safe(safe(summary.attempt_reason, MAX_SECTION_TEXT - 60))
        blocks.append(_section(f"*Last attempt reason:*\n```{reason}```"))

    blocks += _parameter_sections(summary.parameters)

    links = [("Open job in Batch console", summary.console_url)]
    if summary.log_url:
        links.append(("View log stream", summary.log_url))
    else:
        blocks.append(_context("No log stream: the last attempt never reached RUNNING."))
    blocks.append(
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": label[:MAX_BUTTON_TEXT]},
                    "url": url,
                }
                for label, url in links
                if len(url) <= MAX_BUTTON_URL
            ],
        }
    )
    if summary.log_group and summary.log_stream:
        group, stream = _code_safe(safe(summary.log_group, 500)), _code_safe(safe(summary.log_stream, 800))
        blocks.append(_context(f"Logs: `{group}` / `{stream}`"))

    return {"text": _fallback_text(summary, lead, name, queue, attempts), "blocks": cap_blocks(blocks)}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, MAX_SECTION_TEXT)}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(text, MAX_FIELD_TEXT)}]}


def _parameter_sections(parameters: Mapping[str, str]) -> list[dict[str, Any]]:
    if not parameters:
        return []
    names = sorted(parameters)
    lines = [
        f"• `{_code_safe(safe(n, 100))}`: {_code_safe(safe(parameters[n], MAX_PARAMETER_VALUE))}"
        for n in names[:MAX_PARAMETERS_SHOWN]
    ]
    if len(names) > MAX_PARAMETERS_SHOWN:
        lines.append(f"_…and {len(names) - MAX_PARAMETERS_SHOWN} more parameters (see the Batch console)_")
    sections: list[dict[str, Any]] = []
    chunk = "*Parameters*"
    for line in lines:
        if len(chunk) + 1 + len(line) > MAX_SECTION_TEXT:
            sections.append(_section(chunk))
            chunk = line
        else:
            chunk += "\n" + line
    sections.append(_section(chunk))
    return sections


def _fallback_text(summary: FailureSummary, lead: str, name: str, queue: str, attempts: str) -> str:
    verb = "CANCELLED" if summary.cancelled_code else "FAILED"
    parts = [f"{lead}Batch job {verb}: {name} ({safe(summary.job_id, 200)}) in {queue} after {attempts}"]
    if summary.exit_code is not None:
        parts.append(f"exit code {summary.exit_code}")
    reason = summary.attempt_reason or summary.status_reason
    if reason:
        parts.append(_code_safe(safe(reason, 500)))
    return truncate(" — ".join(parts), MAX_FALLBACK_TEXT)


def cap_blocks(blocks: list[dict[str, Any]], limit: int = MAX_BLOCKS) -> list[dict[str, Any]]:
    """At most `limit` blocks: the last one (the links) is kept, the overflow before it becomes a note."""
    if len(blocks) <= limit:
        return blocks
    note = _context(f"_{len(blocks) - limit + 1} more blocks left out (Slack allows {limit})._")
    return [*blocks[: limit - 2], note, blocks[-1]]


# --------------------------------------------------------------------------------------------------------
# The use case: one Slack message per failed job, however often the event is delivered


@dataclass(frozen=True)
class NotifyOutcome:
    notified: bool
    job_id: str | None = None
    duplicate: bool = False
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        if not self.notified:
            return {"notified": False, "reason": self.reason}
        return {"notified": True, "jobId": self.job_id, "duplicate": self.duplicate}


def post_once(
    prefix: str,
    key: str,
    message: dict[str, Any],
    settings: NotifySettings,
    lambda_context: LambdaContext | None = None,
    *,
    expires_after_seconds: int = IDEMPOTENCY_TTL_SECONDS,
) -> bool:
    """Post `message` unless a post under (prefix, key) succeeded within the expiry. True if posted now.

    Every Slack post goes through here: EventBridge and Lambda deliver at least once, and a failed
    post releases the record so the retry can post.
    """
    config = idempotency_config(lambda_context, expires_after_seconds)

    @idempotent_function(
        data_keyword_argument="key",
        persistence_store=persistence_layer(settings.idempotency_table_name),
        config=config,
        key_prefix=prefix,
    )
    def _post(key: Mapping[str, Any]) -> dict[str, Any]:
        slack.post_message(
            message,
            secret_name=settings.slack_webhook_secret_name,
            policy=settings.delivery_policy(),
            remaining_seconds=_remaining(lambda_context),
        )
        return {"postedAt": datetime.now(UTC).isoformat(), "duplicate": False}

    try:
        result = _post(key={"key": key})
    except slack.SlackDeliveryError as error:
        metrics.add_metric(name="NotificationFailed", unit=MetricUnit.Count, value=1)
        logger.exception("Slack notification failed", extra={"error_kind": error.kind, "alert": prefix})
        raise
    return not result.get("duplicate")


def skip_reason(event: BatchJobStateChange) -> str | None:
    """Why this event gets no alert, or None if it does."""
    if event.detail_type is not None and event.detail_type != DETAIL_TYPE:
        return f"detail-type {event.detail_type[:100]}"
    if event.detail.status != "FAILED":
        return f"status {(event.detail.status or 'missing')[:50]}"
    return None


@tracer.capture_method(capture_response=False)
def notify_failure(
    raw_event: Any, settings: NotifySettings, lambda_context: LambdaContext | None = None
) -> NotifyOutcome:
    """Post one Slack message for a FAILED job; anything else is skipped without error.

    Raises slack.SlackPermanentError / slack.SlackTransientError when Slack does not take the message
    (the idempotency record is released, so Lambda's retry or a DLQ redrive can post it).
    """
    event = parse_event(raw_event)
    if reason := skip_reason(event):
        logger.info(
            "Not a failed job, nothing to post", extra={"reason": reason, "job_id": event.detail.job_id}
        )
        metrics.add_metric(name="AlertSkipped", unit=MetricUnit.Count, value=1)
        return NotifyOutcome(notified=False, reason=reason)

    summary = summarize(
        event,
        default_region=settings.aws_region,
        default_log_group=default_log_group(settings, event.detail.job_definition),
    )
    logger.append_keys(job_id=summary.job_id, job_name=summary.job_name)
    message = build_message(summary, settings.slack_mention)

    key = f"{event.detail.job_id or event.id}#{summary.attempt_count}#FAILED"
    if not post_once(IDEMPOTENCY_PREFIX, key, message, settings, lambda_context):
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


def _remaining(lambda_context: LambdaContext | None) -> float | None:
    if lambda_context is None:
        return None
    try:
        return float(lambda_context.get_remaining_time_in_millis()) / 1000
    except (AttributeError, TypeError, ValueError):
        return None
