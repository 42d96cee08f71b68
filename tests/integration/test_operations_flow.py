"""Operations end to end: blocked queues and failure storms through the template's rule,
FailureNotifyFunction, StormQueue (delays fast-forwarded) and StormDigestFunction, into the Slack stand-in."""

from __future__ import annotations

import copy
import json
import re

import boto3
import pytest

from emulator.core import Emulator
from tests.conftest import load_event

pytestmark = pytest.mark.integration

OOM = "OutOfMemoryError: Container killed due to memory usage"


def text(message: dict) -> str:
    return json.dumps(message, ensure_ascii=False)


def ours(local: Emulator, name: str) -> dict:
    event = copy.deepcopy(load_event(f"batch/{name}"))
    event["detail"]["jobQueue"] = local.stack.outputs["JobQueueArn"]
    return event


def headers(local: Emulator) -> list[str]:
    """Each message's header, without the "[environment · account · region] " a job alert starts with."""
    return [re.sub(r"^\[[^\]]*\] ", "", m["blocks"][0]["text"]["text"]) for m in local.slack_messages()]


def recorded_jobs(local: Emulator) -> dict[str, str]:
    """job id -> decision, as AlertStateTable holds them (every failed job the notifier saw)."""
    table = local.stack.outputs["AlertStateTableName"]
    items = boto3.client("dynamodb").scan(TableName=table)["Items"]
    return {i["pk"]["S"].removeprefix("job#"): i["decision"]["S"] for i in items if i["sk"]["S"] == "job"}


# --- blocked queues ---------------------------------------------------------------------------------


def test_a_blocked_queue_is_told_once_per_reason_in_plain_words(local: Emulator):
    # Given a real-format "Batch Job Queue Blocked" event for our queue
    capacity = ours(local, "queue-blocked-capacity.json")
    another_job_same_reason = copy.deepcopy(capacity)
    another_job_same_reason["id"] = "another-delivery"
    another_job_same_reason["detail"]["jobId"] = "11111111-2222-4333-8444-555555555555"
    another_job_same_reason["detail"]["statusReason"] = capacity["detail"]["statusReason"].replace(
        "m6i.2xlarge", "c6i.2xlarge"
    )

    # When it is delivered twice, then another job is blocked for the same reason, then for a new one
    invocations = [
        *local.publish_event(capacity),
        *local.publish_event(capacity),
        *local.publish_event(another_job_same_reason),
        *local.publish_event(ours(local, "queue-blocked-resource-requirement.json")),
    ]

    # Then the rule delivered all four, and Slack got one message per reason
    assert [i.error for i in invocations] == [None] * 4
    assert [i.result["notified"] for i in invocations] == [True, False, False, True]
    first, second = local.slack_messages()
    assert (
        headers(local)
        == [f"Batch queue BLOCKED: {local.stack.outputs['JobQueueArn'].rsplit('/', 1)[-1]}"] * 2
    )
    assert "EC2 has no capacity" in text(first)
    assert "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY" in text(first)
    assert "InstanceTypes" in text(first)  # what to check
    assert "4c7599ae-0a82-49aa-ba5a-4727fcce14a8" in text(first)  # the job at the head of the queue
    assert "large enough for the job" in text(second)
    assert "JobVcpu" in text(second)


@pytest.mark.parametrize("queue_output", ["JobQueueArn", "HighPriorityJobQueueArn", "LowPriorityJobQueueArn"])
def test_each_of_the_stacks_queues_gets_advice_that_names_the_stacks_parameters(
    local: Emulator, queue_output: str
):
    # Given one of the stack's three queues blocked for lack of capacity
    queue = local.stack.outputs[queue_output]
    event = local.queue_blocked_event("CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - no m6i", queue_arn=queue)

    # When Batch reports it
    (invocation,) = local.publish_event(event)

    # Then the advice names the stack's parameters, not another queue's compute environment
    assert invocation.error is None
    (message,) = local.slack_messages()
    assert headers(local) == [f"Batch queue BLOCKED: {queue.rsplit('/', 1)[-1]}"]
    assert "`InstanceTypes`" in text(message)
    assert "Set RunnableTimeLimitSeconds" in text(message)
    assert "its instanceTypes" not in text(message)


def test_a_runnable_job_with_a_blocked_reason_alerts_through_the_same_rule(local: Emulator):
    invocations = local.publish_event(ours(local, "job-runnable-blocked.json"))

    assert [i.error for i in invocations] == [None]
    (message,) = local.slack_messages()
    assert "INVALID or DISABLED" in text(message)
    assert "describe-compute-environments" in text(message)


def test_blocked_events_of_other_queues_and_plain_runnable_jobs_are_not_delivered(local: Emulator):
    other = load_event("batch/queue-blocked-capacity.json")  # someone else's queue
    waiting = ours(local, "job-runnable-blocked.json")
    waiting["detail"]["statusReason"] = "Waiting for capacity"  # no blocked-reason code

    assert local.publish_event(other) == []
    assert local.publish_event(waiting) == []
    assert local.slack_messages() == []


def test_a_job_cancelled_by_the_runnable_time_limit_is_reported_as_cancelled(local: Emulator):
    invocations = local.publish_event(ours(local, "job-cancelled-time-limit.json"))

    assert [i.error for i in invocations] == [None]
    (message,) = local.slack_messages()
    assert headers(local)[0].startswith("Batch job CANCELLED:")
    assert "The queue cancelled it" in text(message)
    assert "EC2 has no capacity" in text(message)


def test_the_demo_helper_builds_the_documented_queue_blocked_event(local: Emulator):
    event = local.queue_blocked_event("MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE - CE(s) cannot meet")
    sample = load_event("batch/queue-blocked-capacity.json")

    assert set(sample) == set(event)
    assert event["detail-type"] == "Batch Job Queue Blocked"
    assert event["resources"] == [event["detail"]["jobArn"], local.stack.outputs["JobQueueArn"]]
    assert (
        local.publish_event(event)[0].result["reasonCode"]
        == "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE"
    )


# --- failure storms ----------------------------------------------------------------------------------


def test_a_burst_of_array_child_failures_becomes_one_digest_and_loses_none(local: Emulator):
    # Given an array job of 40 children that all fail: 36 with exit code 1, 4 killed for memory
    batch = boto3.client("batch")
    with local.jobs_fail(exit_code=1):
        parent = batch.submit_job(
            jobName="fanout",
            jobQueue=local.stack.outputs["JobQueueArn"],
            jobDefinition=local.stack.outputs["JobDefinitionArn"],
            arrayProperties={"size": 40},
        )["jobId"]
    for index in (5, 15, 25, 35):
        local.job_exited(f"{parent}:{index}", exit_code=137, reason=OOM)

    # When their state changes reach the notifier (each delivered twice), and the window closes
    invocations = local.publish_batch_events()
    for invocation_event in [local.batch_event(j) for j in local.describe_jobs()]:
        local.publish_event(invocation_event)
    local.close_storm_windows()

    # Then nothing failed, and Slack got: the parent's alert, the first child as an example, one digest
    assert all(i.error is None for i in invocations)
    assert len(invocations) == 41
    assert local.dlq_messages()["FailureNotifyDLQ"] == []
    messages = local.slack_messages()
    assert len(messages) == 3
    digest = next(m for m in messages if m["blocks"][0]["text"]["text"].startswith("Failure digest"))
    assert f"40 children of array job {parent} failed" in digest["text"]
    assert "36 non-zero exit, 4 out of memory" in digest["text"]
    assert "1 posted on its own above, 39 counted only here" in digest["text"]
    # And every child is accounted for: 1 posted individually, 39 counted in the digest
    children = {j: d for j, d in recorded_jobs(local).items() if j.startswith(f"{parent}:")}
    assert set(children) == {f"{parent}:{i}" for i in range(40)}
    individual = [j for j, d in children.items() if d == "individual"]
    assert len(individual) == 1
    assert any(individual[0] in text(m) for m in messages if m is not digest)
    (parent_alert,) = [
        m for m in messages if m["blocks"][0]["text"]["text"].endswith("array job FAILED: fanout")
    ]
    assert "40 of 40 children failed" in parent_alert["text"]
    assert "*Children failed*\\n40 of 40" in text(parent_alert)


def test_a_storm_of_failures_posts_ten_alerts_a_notice_a_digest_and_an_all_clear(local: Emulator):
    # Given 14 separate jobs that fail within a minute (threshold 10)
    batch = boto3.client("batch")
    with local.jobs_fail(exit_code=2, reason="Essential container in task exited"):
        for n in range(14):
            batch.submit_job(
                jobName=f"storm-{n:02d}",
                jobQueue=local.stack.outputs["JobQueueArn"],
                jobDefinition=local.stack.outputs["JobDefinitionArn"],
            )

    # When their FAILED events are delivered, then the window closes, then a quiet window passes
    invocations = local.publish_batch_events()
    during = headers(local)
    local.close_storm_windows()
    after_close = headers(local)
    local.close_storm_windows()  # the end check, one window later

    # Then 10 individual alerts and a storm notice came at once
    assert all(i.error is None for i in invocations)
    assert sum(h.startswith("Batch job FAILED: storm-") for h in during) == 10
    assert sum(h.startswith("Failure storm:") for h in during) == 1
    # And the digest counts all 14, of which 4 only there
    (digest,) = [m for m in local.slack_messages() if m["text"].startswith("Failure digest")]
    assert re.search(r"14 jobs failed in .*: 14 non-zero exit", digest["text"])
    assert "10 posted on their own above, 4 counted only here" in digest["text"]
    assert len(after_close) == 12
    # And the storm is declared over once a window passes without failures
    assert headers(local)[-1].startswith("Failure storm over:")
    assert len(local.slack_messages()) == 13
    # And every job is accounted for exactly once
    decisions = recorded_jobs(local)
    assert sorted(decisions.values()).count("individual") == 10
    assert sorted(decisions.values()).count("digest") == 4
