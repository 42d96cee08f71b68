"""Attached buckets and the loop guard in the template: one EventBridge rule, the queue policy that only
takes it, read access scoped to the attached buckets' prefixes, and parameters AWS accepts.

Checked over the transformed template with its Conditions applied (tests/template/cfn.py `deploy`).
Fn::Sub, Fn::Select and Fn::Split over parameters are rendered here as CloudFormation would, so the
ARNs compared are the ones IAM would receive. AWS's limits are written out from the documentation:
- S3 bucket names: https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
- EventBridge event patterns, 2048 characters by default:
  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html
- IAM inline policies, 10,240 characters per role (whitespace not counted):
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.template.cfn import as_list, deploy, props, role_statements, sam_template

ATTACHED = "team-landing,partner.drops-2026,x9z"
PREFIX = "incoming/"
EVENT_PATTERN_LIMIT = 2048
ROLE_INLINE_POLICY_LIMIT = 10_240


def render(node: Any, parameters: dict[str, str]) -> Any:
    """Fn::Sub / Fn::Select / Fn::Split / parameter Refs rendered with `parameters` (partition aws)."""
    values = {"AWS::Partition": "aws", **parameters}
    if isinstance(node, list):
        return [render(item, parameters) for item in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Ref"} and node["Ref"] in values:
        return values[node["Ref"]]
    if set(node) == {"Fn::Split"}:
        delimiter, text = node["Fn::Split"]
        return str(render(text, parameters)).split(delimiter)
    if set(node) == {"Fn::Select"}:
        index, items = node["Fn::Select"]
        return render(items, parameters)[int(index)]
    if set(node) == {"Fn::Sub"}:
        spec = node["Fn::Sub"]
        text, variables = (spec, {}) if isinstance(spec, str) else spec
        known = {**values, **{name: render(value, parameters) for name, value in variables.items()}}
        return re.sub(r"\$\{([^}]+)\}", lambda m: str(known.get(m.group(1), m.group(0))), text)
    return {key: render(value, parameters) for key, value in node.items()}


def arns_read(stack: dict[str, Any], role: str, parameters: dict[str, str]) -> set[str]:
    """Every S3 object ARN the role may GetObject on, rendered."""
    return {
        str(resource)
        for statement in role_statements(stack, role)
        if "s3:GetObject" in as_list(statement["Action"])
        for resource in as_list(render(statement["Resource"], parameters))
    }


def test_one_rule_sends_the_attached_buckets_uploads_to_the_intake_queue():
    # Given three attached buckets
    stack = deploy(AttachedBuckets=ATTACHED)
    rule = props(stack, "AttachedBucketsRule")

    # Then one rule takes exactly their "Object Created" events from S3 and sends them to IntakeQueue
    assert render(rule["EventPattern"], {"AttachedBuckets": ATTACHED}) == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": ["team-landing", "partner.drops-2026", "x9z"]}},
    }
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["IntakeQueue", "Arn"]}
    # And without attached buckets there is no rule
    assert "AttachedBucketsRule" not in deploy()["Resources"]


def test_the_intake_queue_takes_eventbridge_messages_from_that_rule_only():
    # Given the intake queue's policy, with and without attached buckets
    with_rule = props(deploy(AttachedBuckets=ATTACHED), "IntakeQueuePolicy")["PolicyDocument"]["Statement"]
    without = props(deploy(), "IntakeQueuePolicy")["PolicyDocument"]["Statement"]

    # Then EventBridge may send only on behalf of this stack's rule, and S3 notifications still may
    events = [s for s in with_rule if s.get("Principal") == {"Service": "events.amazonaws.com"}]
    assert [(s["Effect"], s["Action"]) for s in events] == [("Allow", "sqs:SendMessage")]
    assert events[0]["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["AttachedBucketsRule", "Arn"]}}
    }
    assert any(s.get("Principal") == {"Service": "s3.amazonaws.com"} for s in with_rule)
    # And without attached buckets EventBridge may not send at all
    assert not [s for s in without if s.get("Principal") == {"Service": "events.amazonaws.com"}]


@pytest.mark.parametrize("count", [1, 2, 10])
def test_jobs_and_the_function_read_only_the_attached_buckets_upload_prefix(count):
    # Given `count` attached buckets and an upload prefix
    buckets = [f"bucket-{i:02d}" for i in range(count)]
    parameters = {"AttachedBuckets": ",".join(buckets), "UploadPrefix": PREFIX}
    stack = deploy(**parameters)

    # Then the job role and S3SubmitFunction may read exactly <bucket>/<prefix>* in each, and the
    # policy adds nothing else
    wanted = {f"arn:aws:s3:::{bucket}/{PREFIX}*" for bucket in buckets}
    policy = props(stack, "ReadAttachedBuckets")
    assert policy["Roles"] == [{"Ref": "JobRole"}, {"Ref": "S3SubmitFunctionRole"}]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert (statement["Effect"], statement["Action"]) == ("Allow", "s3:GetObject")
    assert sorted(render(statement["Resource"], parameters)) == sorted(wanted)
    # And besides them, each role reads only the stack's own buckets
    manifests, intake = "${ManifestBucket.Arn}/${ManifestPrefix}*", "${IntakeBucket.Arn}/*"
    assert arns_read(stack, "JobRole", parameters) == wanted | {manifests}
    assert arns_read(stack, "S3SubmitFunctionRole", parameters) == wanted | {manifests, intake}


def test_without_attached_buckets_no_role_reads_any_bucket_but_the_stacks():
    stack = deploy(LoopGuardMaxJobs="0")
    reads = {
        json.dumps(statement["Resource"])
        for role in ("JobRole", "S3SubmitFunctionRole")
        for statement in role_statements(stack, role)
        if "s3:GetObject" in as_list(statement["Action"])
    }

    assert reads == {json.dumps({"Fn::Sub": "${ManifestBucket.Arn}/${ManifestPrefix}*"})}


def test_the_loop_guard_reads_intake_uploads_parks_in_the_intake_dlq_and_alerts_through_slack():
    # Given the default stack (the loop guard is on) and one with it off
    on, off = deploy(), deploy(LoopGuardMaxJobs="0")
    variables = props(on, "S3SubmitFunction")["Environment"]["Variables"]

    # Then the function knows its limits, where to park and which webhook to use
    assert variables["LOOP_GUARD_MAX_JOBS"] == {"Fn::Sub": "${LoopGuardMaxJobs}"}
    assert variables["LOOP_GUARD_WINDOW_SECONDS"] == {"Fn::Sub": "${LoopGuardWindowSeconds}"}
    assert variables["INTAKE_DLQ_URL"] == {"Ref": "IntakeDLQ"}
    assert variables["SLACK_WEBHOOK_SECRET_NAME"] == "batch-dispatch/slack-webhook"
    assert variables["INTAKE_BUCKET"] == {"Ref": "IntakeBucket"}
    # And it may HeadObject the intake bucket's uploads only while the guard is on
    lineage = {"Fn::Sub": "${IntakeBucket.Arn}/*"}
    assert lineage in [s["Resource"] for s in role_statements(on, "S3SubmitFunctionRole")]
    assert lineage not in [s["Resource"] for s in role_statements(off, "S3SubmitFunctionRole")]
    # And it may send to its own DLQ and no other queue
    sends = [
        s for s in role_statements(on, "S3SubmitFunctionRole") if "sqs:SendMessage" in as_list(s["Action"])
    ]
    assert [s["Resource"] for s in sends] == [{"Fn::GetAtt": ["IntakeDLQ", "Arn"]}]
    assert {"Ref": "PostAlertsPolicy"} in props(on, "S3SubmitFunctionRole")["ManagedPolicyArns"]


def test_the_output_prefix_reaches_the_function_and_the_job():
    stack = deploy(OutputPrefix="results/")
    environment = props(stack, "JobDefinition")["ContainerProperties"]["Environment"]

    assert props(stack, "S3SubmitFunction")["Environment"]["Variables"]["OUTPUT_PREFIX"] == "results/"
    assert {"Name": "BATCH_DISPATCH_OUTPUT_PREFIX", "Value": "results/"} in environment
    without = props(deploy(), "JobDefinition")["ContainerProperties"]["Environment"]
    assert [e["Name"] for e in without] == ["ENVIRONMENT"]


# --- parameters AWS accepts ---------------------------------------------------------------------


def s3_accepts(name: str) -> bool:
    """S3's general purpose bucket naming rules (the ones a pattern can state)."""
    return (
        3 <= len(name) <= 63
        and re.fullmatch(r"[a-z0-9][a-z0-9.-]*[a-z0-9]", name) is not None
        and ".." not in name
    )


@pytest.mark.parametrize(
    "value",
    [
        "team-landing",
        "a1b",
        "my.bucket.name",
        "x" * 63,
        ",".join(f"bucket-{i}" for i in range(10)),
        ",".join(f"{i}" * 63 for i in range(10)),
    ],
)
def test_attached_bucket_lists_s3_would_accept_are_accepted(value):
    spec = sam_template()["Parameters"]["AttachedBuckets"]

    assert len(value) <= spec["MaxLength"]
    assert re.fullmatch(spec["AllowedPattern"], value)
    assert all(s3_accepts(name) for name in value.split(","))


@pytest.mark.parametrize(
    "value",
    [
        "Team-Landing",  # upper case
        "ab",  # too short
        "x" * 64,  # too long
        "team_landing",  # underscore
        "-team",
        "team-",
        "team-landing, partner",  # a space after the comma
        "team-landing,",  # an empty name
        ",".join(f"bucket-{i}" for i in range(11)),  # more than the ten the IAM statement names
    ],
)
def test_attached_bucket_lists_are_refused_before_anything_is_created(value):
    spec = sam_template()["Parameters"]["AttachedBuckets"]

    assert re.fullmatch(spec["AllowedPattern"], value) is None


def test_the_longest_accepted_list_fits_the_rules_event_pattern():
    names = ",".join(f"{i}" * 63 for i in range(10))
    pattern = render(
        props(deploy(AttachedBuckets=names), "AttachedBucketsRule")["EventPattern"],
        {"AttachedBuckets": names},
    )

    assert len(json.dumps(pattern)) <= EVENT_PATTERN_LIMIT


def test_ten_buckets_with_a_long_upload_prefix_fit_the_job_roles_inline_policies():
    # Given the most attached buckets, with the longest names, a 700-character upload prefix (the limit
    # docs/configuration.md states) and a long manifest prefix
    parameters = {
        "AttachedBuckets": ",".join(f"{i}" * 63 for i in range(10)),
        "UploadPrefix": "p" * 700,
        "ManifestPrefix": "m" * 200 + "/",
    }
    stack = deploy(**parameters)

    # When IAM counts the job role's inline policies (its own and the AWS::IAM::Policy resources)
    documents = [p["PolicyDocument"] for p in props(stack, "JobRole")["Policies"]]
    documents.append(props(stack, "ReadAttachedBuckets")["PolicyDocument"])
    rendered = render(documents, {**parameters, "ManifestBucket.Arn": "arn:aws:s3:::" + "b" * 63})

    # Then they fit IAM's quota, with room for job types' own
    size = len(re.sub(r"\s", "", json.dumps(rendered)))
    assert size <= ROLE_INLINE_POLICY_LIMIT - 1000


@pytest.mark.parametrize(("value", "accepted"), [("0", True), ("5", True), ("100", True), ("101", False)])
def test_the_loop_guard_limit_is_bounded(value, accepted):
    spec = sam_template()["Parameters"]["LoopGuardMaxJobs"]

    assert (spec["MinValue"] <= int(value) <= spec["MaxValue"]) is accepted
