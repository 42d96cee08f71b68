"""The last lines of a failed attempt's CloudWatch Logs stream, read within the invocation's time budget.

One GetLogEvents call from the end (`startFromHead=False`, `limit=N`), a second or third only when
CloudWatch returns an empty page with a new token, as it may. The call has short timeouts and no retries,
and never takes the time the Slack post needs: the tail is a bonus, the alert is the point. Whatever
goes wrong (the attempt never ran, the stream is gone, access denied, a slow or failing call) becomes a
note in the message instead of lines, and the alert still posts. Lines are redacted here, before they
can leave AWS, and only then cut to MAX_LINE_CHARS (a cut through a secret would hide it from redaction).
"""

from __future__ import annotations

import math
import time
from typing import Any, NamedTuple

from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

from batch_dispatch.alerts.redaction import Redactor
from batch_dispatch.aws import clients
from batch_dispatch.observability import logger

MAX_LINE_CHARS = 400  # one log line in the message; the rest of a very long line adds nothing at 3 a.m.
MAX_READ_SECONDS = 3.0  # the most the tail may take, however much time is left
MIN_READ_SECONDS = 0.5  # below this, do not even try
CONNECT_TIMEOUT_SECONDS = 1.0
MAX_PAGES = 3

# Why there are no lines (LogTail.status).
OK, EMPTY, OFF, NEVER_RAN, MISSING, DENIED, TIMED_OUT, FAILED, SKIPPED = (
    "ok",
    "empty",
    "off",
    "never-ran",
    "missing",
    "denied",
    "timed-out",
    "failed",
    "skipped",
)


class LogTail(NamedTuple):
    status: str
    lines: tuple[str, ...] = ()
    log_group: str | None = None
    log_stream: str | None = None
    detail: str = ""  # error code or the time allowed, for the note

    @property
    def note(self) -> str:
        """One sentence saying why the message shows no log lines ("" when it shows some)."""
        return {
            EMPTY: "The log stream has no lines.",
            NEVER_RAN: "No log lines: the attempt never reached RUNNING, so it has no log stream.",
            MISSING: "No log lines: the log stream does not exist (expired, or the job logs elsewhere).",
            DENIED: "No log lines: this function may not read that log group (it reads only the stack's "
            "own job log group).",
            TIMED_OUT: f"No log lines: CloudWatch Logs did not answer within {self.detail}; open the log "
            "stream instead.",
            FAILED: f"No log lines: reading the log failed ({self.detail}); open the log stream instead.",
            SKIPPED: "No log lines: too little time was left in this invocation to read them.",
        }.get(self.status, "")


def read_budget(remaining_seconds: float | None, reserved_seconds: float) -> float:
    """Seconds the tail may take: at most MAX_READ_SECONDS, never eating into `reserved_seconds` (what
    the Slack post needs) of the invocation's time left."""
    if remaining_seconds is None:
        return MAX_READ_SECONDS
    return max(0.0, min(MAX_READ_SECONDS, remaining_seconds - reserved_seconds))


def read_tail(
    log_group: str | None,
    log_stream: str | None,
    *,
    max_lines: int,
    budget_seconds: float,
    redactor: Redactor,
) -> LogTail:
    """The last `max_lines` lines of the stream, redacted, oldest first; never raises."""
    if max_lines <= 0:
        return LogTail(OFF)
    if not log_stream or not log_group:
        return LogTail(NEVER_RAN)
    if budget_seconds < MIN_READ_SECONDS:
        return LogTail(SKIPPED, log_group=log_group, log_stream=log_stream)
    deadline = time.monotonic() + budget_seconds
    try:
        messages = _last_messages(log_group, log_stream, max_lines, deadline)
    except (ReadTimeoutError, ConnectTimeoutError):
        logger.warning("Log tail timed out", extra={"log_group": log_group, "budget_s": budget_seconds})
        return LogTail(
            TIMED_OUT, log_group=log_group, log_stream=log_stream, detail=f"{budget_seconds:.1f} s"
        )
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code") or "error")
        status = {"ResourceNotFoundException": MISSING, "AccessDeniedException": DENIED}.get(code, FAILED)
        logger.warning("Log tail not read", extra={"log_group": log_group, "error_code": code})
        return LogTail(status, log_group=log_group, log_stream=log_stream, detail=code)
    except BotoCoreError as error:
        logger.warning(
            "Log tail not read", extra={"log_group": log_group, "error_kind": type(error).__name__}
        )
        return LogTail(FAILED, log_group=log_group, log_stream=log_stream, detail=type(error).__name__)
    lines = [line for message in messages for line in _split(message)][-max_lines:]
    if not lines:
        return LogTail(EMPTY, log_group=log_group, log_stream=log_stream)
    # Redact the whole lines, THEN cut them: a secret the cut went through would no longer match its
    # pattern, and its first part would reach Slack.
    redacted = redactor.lines(lines)
    clipped = [line if len(line) <= MAX_LINE_CHARS else line[: MAX_LINE_CHARS - 1] + "…" for line in redacted]
    return LogTail(OK, tuple(clipped), log_group=log_group, log_stream=log_stream)


def _last_messages(log_group: str, log_stream: str, max_lines: int, deadline: float) -> list[str]:
    request: dict[str, Any] = {
        "logGroupName": log_group,
        "logStreamName": log_stream,
        "startFromHead": False,
        "limit": max_lines,
    }
    for _ in range(MAX_PAGES):
        left = deadline - time.monotonic()
        if left < MIN_READ_SECONDS / 2:
            break
        page = _client(left).get_log_events(**request)
        events = [e.get("message") for e in page.get("events") or [] if isinstance(e.get("message"), str)]
        token = page.get("nextBackwardToken")
        # An empty page with a new token may hide older events (documented GetLogEvents behaviour).
        if events or not token or token == request.get("nextToken"):
            return events
        request["nextToken"] = token
    return []


def _client(seconds_left: float) -> Any:
    """A Logs client whose connect + read timeouts fit `seconds_left` (0.5 s steps, so few are built)."""
    connect = min(CONNECT_TIMEOUT_SECONDS, seconds_left / 2)
    read = max(MIN_READ_SECONDS / 2, math.floor((seconds_left - connect) * 2) / 2)
    return clients.quick_client("logs", connect_timeout=round(connect, 1), read_timeout=read)


def _split(message: str) -> list[str]:
    return [line for line in message.rstrip("\n").split("\n")] if message else []
