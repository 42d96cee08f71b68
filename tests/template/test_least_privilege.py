"""No role may touch data it does not own: data-plane actions are always scoped to our resources.

Checked over the transformed template (what CloudFormation receives after the SAM transform), with
every Fn::If branch counted, for each compute type and mode, and over job-types/job-type.yaml (each job
type's nested stack, whose policy lets the shared execution role read the job type's secret). AWS
managed policies are not in the template, so what they grant on "*" is written out below from the AWS
managed policy reference (https://docs.aws.amazon.com/aws-managed-policy/latest/reference/policy-list.html);
an AWS managed policy missing from the table fails the test until someone looks it up.
"""

from __future__ import annotations

import copy
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
    job_type_template,
    of_type,
    props,
    transformed,
)

# Reading job output (log events) and the job catalog (SSM parameters: job definitions, routes, webhook
# secret names) is data access too.
DATA_PLANE = [
    "sqs:*",
    "dynamodb:*",
    "s3:*",
    "secretsmanager:*",
    "logs:PutLogEvents",
    "logs:GetLogEvents",
    "logs:FilterLogEvents",
    "ssm:GetParameter*",
    "batch:SubmitJob",
]

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


def test_a_job_types_policies_grant_no_data_plane_action_on_every_resource():
    # Given a job type's template (every Fn::If branch counted)
    template = job_type_template()

    # When we list what it allows on "*"
    wide = grants_on_everything(template)

    # Then none of it is data access, and the check saw the job type's two policies
    assert [grant for grant in wide if is_data_plane(grant[2])] == []
    assert [owner for owner, _ in all_policy_statements(template)] == ["ReadJobSecret", "ReadUploadBucket"]


def _allowing_everything(action: str) -> dict[str, Any]:
    return {
        "Resources": {
            "Policy": {
                "Type": "AWS::IAM::Policy",
                "Properties": {
                    "PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}]}
                },
            }
        }
    }


@pytest.mark.parametrize(
    "action",
    [
        "secretsmanager:GetSecretValue",
        "logs:GetLogEvents",
        "logs:FilterLogEvents",
        "ssm:GetParametersByPath",
        "ssm:GetParameter",
        "ssm:*",
        "logs:*",
    ],
)
def test_the_check_fails_on_reading_secrets_job_logs_or_the_catalog_everywhere(action):
    # Given a policy that allows one of these reads on every resource
    # Then it counts as data-plane access on every resource
    assert [g for g in grants_on_everything(_allowing_everything(action)) if is_data_plane(g[2])]


def test_the_check_fails_when_a_job_type_may_read_every_secret():
    # Given the job type's secret policy widened to every secret
    template = copy.deepcopy(job_type_template())
    template["Resources"]["ReadJobSecret"]["Properties"]["PolicyDocument"]["Statement"][0]["Resource"] = "*"

    # Then the check reports it
    assert ("ReadJobSecret", "inline", "secretsmanager:GetSecretValue") in grants_on_everything(template)


def _who_may(template: dict[str, Any], action: str) -> list[tuple[str, str]]:
    """(owner, resource as JSON) of every Allow statement naming `action`."""
    return [
        (owner, json.dumps(resource, sort_keys=True))
        for owner, statement in all_policy_statements(template)
        if statement.get("Effect") == "Allow" and action in as_list(statement.get("Action", []))
        for resource in as_list(statement.get("Resource", []))
    ]


def test_a_job_type_lets_the_execution_role_read_its_own_secret_and_only_that():
    # Given a job type's template and the platform list the parent passes it
    template = job_type_template()
    policy = template["Resources"]["ReadJobSecret"]
    platform = props(deploy(), "JobTypePlatform")["Value"]["Fn::Join"][1]

    # Then only the job type's own JobSecretArn may be read, only when it has one, by the execution role
    assert _who_may(template, "secretsmanager:GetSecretValue") == [
        ("ReadJobSecret", json.dumps({"Ref": "JobSecretArn"}))
    ]
    assert policy["Condition"] == "HasJobSecret"
    assert template["Conditions"]["HasJobSecret"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "JobSecretArn"}, ""]}]
    }
    (role,) = policy["Properties"]["Roles"]
    index = role["Fn::Select"][0]
    assert role == {"Fn::Select": [index, {"Ref": "Platform"}]}
    assert platform[index] == {"Ref": "ExecutionRole"}


REGISTRY_PATH_ARN = {
    "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/batch-dispatch/"
    "${AWS::StackName}/job-types"
}


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: f"{v['ComputeType']}-{v['SubmitMode']}")
def test_the_job_catalog_may_be_read_only_at_the_stacks_registry_path(variant):
    # Given the transformed template and the path the job types write their entries under
    template = transformed(**variant)
    path = template["Outputs"]["JobTypesPath"]["Value"]

    # Then the functions read exactly that path, through the two shared policies (the Rerun button's role
    # attaches SubmitJobsPolicy, for a job type's own allowed users), and nothing else of SSM
    assert path == {"Fn::Sub": "/batch-dispatch/${AWS::StackName}/job-types"}
    assert REGISTRY_PATH_ARN["Fn::Sub"].endswith(f"parameter{path['Fn::Sub']}")
    expected = json.dumps(REGISTRY_PATH_ARN, sort_keys=True)
    assert _who_may(template, "ssm:GetParametersByPath") == [
        ("SubmitJobsPolicy", expected),
        ("PostAlertsPolicy", expected),
    ]
    ssm_actions = {
        action
        for _, statement in all_policy_statements(template)
        for action in as_list(statement.get("Action", []))
        if action.startswith("ssm:")
    }
    assert ssm_actions == {"ssm:GetParametersByPath"}


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: f"{v['ComputeType']}-{v['SubmitMode']}")
def test_job_output_may_be_read_only_from_the_stacks_job_log_group(variant):
    # Given the transformed template
    template = transformed(**variant)
    group = (
        "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${JobLogGroup}:log-stream:*"
    )

    # Then only the notifier reads log events (the failed attempt's tail), and only the job log group's
    assert _who_may(template, "logs:GetLogEvents") == [
        ("FailureNotifyFunctionRole", json.dumps({"Fn::Sub": group}))
    ]
    assert _who_may(template, "logs:FilterLogEvents") == []
    # And that group is the one every job definition writes to
    definition = template["Resources"]["JobDefinition"]["Properties"]["ContainerProperties"]
    assert definition["LogConfiguration"]["Options"]["awslogs-group"] == {"Ref": "JobLogGroup"}


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
