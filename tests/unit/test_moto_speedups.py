"""bench/moto_speedups.py changes moto's cost, not its answers: the same results through the API.

The burst benchmark can run on these speedups (`--fast-moto`); the rest of the suite never does.
Each test runs on moto as released and again with the speedups installed (undone afterwards), and
pins the answers they could get wrong: parsed requests, condition checks with changing values, queue
counts, receipt handles, and what the event source mapping's pollers rely on (over HTTP, and the
in-process `DirectQueue` the benchmark's pollers use with the speedups).
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from bench import moto_speedups
from bench.moto_speedups import DirectQueue
from emulator.mapping_queue import MappingQueue, PollerQueue
from emulator.moto_server import ACCOUNT_ID, REGION


@pytest.fixture(params=["moto as released", "with speedups"])
def aws(request: pytest.FixtureRequest) -> Iterator[None]:
    speedups = moto_speedups.installed() if request.param == "with speedups" else contextlib.nullcontext()
    with speedups, mock_aws():
        yield
    assert moto_speedups.installed_speedups() == []


@pytest.fixture
def dynamodb(aws: None) -> Any:
    """A client of moto's DynamoDB with table "t" (hash key "id")."""
    client: Any = boto3.client("dynamodb", region_name="us-east-1")
    client.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return client


def _parse(operation: str, service: str, body: dict[str, Any]) -> Any:
    from moto.core import parse
    from moto.core.responses import get_service_model

    model = get_service_model(service).operation_model(operation)
    parser_class = parse.RestJSONParser if service == "batch" else parse.JSONParser
    request = {"method": "POST", "values": {}, "headers": {}, "url_path": "/", "url_params": {}}
    return parser_class(model).parse({**request, "body": json.dumps(body).encode()})


REQUESTS = [
    (
        "TransactWriteItems",
        "dynamodb",
        {
            "TransactItems": [
                {
                    "Put": {
                        "TableName": "t",
                        "Item": {
                            "id": {"S": "a"},
                            "n": {"N": "1"},
                            "blob": {"B": base64.b64encode(b"\x00\x01").decode()},
                            "nested": {"M": {"l": {"L": [{"S": "x"}, {"NULL": True}, {"BOOL": False}]}}},
                            "set": {"SS": ["b", "a"]},
                        },
                        "ConditionExpression": "attribute_not_exists(#id) OR #e < :now",
                        "ExpressionAttributeNames": {"#id": "id", "#e": "expiration"},
                        "ExpressionAttributeValues": {":now": {"N": "5"}},
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                },
                {"ConditionCheck": {"TableName": "t", "Key": {"id": {"S": "b"}}, "ConditionExpression": "x"}},
            ],
            "ClientRequestToken": "token",
            "UnknownMember": "dropped by both",
        },
    ),
    ("GetItem", "dynamodb", {"TableName": "t", "Key": {"id": {"S": "a"}}, "ConsistentRead": True}),
    ("SubmitJob", "batch", {"jobName": "j", "jobQueue": "q", "jobDefinition": "d", "parameters": {"k": "v"}}),
]


@pytest.mark.parametrize(("operation", "service", "body"), REQUESTS, ids=[r[0] for r in REQUESTS])
def test_json_requests_parse_to_the_same_dict_in_the_same_order(operation: str, service: str, body: dict):
    with moto_speedups.installed("json_requests"):
        fast = _parse(operation, service, body)
    plain = _parse(operation, service, body)

    assert fast == plain
    assert json.dumps(fast, default=repr) == json.dumps(plain, default=repr)  # key order too
    if operation == "TransactWriteItems":
        assert fast["TransactItems"][0]["Put"]["Item"]["blob"]["B"] == b"\x00\x01"  # blobs decoded


def test_a_condition_with_the_same_expression_and_new_values_is_checked_against_the_new_values(dynamodb: Any):
    dynamodb.put_item(TableName="t", Item={"id": {"S": "a"}, "expiration": {"N": "100"}})

    def claim(now: int) -> str:
        try:
            dynamodb.put_item(
                TableName="t",
                Item={"id": {"S": "a"}, "expiration": {"N": str(now + 100)}},
                ConditionExpression="attribute_not_exists(#id) OR #e < :now",
                ExpressionAttributeNames={"#id": "id", "#e": "expiration"},
                ExpressionAttributeValues={":now": {"N": str(now)}},
            )
        except ClientError as error:
            return str(error.response["Error"]["Code"])
        return "claimed"

    refused = "ConditionalCheckFailedException"
    outcomes = [claim(50), claim(150), claim(150), claim(50), claim(251)]
    assert outcomes == [refused, "claimed", refused, refused, "claimed"]


def test_a_malformed_condition_is_refused_every_time_not_only_the_first(dynamodb: Any):
    malformed = {"ConditionExpression": "#x <", "ExpressionAttributeNames": {"#x": "x"}}

    for _ in range(2):  # moto answers a malformed expression by raising ValueError, each time
        with pytest.raises((ClientError, ValueError)):
            dynamodb.put_item(TableName="t", Item={"id": {"S": "b"}}, **malformed)


def test_queue_counts_stay_right_while_sends_skip_them(aws: None):
    sqs: Any = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    for start in range(0, 30, 10):
        sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{start + i}"} for i in range(10)]
        )
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60)["Messages"]

    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]

    counts = attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesNotVisible"]
    assert counts == ("20", "10")
    handles = [m["ReceiptHandle"] for m in received]
    assert len(set(handles)) == 10
    assert all(len(h) == 185 and h.isalpha() and h.islower() for h in handles)


@pytest.mark.parametrize("pollers", ["over HTTP", "in-process"])
def test_the_pollers_queue_receives_deletes_returns_and_redrives_like_the_api(aws: None, pollers: str):
    sqs: Any = boto3.client("sqs", region_name="us-east-1")
    dlq_url = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    dlq_attributes = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]
    dlq_arn = dlq_attributes["QueueArn"]
    url = sqs.create_queue(
        QueueName="intake",
        Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"}),
            "VisibilityTimeout": "30",
        },
    )["QueueUrl"]
    for body in ("keep", "poison"):
        sqs.send_message(
            QueueUrl=url,
            MessageBody=body,
            MessageAttributes={"kind": {"DataType": "String", "StringValue": body}},
        )
    queue: PollerQueue = (
        MappingQueue(url)
        if pollers == "over HTTP"
        else DirectQueue(url, threading.Lock(), ACCOUNT_ID, REGION)
    )

    first = {m["Body"]: m for m in queue.receive(10)}
    assert set(first) == {"keep", "poison"}
    assert first["keep"]["Attributes"]["ApproximateReceiveCount"] == "1"
    assert first["keep"]["MessageAttributes"]["kind"]["StringValue"] == "keep"
    system = {"SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"}
    assert system <= set(first["keep"]["Attributes"])
    assert queue.receive(10) == []  # in flight
    assert not queue.is_empty()

    queue.delete([first["keep"]["ReceiptHandle"]])
    queue.change_visibility(first["poison"]["ReceiptHandle"], 0)  # failed: back at once
    time.sleep(0.01)
    (again,) = queue.receive(10)
    assert (again["Body"], again["Attributes"]["ApproximateReceiveCount"]) == ("poison", "2")
    queue.change_visibility(again["ReceiptHandle"], 0)
    time.sleep(0.01)

    assert queue.receive(10) == []  # its third receive moved it to the DLQ instead
    assert queue.is_empty()
    parked = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in parked] == ["poison"]
