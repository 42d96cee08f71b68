"""Slack Block Kit pieces with Slack's limits and escaping, for every message batch-dispatch posts.

Everything a user or AWS controls (job names, reasons, parameters, log lines) goes through `slack_text`
(escaped, then truncated) so it can never become a mention or a link, nor push a block past its limit.
"""

from __future__ import annotations

import re
from typing import Any

from batch_dispatch.observability import logger

# Slack Block Kit limits (https://api.slack.com/reference/block-kit/blocks).
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_FIELDS = 10
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_BUTTON_URL = 3000
# Our own bound: Slack accepts ~40k chars of `text`, but a notification preview needs far less.
MAX_FALLBACK_TEXT = 3000

_MENTION = re.compile(r"^<(!here|!channel|!everyone|!subteam\^[A-Z0-9]+|@[UW][A-Z0-9]+)(\|[^<>]*)?>$")
_BARE_MENTIONS = {"@here": "<!here>", "@channel": "<!channel>", "here": "<!here>", "channel": "<!channel>"}
_ELLIPSIS = "…"


def escape(text: Any) -> str:
    """Slack's three control characters, so user text can never become a mention or a link."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code_safe(text: str) -> str:
    """Backticks in user text would close our code spans; use a look-alike (U+02CB) instead."""
    return text.replace("`", "\u02cb")


def truncate(text: str, limit: int) -> str:
    """`text` cut to `limit` characters with an ellipsis, never splitting an `&amp;`-style entity."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 0)]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:] and len(cut) - amp <= 5:
        cut = cut[:amp]
    return cut + _ELLIPSIS


def slack_text(text: Any, limit: int) -> str:
    """User text made safe for mrkdwn: escaped and truncated (the raw text first: escaping lengthens it)."""
    return truncate(escape(truncate(str(text), limit)), limit)


def normalize_mention(mention: str) -> str:
    """A Slack mention token as configured, or "" if it is not one (then it would only print literally)."""
    mention = mention.strip()
    if not mention:
        return ""
    mention = _BARE_MENTIONS.get(mention, mention)
    if _MENTION.match(mention):
        return mention
    logger.warning("SLACK_MENTION is not a Slack mention token; ignoring it", extra={"mention": mention})
    return ""


def mention_lead(mention: str) -> str:
    """The mention and a space, to start a message with, or ""."""
    token = normalize_mention(mention)
    return f"{token} " if token else ""


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": slack_text(text, MAX_HEADER_TEXT)}}


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, MAX_SECTION_TEXT)}}


def fields_section(fields: list[str]) -> dict[str, Any]:
    return {
        "type": "section",
        "fields": [{"type": "mrkdwn", "text": truncate(f, MAX_FIELD_TEXT)} for f in fields[:MAX_FIELDS]],
    }


def context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(text, MAX_FIELD_TEXT)}]}


def link_buttons(links: list[tuple[str, str]]) -> dict[str, Any]:
    """An actions block of URL buttons (label, url); a URL over Slack's limit is left out."""
    return {
        "type": "actions",
        "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": label[:MAX_BUTTON_TEXT]}, "url": url}
            for label, url in links
            if len(url) <= MAX_BUTTON_URL
        ],
    }


def cap_blocks(blocks: list[dict[str, Any]], limit: int = MAX_BLOCKS) -> list[dict[str, Any]]:
    """At most `limit` blocks: the last one (the links) is kept, the overflow before it becomes a note."""
    if len(blocks) <= limit:
        return blocks
    note = context(f"_{len(blocks) - limit + 1} more blocks left out (Slack allows {limit})._")
    return [*blocks[: limit - 2], note, blocks[-1]]


def message(fallback: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """A message: Block Kit blocks (capped) and the plain `text` notifications show."""
    return {"text": truncate(fallback, MAX_FALLBACK_TEXT), "blocks": cap_blocks(blocks)}
