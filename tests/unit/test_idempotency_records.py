"""The record adapter array mode uses, pinned against the installed Powertools (moto DynamoDB).

Array mode writes and reads Powertools idempotency records in bulk; these tests fail if a Powertools
upgrade changes how a record is named or laid out, before exactly-once across the two modes can break.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.idempotency import idempotent_function
from moto import mock_aws

from batch_dispatch import execution_environment
from batch_dispatch.aws import clients
from batch_dispatch.aws.idempotency import (
    COMPLETED,
    INPROGRESS,
    RecordLayout,
    idempotency_config,
    persistence_layer,
    plain_item,
    record_id,
    record_layout,
)
from tests.conftest import FakeLambdaContext, create_id_table

TABLE = "idempotency"
PREFIX = "s3-object"
KEY = {"bucket": "b", "key": "dir/a b.csv", "versionId": "v1"}


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb")
        create_id_table(TABLE)
        execution_environment.reset()
        clients.use_client("dynamodb", client)
        yield client
        execution_environment.reset()


def powertools_submit(calls: list[dict[str, Any]], during: Any = None) -> Any:
    """An idempotent function as the per-object path declares it (with the invocation's context)."""

    @idempotent_function(
        data_keyword_argument="key",
        persistence_store=persistence_layer(TABLE, PREFIX),
        config=idempotency_config(FakeLambdaContext()),
        key_prefix=PREFIX,
    )
    def submit(key: dict[str, Any]) -> dict[str, Any]:
        if during:
            during()
        calls.append(key)
        return {"jobId": "job-1", "jobName": "name-1", "duplicate": False}

    return submit


def stored_items(dynamodb: Any) -> list[dict[str, Any]]:
    return [plain_item(item) for item in dynamodb.scan(TableName=TABLE)["Items"]]


def layout() -> RecordLayout:
    return record_layout(persistence_layer(TABLE, PREFIX))


def test_our_record_id_is_the_one_powertools_stores(dynamodb):
    # Given Powertools stored a completed call
    powertools_submit([])(key=KEY)

    # Then the record's id is the one our adapter computes
    [item] = stored_items(dynamodb)
    assert item[layout().id] == record_id(PREFIX, KEY)


def test_a_completed_record_has_the_layout_we_read(dynamodb):
    powertools_submit([])(key=KEY)

    [item] = stored_items(dynamodb)
    rec = layout()
    assert item[rec.status] == COMPLETED
    assert item[rec.expiry] > time.time()  # epoch seconds (the table's TTL)
    assert rec.stored_response(item) == {"jobId": "job-1", "jobName": "name-1", "duplicate": False}


def test_an_in_progress_record_carries_its_deadline_in_milliseconds(dynamodb):
    seen: list[dict[str, Any]] = []
    powertools_submit([], during=lambda: seen.extend(stored_items(dynamodb)))(key=KEY)

    [item] = seen
    rec = layout()
    assert item[rec.status] == INPROGRESS
    # The invocation's deadline, in epoch milliseconds (claims.py compares it with now in ms)
    assert time.time() * 1000 < item[rec.in_progress_expiry] <= (time.time() + 31) * 1000


def test_a_completed_record_we_write_is_a_duplicate_to_powertools(dynamodb):
    # Given array mode recorded the object as submitted in an array job
    rec = layout()
    item = rec.completed_item(
        record_id(PREFIX, KEY),
        {"jobId": "array-1:7", "jobName": "array", "duplicate": False},
        int(time.time()) + 60,
    )
    dynamodb.put_item(TableName=TABLE, Item=item)
    calls: list[dict[str, Any]] = []

    # When the per-object path sees the same object
    answer = powertools_submit(calls)(key=KEY)

    # Then Powertools replays our record instead of submitting again
    assert calls == []
    assert answer == {"jobId": "array-1:7", "jobName": "array", "duplicate": True}
