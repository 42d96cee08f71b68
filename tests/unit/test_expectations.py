"""Job-type expectations: how often a job type must succeed, and how long its jobs may run.

Scope: batch_dispatch.expectations (the settings' text and the default derived from a schedule) and
how a registry entry and the stack's own settings give a job type its expectations.
"""

from __future__ import annotations

import pytest

from batch_dispatch.expectations import (
    InvalidExpectationError,
    check_duration,
    span_seconds,
    success_every_seconds,
)
from batch_dispatch.job_types import default_job_type, from_registry_entry

HOUR = 3600


def entry(**overrides: str) -> dict[str, str]:
    return {
        "jobDefinition": "arn:aws:batch:us-east-1:123456789012:job-definition/stack_nightly:1",
        "jobQueue": "arn:aws:batch:us-east-1:123456789012:job-queue/q",
        "routed": "false",
        "scheduleExpression": "rate(3 hours)",
        "scheduleEnabled": "true",
        **overrides,
    }


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("3 hours", 3 * HOUR), ("90 minutes", 5400), ("1 day", 86400), ("off", 0), ("0", 0), ("OFF", 0)],
)
def test_a_span_is_read_in_minutes_hours_or_days(text, seconds):
    assert span_seconds(text) == seconds


@pytest.mark.parametrize("text", ["3h", "soon", "-1 hours", "auto"])
def test_anything_else_is_refused_saying_what_is_accepted(text):
    with pytest.raises(InvalidExpectationError, match="N hours"):
        check_duration(text)


@pytest.mark.parametrize(
    ("expression", "expected_hours"),
    [
        ("rate(3 hours)", 4),  # 3 h + 1 h grace (half of 3 h, at most 1 h)
        ("rate(10 minutes)", 25 / 60),  # 10 min + 15 min grace (at least 15 min)
        ("cron(0 2 * * ? *)", 25),  # daily + 1 h
        ("cron(30 6 ? * MON-FRI *)", 73),  # Friday to Monday + 1 h
    ],
)
def test_auto_expects_a_success_within_the_schedules_longest_gap_and_a_grace(expression, expected_hours):
    assert success_every_seconds("auto", expression, scheduled=True) == round(expected_hours * HOUR)


def test_auto_expects_nothing_without_an_enabled_schedule():
    assert success_every_seconds("auto", "rate(3 hours)", scheduled=False) == 0
    assert success_every_seconds("auto", "", scheduled=True) == 0
    assert success_every_seconds("auto", "at(2026-11-23T02:00:00)", scheduled=True) == 0


def test_an_explicit_span_wins_over_the_schedule_and_off_disables():
    assert success_every_seconds("6 hours", "rate(3 hours)", scheduled=True) == 6 * HOUR
    assert success_every_seconds("off", "rate(3 hours)", scheduled=True) == 0
    assert success_every_seconds("0", "rate(3 hours)", scheduled=True) == 0


def test_a_registry_entry_carries_the_job_types_expectations():
    scheduled = from_registry_entry("nightly", entry(expectedDuration="45 minutes"))
    explicit = from_registry_entry("nightly", entry(expectSuccessEvery="1 day"))
    uploads = from_registry_entry(
        "thumbnails", entry(scheduleExpression="", scheduleEnabled="false", routed="true")
    )

    assert (scheduled.expect_success_every_seconds, scheduled.expected_duration_seconds) == (4 * HOUR, 2700)
    assert explicit.expect_success_every_seconds == 24 * HOUR
    assert (uploads.expect_success_every_seconds, uploads.expected_duration_seconds) == (0, 0)


def test_a_malformed_expectation_in_a_registry_entry_checks_nothing_but_keeps_the_job_type():
    parsed = from_registry_entry("nightly", entry(expectSuccessEvery="whenever", expectedDuration="long"))

    assert parsed.name == "nightly"
    assert (parsed.expect_success_every_seconds, parsed.expected_duration_seconds) == (0, 0)


def test_the_stacks_own_job_type_follows_the_stacks_schedule():
    common = {"job_definition_arn": "arn:d", "job_queue_arn": "arn:q", "job_name_prefix": "stack"}

    enabled = default_job_type(**common, schedule_expression="rate(3 hours)", schedule_enabled=True)
    disabled = default_job_type(**common, schedule_expression="rate(3 hours)", schedule_enabled=False)

    assert enabled.expect_success_every_seconds == 4 * HOUR
    assert disabled.expect_success_every_seconds == 0
