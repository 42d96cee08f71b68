"""Who may click Rerun on a job's alert: the Slack users listed, and the members of the user groups listed.

The lists are the clicked job's job type's (its RerunAllowedSlackUsers and RerunAllowedSlackGroups) when
it sets either, else the stack's (ALLOWED_SLACK_USERS, ALLOWED_SLACK_GROUPS). The job type is found from
the job's definition (`<stack>_<job type>`) in the job catalog's registry, read only for catalog job
types and cached like the other functions' reads; the stack's own job type, another stack's job and a job
Batch no longer has use the stack's lists. A job type's lists replace the stack's, they do not add to
them: a job type that names who may rerun it is closed to everyone else.

A listed user is allowed at once, without a secret read or a call. Anyone else is allowed if a listed
group holds them: the groups' member lists are read with the Slack app's bot token (the stack's, for
every job type; slack/user_groups.py, cached a short while), within `seconds` in all. A group that cannot
be read (no or bad token, missing scope, unknown group, Slack slow or down) refuses the click unless
another group allows it: the verdict then carries the failure, whose message says what to check.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, NamedTuple

from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from batch_dispatch.aws.batch_jobs import describe_job
from batch_dispatch.job_types import DEFAULT, RerunAllowed, job_type_name, load_catalog
from batch_dispatch.settings import SlackActionsSettings
from batch_dispatch.slack.user_groups import UserGroupLookupError, WebApi, group_members
from batch_dispatch.slack.webhook import secret_text


class Verdict(NamedTuple):
    allowed: bool
    via: str = ""  # "user", or the id of the group that holds the clicker
    failure: UserGroupLookupError | None = None  # set when a group could not be read


def stack_allowed(settings: SlackActionsSettings) -> RerunAllowed:
    """The stack's lists: RerunAllowedSlackUsers and RerunAllowedSlackGroups."""
    return RerunAllowed(users=settings.allowed_users, groups=settings.allowed_groups)


def job_to_check(job_id: str, settings: SlackActionsSettings) -> dict[str, Any] | None:
    """The job `job_id` as Batch describes it when its job type's lists may apply (the stack has a
    catalog), else None: without a catalog every job is the stack's own job type's."""
    if not settings.job_types_path or not job_id.strip():
        return None
    return describe_job(job_id.strip())


def allowed_for_job(job: Mapping[str, Any] | None, settings: SlackActionsSettings) -> RerunAllowed:
    """Who may rerun `job` (from `job_to_check`; an array child's own job type is its parent's)."""
    return allowed_for(job.get("jobDefinition") if job else None, settings)


def allowed_for(job_definition_arn: str | None, settings: SlackActionsSettings) -> RerunAllowed:
    """The lists of the job type whose definition ran the job, or the stack's when it sets none."""
    name = job_type_name(settings.stack_name, job_definition_arn)
    if name is None or name == DEFAULT or not settings.job_types_path:
        return stack_allowed(settings)
    catalog = load_catalog(None, settings.job_types_path, settings.job_types_max_age_seconds)
    job_type = catalog.for_definition(job_definition_arn)
    if job_type is None or job_type.rerun_allowed is None:
        return stack_allowed(settings)
    return job_type.rerun_allowed


def check(
    user_id: str, settings: SlackActionsSettings, *, seconds: float, allowed: RerunAllowed | None = None
) -> Verdict:
    """May `user_id` rerun a job whose lists are `allowed` (None: the stack's)? Group lookups take at most
    `seconds` (cached member lists take none)."""
    allowed = stack_allowed(settings) if allowed is None else allowed
    if user_id in allowed.users:
        return Verdict(allowed=True, via="user")
    if not allowed.groups or not user_id:
        return Verdict(allowed=False)
    deadline = time.monotonic() + seconds
    try:
        token = bot_token(settings, allowed.job_type)
    except UserGroupLookupError as error:
        return Verdict(allowed=False, failure=error)
    failure: UserGroupLookupError | None = None
    for group_id in allowed.groups:
        # At least a moment per lookup: a slow secret read must not leave a timeout of minus something.
        api = WebApi(settings.api_url, token, timeout_seconds=max(0.1, deadline - time.monotonic()))
        try:
            members = group_members(
                group_id, api, max_age_seconds=settings.slack_group_members_max_age_seconds
            )
        except UserGroupLookupError as error:
            failure = failure or error
            continue
        if user_id in members:
            return Verdict(allowed=True, via=group_id)
    return Verdict(allowed=False, failure=failure)


def bot_token(settings: SlackActionsSettings, job_type: str = "") -> str:
    """The Slack app's bot token (cached like the other Slack secrets; never logged). `job_type`: whose
    groups need it ("" = the stack's), for the message when the stack has none."""
    name = settings.slack_bot_token_secret_name
    if not name:  # the stack's groups are refused without it at deploy; a job type's are refused here too
        whose = f"Job type {job_type}'s RerunAllowedSlackGroups" if job_type else "RerunAllowedSlackGroups"
        raise UserGroupLookupError(
            f"{whose} needs the stack's SlackBotTokenSecretName: a secret holding the Slack app's bot "
            "token, which reads the groups' members",
            reason="no_bot_token",
        )
    try:
        text = secret_text(name, max_age=settings.slack_secret_max_age_seconds)
    except GetParameterError:
        raise UserGroupLookupError(
            f"Cannot read the Slack bot token secret {name}: check that it exists and that the function "
            "may call secretsmanager:GetSecretValue on it (SlackBotTokenSecretName)",
            reason="bot_token_unavailable",
        ) from None
    if not text:
        raise UserGroupLookupError(
            f"The Slack bot token secret {name} is empty: store the app's Bot User OAuth Token (xoxb-...)",
            reason="bot_token_unavailable",
        )
    return text
