"""Each function's environment as one typed settings object, validated once per execution environment.

One rule for every function: the first handler call reads os.environ into the function's settings class
and keeps the result for the life of the execution environment (Lambda never changes a running
environment's variables); `reset()` forgets it (tests, the emulator's fresh deploys). A missing or
malformed variable raises ConfigurationError naming every problem at once, so a bad deploy fails on its
first event with a message that says what to fix.

The classes are assembled from shared pieces (job submission, Slack delivery, storm windows). They are
plain classes with a few lines of validation, not a validation library's models: this runs on every cold
start (bench/cold_start.py).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

from batch_dispatch.alerts.redaction import compile_patterns
from batch_dispatch.expectations import check_duration, check_success_every
from batch_dispatch.slack.delivery_policy import DeliveryPolicy


class ConfigurationError(RuntimeError):
    """The function's environment is missing or malformed: a deployment problem, not a data problem."""


_REQUIRED = object()
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def _boolean(raw: str) -> bool:
    text = raw.strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ValueError(f"must be true or false, got {raw!r}")


_CONVERTERS: dict[str, Any] = {"int": int, "float": float, "str": str, "bool": _boolean}


class EnvVar:
    """A settings field: the environment variable it comes from, its default, bounds and extra check."""

    def __init__(
        self,
        name: str,
        default: Any,
        ge: float | None,
        le: float | None,
        choices: tuple[str, ...],
        check: Callable[[Any], object] | None = None,
    ) -> None:
        self.name, self.default, self.ge, self.le, self.choices = name, default, ge, le, choices
        self.check = check

    def convert(self, raw: str, kind: str) -> Any:
        value = _CONVERTERS.get(kind, str)(raw)
        if self.ge is not None and value < self.ge:
            raise ValueError(f"must be >= {self.ge}, got {raw!r}")
        if self.le is not None and value > self.le:
            raise ValueError(f"must be <= {self.le}, got {raw!r}")
        if self.choices and value not in self.choices:
            raise ValueError(f"must be one of {', '.join(self.choices)}, got {raw!r}")
        if self.check is not None:
            self.check(value)  # raises ValueError saying what is wrong
        return value


def env(
    name: str,
    default: Any = _REQUIRED,
    *,
    ge: float | None = None,
    le: float | None = None,
    choices: tuple[str, ...] = (),
    check: Callable[[Any], object] | None = None,
) -> Any:
    """A settings field read from environment variable `name` (required unless a default is given).

    `check(value)` may raise ValueError to refuse a value the bounds cannot describe (a bad regex)."""
    return EnvVar(name, default, ge, le, choices, check)


class Settings:
    """Base of every settings class: fields are class attributes made with `env(...)`, typed by their
    annotation (str, int or float). Plain classes, not dataclasses: this runs on every cold start."""

    def __init__(self, **values: Any) -> None:
        for name, spec in self.fields().items():
            value = values.get(name, spec.default)
            if value is _REQUIRED:
                raise TypeError(f"{type(self).__name__} needs {name}")
            setattr(self, name, value)

    @classmethod
    def fields(cls) -> dict[str, EnvVar]:
        found: dict[str, EnvVar] = {}
        for klass in reversed(cls.__mro__):
            found.update({k: v for k, v in vars(klass).items() if isinstance(v, EnvVar)})
        return found

    @classmethod
    def kinds(cls) -> dict[str, str]:
        found: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            found.update({k: str(v) for k, v in vars(klass).get("__annotations__", {}).items()})
        return found

    def problems(self) -> list[str]:
        """What is wrong between fields (each field is valid on its own): a subclass's cross-checks."""
        return []

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.fields())
        return f"{type(self).__name__}({shown})"


SettingsT = TypeVar("SettingsT", bound=Settings)


def from_environment(cls: type[SettingsT], environ: Mapping[str, str] | None = None) -> SettingsT:
    """Build `cls` from `environ` (default os.environ), or raise ConfigurationError listing every problem."""
    environ = os.environ if environ is None else environ
    kinds = cls.kinds()
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name, spec in cls.fields().items():
        raw = environ.get(spec.name, "")
        if raw == "":
            if spec.default is _REQUIRED:
                problems.append(f"{spec.name}: required")
            continue
        try:
            values[name] = spec.convert(raw, kinds.get(name, "str"))
        except ValueError as error:
            problems.append(f"{spec.name}: {error}")
    if not problems:
        settings = cls(**values)
        problems = settings.problems()
        if not problems:
            return settings
    raise ConfigurationError(
        f"{cls.__name__} is misconfigured ({'; '.join(problems)}). "
        "Deploy with `sam deploy` (template.yaml sets these) or export them for local runs."
    )


_loaded: dict[type, Any] = {}


def load(cls: type[SettingsT]) -> SettingsT:
    """The function's settings, read and validated on first use, then kept (see the module docstring)."""
    if cls not in _loaded:
        _loaded[cls] = from_environment(cls)
    loaded: SettingsT = _loaded[cls]
    return loaded


def reset() -> None:
    """Forget loaded settings (a new execution environment)."""
    _loaded.clear()


# --- shared pieces ----------------------------------------------------------------------------------


class CatalogSettings(Settings):
    """The job catalog: the default job type (the stack's own parameters) and the registry's path."""

    job_queue_arn: str = env("JOB_QUEUE_ARN")
    job_definition_arn: str = env("JOB_DEFINITION_ARN")
    job_name_prefix: str = env("JOB_NAME_PREFIX", "batch-dispatch")
    upload_prefix: str = env("UPLOAD_PREFIX", "")
    upload_suffix: str = env("UPLOAD_SUFFIX", "")
    job_types_path: str = env("JOB_TYPES_PATH", "")  # "" = no registry: the default job type only
    job_types_max_age_seconds: int = env("JOB_TYPES_MAX_AGE_SECONDS", 60, ge=0, le=3600)


class JobSubmitSettings(CatalogSettings):
    """What every job-submitting function needs."""

    idempotency_table_name: str = env("IDEMPOTENCY_TABLE_NAME")
    environment: str = env("ENVIRONMENT", "dev")


class AlertStateSettings(Settings):
    """The alert functions' state table: storm windows and the Slack post pacing live there."""

    alert_state_table_name: str = env("ALERT_STATE_TABLE_NAME", "")


class SlackSettings(AlertStateSettings):
    """Where and how alerts are posted. Delivery tuning keeps the worst case inside the Lambda timeout.
    Posts to one webhook are spaced `slack_seconds_between_posts` apart (Slack: one a second) through
    the alert-state table; without one they are not paced."""

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
    # Slack takes one post a second per webhook, counted when a post arrives: 0.1 s of room for the way
    slack_seconds_between_posts: float = env("SLACK_SECONDS_BETWEEN_POSTS", 1.1, ge=0, le=10)

    def delivery_policy(self) -> DeliveryPolicy:
        return DeliveryPolicy(
            timeout_seconds=self.slack_timeout_seconds,
            max_retries=self.slack_max_retries,
            backoff_seconds=self.slack_backoff_seconds,
            max_retry_after_seconds=self.slack_max_retry_after_seconds,
            budget_seconds=self.slack_budget_seconds,
            secret_max_age_seconds=self.slack_secret_max_age_seconds,
        )


class StormSettings(AlertStateSettings):
    """Failure-storm windows. Without a table and queue, storm tracking is off (every failure posts)."""

    storm_queue_url: str = env("STORM_QUEUE_URL", "")
    storm_threshold: int = env("STORM_THRESHOLD", 10, ge=1, le=1000)
    storm_window_seconds: int = env("STORM_WINDOW_SECONDS", 300, ge=10, le=780)
    storm_grace_seconds: int = env("STORM_GRACE_SECONDS", 90, ge=0, le=120)

    @property
    def storm_enabled(self) -> bool:
        return bool(self.alert_state_table_name and self.storm_queue_url)


# --- one class per function -------------------------------------------------------------------------


class ScheduleSubmitSettings(JobSubmitSettings):
    """ScheduleSubmitFunction."""


class S3SubmitSettings(JobSubmitSettings, SlackSettings):
    """S3SubmitFunction: one job per object, or (SUBMIT_MODE=ARRAY) one array job per batch; the loop
    guard (off with LOOP_GUARD_MAX_JOBS=0) parks in INTAKE_DLQ_URL and alerts through Slack."""

    submit_mode: str = env("SUBMIT_MODE", "PER_OBJECT", choices=("PER_OBJECT", "ARRAY"))
    manifest_bucket: str = env("MANIFEST_BUCKET", "")  # "" = the uploads' bucket
    manifest_prefix: str = env("MANIFEST_PREFIX", "_batch-dispatch/manifests/")
    max_array_size: int = env("MAX_ARRAY_SIZE", 10_000, ge=2, le=10_000)
    intake_bucket: str = env("INTAKE_BUCKET", "")  # "" = unknown: job types' routes apply to any bucket
    output_prefix: str = env("OUTPUT_PREFIX", "")  # the default job type's
    loop_guard_max_jobs: int = env("LOOP_GUARD_MAX_JOBS", 0, ge=0, le=100)
    loop_guard_window_seconds: int = env("LOOP_GUARD_WINDOW_SECONDS", 3600, ge=60, le=604800)
    intake_dlq_url: str = env("INTAKE_DLQ_URL", "")
    # Only the loop guard's alert posts, so the webhook is optional here.
    slack_webhook_secret_name: str = env("SLACK_WEBHOOK_SECRET_NAME", "")

    @property
    def array_mode(self) -> bool:
        return self.submit_mode == "ARRAY"

    @property
    def loop_guard_on(self) -> bool:
        return self.loop_guard_max_jobs > 0


class FailureNotifySettings(SlackSettings, StormSettings):
    """FailureNotifyFunction: failed jobs, blocked queues, storm tracking, log tails."""

    job_queue_arn: str = env("JOB_QUEUE_ARN", "")  # the default job type's queue
    # The stack's three queues (normal, high and low priority), comma-separated: blocked-queue advice
    # names the stack's parameters for these only.
    stack_job_queue_arns: str = env("STACK_JOB_QUEUE_ARNS", "")
    job_definition_arn: str = env("JOB_DEFINITION_ARN", "")
    job_name_prefix: str = env("JOB_NAME_PREFIX", "batch-dispatch")
    job_types_path: str = env("JOB_TYPES_PATH", "")
    job_types_max_age_seconds: int = env("JOB_TYPES_MAX_AGE_SECONDS", 60, ge=0, le=3600)
    job_log_group_name: str = env("JOB_LOG_GROUP_NAME", "/aws/batch/job")
    environment: str = env("ENVIRONMENT", "")
    blocked_alert_quiet_seconds: int = env("BLOCKED_ALERT_QUIET_SECONDS", 21600, ge=60)
    runnable_time_limit_seconds: int = env("RUNNABLE_TIME_LIMIT_SECONDS", 0, ge=0)
    mention_on_cancel: bool = env("MENTION_ON_CANCEL", False)
    log_tail_lines: int = env("LOG_TAIL_LINES", 20, ge=0, le=100)
    log_redact_patterns: str = env("LOG_REDACT_PATTERNS", "", check=compile_patterns)
    rerun_button: bool = env("RERUN_BUTTON", False)  # EnableRerunButton: a Rerun button on our jobs' alerts

    @property
    def own_job_queue_arns(self) -> frozenset[str]:
        """The stack's own job queues (JOB_QUEUE_ARN among them), as opposed to AdditionalAlertQueueArns."""
        listed = (arn.strip() for arn in self.stack_job_queue_arns.split(","))
        return frozenset(arn for arn in (self.job_queue_arn, *listed) if arn)


class StormDigestSettings(SlackSettings, StormSettings):
    """StormDigestFunction: closes storm windows and posts digests."""


class WatchdogSettings(SlackSettings, CatalogSettings):
    """WatchdogFunction: late job types, long-running jobs and parked schedule ticks, checked every few
    minutes. The stack's schedule and expectations describe the default job type."""

    alert_state_table_name: str = env("ALERT_STATE_TABLE_NAME")
    schedule_dlq_url: str = env("SCHEDULE_DLQ_URL")
    schedule_expression: str = env("SCHEDULE_EXPRESSION", "")
    schedule_enabled: bool = env("SCHEDULE_ENABLED", False)
    expect_success_every: str = env("EXPECT_SUCCESS_EVERY", "auto", check=check_success_every)
    job_expected_duration: str = env("JOB_EXPECTED_DURATION", "off", check=check_duration)
    environment: str = env("ENVIRONMENT", "")
    dlq_peek_limit: int = env("DLQ_PEEK_LIMIT", 100, ge=1, le=1000)


SLACK_USER_ID = re.compile(r"[UW][A-Z0-9]{2,20}")
SLACK_GROUP_ID = re.compile(r"S[A-Z0-9]{2,20}")


def comma_separated(text: str) -> tuple[str, ...]:
    """The parts of a comma-separated list, stripped, in order, each once (empty parts left out)."""
    return tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))


def slack_user_ids(text: str) -> frozenset[str]:
    """ALLOWED_SLACK_USERS: Slack user ids (U..., W...), comma-separated. A user group id (S...) belongs in
    ALLOWED_SLACK_GROUPS (its members are looked up with the bot token)."""
    ids = frozenset(comma_separated(text))
    groups = sorted(i for i in ids if SLACK_GROUP_ID.fullmatch(i))
    if groups:
        raise ValueError(
            f"user group ids go in ALLOWED_SLACK_GROUPS (RerunAllowedSlackGroups): {', '.join(groups)}"
        )
    malformed = sorted(i for i in ids if not SLACK_USER_ID.fullmatch(i))
    if malformed:
        raise ValueError(f"not Slack user ids: {', '.join(malformed)} (expected U0123ABCD, comma-separated)")
    return ids


def slack_group_ids(text: str) -> frozenset[str]:
    """ALLOWED_SLACK_GROUPS: Slack user group ids (S...), comma-separated."""
    ids = frozenset(comma_separated(text))
    malformed = sorted(i for i in ids if not SLACK_GROUP_ID.fullmatch(i))
    if malformed:
        raise ValueError(
            f"not Slack user group ids: {', '.join(malformed)} (expected S0123ABCD, comma-separated)"
        )
    return ids


def slack_api_url(text: str) -> str:
    """SLACK_API_URL: the Web API's base URL, https (http only on loopback: the local Slack stand-in)."""
    parts = urlsplit(text)
    loopback = parts.scheme == "http" and parts.hostname == "127.0.0.1"
    if not (parts.scheme == "https" or loopback) or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"must be an https:// base URL such as https://slack.com/api/, got {text!r}")
    return text if text.endswith("/") else text + "/"


class SlackActionsSettings(Settings):
    """SlackActionsFunction: Slack's Rerun button clicks, verified with the app's signing secret."""

    slack_signing_secret_name: str = env("SLACK_SIGNING_SECRET_NAME")
    allowed_slack_users: str = env("ALLOWED_SLACK_USERS", "", check=slack_user_ids)
    allowed_slack_groups: str = env("ALLOWED_SLACK_GROUPS", "", check=slack_group_ids)
    slack_bot_token_secret_name: str = env("SLACK_BOT_TOKEN_SECRET_NAME", "")  # "": no group lookups
    slack_api_url: str = env("SLACK_API_URL", "https://slack.com/api/", check=slack_api_url)
    # A group lookup shares Slack's 3-second wait with the rerun and the reply: at most this long in all.
    slack_api_timeout_seconds: float = env("SLACK_API_TIMEOUT_SECONDS", 1.0, ge=0.1, le=2.5)
    # A warm function trusts a group's member list this long (someone removed can still click meanwhile).
    slack_group_members_max_age_seconds: int = env("SLACK_GROUP_MEMBERS_MAX_AGE_SECONDS", 60, ge=0, le=900)
    idempotency_table_name: str = env("IDEMPOTENCY_TABLE_NAME")
    stack_name: str = env("JOB_NAME_PREFIX")  # the stack's name: its job definitions are <stack>_*
    manifest_prefix: str = env("MANIFEST_PREFIX", "_batch-dispatch/manifests/")
    slack_secret_max_age_seconds: int = env("SLACK_SECRET_MAX_AGE_SECONDS", 300, ge=0)
    # The job catalog: a job type's own RerunAllowedSlackUsers/Groups replace the stack's for its jobs.
    job_types_path: str = env("JOB_TYPES_PATH", "")  # "" = no registry: the stack's lists for every job
    job_types_max_age_seconds: int = env("JOB_TYPES_MAX_AGE_SECONDS", 60, ge=0, le=3600)

    @property
    def allowed_users(self) -> frozenset[str]:
        return slack_user_ids(self.allowed_slack_users)

    @property
    def allowed_groups(self) -> tuple[str, ...]:
        """In the order configured (looked up in that order)."""
        return comma_separated(self.allowed_slack_groups)

    @property
    def api_url(self) -> str:
        return slack_api_url(self.slack_api_url)

    def problems(self) -> list[str]:
        if self.allowed_groups and not self.slack_bot_token_secret_name:
            return [
                "ALLOWED_SLACK_GROUPS needs SLACK_BOT_TOKEN_SECRET_NAME: a group's members are read with the "
                "Slack app's bot token (RerunAllowedSlackGroups needs SlackBotTokenSecretName)"
            ]
        return []
