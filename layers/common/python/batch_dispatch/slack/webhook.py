"""Slack delivery: post a message to the incoming webhook kept in Secrets Manager, within a time budget.

- The webhook URL is a credential (anyone holding it can post). It is read through Powertools parameters
  (cached `secret_max_age_seconds`), and never logged, put in an exception or traced.
- slack_sdk's WebhookClient retries, each bounded by one shared budget so the total stays well inside the
  Lambda timeout: 429 honours Retry-After (unless it asks for longer than we can wait), 5xx and connection
  errors/timeouts back off with full jitter.
- Errors that retrying cannot fix (revoked webhook, archived channel, malformed message...) raise
  SlackPermanentError saying what to fix; errors that outlived the retries raise SlackTransientError.
  Both propagate, so Lambda's async retries run and the event then lands in the DLQ.
- A 404/410 (webhook revoked or channel gone) re-reads the secret once, bypassing the cache: if it was
  rotated meanwhile the message goes to the new webhook without waiting for a cold start.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from http.client import HTTPException, RemoteDisconnected
from typing import Any
from urllib.error import URLError
from urllib.parse import urlsplit

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from slack_sdk.errors import SlackRequestError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.interval_calculator import RetryIntervalCalculator
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.webhook import WebhookClient

from batch_dispatch.aws import clients
from batch_dispatch.observability import logger, tracer
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
_URL_PATTERN = re.compile(r"https?://\S+")


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


def webhook_url(secret_name: str, *, max_age: int = 300, force_fetch: bool = False) -> str:
    """The webhook URL stored in `secret_name`: the plain URL or a JSON `{"url": "..."}`."""
    try:
        raw = secrets_provider().get(secret_name, max_age=max_age, force_fetch=force_fetch)
    except GetParameterError as error:
        raise SlackTransientError(
            f"Cannot read the Slack webhook secret {secret_name} ({_cause(error)}): check that it exists "
            "and that the function may call secretsmanager:GetSecretValue on it",
            kind="secret_unavailable",
        ) from None
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")
    text = text.strip()
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
# Retries bounded by a shared time budget


class _Budget:
    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def allows(self, seconds: float) -> bool:
        return time.monotonic() + seconds <= self.deadline

    def left(self) -> float:
        return self.deadline - time.monotonic()


class _FullJitter(RetryIntervalCalculator):
    """Exponential backoff with full jitter: uniform(0, base * 2**attempt)."""

    def __init__(self, base_seconds: float) -> None:
        self.base_seconds = base_seconds

    def ceiling(self, current_attempt: int) -> float:
        return self.base_seconds * 2**current_attempt

    def calculate_sleep_duration(self, current_attempt: int) -> float:
        return random.uniform(0, self.ceiling(current_attempt))  # noqa: S311 - jitter, not crypto


class _BackoffBudget:
    """Mixin: retry only if the longest possible wait plus one more attempt still fits the budget."""

    budget: _Budget
    attempt_seconds: float
    interval_calculator: RetryIntervalCalculator

    def _fits(self, state: RetryState) -> bool:
        calculator = self.interval_calculator
        wait = calculator.ceiling(state.current_attempt) if isinstance(calculator, _FullJitter) else 1.0
        return self.budget.allows(wait + self.attempt_seconds)


class _ServerErrors(_BackoffBudget, ServerErrorRetryHandler):
    def __init__(self, policy: DeliveryPolicy, budget: _Budget) -> None:
        super().__init__(
            max_retry_count=policy.max_retries, interval_calculator=_FullJitter(policy.backoff_seconds)
        )
        self.budget, self.attempt_seconds = budget, float(policy.timeout_seconds)

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        # 500/503 as slack_sdk does, plus the gateway errors a load balancer answers with.
        return response is not None and response.status_code in (500, 502, 503, 504) and self._fits(state)


class _ConnectionErrors(_BackoffBudget, ConnectionErrorRetryHandler):
    """Connection refused/reset and timeouts (a timed-out post may have reached Slack: a rare duplicate
    is the price of never losing an alert)."""

    def __init__(self, policy: DeliveryPolicy, budget: _Budget) -> None:
        super().__init__(
            max_retry_count=policy.max_retries,
            interval_calculator=_FullJitter(policy.backoff_seconds),
            error_types=[URLError, ConnectionResetError, RemoteDisconnected, TimeoutError],
        )
        self.budget, self.attempt_seconds = budget, float(policy.timeout_seconds)

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return super()._can_retry(
            state=state, request=request, response=response, error=error
        ) and self._fits(state)


class _RateLimited(RateLimitErrorRetryHandler):
    """429: wait exactly what Retry-After asks (plus a little jitter), if that fits the budget."""

    def __init__(self, policy: DeliveryPolicy, budget: _Budget) -> None:
        super().__init__(max_retry_count=policy.max_retries)
        self.budget, self.policy = budget, policy

    @staticmethod
    def retry_after(response: HttpResponse | None) -> int | None:
        if response is None:
            return None
        for name, values in response.headers.items():
            if name.lower() == "retry-after" and values:
                try:
                    return max(0, int(str(values[0]).strip()))
                except ValueError:
                    return None
        return 1  # Slack always sends the header; if not, a short pause

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        wait = self.retry_after(response)
        return (
            wait is not None
            and wait <= self.policy.max_retry_after_seconds
            and self.budget.allows(wait + 0.25 + self.policy.timeout_seconds)
        )

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        wait = (self.retry_after(response) or 0) + random.uniform(0, 0.25)  # noqa: S311
        logger.warning(
            "Slack rate limited the webhook, waiting", extra={"retry_after_seconds": round(wait, 2)}
        )
        state.next_attempt_requested = True
        time.sleep(wait)
        state.increment_current_attempt()


def retry_handlers(policy: DeliveryPolicy, budget: _Budget) -> list[RetryHandler]:
    return [_RateLimited(policy, budget), _ServerErrors(policy, budget), _ConnectionErrors(policy, budget)]


# --------------------------------------------------------------------------------------------------------
# Posting


class _RedactUrls(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _URL_PATTERN.sub("<redacted-url>", record.getMessage())
        record.args = None
        return True


def _sdk_logger() -> logging.Logger:
    """slack_sdk logs the webhook URL at DEBUG/INFO: give it a logger that passes only redacted errors."""
    sdk_logger = logging.getLogger("batch_dispatch.slack_sdk")
    if not any(isinstance(f, _RedactUrls) for f in sdk_logger.filters):
        sdk_logger.addFilter(_RedactUrls())
    sdk_logger.setLevel(logging.ERROR)  # level > DEBUG also turns off slack_sdk's request/response dumps
    return sdk_logger


def _untrace_host(url: str) -> None:
    """X-Ray's httplib patch records full request URLs; exclude the webhook host (we trace it ourselves)."""
    try:
        from aws_xray_sdk.ext.httplib import add_ignored
    except ImportError:  # pragma: no cover - tracer extra not installed
        return
    add_ignored(hostname=urlsplit(url).hostname)


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
    client = WebhookClient(
        url=url,
        timeout=policy.timeout_seconds,
        logger=_sdk_logger(),
        retry_handlers=retry_handlers(policy, budget),
    )
    started = time.monotonic()
    try:
        response = client.send_dict(message)
    except (OSError, HTTPException) as error:
        kind = "timeout" if _is_timeout(error) else "connection_error"
        raise SlackTransientError(
            f"Slack webhook (secret {secret_name}) unreachable after retries: {kind} "
            f"({type(error).__name__}) after {time.monotonic() - started:.1f}s",
            kind=kind,
        ) from None
    except SlackRequestError:
        raise SlackPermanentError(
            f"Secret {secret_name} holds a URL slack_sdk refuses: store an https:// webhook URL",
            kind="secret_invalid",
        ) from None

    status, body = response.status_code, (response.body or "").strip()[:100]
    if 200 <= status < 300:
        logger.debug("Slack accepted the message", extra={"status": status})
        return
    code = body if re.fullmatch(r"[a-z_]{1,60}", body) else ""
    if status == 429 or status >= 500 or status == 408:
        kind = "rate_limited" if status == 429 else f"http_{status}"
        raise SlackTransientError(
            f"Slack kept answering {status} {code or ''} for the webhook in secret {secret_name} "
            f"after {time.monotonic() - started:.1f}s of retries; Lambda will retry the event",
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


def _is_timeout(error: BaseException) -> bool:
    if isinstance(error, TimeoutError):
        return True
    return isinstance(error, URLError) and isinstance(error.reason, TimeoutError)
