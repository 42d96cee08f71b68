"""Slack delivery: post a message to the incoming webhook kept in Secrets Manager, within a time budget.

- The webhook URL is a credential (anyone holding it can post). It is read through Powertools parameters
  (cached `secret_max_age_seconds`), and never logged, put in an exception or traced.
- Retries share one time budget so the total stays well inside the Lambda timeout: 429 honours
  Retry-After (unless it asks for longer than we can wait), 5xx and connection errors/timeouts back off
  with full jitter, at most `max_retries` times each.
- Errors that retrying cannot fix (revoked webhook, archived channel, malformed message...) raise
  SlackPermanentError saying what to fix; errors that outlived the retries raise SlackTransientError.
  Both propagate, so Lambda's async retries run and the event then lands in the DLQ.
- A 404/410 (webhook revoked or channel gone) re-reads the secret once, bypassing the cache: if it was
  rotated meanwhile the message goes to the new webhook without waiting for a cold start.

An incoming webhook is one HTTPS POST of JSON, so this uses the standard library: slack_sdk's package
import loads its whole Web API client first, which costs more cold start than this module's code
(bench/cold_start.py --costs).
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
import urllib.error
import urllib.request
from http.client import HTTPException
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from batch_dispatch.aws import clients
from batch_dispatch.observability import TRACING, logger, tracer
from batch_dispatch.slack.delivery_policy import DeliveryPolicy

# Slack's answers that no retry can fix, with what the operator has to do about each.
_FIX_WEBHOOK = "create a new incoming webhook in the Slack app and store its URL in secret {secret}"
_FIX_MESSAGE = (
    "Slack rejected the message itself: a bug in batch_dispatch.alerts; fix it, then redrive the DLQ"
)
PERMANENT_ERRORS: dict[str, str] = {
    "no_service": "webhook revoked or disabled: " + _FIX_WEBHOOK,
    "no_team": "the webhook's Slack workspace is gone: " + _FIX_WEBHOOK,
    "team_disabled": "the webhook's Slack workspace is disabled: " + _FIX_WEBHOOK,
    "invalid_token": "webhook token invalid: " + _FIX_WEBHOOK,
    "channel_not_found": "the webhook's channel was deleted: " + _FIX_WEBHOOK,
    "channel_is_archived": "the webhook's channel is archived: unarchive it, or " + _FIX_WEBHOOK,
    "action_prohibited": "a workspace admin restricted posting in the webhook's channel: ask them to allow "
    "the app, or " + _FIX_WEBHOOK,
    "posting_to_general_channel_denied": "only admins may post in that channel: " + _FIX_WEBHOOK,
    "invalid_payload": _FIX_MESSAGE,
    "no_text": _FIX_MESSAGE,
    "invalid_blocks": _FIX_MESSAGE,
    "invalid_blocks_format": _FIX_MESSAGE,
    "too_many_attachments": _FIX_MESSAGE,
}
PERMANENT_STATUSES: dict[int, str] = {
    400: _FIX_MESSAGE,
    401: "webhook not authorised: " + _FIX_WEBHOOK,
    403: "webhook forbidden: " + _FIX_WEBHOOK,
    404: "webhook not found (revoked?): " + _FIX_WEBHOOK,
    410: "webhook's channel is gone: " + _FIX_WEBHOOK,
}
REVOKED_STATUSES = frozenset({404, 410})


class SlackDeliveryError(RuntimeError):
    """Slack did not take the message. `kind` is a short, metric-friendly label."""

    def __init__(self, message: str, *, kind: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status


class SlackPermanentError(SlackDeliveryError):
    """Retrying cannot help (revoked webhook, archived channel, malformed message): fix, then redrive."""


class SlackTransientError(SlackDeliveryError):
    """Slack was rate limiting, failing or unreachable for longer than our retries could wait."""


# --------------------------------------------------------------------------------------------------------
# The webhook secret

_provider: SecretsProvider | None = None
_provider_client: Any = None


class _RedactSecretBodies(logging.Filter):
    """botocore logs every response body at DEBUG (e.g. AWS_LAMBDA_LOG_LEVEL=DEBUG): hide secret values."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except (TypeError, ValueError):  # a malformed record is not ours to fix
            return True
        if "SecretString" in text or "SecretBinary" in text:
            record.msg, record.args = "Response body: <redacted Secrets Manager secret value>", None
        return True


def secrets_provider() -> SecretsProvider:
    """Created on first use with the shared (injectable) Secrets Manager client; caches secret values."""
    global _provider, _provider_client
    client = clients.client("secretsmanager")
    if _provider is None or client is not _provider_client:  # new client (tests, emulator): new cache
        parsers_logger = logging.getLogger("botocore.parsers")
        if not any(isinstance(f, _RedactSecretBodies) for f in parsers_logger.filters):
            parsers_logger.addFilter(_RedactSecretBodies())
        _provider, _provider_client = SecretsProvider(boto3_client=client), client
    return _provider


def reset_secrets_provider() -> None:
    """Forget the provider and its cache (tests, or the emulator after injecting a new client)."""
    global _provider, _provider_client
    _provider, _provider_client = None, None


def secret_text(secret_name: str, *, max_age: int, force_fetch: bool = False) -> str:
    """A Slack secret's SecretString (or binary, decoded), stripped; GetParameterError if unreadable."""
    raw = secrets_provider().get(secret_name, max_age=max_age, force_fetch=force_fetch)
    return (raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")).strip()


def webhook_url(secret_name: str, *, max_age: int = 300, force_fetch: bool = False) -> str:
    """The webhook URL stored in `secret_name`: the plain URL or a JSON `{"url": "..."}`."""
    try:
        text = secret_text(secret_name, max_age=max_age, force_fetch=force_fetch)
    except GetParameterError as error:
        raise SlackTransientError(
            f"Cannot read the Slack webhook secret {secret_name} ({_cause(error)}): check that it exists "
            "and that the function may call secretsmanager:GetSecretValue on it",
            kind="secret_unavailable",
        ) from None
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except ValueError:
            document = {}
        text = str(document.get("url") or document.get("webhook_url") or "").strip()
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise SlackPermanentError(
            f"Secret {secret_name} does not hold a Slack webhook URL: store the URL "
            '(https://hooks.slack.com/services/...) or {"url": "<the URL>"} as its SecretString',
            kind="secret_invalid",
        )
    return text


def _cause(error: BaseException) -> str:
    """The innermost cause's type (botocore error code when there is one), never its text."""
    inner: BaseException = error
    while inner.__cause__ is not None or inner.__context__ is not None:
        inner = inner.__cause__ or inner.__context__  # type: ignore[assignment]
    response = getattr(inner, "response", None)
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    return str(code or type(inner).__name__)


# --------------------------------------------------------------------------------------------------------
# Posting, with retries bounded by one time budget

SERVER_ERRORS = frozenset({500, 502, 503, 504})
_JITTER_SECONDS = 0.25


class Answer(NamedTuple):
    """What one POST got back: a status and Slack's short body, or a connection failure."""

    status: int | None
    body: str = ""
    retry_after: int | None = None
    failure: str | None = None  # "timeout" or "connection_error" when there is no status


class _Budget:
    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def allows(self, seconds: float) -> bool:
        return time.monotonic() + seconds <= self.deadline


def post_message(
    message: dict[str, Any],
    *,
    secret_name: str,
    policy: DeliveryPolicy | None = None,
    remaining_seconds: float | None = None,
) -> None:
    """Post `message` ({"text", "blocks"}) to the webhook in `secret_name`, or raise SlackDeliveryError.

    `remaining_seconds` (the Lambda's time left) shrinks the retry budget so we fail before the timeout.
    """
    policy = policy or DeliveryPolicy()
    seconds = policy.budget_seconds
    if remaining_seconds is not None:
        seconds = min(seconds, remaining_seconds - policy.safety_margin_seconds)
    budget = _Budget(max(seconds, 0.0))

    url = webhook_url(secret_name, max_age=policy.secret_max_age_seconds)
    try:
        _send(url, message, policy, budget, secret_name)
    except SlackPermanentError as error:
        if error.status not in REVOKED_STATUSES:
            raise
        fresh = webhook_url(secret_name, max_age=policy.secret_max_age_seconds, force_fetch=True)
        rotated = fresh != url
        logger.warning(
            "Slack webhook looks revoked, re-read its secret",
            extra={"secret_name": secret_name, "status": error.status, "secret_rotated": rotated},
        )
        if not rotated:
            raise
        _send(fresh, message, policy, budget, secret_name)


@tracer.capture_method(capture_response=False)
def _send(
    url: str, message: dict[str, Any], policy: DeliveryPolicy, budget: _Budget, secret_name: str
) -> None:
    _untrace_host(url)
    data = json.dumps(message).encode("utf-8")
    started = time.monotonic()
    retries = {"rate_limited": 0, "server_error": 0, "connection": 0}
    while True:
        answer = _post(url, data, policy.timeout_seconds)
        if answer.status is not None and 200 <= answer.status < 300:
            logger.debug("Slack accepted the message", extra={"status": answer.status})
            return
        wait = _retry_wait(answer, policy, budget, retries)
        if wait is None:
            break
        if answer.status == 429:
            logger.warning(
                "Slack rate limited the webhook, waiting", extra={"retry_after_seconds": round(wait, 2)}
            )
        time.sleep(wait)
    _raise_for(answer, secret_name, time.monotonic() - started)


def _post(url: str, data: bytes, timeout: float) -> Answer:
    request = urllib.request.Request(  # noqa: S310 - webhook_url only returns http(s) URLs
        url, data=data, headers={"Content-Type": "application/json; charset=utf-8"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return Answer(status=response.status, body=_short_body(response.read()))
    except urllib.error.HTTPError as error:
        return Answer(
            status=error.code, body=_short_body(error.read()), retry_after=_retry_after(error.headers)
        )
    except (OSError, HTTPException) as error:  # URLError, timeouts, resets, refused
        return Answer(status=None, failure="timeout" if _is_timeout(error) else "connection_error")


def _retry_wait(
    answer: Answer, policy: DeliveryPolicy, budget: _Budget, retries: dict[str, int]
) -> float | None:
    """How long to wait before the next attempt, or None when this answer is final."""
    if answer.status == 429:
        wait = answer.retry_after if answer.retry_after is not None else 1  # Slack always sends it
        if (
            retries["rate_limited"] >= policy.max_retries
            or wait > policy.max_retry_after_seconds
            or not budget.allows(wait + _JITTER_SECONDS + policy.timeout_seconds)
        ):
            return None
        retries["rate_limited"] += 1
        return wait + random.uniform(0, _JITTER_SECONDS)  # noqa: S311 - jitter, not crypto
    kind = "server_error" if answer.status in SERVER_ERRORS else "connection" if answer.failure else None
    if kind is None:
        return None
    ceiling = policy.backoff_seconds * 2 ** retries[kind]
    if retries[kind] >= policy.max_retries or not budget.allows(ceiling + policy.timeout_seconds):
        return None
    retries[kind] += 1
    return random.uniform(0, ceiling)  # noqa: S311 - full jitter, not crypto


def _raise_for(answer: Answer, secret_name: str, elapsed: float) -> None:
    if answer.status is None:
        raise SlackTransientError(
            f"Slack webhook (secret {secret_name}) unreachable after retries: {answer.failure} "
            f"after {elapsed:.1f}s",
            kind=answer.failure or "connection_error",
        )
    status, body = answer.status, answer.body
    code = body if re.fullmatch(r"[a-z_]{1,60}", body) else ""
    if status == 429 or status >= 500 or status == 408:
        kind = "rate_limited" if status == 429 else f"http_{status}"
        raise SlackTransientError(
            f"Slack kept answering {status} {code or ''} for the webhook in secret {secret_name} "
            f"after {elapsed:.1f}s of retries; Lambda will retry the event",
            kind=kind,
            status=status,
        )
    hint = (
        PERMANENT_ERRORS.get(code)
        or PERMANENT_STATUSES.get(status)
        or ("unexpected answer from Slack: check the webhook in secret {secret}")
    )
    raise SlackPermanentError(
        f"Slack refused the message ({status} {code or 'no error code'}): {hint.format(secret=secret_name)}",
        kind=code or f"http_{status}",
        status=status,
    )


def _short_body(raw: bytes) -> str:
    return raw.decode("utf-8", "replace").strip()[:100]


def _retry_after(headers: Any) -> int | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return max(0, int(str(value).strip())) if value is not None else None
    except ValueError:
        return None


def _untrace_host(url: str) -> None:
    """X-Ray's httplib patch records full request URLs; exclude the webhook host (we trace it ourselves)."""
    if not TRACING:
        return
    from aws_xray_sdk.ext.httplib import add_ignored

    add_ignored(hostname=urlsplit(url).hostname)


def _is_timeout(error: BaseException) -> bool:
    if isinstance(error, TimeoutError):
        return True
    return isinstance(error, urllib.error.URLError) and isinstance(error.reason, TimeoutError)
