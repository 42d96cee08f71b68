"""What Slack sends when someone clicks a button, as it reaches the function through its function URL.

Lambda delivers the HTTP request as a function URL event (payload format 2.0): lower-case `headers`,
`requestContext.http.method`, and the raw `body`, base64-encoded when `isBase64Encoded` is true (as it
is for Slack's form posts). Slack posts `application/x-www-form-urlencoded` with one field, `payload`,
holding the interaction as JSON; a button click is a `block_actions` interaction whose `actions[0]` is
the button (`action_id`, `value`), with the `user` who clicked, the `response_url` to answer through and
the `message` the button is on.

Modelled like Powertools' event data classes (typed read-only fields, unknown fields ignored: Slack adds
fields) without importing them: that package loads every event source's class on import (cold start).
The signature must be checked on `HttpRequest.body` (the raw bytes) before anything here is trusted.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any, NamedTuple
from urllib.parse import parse_qs

BLOCK_ACTIONS = "block_actions"


class MalformedRequestError(ValueError):
    """The event or the body is not what Lambda or Slack sends."""


class HttpRequest(NamedTuple):
    method: str
    headers: Mapping[str, str]  # names in lower case
    body: bytes  # exactly as sent: what Slack signed


class ButtonClick(NamedTuple):
    action_id: str
    value: str
    user_id: str
    user_name: str
    response_url: str
    team_id: str = ""
    channel_id: str = ""
    message: Mapping[str, Any] | None = None  # the message the button is on (None for an ephemeral one)


def http_request(event: Any) -> HttpRequest:
    """The HTTP request in a function URL event (payload format 2.0)."""
    if not isinstance(event, dict):
        raise MalformedRequestError("not a function URL event")
    raw_headers = event.get("headers") or {}
    headers = (
        {str(k).lower(): str(v) for k, v in raw_headers.items()} if isinstance(raw_headers, dict) else {}
    )
    http = (event.get("requestContext") or {}).get("http") or {}
    method = str(http.get("method") or "").upper()
    body = event.get("body") or ""
    if not isinstance(body, str):
        raise MalformedRequestError("the body is not text")
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedRequestError("the body is not valid base64") from None
    else:
        raw = body.encode("utf-8")
    return HttpRequest(method=method, headers=headers, body=raw)


def parse_click(body: bytes) -> ButtonClick | None:
    """The button click in Slack's form body, or None for another kind of interaction (not a click)."""
    try:
        fields = parse_qs(body.decode("utf-8"), strict_parsing=False)
        payload = json.loads(fields["payload"][0])
    except (UnicodeDecodeError, KeyError, IndexError, ValueError):
        raise MalformedRequestError("no JSON `payload` field in the form body") from None
    if not isinstance(payload, dict):
        raise MalformedRequestError("the payload is not a JSON object")
    if payload.get("type") != BLOCK_ACTIONS:
        return None
    actions = payload.get("actions")
    action = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], dict) else None
    if action is None:
        raise MalformedRequestError("a block_actions payload without actions")
    user = _mapping(payload.get("user"))
    message = payload.get("message")
    return ButtonClick(
        action_id=_text(action.get("action_id")),
        value=_text(action.get("value")),
        user_id=_text(user.get("id")),
        user_name=_text(user.get("username") or user.get("name")),
        response_url=_text(payload.get("response_url")),
        team_id=_text(_mapping(payload.get("team")).get("id")),
        channel_id=_text(_mapping(payload.get("channel")).get("id")),
        message=message if isinstance(message, dict) else None,
    )


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""
