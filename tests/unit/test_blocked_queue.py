"""Blocked queues and cancelled jobs: the reason in plain words, what to check, safe for Slack."""

from __future__ import annotations

import json

import pytest

from batch_dispatch.alerts.blocked_queue import build_blocked_message, is_blocked_event, summarize_blocked
from batch_dispatch.alerts.blocked_reasons import REASONS, TIME_LIMIT_REASONS, cancellation_code, reason_code
from batch_dispatch.alerts.failed_job import build_message, summarize
from batch_dispatch.alerts.job_state import parse_event
from batch_dispatch.settings import FailureNotifySettings, from_environment
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

    queue = event["detail"]["jobQueue"]
    limited = json.dumps(
        build_blocked_message(
            summarize_blocked(event, region="us-east-1", time_limit_seconds=3600, own_queue_arns=[queue])
        )
    )
    manual = json.dumps(
        build_blocked_message(
            summarize_blocked(invalid, region="us-east-1", time_limit_seconds=3600, own_queue_arns=[queue])
        )
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
    assert message["blocks"][0]["text"]["text"].startswith("[123456789012 · us-east-1] Batch job CANCELLED:")
    assert message["text"].startswith("[123456789012 · us-east-1] Batch job CANCELLED:")
    assert "EC2 has no capacity" in json.dumps(message)


def test_an_array_parent_alert_says_how_many_children_failed():
    message = build_message(summarize(parse_event(load_event("batch/array-parent-failed-storm.json"))))

    assert "*Children failed*\\n412 of 1000" in json.dumps(message)


# --- our queue, or someone else's (AdditionalAlertQueueArns) -------------------------------------------

QUEUES = "arn:aws:batch:us-east-1:123456789012:job-queue"
OUR_QUEUE = f"{QUEUES}/batch-dispatch-dev-JobQueue-A1"
OUR_HIGH_PRIORITY_QUEUE = f"{QUEUES}/batch-dispatch-dev-HighPriorityJobQueue-B2"
OUR_LOW_PRIORITY_QUEUE = f"{QUEUES}/batch-dispatch-dev-LowPriorityJobQueue-C3"
OUR_QUEUES = [OUR_QUEUE, OUR_HIGH_PRIORITY_QUEUE, OUR_LOW_PRIORITY_QUEUE]
OTHER_QUEUE = "arn:aws:batch:us-east-1:123456789012:job-queue/data-team-gpu-queue"
STACK_PARAMETERS = (
    "RunnableTimeLimitSeconds",
    "InstanceTypes",
    "MaxvCpus",
    "JobVcpu",
    "JobMemory",
    "ComputeType",
)


def blocked_on(queue: str, status_reason: str) -> dict:
    event = load_event("batch/queue-blocked-capacity.json")
    event["detail"]["jobQueue"] = queue
    event["resources"][-1] = queue
    event["detail"]["statusReason"] = status_reason
    return event


@pytest.mark.parametrize("code", [*REASONS, "RESOURCE:GPU_LICENSES", "SOMETHING:NEW"])
def test_another_stacks_queue_gets_advice_about_its_own_compute_environment(code):
    # Given a queue this stack only alerts on, blocked for any reason
    event = blocked_on(OTHER_QUEUE, f"{code} - details")

    message = json.dumps(
        build_blocked_message(
            summarize_blocked(event, region="us-east-1", time_limit_seconds=3600, own_queue_arns=OUR_QUEUES)
        )
    )

    # Then no advice names this stack's parameters, and our time limit is not claimed for their queue
    for parameter in STACK_PARAMETERS:
        assert parameter not in message, parameter
    assert "cancels jobs stuck" not in message


def test_our_queue_gets_advice_that_names_our_parameters():
    event = blocked_on(OUR_QUEUE, "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - no m6i")
    other = blocked_on(OTHER_QUEUE, "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - no m6i")

    ours = json.dumps(
        build_blocked_message(summarize_blocked(event, region="us-east-1", own_queue_arns=OUR_QUEUES))
    )
    theirs = json.dumps(
        build_blocked_message(summarize_blocked(other, region="us-east-1", own_queue_arns=OUR_QUEUES))
    )

    assert "`InstanceTypes`" in ours
    assert "Set RunnableTimeLimitSeconds" in ours
    assert "the queue's compute environment (its instanceTypes)" in theirs
    assert "jobStateTimeLimitActions" in theirs


def notifier_settings(**environment: str) -> FailureNotifySettings:
    """The notifier's settings as template.yaml sets them: the default job type's queue, and all three."""
    return from_environment(
        FailureNotifySettings,
        {
            "SLACK_WEBHOOK_SECRET_NAME": "s",
            "IDEMPOTENCY_TABLE_NAME": "t",
            "JOB_QUEUE_ARN": OUR_QUEUE,
            "STACK_JOB_QUEUE_ARNS": ",".join(OUR_QUEUES),
            "RUNNABLE_TIME_LIMIT_SECONDS": "3600",
            **environment,
        },
    )


@pytest.mark.parametrize("queue", OUR_QUEUES, ids=["normal", "high priority", "low priority"])
def test_each_of_the_stacks_three_queues_gets_advice_that_names_the_stacks_parameters(queue):
    # Given one of the stack's queues, blocked for a reason its time limit acts on
    settings = notifier_settings()
    event = blocked_on(queue, "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - no m6i")

    # When the notifier describes it
    summary = summarize_blocked(
        event,
        region="us-east-1",
        time_limit_seconds=settings.runnable_time_limit_seconds,
        own_queue_arns=settings.own_job_queue_arns,
    )
    message = json.dumps(build_blocked_message(summary))

    # Then the stack's parameters are named, and its time limit (set on all three queues) is told
    assert summary.ours
    assert "`InstanceTypes`" in message
    assert "The queue cancels jobs stuck for this reason after 3600 s" in message
    assert "the queue's compute environment (its instanceTypes)" not in message


def test_without_the_list_the_default_job_types_queue_is_still_the_stacks():
    settings = notifier_settings(STACK_JOB_QUEUE_ARNS="")

    assert settings.own_job_queue_arns == {OUR_QUEUE}


def test_an_unknown_reason_points_to_the_status_reason_above_it():
    message = build_blocked_message(
        summarize_blocked(
            blocked_on(OUR_QUEUE, "SOMETHING:NEW - a reason Batch just added"), region="us-east-1"
        )
    )
    texts = [b.get("text", {}).get("text", "") for b in message["blocks"]]

    reason_at = next(i for i, t in enumerate(texts) if t.startswith("*Status reason:*"))
    checks_at = next(i for i, t in enumerate(texts) if t.startswith("*What to check*"))
    assert reason_at < checks_at
    assert "Read the status reason above" in texts[checks_at]
    assert "below" not in json.dumps(message)


def test_a_blocked_message_links_to_the_queue_and_the_compute_environments():
    message = build_blocked_message(
        summarize_blocked(load_event("batch/queue-blocked-capacity.json"), region="us-east-1")
    )

    (actions,) = [b for b in message["blocks"] if b["type"] == "actions"]
    urls = {e["text"]["text"]: e["url"] for e in actions["elements"]}
    assert urls["Open queue in Batch console"] == (
        "https://us-east-1.console.aws.amazon.com/batch/home?region=us-east-1#queues/detail/batch-dispatch-dev-queue"
    )
    assert urls["Compute environments"] == (
        "https://us-east-1.console.aws.amazon.com/batch/home?region=us-east-1#compute-environments"
    )
    assert "Open job in Batch console" in urls
