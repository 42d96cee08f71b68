"""Schedule expressions: the ticks EventBridge Scheduler makes, for backfills, next runs and lateness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from batch_dispatch.schedule_times import Schedule, UnsupportedExpressionError, parse_cron


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_a_daily_cron_ticks_once_a_day_at_its_time():
    ticks = Schedule("cron(0 2 * * ? *)").ticks(utc(2026, 11, 20), utc(2026, 11, 23, 1, 59))

    assert ticks == [utc(2026, 11, 20, 2), utc(2026, 11, 21, 2), utc(2026, 11, 22, 2)]


def test_weekday_names_and_aws_day_numbers_agree():
    # MON-FRI at 06:30: AWS numbers Sunday 1, so 2-6 is the same
    by_name = Schedule("cron(30 6 ? * MON-FRI *)").ticks(utc(2026, 11, 16), utc(2026, 11, 23))
    by_number = Schedule("cron(30 6 ? * 2-6 *)").ticks(utc(2026, 11, 16), utc(2026, 11, 23))

    assert by_name == by_number
    assert [t.strftime("%a") for t in by_name] == ["Mon", "Tue", "Wed", "Thu", "Fri"]


def test_steps_lists_and_the_time_zone_are_honoured():
    # every 15 minutes of 09:00 and 17:00 in Berlin (UTC+1 in November)
    schedule = Schedule("cron(0/15 9,17 * * ? *)", "Europe/Berlin")

    ticks = schedule.ticks(utc(2026, 11, 23), utc(2026, 11, 23, 23))

    assert [t.strftime("%H:%M") for t in ticks] == [
        "08:00", "08:15", "08:30", "08:45", "16:00", "16:15", "16:30", "16:45",
    ]  # fmt: skip


def test_rate_ticks_count_from_the_schedules_start():
    anchor = utc(2026, 11, 23, 0, 10)

    ticks = Schedule("rate(3 hours)").ticks(utc(2026, 11, 23, 1), utc(2026, 11, 23, 12), anchor=anchor)

    assert ticks == [utc(2026, 11, 23, 3, 10), utc(2026, 11, 23, 6, 10), utc(2026, 11, 23, 9, 10)]
    with pytest.raises(UnsupportedExpressionError, match="start"):
        Schedule("rate(3 hours)").ticks(utc(2026, 11, 23), utc(2026, 11, 24))


def test_a_one_time_schedule_ticks_once():
    ticks = Schedule("at(2026-11-23T02:00:00)").ticks(utc(2026, 11, 1), utc(2026, 12, 1))

    assert ticks == [utc(2026, 11, 23, 2)]


def test_the_period_is_the_usual_gap_between_ticks():
    assert Schedule("rate(3 hours)").period() == timedelta(hours=3)
    assert Schedule("cron(0 2 * * ? *)").period() == timedelta(days=1)
    assert Schedule("cron(30 6 ? * MON-FRI *)").period() == timedelta(days=1)
    assert Schedule("at(2026-11-23T02:00:00)").period() is None


def test_the_next_run_follows_the_given_moment():
    assert Schedule("cron(0 2 * * ? *)").next_after(utc(2026, 11, 23, 2)) == utc(2026, 11, 24, 2)


def test_forms_it_cannot_enumerate_are_refused_by_name():
    with pytest.raises(UnsupportedExpressionError, match="L, W and #"):
        parse_cron("cron(0 2 L * ? *)")
    with pytest.raises(UnsupportedExpressionError, match="6 fields"):
        parse_cron("cron(0 2 * *)")


def test_the_longest_gap_is_the_longest_wait_between_two_ticks():
    assert Schedule("rate(3 hours)").longest_gap() == timedelta(hours=3)
    assert Schedule("cron(0 2 * * ? *)").longest_gap() == timedelta(days=1)
    # weekdays only: Friday to Monday
    assert Schedule("cron(30 6 ? * MON-FRI *)").longest_gap() == timedelta(days=3)
    # the first of every month: the longest month
    assert Schedule("cron(0 3 1 * ? *)").longest_gap() == timedelta(days=31)
    # 02:30 in Berlin, over the change to winter time
    assert Schedule("cron(30 2 * * ? *)", "Europe/Berlin").longest_gap() == timedelta(hours=25)
    assert Schedule("at(2026-11-23T02:00:00)").longest_gap() is None
