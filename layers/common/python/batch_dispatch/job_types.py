"""The job catalog: every job type of the stack, read from its registry, and which one an upload is for.

A job type is a job definition plus how it is triggered and alerted. The stack's own parameters define
the `default` job type (its definition, queue, upload route, Slack channel come from the function's
environment); every job type added to template.yaml writes one registry entry, an SSM parameter
`<JOB_TYPES_PATH>/<name>` holding JSON, which the functions read with Powertools parameters and keep
for `JOB_TYPES_MAX_AGE_SECONDS`: adding a job type never redeploys the functions.

Routing an upload (bucket, key): the job types whose bucket is the upload's and whose route fits the key
(prefix and suffix, empty = any); the longest prefix wins, then the longest suffix, then a job type
that names its bucket. A job type's bucket is its `UploadBucket` (an attached bucket), else the stack's
intake bucket; the default job type's route applies to every bucket that reaches the function (the
intake bucket and the attached ones). A key no route fits submits nothing (and is not a failure).
An upload under a job type's output prefix (in that job type's bucket) starts no job at all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from batch_dispatch.aws import clients
from batch_dispatch.aws.ssm_path_provider import SSMPathProvider
from batch_dispatch.expectations import (
    AUTO,
    OFF,
    InvalidExpectationError,
    span_seconds,
    success_every_seconds,
)
from batch_dispatch.observability import logger
from batch_dispatch.settings import SLACK_GROUP_ID, SLACK_USER_ID, comma_separated

DEFAULT = "default"
NAME_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
SUBMIT_MODES = ("PER_OBJECT", "ARRAY")
PRIORITIES = ("high", "normal", "low")
MAX_LOG_TAIL_LINES = 100  # LogTailLines, the stack's and a job type's


class RerunAllowed(NamedTuple):
    """Who may click Rerun on a job's alert: Slack user ids, and user group ids whose members may."""

    users: frozenset[str] = frozenset()
    groups: tuple[str, ...] = ()  # in the order configured (looked up in that order)
    job_type: str = ""  # the job type whose lists these are; "" = the stack's

    @property
    def nobody(self) -> bool:
        """No user and no group: a job type that allows no one to rerun it from Slack."""
        return not self.users and not self.groups


NOBODY = "none"  # a job type's RerunAllowedSlackUsers: no user by id


class JobType(NamedTuple):
    """What the functions need to know about one job type."""

    name: str
    job_definition_arn: str
    job_queue_arn: str
    job_name_prefix: str  # job names start with it: the job type's name (the default: the stack's name)
    submit_mode: str = "PER_OBJECT"
    priority: str = "normal"
    route_prefix: str = ""
    route_suffix: str = ""
    routed: bool = True  # False: uploads never start this job type (no upload route)
    bucket: str = ""  # the bucket its route applies to: "" = the stack's intake bucket
    output_prefix: str = ""  # where its jobs write: uploads there start no job ("" = none)
    webhook_secret_name: str = ""  # "" = the stack's
    mention: str = ""
    notify_succeeded: bool = False
    schedule_expression: str = ""
    schedule_timezone: str = "UTC"
    schedule_enabled: bool = False
    expect_success_every: str = AUTO  # ExpectSuccessEvery: auto, off, or "N hours" (expectations.py)
    expected_duration: str = OFF  # ExpectedDuration: off, or "N minutes"
    environment: Mapping[str, str] = MappingProxyType({})  # given to every job (container overrides)
    log_tail_lines: int | None = None  # LogTailLines of its failure alerts; None = the stack's
    mention_on_cancel: bool | None = None  # MentionOnCancel; None = the stack's
    # RerunAllowedSlackUsers and RerunAllowedSlackGroups, together; None (neither set) = the stack's
    rerun_allowed: RerunAllowed | None = None

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT

    @property
    def array_mode(self) -> bool:
        return self.submit_mode == "ARRAY"

    def matches(self, key: str, bucket: str | None = None, intake_bucket: str = "") -> bool:
        """The route fits `key` in `bucket` (None: any bucket)."""
        return (
            self.routed
            and self.applies_to(bucket, intake_bucket)
            and key.startswith(self.route_prefix)
            and key.endswith(self.route_suffix)
        )

    def applies_to(self, bucket: str | None, intake_bucket: str = "") -> bool:
        """Uploads to `bucket` concern this job type: the default job type's route applies to every bucket
        that reaches the function, another's to its own bucket (the intake bucket when it names none).
        `bucket` None, or an unknown intake bucket for a job type naming none, means any bucket."""
        if self.is_default or bucket is None:
            return True
        if self.bucket and self.bucket != intake_bucket:
            return bucket == self.bucket
        return not intake_bucket or bucket == intake_bucket

    def writes_to(self, key: str, bucket: str | None = None, intake_bucket: str = "") -> bool:
        """`key` in `bucket` is under this job type's output prefix (where its jobs write)."""
        return (
            bool(self.output_prefix)
            and self.applies_to(bucket, intake_bucket)
            and key.startswith(self.output_prefix)
        )

    @property
    def expect_success_every_seconds(self) -> int:
        """How often a job of this type must succeed (0 = not checked); `auto` follows the schedule."""
        return _or_off(
            lambda: success_every_seconds(
                self.expect_success_every,
                self.schedule_expression,
                self.schedule_timezone,
                self.schedule_enabled,
            ),
            self.name,
            "expectSuccessEvery",
        )

    @property
    def expected_duration_seconds(self) -> int:
        """How long a job of this type may run before the watchdog says so (0 = not checked)."""
        return _or_off(lambda: span_seconds(self.expected_duration) or 0, self.name, "expectedDuration")

    @property
    def definition_family(self) -> str:
        """`arn:...:job-definition/name:3` -> `name` (how a Batch event names its job type)."""
        return definition_family(self.job_definition_arn)


def _or_off(resolve: Callable[[], int], name: str, setting: str) -> int:
    """A malformed expectation (the templates refuse them; a hand-edited entry may not) checks nothing
    and says so, rather than taking the job type out of the catalog."""
    try:
        return resolve()
    except InvalidExpectationError as error:
        logger.error(
            "Invalid job type expectation ignored",
            extra={"job_type": name, "setting": setting, "reason": str(error)},
        )
        return 0


def definition_family(arn: str | None) -> str:
    return (arn or "").rsplit("/", 1)[-1].split(":", 1)[0]


def is_stack_definition(stack_name: str, job_definition_arn: str | None) -> bool:
    """A job definition of this stack: every one is named `<stack>_<job type>` (stack names have no "_")."""
    return bool(stack_name) and definition_family(job_definition_arn).startswith(f"{stack_name}_")


def job_type_name(stack_name: str, job_definition_arn: str | None) -> str | None:
    """The job type of this stack whose definition (`<stack>_<job type>`, any revision) ran a job, read
    from the name alone (no registry call); None for another stack's job definition."""
    if not is_stack_definition(stack_name, job_definition_arn):
        return None
    return definition_family(job_definition_arn)[len(stack_name) + 1 :] or None


class InvalidJobTypeError(ValueError):
    """A registry entry that does not describe a job type (it is left out, with a log line)."""


def from_registry_entry(name: str, entry: Any) -> JobType:
    """A job type from its registry entry (JSON written by job-types/job-type.yaml)."""
    if not NAME_PATTERN.match(name):
        raise InvalidJobTypeError(f"job type name {name!r} is not lower-case letters, digits and '-'")
    if not isinstance(entry, dict):
        raise InvalidJobTypeError(f"registry entry of {name} is not a JSON object")

    def text(key: str, default: str = "") -> str:
        value = entry.get(key, default)
        return value if isinstance(value, str) else default

    def flag(key: str) -> bool:
        return str(entry.get(key, "")).strip().lower() == "true"

    def optional_flag(key: str) -> bool | None:
        value = str(entry.get(key, "")).strip().lower()
        return value == "true" if value in ("true", "false") else None  # "" or absent: the stack's

    def optional_count(key: str, most: int) -> int | None:
        value = str(entry.get(key, "")).strip()
        return int(value) if value.isdigit() and int(value) <= most else None  # "" or absent: the stack's

    definition, queue = text("jobDefinition"), text("jobQueue")
    if not definition or not queue:
        raise InvalidJobTypeError(f"registry entry of {name} lacks jobDefinition or jobQueue")
    submit_mode = text("submitMode", "PER_OBJECT").upper()
    priority = text("priority", "normal").lower()
    return JobType(
        name=name,
        job_definition_arn=definition,
        job_queue_arn=queue,
        job_name_prefix=name,
        submit_mode=submit_mode if submit_mode in SUBMIT_MODES else "PER_OBJECT",
        priority=priority if priority in PRIORITIES else "normal",
        route_prefix=text("routePrefix"),
        route_suffix=text("routeSuffix"),
        routed=flag("routed"),
        bucket=text("bucket"),
        output_prefix=text("outputPrefix"),
        webhook_secret_name=text("webhookSecretName"),
        mention=text("mention"),
        notify_succeeded=flag("notifySucceeded"),
        schedule_expression=text("scheduleExpression"),
        schedule_timezone=text("scheduleTimezone", "UTC") or "UTC",
        schedule_enabled=flag("scheduleEnabled"),
        expect_success_every=text("expectSuccessEvery", AUTO) or AUTO,
        expected_duration=text("expectedDuration", OFF) or OFF,
        environment=parse_environment(text("environment")),
        log_tail_lines=optional_count("logTailLines", MAX_LOG_TAIL_LINES),
        mention_on_cancel=optional_flag("mentionOnCancel"),
        rerun_allowed=parse_rerun_allowed(
            name, entry.get("rerunAllowedSlackUsers"), entry.get("rerunAllowedSlackGroups")
        ),
    )


def parse_rerun_allowed(name: str, users: Any, groups: Any) -> RerunAllowed | None:
    """A job type's own "who may rerun" (its RerunAllowedSlackUsers and RerunAllowedSlackGroups), or None
    when it sets neither (the stack's lists apply). Users `none` sets the lists to no user by id (with no
    groups: nobody). An id that is not one (a hand-edited entry; the template refuses them) is left out
    with a log line, never replaced by the stack's lists: a job type that names who may rerun it is never
    opened to more people by a typo."""
    nobody_by_id = isinstance(users, str) and users.strip().lower() == NOBODY
    listed_users = [] if nobody_by_id else _ids(users)
    listed_groups = _ids(groups)
    if not listed_users and not listed_groups and not nobody_by_id:
        return None
    malformed = [i for i in listed_users if not SLACK_USER_ID.fullmatch(i)]
    malformed += [i for i in listed_groups if not SLACK_GROUP_ID.fullmatch(i)]
    if malformed:
        logger.error(
            "Invalid Slack ids in a job type's rerun lists ignored",
            extra={"job_type": name, "ids": malformed},
        )
    return RerunAllowed(
        users=frozenset(i for i in listed_users if SLACK_USER_ID.fullmatch(i)),
        groups=tuple(i for i in listed_groups if SLACK_GROUP_ID.fullmatch(i)),
        job_type=name,
    )


def _ids(value: Any) -> list[str]:
    """Comma-separated ids, in order, each once; a value that is not text is one malformed id."""
    if value is None or value == "":
        return []
    if not isinstance(value, str):
        return [repr(value)]
    return list(comma_separated(value))


def parse_environment(text: str) -> Mapping[str, str]:
    """`NAME=value,NAME2=value2` (the job type's EnvironmentVariables) as a mapping."""
    pairs = (item.partition("=") for item in text.split(",") if item.strip())
    return MappingProxyType({name.strip(): value for name, sep, value in pairs if sep and name.strip()})


class Catalog(NamedTuple):
    """The default job type and the registry's, by name, and the stack's intake bucket ("" = unknown)."""

    job_types: Mapping[str, JobType]
    intake_bucket: str = ""

    @property
    def default(self) -> JobType | None:
        return self.job_types.get(DEFAULT)

    def get(self, name: str | None) -> JobType | None:
        return self.job_types.get(name or DEFAULT)

    def route(self, key: str, bucket: str | None = None) -> JobType | None:
        """The job type an upload of `key` to `bucket` (None: any) starts: longest prefix, then longest
        suffix, then one naming its bucket, then the default, then by name."""
        fitting = [t for t in self.job_types.values() if t.matches(key, bucket, self.intake_bucket)]
        if not fitting:
            return None
        return max(fitting, key=lambda t: (len(t.route_prefix), len(t.route_suffix), *self._tie_break(t)))

    def _tie_break(self, job_type: JobType) -> tuple[bool, bool, str]:
        return self.names_bucket(job_type), job_type.is_default, job_type.name

    def output_of(self, key: str, bucket: str | None = None) -> JobType | None:
        """The job type under whose output prefix `key` in `bucket` lies (its jobs write there), if any."""
        return next(
            (t for _, t in sorted(self.job_types.items()) if t.writes_to(key, bucket, self.intake_bucket)),
            None,
        )

    def names_bucket(self, job_type: JobType) -> bool:
        """The job type's route applies to a bucket of its own (an attached bucket)."""
        return bool(job_type.bucket) and job_type.bucket != self.intake_bucket

    def for_definition(self, job_definition_arn: str | None) -> JobType | None:
        """The job type whose job definition (any revision) ran a job."""
        family = definition_family(job_definition_arn)
        return next((t for t in self.job_types.values() if family and t.definition_family == family), None)

    def overlaps(self) -> list[tuple[str, str]]:
        """Pairs of routed job types one upload could fit both of, equally well (routing picks by name)."""
        routed = sorted((t for t in self.job_types.values() if t.routed), key=lambda t: t.name)

        def route(t: JobType) -> tuple[str, str, str]:
            return (t.bucket if self.names_bucket(t) else "", t.route_prefix, t.route_suffix)

        pairs = ((a, b) for i, a in enumerate(routed) for b in routed[i + 1 :])
        return [(a.name, b.name) for a, b in pairs if route(a) == route(b)]


def default_job_type(
    *,
    job_definition_arn: str,
    job_queue_arn: str,
    job_name_prefix: str,
    submit_mode: str = "PER_OBJECT",
    route_prefix: str = "",
    route_suffix: str = "",
    routed: bool = True,
    schedule_expression: str = "",
    schedule_enabled: bool = False,
    expect_success_every: str = AUTO,
    expected_duration: str = OFF,
    output_prefix: str = "",
) -> JobType:
    """The job type the stack's own parameters define (its jobs keep the stack's name as prefix)."""
    return JobType(
        name=DEFAULT,
        job_definition_arn=job_definition_arn,
        job_queue_arn=job_queue_arn,
        job_name_prefix=job_name_prefix,
        submit_mode=submit_mode,
        route_prefix=route_prefix,
        route_suffix=route_suffix,
        routed=routed,
        schedule_expression=schedule_expression,
        schedule_enabled=schedule_enabled and bool(schedule_expression),
        expect_success_every=expect_success_every,
        expected_duration=expected_duration,
        output_prefix=output_prefix,
    )


_provider: SSMPathProvider | None = None
_provider_client: Any = None


def registry_provider() -> SSMPathProvider:
    """Created on first use with the shared (injectable) SSM client; its cache lives as long."""
    global _provider, _provider_client
    client = clients.client("ssm")
    if _provider is None or client is not _provider_client:  # a new client (tests, emulator): a new cache
        _provider, _provider_client = SSMPathProvider(client), client
    return _provider


def reset_registry() -> None:
    """Forget the provider and its cached entries."""
    global _provider, _provider_client
    _provider, _provider_client = None, None


def registry_entries(path: str, max_age: int) -> dict[str, Any]:
    """name -> parsed entry of every job type registered under `path` (cached `max_age` seconds)."""
    if not path:
        return {}
    raw = registry_provider().get_multiple(path.rstrip("/"), max_age=max_age, recursive=False)
    entries: dict[str, Any] = {}
    for name, value in raw.items():
        try:
            entries[name.strip("/")] = json.loads(value) if isinstance(value, str) else value
        except ValueError:
            entries[name.strip("/")] = None
    return entries


def load_catalog(default: JobType | None, path: str, max_age: int, intake_bucket: str = "") -> Catalog:
    """The default job type plus every valid registry entry; an invalid entry is logged and left out."""
    job_types: dict[str, JobType] = {DEFAULT: default} if default else {}
    for name, entry in registry_entries(path, max_age).items():
        try:
            job_type = from_registry_entry(name, entry)
        except InvalidJobTypeError as error:
            logger.error(
                "Invalid job type registry entry left out", extra={"job_type": name, "reason": str(error)}
            )
            continue
        if job_type.is_default:
            logger.error("A registered job type may not be named default; left out", extra={"job_type": name})
            continue
        job_types[name] = job_type
    return Catalog(job_types=job_types, intake_bucket=intake_bucket)


def names(job_types: Iterable[JobType]) -> list[str]:
    return sorted(t.name for t in job_types)


def catalog_for(settings: Any) -> Catalog:
    """The catalog a function sees: its settings' default job type plus the registry (cached)."""
    default = default_for(settings)
    return load_catalog(
        default if default.job_definition_arn else None,
        settings.job_types_path,
        settings.job_types_max_age_seconds,
        getattr(settings, "intake_bucket", ""),
    )


def default_for(settings: Any) -> JobType:
    """The default job type alone, without reading the registry."""
    return default_job_type(
        job_definition_arn=settings.job_definition_arn,
        job_queue_arn=settings.job_queue_arn,
        job_name_prefix=settings.job_name_prefix,
        submit_mode=getattr(settings, "submit_mode", "PER_OBJECT"),
        route_prefix=getattr(settings, "upload_prefix", ""),
        route_suffix=getattr(settings, "upload_suffix", ""),
        # The stack's schedule and expectations (only the watchdog's settings carry them).
        schedule_expression=getattr(settings, "schedule_expression", ""),
        schedule_enabled=getattr(settings, "schedule_enabled", False),
        expect_success_every=getattr(settings, "expect_success_every", AUTO),
        expected_duration=getattr(settings, "job_expected_duration", OFF),
        output_prefix=getattr(settings, "output_prefix", ""),
    )
