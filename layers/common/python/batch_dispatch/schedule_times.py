"""When an EventBridge Scheduler expression fires: its ticks in a time range, the next one, its period.

Used to catch up missed ticks (`batch-dispatch backfill`), to show a schedule's next run, and to derive
how often a scheduled job type is expected to succeed. Supports `rate(N unit)`, `at(yyyy-mm-ddThh:mm:ss)`
and `cron(minutes hours day-of-month month day-of-week year)` with `*`, `?`, lists, ranges, steps and
month/day names, in a time zone; the special `L`, `W` and `#` forms raise UnsupportedExpressionError.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from itertools import pairwise
from typing import NamedTuple

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, start=1)}
# AWS numbers days of the week from 1 = Sunday.
_DAYS = {
    name: number for number, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), start=1)
}


class UnsupportedExpressionError(ValueError):
    """An expression this module cannot enumerate (say which, and what to do instead)."""


class Cron(NamedTuple):
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int] | None  # None = "?"
    months: frozenset[int]
    days_of_week: frozenset[int] | None  # AWS numbering, 1 = Sunday; None = "?"
    years: frozenset[int] | None  # None = any year

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months or (self.years is not None and day.year not in self.years):
            return False
        aws_weekday = (day.isoweekday() % 7) + 1  # Monday=1 (iso) -> 2 (AWS); Sunday=7 -> 1
        dom_ok = self.days_of_month is None or day.day in self.days_of_month
        dow_ok = self.days_of_week is None or aws_weekday in self.days_of_week
        return dom_ok and dow_ok


class Schedule(NamedTuple):
    expression: str
    timezone: str = "UTC"

    def ticks(self, start: datetime, end: datetime, anchor: datetime | None = None) -> list[datetime]:
        """Every tick in [start, end] (UTC datetimes). `rate()` ticks count from `anchor` (the
        schedule's start or creation time; required for rate schedules)."""
        return list(self._iter(start, end, anchor))

    def next_after(
        self, moment: datetime, anchor: datetime | None = None, horizon_days: int = 366
    ) -> datetime | None:
        return next(
            iter(self._iter(moment + timedelta(seconds=1), moment + timedelta(days=horizon_days), anchor)),
            None,
        )

    def period(self) -> timedelta | None:
        """The usual time between two ticks (None for a one-time `at()`)."""
        rate = _RATE.match(self.expression.strip())
        if rate:
            return timedelta(seconds=int(rate.group(1)) * _UNITS[rate.group(2).rstrip("s")])
        if _AT.match(self.expression.strip()):
            return None
        start = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday: a sample of four weeks
        ticks = self.ticks(start, start + timedelta(days=28))
        gaps = sorted(b - a for a, b in pairwise(ticks))
        return gaps[len(gaps) // 2] if gaps else None

    def longest_gap(self) -> timedelta | None:
        """The longest time between two ticks (None for a one-time `at()`): a weekday-only cron waits
        three days from Friday to Monday where its period is one day, and a daily cron in a time zone
        with summer time 25 hours once a year."""
        rate = _RATE.match(self.expression.strip())
        if rate or _AT.match(self.expression.strip()):
            return self.period()
        start = datetime(2026, 1, 5, tzinfo=UTC)
        ticks = self.ticks(start, start + timedelta(days=28))
        if len(ticks) < 3:  # a monthly or yearly schedule: look at a whole year and a bit
            ticks = self.ticks(start, start + timedelta(days=800))
        gaps = [b - a for a, b in pairwise(ticks)]
        for change in _clock_changes(time_zone(self.timezone), start, days=366):
            near = self.ticks(change - timedelta(days=4), change + timedelta(days=4))
            gaps.extend(b - a for a, b in pairwise(near))
        return max(gaps, default=None)

    def _iter(self, start: datetime, end: datetime, anchor: datetime | None) -> Iterator[datetime]:
        text = self.expression.strip()
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        if rate := _RATE.match(text):
            if anchor is None:
                raise UnsupportedExpressionError(
                    f"{text} counts from the schedule's start: give its start time"
                )
            step = timedelta(seconds=int(rate.group(1)) * _UNITS[rate.group(2).rstrip("s")])
            anchor = anchor.astimezone(UTC)
            skipped = max(0, -(-(start - anchor) // step))  # ceil((start - anchor) / step)
            moment = anchor + skipped * step
            while moment <= end:
                yield moment
                moment += step
            return
        zone = time_zone(self.timezone)
        if at := _AT.match(text):
            moment = datetime.fromisoformat(at.group(1)).replace(tzinfo=zone).astimezone(UTC)
            if start <= moment <= end:
                yield moment
            return
        cron = parse_cron(text)
        day = start.astimezone(zone).date()
        last = end.astimezone(zone).date()
        while day <= last:
            if cron.matches_day(day):
                for hour in sorted(cron.hours):
                    for minute in sorted(cron.minutes):
                        moment = datetime.combine(day, time(hour, minute), tzinfo=zone).astimezone(UTC)
                        if start <= moment <= end:
                            yield moment
            day += timedelta(days=1)


def time_zone(name: str) -> tzinfo:
    """The IANA zone `name` (a cron's or at()'s ScheduleExpressionTimezone)."""
    # Imported here: only cron and at() expressions need a zone, and the zoneinfo import (with the
    # sysconfig read it does) would otherwise be in every function's cold start.
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def _clock_changes(zone: tzinfo, start: datetime, days: int) -> list[datetime]:
    """The days in [start, start + days) on which the zone's UTC offset changes (summer time)."""
    offsets = [(start + timedelta(days=n)).astimezone(zone).utcoffset() for n in range(days + 1)]
    return [start + timedelta(days=n) for n in range(days) if offsets[n] != offsets[n + 1]]


def parse_cron(expression: str) -> Cron:
    match = _CRON.match(expression.strip())
    if not match:
        raise UnsupportedExpressionError(f"not a cron() expression: {expression}")
    fields = match.group(1).split()
    if len(fields) != 6:
        raise UnsupportedExpressionError(f"{expression}: cron() takes 6 fields, got {len(fields)}")
    minutes, hours, dom, months, dow, years = fields
    return Cron(
        minutes=_field(minutes, 0, 59, {}, expression),
        hours=_field(hours, 0, 23, {}, expression),
        days_of_month=None if dom == "?" else _field(dom, 1, 31, {}, expression),
        months=_field(months, 1, 12, _MONTHS, expression),
        days_of_week=None if dow == "?" else _field(dow, 1, 7, _DAYS, expression),
        years=None if years in ("*", "?") else _field(years, 1970, 2199, {}, expression),
    )


def _field(text: str, low: int, high: int, names: dict[str, int], expression: str) -> frozenset[int]:
    if any(mark in text for mark in ("L", "W", "#")) and not any(name in text.upper() for name in names):
        raise UnsupportedExpressionError(f"{expression}: the L, W and # forms are not supported here")
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = int(step_text)
        if part in ("*", "?"):
            first, last = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            first, last = _value(a, names), _value(b, names)
        else:
            first = _value(part, names)
            last = high if step > 1 else first
        values.update(range(first, last + 1, step))
    if not values or min(values) < low or max(values) > high:
        raise UnsupportedExpressionError(f"{expression}: {text!r} is outside {low}-{high}")
    return frozenset(values)


def _value(text: str, names: dict[str, int]) -> int:
    return names[text.upper()] if text.upper() in names else int(text)
