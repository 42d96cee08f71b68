"""What a real account needs that the emulator cannot show: concurrency, metadata access, deletion order,
retained resources, Batch's retry matching, EventBridge limits.

Each test names the AWS behaviour it relies on; the links are in the template next to the setting.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import REPO_ROOT, load_event
from tests.template.cfn import (
    COMPUTE_TYPES,
    as_list,
    combination,
    deploy,
    props,
    rules_refusing,
    sam_template,
)


# ------------------------------------------------------------------------------------------------
# A failure storm cannot take the account's concurrency (reserved concurrency)
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("function", "parameter", "default"),
    [
        ("FailureNotifyFunction", "NotifierReservedConcurrency", "5"),
        ("StormDigestFunction", "StormDigestReservedConcurrency", "2"),
    ],
)
def test_alert_functions_reserve_and_cap_their_concurrency(function, parameter, default):
    # Given the default stack and one that opts out of the reservation
    reserved = props(deploy(), function)
    unreserved = props(deploy(**{parameter: "0"}), function)

    # Then by default the function gets (and is capped at) its reservation; 0 leaves it unreserved
    assert str(sam_template()["Parameters"][parameter]["Default"]) == default
    assert reserved["ReservedConcurrentExecutions"] == default
    assert "ReservedConcurrentExecutions" not in unreserved


def test_throttled_failure_events_wait_within_the_notifiers_event_age():
    # Given the notifier's asynchronous invocation settings and its reservation's description
    invoke_config = props(deploy(), "FailureNotifyFunctionEventInvokeConfig")
    description = sam_template()["Parameters"]["NotifierReservedConcurrency"]["Description"]

    # Then events above the cap are retried by Lambda for the documented 6 hours, not dropped
    assert invoke_config["MaximumEventAgeInSeconds"] == 6 * 3600
    assert "retries them for up to 6 hours" in description


@pytest.mark.parametrize(("reserved", "refused"), [("0", False), ("1", True), ("2", False), ("10", False)])
def test_the_digest_reservation_covers_its_two_pollers(reserved, refused):
    # Given a digest queue polled with MaximumConcurrency 2
    mapping = props(deploy(), "StormDigestFunctionWindowClosed")
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 2}

    # Then a reservation of 1 (which would throttle a poller) is refused before deploying
    assert bool(rules_refusing(StormDigestReservedConcurrency=reserved)) is refused


# ------------------------------------------------------------------------------------------------
# EC2/SPOT instances: IMDSv2 only, hop limit 1
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("compute_type", COMPUTE_TYPES)
def test_instances_answer_only_imdsv2_within_one_hop(compute_type):
    # Given a stack of this compute type
    stack = deploy(**combination(compute_type, "CreatePublic"))
    compute = props(stack, "ComputeEnvironment")["ComputeResources"]

    if compute_type == "FARGATE":
        # Then Fargate (no instances) gets no launch template
        assert "LaunchTemplate" not in compute
        assert "InstanceLaunchTemplate" not in stack["Resources"]
        return
    # Then the instances start from a launch template that requires session tokens, one hop away
    assert compute["LaunchTemplate"] == {
        "LaunchTemplateId": {"Ref": "InstanceLaunchTemplate"},
        "Version": {"Fn::GetAtt": ["InstanceLaunchTemplate", "LatestVersionNumber"]},
    }
    options = props(stack, "InstanceLaunchTemplate")["LaunchTemplateData"]["MetadataOptions"]
    assert options == {"HttpEndpoint": "enabled", "HttpTokens": "required", "HttpPutResponseHopLimit": 1}


# ------------------------------------------------------------------------------------------------
# Deleting the stack: the compute environment goes before the internet gateway and routes
# ------------------------------------------------------------------------------------------------
def _references(node: Any) -> set[str]:
    """Logical ids a resource depends on through Ref, Fn::GetAtt and Fn::Sub (anywhere, Metadata too)."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else value.split(".")[0])
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                found |= {name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", text)}
            found |= _references(value)
    elif isinstance(node, list):
        for item in node:
            found |= _references(item)
    return found


def depends_on(stack: dict[str, Any], logical_id: str) -> set[str]:
    """Every resource CloudFormation creates before (and so deletes after) this one."""
    resources = stack["Resources"]
    seen: set[str] = set()
    pending = [logical_id]
    while pending:
        resource = resources[pending.pop()]
        direct = _references(resource) | set(as_list(resource.get("DependsOn", [])))
        for name in direct & set(resources) - seen:
            seen.add(name)
            pending.append(name)
    return seen


@pytest.mark.parametrize(
    ("vpc_mode", "deleted_after"),
    [
        ("CreatePublic", {"InternetGatewayAttachment", "PublicDefaultRoute"}),
        (
            "CreatePrivateWithNat",
            {"InternetGatewayAttachment", "PublicDefaultRoute", "PrivateDefaultRoute", "NatGateway"},
        ),
        ("Existing", set()),
    ],
)
@pytest.mark.parametrize("compute_type", COMPUTE_TYPES)
def test_the_compute_environment_is_deleted_before_the_way_out(compute_type, vpc_mode, deleted_after):
    # Given a stack with this network
    stack = deploy(**combination(compute_type, vpc_mode))

    # When CloudFormation orders the deletion (the reverse of creation)
    before_compute = depends_on(stack, "ComputeEnvironment")

    # Then the gateway attachment and default routes outlive the compute environment's instances/tasks
    assert deleted_after <= before_compute
    # And every reference points at a resource that exists for this choice
    assert before_compute <= set(stack["Resources"])


# ------------------------------------------------------------------------------------------------
# The retained intake bucket keeps its TLS-only policy
# ------------------------------------------------------------------------------------------------
def test_the_intake_bucket_policy_is_retained_with_the_bucket():
    # Given the intake bucket and its policy as written
    resources = sam_template()["Resources"]

    # Then deleting or replacing the stack leaves both (the bucket holds the uploads)
    for logical_id in ("IntakeBucket", "IntakeBucketPolicy"):
        assert resources[logical_id]["DeletionPolicy"] == "Retain", logical_id
        assert resources[logical_id]["UpdateReplacePolicy"] == "Retain", logical_id
    statements = props(deploy(), "IntakeBucketPolicy")["PolicyDocument"]["Statement"]
    assert [s["Sid"] for s in statements] == ["DenyInsecureTransport"]


# ------------------------------------------------------------------------------------------------
# Batch retries infrastructure failures, wherever Batch reports them, and nothing else
# ------------------------------------------------------------------------------------------------
def _glob(pattern: str, text: str | None) -> bool:
    """Batch's EvaluateOnExit patterns: exact, or a prefix when they end with "*"."""
    text = text or ""
    return text.startswith(pattern[:-1]) if pattern.endswith("*") else text == pattern


def batch_decides(
    rules: list[dict[str, str]], status_reason: str, reason: str | None, exit_code: int | None
) -> str:
    """EvaluateOnExit: the first entry whose given conditions all match decides; none matching retries."""
    for rule in rules:
        matches = [
            _glob(rule["OnStatusReason"], status_reason) if "OnStatusReason" in rule else True,
            _glob(rule["OnReason"], reason) if "OnReason" in rule else True,
            _glob(rule["OnExitCode"], None if exit_code is None else str(exit_code))
            if "OnExitCode" in rule
            else True,
        ]
        if all(matches):
            return rule["Action"]
    return "RETRY"


def _attempt_shapes(event_file: str) -> list[tuple[str, str | None, int | None]]:
    """(status reason, container reason, exit code) of the last attempt, with the job's status reason
    as well as the attempt's: which one Batch matches is not documented, so both must decide alike."""
    detail = load_event(event_file)["detail"]
    attempt = detail["attempts"][-1]
    container = attempt.get("container", {})
    return [
        (status_reason, container.get("reason"), container.get("exitCode"))
        for status_reason in {attempt.get("statusReason", ""), detail.get("statusReason", "")}
    ]


INFRASTRUCTURE_FAILURES = [
    # Spot reclaim or instance failure (no container result)
    ("Host EC2 (instance i-0abc123) terminated.", None, None),
    # An image that could not be pulled: the task never started, the container says why
    (
        "Task failed to start",
        "CannotPullContainerError: pull image manifest has been retried 5 time(s)",
        None,
    ),
    # Fargate could not fetch secrets or registry auth through its network interface
    ("ResourceInitializationError: unable to pull secrets or registry auth: execution resource", None, None),
    ("Task failed to start", "ResourceInitializationError: unable to pull secrets or registry auth", None),
]
APPLICATION_FAILURES = [
    ("Essential container in task exited", None, 1),
    ("Essential container in task exited", "OutOfMemoryError: Container killed due to memory usage", 137),
    ("Job attempt duration exceeded timeout", None, None),
]


@pytest.mark.parametrize(
    "failure", INFRASTRUCTURE_FAILURES + _attempt_shapes("batch/job-failed-never-running.json")
)
def test_infrastructure_failures_are_retried(failure):
    rules = props(deploy(), "JobDefinition")["RetryStrategy"]["EvaluateOnExit"]

    assert batch_decides(rules, *failure) == "RETRY"


@pytest.mark.parametrize("failure", APPLICATION_FAILURES + _attempt_shapes("batch/job-failed-container.json"))
def test_application_failures_fail_the_job_at_once(failure):
    rules = props(deploy(), "JobDefinition")["RetryStrategy"]["EvaluateOnExit"]

    assert batch_decides(rules, *failure) == "EXIT"


def test_the_retry_strategy_fits_batchs_limits_and_uses_awss_own_start_failure_match():
    rules = props(deploy(), "JobDefinition")["RetryStrategy"]["EvaluateOnExit"]

    assert len(rules) <= 5
    assert {"OnStatusReason": "Task failed to start*", "Action": "RETRY"} in rules
    assert rules[-1] == {"OnReason": "*", "Action": "EXIT"}


# ------------------------------------------------------------------------------------------------
# The notifier's event pattern stays within EventBridge's 2048 characters
# ------------------------------------------------------------------------------------------------
EVENT_PATTERN_LIMIT = 2048  # EventBridge's default quota (characters)
LONGEST_QUEUE_ARN = "arn:aws-us-gov:batch:ap-southeast-5:123456789012:job-queue/" + "q" * 128


def _fill(arn_of: Callable[[int], str], limit: int) -> str:
    """As many queue ARNs as fit in `limit` characters, comma-separated."""
    arns: list[str] = []
    while len(",".join([*arns, arn_of(len(arns))])) <= limit:
        arns.append(arn_of(len(arns)))
    return ",".join(arns)


@pytest.mark.parametrize(
    "arn_of",
    [
        lambda i: f"arn:aws:batch:us-east-1:123456789012:job-queue/{i}",
        lambda i: f"arn:aws-us-gov:batch:ap-southeast-5:123456789012:job-queue/{i:0>128}",
    ],
    ids=["many-short-arns", "few-long-arns"],
)
def test_the_longest_accepted_alert_queue_list_fits_the_event_pattern(arn_of):
    # Given the longest AdditionalAlertQueueArns the parameter accepts, of short or long ARNs
    spec = sam_template()["Parameters"]["AdditionalAlertQueueArns"]
    extra = _fill(arn_of, spec["MaxLength"])
    assert re.fullmatch(spec["AllowedPattern"], extra)

    # When CloudFormation renders the rule's pattern, with our own three queues' ARNs as long as they
    # can be
    pattern = props(deploy(AdditionalAlertQueueArns=extra), "FailureNotifyFunctionBatchJobFailed")[
        "EventPattern"
    ]
    pattern["detail"]["jobQueue"] = [LONGEST_QUEUE_ARN] * 3 + extra.split(",")

    # Then EventBridge accepts it (counted with JSON's spaces, more than it will send)
    assert len(json.dumps(pattern)) <= EVENT_PATTERN_LIMIT


def test_the_alert_queue_limit_is_told_as_the_template_enforces_it():
    # Given the parameter's real limit, and how many us-east-1 queue ARNs it holds with 128- and
    # 10-character queue names
    spec = sam_template()["Parameters"]["AdditionalAlertQueueArns"]
    limit = spec["MaxLength"]
    long_names = len(
        _fill(lambda i: f"arn:aws:batch:us-east-1:123456789012:job-queue/{i:0>128}", limit).split(",")
    )
    short_names = len(
        _fill(lambda i: f"arn:aws:batch:us-east-1:123456789012:job-queue/{i:0>10}", limit).split(",")
    )
    docs = (REPO_ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    (row,) = [line for line in docs.splitlines() if line.startswith("| `AdditionalAlertQueueArns` |")]

    # Then the parameter's texts and the configuration page give that limit and those counts
    for text in (spec["ConstraintDescription"], spec["Description"], row):
        assert f"{limit} characters" in text
    for text in (spec["Description"], row):
        assert f"{long_names} queues with 128-character names" in text
        assert f"{short_names} with 10-character names" in text


@pytest.mark.parametrize(
    "value",
    [
        "arn:aws:batch:us-east-1:123456789012:job-queue/a, arn:aws:batch:us-east-1:123456789012:job-queue/b",
        "arn:aws:sqs:us-east-1:123456789012:not-a-job-queue",
        "job-queue-name",
    ],
)
def test_alert_queues_must_be_job_queue_arns(value):
    pattern = sam_template()["Parameters"]["AdditionalAlertQueueArns"]["AllowedPattern"]

    assert re.fullmatch(pattern, value) is None
