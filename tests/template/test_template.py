"""Template tests: what `sam deploy` would create, checked offline.

Scope: template.yaml as written (lint, parameters, text) and the CloudFormation that the SAM transform
produces from it for each parameter choice. Conditions are evaluated here with a small resolver, so
each test sees the resources and properties CloudFormation would really create for that choice.
No AWS, no network, no moto: these run in well under a second each (the transform is cached).
"""

from __future__ import annotations

import json
import re
from itertools import product
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint_all

from tests.template.cfn import (
    COMPUTE_TYPES,
    EXISTING_NETWORK,
    FUNCTIONS,
    REPO_ROOT,
    TEMPLATE_PATH,
    VPC_MODES,
    all_policy_statements,
    as_list,
    deploy,
    of_type,
    props,
    role_statements,
    transformed,
)
from tests.template.cfn import sam_template as _sam_template

REQUIRED_OUTPUTS = {
    "JobQueueArn",
    "JobDefinitionArn",
    "ComputeEnvironmentArn",
    "IntakeBucketName",
    "IntakeQueueUrl",
    "IntakeQueueArn",
    "IntakeDLQUrl",
    "ScheduleDLQUrl",
    "FailureNotifyDLQUrl",
    "IdempotencyTableName",
    "ScheduleSubmitFunctionName",
    "S3SubmitFunctionName",
    "FailureNotifyFunctionName",
    "AlarmTopicArn",
    "JobLogGroupName",
    "VpcId",
    "StormQueueUrl",
    "StormDLQUrl",
    "AlertStateTableName",
    "StormDigestFunctionName",
    "WatchdogFunctionName",
    "DashboardName",
    "DashboardUrl",
}


# ------------------------------------------------------------------------------------------------
# Lint
# ------------------------------------------------------------------------------------------------
def test_cfn_lint_reports_no_errors_or_warnings_in_any_region():
    # Given the template as sam deploy would upload it
    text = TEMPLATE_PATH.read_text(encoding="utf-8")

    # When cfn-lint checks it against every region (after its own SAM transform)
    matches = lint_all(text)

    # Then there is no error and no warning (informational findings are allowed)
    problems = [str(m) for m in matches if m.rule.id[0] in "EW"]
    assert problems == []


# ------------------------------------------------------------------------------------------------
# Parameters
# ------------------------------------------------------------------------------------------------
def test_every_parameter_has_a_default_so_a_plain_deploy_works():
    # Given the template parameters
    parameters = _sam_template()["Parameters"]

    # Then each one has a default (the emulator and `sam deploy --guided` rely on it)
    assert [name for name, spec in parameters.items() if "Default" not in spec] == []


def test_default_job_image_is_pinned_not_latest():
    # Given the default job image
    image = _sam_template()["Parameters"]["JobImage"]["Default"]

    # Then it names an explicit version tag or digest, never :latest
    name_and_tag = image.rsplit("/", 1)[-1]
    assert not image.endswith(":latest")
    assert ":" in name_and_tag or "@sha256:" in image


def test_job_image_parameter_refuses_latest():
    # Given the JobImage constraint
    pattern = _sam_template()["Parameters"]["JobImage"]["AllowedPattern"]

    # Then a :latest image is refused and a pinned one accepted
    assert re.fullmatch(pattern, "public.ecr.aws/docker/library/python:latest") is None
    assert re.fullmatch(pattern, "public.ecr.aws/docker/library/python") is None  # untagged = latest
    assert re.fullmatch(pattern, "registry.example.com:5000/etl") is None
    assert re.fullmatch(pattern, "etl@sha256:" + "a" * 64) is not None
    assert re.fullmatch(pattern, "123456789012.dkr.ecr.eu-west-1.amazonaws.com/etl:2024.06.1") is not None


def test_default_schedule_is_every_three_hours_and_enabled():
    # Given the schedule parameters
    parameters = _sam_template()["Parameters"]

    # Then a fresh deploy submits a job every 3 hours
    assert parameters["ScheduleExpression"]["Default"] == "rate(3 hours)"
    assert parameters["ScheduleEnabled"]["Default"] == "true"


def test_intake_concurrency_is_bounded_to_protect_the_submitjob_rate_limit():
    # Given the IntakeMaxConcurrency parameter
    spec = _sam_template()["Parameters"]["IntakeMaxConcurrency"]

    # Then it has SQS's minimum of 2, a modest default and a hard maximum
    assert spec["MinValue"] == 2
    assert int(spec["Default"]) <= 10
    assert "MaxValue" in spec


# ------------------------------------------------------------------------------------------------
# Compute environment, job definition and network for every ComputeType x VpcMode
# ------------------------------------------------------------------------------------------------
COMBINATIONS = list(product(COMPUTE_TYPES, VPC_MODES))


def _combo(compute_type: str, vpc_mode: str) -> dict[str, Any]:
    overrides = {"ComputeType": compute_type, "VpcMode": vpc_mode}
    if compute_type != "FARGATE":
        overrides["JobVcpu"] = "1"
    if vpc_mode == "Existing":
        overrides.update(EXISTING_NETWORK)
    return deploy(**overrides)


@pytest.mark.parametrize(("compute_type", "vpc_mode"), COMBINATIONS)
def test_compute_environment_matches_the_compute_type(compute_type, vpc_mode):
    # Given a deploy with this compute type and network choice
    stack = _combo(compute_type, vpc_mode)

    # When we read the managed compute environment
    environment = props(stack, "ComputeEnvironment")
    resources = environment["ComputeResources"]

    # Then it is managed, scales from zero and uses the right capacity settings
    assert environment["Type"] == "MANAGED"
    assert "ServiceRole" not in environment  # the Batch service-linked role is used
    assert resources["Type"] == compute_type
    if compute_type == "FARGATE":
        for not_for_fargate in ("MinvCpus", "AllocationStrategy", "InstanceRole", "InstanceTypes"):
            assert not_for_fargate not in resources
    else:
        expected = "SPOT_PRICE_CAPACITY_OPTIMIZED" if compute_type == "SPOT" else "BEST_FIT_PROGRESSIVE"
        assert resources["MinvCpus"] == 0
        assert resources["AllocationStrategy"] == expected
        assert resources["InstanceRole"] == {"Fn::GetAtt": ["InstanceProfile", "Arn"]}
        assert "InstanceProfile" in stack["Resources"]
        assert resources["InstanceTypes"] == {"Fn::Split": [",", "optimal"]}


@pytest.mark.parametrize(("compute_type", "vpc_mode"), COMBINATIONS)
def test_job_definition_matches_the_platform_and_network(compute_type, vpc_mode):
    # Given a deploy with this compute type and network choice
    stack = _combo(compute_type, vpc_mode)

    # When we read the job definition
    definition = props(stack, "JobDefinition")
    container = definition["ContainerProperties"]

    # Then its platform, public IP and Fargate settings fit the choice
    assert definition["PlatformCapabilities"] == ["FARGATE" if compute_type == "FARGATE" else "EC2"]
    if compute_type == "FARGATE":
        expected_ip = "ENABLED" if vpc_mode == "CreatePublic" else "DISABLED"
        assert container["NetworkConfiguration"] == {"AssignPublicIp": expected_ip}
        assert container["FargatePlatformConfiguration"] == {"PlatformVersion": "LATEST"}
    else:
        assert "NetworkConfiguration" not in container
        assert "FargatePlatformConfiguration" not in container
    assert container["ExecutionRoleArn"] == {"Fn::GetAtt": ["ExecutionRole", "Arn"]}
    assert container["JobRoleArn"] == {"Fn::GetAtt": ["JobRole", "Arn"]}


@pytest.mark.parametrize(("compute_type", "vpc_mode"), COMBINATIONS)
def test_jobs_run_in_subnets_with_a_route_out(compute_type, vpc_mode):
    # Given a deploy with this compute type and network choice
    stack = _combo(compute_type, vpc_mode)
    resources = stack["Resources"]
    compute = props(stack, "ComputeEnvironment")["ComputeResources"]

    # Then the jobs' subnets are the created public/private ones or the user's, and created
    # subnets reach the internet (image pulls) through the internet gateway or a NAT gateway
    if vpc_mode == "Existing":
        assert "Vpc" not in resources
        assert compute["Subnets"] == EXISTING_NETWORK["SubnetIds"].split(",")
        assert compute["SecurityGroupIds"] == EXISTING_NETWORK["SecurityGroupIds"].split(",")
        return
    assert compute["SecurityGroupIds"] == [{"Ref": "JobSecurityGroup"}]
    assert props(stack, "PublicDefaultRoute")["GatewayId"] == {"Ref": "InternetGateway"}
    azs = {json.dumps(props(stack, s)["AvailabilityZone"]) for s in ("PublicSubnet1", "PublicSubnet2")}
    assert len(azs) == 2
    if vpc_mode == "CreatePrivateWithNat":
        assert compute["Subnets"] == [{"Ref": "PrivateSubnet1"}, {"Ref": "PrivateSubnet2"}]
        assert props(stack, "PrivateDefaultRoute")["NatGatewayId"] == {"Ref": "NatGateway"}
        assert props(stack, "PublicSubnet1")["MapPublicIpOnLaunch"] is False
    else:
        assert compute["Subnets"] == [{"Ref": "PublicSubnet1"}, {"Ref": "PublicSubnet2"}]
        assert "NatGateway" not in resources
        assert props(stack, "PublicSubnet1")["MapPublicIpOnLaunch"] is True


def test_job_security_group_has_no_inbound_and_https_outbound():
    # Given the default deploy
    group = props(deploy(), "JobSecurityGroup")

    # Then nothing may connect in, and jobs may reach HTTPS endpoints
    assert "SecurityGroupIngress" not in group
    assert group["SecurityGroupEgress"] == [
        {
            "Description": "HTTPS to AWS APIs and image registries",
            "IpProtocol": "tcp",
            "FromPort": 443,
            "ToPort": 443,
            "CidrIp": "0.0.0.0/0",
        }
    ]


def test_job_retries_infrastructure_failures_but_not_application_errors():
    # Given the default job definition
    definition = props(deploy(), "JobDefinition")
    strategy = definition["RetryStrategy"]
    rules = strategy["EvaluateOnExit"]

    # Then instance/Spot reclaims retry, and the final catch-all exits so a bad exit code fails fast
    assert strategy["Attempts"] == "3"
    assert {"OnStatusReason": "Host EC2*", "Action": "RETRY"} in rules
    assert rules[-1] == {"OnReason": "*", "Action": "EXIT"}
    assert len(rules) <= 5
    for rule in rules:  # Batch patterns: letters, digits, spaces, '.', ':' and a trailing '*'
        for key in ("OnStatusReason", "OnReason", "OnExitCode"):
            if key in rule:
                assert re.fullmatch(r"[A-Za-z0-9.: ]*\*?", rule[key]), rule
    assert definition["Timeout"] == {"AttemptDurationSeconds": "3600"}


def test_job_logs_go_to_the_stack_log_group_and_placeholders_have_defaults():
    # Given the default job definition
    definition = props(deploy(), "JobDefinition")
    container = definition["ContainerProperties"]

    # Then logs land in JobLogGroup, and every Ref:: in the command has a default parameter
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"
    assert container["LogConfiguration"]["Options"]["awslogs-group"] == {"Ref": "JobLogGroup"}
    command = container["Command"]["Fn::Split"][1].split(",")
    placeholders = {arg.removeprefix("Ref::") for arg in command if arg.startswith("Ref::")}
    assert placeholders <= set(definition["Parameters"])
    assert {"bucket", "key", "versionId", "scheduledTime", "scheduleName"} <= set(definition["Parameters"])
    assert definition["PropagateTags"] is True


def test_job_secret_is_wired_only_when_an_arn_is_given():
    secret_arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:etl/db-AbCdEf"

    # Given a deploy without and one with JobSecretArn
    without = deploy()
    with_secret = deploy(JobSecretArn=secret_arn)

    # Then only the second job gets the secret, read by the execution role on exactly that ARN
    def secret_reads(stack: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            s for s in role_statements(stack, "ExecutionRole") if "secretsmanager" in json.dumps(s["Action"])
        ]

    assert "Secrets" not in props(without, "JobDefinition")["ContainerProperties"]
    assert secret_reads(without) == []
    secrets = props(with_secret, "JobDefinition")["ContainerProperties"]["Secrets"]
    assert secrets == [{"Name": "JOB_SECRET", "ValueFrom": secret_arn}]
    read_secret = {
        "Sid": "ReadJobSecret",
        "Effect": "Allow",
        "Action": "secretsmanager:GetSecretValue",
        "Resource": secret_arn,
    }
    assert secret_reads(with_secret) == [read_secret]


# ------------------------------------------------------------------------------------------------
# IAM and naming hygiene
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("compute_type", COMPUTE_TYPES)
def test_no_allow_statement_grants_a_wildcard_action(compute_type):
    # Given every policy statement the stack creates (roles, queue and bucket policies)
    secret_arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:x-AbCdEf"
    template = transformed(ComputeType=compute_type, JobSecretArn=secret_arn)
    statements = all_policy_statements(template)
    assert statements

    # Then no Allow names an action with "*" (Deny statements such as the TLS-only guards may)
    wildcard = [
        (owner, s["Action"])
        for owner, s in statements
        if s["Effect"] == "Allow" and any("*" in a for a in as_list(s.get("Action", [])))
    ]
    assert wildcard == []


def test_resource_wildcards_are_only_used_for_actions_without_resource_level_permissions():
    # Given every Allow statement of the default stack
    statements = [(o, s) for o, s in all_policy_statements(transformed()) if s["Effect"] == "Allow"]

    # Then "Resource": "*" only appears for APIs without resource-level permissions (ListJobs,
    # DescribeJobs, GetAuthorizationToken) and for pulling the job image, which may be in any registry
    # JobImage names
    unscopable = {
        "batch:ListJobs",
        "batch:DescribeJobs",
        "ecr:GetAuthorizationToken",
        "ecr:BatchCheckLayerAvailability",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchGetImage",
    }
    star = [(o, s["Action"]) for o, s in statements if "*" in as_list(s.get("Resource", []))]
    assert star
    assert all(set(as_list(actions)) <= unscopable for _, actions in star)


def test_no_aws_managed_full_access_policy_is_attached():
    # Given every managed policy attached by the template or by SAM
    arns = [
        json.dumps(arn)
        for role in of_type(deploy(ComputeType="EC2"), "AWS::IAM::Role").values()
        for arn in role["Properties"].get("ManagedPolicyArns", [])
    ]

    # Then none is a FullAccess policy
    assert arns
    assert [arn for arn in arns if "FullAccess" in arn] == []


def test_submit_functions_may_submit_only_to_our_queues_and_job_definitions():
    # Given the default stack
    stack = deploy()

    for function in ("ScheduleSubmitFunction", "S3SubmitFunction"):
        # When we collect the role's SubmitJob resources
        statements = role_statements(stack, f"{function}Role")
        submit = [s for s in statements if "batch:SubmitJob" in as_list(s["Action"])]

        # Then they are exactly our three queues and the job definitions named <stack>_* (stack names
        # have no "_", so no other stack's definition matches)
        assert len(submit) == 1
        resources = submit[0]["Resource"]
        assert resources[:3] == [
            {"Ref": "JobQueue"},
            {"Ref": "HighPriorityJobQueue"},
            {"Ref": "LowPriorityJobQueue"},
        ]
        assert resources[3]["Fn::Sub"].endswith(":job-definition/${AWS::StackName}_*")
        assert len(resources) == 4
    assert props(stack, "JobDefinition")["JobDefinitionName"] == {"Fn::Sub": "${AWS::StackName}_default"}


def test_failure_notifier_reads_only_the_named_slack_secret_and_those_under_the_prefix():
    # Given the FailureNotifyFunction role (its inline and attached policies)
    statements = role_statements(deploy(), "FailureNotifyFunctionRole")
    reads = [s for s in statements if s["Action"] == "secretsmanager:GetSecretValue"]

    # Then it may read the secret with that name (plus Secrets Manager's 6-char suffix) and the job
    # types' webhook secrets under the configured prefix, nothing else
    secrets = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:"
    assert reads == [
        {
            "Sid": "ReadSlackWebhooks",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": [
                {"Fn::Sub": secrets + "${SlackWebhookSecretName}-??????"},
                {"Fn::Sub": secrets + "${SlackWebhookSecretPrefix}*"},
            ],
        }
    ]


NAME_PROPERTIES = {
    "BucketName",
    "QueueName",
    "FunctionName",
    "TableName",
    "RoleName",
    "TopicName",
    "AlarmName",
    "RuleName",
    "ComputeEnvironmentName",
    "JobQueueName",
    "JobDefinitionName",
    "InstanceProfileName",
    "GroupName",
    "LayerName",
    "Name",
}


def test_no_resource_has_a_hard_coded_name():
    # Given every resource of the transformed template (SAM's generated ones included)
    for logical_id, resource in transformed().get("Resources", {}).items():
        properties = resource.get("Properties", {})
        for key, value in properties.items():
            # Then a naming property is absent, refers to another resource, or derives from the
            # stack name, so two stacks (dev, prod) and replacements never collide
            # (MetricName is CloudWatch's; an inline PolicyName is scoped to its role)
            if key in NAME_PROPERTIES or (key.endswith("Name") and key not in {"MetricName", "PolicyName"}):
                assert not isinstance(value, str), f"{logical_id}.{key} is hard-coded: {value!r}"
    # And the SAM template itself never sets the classic fixed-name properties to a literal
    # (an event source mapping's FunctionName refers to the function; that is not a fixed name)
    fixed = {"BucketName", "QueueName", "FunctionName", "TableName", "RoleName", "TopicName", "AlarmName"}
    for logical_id, resource in _sam_template()["Resources"].items():
        properties = resource.get("Properties", {})
        assert not [k for k in fixed if isinstance(properties.get(k), str)], logical_id


def test_the_slack_webhook_url_never_appears_in_the_template():
    # Given the template text and what the functions get as environment
    text = TEMPLATE_PATH.read_text(encoding="utf-8")
    env = props(deploy(), "FailureNotifyFunction")["Environment"]["Variables"]

    # Then no webhook URL is in there, only the secret's NAME
    assert "hooks.slack.com" not in text
    assert env["SLACK_WEBHOOK_SECRET_NAME"] == "batch-dispatch/slack-webhook"
    assert all("hooks.slack" not in json.dumps(v) for v in env.values())


# ------------------------------------------------------------------------------------------------
# Functions
# ------------------------------------------------------------------------------------------------
def test_every_function_runs_python313_on_arm64_with_the_contract_environment():
    # Given the default stack
    stack = deploy()

    for function in FUNCTIONS:
        # When we read the function
        properties = props(stack, function)
        variables = properties["Environment"]["Variables"]

        # Then runtime, architecture, tracing, layer and the environment contract are in place
        assert properties["Runtime"] == "python3.13"
        assert properties["Architectures"] == ["arm64"]
        assert properties["TracingConfig"] == {"Mode": "Active"}
        assert properties["Handler"] == "app.lambda_handler"
        assert len(properties["Layers"]) == 1
        assert variables["POWERTOOLS_SERVICE_NAME"] == "batch-dispatch"
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "BatchDispatch"
        assert variables["JOB_QUEUE_ARN"] == {"Ref": "JobQueue"}
        assert variables["JOB_DEFINITION_ARN"] == {"Ref": "JobDefinition"}
        assert variables["IDEMPOTENCY_TABLE_NAME"] == {"Ref": "IdempotencyTable"}
        assert variables["ENVIRONMENT"] == "dev"
        assert variables["JOB_NAME_PREFIX"] == {"Ref": "AWS::StackName"}


def test_every_function_logs_to_its_own_log_group_created_before_it():
    # Given the default stack
    stack = deploy()

    for function in FUNCTIONS:
        # When we follow the function's LoggingConfig to its log group
        group_id = props(stack, function)["LoggingConfig"]["LogGroup"]["Ref"]
        group = props(stack, group_id)

        # Then the group is the stack's, named after the stack (not the function, whose name would make
        # the function depend on it and it on the function), kept for LogRetentionDays; a reference in
        # the function orders it first, so the first invocation cannot create an unmanaged group
        assert stack["Resources"][group_id]["Type"] == "AWS::Logs::LogGroup"
        assert group["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{AWS::StackName}}/{function}"}
        assert group["RetentionInDays"] == "30"
    log_groups = [props(stack, f)["LoggingConfig"]["LogGroup"]["Ref"] for f in FUNCTIONS]
    assert len(set(log_groups)) == len(FUNCTIONS)


def test_schedule_sends_the_contract_input_with_retries_and_a_dlq():
    # Given the default stack and one with schedule parameters
    schedule = props(deploy(), "ScheduleSubmitFunctionSchedule")
    custom = props(deploy(ScheduleParameters='{"mode": "full"}'), "ScheduleSubmitFunctionSchedule")

    # When we render the scheduler input the way CloudFormation substitutes it
    def render(schedule_props: dict[str, Any], parameters: str) -> dict[str, Any]:
        template = schedule_props["Target"]["Input"]["Fn::Sub"]
        return json.loads(template.replace("${ScheduleParameters}", parameters))

    # Then it has exactly the contract shape, runs every 3 hours without a window, and retries into a DLQ
    assert render(schedule, "{}") == {
        "scheduledTime": "<aws.scheduler.scheduled-time>",
        "scheduleArn": "<aws.scheduler.schedule-arn>",
        "parameters": {},
    }
    assert render(custom, '{"mode": "full"}')["parameters"] == {"mode": "full"}
    assert schedule["ScheduleExpression"] == "rate(3 hours)"
    assert schedule["State"] == "ENABLED"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert "Name" not in schedule
    assert schedule["Target"]["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["ScheduleDLQ", "Arn"]}}
    assert schedule["Target"]["RetryPolicy"]["MaximumRetryAttempts"] > 0


def test_schedule_can_be_created_disabled():
    # Given ScheduleEnabled=false
    schedule = props(deploy(ScheduleEnabled="false"), "ScheduleSubmitFunctionSchedule")

    # Then the schedule exists but does not fire
    assert schedule["State"] == "DISABLED"


@pytest.mark.parametrize(
    ("function", "dlq"),
    [("ScheduleSubmitFunction", "ScheduleDLQ"), ("FailureNotifyFunction", "FailureNotifyDLQ")],
)
def test_async_functions_park_failed_invocations_in_their_dlq(function, dlq):
    # Given an asynchronously invoked function
    stack = deploy()

    # Then its failed invocations end in its DLQ after two retries
    assert props(stack, function)["DeadLetterConfig"] == {"TargetArn": {"Fn::GetAtt": [dlq, "Arn"]}}
    assert props(stack, f"{function}EventInvokeConfig")["MaximumRetryAttempts"] == 2


def test_s3_submit_reads_the_intake_queue_with_partial_failures_and_bounded_concurrency():
    # Given the default stack
    mapping = props(deploy(), "S3SubmitFunctionIntake")

    # Then one bad record never fails the batch, and concurrency is capped for SubmitJob's limit
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["IntakeQueue", "Arn"]}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": "5"}
    assert mapping["BatchSize"] == "10"
    assert mapping["MaximumBatchingWindowInSeconds"] == "1"


def test_failure_rule_matches_failed_jobs_of_our_queue_only():
    # Given the default stack
    rule = props(deploy(), "FailureNotifyFunctionBatchJobFailed")

    # Then only Batch events of our queue reach the notifier, with retries and a DLQ: FAILED state
    # changes, and (Operations) blocked-queue events and RUNNABLE jobs with a blocked reason
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.batch"]
    assert pattern["detail"] == {"jobQueue": OUR_QUEUES}
    assert pattern["$or"][0] == {"detail-type": ["Batch Job State Change"], "detail": {"status": ["FAILED"]}}
    assert "EventBusName" not in rule  # the default bus
    target = rule["Targets"][0]
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["FailureNotifyDLQ", "Arn"]}}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0


EXTRA = "${AdditionalAlertQueueArns}"


def test_failure_rule_can_also_watch_other_queues():
    # Given two extra queues
    extra = ",".join(f"arn:aws:batch:us-east-1:123456789012:job-queue/{name}" for name in ("a", "b"))
    rule = props(deploy(AdditionalAlertQueueArns=extra), "FailureNotifyFunctionBatchJobFailed")

    # Then the parameter takes them, and the pattern lists our queue first, then theirs
    pattern = _sam_template()["Parameters"]["AdditionalAlertQueueArns"]["AllowedPattern"]
    assert re.fullmatch(pattern, extra)
    queues = rule["EventPattern"]["detail"]["jobQueue"]
    assert queues == {
        "Fn::Split": [
            ",",
            {"Fn::Sub": "${JobQueue},${HighPriorityJobQueue},${LowPriorityJobQueue}," + EXTRA},
        ]
    }


RULE = "FailureNotifyFunctionBatchJobFailed"  # the rule SAM generates for the BatchJobFailed event
OUR_QUEUES = [{"Ref": "JobQueue"}, {"Ref": "HighPriorityJobQueue"}, {"Ref": "LowPriorityJobQueue"}]


def test_failure_dlq_accepts_dead_letters_from_our_rule_only():
    # Given the FailureNotifyDLQ policy
    statements = props(deploy(), "FailureNotifyDLQPolicy")["PolicyDocument"]["Statement"]
    allow = [s for s in statements if s["Effect"] == "Allow"]

    # Then EventBridge may send only on behalf of the notifier's rule
    assert allow == [
        {
            "Sid": "AllowFailureRuleDeadLetters",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": {"Fn::GetAtt": ["FailureNotifyDLQ", "Arn"]},
            "Condition": {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [RULE, "Arn"]}}},
        }
    ]


# ------------------------------------------------------------------------------------------------
# S3 intake, queues and table
# ------------------------------------------------------------------------------------------------
def test_intake_bucket_is_private_encrypted_versioned_and_notifies_the_queue():
    # Given the default stack
    stack = deploy()
    bucket = props(stack, "IntakeBucket")

    # Then the bucket is locked down and every created object is announced to IntakeQueue
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    sse = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse["SSEAlgorithm"] in {"AES256", "aws:kms"}
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["NotificationConfiguration"] == {
        "QueueConfigurations": [
            {"Event": "s3:ObjectCreated:*", "Queue": {"Fn::GetAtt": ["IntakeQueue", "Arn"]}}
        ]
    }
    assert stack["Resources"]["IntakeBucket"]["DependsOn"] == "IntakeQueuePolicy"
    rules = bucket["LifecycleConfiguration"]["Rules"]
    assert [r["Id"] for r in rules] == ["abort-incomplete-multipart-uploads", "expire-array-manifests"]


def test_every_upload_is_notified_and_the_default_route_goes_to_the_function():
    # Given prefix/suffix parameters (the default job type's upload route)
    stack = deploy(UploadPrefix="incoming/", UploadSuffix=".csv")

    # Then the bucket notifies every upload (the function routes keys to job types), and the function
    # knows the default job type's route
    (config,) = props(stack, "IntakeBucket")["NotificationConfiguration"]["QueueConfigurations"]
    assert "Filter" not in config
    variables = props(stack, "S3SubmitFunction")["Environment"]["Variables"]
    assert (variables["UPLOAD_PREFIX"], variables["UPLOAD_SUFFIX"]) == ("incoming/", ".csv")


def test_upload_expiration_adds_a_lifecycle_rule():
    # Given UploadExpirationDays=7
    rules = props(deploy(UploadExpirationDays="7"), "IntakeBucket")["LifecycleConfiguration"]["Rules"]

    # Then current and old versions expire after 7 days
    expire = [r for r in rules if r["Id"] == "expire-uploads"]
    assert expire == [
        {
            "Id": "expire-uploads",
            "Status": "Enabled",
            "ExpirationInDays": "7",
            "NoncurrentVersionExpiration": {"NoncurrentDays": "7"},
        }
    ]


def test_intake_bucket_and_queues_refuse_plain_http():
    # Given the default stack
    stack = deploy()
    policies = {**of_type(stack, "AWS::S3::BucketPolicy"), **of_type(stack, "AWS::SQS::QueuePolicy")}

    # Then every bucket/queue policy denies requests without TLS
    assert len(policies) == 8
    for logical_id, policy in policies.items():
        denies = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
        assert denies, logical_id
        assert denies[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}, logical_id


def test_intake_queue_accepts_s3_notifications_from_this_account_only():
    # Given the intake queue policy
    statements = props(deploy(), "IntakeQueuePolicy")["PolicyDocument"]["Statement"]
    allow = [s for s in statements if s["Effect"] == "Allow"]

    # Then only S3, for buckets of this account, may send
    assert len(allow) == 1
    assert allow[0]["Principal"] == {"Service": "s3.amazonaws.com"}
    assert allow[0]["Action"] == "sqs:SendMessage"
    assert allow[0]["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}


def test_intake_queue_visibility_covers_six_function_timeouts_plus_the_batching_window():
    # Given the intake queue, the function timeout and the largest allowed batching window
    stack = deploy()
    queue = props(stack, "IntakeQueue")
    timeout = props(stack, "S3SubmitFunction")["Timeout"]
    max_window = _sam_template()["Parameters"]["IntakeBatchingWindowSeconds"]["MaxValue"]

    # Then a message is never redelivered while a batch is still being processed
    assert queue["VisibilityTimeout"] >= 6 * timeout + max_window
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["IntakeDLQ", "Arn"]},
        "maxReceiveCount": "5",
    }


@pytest.mark.parametrize(
    "queue", ["IntakeQueue", "IntakeDLQ", "ScheduleDLQ", "FailureNotifyDLQ", "StormQueue", "StormDLQ"]
)
def test_queues_are_encrypted_and_dlqs_keep_messages_14_days(queue):
    # Given a queue of the stack
    properties = props(deploy(), queue)

    # Then it is encrypted at rest, and dead letters are kept as long as SQS allows
    assert properties["SqsManagedSseEnabled"] is True
    if queue.endswith("DLQ"):
        assert properties["MessageRetentionPeriod"] == 1209600


def test_idempotency_table_uses_the_powertools_schema():
    # Given the idempotency table
    table = props(deploy(), "IdempotencyTable")

    # Then it matches Powertools' defaults (key "id", TTL "expiration") and is protected
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSESpecification"] == {"SSEEnabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


# ------------------------------------------------------------------------------------------------
# Alarms and outputs
# ------------------------------------------------------------------------------------------------
def test_every_dlq_and_the_intake_backlog_raise_an_alarm_on_the_topic():
    # Given the alarms of the default stack
    alarms = of_type(deploy(), "AWS::CloudWatch::Alarm").values()
    watched = {
        (a["Properties"]["MetricName"], a["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]): a[
            "Properties"
        ]
        for a in alarms
        if a["Properties"]["Namespace"] == "AWS/SQS"
    }

    # Then any dead letter, or an upload waiting 15 minutes, notifies AlarmTopic
    for dlq in ("IntakeDLQ", "ScheduleDLQ", "FailureNotifyDLQ", "StormDLQ"):
        alarm = watched[("ApproximateNumberOfMessagesVisible", dlq)]
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    backlog = watched[("ApproximateAgeOfOldestMessage", "IntakeQueue")]
    assert (backlog["Threshold"], backlog["ComparisonOperator"]) == (900, "GreaterThanThreshold")
    assert all(a["AlarmActions"] == [{"Ref": "AlarmTopic"}] for a in watched.values())


def test_the_outputs_users_and_tests_look_up_exist():
    # Given the template outputs
    outputs = _sam_template()["Outputs"]

    # Then every contract key is there; VpcId only when the stack creates the VPC
    assert set(outputs) >= REQUIRED_OUTPUTS
    assert outputs["VpcId"]["Condition"] == "CreateVpc"


def test_existing_vpc_mode_requires_subnets_and_security_groups():
    # Given the template rules
    rule = _sam_template()["Rules"]["ExistingVpcNeedsSubnetsAndSecurityGroups"]

    # Then VpcMode=Existing with empty SubnetIds/SecurityGroupIds is refused before any resource is created
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "VpcMode"}, "Existing"]}
    asserted = json.dumps(rule["Assertions"])
    assert "SubnetIds" in asserted
    assert "SecurityGroupIds" in asserted


def test_layer_builds_with_the_makefile_for_arm64_python313():
    # Given the CommonLayer definition and its Makefile
    layer = _sam_template()["Resources"]["CommonLayer"]
    makefile = (REPO_ROOT / "layers/common/Makefile").read_text(encoding="utf-8")

    # Then sam build runs build-CommonLayer, which installs Lambda-platform wheels and the package
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert layer["Properties"]["ContentUri"] == "layers/common"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert "build-CommonLayer:" in makefile
    assert "--platform manylinux2014_aarch64" in makefile
    assert "--python-version 3.13" in makefile
    assert Path(REPO_ROOT / "layers/common/requirements.txt").exists()


# ------------------------------------------------------------------------------------------------
# Operations: blocked queues, failure storms, alarms, dashboard
# ------------------------------------------------------------------------------------------------
TIME_LIMIT_REASONS = [
    "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY",
    "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE",
    "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
]


@pytest.mark.parametrize("queue", ["JobQueue", "HighPriorityJobQueue", "LowPriorityJobQueue"])
def test_each_job_queue_cancels_stuck_jobs_only_when_a_time_limit_is_set(queue):
    # Given the default stack and one with RunnableTimeLimitSeconds=3600 (the default queue keeps its
    # logical id for existing stacks, so its actions are written apart from the priority queues' loop)
    default = props(deploy(), queue)
    limited = props(deploy(RunnableTimeLimitSeconds="3600"), queue)

    # Then by default nothing is cancelled
    assert "JobStateTimeLimitActions" not in default
    # And with a limit, jobs blocking the head of the queue for a documented reason are CANCELLED
    actions = limited["JobStateTimeLimitActions"]
    assert [a["Reason"] for a in actions] == TIME_LIMIT_REASONS
    for action in actions:
        assert (action["State"], action["Action"], action["MaxTimeSeconds"]) == ("RUNNABLE", "CANCEL", "3600")
    # And the parameter only offers values Batch accepts (0 = off, else 600..86400)
    allowed = [int(v) for v in _sam_template()["Parameters"]["RunnableTimeLimitSeconds"]["AllowedValues"]]
    assert allowed[0] == 0
    assert all(600 <= v <= 86400 for v in allowed[1:])


def test_the_notifier_rule_also_takes_blocked_queue_events_and_stuck_runnable_jobs():
    # Given the notifier's one rule
    pattern = props(deploy(), RULE)["EventPattern"]
    branches = pattern["$or"]

    # Then a "Batch Job Queue Blocked" event of our queue reaches it
    assert {"detail-type": ["Batch Job Queue Blocked"]} in branches
    # And so does a RUNNABLE state change whose statusReason carries a blocked-reason code
    (stuck,) = [b for b in branches if b.get("detail", {}).get("status") == ["RUNNABLE"]]
    assert stuck["detail-type"] == ["Batch Job State Change"]
    prefixes = [p["prefix"] for p in stuck["detail"]["statusReason"]]
    assert {"CAPACITY:", "MISCONFIGURATION:", "ACTION_REQUIRED"} <= set(prefixes)
    # And nothing else: three branches, all on our queue only
    assert len(branches) == 3
    assert pattern["detail"]["jobQueue"] == OUR_QUEUES


def test_failure_notifier_keeps_its_trigger_and_gets_the_storm_settings():
    # Given the notifier
    function = _sam_template()["Resources"]["FailureNotifyFunction"]["Properties"]
    variables = props(deploy(), "FailureNotifyFunction")["Environment"]["Variables"]

    # Then its contract trigger is unchanged, and the storm/blocked settings come from parameters
    assert function["Events"]["BatchJobFailed"]["Type"] == "EventBridgeRule"
    assert function["DeadLetterQueue"] == {
        "Type": "SQS",
        "TargetArn": {"Fn::GetAtt": ["FailureNotifyDLQ", "Arn"]},
    }
    assert variables["ALERT_STATE_TABLE_NAME"] == {"Ref": "AlertStateTable"}
    assert variables["STORM_QUEUE_URL"] == {"Ref": "StormQueue"}
    assert variables["STORM_THRESHOLD"] == {"Fn::Sub": "${StormThreshold}"}
    assert variables["STORM_WINDOW_SECONDS"] == {"Fn::Sub": "${StormWindowSeconds}"}
    assert variables["BLOCKED_ALERT_QUIET_SECONDS"] == {"Fn::Sub": "${BlockedAlertQuietSeconds}"}
    assert variables["RUNNABLE_TIME_LIMIT_SECONDS"] == {"Fn::Sub": "${RunnableTimeLimitSeconds}"}


def test_a_storm_digest_always_comes_before_the_sqs_delay_limit():
    # Given the window bounds and the grace the code adds before closing a window
    window = _sam_template()["Parameters"]["StormWindowSeconds"]
    grace = 90

    # Then the close message's delay (window + grace) fits SQS's 15-minute maximum, and the grace
    # outlasts the notifier's timeout (every write to a window is done before it closes)
    assert window["MaxValue"] + grace <= 900
    assert props(deploy(), "FailureNotifyFunction")["Timeout"] < grace


def test_alert_state_is_private_to_the_alert_functions():
    # Given the statements that name the alert state table or the storm queue
    template = deploy()

    def users(reference: str) -> set[str]:
        return {
            owner
            for owner, statement in all_policy_statements(template)
            if statement["Effect"] == "Allow" and reference in json.dumps(statement.get("Resource"))
        }

    # Then only the functions that post alerts keep state there (S3SubmitFunction: its Slack post slots
    # alone), and only the notifier and the digest function use the storm queue
    assert users('"AlertStateTable"') == {
        "FailureNotifyFunctionRole",
        "StormDigestFunctionRole",
        "WatchdogFunctionRole",
        "S3SubmitFunctionRole",
    }
    s3_submit = [s for owner, s in all_policy_statements(template) if owner == "S3SubmitFunctionRole"]
    assert [s["Action"] for s in s3_submit if "AlertStateTable" in json.dumps(s["Resource"])] == [
        "dynamodb:UpdateItem"
    ]
    assert users('"StormQueue"') == {"FailureNotifyFunctionRole", "StormDigestFunctionRole"}
    table = props(template, "AlertStateTable")
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert table["SSESpecification"] == {"SSEEnabled": True}


def test_storm_digests_read_their_queue_with_partial_failures_and_a_dlq():
    # Given the digest function's event source
    mapping = props(deploy(), "StormDigestFunctionWindowClosed")
    queue = props(deploy(), "StormQueue")

    # Then a failed close is retried by SQS, then parked in StormDLQ
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["StormQueue", "Arn"]}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["StormDLQ", "Arn"]}
    assert queue["VisibilityTimeout"] >= 6 * props(deploy(), "StormDigestFunction")["Timeout"]


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_every_function_alarms_on_errors_and_throttles(function, metric):
    # Given the Lambda alarms
    alarms = [
        a["Properties"]
        for a in of_type(deploy(), "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["Namespace"] == "AWS/Lambda"
    ]

    # Then this function's metric alarms on the topic as soon as it is non-zero
    matching = [
        a
        for a in alarms
        if a["MetricName"] == metric
        and a["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function}}]
    ]
    assert len(matching) == 1
    assert matching[0]["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert (matching[0]["Threshold"], matching[0]["ComparisonOperator"]) == (0, "GreaterThanThreshold")


def test_dashboard_shows_the_business_metrics_queues_dlqs_and_function_errors():
    # Given the dashboard body as CloudFormation substitutes it
    body_template, variables = props(deploy(), "OperationsDashboard")["DashboardBody"]["Fn::Sub"]
    rendered = re.sub(
        r"\$\{([^}]+)\}", lambda m: str(variables.get(m.group(1), f"<{m.group(1)}>")), body_template
    )
    widgets = json.loads(rendered)["widgets"]
    metrics = [m for w in widgets if w["type"] == "metric" for m in w["properties"]["metrics"]]
    text = json.dumps(metrics)

    # Then the Powertools metrics are read with the namespace and dimension Powertools emits
    assert variables["Ns"] == "BatchDispatch"
    assert variables["Svc"] == "batch-dispatch"
    assert ["BatchDispatch", "JobSubmitted", "service", "batch-dispatch"] in metrics
    for name in ("DuplicateSkipped", "SubmitThrottled", "FailureNotified", "NotificationFailed"):
        assert f'"{name}"' in text
    # And every queue, DLQ and function is on it
    for queue in ("IntakeQueue", "IntakeDLQ", "ScheduleDLQ", "FailureNotifyDLQ", "StormDLQ"):
        assert variables[f"{queue}Name"] == {"Fn::GetAtt": [queue, "QueueName"]}
    for function in FUNCTIONS:
        assert f"<{function}>" in text
    # And its URL is an output
    assert "OperationsDashboard" in json.dumps(_sam_template()["Outputs"]["DashboardUrl"])


# ------------------------------------------------------------------------------------------------
# Burst mode (SubmitMode=ARRAY)
# ------------------------------------------------------------------------------------------------
def test_the_job_role_may_read_only_array_manifests():
    # Given the default stack (a job type in the catalog may use array mode whatever SubmitMode says)
    for stack in (deploy(), deploy(SubmitMode="ARRAY")):
        # Then the job role may read the manifest prefix of the manifest bucket, and nothing else
        (statement,) = role_statements(stack, "JobRole")
        assert statement["Action"] == "s3:GetObject"
        assert statement["Resource"] == {"Fn::Sub": "${ManifestBucket.Arn}/${ManifestPrefix}*"}


def test_the_s3_function_knows_its_mode_and_may_write_only_manifests():
    # Given the S3SubmitFunction of an ARRAY stack
    function = props(deploy(SubmitMode="ARRAY"), "S3SubmitFunction")
    statements = role_statements(deploy(SubmitMode="ARRAY"), "S3SubmitFunctionRole")

    # Then it is told the mode and where manifests go, and may put objects under that prefix only
    variables = function["Environment"]["Variables"]
    assert variables["SUBMIT_MODE"] == "ARRAY"
    assert variables["MANIFEST_BUCKET"] == {"Ref": "ManifestBucket"}
    puts = [s for s in statements if "s3:PutObject" in as_list(s["Action"])]
    assert [p["Resource"] for p in puts] == [{"Fn::Sub": "${ManifestBucket.Arn}/${ManifestPrefix}*"}]


def test_manifests_go_to_a_locked_down_bucket_that_notifies_nothing():
    # Given the default stack
    stack = deploy()
    bucket = props(stack, "ManifestBucket")

    # Then the manifest bucket is private, encrypted, TLS-only and empties itself, like the intake bucket
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert bucket["BucketEncryption"] == props(stack, "IntakeBucket")["BucketEncryption"]
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    (expire,) = [r for r in bucket["LifecycleConfiguration"]["Rules"] if "ExpirationInDays" in r]
    assert expire["ExpirationInDays"] == 16
    policy = props(stack, "ManifestBucketPolicy")
    (deny,) = policy["PolicyDocument"]["Statement"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    # And it sends no notifications at all: a manifest never becomes an invocation
    assert "NotificationConfiguration" not in bucket
    assert stack["Resources"]["ManifestBucket"]["DeletionPolicy"] == "Retain"
