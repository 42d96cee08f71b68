"""Failure alerts end to end: a job FAILS in moto Batch, its state-change event goes through the
template's rule to FailureNotifyFunction, and the Slack stand-in receives one message."""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import boto3
import pytest
from moto.events.models import EventPattern

from batch_dispatch.aws.console_links import console_encode
from emulator.core import Emulator
from tests.conftest import EVENTS_DIR, load_event

pytestmark = pytest.mark.integration


def rule_matches(local: Emulator, event: dict) -> bool:
    (rule,) = [r for r in local.shim.rules() if "FailureNotifyFunction" in r.target_functions]
    return bool(EventPattern.load(json.dumps(rule.pattern)).matches_event(event))


def all_text(message: dict) -> str:
    return json.dumps(message, ensure_ascii=False)


def test_a_failed_job_in_our_queue_posts_one_slack_message(local: Emulator):
    with local.jobs_fail(exit_code=137, reason="OutOfMemoryError: Container killed due to memory usage"):
        failed = local.tick("2026-11-23T15:00:00Z")

    invocations = local.publish_batch_events()

    assert [i.error for i in invocations] == [None]
    (message,) = local.slack_messages()
    assert failed.result["jobName"] in message["text"]
    assert failed.result["jobId"] in all_text(message)
    assert "137" in all_text(message)
    assert "OutOfMemoryError" in all_text(message)
    assert f"#jobs/detail/{failed.result['jobId']}" in all_text(message)
    assert console_encode(local.stack.outputs["JobLogGroupName"]) in all_text(
        message
    )  # the stack's own group


def test_succeeded_jobs_post_nothing(local: Emulator):
    local.tick("2026-11-23T12:00:00Z")

    assert local.publish_batch_events() == []  # the rule only matches FAILED
    assert local.slack_messages() == []


def test_the_rule_matches_failed_jobs_of_our_queue_only(local: Emulator):
    failed = load_event("batch/job-failed-container.json")
    ours = copy.deepcopy(failed)
    ours["detail"]["jobQueue"] = local.stack.outputs["JobQueueArn"]
    other_queue = copy.deepcopy(ours)
    other_queue["detail"]["jobQueue"] = "arn:aws:batch:us-east-1:123456789012:job-queue/someone-else"
    running = copy.deepcopy(ours)
    running["detail"]["status"] = "RUNNING"

    assert rule_matches(local, ours)
    assert not rule_matches(local, other_queue)
    assert not rule_matches(local, running)


def test_the_same_failed_event_delivered_twice_posts_once(local: Emulator):
    event = load_event("batch/job-failed-container.json")

    first = local.invoke("FailureNotifyFunction", event)
    second = local.invoke("FailureNotifyFunction", event)

    assert first.error is None
    assert second.result["duplicate"] is True
    assert len(local.slack_messages()) == 1


FAILED_LAYOUTS = sorted(
    path.name
    for path in (EVENTS_DIR / "batch").glob("job-failed-*.json")
    if "#" not in json.loads(path.read_text(encoding="utf-8"))["detail"]["jobId"]  # nodes post nothing
)


@pytest.mark.parametrize("event_file", FAILED_LAYOUTS)
def test_every_failed_event_layout_posts_one_valid_message(local: Emulator, event_file: str):
    event = load_event(f"batch/{event_file}")

    outcome = local.invoke("FailureNotifyFunction", event)

    assert outcome.error is None
    (message,) = local.slack_messages()
    assert event["detail"]["jobId"] in all_text(message)
    assert len(message["blocks"]) <= 50
    assert "<!channel>" not in all_text(message)


def test_slack_rate_limiting_is_waited_out(local: Emulator):
    # Given Slack answers 429 (Retry-After: 1), then 500, then accepts
    local.slack.script("rate_limited", "server_error")

    # When one failed-job event arrives
    started = time.monotonic()
    outcome = local.invoke("FailureNotifyFunction", load_event("batch/job-failed-container.json"))

    # Then the first invocation itself waits out the 429 and the 500 and posts once (no Lambda retry)
    assert outcome.error is None
    assert outcome.attempts == 1
    assert [r.status for r in local.slack.requests] == [429, 500, 200]
    assert len(local.slack_messages()) == 1
    assert time.monotonic() - started >= 1.0  # the Retry-After was honoured


def test_alerts_posted_at_once_reach_one_webhook_a_second_apart(local: Emulator):
    # Given three jobs that fail at the same moment
    with local.jobs_fail(exit_code=1):
        for hour in ("09", "10", "11"):
            local.tick(f"2026-11-23T{hour}:00:00Z")
    events = [local.batch_event(job) for job in local.describe_jobs()]

    # When their events reach three concurrent invocations of the notifier
    with ThreadPoolExecutor(max_workers=3) as pool:
        outcomes = list(pool.map(lambda event: local.invoke("FailureNotifyFunction", event), events))

    # Then each is posted once, and Slack saw them about a second apart (its limit per webhook): the
    # slots are 1.1 s apart, the way from a slot to Slack varies with the machine's load (unpaced,
    # they arrive within milliseconds)
    assert [o.error for o in outcomes] == [None, None, None]
    arrivals = sorted(r.received_at for r in local.slack.requests)
    assert [r.status for r in local.slack.requests] == [200, 200, 200]
    assert min(later - earlier for earlier, later in pairwise(arrivals)) >= 0.9


def test_a_revoked_webhook_parks_the_event_in_the_dlq_without_leaking_the_url(
    local: Emulator, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
):
    caplog.set_level(logging.DEBUG)
    local.slack.set_mode("no_service")
    event = load_event("batch/job-failed-container.json")

    outcome = local.invoke("FailureNotifyFunction", event)

    assert outcome.error is not None
    assert outcome.error["type"] == "SlackPermanentError"
    assert outcome.attempts == 3  # Lambda's async retries, then the DLQ
    assert local.slack_messages() == []
    assert [json.loads(b) for b in local.dlq_messages()["FailureNotifyDLQ"]] == [event]
    output = capsys.readouterr()
    for text in (caplog.text, output.out, output.err, json.dumps(outcome.error)):
        assert local.slack.url not in text
        assert "/services/" not in text


def test_a_fixed_webhook_and_a_redrive_deliver_the_parked_alert_once(local: Emulator):
    local.slack.set_mode("no_service")
    event = load_event("batch/job-failed-container.json")
    local.invoke("FailureNotifyFunction", event)
    local.slack.set_mode("ok")

    for body in local.dlq_messages()["FailureNotifyDLQ"]:  # the operator's redrive
        local.invoke("FailureNotifyFunction", json.loads(body))
    local.invoke("FailureNotifyFunction", event)  # and a late duplicate from EventBridge

    assert len(local.slack_messages()) == 1


def test_a_multinode_job_posts_once_for_its_parent_not_for_its_nodes(local: Emulator):
    node, parent = (
        load_event("batch/job-failed-multinode.json"),
        load_event("batch/job-failed-multinode-parent.json"),
    )
    for event in (node, parent):
        event["detail"]["jobQueue"] = local.stack.outputs["JobQueueArn"]

    delivered = local.publish_event(node) + local.publish_event(parent)

    assert [i.error for i in delivered] == [None, None]
    (message,) = local.slack_messages()
    assert message["blocks"][0]["text"]["text"].endswith("Batch job FAILED: batch-dispatch-mnp-train")
    assert "c4d5e6f7-8091-4a2b-b3c4-d5e6f7081920#" not in all_text(message)


def test_a_failed_jobs_last_log_lines_reach_slack_redacted(local: Emulator):
    # Given a job of the stack that fails for memory after logging (a key among its lines)
    with local.jobs_fail(exit_code=137, reason="OutOfMemoryError: Container killed due to memory usage"):
        failed = local.tick("2026-11-23T16:00:00Z")
    (job,) = [j for j in local.describe_jobs() if j["jobId"] == failed.result["jobId"]]
    group = local.stack.outputs["JobLogGroupName"]
    stream = job["attempts"][-1]["container"]["logStreamName"]
    logs = boto3.client("logs")
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    lines = [
        "loading orders.csv",
        "s3 client with AKIAIOSFODNN7EXAMPLE",
        "MemoryError: unable to allocate 3.1 GiB",
    ]
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": now + n, "message": line} for n, line in enumerate(lines)],
    )

    # When its FAILED event reaches the notifier through the rule
    invocations = local.publish_batch_events()

    # Then the alert leads with the cause and ends its story with the redacted log tail
    assert [i.error for i in invocations] == [None]
    (message,) = local.slack_messages()
    assert message["blocks"][1]["text"]["text"].startswith(":x: *OutOfMemoryError: Container killed")
    (tail,) = [
        b["text"]["text"] for b in message["blocks"] if b.get("text", {}).get("text", "").startswith("*Last ")
    ]
    assert tail.startswith("*Last 3 log lines of attempt 1*")
    assert "MemoryError: unable to allocate 3.1 GiB" in tail
    assert "AKIAIOSFODNN7EXAMPLE" not in all_text(message)
    assert "[REDACTED]" in tail
