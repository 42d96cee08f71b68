"""Times and parameters as an operator types them."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

_RELATIVE = re.compile(r"^-(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class InvalidInputError(ValueError):
    """Input the command cannot use; the message says what it takes."""


def parse_time(text: str, *, now: datetime | None = None) -> datetime:
    """An instant, as UTC: ISO 8601 (`2026-11-20T02:00:00+01:00`, `...Z`, `2026-11-20`; no offset means
    UTC), `now`, or a time ago (`-6h`, `-3d`, `-2w`, `-30m`)."""
    value = text.strip()
    now = now or datetime.now(UTC)
    if value.lower() == "now":
        return now.astimezone(UTC)
    relative = _RELATIVE.match(value.lower())
    if relative:
        return (now - timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})).astimezone(UTC)
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(
            f"{text!r} is not a time: use ISO 8601 (2026-11-20T02:00:00Z, 2026-11-20T03:00+01:00, "
            "2026-11-20), now, or a time ago such as -6h or -3d"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class TimeRange(NamedTuple):
    start: datetime  # included
    end: datetime  # excluded

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def parse_range(start: str, end: str, *, now: datetime | None = None) -> TimeRange:
    """[start, end) from two times as `parse_time` reads them; start must come before end."""
    now = now or datetime.now(UTC)
    first, last = parse_time(start, now=now), parse_time(end, now=now)
    if first >= last:
        raise InvalidInputError(
            f"--from {start} is not before --to {end}: the range is [from, to), give the earlier time first"
        )
    return TimeRange(first, last)


def parse_parameters(items: Iterable[str]) -> dict[str, str]:
    """`NAME=VALUE` pairs (the value may contain '='; the last of a repeated name wins)."""
    parameters: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InvalidInputError(f"--param takes NAME=VALUE, got {item!r}")
        parameters[name.strip()] = value
    return parameters
