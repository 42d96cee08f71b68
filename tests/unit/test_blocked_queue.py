"""Blocked queues and cancelled jobs: the reason in plain words, what to check, safe for Slack."""

from __future__ import annotations

import json

import pytest

from batch_dispatch.alerts.blocked_queue import build_blocked_message, is_blocked_event, summarize_blocked
from batch_dispatch.alerts.blocked_reasons import REASONS, TIME_LIMIT_REASONS, cancellation_code, reason_code
from batch_dispatch.alerts.failed_job import build_message, summarize
from batch_dispatch.alerts.job_state import parse_event
from tests.conftest import load_event


@pytest.mark.parametrize(
    ("status_reason", "code"),
    [
        (
            "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - Service cannot fulfill ... m6i",
            "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY",
        ),
        (
            "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT \u2013 The job resource requirement",
            "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
        ),
        ("ACTION_REQUIRED - CE(s) associated with the job queue are invalid.", "ACTION_REQUIRED"),
        ("", "UNKNOWN"),
    ],
)
def test_the_reason_code_is_the_part_before_the_dash(status_reason, code):
    assert reason_code(status_reason) == code


def test_every_time_limit_reason_has_plain_words_and_checks():
    for code in TIME_LIMIT_REASONS:
        assert REASONS[code].title
        assert REASONS[code].checks


@pytest.mark.parametrize(
    "name",
    ["queue-blocked-capacity.json", "queue-blocked-resource-requirement.json", "job-runnable-blocked.json"],
)
def test_blocked_samples_are_recognised_and_render_within_slack_limits(name):
    event = load_event(f"batch/{name}")

    summary = summarize_blocked(event, region="us-east-1")
    message = build_blocked_message(summary, "<!here>")

    assert is_blocked_event(event)
    assert summary.queue_name == "batch-dispatch-dev-queue"
    assert message["text"].startswith("<!here> Batch queue BLOCKED: batch-dispatch-dev-queue")
    assert len(message["blocks"]) <= 50
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in message["blocks"])


def test_a_failed_or_plainly_waiting_job_is_not_a_blocked_event():
    waiting = load_event("batch/job-runnable-blocked.json")
    waiting["detail"]["statusReason"] = "Waiting for its turn"

    assert not is_blocked_event(load_event("batch/job-failed-container.json"))
    assert not is_blocked_event(waiting)


def test_the_time_limit_is_mentioned_only_for_reasons_it_acts_on():
    event = load_event("batch/queue-blocked-capacity.json")
    invalid = load_event("batch/job-runnable-blocked.json")

    limited = json.dumps(
        build_blocked_message(summarize_blocked(event, region="us-east-1", time_limit_seconds=3600))
    )
    manual = json.dumps(
        build_blocked_message(summarize_blocked(invalid, region="us-east-1", time_limit_seconds=3600))
    )

    assert "cancels jobs stuck for this reason after 3600 s" in limited
    assert "cancels jobs" not in manual


def test_hostile_text_in_a_blocked_reason_cannot_mention_or_link():
    event = load_event("batch/queue-blocked-capacity.json")
    event["detail"]["statusReason"] = "CAPACITY:X - <!channel> <https://evil.example|click> & more"

    message = json.dumps(build_blocked_message(summarize_blocked(event, region="us-east-1")))

    assert "<!channel>" not in message
    assert "<https://evil" not in message


def test_a_job_cancelled_by_the_time_limit_says_cancelled_and_why():
    event = parse_event(load_event("batch/job-cancelled-time-limit.json"))

    summary = summarize(event)
    message = build_message(summary)

    assert cancellation_code(event.detail.status_reason) == "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY"
    assert message["blocks"][0]["text"]["text"].startswith("Batch job CANCELLED:")
    assert message["text"].startswith("Batch job CANCELLED:")
    assert "EC2 has no capacity" in json.dumps(message)


def test_an_array_parent_alert_says_how_many_children_failed():
    message = build_message(summarize(parse_event(load_event("batch/array-parent-failed-storm.json"))))

    assert "412 of 1000 (digest follows)" in json.dumps(message)
