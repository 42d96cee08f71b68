"""Who may click Rerun: the Slack users listed (ALLOWED_SLACK_USERS), and the members of the user groups
listed (ALLOWED_SLACK_GROUPS).

A listed user is allowed at once, without a secret read or a call: the common case stays as fast as it
was. Anyone else is allowed if a listed group holds them: the groups' member lists are read with the Slack
app's bot token (slack/user_groups.py, cached a short while), within `seconds` in all. A group that cannot
be read (bad token, missing scope, unknown group, Slack slow or down) refuses the click unless another
group allows it: the verdict then carries the failure, whose message says what to check.
"""

from __future__ import annotations

import time
from typing import NamedTuple

from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from batch_dispatch.settings import SlackActionsSettings
from batch_dispatch.slack.user_groups import UserGroupLookupError, WebApi, group_members
from batch_dispatch.slack.webhook import secrets_provider


class Verdict(NamedTuple):
    allowed: bool
    via: str = ""  # "user", or the id of the group that holds the clicker
    failure: UserGroupLookupError | None = None  # set when a group could not be read


def check(user_id: str, settings: SlackActionsSettings, *, seconds: float) -> Verdict:
    """May `user_id` rerun jobs? Group lookups take at most `seconds` (cached member lists take none)."""
    if user_id in settings.allowed_users:
        return Verdict(allowed=True, via="user")
    groups = settings.allowed_groups
    if not groups or not user_id:
        return Verdict(allowed=False)
    deadline = time.monotonic() + seconds
    try:
        token = bot_token(settings)
    except UserGroupLookupError as error:
        return Verdict(allowed=False, failure=error)
    failure: UserGroupLookupError | None = None
    for group_id in groups:
        api = WebApi(settings.api_url, token, timeout_seconds=deadline - time.monotonic())
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


def bot_token(settings: SlackActionsSettings) -> str:
    """The Slack app's bot token (cached like the other Slack secrets; never logged)."""
    name = settings.slack_bot_token_secret_name
    if not name:  # the settings refuse groups without it; kept for a caller that built its own settings
        raise UserGroupLookupError(
            "RerunAllowedSlackGroups needs SlackBotTokenSecretName: a secret holding the Slack app's bot "
            "token, which reads the groups' members",
            reason="no_bot_token",
        )
    try:
        raw = secrets_provider().get(name, max_age=settings.slack_secret_max_age_seconds)
    except GetParameterError:
        raise UserGroupLookupError(
            f"Cannot read the Slack bot token secret {name}: check that it exists and that the function "
            "may call secretsmanager:GetSecretValue on it (SlackBotTokenSecretName)",
            reason="bot_token_unavailable",
        ) from None
    text = (raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")).strip()
    if not text:
        raise UserGroupLookupError(
            f"The Slack bot token secret {name} is empty: store the app's Bot User OAuth Token (xoxb-...)",
            reason="bot_token_unavailable",
        )
    return text
