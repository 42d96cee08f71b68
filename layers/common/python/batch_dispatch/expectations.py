"""What a job type promises: a success at least every so often, and jobs that finish within a time.

Both are job-type settings written as text: `ExpectSuccessEvery` (`auto`, `off`/`0`, or `N minutes`,
`N hours`, `N days`) and `ExpectedDuration` (`off`/`0` or a span). `auto` derives the expectation from
the job type's schedule: the longest time between two of its ticks plus a grace (half of it, at least 15
minutes, at most an hour), so `rate(3 hours)` expects a success every 4 hours and a weekday-only cron one
every 3 days and an hour. A job type without an enabled schedule (upload-driven) expects nothing under
`auto`. The watchdog (alerts/watchdog) checks both.
"""

from __future__ import annotations

import re
from datetime import timedelta
from functools import cache

from batch_dispatch.schedule_times import Schedule, UnsupportedExpressionError

AUTO = "auto"
OFF = "off"
_SPAN = re.compile(r"^(\d{1,6})\s*(minute|minutes|hour|hours|day|days)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
MIN_GRACE = timedelta(minutes=15)
MAX_GRACE = timedelta(hours=1)


class InvalidExpectationError(ValueError):
    """A setting that is neither auto, off, 0 nor `N minutes|hours|days`."""


def span_seconds(text: str, *, allow_auto: bool = False) -> int | None:
    """Seconds of `N minutes|hours|days`; 0 for `off`, `0` or empty; None for `auto` (when allowed)."""
    value = " ".join(text.strip().lower().split())
    if value in ("", OFF, "0"):
        return 0
    if value == AUTO and allow_auto:
        return None
    match = _SPAN.match(value)
    if not match:
        choices = "auto, off, 0" if allow_auto else "off, 0"
        raise InvalidExpectationError(f"{text!r} is not {choices} or 'N minutes', 'N hours', 'N days'")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


def check_success_every(text: str) -> None:
    """Settings check for ExpectSuccessEvery (raises InvalidExpectationError, a ValueError)."""
    span_seconds(text, allow_auto=True)


def check_duration(text: str) -> None:
    """Settings check for ExpectedDuration."""
    span_seconds(text)


def grace(gap: timedelta) -> timedelta:
    """Room for a run that starts late or takes longer than the last: half the gap, 15 min to 1 h."""
    return min(max(gap / 2, MIN_GRACE), MAX_GRACE)


@cache
def derived_success_every(expression: str, timezone: str = "UTC") -> int:
    """`auto` for a schedule: its longest gap between ticks plus the grace, in seconds (0 if it has no
    gap, e.g. a one-time `at()`, or cannot be enumerated)."""
    try:
        gap = Schedule(expression, timezone).longest_gap()
    except (UnsupportedExpressionError, ValueError, KeyError):
        return 0
    return int((gap + grace(gap)).total_seconds()) if gap else 0


def success_every_seconds(
    text: str, schedule_expression: str = "", timezone: str = "UTC", scheduled: bool = False
) -> int:
    """How often a job type must succeed, in seconds (0 = not checked). Raises InvalidExpectationError."""
    explicit = span_seconds(text, allow_auto=True)
    if explicit is not None:
        return explicit
    if not scheduled or not schedule_expression:
        return 0  # upload-driven, or its schedule is disabled: nothing to expect
    return derived_success_every(schedule_expression, timezone or "UTC")
