"""Per-job-type alerts: a job type's failures (and, if asked, successes) go to its own Slack channel.

Scope: the FailureNotifyFunction handler end to end against two Slack stand-ins (the stack's channel and
the thumbnails channel), their webhook secrets and the idempotency table in moto, and the job catalog's
registry entry in moto SSM.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from batch_dispatch import execution_environment
from emulator.slack_stub import SlackStandIn
from functions.failure_notify import app
from tests.conftest import FakeLambdaContext, create_id_table, load_event

STACK = "stack"
REGISTRY = f"/batch-dispatch/{STACK}/job-types"
DEFINITIONS = "arn:aws:batch:us-east-1:123456789012:job-definition"
QUEUE = "arn:aws:batch:us-east-1:123456789012:job-queue/stack-JobQueue-X"


@dataclass
class Channels:
    stack: SlackStandIn
    thumbnails: SlackStandIn


def register(ssm: Any, name: str, **entry: str) -> None:
    value = {
        "jobDefinition": f"{DEFINITIONS}/{STACK}_{name}:1",
        "jobQueue": QUEUE,
        "routed": "false",
        "webhookSecretName": f"batch-dispatch/slack-{name}",
        **entry,
    }
    ssm.put_parameter(Name=f"{REGISTRY}/{name}", Type="String", Value=json.dumps(value), Overwrite=True)


@pytest.fixture
def channels(monkeypatch: pytest.MonkeyPatch) -> Iterator[Channels]:
    with SlackStandIn() as stack_channel, SlackStandIn() as thumbnails_channel, mock_aws():
        secrets = boto3.client("secretsmanager")
        secrets.create_secret(Name="batch-dispatch/slack-webhook", SecretString=stack_channel.url)
        secrets.create_secret(Name="batch-dispatch/slack-thumbnails", SecretString=thumbnails_channel.url)
        create_id_table("idempotency")
        ssm = boto3.client("ssm")
        register(ssm, "thumbnails", mention="<!subteam^S0THUMBS>", notifySucceeded="true")
        register(ssm, "reports", webhookSecretName="")
        for name, value in {
            "SLACK_WEBHOOK_SECRET_NAME": "batch-dispatch/slack-webhook",
            "SLACK_MENTION": "<!here>",
            "IDEMPOTENCY_TABLE_NAME": "idempotency",
            "JOB_QUEUE_ARN": QUEUE,
            "JOB_DEFINITION_ARN": f"{DEFINITIONS}/{STACK}_default:4",
            "JOB_NAME_PREFIX": STACK,
            "JOB_TYPES_PATH": REGISTRY,
            "ALERT_STATE_TABLE_NAME": "",
            "STORM_QUEUE_URL": "",
            "SLACK_TIMEOUT_SECONDS": "2",
        }.items():
            monkeypatch.setenv(name, value)
        execution_environment.reset()
        yield Channels(stack=stack_channel, thumbnails=thumbnails_channel)
        execution_environment.reset()


def event_of(
    definition: str, status: str = "FAILED", job_id: str = "5f2c1d4e-0000-4f0e-9c7d-2a5b8e1f4d36"
) -> dict:
    event = load_event(
        "batch/job-failed-container.json" if status == "FAILED" else "batch/job-succeeded.json"
    )
    event["detail"]["jobDefinition"] = f"{DEFINITIONS}/{definition}"
    event["detail"]["jobId"] = job_id
    return event


def handle(event: dict[str, Any]) -> Any:
    return app.lambda_handler(event, FakeLambdaContext(timeout_seconds=30))


def test_a_job_types_failure_goes_to_its_channel_with_its_mention(channels):
    handle(event_of(f"{STACK}_thumbnails:1"))

    [message] = channels.thumbnails.messages
    assert "<!subteam^S0THUMBS>" in json.dumps(message)
    assert channels.stack.messages == []


def test_the_default_job_types_failure_goes_to_the_stacks_channel(channels):
    handle(event_of(f"{STACK}_default:4"))

    [message] = channels.stack.messages
    assert "<!here>" in json.dumps(message)
    assert channels.thumbnails.messages == []


def test_a_job_type_without_its_own_channel_and_a_foreign_job_use_the_stacks_channel(channels):
    handle(event_of(f"{STACK}_reports:2", job_id="a"))
    handle(event_of("another-stack_default:1", job_id="b"))

    assert len(channels.stack.messages) == 2
    assert channels.thumbnails.messages == []


def test_successes_are_posted_only_for_job_types_that_asked(channels):
    posted = handle(event_of(f"{STACK}_thumbnails:1", status="SUCCEEDED", job_id="ok-1"))
    skipped = handle(event_of(f"{STACK}_reports:2", status="SUCCEEDED", job_id="ok-2"))
    again = handle(event_of(f"{STACK}_thumbnails:1", status="SUCCEEDED", job_id="ok-1"))

    [message] = channels.thumbnails.messages
    assert "SUCCEEDED" in message["text"]
    assert posted["notified"] is True
    assert skipped == {"notified": False, "reason": "status SUCCEEDED"}
    assert again["duplicate"] is True
    assert channels.stack.messages == []


# --- a job type's own alert settings, the stack's as the default --------------------------------------

LOG_GROUP = "/aws/batch/batch-dispatch-dev"  # job-failed-container.json's job logs here
LOG_STREAM = "batch-dispatch/default/c3d4e5f60718293a4b5c6d7e8f90a1b2"


def log_lines(count: int) -> None:
    logs = boto3.client("logs")
    logs.create_log_group(logGroupName=LOG_GROUP)
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=LOG_STREAM)
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=LOG_GROUP,
        logStreamName=LOG_STREAM,
        logEvents=[{"timestamp": now + n, "message": f"step {n}"} for n in range(count)],
    )


def shown_log_lines(message: dict[str, Any]) -> list[str]:
    (tail,) = [
        b["text"]["text"] for b in message["blocks"] if b.get("text", {}).get("text", "").startswith("*Last ")
    ]
    return str(tail).split("```")[1].split("\n")


def test_a_job_types_log_tail_lines_replace_the_stacks(channels, monkeypatch):
    # Given a stack showing 5 log lines, a job type showing 2, and one that keeps the stack's
    monkeypatch.setenv("LOG_TAIL_LINES", "5")
    register(boto3.client("ssm"), "thumbnails", logTailLines="2")
    register(boto3.client("ssm"), "reports", webhookSecretName="", logTailLines="")
    log_lines(30)

    # When a job of each fails
    handle(event_of(f"{STACK}_thumbnails:1", job_id="t"))
    handle(event_of(f"{STACK}_reports:1", job_id="r"))
    handle(event_of(f"{STACK}_default:4", job_id="d"))

    # Then each alert shows as many of the last lines as its job type says
    [thumbnails] = channels.thumbnails.messages
    reports, default = channels.stack.messages
    assert shown_log_lines(thumbnails) == ["step 28", "step 29"]
    assert shown_log_lines(reports) == [f"step {n}" for n in range(25, 30)]
    assert shown_log_lines(default) == [f"step {n}" for n in range(25, 30)]


def test_a_job_type_may_turn_its_log_tail_off(channels):
    register(boto3.client("ssm"), "thumbnails", logTailLines="0")
    log_lines(3)

    handle(event_of(f"{STACK}_thumbnails:1"))

    [message] = channels.thumbnails.messages
    assert "step 2" not in json.dumps(message)


def cancelled_event(definition: str, job_id: str) -> dict[str, Any]:
    event = load_event("batch/job-failed-operator-terminated.json")
    event["detail"]["jobDefinition"] = f"{DEFINITIONS}/{definition}"
    event["detail"]["jobId"] = job_id
    return event


def test_a_job_types_mention_on_cancel_replaces_the_stacks(channels, monkeypatch):
    # Given a stack that does not mention on cancels, and a job type that does
    monkeypatch.setenv("MENTION_ON_CANCEL", "false")
    register(boto3.client("ssm"), "thumbnails", mention="<!subteam^S0THUMBS>", mentionOnCancel="true")

    # When a job of each is terminated by an operator
    handle(cancelled_event(f"{STACK}_thumbnails:1", "t"))
    handle(cancelled_event(f"{STACK}_default:4", "d"))

    # Then only the job type's cancel carries its mention
    [thumbnails] = channels.thumbnails.messages
    [default] = channels.stack.messages
    assert thumbnails["text"].startswith("<!subteam^S0THUMBS> ")
    assert "CANCELLED" in thumbnails["text"]
    assert "<!here>" not in json.dumps(default)


def test_a_job_type_may_keep_cancels_quiet_when_the_stack_mentions_them(channels, monkeypatch):
    monkeypatch.setenv("MENTION_ON_CANCEL", "true")
    register(boto3.client("ssm"), "thumbnails", mention="<!subteam^S0THUMBS>", mentionOnCancel="false")
    register(boto3.client("ssm"), "reports", webhookSecretName="", mentionOnCancel="")

    handle(cancelled_event(f"{STACK}_thumbnails:1", "t"))
    handle(cancelled_event(f"{STACK}_reports:1", "r"))

    [thumbnails] = channels.thumbnails.messages
    [reports] = channels.stack.messages
    assert "S0THUMBS" not in json.dumps(thumbnails)
    assert reports["text"].startswith("<!here> ")


def rerun_buttons_in(message: dict[str, Any]) -> list[str]:
    return [
        element["action_id"]
        for block in message["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
        if element.get("action_id", "").startswith("rerun")
    ]


def test_a_job_type_nobody_may_rerun_gets_no_rerun_button(channels, monkeypatch):
    # Given the Rerun button on, and a job type whose RerunAllowedSlackUsers is none (and no group)
    monkeypatch.setenv("RERUN_BUTTON", "true")
    register(boto3.client("ssm"), "thumbnails", rerunAllowedSlackUsers="none", rerunAllowedSlackGroups="")
    register(boto3.client("ssm"), "reports", webhookSecretName="", rerunAllowedSlackUsers="U0ALICE")

    # When a job of each fails
    handle(event_of(f"{STACK}_thumbnails:1", job_id="t"))
    handle(event_of(f"{STACK}_reports:1", job_id="r"))

    # Then the type nobody may rerun has no Rerun button; the other keeps it
    [thumbnails] = channels.thumbnails.messages
    [reports] = channels.stack.messages
    assert rerun_buttons_in(thumbnails) == []
    assert rerun_buttons_in(reports) != []
