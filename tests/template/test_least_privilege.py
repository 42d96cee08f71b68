"""No role may touch data it does not own: data-plane actions are always scoped to our resources.

Checked over the transformed template (what CloudFormation receives after the SAM transform), with
every Fn::If branch counted, for each compute type and mode. AWS managed policies are not in the
template, so what they grant on "*" is written out below from the AWS managed policy reference
(https://docs.aws.amazon.com/aws-managed-policy/latest/reference/policy-list.html); an AWS managed
policy missing from the table fails the test until someone looks it up.
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any

import pytest

from tests.template.cfn import (
    COMPUTE_TYPES,
    FUNCTIONS,
    all_policy_statements,
    as_list,
    deploy,
    of_type,
    props,
    transformed,
)

DATA_PLANE = ["sqs:*", "dynamodb:*", "s3:*", "secretsmanager:*", "logs:PutLogEvents", "batch:SubmitJob"]

# What each AWS managed policy allows on Resource "*".
AWS_MANAGED_ON_EVERYTHING = {
    "AWSLambdaBasicExecutionRole": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
    "AWSLambdaSQSQueueExecutionRole": [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    ],
    "AWSLambdaDynamoDBExecutionRole": [
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "dynamodb:ListStreams",
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    ],
    "AWSLambdaKinesisExecutionRole": [
        "kinesis:DescribeStream",
        "kinesis:GetRecords",
        "kinesis:GetShardIterator",
        "kinesis:ListStreams",
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    ],
    "AWSXrayWriteOnlyAccess": [
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
        "xray:GetSamplingStatisticSummaries",
    ],
    "AmazonECSTaskExecutionRolePolicy": [
        "ecr:GetAuthorizationToken",
        "ecr:BatchCheckLayerAvailability",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchGetImage",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    ],
    "AmazonEC2ContainerServiceforEC2Role": [
        "ec2:DescribeTags",
        "ecs:CreateCluster",
        "ecs:DeregisterContainerInstance",
        "ecs:DiscoverPollEndpoint",
        "ecs:Poll",
        "ecs:RegisterContainerInstance",
        "ecs:StartTelemetrySession",
        "ecs:UpdateContainerInstancesState",
        "ecs:Submit*",
        "ecr:GetAuthorizationToken",
        "ecr:BatchCheckLayerAvailability",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchGetImage",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    ],
}

# (role, AWS managed policy) pairs kept on purpose, with the reason.
KEPT = {
    ("InstanceRole", "AmazonEC2ContainerServiceforEC2Role"): (
        "EC2/SPOT only: the ECS agent's documented instance role. AWS extends it as the agent changes, "
        "and the Docker awslogs driver writes container logs with it to the group each job names."
    ),
}

VARIANTS = [
    {"ComputeType": compute_type, "SubmitMode": mode, "JobSecretArn": secret}
    for compute_type in COMPUTE_TYPES
    for mode, secret in (
        ("PER_OBJECT", ""),
        ("ARRAY", "arn:aws:secretsmanager:us-east-1:123456789012:secret:job-AbCdEf"),
    )
]


def _managed_policy_name(arn: Any) -> str | None:
    """The name of an AWS managed policy ARN (plain or !Sub with ${AWS::Partition}); None for our own."""
    text = arn.get("Fn::Sub") if isinstance(arn, dict) else arn
    if isinstance(text, str) and ":iam::aws:policy/" in text:
        return text.rsplit("/", 1)[-1]
    return None


def grants_on_everything(template: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(owner, where, action) for every Allow on Resource "*" in the template or its AWS managed policies."""
    found = [
        (owner, statement.get("Sid", "inline"), action)
        for owner, statement in all_policy_statements(template)
        if statement.get("Effect") == "Allow" and "*" in as_list(statement.get("Resource", []))
        for action in as_list(statement.get("Action", []))
    ]
    for logical_id, resource in template["Resources"].items():
        for arn in as_list(resource.get("Properties", {}).get("ManagedPolicyArns", [])):
            name = _managed_policy_name(arn)
            if name is None:
                continue  # a customer managed policy of this template: its statements are counted above
            if (logical_id, name) in KEPT:
                continue
            actions = AWS_MANAGED_ON_EVERYTHING.get(name, [f"<unknown AWS managed policy {name}>"])
            found.extend((logical_id, name, action) for action in actions)
    return found


def is_data_plane(action: str) -> bool:
    action = action.lower()
    return any(
        fnmatch.fnmatchcase(action, pattern.lower()) or fnmatch.fnmatchcase(pattern.lower(), action)
        for pattern in DATA_PLANE
    ) or action.startswith("<unknown")


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: f"{v['ComputeType']}-{v['SubmitMode']}")
def test_no_policy_grants_a_data_plane_action_on_every_resource(variant):
    # Given the transformed template for this choice (every Fn::If branch counted)
    template = transformed(**variant)

    # When we list what is allowed on "*", inline and through AWS managed policies
    wide = grants_on_everything(template)

    # Then none of it reads or writes data: queues, tables, buckets, secrets, log events, job submission
    assert [grant for grant in wide if is_data_plane(grant[2])] == []
    # And the check itself sees the wide grants that remain (it would notice new ones)
    assert ("SubmitJobsPolicy", "FindJobsByName", "batch:ListJobs") in wide


@pytest.mark.parametrize(
    "attached",
    ["AWSLambdaBasicExecutionRole", "AWSLambdaSQSQueueExecutionRole", "AWSLambdaDynamoDBExecutionRole"],
)
def test_the_check_fails_on_the_managed_policies_sam_would_attach(attached):
    # Given a role with one of the policies SAM attaches to the roles it generates
    template = {
        "Resources": {
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {"ManagedPolicyArns": [f"arn:aws:iam::aws:policy/service-role/{attached}"]},
            }
        }
    }

    # Then it counts as data-plane access on every resource
    assert [g for g in grants_on_everything(template) if is_data_plane(g[2])]


@pytest.mark.parametrize(
    ("function", "queue"), [("S3SubmitFunction", "IntakeQueue"), ("StormDigestFunction", "StormQueue")]
)
def test_an_sqs_triggered_function_reads_only_its_own_queue(function, queue):
    # Given the default stack
    stack = deploy()
    role = props(stack, f"{function}Role")
    (mapping,) = [
        m["Properties"]
        for m in of_type(stack, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": function}
    ]
    statements = [s for p in role["Policies"] for s in as_list(p["PolicyDocument"]["Statement"])]
    receives = [s for s in statements if "sqs:ReceiveMessage" in as_list(s["Action"])]

    # Then its mapping polls its queue, and its role may receive/delete there and nowhere else
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": [queue, "Arn"]}
    assert [s["Resource"] for s in receives] == [{"Fn::GetAtt": [queue, "Arn"]}]
    assert {"sqs:DeleteMessage", "sqs:GetQueueAttributes"} <= set(as_list(receives[0]["Action"]))
    assert "AWSLambdaSQSQueueExecutionRole" not in json.dumps(role["ManagedPolicyArns"])
    assert props(stack, function)["Role"] == {"Fn::GetAtt": [f"{function}Role", "Arn"]}


def test_each_function_writes_only_its_own_log_group():
    # Given the default stack
    stack = deploy()

    for function in FUNCTIONS:
        role = props(stack, f"{function}Role")
        statements = [s for p in role["Policies"] for s in as_list(p["PolicyDocument"]["Statement"])]
        writes = [s for s in statements if "logs:PutLogEvents" in as_list(s["Action"])]
        log_group = props(stack, function)["LoggingConfig"]["LogGroup"]["Ref"]

        # Then its log events go to the group named in its LoggingConfig, and only there
        assert [s["Resource"] for s in writes] == [{"Fn::GetAtt": [log_group, "Arn"]}], function


def test_only_this_accounts_default_schedule_group_may_use_the_scheduler_role():
    # Given the role EventBridge Scheduler assumes to invoke ScheduleSubmitFunction
    stack = deploy()
    role = props(stack, "ScheduleSubmitFunctionScheduleRole")
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]

    # Then the schedule uses it, and only Scheduler acting for this account's default group may assume it
    # (https://docs.aws.amazon.com/scheduler/latest/UserGuide/cross-service-confused-deputy-prevention.html)
    target = props(stack, "ScheduleSubmitFunctionSchedule")["Target"]
    assert target["RoleArn"] == {"Fn::GetAtt": ["ScheduleSubmitFunctionScheduleRole", "Arn"]}
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    group = "arn:${AWS::Partition}:scheduler:${AWS::Region}:${AWS::AccountId}:schedule-group/default"
    assert trust["Condition"]["ArnEquals"] == {"aws:SourceArn": {"Fn::Sub": group}}
    # And it may invoke exactly this function and park undeliverable ticks in the schedule's DLQ
    statements = [s for p in role["Policies"] for s in as_list(p["PolicyDocument"]["Statement"])]
    assert {(json.dumps(s["Action"]), json.dumps(s["Resource"])) for s in statements} == {
        ('"lambda:InvokeFunction"', json.dumps({"Fn::GetAtt": ["ScheduleSubmitFunction", "Arn"]})),
        ('"sqs:SendMessage"', json.dumps({"Fn::GetAtt": ["ScheduleDLQ", "Arn"]})),
    }
