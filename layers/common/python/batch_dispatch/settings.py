"""Each function's environment as one typed settings object, validated once per execution environment.

One rule for every function: the first handler call reads os.environ into the function's settings class
and keeps the result for the life of the execution environment (Lambda never changes a running
environment's variables); `reset()` forgets it (tests, the emulator's fresh deploys). A missing or
malformed variable raises ConfigurationError naming every problem at once, so a bad deploy fails on its
first event with a message that says what to fix.

The classes are small dataclasses assembled from shared pieces (job submission, Slack delivery, storm
windows). Plain dataclasses, not a validation library: this runs on every cold start.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from batch_dispatch.slack.delivery_policy import DeliveryPolicy

_REQUIRED: Any = dataclasses.MISSING


class ConfigurationError(RuntimeError):
    """The function's environment is missing or malformed: a deployment problem, not a data problem."""


def env(
    name: str,
    default: Any = _REQUIRED,
    *,
    ge: float | None = None,
    le: float | None = None,
    choices: tuple[str, ...] = (),
) -> Any:
    """A settings field read from environment variable `name` (required unless a default is given)."""
    metadata = {"env": name, "ge": ge, "le": le, "choices": choices}
    return dataclasses.field(default=default, metadata=metadata)


SettingsT = TypeVar("SettingsT")


def from_environment(cls: type[SettingsT], environ: Mapping[str, str] | None = None) -> SettingsT:
    """Build `cls` from `environ` (default os.environ), or raise ConfigurationError listing every problem."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    problems: list[str] = []
    for spec in dataclasses.fields(cls):  # type: ignore[arg-type]
        name = spec.metadata.get("env")
        if name is None:
            continue
        raw = environ.get(name, "")
        if raw == "":
            if spec.default is _REQUIRED:
                problems.append(f"{name}: required")
            continue
        try:
            values[spec.name] = _convert(raw, spec)
        except ValueError as error:
            problems.append(f"{name}: {error}")
    if problems:
        raise ConfigurationError(
            f"{cls.__name__} is misconfigured ({'; '.join(problems)}). "
            "Deploy with `sam deploy` (template.yaml sets these) or export them for local runs."
        )
    return cls(**values)


def _convert(raw: str, spec: dataclasses.Field[Any]) -> Any:
    kind = spec.type if isinstance(spec.type, str) else getattr(spec.type, "__name__", "str")
    value: Any
    if kind == "int":
        value = int(raw)
    elif kind == "float":
        value = float(raw)
    else:
        value = raw
    ge, le, choices = spec.metadata["ge"], spec.metadata["le"], spec.metadata["choices"]
    if ge is not None and value < ge:
        raise ValueError(f"must be >= {ge}, got {raw!r}")
    if le is not None and value > le:
        raise ValueError(f"must be <= {le}, got {raw!r}")
    if choices and value not in choices:
        raise ValueError(f"must be one of {', '.join(choices)}, got {raw!r}")
    return value


_loaded: dict[type, Any] = {}


def load(cls: type[SettingsT]) -> SettingsT:
    """The function's settings, read and validated on first use, then kept (see the module docstring)."""
    if cls not in _loaded:
        _loaded[cls] = from_environment(cls)
    return _loaded[cls]


def reset() -> None:
    """Forget loaded settings (a new execution environment)."""
    _loaded.clear()


# --- shared pieces ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class JobSubmitSettings:
    """What every job-submitting function needs."""

    job_queue_arn: str = env("JOB_QUEUE_ARN")
    job_definition_arn: str = env("JOB_DEFINITION_ARN")
    idempotency_table_name: str = env("IDEMPOTENCY_TABLE_NAME")
    job_name_prefix: str = env("JOB_NAME_PREFIX", "batch-dispatch")
    environment: str = env("ENVIRONMENT", "dev")


@dataclass(frozen=True, kw_only=True)
class SlackSettings:
    """Where and how alerts are posted. Delivery tuning keeps the worst case inside the Lambda timeout."""

    slack_webhook_secret_name: str = env("SLACK_WEBHOOK_SECRET_NAME")
    idempotency_table_name: str = env("IDEMPOTENCY_TABLE_NAME")
    slack_mention: str = env("SLACK_MENTION", "")
    aws_region: str = env("AWS_REGION", "us-east-1")
    slack_timeout_seconds: int = env("SLACK_TIMEOUT_SECONDS", 5, ge=1, le=30)
    slack_max_retries: int = env("SLACK_MAX_RETRIES", 2, ge=0, le=5)
    slack_backoff_seconds: float = env("SLACK_BACKOFF_SECONDS", 0.5, ge=0, le=10)
    slack_max_retry_after_seconds: int = env("SLACK_MAX_RETRY_AFTER_SECONDS", 10, ge=0, le=60)
    slack_budget_seconds: float = env("SLACK_BUDGET_SECONDS", 20.0, ge=0.001, le=300)
    slack_secret_max_age_seconds: int = env("SLACK_SECRET_MAX_AGE_SECONDS", 300, ge=0)

    def delivery_policy(self) -> DeliveryPolicy:
        return DeliveryPolicy(
            timeout_seconds=self.slack_timeout_seconds,
            max_retries=self.slack_max_retries,
            backoff_seconds=self.slack_backoff_seconds,
            max_retry_after_seconds=self.slack_max_retry_after_seconds,
            budget_seconds=self.slack_budget_seconds,
            secret_max_age_seconds=self.slack_secret_max_age_seconds,
        )


@dataclass(frozen=True, kw_only=True)
class StormSettings:
    """Failure-storm windows. Without a table and queue, storm tracking is off (every failure posts)."""

    alert_state_table_name: str = env("ALERT_STATE_TABLE_NAME", "")
    storm_queue_url: str = env("STORM_QUEUE_URL", "")
    storm_threshold: int = env("STORM_THRESHOLD", 10, ge=1, le=1000)
    storm_window_seconds: int = env("STORM_WINDOW_SECONDS", 300, ge=10, le=780)
    storm_grace_seconds: int = env("STORM_GRACE_SECONDS", 90, ge=0, le=120)

    @property
    def storm_enabled(self) -> bool:
        return bool(self.alert_state_table_name and self.storm_queue_url)


# --- one class per function -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ScheduleSubmitSettings(JobSubmitSettings):
    """ScheduleSubmitFunction."""


@dataclass(frozen=True, kw_only=True)
class S3SubmitSettings(JobSubmitSettings):
    """S3SubmitFunction: one job per object, or (SUBMIT_MODE=ARRAY) one array job per batch."""

    submit_mode: str = env("SUBMIT_MODE", "PER_OBJECT", choices=("PER_OBJECT", "ARRAY"))
    manifest_bucket: str = env("MANIFEST_BUCKET", "")  # "" = the uploads' bucket
    manifest_prefix: str = env("MANIFEST_PREFIX", "_batch-dispatch/manifests/")
    max_array_size: int = env("MAX_ARRAY_SIZE", 10_000, ge=2, le=10_000)

    @property
    def array_mode(self) -> bool:
        return self.submit_mode == "ARRAY"


@dataclass(frozen=True, kw_only=True)
class FailureNotifySettings(SlackSettings, StormSettings):
    """FailureNotifyFunction: failed jobs, blocked queues, storm tracking."""

    job_queue_arn: str = env("JOB_QUEUE_ARN", "")
    job_definition_arn: str = env("JOB_DEFINITION_ARN", "")
    job_log_group_name: str = env("JOB_LOG_GROUP_NAME", "/aws/batch/job")
    blocked_alert_quiet_seconds: int = env("BLOCKED_ALERT_QUIET_SECONDS", 21600, ge=60)
    runnable_time_limit_seconds: int = env("RUNNABLE_TIME_LIMIT_SECONDS", 0, ge=0)


@dataclass(frozen=True, kw_only=True)
class StormDigestSettings(SlackSettings, StormSettings):
    """StormDigestFunction: closes storm windows and posts digests."""
