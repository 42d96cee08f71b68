"""Who is in a Slack user group: Slack's `usergroups.users.list`, called with the app's bot token, cached.

One Web API call: a form POST of `usergroup=<S...>` to `<base URL>usergroups.users.list` with the bot
token (scope `usergroups:read`) as a Bearer header. Slack answers HTTP 200 with `{"ok": true, "users":
[...]}` or `{"ok": false, "error": "<code>"}`, and 429 with Retry-After when it rate limits. The base URL
is a setting: https://slack.com/api/, https://slack-gov.com/api/ on GovSlack, the Slack stand-in locally.

Made with the standard library, like the webhook post (slack/webhook.py), not slack_sdk's WebClient: the
layer has no slack_sdk (it would become a runtime dependency for one call); imported lazily, the first
lookup of each execution environment would still pay its import inside the 3 seconds Slack waits
(bench/cold_start.py --costs prices it); and a lookup is one POST with a hard timeout and no retry,
where WebClient by default waits 30 s and retries a failed connection.

Each group's member list is kept per warm execution environment for `max_age_seconds`: clicks come in
bursts (a double click, several people), the method allows about 20 calls a minute, and the 3 seconds
have little room for a call per click. Failures are not kept: the next click asks again. The token is
never logged, put in an exception or traced.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from http.client import HTTPException
from typing import Any, NamedTuple
from urllib.parse import urlencode

METHOD = "usergroups.users.list"
SCOPE = "usergroups:read"

_BAD_TOKEN = (
    "Slack refused the app's bot token ({code}): store the app's current Bot User OAuth Token (xoxb-...) "  # noqa: S105
    "in the secret SlackBotTokenSecretName names"
)
# Slack's error codes for this method, with what to check for each (anything else: UNKNOWN_ERROR).
ERRORS: dict[str, str] = {
    "not_authed": _BAD_TOKEN,
    "invalid_auth": _BAD_TOKEN,
    "token_revoked": _BAD_TOKEN,
    "token_expired": _BAD_TOKEN,
    "account_inactive": _BAD_TOKEN,
    "missing_scope": (
        f"the app's bot token lacks the {SCOPE} scope: add it (OAuth & Permissions, Bot Token Scopes), "
        "reinstall the app and store the new bot token in the secret SlackBotTokenSecretName names"
    ),
    "no_such_subteam": "Slack has no user group {group}: check its ID (S...) in RerunAllowedSlackGroups",
    "plan_upgrade_required": (
        "this Slack workspace's plan has no user groups: list the people in RerunAllowedSlackUsers instead"
    ),
    "team_access_not_granted": "the app is not installed in the workspace of user group {group}",
    "access_denied": "Slack denied the app access to user group {group}",
    "ratelimited": "Slack is rate limiting the app's API calls: click again in a minute",
}
UNKNOWN_ERROR = (
    "Slack answered {code} for user group {group}: check the bot token (SlackBotTokenSecretName) and "
    "RerunAllowedSlackGroups"
)
TRANSIENT = frozenset({"ratelimited", "timeout", "connection_error", "server_error"})


class UserGroupLookupError(RuntimeError):
    """A group's members could not be read. `reason` is Slack's error code or a short label (timeout...);
    the message says what to check."""

    def __init__(self, message: str, *, reason: str, group_id: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.group_id = group_id

    @property
    def transient(self) -> bool:
        """Clicking again later may work (timeout, rate limit, Slack's own error); else a setting is wrong."""
        return self.reason in TRANSIENT


class WebApi(NamedTuple):
    """Where and how to call Slack's Web API: base URL (ending in /), bot token, timeout for the call."""

    base_url: str
    token: str
    timeout_seconds: float


class _Cached(NamedTuple):
    expires_at: float
    members: frozenset[str]


_members: dict[tuple[str, str], _Cached] = {}


def reset_cache() -> None:
    """Forget every member list (a new execution environment)."""
    _members.clear()


def group_members(group_id: str, api: WebApi, *, max_age_seconds: float) -> frozenset[str]:
    """The user ids in `group_id`, from this environment's cache if younger than `max_age_seconds`."""
    key = (api.base_url, group_id)
    cached = _members.get(key)
    if cached is not None and time.monotonic() < cached.expires_at:
        return cached.members
    members = _list_members(group_id, api)
    _members[key] = _Cached(time.monotonic() + max_age_seconds, members)
    return members


def _list_members(group_id: str, api: WebApi) -> frozenset[str]:
    if api.timeout_seconds < 0.05:
        raise _timeout(group_id, api)
    request = urllib.request.Request(  # noqa: S310 - the base URL setting is https (http on loopback only)
        api.base_url + METHOD,
        data=urlencode({"usergroup": group_id}).encode("ascii"),
        headers={
            "Authorization": f"Bearer {api.token}",
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=api.timeout_seconds) as response:  # noqa: S310
            raw = response.read(1_000_000)
    except urllib.error.HTTPError as error:
        if error.code == 429:
            raise _slack_error("ratelimited", group_id) from None
        reason = "server_error" if error.code >= 500 else f"http_{error.code}"
        raise UserGroupLookupError(
            f"Slack's API ({api.base_url}) answered HTTP {error.code} for user group {group_id}: "
            + ("click again in a minute" if error.code >= 500 else "check SlackApiUrl"),
            reason=reason,
            group_id=group_id,
        ) from None
    except (OSError, HTTPException) as error:  # URLError, timeouts, resets, refused
        if _is_timeout(error):
            raise _timeout(group_id, api) from None
        raise UserGroupLookupError(
            f"Slack's API ({api.base_url}) could not be reached ({type(error).__name__}): check SlackApiUrl "
            "and that the function can reach it",
            reason="connection_error",
            group_id=group_id,
        ) from None
    return _members_in(raw, group_id, api)


def _members_in(raw: bytes, group_id: str, api: WebApi) -> frozenset[str]:
    try:
        answer: Any = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        answer = None
    if not isinstance(answer, dict) or not isinstance(answer.get("ok"), bool):
        raise UserGroupLookupError(
            f"{api.base_url} did not answer like Slack's Web API: check SlackApiUrl",
            reason="malformed_answer",
            group_id=group_id,
        )
    if not answer["ok"]:
        raise _slack_error(str(answer.get("error") or "unknown_error")[:60], group_id)
    users = answer.get("users")
    if not isinstance(users, list):
        raise UserGroupLookupError(
            f"Slack's answer for user group {group_id} has no user list: check SlackApiUrl",
            reason="malformed_answer",
            group_id=group_id,
        )
    return frozenset(u for u in users if isinstance(u, str))


def _slack_error(code: str, group_id: str) -> UserGroupLookupError:
    hint = ERRORS.get(code, UNKNOWN_ERROR)
    return UserGroupLookupError(hint.format(code=code, group=group_id), reason=code, group_id=group_id)


def _timeout(group_id: str, api: WebApi) -> UserGroupLookupError:
    return UserGroupLookupError(
        f"Slack's API ({api.base_url}) did not answer within {api.timeout_seconds:.1f} s for user group "
        f"{group_id}: click again; if it keeps happening, check that the function reaches it (SlackApiUrl)",
        reason="timeout",
        group_id=group_id,
    )


def _is_timeout(error: BaseException) -> bool:
    if isinstance(error, TimeoutError):
        return True
    return isinstance(error, urllib.error.URLError) and isinstance(error.reason, TimeoutError)
