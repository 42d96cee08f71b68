"""Reworking the template must deploy the same resources: logical ids and types, per parameter choice.

BEFORE is what the template created before it was de-duplicated and hardened (recorded from the
transformed template at that commit). A logical id that disappears or changes type makes CloudFormation
delete and re-create the resource on the next deploy (a new queue URL, a new bucket, lost DLQ messages),
so every difference must be one of the deliberate additions listed in ADDED, each with its reason.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.template.cfn import COMPUTE_TYPES, VPC_MODES, combination, deploy

# Created for every parameter choice.
BEFORE_EVERYWHERE = {
    "AlarmTopic": "AWS::SNS::Topic",
    "AlertStateTable": "AWS::DynamoDB::Table",
    # SAM names a layer version after a hash of its properties: a new version (content, or its
    # Description, which now names only what the layer holds) gets a new id, and replacing an
    # immutable layer version is what every deploy of new layer code does anyway.
    "CommonLayer7bfc3292f5": "AWS::Lambda::LayerVersion",
    "ComputeEnvironment": "AWS::Batch::ComputeEnvironment",
    "ExecutionRole": "AWS::IAM::Role",
    "FailureNotifyDLQ": "AWS::SQS::Queue",
    "FailureNotifyDLQAlarm": "AWS::CloudWatch::Alarm",
    "FailureNotifyDLQPolicy": "AWS::SQS::QueuePolicy",
    "FailureNotifyErrorsAlarm": "AWS::CloudWatch::Alarm",
    "FailureNotifyFunction": "AWS::Lambda::Function",
    "FailureNotifyFunctionBatchJobFailed": "AWS::Events::Rule",
    "FailureNotifyFunctionBatchJobFailedPermission": "AWS::Lambda::Permission",
    "FailureNotifyFunctionEventInvokeConfig": "AWS::Lambda::EventInvokeConfig",
    "FailureNotifyFunctionRole": "AWS::IAM::Role",
    "FailureNotifyLogGroup": "AWS::Logs::LogGroup",
    "FailureNotifyThrottlesAlarm": "AWS::CloudWatch::Alarm",
    "IdempotencyTable": "AWS::DynamoDB::Table",
    "IntakeBucket": "AWS::S3::Bucket",
    "IntakeBucketPolicy": "AWS::S3::BucketPolicy",
    "IntakeDLQ": "AWS::SQS::Queue",
    "IntakeDLQAlarm": "AWS::CloudWatch::Alarm",
    "IntakeDLQPolicy": "AWS::SQS::QueuePolicy",
    "IntakeQueue": "AWS::SQS::Queue",
    "IntakeQueueAgeAlarm": "AWS::CloudWatch::Alarm",
    "IntakeQueuePolicy": "AWS::SQS::QueuePolicy",
    "JobDefinition": "AWS::Batch::JobDefinition",
    "JobLogGroup": "AWS::Logs::LogGroup",
    "JobQueue": "AWS::Batch::JobQueue",
    "JobRole": "AWS::IAM::Role",
    "OperationsDashboard": "AWS::CloudWatch::Dashboard",
    "S3SubmitErrorsAlarm": "AWS::CloudWatch::Alarm",
    "S3SubmitFunction": "AWS::Lambda::Function",
    "S3SubmitFunctionIntake": "AWS::Lambda::EventSourceMapping",
    "S3SubmitFunctionRole": "AWS::IAM::Role",
    "S3SubmitLogGroup": "AWS::Logs::LogGroup",
    "S3SubmitThrottlesAlarm": "AWS::CloudWatch::Alarm",
    "ScheduleDLQ": "AWS::SQS::Queue",
    "ScheduleDLQAlarm": "AWS::CloudWatch::Alarm",
    "ScheduleDLQPolicy": "AWS::SQS::QueuePolicy",
    "ScheduleSubmitErrorsAlarm": "AWS::CloudWatch::Alarm",
    "ScheduleSubmitFunction": "AWS::Lambda::Function",
    "ScheduleSubmitFunctionEventInvokeConfig": "AWS::Lambda::EventInvokeConfig",
    "ScheduleSubmitFunctionRole": "AWS::IAM::Role",
    "ScheduleSubmitFunctionSchedule": "AWS::Scheduler::Schedule",
    "ScheduleSubmitFunctionScheduleRole": "AWS::IAM::Role",
    "ScheduleSubmitLogGroup": "AWS::Logs::LogGroup",
    "ScheduleSubmitThrottlesAlarm": "AWS::CloudWatch::Alarm",
    "StormDLQ": "AWS::SQS::Queue",
    "StormDLQAlarm": "AWS::CloudWatch::Alarm",
    "StormDLQPolicy": "AWS::SQS::QueuePolicy",
    "StormDigestErrorsAlarm": "AWS::CloudWatch::Alarm",
    "StormDigestFunction": "AWS::Lambda::Function",
    "StormDigestFunctionRole": "AWS::IAM::Role",
    "StormDigestFunctionWindowClosed": "AWS::Lambda::EventSourceMapping",
    "StormDigestLogGroup": "AWS::Logs::LogGroup",
    "StormDigestThrottlesAlarm": "AWS::CloudWatch::Alarm",
    "StormQueue": "AWS::SQS::Queue",
    "StormQueuePolicy": "AWS::SQS::QueuePolicy",
    "SubmitJobsPolicy": "AWS::IAM::ManagedPolicy",
}
_PUBLIC_NETWORK = {
    "Vpc": "AWS::EC2::VPC",
    "InternetGateway": "AWS::EC2::InternetGateway",
    "InternetGatewayAttachment": "AWS::EC2::VPCGatewayAttachment",
    "JobSecurityGroup": "AWS::EC2::SecurityGroup",
    "PublicDefaultRoute": "AWS::EC2::Route",
    "PublicRouteTable": "AWS::EC2::RouteTable",
    "PublicSubnet1": "AWS::EC2::Subnet",
    "PublicSubnet1RouteTableAssociation": "AWS::EC2::SubnetRouteTableAssociation",
    "PublicSubnet2": "AWS::EC2::Subnet",
    "PublicSubnet2RouteTableAssociation": "AWS::EC2::SubnetRouteTableAssociation",
}
BEFORE_PER_VPC_MODE = {
    "CreatePublic": _PUBLIC_NETWORK,
    "CreatePrivateWithNat": {
        **_PUBLIC_NETWORK,
        "NatEip": "AWS::EC2::EIP",
        "NatGateway": "AWS::EC2::NatGateway",
        "PrivateDefaultRoute": "AWS::EC2::Route",
        "PrivateRouteTable": "AWS::EC2::RouteTable",
        "PrivateSubnet1": "AWS::EC2::Subnet",
        "PrivateSubnet1RouteTableAssociation": "AWS::EC2::SubnetRouteTableAssociation",
        "PrivateSubnet2": "AWS::EC2::Subnet",
        "PrivateSubnet2RouteTableAssociation": "AWS::EC2::SubnetRouteTableAssociation",
    },
    "Existing": {},
}
BEFORE_WITH_INSTANCES = {"InstanceRole": "AWS::IAM::Role", "InstanceProfile": "AWS::IAM::InstanceProfile"}

# Deliberate additions: (logical id, type) -> (why, the parameter choices that create it).
ADDED: dict[tuple[str, str], tuple[str, Callable[[dict[str, str]], bool]]] = {
    ("PostAlertsPolicy", "AWS::IAM::ManagedPolicy"): (
        "the Slack-secret and idempotency statements both alert functions repeated, held once",
        lambda chosen: True,
    ),
    ("InstanceLaunchTemplate", "AWS::EC2::LaunchTemplate"): (
        "EC2/SPOT instances answer only IMDSv2 requests, with a hop limit of 1",
        lambda chosen: chosen.get("ComputeType", "FARGATE") != "FARGATE",
    ),
    ("JobTypePlatform", "AWS::SSM::Parameter"): (
        "the job catalog: what every job type shares, passed to each job type's nested application",
        lambda chosen: True,
    ),
    ("HighPriorityJobQueue", "AWS::Batch::JobQueue"): (
        "the job catalog: high-priority job types' queue over the same compute environment",
        lambda chosen: True,
    ),
    ("LowPriorityJobQueue", "AWS::Batch::JobQueue"): (
        "the job catalog: low-priority job types' queue over the same compute environment",
        lambda chosen: True,
    ),
    **{
        resource: (
            "the watchdog: late job types, long-running jobs and missed ticks, checked every WatchdogRate",
            lambda chosen: True,
        )
        for resource in [
            ("WatchdogFunction", "AWS::Lambda::Function"),
            ("WatchdogFunctionRole", "AWS::IAM::Role"),
            ("WatchdogFunctionCheck", "AWS::Scheduler::Schedule"),
            ("WatchdogFunctionScheduleRole", "AWS::IAM::Role"),
            ("WatchdogFunctionEventInvokeConfig", "AWS::Lambda::EventInvokeConfig"),
            ("WatchdogLogGroup", "AWS::Logs::LogGroup"),
            ("WatchdogErrorsAlarm", "AWS::CloudWatch::Alarm"),
            ("WatchdogThrottlesAlarm", "AWS::CloudWatch::Alarm"),
        ]
    },
    ("ExecutionRoleReadJobSecret", "AWS::IAM::Policy"): (
        "the execution role's secret read, a policy of its own so the role's other grants stay unconditional",
        lambda chosen: bool(chosen.get("JobSecretArn")),
    ),
    ("SlackActionsFunction", "AWS::Lambda::Function"): (
        "the Rerun button's clicks; in every stack (the emulator describes every function), reachable "
        "only through its function URL, which EnableRerunButton creates",
        lambda chosen: True,
    ),
    ("SlackActionsFunctionRole", "AWS::IAM::Role"): (
        "SlackActionsFunction's own role: the signing secret, our jobs and queues, manifests, idempotency",
        lambda chosen: True,
    ),
    ("SlackActionsLogGroup", "AWS::Logs::LogGroup"): (
        "SlackActionsFunction's log group, from the per-function loop",
        lambda chosen: True,
    ),
    ("SlackActionsErrorsAlarm", "AWS::CloudWatch::Alarm"): (
        "SlackActionsFunction's Errors alarm, from the per-function loop",
        lambda chosen: True,
    ),
    ("SlackActionsThrottlesAlarm", "AWS::CloudWatch::Alarm"): (
        "SlackActionsFunction's Throttles alarm, from the per-function loop",
        lambda chosen: True,
    ),
    ("SlackActionsFunctionUrl", "AWS::Lambda::Url"): (
        "EnableRerunButton: the Slack app's Interactivity Request URL",
        lambda chosen: chosen.get("EnableRerunButton") == "true",
    ),
    ("SlackActionsFunctionUrlPublicAccess", "AWS::Lambda::Permission"): (
        "EnableRerunButton: anyone may call the URL (InvokeFunctionUrl); Slack's signature authenticates",
        lambda chosen: chosen.get("EnableRerunButton") == "true",
    ),
    ("SlackActionsFunctionUrlInvokeAccess", "AWS::Lambda::Permission"): (
        "EnableRerunButton: InvokeFunction through the URL only, which URLs created since October 2025 need",
        lambda chosen: chosen.get("EnableRerunButton") == "true",
    ),
    ("ManifestBucket", "AWS::S3::Bucket"): (
        "array mode's manifests in a bucket that sends no notifications: they never reach the function",
        lambda chosen: True,
    ),
    ("ManifestBucketPolicy", "AWS::S3::BucketPolicy"): (
        "the manifest bucket refuses plain HTTP, like the intake bucket",
        lambda chosen: True,
    ),
    ("AttachedBucketsRule", "AWS::Events::Rule"): (
        "uploads to buckets the stack does not own (AttachedBuckets), through EventBridge to IntakeQueue",
        lambda chosen: bool(chosen.get("AttachedBuckets")),
    ),
    ("ReadAttachedBuckets", "AWS::IAM::Policy"): (
        "the jobs and S3SubmitFunction read the attached buckets' UploadPrefix, a policy only with them",
        lambda chosen: bool(chosen.get("AttachedBuckets")),
    ),
}


def before(compute_type: str, vpc_mode: str) -> set[tuple[str, str]]:
    resources = {**BEFORE_EVERYWHERE, **BEFORE_PER_VPC_MODE[vpc_mode]}
    if compute_type != "FARGATE":
        resources.update(BEFORE_WITH_INSTANCES)
    return set(resources.items())


def added(**chosen: str) -> set[tuple[str, str]]:
    return {resource for resource, (_, creates) in ADDED.items() if creates(chosen)}


def created(**overrides: str) -> set[tuple[str, str]]:
    return {(logical_id, r["Type"]) for logical_id, r in deploy(**overrides)["Resources"].items()}


def test_the_default_stack_keeps_every_logical_id_and_type():
    # Given the default parameters (FARGATE, CreatePublic)
    # When the template is transformed and its conditions applied
    now = created()

    # Then nothing was removed or changed type, and every new resource is a listed addition
    assert before("FARGATE", "CreatePublic") - now == set()
    assert now - before("FARGATE", "CreatePublic") == added()


@pytest.mark.parametrize("vpc_mode", VPC_MODES)
@pytest.mark.parametrize("compute_type", COMPUTE_TYPES)
def test_every_compute_type_and_network_keeps_every_logical_id_and_type(compute_type, vpc_mode):
    # Given a ComputeType x VpcMode choice (whole vCPUs, which EC2 and SPOT need)
    chosen = combination(compute_type, vpc_mode, JobVcpu="1", JobMemory="2048")
    now = created(**chosen)

    # Then it creates what it created before, plus only the listed additions
    assert before(compute_type, vpc_mode) - now == set()
    assert now - before(compute_type, vpc_mode) == added(**chosen)


def test_a_job_secret_adds_only_its_read_policy():
    chosen = {"JobSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:job-AbCdEf"}

    assert created(**chosen) - before("FARGATE", "CreatePublic") == added(**chosen)


def test_the_rerun_button_adds_only_its_url_and_its_two_permissions():
    chosen = {"EnableRerunButton": "true"}

    assert created(**chosen) - before("FARGATE", "CreatePublic") == added(**chosen)
    assert added(**chosen) - added() == {
        ("SlackActionsFunctionUrl", "AWS::Lambda::Url"),
        ("SlackActionsFunctionUrlPublicAccess", "AWS::Lambda::Permission"),
        ("SlackActionsFunctionUrlInvokeAccess", "AWS::Lambda::Permission"),
    }


def test_attached_buckets_add_only_their_rule_and_read_policy():
    chosen = {"AttachedBuckets": "team-landing,partner-drops"}

    assert created(**chosen) - before("FARGATE", "CreatePublic") == added(**chosen)
    assert added(**chosen) - added() == {
        ("AttachedBucketsRule", "AWS::Events::Rule"),
        ("ReadAttachedBuckets", "AWS::IAM::Policy"),
    }
