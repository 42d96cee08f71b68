"""The Rerun button in the template: off by default, a public function URL when on, and a role that may do
what a rerun needs and nothing more."""

from __future__ import annotations

import fnmatch
import json
import re
from typing import Any

import pytest

from tests.template.cfn import (
    as_list,
    deploy,
    job_type_template,
    props,
    role_statements,
    rules_refusing,
    rules_refusing_in,
    sam_template,
)
from tests.template.test_checkov import CHECKOV, checked, run_checkov

FUNCTION = "SlackActionsFunction"
BOT_TOKEN_SECRET = "batch-dispatch-slack-bot-token"
WITH_GROUPS = {
    "EnableRerunButton": "true",
    "RerunAllowedSlackGroups": "S0ONCALL,S0LEADS",
    "SlackBotTokenSecretName": BOT_TOKEN_SECRET,
}
URL_RESOURCES = [
    "SlackActionsFunctionUrl",
    "SlackActionsFunctionUrlPublicAccess",
    "SlackActionsFunctionUrlInvokeAccess",
]


def statements_by_sid(stack: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in role_statements(stack, f"{FUNCTION}Role")}


def parameter_default(name: str) -> str:
    return str(sam_template()["Parameters"][name]["Default"])


def secret_arn_patterns(statement: dict[str, Any], **parameters: str) -> list[str]:
    """A secretsmanager statement's resources with the parameters (default: their defaults) substituted, as
    fnmatch patterns."""
    defaults = {name: str(spec.get("Default", "")) for name, spec in sam_template()["Parameters"].items()}
    defaults |= parameters
    defaults |= {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012"}

    def text(value: Any) -> str:
        if isinstance(value, str):
            return value
        if "Fn::Sub" in value:
            return re.sub(r"\$\{([^}]+)\}", lambda m: defaults[m.group(1)], value["Fn::Sub"])
        if "Ref" in value:
            return defaults[value["Ref"]]
        separator, parts = value["Fn::Join"]
        return str(separator).join(text(part) for part in parts)

    return [text(resource).replace("?", "[!/]") for resource in as_list(statement["Resource"])]


def test_by_default_there_is_no_url_and_the_alerts_have_no_button():
    stack = deploy()

    assert [r for r in URL_RESOURCES if r in stack["Resources"]] == []
    assert props(stack, "FailureNotifyFunction")["Environment"]["Variables"]["RERUN_BUTTON"] == "false"
    assert sam_template()["Parameters"]["EnableRerunButton"]["Default"] == "false"


def test_enabled_the_function_gets_a_public_url_slack_can_post_to():
    # Given a stack with EnableRerunButton=true
    stack = deploy(EnableRerunButton="true")

    # Then the function has a URL without SigV4 (Slack cannot sign that way)
    url = props(stack, "SlackActionsFunctionUrl")
    assert url == {"TargetFunctionArn": {"Fn::GetAtt": [FUNCTION, "Arn"]}, "AuthType": "NONE"}
    # And anyone may call the function through that URL, and only through it
    public = props(stack, "SlackActionsFunctionUrlPublicAccess")
    assert public == {
        "FunctionName": {"Ref": FUNCTION},
        "Action": "lambda:InvokeFunctionUrl",
        "Principal": "*",
        "FunctionUrlAuthType": "NONE",
    }
    invoke = props(stack, "SlackActionsFunctionUrlInvokeAccess")
    assert invoke == {
        "FunctionName": {"Ref": FUNCTION},
        "Action": "lambda:InvokeFunction",
        "Principal": "*",
        "InvokedViaFunctionUrl": True,
    }
    # And the alerts carry the button, and the URL is an output to paste into the Slack app
    assert props(stack, "FailureNotifyFunction")["Environment"]["Variables"]["RERUN_BUTTON"] == "true"
    output = sam_template()["Outputs"]["SlackActionsUrl"]
    assert output["Condition"] == "RerunButtonEnabled"
    assert output["Value"] == {"Fn::GetAtt": ["SlackActionsFunctionUrl", "FunctionUrl"]}


def test_the_function_is_told_the_signing_secret_the_allowed_users_and_the_manifests():
    variables = props(deploy(RerunAllowedSlackUsers="U0ONCALL,W0LEAD"), FUNCTION)["Environment"]["Variables"]

    assert variables["SLACK_SIGNING_SECRET_NAME"] == parameter_default("SlackSigningSecretName")
    assert variables["ALLOWED_SLACK_USERS"] == "U0ONCALL,W0LEAD"
    assert variables["MANIFEST_PREFIX"] == parameter_default("ManifestPrefix")
    # And by default no user groups, no bot token, and Slack's own Web API
    assert variables["ALLOWED_SLACK_GROUPS"] == ""
    assert variables["SLACK_BOT_TOKEN_SECRET_NAME"] == ""
    assert variables["SLACK_API_URL"] == "https://slack.com/api/"


def test_the_function_is_told_the_allowed_groups_the_bot_token_and_the_api_url():
    variables = props(deploy(**WITH_GROUPS, SlackApiUrl="https://slack-gov.com/api/"), FUNCTION)[
        "Environment"
    ]["Variables"]

    assert variables["ALLOWED_SLACK_GROUPS"] == "S0ONCALL,S0LEADS"
    assert variables["SLACK_BOT_TOKEN_SECRET_NAME"] == BOT_TOKEN_SECRET
    assert variables["SLACK_API_URL"] == "https://slack-gov.com/api/"


def test_a_flood_on_the_public_url_cannot_take_the_accounts_concurrency():
    function = props(deploy(EnableRerunButton="true"), FUNCTION)

    assert function["ReservedConcurrentExecutions"] == 3
    assert function["Timeout"] <= 15  # Slack waits 3 s; the timeout only bounds a stuck call
    # And without the URL nothing can call it: nothing is taken from the account's pool
    assert "ReservedConcurrentExecutions" not in props(deploy(), FUNCTION)


def test_the_role_may_do_what_a_rerun_needs_and_nothing_more():
    stack = deploy(EnableRerunButton="true")
    statements = statements_by_sid(stack)

    # Its own statements, and SubmitJobsPolicy's (SubmitToOurQueues through ReadJobCatalog)
    assert set(statements) == {
        "WriteOwnLogs",
        "ReadSlackSigningSecret",
        "ReadJobs",
        "SubmitToOurQueues",
        "TagOurJobs",
        "FindJobsByName",
        "Idempotency",
        "ArrayManifests",
        "ReadJobCatalog",
    }
    assert statements["WriteOwnLogs"]["Resource"] == {"Fn::GetAtt": ["SlackActionsLogGroup", "Arn"]}
    assert statements["ReadSlackSigningSecret"] == {
        "Sid": "ReadSlackSigningSecret",
        "Effect": "Allow",
        "Action": "secretsmanager:GetSecretValue",
        "Resource": {
            "Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:"
            "${SlackSigningSecretName}-??????"
        },
    }
    assert as_list(statements["ReadJobs"]["Action"]) == ["batch:DescribeJobs"]
    assert as_list(statements["FindJobsByName"]["Action"]) == ["batch:ListJobs"]
    assert statements["TagOurJobs"]["Action"] == "batch:TagResource"
    assert statements["Idempotency"]["Resource"] == {"Fn::GetAtt": ["IdempotencyTable", "Arn"]}
    assert statements["ArrayManifests"]["Resource"] == {"Fn::Sub": "${ManifestBucket.Arn}/${ManifestPrefix}*"}
    assert sorted(statements["ArrayManifests"]["Action"]) == ["s3:GetObject", "s3:PutObject"]
    # The job catalog (a job type's own allowed users and groups): its registry path, as the others read it
    assert statements["ReadJobCatalog"] == {
        "Sid": "ReadJobCatalog",
        "Effect": "Allow",
        "Action": "ssm:GetParametersByPath",
        "Resource": {
            "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/batch-dispatch/"
            "${AWS::StackName}/job-types"
        },
    }
    managed = props(stack, f"{FUNCTION}Role")["ManagedPolicyArns"]
    assert [arn.get("Ref") or arn["Fn::Sub"].rsplit("/", 1)[-1] for arn in managed] == [
        "AWSXrayWriteOnlyAccess",
        "SubmitJobsPolicy",
    ]


def test_it_submits_where_the_submitting_functions_may_and_nowhere_else():
    # Given the SubmitJob grants of the rerun and of the submitting functions (SubmitJobsPolicy)
    stack = deploy()
    rerun_grant = statements_by_sid(stack)["SubmitToOurQueues"]
    (submit_grant,) = [
        s for s in role_statements(stack, "ScheduleSubmitFunctionRole") if s.get("Sid") == "SubmitToOurQueues"
    ]

    # Then they name the same queues and job definitions: a rerun goes where the stack's jobs go
    assert rerun_grant["Action"] == "batch:SubmitJob"
    assert rerun_grant["Resource"] == submit_grant["Resource"]
    assert any("job-definition/${AWS::StackName}_*" in json.dumps(r) for r in rerun_grant["Resource"])


def test_no_other_function_may_read_the_signing_secret():
    # Given the signing secret's ARN under its default name (Secrets Manager appends 6 random characters)
    name = parameter_default("SlackSigningSecretName")
    arn = f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}-AbCdEf"

    # Then only the Rerun function's role may read it: the webhook prefix the alert functions read does
    # not cover it
    readers = {
        role
        for role in ("FailureNotifyFunctionRole", "StormDigestFunctionRole", f"{FUNCTION}Role")
        for statement in role_statements(deploy(), role)
        if "secretsmanager:GetSecretValue" in as_list(statement["Action"])
        and any(fnmatch.fnmatchcase(arn, pattern) for pattern in secret_arn_patterns(statement))
    }
    assert readers == {f"{FUNCTION}Role"}
    assert not name.startswith(parameter_default("SlackWebhookSecretPrefix"))


def test_with_a_bot_token_the_role_may_read_that_secret_and_no_other():
    # Given a stack with allowed groups and the bot token's secret name
    statements = statements_by_sid(deploy(**WITH_GROUPS))

    # Then one statement more than without: reading that secret (Secrets Manager's 6-character suffix)
    token = statements["ReadSlackBotToken"]
    assert (token["Effect"], token["Action"]) == ("Allow", "secretsmanager:GetSecretValue")
    assert secret_arn_patterns(token, SlackBotTokenSecretName=BOT_TOKEN_SECRET) == [
        f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{BOT_TOKEN_SECRET}-[!/][!/][!/][!/][!/][!/]"
    ]
    assert set(statements) - set(statements_by_sid(deploy(EnableRerunButton="true"))) == {"ReadSlackBotToken"}


def test_no_other_function_may_read_the_bot_token():
    # Given the bot token's secret under its name, with the suffix Secrets Manager appends
    arn = f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{BOT_TOKEN_SECRET}-AbCdEf"
    stack = deploy(**WITH_GROUPS)

    # Then only the Rerun function's role may read it, and not a secret whose name merely starts the same
    readers = {
        role
        for role in (
            "FailureNotifyFunctionRole",
            "StormDigestFunctionRole",
            "WatchdogFunctionRole",
            f"{FUNCTION}Role",
        )
        for statement in role_statements(stack, role)
        if "secretsmanager:GetSecretValue" in as_list(statement["Action"])
        and any(
            fnmatch.fnmatchcase(arn, pattern)
            for pattern in secret_arn_patterns(statement, SlackBotTokenSecretName=BOT_TOKEN_SECRET)
        )
    }
    assert readers == {f"{FUNCTION}Role"}
    (token_grant,) = secret_arn_patterns(
        statements_by_sid(stack)["ReadSlackBotToken"], SlackBotTokenSecretName=BOT_TOKEN_SECRET
    )
    assert not fnmatch.fnmatchcase(arn.replace(BOT_TOKEN_SECRET, f"{BOT_TOKEN_SECRET}-other"), token_grant)


def test_without_a_bot_token_no_role_may_read_a_bot_token():
    # Given the default stack, button on: no SlackBotTokenSecretName
    statements = statements_by_sid(deploy(EnableRerunButton="true"))

    # Then the role reads the signing secret only
    reads = [s for s in statements.values() if "secretsmanager:GetSecretValue" in as_list(s["Action"])]
    assert [s["Sid"] for s in reads] == ["ReadSlackSigningSecret"]


def test_allowed_groups_without_a_bot_token_are_refused_at_deploy_time():
    # When groups are allowed without a bot token, CloudFormation stops before creating anything
    (refused,) = rules_refusing(RerunAllowedSlackGroups="S0ONCALL")
    assert refused.startswith("RerunAllowedSlackGroups needs SlackBotTokenSecretName")

    # And with one, or with no groups, it goes on
    assert rules_refusing(RerunAllowedSlackGroups="S0ONCALL", SlackBotTokenSecretName=BOT_TOKEN_SECRET) == []
    assert rules_refusing(SlackBotTokenSecretName=BOT_TOKEN_SECRET) == []
    assert rules_refusing() == []


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("", True),
        ("S0ONCALL", True),
        ("S0ONCALL,S0LEADS", True),
        ("U0ONCALL", False),
        ("S0ONCALL, S0LEADS", False),
        ("s0oncall", False),
        ("@oncall", False),
    ],
)
def test_allowed_groups_are_slack_user_group_ids(value, accepted):
    pattern = sam_template()["Parameters"]["RerunAllowedSlackGroups"]["AllowedPattern"]

    assert (re.fullmatch(pattern, value) is not None) is accepted


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("https://slack.com/api/", True),
        ("https://slack-gov.com/api/", True),
        ("http://127.0.0.1:8123/api/", True),  # the local emulator's Slack stand-in
        ("http://slack.com/api/", False),  # the bot token would travel in clear
        ("http://10.0.0.5:8123/api/", False),
        ("http://127.0.0.1.example.com:80/api/", False),
        ("https://slack.com/api", False),
        ("https://slack.com/api/?token=x", False),
        ("slack.com/api/", False),
    ],
)
def test_the_api_url_is_https_or_the_local_stand_in(value, accepted):
    pattern = sam_template()["Parameters"]["SlackApiUrl"]["AllowedPattern"]

    assert (re.fullmatch(pattern, value) is not None) is accepted


def test_the_bot_token_secret_is_optional_and_named_like_the_other_secrets():
    parameters = sam_template()["Parameters"]
    pattern = parameters["SlackBotTokenSecretName"]["AllowedPattern"]

    assert parameters["SlackBotTokenSecretName"]["Default"] == ""
    assert parameters["SlackApiUrl"]["Default"] == "https://slack.com/api/"
    for name in ("", BOT_TOKEN_SECRET, "slack/bot-token"):
        assert re.fullmatch(pattern, name)
    assert not re.fullmatch(pattern, "arn:aws:secretsmanager:us-east-1:123456789012:secret:x")


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("", True),
        ("U0ONCALL", True),
        ("U0ONCALL,W0LEAD", True),
        ("S0TEAM", False),
        ("U0ONCALL, W0LEAD", False),
        ("u0oncall", False),
        ("@alice", False),
    ],
)
def test_allowed_users_are_slack_user_ids(value, accepted):
    pattern = sam_template()["Parameters"]["RerunAllowedSlackUsers"]["AllowedPattern"]

    assert (re.fullmatch(pattern, value) is not None) is accepted


@pytest.mark.skipif(not CHECKOV.exists(), reason="checkov is not installed (make venv)")
def test_checkov_with_the_button_on_flags_only_the_urls_auth_type_which_is_skipped_with_its_reason():
    # Given the template with EnableRerunButton "true" by default (checkov reads Conditions with defaults)
    template = json.loads(json.dumps(sam_template()))
    template["Parameters"]["EnableRerunButton"]["Default"] = "true"

    # When checkov reads it
    results = run_checkov(template)

    # Then nothing fails, and the URL's AuthType NONE is the skip the template explains
    assert results["summary"]["failed"] == 0
    assert ("CKV_AWS_258", "SlackActionsFunctionUrl") in checked(results, "skipped")


# --------------------------------------------------------------------------------------------------------
# A job type's own allowed users and groups (job-types/job-type.yaml)


def job_type_platform(**parameters: str) -> str:
    """The Platform value a job type receives from a stack deployed with `parameters` (resources as names)."""
    entries = props(deploy(**parameters), "JobTypePlatform")["Value"]["Fn::Join"][1]
    return ",".join(entry if isinstance(entry, str) else f"platform-{i}" for i, entry in enumerate(entries))


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("RerunAllowedSlackUsers", ["", "U0ALICE", "U0ALICE,W0LEAD", "S0MEDIA", "u0alice", "U0A, W0B"]),
        ("RerunAllowedSlackGroups", ["", "S0MEDIA", "S0MEDIA,S0ONCALL", "U0ALICE", "none", "S0MEDIA,"]),
    ],
)
def test_a_job_types_lists_take_the_ids_the_stacks_take_and_default_to_the_stacks(name, values):
    parameter = job_type_template()["Parameters"][name]
    stack_pattern = sam_template()["Parameters"][name]["AllowedPattern"]

    assert parameter["Default"] == ""
    for value in values:
        taken = re.fullmatch(parameter["AllowedPattern"], value) is not None
        assert taken == (re.fullmatch(stack_pattern, value) is not None), value


def test_a_job_types_users_may_be_none_which_the_stacks_may_not():
    # none: the job type allows no user by id (with no group: nobody, and its alerts have no Rerun button)
    assert re.fullmatch(job_type_template()["Parameters"]["RerunAllowedSlackUsers"]["AllowedPattern"], "none")
    assert not re.fullmatch(sam_template()["Parameters"]["RerunAllowedSlackUsers"]["AllowedPattern"], "none")


def test_a_job_types_registry_entry_carries_its_lists():
    text = job_type_template()["Resources"]["RegistryEntry"]["Properties"]["Value"]["Fn::Sub"][0]

    assert '"rerunAllowedSlackUsers": "${RerunAllowedSlackUsers}"' in text
    assert '"rerunAllowedSlackGroups": "${RerunAllowedSlackGroups}"' in text


def test_a_job_types_groups_without_the_stacks_bot_token_are_refused_at_deploy_time():
    # Given the Platform a stack without a bot token passes its job types, and one with
    without_token = job_type_platform()
    with_token = job_type_platform(SlackBotTokenSecretName=BOT_TOKEN_SECRET)

    # When a job type allows a group: refused without the stack's token, accepted with it
    (refused,) = rules_refusing_in(
        job_type_template(), Platform=without_token, RerunAllowedSlackGroups="S0MEDIA"
    )
    assert refused.startswith("RerunAllowedSlackGroups needs the stack's SlackBotTokenSecretName")
    assert (
        rules_refusing_in(job_type_template(), Platform=with_token, RerunAllowedSlackGroups="S0MEDIA") == []
    )
    # And users alone, or no lists, need no token
    assert (
        rules_refusing_in(job_type_template(), Platform=without_token, RerunAllowedSlackUsers="U0ALICE") == []
    )
    assert rules_refusing_in(job_type_template(), Platform=without_token) == []
