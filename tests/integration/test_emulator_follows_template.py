"""The emulator takes its behaviour from template.yaml: change a setting in a copy, the behaviour follows.

Each test deploys an edited copy of the template (`deploy_edited_template`) and watches the outcome
in moto (jobs in Batch and when they were created, the DLQ, the queue) or the Slack stand-in. The
edits find each setting in either shape the template may use: SAM `Events` on the function, or
explicit `AWS::Lambda::EventSourceMapping` / `AWS::Scheduler::Schedule` / `AWS::Events::Rule` resources.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest

from emulator.core import Emulator, s3_notification
from emulator.moto_server import WireAnswer, WireRequest
from emulator.stack import referenced_logical_id
from emulator.throttle import SUBMIT_JOB_PATH

pytestmark = pytest.mark.integration

Template = dict[str, Any]
Deploy = Callable[[Callable[[Template], None]], Emulator]
INTAKE = "S3SubmitFunction"


# --- finding a setting in the template, whichever shape it has -----------------------------------------


def _function_event(template: Template, function: str, types: set[str]) -> dict[str, Any] | None:
    events = template["Resources"][function].get("Properties", {}).get("Events", {})
    return next((e["Properties"] for e in events.values() if e.get("Type") in types), None)


def _resources(template: Template, resource_type: str) -> list[dict[str, Any]]:
    return [r["Properties"] for r in template["Resources"].values() if r.get("Type") == resource_type]


def sqs_mapping(template: Template, function: str = INTAKE) -> dict[str, Any]:
    """The properties of `function`'s SQS event source mapping."""
    found = _function_event(template, function, {"SQS"})
    if found is None:
        mappings = _resources(template, "AWS::Lambda::EventSourceMapping")
        found = next(p for p in mappings if referenced_logical_id(p.get("FunctionName")) == function)
    return found


def schedule_of(template: Template, function: str = "ScheduleSubmitFunction") -> dict[str, Any]:
    """The properties of the schedule that targets `function` (both shapes have `State`)."""
    found = _function_event(template, function, {"ScheduleV2"})
    if found is None:
        schedules = _resources(template, "AWS::Scheduler::Schedule")
        found = next(p for p in schedules if referenced_logical_id(p["Target"].get("Arn")) == function)
    return found


def rule_pattern(template: Template, function: str = "FailureNotifyFunction") -> dict[str, Any]:
    """The event pattern of the EventBridge rule that targets `function`."""
    found = _function_event(template, function, {"EventBridgeRule", "CloudWatchEvent"})
    if found is not None:
        pattern: dict[str, Any] = found["Pattern"]
        return pattern
    rules = _resources(template, "AWS::Events::Rule")
    rule = next(
        p for p in rules if any(referenced_logical_id(t.get("Arn")) == function for t in p.get("Targets", []))
    )
    pattern = rule["EventPattern"]
    return pattern


def intake_queue(template: Template) -> dict[str, Any]:
    mapping = sqs_mapping(template)
    queue = referenced_logical_id(mapping.get("Queue") or mapping.get("EventSourceArn"))
    assert queue is not None
    properties: dict[str, Any] = template["Resources"][queue]["Properties"]
    return properties


def array_mode(template: Template) -> None:
    template["Parameters"]["SubmitMode"]["Default"] = "ARRAY"


# --- what the tests read back --------------------------------------------------------------------------


def send_to_intake(local: Emulator, bodies: list[str]) -> None:
    sqs: Any = boto3.client("sqs")
    for body in bodies:
        sqs.send_message(QueueUrl=local.stack.queue_url("IntakeQueue"), MessageBody=body)


def uploads(local: Emulator, count: int, tag: str = "f") -> list[str]:
    return [s3_notification(local.bucket(), f"incoming/{tag}-{n}.csv", n) for n in range(count)]


def submitted_keys(local: Emulator) -> list[str]:
    return sorted(j["parameters"]["key"] for j in local.jobs_submitted() if "key" in j["parameters"])


def array_sizes(local: Emulator) -> list[int]:
    return sorted(j["arrayProperties"]["size"] for j in local.jobs_submitted() if j["arrayProperties"])


def in_flight(local: Emulator) -> int:
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=local.stack.queue_url("IntakeQueue"),
        AttributeNames=["ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesNotVisible"])


@contextmanager
def slow_submit_job(local: Emulator, seconds: float) -> Iterator[list[int]]:
    """Every SubmitJob takes `seconds` in the server; yields [peak number of calls in flight at once]."""
    peak, in_flight_now, lock = [0], [0], threading.Lock()

    def answer(request: WireRequest) -> WireAnswer | None:
        if request.path.rstrip("/") == SUBMIT_JOB_PATH:
            with lock:
                in_flight_now[0] += 1
                peak[0] = max(peak[0], in_flight_now[0])
            time.sleep(seconds)
            with lock:
                in_flight_now[0] -= 1
        return None  # then moto answers it

    with local.server.intercepting(answer):
        yield peak


# --- FunctionResponseTypes -----------------------------------------------------------------------------


@pytest.mark.parametrize("report_item_failures", [True, False], ids=["ReportBatchItemFailures", "none"])
def test_function_response_types_decide_whether_a_partial_failure_is_retried(
    deploy_edited_template: Deploy, report_item_failures: bool
):
    # Given the intake mapping with or without ReportBatchItemFailures
    def edit(template: Template) -> None:
        if not report_item_failures:
            del sqs_mapping(template)["FunctionResponseTypes"]

    local = deploy_edited_template(edit)
    # When one batch holds a malformed body and two uploads
    send_to_intake(local, ["not json {", *uploads(local, 2)])
    local.drain(retry_visibility_seconds=0)

    # Then the uploads are jobs either way. With the setting, the malformed message is retried until
    # the redrive parks it; without it, Lambda ignores batchItemFailures: the answer counts as success
    # and the whole batch is deleted, the malformed message with it (lost, not in the DLQ).
    assert submitted_keys(local) == ["incoming/f-0.csv", "incoming/f-1.csv"]
    assert local.dlq_messages()["IntakeDLQ"] == (["not json {"] if report_item_failures else [])
    assert in_flight(local) == 0


# --- the queue's VisibilityTimeout ---------------------------------------------------------------------


def test_a_failed_message_comes_back_when_the_queues_visibility_timeout_ends(deploy_edited_template: Deploy):
    # Given the intake queue hides a received message for 1 s and parks it after 2 receives (and no
    # batching window, which would outlast the timeout and gather the message twice in one batch)
    def edit(template: Template) -> None:
        intake_queue(template)["VisibilityTimeout"] = 1
        template["Parameters"]["IntakeMaxReceiveCount"]["Default"] = 2
        sqs_mapping(template)["MaximumBatchingWindowInSeconds"] = 0

    local = deploy_edited_template(edit)
    send_to_intake(local, ["not json {"])

    # When the pollers drain the queue (no fast-forward: failed messages wait out the timeout)
    started = time.monotonic()
    invocations = local.drain(idle_timeout=20)
    elapsed = time.monotonic() - started

    # Then it came back after 1 s, failed again, and after another 1 s the redrive parked it
    assert invocations == 2
    assert elapsed >= 2.0
    assert local.dlq_messages()["IntakeDLQ"] == ["not json {"]


def test_a_failed_message_stays_hidden_while_the_queues_visibility_timeout_runs(
    deploy_edited_template: Deploy,
):
    # Given the intake queue hides a received message for 4 s
    local = deploy_edited_template(lambda template: intake_queue(template).update(VisibilityTimeout=4))
    send_to_intake(local, ["not json {"])

    # When the pollers have been at it for 2.5 s
    invocations = local.drain(idle_timeout=2.5)

    # Then the message failed once and is still in flight: not back yet, not parked
    assert invocations == 1
    assert in_flight(local) == 1
    assert local.dlq_messages()["IntakeDLQ"] == []


# --- MaximumConcurrency --------------------------------------------------------------------------------


@pytest.mark.parametrize(("maximum", "expected"), [(3, 3), (None, 5)], ids=["3", "absent: 5"])
def test_maximum_concurrency_bounds_the_invocations_at_once(
    deploy_edited_template: Deploy, maximum: int | None, expected: int
):
    # Given one message per batch and MaximumConcurrency set to 3, or not set (Lambda starts with 5)
    def edit(template: Template) -> None:
        mapping = sqs_mapping(template)
        mapping.update(BatchSize=1, MaximumBatchingWindowInSeconds=0)
        if maximum is None:
            mapping.pop("ScalingConfig", None)
        else:
            mapping["ScalingConfig"] = {"MaximumConcurrency": maximum}

    local = deploy_edited_template(edit)
    send_to_intake(local, uploads(local, 10))

    # When the queue is drained while each SubmitJob takes 0.4 s
    with slow_submit_job(local, 0.4) as peak:
        local.drain()

    # Then exactly that many invocations were submitting at once, and every upload is a job
    assert peak == [expected]
    assert len(submitted_keys(local)) == 10


# --- BatchSize and MaximumBatchingWindowInSeconds ------------------------------------------------------


@pytest.mark.parametrize("batch_size", [3, 10])
def test_batch_size_bounds_the_objects_of_one_array_job(deploy_edited_template: Deploy, batch_size: int):
    # Given array mode (one array job per batch) and a BatchSize of 3 or 10
    def edit(template: Template) -> None:
        array_mode(template)
        sqs_mapping(template).update(BatchSize=batch_size, MaximumBatchingWindowInSeconds=1)

    local = deploy_edited_template(edit)
    send_to_intake(local, uploads(local, 7))

    # When the queue is drained
    local.drain()

    # Then each array job holds at most BatchSize objects, all seven in all
    found = array_sizes(local)
    assert sum(found) == 7
    assert found == [7] if batch_size == 10 else max(found) <= 3


@pytest.mark.parametrize(
    ("window", "batch_size", "waits"),
    [(2, 10, True), (2, 3, False), (0, 10, False)],
    ids=["window 2 s, batch not full", "window 2 s, batch full", "no window"],
)
def test_a_batch_waits_for_the_batching_window_unless_it_is_full(
    deploy_edited_template: Deploy, window: int, batch_size: int, waits: bool
):
    # Given a batching window of 0 or 2 s and BatchSize 10 or 3
    local = deploy_edited_template(
        lambda template: sqs_mapping(template).update(
            BatchSize=batch_size, MaximumBatchingWindowInSeconds=window
        )
    )

    # When three uploads arrive and the queue is drained
    sent_ms = time.time() * 1000
    send_to_intake(local, uploads(local, 3))
    local.drain()

    # Then their jobs were created after the window when the batch was not full, at once otherwise
    first_created = min(job["createdAt"] for job in local.jobs_submitted()) - sent_ms
    assert len(local.jobs_submitted()) == 3
    if waits:
        assert first_created >= window * 1000
    else:
        assert first_created < 1500


# --- the mapping's Enabled -----------------------------------------------------------------------------


def test_a_disabled_event_source_mapping_does_not_poll(deploy_edited_template: Deploy):
    local = deploy_edited_template(lambda template: sqs_mapping(template).update(Enabled=False))
    send_to_intake(local, uploads(local, 2))

    assert local.drain() == 0
    assert local.jobs_submitted() == []


# --- the schedule's State ------------------------------------------------------------------------------


def test_a_disabled_schedule_does_not_fire(deploy_edited_template: Deploy):
    # Given the schedule in state DISABLED
    local = deploy_edited_template(lambda template: schedule_of(template).update(State="DISABLED"))

    # When it is ticked
    outcome = local.tick("2026-11-23T12:00:00Z")

    # Then nothing ran and no job was submitted
    assert outcome is None
    assert local.jobs_submitted() == []


# --- the rule's event pattern --------------------------------------------------------------------------


def test_a_narrower_rule_pattern_stops_delivering_an_event(deploy_edited_template: Deploy):
    # Given the notifier's rule without its "Batch Job Queue Blocked" alternative
    def edit(template: Template) -> None:
        pattern = rule_pattern(template)
        pattern["$or"] = [
            alt for alt in pattern["$or"] if alt.get("detail-type") != ["Batch Job Queue Blocked"]
        ]

    local = deploy_edited_template(edit)
    reason = "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - Service cannot fulfill the capacity requested"

    # When Batch reports our queue blocked, and a job of it fails
    blocked = local.publish_queue_blocked(reason)
    with local.jobs_fail():
        local.tick("2026-11-23T12:00:00Z")
    failed = local.publish_batch_events()

    # Then the blocked queue reached nobody; the failed job still did
    assert blocked == []
    assert len(failed) == 1
    assert len(local.slack_messages()) == 1
    assert "BLOCKED" not in local.slack_messages()[0]["text"]
