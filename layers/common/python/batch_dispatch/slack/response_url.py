"""Answer a Slack interaction through its `response_url`: replace the message the button is on, or show
the clicker an ephemeral text.

Slack waits 3 seconds for the HTTP answer to the click; the response_url takes messages for 30 minutes,
so one attempt with a short timeout is made, and a failure is logged, never raised (the work the click
asked for is done either way). The URL holds a token: it is never logged. It comes from a request whose
Slack signature was verified (only then is it called).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from http.client import HTTPException
from typing import Any
from urllib.parse import urlsplit

from batch_dispatch.observability import logger


def ephemeral(text: str) -> dict[str, Any]:
    """A message only the person who clicked sees; the original message stays as it is."""
    return {"response_type": "ephemeral", "replace_original": False, "text": text}


def respond(url: str, message: dict[str, Any], *, timeout_seconds: float) -> bool:
    """POST `message` to `url`; True if Slack took it."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        logger.warning("Slack response_url is not an http(s) URL; not answered")
        return False
    request = urllib.request.Request(  # noqa: S310 - http(s) only, checked above
        url,
        data=json.dumps(message).encode("utf-8"),
        headers={"Content-Type": "application/json; charset=utf-8"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=max(timeout_seconds, 0.1)) as answer:  # noqa: S310
            status = int(answer.status)
    except urllib.error.HTTPError as error:
        status = int(error.code)
    except (OSError, HTTPException) as error:  # timeouts, resets, refused
        logger.warning("Slack response_url unreachable", extra={"error": type(error).__name__})
        return False
    if not 200 <= status < 300:
        logger.warning("Slack response_url refused the answer", extra={"status": status})
        return False
    return True
