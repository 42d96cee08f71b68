"""A click on a Rerun button (alerts/rerun_click.py): the request checks, the rerun, and the answer in Slack.

Against moto (Batch, DynamoDB, Secrets Manager) and the Slack stand-in on loopback, which signs each click
as Slack does and records what the function posts to the click's response URL. The message clicked is a
real failure alert, built by alerts/failed_job.py for a job in moto.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from batch_dispatch.alerts import rerun_click
from batch_dispatch.alerts.failed_job import MessageOptions, build_message, summarize
from batch_dispatch.alerts.job_state import parse_event
from batch_dispatch.alerts.rerun_button import RERUN, RERUN_FAILED_CHILDREN
from batch_dispatch.observability import logger
from batch_dispatch.settings import SlackActionsSettings
from emulator.slack_stub import APP_BOT_TOKEN, SlackStandIn, block_actions_payload, signed_function_url_event
from tests.conftest import FakeLambdaContext, load_event, set_batch_status
from tests.unit.conftest import PREFIX, STACK, Stack

SECRET_NAME = "batch-dispatch-slack-signing-secret"
SIGNING_SECRET = "3f1c0ffee0ddba11deadbeef00c0ffee"
ONCALL = "U0ONCALL"


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn() as stand_in:
        yield stand_in


@pytest.fixture
def settings(rerun_stack: Stack) -> SlackActionsSettings:
    boto3.client("secretsmanager").create_secret(Name=SECRET_NAME, SecretString=SIGNING_SECRET)
    return SlackActionsSettings(
        slack_signing_secret_name=SECRET_NAME,
        allowed_slack_users=f"{ONCALL},W0LEAD",
        idempotency_table_name=rerun_stack.policy.idempotency_table_name,
        stack_name=STACK,
        manifest_prefix=PREFIX,
    )


def alert_for(job_id: str, *, array_size: int | None = None) -> dict[str, Any]:
    """The failure alert FailureNotifyFunction posts for the job, with the Rerun button(s)."""
    event = load_event("batch/job-failed-container.json")
    event["detail"]["jobId"] = job_id
    if array_size:
        event["detail"]["arrayProperties"] = {"size": array_size, "statusSummary": {"FAILED": array_size}}
    return build_message(summarize(parse_event(event)), options=MessageOptions(rerun_button=True))


def click(settings: SlackActionsSettings, event: dict[str, Any]) -> dict[str, Any]:
    """The function's answer to the request (its handler's one call, with a Lambda context)."""
    return rerun_click.handle(event, settings, FakeLambdaContext())


# --------------------------------------------------------------------------------------------------------
# A click that reruns


def test_a_signed_click_by_an_allowed_user_reruns_the_job_and_updates_the_alert(rerun_stack, settings, slack):
    # Given a failed job and its alert with the Rerun button
    job_id = rerun_stack.submit("nightly-report")
    alert = alert_for(job_id)

    # When the on-call clicks Rerun (Slack signs and posts the click)
    answer = click(settings, slack.click(alert, RERUN, user_id=ONCALL, signing_secret=SIGNING_SECRET))

    # Then Slack gets its 200, Batch one new job, and the alert says who reran it into which job
    assert answer["statusCode"] == 200
    (new,) = rerun_stack.rerun_jobs()
    (update,) = slack.responses
    assert update["replace_original"] is True
    line = json.dumps(update["blocks"])
    assert f"Rerun by <@{ONCALL}>" in line
    assert new["jobId"] in line
    # And the alert keeps its content and its link buttons, without the Rerun button
    assert update["text"] == alert["text"]
    buttons = [e for b in update["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [b["text"]["text"] for b in buttons] == ["Open job in Batch console", "View log stream"]


def test_a_double_click_reruns_once_and_answers_already_rerun(rerun_stack, settings, slack):
    # Given a job rerun by a click
    job_id = rerun_stack.submit("job-1")
    alert = alert_for(job_id)
    click(settings, slack.click(alert, RERUN, user_id=ONCALL, signing_secret=SIGNING_SECRET))

    # When the button is clicked again (a second, freshly signed request)
    click(settings, slack.click(alert, RERUN, user_id="W0LEAD", signing_secret=SIGNING_SECRET))

    # Then still one new job, and the second clicker alone is told which
    (new,) = rerun_stack.rerun_jobs()
    _, second = slack.responses
    assert second["response_type"] == "ephemeral"
    assert second["replace_original"] is False
    assert "already rerun as new job" in second["text"]
    assert new["jobId"] in second["text"]


def test_a_replayed_request_reruns_nothing_more(rerun_stack, settings, slack):
    # Given a click's request, handled
    job_id = rerun_stack.submit("job-2")
    request = slack.click(alert_for(job_id), RERUN, user_id=ONCALL, signing_secret=SIGNING_SECRET)
    click(settings, request)

    # When the very same request arrives again within 5 minutes (Slack retries, or someone replays it)
    answer = click(settings, request)

    # Then nothing more is submitted, and the answer says it was already rerun
    assert answer["statusCode"] == 200
    assert len(rerun_stack.rerun_jobs()) == 1
    assert "already rerun as" in slack.responses[-1]["text"]


def test_rerun_failed_children_reruns_only_the_failed_children(rerun_stack, settings, slack):
    # Given an array job (no manifest) of 3 children, child 1 failed
    parent = rerun_stack.submit("fan-out", arrayProperties={"size": 3})
    set_batch_status(f"{parent}:0", "SUCCEEDED")
    set_batch_status(f"{parent}:2", "SUCCEEDED")
    alert = alert_for(parent, array_size=3)

    # When "Rerun failed children" is clicked
    click(
        settings,
        slack.click(alert, RERUN_FAILED_CHILDREN, user_id=ONCALL, signing_secret=SIGNING_SECRET),
    )

    # Then only child 1 runs again, and the alert says so
    (new,) = rerun_stack.rerun_jobs()
    assert {e["name"]: e["value"] for e in new["container"]["environment"]}[
        "BATCH_DISPATCH_ARRAY_INDEX"
    ] == "1"
    assert "for failed child 1" in json.dumps(slack.responses[-1]["blocks"])


# --------------------------------------------------------------------------------------------------------
# Requests that are not Slack's, or not now: HTTP 401, no job, no answer through the response URL


@pytest.mark.parametrize(
    ("signed_with", "age_seconds", "reason"),
    [
        ("another-apps-signing-secret", 0, "does not match"),
        # Half a minute past Slack's 5 minutes either way, so a slow run cannot bring them back inside
        # (the exact boundary: tests/unit/test_slack_signature.py, with a clock of its own)
        (SIGNING_SECRET, 330, " s ago"),
        (SIGNING_SECRET, -330, "in the future"),
    ],
    ids=["bad-signature", "stale", "future"],
)
def test_a_request_slack_did_not_sign_now_is_refused_with_401(
    rerun_stack, settings, slack, signed_with, age_seconds, reason
):
    # Given a failed job's alert, and a click signed with another secret, or dated more than 5 minutes off
    job_id = rerun_stack.submit("job-3")
    event = slack.click(
        alert_for(job_id),
        RERUN,
        user_id=ONCALL,
        signing_secret=signed_with,
        timestamp=int(time.time()) - age_seconds,
    )

    # When it reaches the function
    answer = click(settings, event)

    # Then it is refused with 401 and the reason, nothing is submitted, and its response URL is not used
    assert answer["statusCode"] == 401
    assert reason in answer["body"]
    assert rerun_stack.rerun_jobs() == []
    assert slack.requests == []


def test_a_body_changed_after_signing_is_refused(rerun_stack, settings, slack):
    # Given a signed click whose body is then changed to name another job
    job_id = rerun_stack.submit("job-4")
    other = rerun_stack.submit("job-5")
    event = slack.click(alert_for(job_id), RERUN, user_id=ONCALL, signing_secret=SIGNING_SECRET)
    body = base64.b64decode(event["body"]).replace(job_id.encode(), other.encode())
    event["body"] = base64.b64encode(body).decode()

    # Then it is refused: the signature covers the raw body
    assert click(settings, event)["statusCode"] == 401
    assert rerun_stack.rerun_jobs() == []


# --------------------------------------------------------------------------------------------------------
# Clicks that are Slack's, refused or ignored


def test_a_user_not_allowed_gets_an_ephemeral_refusal_and_no_job(rerun_stack, settings, slack):
    job_id = rerun_stack.submit("job-6")

    answer = click(
        settings,
        slack.click(alert_for(job_id), RERUN, user_id="U0INTERN", signing_secret=SIGNING_SECRET),
    )

    assert answer["statusCode"] == 200
    assert rerun_stack.rerun_jobs() == []
    (refusal,) = slack.responses
    assert refusal["response_type"] == "ephemeral"
    assert "<@U0INTERN> may not rerun jobs here" in refusal["text"]
    assert "RerunAllowedSlackUsers" in refusal["text"]


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (lambda stack: "00000000-0000-0000-0000-000000000000", "Batch has no job 00000000"),
        (lambda stack: stack.submit("theirs", definition=stack.foreign_definition), "is not a job of stack"),
        (lambda stack: _running(stack), "is RUNNING: rerun it once it has ended"),
    ],
    ids=["not-found", "other-stack", "still-running"],
)
@pytest.mark.parametrize("catalog", [False, True], ids=["stack-lists", "catalog"])
def test_a_refused_rerun_is_answered_ephemerally(
    rerun_stack, settings, slack, setup, expected, catalog, request
):
    # With a catalog the click reads the job before the rerun (for its job type's lists): same refusals
    job_id = setup(rerun_stack)
    settings = request.getfixturevalue("catalog_settings") if catalog else settings

    answer = click(
        settings, slack.click(alert_for(job_id), RERUN, user_id=ONCALL, signing_secret=SIGNING_SECRET)
    )

    assert answer["statusCode"] == 200
    assert rerun_stack.rerun_jobs() == []
    (refusal,) = slack.responses
    assert refusal["response_type"] == "ephemeral"
    assert expected in refusal["text"]


def _running(stack: Stack) -> str:
    job_id = stack.submit("busy")
    set_batch_status(job_id, "RUNNING")
    return job_id


def test_a_click_on_a_link_button_is_acknowledged_and_left_alone(rerun_stack, settings, slack):
    # Given a signed click on "Open job in Batch console" (Slack reports URL buttons' clicks too)
    job_id = rerun_stack.submit("job-7")
    alert = alert_for(job_id)
    link = next(e for b in alert["blocks"] if b["type"] == "actions" for e in b["elements"] if "url" in e)
    link = {**link, "action_id": "WaXA"}  # Slack makes one up for a button without an action_id
    payload = block_actions_payload(alert, link, user_id=ONCALL, response_url=slack.response_url())

    answer = click(settings, signed_function_url_event(payload, SIGNING_SECRET))

    assert answer["statusCode"] == 200
    assert rerun_stack.rerun_jobs() == []
    assert slack.requests == []


def test_an_unsigned_request_for_something_else_is_refused(settings, slack):
    event = signed_function_url_event({"type": "view_submission"}, SIGNING_SECRET)
    event["headers"].pop("x-slack-signature")

    assert click(settings, event)["statusCode"] == 401


def test_a_request_that_is_not_a_form_post_is_refused(settings, slack):
    event = signed_function_url_event({"type": "block_actions"}, SIGNING_SECRET)
    event["requestContext"]["http"]["method"] = "GET"

    assert click(settings, event)["statusCode"] == 405


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The function's log lines, as Powertools formats them (with the keys appended per invocation)."""
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)


def test_nothing_secret_is_logged(rerun_stack, settings, slack, log_lines):
    # Given a click, handled, and a refused forgery
    job_id = rerun_stack.submit("job-8")
    event = slack.click(alert_for(job_id), RERUN, user_id=ONCALL, signing_secret=SIGNING_SECRET)
    click(settings, event)
    forged = slack.click(alert_for(job_id), RERUN, user_id=ONCALL, signing_secret="forged")
    click(settings, forged)

    # Then the logs name the job and the user, never the secret, a signature or a response URL
    logs = log_lines.getvalue()
    assert job_id in logs
    assert ONCALL in logs
    for secret in (
        SIGNING_SECRET,
        event["headers"]["x-slack-signature"],
        forged["headers"]["x-slack-signature"],
    ):
        assert secret not in logs
    assert "/actions/T000/" not in logs


def test_a_missing_signing_secret_is_a_deployment_error(rerun_stack, settings, slack):
    # Given a stack whose signing secret was never created
    boto3.client("secretsmanager").delete_secret(SecretId=SECRET_NAME, ForceDeleteWithoutRecovery=True)
    event = signed_function_url_event({"type": "block_actions"}, SIGNING_SECRET)

    # Then the click fails loudly (the function's Errors alarm), naming the secret to create
    with pytest.raises(rerun_click.SigningSecretError, match=SECRET_NAME):
        click(settings, event)


# --------------------------------------------------------------------------------------------------------
# Members of an allowed Slack user group


ONCALL_GROUP = "S0ONCALL"
BOT_TOKEN_SECRET = "batch-dispatch-slack-bot-token"


@pytest.fixture
def group_settings(settings: SlackActionsSettings, slack: SlackStandIn) -> SlackActionsSettings:
    """The stack also allows S0ONCALL (Alice is in it), read through the stand-in's Web API."""
    boto3.client("secretsmanager").create_secret(Name=BOT_TOKEN_SECRET, SecretString=APP_BOT_TOKEN)
    slack.add_user_group(ONCALL_GROUP, ["U0ALICE"])
    values = {name: getattr(settings, name) for name in SlackActionsSettings.fields()}
    return SlackActionsSettings(
        **{
            **values,
            "allowed_slack_groups": ONCALL_GROUP,
            "slack_bot_token_secret_name": BOT_TOKEN_SECRET,
            "slack_api_url": slack.api_url,
        }
    )


def test_a_member_of_an_allowed_group_reruns_the_job(rerun_stack, group_settings, slack):
    # Given Alice, not listed, in the allowed group
    job_id = rerun_stack.submit("job-9")

    # When she clicks Rerun
    click(
        group_settings,
        slack.click(alert_for(job_id), RERUN, user_id="U0ALICE", signing_secret=SIGNING_SECRET),
    )

    # Then the job is rerun, and the alert says she did it
    (new,) = rerun_stack.rerun_jobs()
    assert "Rerun by <@U0ALICE>" in json.dumps(slack.responses[-1]["blocks"])
    assert new["tags"]["batch-dispatch:rerun-by"] == "U0ALICE"


def test_someone_in_no_allowed_group_is_told_where_to_be_added(rerun_stack, group_settings, slack):
    job_id = rerun_stack.submit("job-10")

    click(
        group_settings,
        slack.click(alert_for(job_id), RERUN, user_id="U0INTERN", signing_secret=SIGNING_SECRET),
    )

    assert rerun_stack.rerun_jobs() == []
    (refusal,) = slack.responses
    assert "may not rerun jobs here" in refusal["text"]
    assert "RerunAllowedSlackGroups" in refusal["text"]


def test_a_group_slack_will_not_list_refuses_the_click_with_what_to_check(
    rerun_stack, group_settings, slack, log_lines
):
    # Given the app's bot token lacks the usergroups:read scope
    slack.bot_scopes.discard("usergroups:read")
    job_id = rerun_stack.submit("job-11")

    # When a group member clicks
    answer = click(
        group_settings,
        slack.click(alert_for(job_id), RERUN, user_id="U0ALICE", signing_secret=SIGNING_SECRET),
    )

    # Then Slack gets its 200, no job is submitted, and the clicker reads what to fix
    assert answer["statusCode"] == 200
    assert rerun_stack.rerun_jobs() == []
    (refusal,) = slack.responses
    assert refusal["response_type"] == "ephemeral"
    assert "could not check whether you are in a user group" in refusal["text"]
    assert "lacks the usergroups:read scope" in refusal["text"]
    # And the logs say which group and why, never the token
    logs = log_lines.getvalue()
    assert '"reason":"missing_scope"' in logs.replace(" ", "")
    assert ONCALL_GROUP in logs
    assert APP_BOT_TOKEN not in logs


# --------------------------------------------------------------------------------------------------------
# A job type's own allowed users


REGISTRY = f"/batch-dispatch/{STACK}/job-types"


@pytest.fixture
def catalog_settings(settings: SlackActionsSettings, rerun_stack: Stack) -> SlackActionsSettings:
    """The stack's catalog holds `thumbnails`, whose jobs only Alice may rerun (the stack allows ONCALL)."""
    definition = boto3.client("batch").describe_job_definitions(jobDefinitions=[rerun_stack.definition])[
        "jobDefinitions"
    ][0]
    thumbnails = boto3.client("batch").register_job_definition(
        jobDefinitionName=f"{STACK}_thumbnails",
        type="container",
        platformCapabilities=["FARGATE"],
        retryStrategy={"attempts": 1},
        containerProperties=definition["containerProperties"],
    )["jobDefinitionArn"]
    entry = {"jobDefinition": thumbnails, "jobQueue": "q", "rerunAllowedSlackUsers": "U0ALICE"}
    boto3.client("ssm").put_parameter(Name=f"{REGISTRY}/thumbnails", Type="String", Value=json.dumps(entry))
    values = {name: getattr(settings, name) for name in SlackActionsSettings.fields()}
    return SlackActionsSettings(**{**values, "job_types_path": REGISTRY})


def thumbnails_job(rerun_stack: Stack, name: str) -> str:
    return rerun_stack.submit(name, definition=f"{STACK}_thumbnails")


@pytest.mark.parametrize(
    ("users", "says"),
    [
        (
            "U0ALICE",
            [f"<@{ONCALL}> may not rerun jobs of job type `thumbnails`", "RerunAllowedSlackUsers"],
        ),
        ("none", ["nobody may rerun jobs of job type `thumbnails` from Slack", "batch-dispatch rerun"]),
    ],
    ids=["names-others", "nobody"],
)
def test_someone_the_stack_allows_is_refused_on_a_job_type_that_names_others_or_nobody(
    rerun_stack, catalog_settings, slack, users, says
):
    # Given a job type naming only Alice, or nobody (an alert posted before that still has the button)
    ssm = boto3.client("ssm")
    entry = json.loads(ssm.get_parameter(Name=f"{REGISTRY}/thumbnails")["Parameter"]["Value"])
    ssm.put_parameter(
        Name=f"{REGISTRY}/thumbnails",
        Type="String",
        Value=json.dumps(entry | {"rerunAllowedSlackUsers": users}),
        Overwrite=True,
    )
    job_id = thumbnails_job(rerun_stack, "thumb-1")

    # When the stack's on-call clicks Rerun
    click(
        catalog_settings, slack.click(alert_for(job_id), RERUN, user_id=ONCALL, signing_secret=SIGNING_SECRET)
    )

    # Then nothing is rerun, and the refusal says who may and what to do instead
    assert rerun_stack.rerun_jobs() == []
    (refusal,) = slack.responses
    assert refusal["response_type"] == "ephemeral"
    for text in says:
        assert text in refusal["text"]


def test_an_unreadable_catalog_refuses_the_click_and_fails_loudly(rerun_stack, catalog_settings, slack):
    # Given the registry cannot be read (SSM unreachable: nothing listens on the port)
    from botocore.config import Config

    from batch_dispatch.aws import clients

    job_id = thumbnails_job(rerun_stack, "thumb-2")
    unreachable = boto3.client(
        "ssm", endpoint_url="http://127.0.0.1:9", config=Config(retries={"total_max_attempts": 1})
    )
    clients.use_client("ssm", unreachable)

    # When someone the stack allows clicks: the job type's lists, maybe narrower, are unknown
    event = slack.click(alert_for(job_id), RERUN, user_id=ONCALL, signing_secret=SIGNING_SECRET)
    with pytest.raises(Exception):  # noqa: B017, PT011 - the function's Errors alarm sees whatever it is
        click(catalog_settings, event)

    # Then nothing is rerun, and the clicker reads that it failed on our side
    assert rerun_stack.rerun_jobs() == []
    (reply,) = slack.responses
    assert "The rerun failed on our side" in reply["text"]
