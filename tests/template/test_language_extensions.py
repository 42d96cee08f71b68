"""The template's Fn::ForEach loops expand to the resources they stand for, and nothing else changes.

CloudFormation runs the AWS::LanguageExtensions transform before the SAM transform; `emulator.sam` does
the same offline for the emulator, the template tests and checkov. It must expand the loops only: every
other intrinsic (Ref, Sub, GetAtt, If, FindInMap) is CloudFormation's to resolve against the real stack,
or moto's in the emulator.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest

from emulator.sam import expand_language_extensions, read_template
from tests.template.cfn import FUNCTIONS, REPO_ROOT

STEMS = [function.removesuffix("Function") for function in FUNCTIONS]
DEAD_LETTER_QUEUES = ["IntakeDLQ", "ScheduleDLQ", "FailureNotifyDLQ", "StormDLQ"]
LOOPS = {
    "FunctionLogsAndAlarms": {
        f"{stem}{suffix}" for stem in STEMS for suffix in ("LogGroup", "ErrorsAlarm", "ThrottlesAlarm")
    },
    "DeadLetterQueues": {*DEAD_LETTER_QUEUES, *(f"{queue}Alarm" for queue in DEAD_LETTER_QUEUES)},
    "TlsOnlyQueuePolicies": {
        f"{queue}Policy" for queue in ["IntakeDLQ", "ScheduleDLQ", "StormDLQ", "StormQueue"]
    },
    "PriorityQueues": {"HighPriorityJobQueue", "LowPriorityJobQueue"},
}


def _expanded() -> dict[str, Any]:
    return expand_language_extensions(read_template())


def test_each_loop_creates_its_resources_under_the_logical_ids_they_always_had():
    # Given the template as written and as the SAM transform receives it
    written = read_template()
    expanded = _expanded()

    # Then the loops are the ones listed, and they add exactly their resources
    assert {key for key in written["Resources"] if key.startswith("Fn::ForEach::")} == {
        f"Fn::ForEach::{loop}" for loop in LOOPS
    }
    assert set(expanded["Resources"]) - set(written["Resources"]) == set().union(*LOOPS.values())
    assert not [key for key in expanded["Resources"] if key.startswith("Fn::ForEach::")]


def test_everything_outside_the_loops_is_left_as_written():
    # Given the template as written and expanded
    written = read_template()
    expanded = _expanded()

    # Then every resource that is not a loop is unchanged (parameter Refs, ${AWS::StackName}, the
    # Select/Split of SubmitJobsPolicy's ARN, Fn::If: all still there for CloudFormation)
    for logical_id, resource in written["Resources"].items():
        if not logical_id.startswith("Fn::ForEach::"):
            assert expanded["Resources"][logical_id] == resource, logical_id
    # And so is every other section; only the language extensions transform has been run
    for section in set(written) - {"Resources", "Transform"}:
        assert expanded[section] == written[section], section
    assert written["Transform"] == ["AWS::LanguageExtensions", "AWS::Serverless-2016-10-31"]
    assert expanded["Transform"] == "AWS::Serverless-2016-10-31"


def test_looped_resources_keep_their_ref_sub_getatt_and_findinmap_for_cloudformation():
    # Given the resources the loops created
    resources = _expanded()["Resources"]
    log_group = resources["ScheduleSubmitLogGroup"]["Properties"]
    function_alarm = resources["S3SubmitThrottlesAlarm"]["Properties"]
    dlq_alarm = resources["StormDLQAlarm"]["Properties"]
    policy = resources["StormQueuePolicy"]["Properties"]

    # Then the loop variable is filled in, and every intrinsic is left for CloudFormation
    assert log_group == {
        "LogGroupName": {"Fn::Sub": "/aws/lambda/${AWS::StackName}/ScheduleSubmitFunction"},
        "RetentionInDays": {"Ref": "LogRetentionDays"},
    }
    assert function_alarm["MetricName"] == "Throttles"
    assert function_alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "S3SubmitFunction"}}]
    assert function_alarm["AlarmDescription"]["Fn::Sub"][1] == {
        "Happened": {"Fn::FindInMap": ["AlarmWording", "Throttles", "Text"]},
        "Work": {"Fn::FindInMap": ["AlarmWording", "S3Submit", "Text"]},
    }
    assert function_alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert dlq_alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["StormDLQ", "QueueName"]}}
    ]
    assert policy["Queues"] == [{"Ref": "StormQueue"}]
    assert policy["PolicyDocument"]["Statement"][0]["Resource"] == {"Fn::GetAtt": ["StormQueue", "Arn"]}


def _described(template: dict[str, Any], logical_id: str) -> str:
    """An alarm's description with its Fn::FindInMap variables looked up, as CloudFormation does."""
    text, variables = template["Resources"][logical_id]["Properties"]["AlarmDescription"]["Fn::Sub"]
    words = {
        name: template["Mappings"][value["Fn::FindInMap"][0]][value["Fn::FindInMap"][1]][
            value["Fn::FindInMap"][2]
        ]
        for name, value in variables.items()
    }
    return re.sub(r"\$\{(\w+)\}", lambda match: words.get(match.group(1), match.group(0)), text)


def test_looped_alarms_tell_the_on_call_what_failed():
    # Given the expanded template
    template = _expanded()

    # Then each alarm names its function or queue and says what it means, in words
    assert _described(template, "S3SubmitThrottlesAlarm") == (
        "${AWS::StackName}: S3SubmitFunction was throttled (upload submits; see its logs: "
        "make logs FN=S3SubmitFunction)."
    )
    assert _described(template, "ScheduleSubmitErrorsAlarm") == (
        "${AWS::StackName}: ScheduleSubmitFunction raised errors (scheduled submits; see its logs: "
        "make logs FN=ScheduleSubmitFunction)."
    )
    assert _described(template, "FailureNotifyDLQAlarm") == (
        "${AWS::StackName}: a job failure could not be posted to Slack (FailureNotifyDLQ not empty)."
    )


@pytest.mark.parametrize(
    "unexpanded",
    [
        {"Fn::Length": [1, 2]},
        {"Fn::ToJsonString": {"a": 1}},
        {"Fn::FindInMap": ["AlarmWording", "Nothing", "Text", {"DefaultValue": "x"}]},
        {"Ref": {"Fn::Sub": "${AWS::StackName}Queue"}},
    ],
)
def test_a_language_extension_the_emulator_does_not_expand_is_refused(unexpanded):
    # Given a template whose alarm topic uses a language extension beyond Fn::ForEach
    template = read_template()
    template["Resources"]["AlarmTopic"]["Properties"]["DisplayName"] = unexpanded

    # Then expanding it fails loudly, rather than letting moto deploy something CloudFormation would not
    with pytest.raises(ValueError, match="expands Fn::ForEach only"):
        expand_language_extensions(template)


def test_every_deploy_environment_acknowledges_the_transform():
    # Given the deploy settings of each samconfig.toml environment
    config = tomllib.loads((REPO_ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    deploys = {name: env["deploy"]["parameters"] for name, env in config.items() if isinstance(env, dict)}

    # Then each one may create IAM roles and lets the language extensions transform expand the template
    assert set(deploys) == {"default", "dev", "prod"}
    for name, parameters in deploys.items():
        assert {"CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"} <= set(parameters["capabilities"].split()), name
