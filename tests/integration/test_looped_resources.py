"""The resources template.yaml writes as Fn::ForEach loops exist in the emulator's stack, as CloudFormation
would create them: the loops expanded, every other intrinsic resolved by moto against the real stack."""

from __future__ import annotations

import json

import boto3
import pytest

from emulator.core import Emulator
from tests.template.cfn import FUNCTIONS

pytestmark = pytest.mark.integration

TLS_ONLY_QUEUES = ["IntakeDLQ", "ScheduleDLQ", "FailureNotifyDLQ", "StormDLQ", "StormQueue"]


def test_each_function_log_group_is_named_after_the_deployed_stack(local: Emulator):
    # Given the log groups of the deployed stack
    groups = {
        group["logGroupName"]: group.get("retentionInDays")
        for group in boto3.client("logs").describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"]
    }

    # Then each function has its own, under the stack's real name, kept LogRetentionDays (30) days
    for function in FUNCTIONS:
        assert groups[f"/aws/lambda/{local.stack.name}/{function}"] == 30


@pytest.mark.parametrize("queue", TLS_ONLY_QUEUES)
def test_looped_queues_are_deployed_with_their_tls_only_policy(local: Emulator, queue: str):
    # Given one of the queues a loop creates or gives a policy
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=local.stack.queue_url(queue), AttributeNames=["All"]
    )["Attributes"]
    statements = json.loads(attributes["Policy"])["Statement"]

    # Then it refuses plain HTTP on its own ARN, and dead letters are kept 14 days
    deny = next(s for s in statements if s["Sid"] == "DenyInsecureTransport")
    assert deny["Resource"] == attributes["QueueArn"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    if queue.endswith("DLQ"):
        assert attributes["MessageRetentionPeriod"] == "1209600"
    # And the failure rule's dead-letter queue still lets that rule (and only it) send
    allows = [s for s in statements if s["Effect"] == "Allow"]
    if queue == "FailureNotifyDLQ":
        assert [s["Principal"] for s in allows] == [{"Service": "events.amazonaws.com"}]
    else:
        assert allows == []
