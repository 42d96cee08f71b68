"""A Slack interaction as the function receives it (slack/interactions.py), and who may click (settings)."""

from __future__ import annotations

import base64
import json

import pytest

from batch_dispatch.settings import ConfigurationError, SlackActionsSettings, from_environment, slack_user_ids
from batch_dispatch.slack.interactions import MalformedRequestError, http_request, parse_click
from batch_dispatch.slack.signature import verify
from emulator.slack_stub import block_actions_payload, function_url_event, signed_function_url_event
from tests.conftest import load_event

EXAMPLE_SIGNING_SECRET = "example-signing-secret-not-a-real-one"  # events/slack/rerun-click.json's
MESSAGE = {"text": "job failed", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x"}}]}
BUTTON = {
    "type": "button",
    "action_id": "rerun",
    "value": "job-123",
    "text": {"type": "plain_text", "text": "Rerun"},
}


def test_the_function_url_event_gives_the_raw_body_slack_signed():
    # Given the click as Lambda delivers it: a base64 body, lower-case headers
    payload = block_actions_payload(
        MESSAGE, BUTTON, user_id="U0ONCALL", response_url="https://hooks.slack.com/x"
    )
    event = signed_function_url_event(payload, "secret")

    request = http_request(event)

    assert request.method == "POST"
    assert request.body == base64.b64decode(event["body"])
    assert request.body.startswith(b"payload=%7B")
    assert request.headers["x-slack-signature"] == event["headers"]["x-slack-signature"]


def test_a_body_lambda_left_as_text_is_read_as_sent():
    event = function_url_event(b"payload=%7B%7D", {"Content-Type": "application/x-www-form-urlencoded"})
    event["body"], event["isBase64Encoded"] = "payload=%7B%7D", False

    request = http_request(event)

    assert request.body == b"payload=%7B%7D"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"  # names in lower case


def test_the_click_names_the_button_the_job_the_user_and_where_to_answer():
    payload = block_actions_payload(
        MESSAGE, BUTTON, user_id="U0ONCALL", response_url="https://hooks.slack.com/a/1"
    )

    click = parse_click(http_request(signed_function_url_event(payload, "secret")).body)

    assert click is not None
    assert (click.action_id, click.value, click.user_id) == ("rerun", "job-123", "U0ONCALL")
    assert click.response_url == "https://hooks.slack.com/a/1"
    assert click.message is not None
    assert click.message["blocks"] == MESSAGE["blocks"]
    assert (click.team_id, click.channel_id) == ("T000", "C000")


def test_another_kind_of_interaction_is_not_a_click():
    body = http_request(signed_function_url_event({"type": "view_submission", "view": {}}, "s")).body

    assert parse_click(body) is None


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"text=hello",
        b"payload=not-json",
        b"payload=%5B%5D",
        b"payload=%7B%22type%22%3A%22block_actions%22%7D",
    ],
    ids=["empty", "no-payload", "not-json", "not-an-object", "no-actions"],
)
def test_a_body_that_is_not_slacks_interaction_is_malformed(body):
    with pytest.raises(MalformedRequestError):
        parse_click(body)


@pytest.mark.parametrize(
    "event",
    [None, "text", {"body": "%%%", "isBase64Encoded": True}, {"body": {"a": 1}}],
    ids=["none", "string", "bad-base64", "body-not-text"],
)
def test_an_event_that_is_not_a_function_url_request_is_malformed(event):
    with pytest.raises(MalformedRequestError):
        http_request(event)


def test_the_events_file_holds_a_click_as_lambda_delivers_it():
    # Given the sample event (bench/cold_start.py and `sam local invoke` use it)
    event = load_event("slack/rerun-click.json")

    # Then it is a signed block_actions click on the Rerun button, base64 as Lambda sends form posts
    request = http_request(event)
    click = parse_click(request.body)
    assert event["isBase64Encoded"] is True
    assert request.headers["x-slack-signature"].startswith("v0=")
    assert click is not None
    assert click.action_id == "rerun"
    assert json.loads(json.dumps(click.message))["blocks"]
    # And it is signed with the example secret at its own timestamp (replay it and it is stale)
    timestamp = request.headers["x-slack-request-timestamp"]
    verify(
        EXAMPLE_SIGNING_SECRET,
        timestamp=timestamp,
        received_signature=request.headers["x-slack-signature"],
        body=request.body,
        now=int(timestamp),
    )


# --------------------------------------------------------------------------------------------------------
# Who may click


def test_allowed_users_are_slack_user_ids():
    assert slack_user_ids(" U0ONCALL, W0LEAD ,,") == {"U0ONCALL", "W0LEAD"}
    assert slack_user_ids("") == frozenset()


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("S0TEAM", "user group ids go in ALLOWED_SLACK_GROUPS (RerunAllowedSlackGroups): S0TEAM"),
        ("alice", "not Slack user ids: alice"),
    ],
)
def test_anything_else_is_refused_at_deploy_time_saying_why(value, says):
    environment = {
        "SLACK_SIGNING_SECRET_NAME": "s",
        "IDEMPOTENCY_TABLE_NAME": "t",
        "JOB_NAME_PREFIX": "stack",
        "ALLOWED_SLACK_USERS": f"U0ONCALL,{value}",
    }

    with pytest.raises(ConfigurationError, match=r"ALLOWED_SLACK_USERS: ") as refused:
        from_environment(SlackActionsSettings, environment)

    assert says in str(refused.value)


def test_no_allowed_users_means_nobody_may_rerun():
    settings = from_environment(
        SlackActionsSettings,
        {"SLACK_SIGNING_SECRET_NAME": "s", "IDEMPOTENCY_TABLE_NAME": "t", "JOB_NAME_PREFIX": "stack"},
    )

    assert settings.allowed_users == frozenset()
