"""The Rerun button end to end in the emulator: the stack deployed with EnableRerunButton=true (its
function URL created), a job FAILS in moto Batch, its alert reaches the Slack stand-in with the button, the
stand-in signs the click as Slack does with the app's signing secret (stored by the emulator under the
stack's SlackSigningSecretName) and Lambda delivers it through the function URL (payload 2.0, base64 form
body) to SlackActionsFunction; Batch then holds the rerun, and the stand-in the answers posted to the
click's response URL.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from emulator.core import Emulator
from emulator.handlers import Invocation
from emulator.slack_stub import APP_BOT_TOKEN, APP_SIGNING_SECRET
from tests.conftest import load_event, set_batch_status

pytestmark = pytest.mark.integration

ONCALL = "U0ONCALL"
FUNCTION = "SlackActionsFunction"
BUTTON_ON = {"EnableRerunButton": "true", "RerunAllowedSlackUsers": ONCALL}


@pytest.fixture(scope="module")
def emulator_parameters() -> dict[str, str]:
    return BUTTON_ON


@pytest.fixture
def redeployed(local: Emulator) -> Iterator[Emulator]:
    """The module's emulator, for a test that deploys other parameters; the next test gets the module's."""
    parameters = local.parameter_overrides
    yield local
    local.parameter_overrides = parameters


def redeploy(local: Emulator, **parameters: str) -> Emulator:
    local.server.reset()
    local.slack.reset()
    local.parameter_overrides = parameters
    local.deploy()
    return local


def rerun_button_of(message: dict[str, Any], action_id: str = "rerun") -> dict[str, Any]:
    (found,) = [
        element
        for block in message["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
        if element.get("action_id") == action_id
    ]
    return found


def answer(invocation: Invocation) -> dict[str, Any]:
    assert invocation.error is None
    return dict(invocation.result)


def forged_click(local: Emulator, message: dict[str, Any], **options: Any) -> dict[str, Any]:
    """A click the stand-in signs otherwise than Slack would now (another secret, an old timestamp)."""
    return local.slack.click(message, "rerun", user_id=ONCALL, **options)


def reruns(local: Emulator) -> list[dict[str, Any]]:
    return [job for job in local.jobs_submitted() if "-rerun-" in job["jobName"]]


def failed_scheduled_job(local: Emulator) -> tuple[dict[str, Any], dict[str, Any]]:
    """A scheduled job that FAILED, and the alert FailureNotifyFunction posted for it."""
    with local.jobs_fail(exit_code=1, reason="Essential container in task exited"):
        tick = local.tick("2026-11-23T15:00:00Z")
    assert [i.error for i in local.publish_batch_events()] == [None]
    (alert,) = local.slack_messages()
    (job,) = [j for j in local.jobs_submitted() if j["jobId"] == tick.result["jobId"]]
    return job, alert


def test_a_click_reruns_the_failed_job_once_and_says_so_in_the_alert(local: Emulator):
    button = local
    # Given a scheduled job that failed, and its alert with the Rerun button naming it
    original, alert = failed_scheduled_job(button)
    assert rerun_button_of(alert)["value"] == original["jobId"]

    # When the on-call clicks Rerun
    first = button.slack.click(alert, "rerun", user_id=ONCALL, signing_secret=APP_SIGNING_SECRET)
    assert answer(button.deliver_to_function_url(first))["statusCode"] == 200

    # Then Batch holds one new job: same definition, queue and parameters, tagged with the original
    (rerun,) = reruns(button)
    assert rerun["jobDefinition"] == original["jobDefinition"]
    assert rerun["jobQueue"] == original["jobQueue"]
    assert rerun["parameters"] == original["parameters"]
    assert rerun["jobName"].startswith(f"{original['jobName']}-rerun-")
    (described,) = boto3.client("batch").describe_jobs(jobs=[rerun["jobId"]])["jobs"]
    assert described["tags"]["batch-dispatch:rerun-of"] == original["jobId"]
    assert described["tags"]["batch-dispatch:rerun-by"] == ONCALL
    # And the alert was replaced: who reran it, into which job, and no Rerun button any more
    (update,) = button.slack.responses
    assert update["replace_original"] is True
    text = json.dumps(update["blocks"])
    assert f"Rerun by <@{ONCALL}>" in text
    assert rerun["jobId"] in text
    assert '"action_id": "rerun"' not in text

    # When the button is clicked again (a double click), and the first request is replayed
    answer(button.click(alert, user_id=ONCALL))
    answer(button.deliver_to_function_url(first))

    # Then no other job, and each answer says which job it already is
    assert len(reruns(button)) == 1
    for reply in button.slack.responses[1:]:
        assert reply["response_type"] == "ephemeral"
        assert f"already rerun as new job `{rerun['jobName']}`" in reply["text"]
    assert len(button.slack.responses) == 3


@pytest.mark.parametrize(
    ("options", "status", "says"),
    [
        ({"signing_secret": "not-the-apps-secret"}, 401, "does not match"),
        ({"timestamp": int(time.time()) - 6 * 60}, 401, "a replay or a delay"),
        ({"user_id": "U0INTERN"}, 200, "may not rerun jobs here"),
    ],
    ids=["bad-signature", "stale", "user-not-allowed"],
)
def test_a_refused_click_submits_nothing_and_gets_the_right_answer(local: Emulator, options, status, says):
    # Given a failed job's alert
    button = local
    _, alert = failed_scheduled_job(button)

    # When a click arrives signed with another secret, signed 6 minutes ago, or by someone not allowed
    event = local.slack.click(
        alert, "rerun", **{"user_id": ONCALL, "signing_secret": APP_SIGNING_SECRET, **options}
    )
    result = answer(button.deliver_to_function_url(event))

    # Then no job is submitted, and the answer says why: HTTP 401 for what Slack did not sign now (its
    # response URL is not trusted), an ephemeral text for a person not allowed
    assert reruns(button) == []
    assert result["statusCode"] == status
    if status == 401:
        assert says in result["body"]
        assert button.slack.responses == []
    else:
        (reply,) = button.slack.responses
        assert reply["response_type"] == "ephemeral"
        assert says in reply["text"]


def test_a_job_of_another_stack_gets_no_button(local: Emulator):
    button = local
    # Given a failure of a job whose definition is not this stack's (AdditionalAlertQueueArns alerts those)
    event = load_event("batch/job-failed-container.json")
    assert not event["detail"]["jobDefinition"].split("/")[-1].startswith(f"{button.stack.name}_")

    # When it is alerted with the button on
    assert button.invoke("FailureNotifyFunction", event).error is None

    # Then the alert offers no rerun: this stack could not submit it
    (alert,) = button.slack_messages()
    elements = [e for b in alert["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [e.get("action_id") for e in elements if "action_id" in e] == []


def test_without_the_button_the_alert_has_none(redeployed: Emulator):
    # Given the default stack (EnableRerunButton "false"): no function URL, no signing secret needed
    local = redeploy(redeployed)
    assert local.stack.function_urls == {}
    assert "SlackActionsUrl" not in local.stack.outputs
    _, alert = failed_scheduled_job(local)

    # Then its alerts have their links only: the plain incoming-webhook setup needs no Slack app
    elements = [e for b in alert["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [e.get("action_id") for e in elements] == [None, None]


def test_rerun_failed_children_of_an_array_mode_job_reruns_only_their_objects(redeployed: Emulator):
    # Given an ARRAY-mode stack whose array job of 3 uploads failed in children 1 and 2
    button = redeploy(redeployed, **BUTTON_ON, SubmitMode="ARRAY")
    for index in range(3):
        button.upload(f"incoming/part-{index}.csv")
    with button.jobs_fail(exit_code=2):
        button.drain()
    (parent,) = button.jobs_submitted()
    set_batch_status(f"{parent['jobId']}:0", "SUCCEEDED")
    button.publish_batch_events()
    (alert,) = [m for m in button.slack_messages() if '"rerun_failed_children"' in json.dumps(m)]
    assert rerun_button_of(alert, "rerun_failed_children")["value"] == parent["jobId"]

    # When "Rerun failed children" is clicked
    answer(button.click(alert, "rerun_failed_children", user_id=ONCALL))

    # Then one array job of 2 children reads a new manifest of exactly those objects
    (rerun,) = reruns(button)
    assert rerun["parameters"]["objectCount"] == "2"
    assert rerun["parameters"]["manifestKey"] != parent["parameters"]["manifestKey"]
    manifest = boto3.client("s3").get_object(
        Bucket=parent["parameters"]["manifestBucket"], Key=parent["parameters"]["manifestKey"]
    )
    succeeded = json.loads(manifest["Body"].read().splitlines()[0])["key"]  # child 0's object
    per_object, _ = button.jobs_per_object()
    runs = {key: count for (_, key), count in per_object.items()}
    assert runs == {
        f"incoming/part-{i}.csv": 1 if f"incoming/part-{i}.csv" == succeeded else 2 for i in range(3)
    }
    assert "for failed children 1, 2" in json.dumps(button.slack.responses[-1]["blocks"])

    # And the new manifest is in the manifest bucket, which notifies nothing: no upload, no job
    assert rerun["parameters"]["manifestBucket"] == button.bucket("ManifestBucket")
    assert button.drain() == 0
    assert len(button.jobs_submitted()) == 2


ONCALL_GROUP = "S0ONCALL"
BOT_TOKEN_SECRET = "batch-dispatch-slack-bot-token"
WITH_GROUPS = {
    **BUTTON_ON,
    "RerunAllowedSlackGroups": ONCALL_GROUP,
    "SlackBotTokenSecretName": BOT_TOKEN_SECRET,
}


def test_a_member_of_an_allowed_user_group_reruns_the_job(redeployed: Emulator):
    # Given a stack that also allows the user group S0ONCALL (its bot token stored by the emulator as a
    # user stores the app's), and Alice in that group in the Slack workspace
    button = redeploy(redeployed, **WITH_GROUPS)
    button.slack.add_user_group(ONCALL_GROUP, ["U0ALICE", "U0BOB"])
    original, alert = failed_scheduled_job(button)

    # When Alice, who is not in RerunAllowedSlackUsers, clicks Rerun
    answer(button.click(alert, user_id="U0ALICE"))

    # Then the job is rerun once, by her, after one usergroups.users.list call with the bot token
    (rerun,) = reruns(button)
    assert rerun["jobName"].startswith(f"{original['jobName']}-rerun-")
    (described,) = boto3.client("batch").describe_jobs(jobs=[rerun["jobId"]])["jobs"]
    assert described["tags"]["batch-dispatch:rerun-by"] == "U0ALICE"
    (call,) = button.slack.api_calls
    assert (call.path, call.status, call.payload) == (
        "/api/usergroups.users.list",
        200,
        {"usergroup": ONCALL_GROUP},
    )
    assert "Rerun by <@U0ALICE>" in json.dumps(button.slack.responses[-1]["blocks"])

    # When someone in no allowed group clicks
    answer(button.click(alert, user_id="U0INTERN"))

    # Then they are told they may not, from the members kept since Alice's click (no second call)
    assert "may not rerun jobs here" in button.slack.responses[-1]["text"]
    assert len(button.slack.api_calls) == 1
    assert len(reruns(button)) == 1


@pytest.mark.parametrize(
    ("break_slack", "says"),
    [
        (lambda slack: slack.bot_scopes.discard("usergroups:read"), "lacks the usergroups:read scope"),
        (lambda slack: None, "Slack has no user group S0ONCALL"),  # the group was never created
        (lambda slack: slack.fail_api("invalid_auth"), "Slack refused the app's bot token (invalid_auth)"),
    ],
    ids=["missing-scope", "no-such-group", "invalid-auth"],
)
def test_a_group_slack_will_not_list_refuses_the_click_saying_what_to_check(
    redeployed: Emulator, break_slack, says
):
    # Given a stack allowing S0ONCALL, and a Slack that will not list it
    button = redeploy(redeployed, **WITH_GROUPS)
    break_slack(button.slack)
    _, alert = failed_scheduled_job(button)

    # When someone not listed clicks
    result = answer(button.click(alert, user_id="U0ALICE"))

    # Then Slack gets its 200, no job is submitted, and the clicker reads what to check
    assert result["statusCode"] == 200
    assert reruns(button) == []
    (reply,) = button.slack.responses
    assert reply["response_type"] == "ephemeral"
    assert says in reply["text"]


def test_the_stack_s_web_api_url_is_the_stand_in_s_and_its_bot_token_is_stored(redeployed: Emulator):
    # Given the stack deployed with groups (SlackApiUrl chosen by the emulator, as a GovSlack user does)
    button = redeploy(redeployed, **WITH_GROUPS)

    # Then the function calls the stand-in's Web API, with the token stored under the stack's secret name
    variables = button.stack.functions[FUNCTION].environment
    assert variables["SLACK_API_URL"] == button.slack.api_url
    assert variables["SLACK_BOT_TOKEN_SECRET_NAME"] == BOT_TOKEN_SECRET
    token = boto3.client("secretsmanager").get_secret_value(SecretId=BOT_TOKEN_SECRET)["SecretString"]
    assert token == APP_BOT_TOKEN


def test_the_button_s_url_is_the_stack_output_slack_is_given(local: Emulator):
    # Given the stack deployed with EnableRerunButton=true
    # Then its SlackActionsUrl output is the function URL Lambda created for SlackActionsFunction
    url = local.stack.outputs["SlackActionsUrl"]
    assert url.startswith("https://")
    assert ".lambda-url." in url
    assert local.stack.function_urls == {FUNCTION: url}
    config = boto3.client("lambda").get_function_url_config(FunctionName=local.stack.physical_ids[FUNCTION])
    assert (config["FunctionUrl"], config["AuthType"]) == (url, "NONE")
