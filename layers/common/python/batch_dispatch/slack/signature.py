"""Slack's request signature: is this request from Slack, and recent?

Slack signs every request it sends an app with the app's signing secret (Slack's "Verifying requests from
Slack"): header X-Slack-Signature is `v0=` + hex HMAC-SHA256, keyed by the signing secret, of
`v0:<X-Slack-Request-Timestamp>:<raw body>`. A request whose timestamp is more than 5 minutes off the
clock, in either direction, is refused, so a captured request cannot be replayed later. The comparison is
constant-time.

This is the documented algorithm in a few lines of the standard library rather than slack_sdk's
SignatureVerifier: importing slack_sdk costs more cold start than the whole handler
(bench/cold_start.py --costs). tests/unit/test_slack_signature.py checks it against Slack's published
example.
"""

from __future__ import annotations

import hashlib
import hmac
import time

VERSION = "v0"
MAX_AGE_SECONDS = 300
TIMESTAMP_HEADER = "x-slack-request-timestamp"
SIGNATURE_HEADER = "x-slack-signature"


class SignatureError(Exception):
    """The request is not Slack's, or not recent. `reason` is a short label for logs and metrics."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def signature(signing_secret: str, timestamp: str, body: bytes) -> str:
    """The X-Slack-Signature Slack sends with `body` at `timestamp`."""
    base = f"{VERSION}:{timestamp}:".encode() + body
    return f"{VERSION}=" + hmac.new(signing_secret.encode("utf-8"), base, hashlib.sha256).hexdigest()


def verify(
    signing_secret: str,
    *,
    timestamp: str | None,
    received_signature: str | None,
    body: bytes,
    now: float | None = None,
    max_age_seconds: int = MAX_AGE_SECONDS,
) -> None:
    """Return if the request is Slack's and at most `max_age_seconds` off the clock; else SignatureError."""
    if not timestamp or not received_signature:
        raise SignatureError("The request carries no Slack signature headers.", reason="unsigned")
    try:
        sent_at = int(timestamp.strip())
    except ValueError:
        raise SignatureError("The request's Slack timestamp is not a number.", reason="malformed") from None
    skew = (time.time() if now is None else now) - sent_at
    if skew > max_age_seconds:
        raise SignatureError(
            f"The request was signed {int(skew)} s ago (more than {max_age_seconds} s): a replay or a delay.",
            reason="stale",
        )
    if skew < -max_age_seconds:
        raise SignatureError(
            f"The request is dated {int(-skew)} s in the future (more than {max_age_seconds} s).",
            reason="future",
        )
    expected = signature(signing_secret, timestamp.strip(), body)
    if not hmac.compare_digest(expected.encode("utf-8"), received_signature.strip().encode("utf-8")):
        raise SignatureError(
            "The request's Slack signature does not match the signing secret.", reason="bad_signature"
        )
