"""The loop guard's parts: an upload's lineage, and the counter that admits or refuses it per window.

moto plays S3 (object metadata) and DynamoDB (the idempotency table, its conditional writes), so the
condition expressions and the item are checked by the service model. The whole path (parking in the
IntakeDLQ, the Slack alert, a self-triggering job) is in tests/integration/test_attached_buckets_flow.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from batch_dispatch.aws import clients
from batch_dispatch.job_types import default_job_type
from batch_dispatch.settings import S3SubmitSettings
from batch_dispatch.submit import loop_guard
from batch_dispatch.submit.s3_events import S3Upload
from batch_dispatch.submit.upload_job import LINEAGE_ENV, upload_job_spec
from tests.conftest import create_id_table

BUCKET = "team-landing"
TABLE = "idempotency"
JOB_TYPE = default_job_type(job_definition_arn="arn:d", job_queue_arn="arn:q", job_name_prefix="stack")


def settings(max_jobs: int = 3, window: int = 600) -> S3SubmitSettings:
    return S3SubmitSettings(
        job_queue_arn="arn:q",
        job_definition_arn="arn:d",
        idempotency_table_name=TABLE,
        loop_guard_max_jobs=max_jobs,
        loop_guard_window_seconds=window,
    )


def upload(key: str = "loop/in.csv", version: str = "v1") -> S3Upload:
    return S3Upload(bucket=BUCKET, key=key, event_name="ObjectCreated:Put", version_id=version)


@pytest.fixture
def aws() -> Iterator[Any]:
    from moto import mock_aws

    from batch_dispatch import execution_environment

    with mock_aws():
        execution_environment.reset()
        create_id_table(TABLE)
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        clients.use_client("s3", s3)
        clients.use_client("dynamodb", boto3.client("dynamodb"))
        yield s3
        execution_environment.reset()


# --- lineage -------------------------------------------------------------------------------------------


def test_an_object_without_a_lineage_starts_its_own_from_bucket_and_key(aws):
    aws.put_object(Bucket=BUCKET, Key="loop/in.csv", Body=b"x")

    lineage = loop_guard.lineage_of(upload(), settings())

    assert lineage == loop_guard.own_lineage(upload())
    assert lineage == loop_guard.own_lineage(upload(version="v2"))  # every version of a key: one lineage
    assert lineage != loop_guard.own_lineage(upload(key="loop/other.csv"))


def test_an_object_carrying_a_lineage_in_its_metadata_inherits_it(aws):
    aws.put_object(
        Bucket=BUCKET, Key="loop/out.csv", Body=b"x", Metadata={"batch-dispatch-lineage": "0123abcd" * 4}
    )

    assert loop_guard.lineage_of(upload("loop/out.csv"), settings()) == "0123abcd" * 4


def test_a_lineage_that_is_not_a_token_is_ignored(aws):
    aws.put_object(
        Bucket=BUCKET,
        Key="loop/out.csv",
        Body=b"x",
        Metadata={"batch-dispatch-lineage": "a b; c" + "x" * 300},
    )

    assert loop_guard.lineage_of(upload("loop/out.csv"), settings()) == loop_guard.own_lineage(
        upload("loop/out.csv")
    )


def test_an_object_deleted_before_it_is_read_keeps_its_own_lineage(aws):
    assert loop_guard.lineage_of(upload("loop/gone.csv"), settings()) == loop_guard.own_lineage(
        upload("loop/gone.csv")
    )


def test_with_the_guard_off_the_object_is_not_read_at_all():
    # No moto here: any S3 call would fail (no credentials, no endpoint on loopback)
    upload_elsewhere = S3Upload(
        bucket="no-such-bucket", key="k", event_name="ObjectCreated:Put", sequencer="1"
    )

    assert loop_guard.lineage_of(upload_elsewhere, settings(max_jobs=0)) == loop_guard.own_lineage(
        upload_elsewhere
    )


def test_the_job_gets_its_lineage_in_its_environment():
    spec = upload_job_spec(upload(), JOB_TYPE, "0123abcd" * 4)

    assert dict(spec.environment) == {LINEAGE_ENV: "0123abcd" * 4}


# --- the counter ---------------------------------------------------------------------------------------


def test_a_lineage_starts_at_most_max_jobs_in_its_window(aws):
    # Given a limit of 3 jobs per window
    limit = settings(max_jobs=3)

    # When five different uploads of one lineage arrive within the window
    seen = [loop_guard.admit("L", upload(version=f"v{i}"), JOB_TYPE, limit, now=1000 + i) for i in range(5)]

    # Then three are admitted and counted, the rest refused, all in one window from the first upload
    assert [a.admitted for a in seen] == [True, True, True, False, False]
    assert [a.jobs for a in seen] == [1, 2, 3, 3, 3]
    assert {a.window_ends for a in seen} == {1600}
    assert {a.origin for a in seen} == {f"s3://{BUCKET}/loop/in.csv"}


def test_a_redelivered_upload_is_admitted_again_without_counting_twice(aws):
    limit = settings(max_jobs=2)
    first = loop_guard.admit("L", upload(version="v1"), JOB_TYPE, limit, now=1000)

    again = loop_guard.admit("L", upload(version="v1"), JOB_TYPE, limit, now=1001)
    second = loop_guard.admit("L", upload(version="v2"), JOB_TYPE, limit, now=1002)
    # even once the window is full
    third = loop_guard.admit("L", upload(version="v3"), JOB_TYPE, limit, now=1003)
    redelivered = loop_guard.admit("L", upload(version="v2"), JOB_TYPE, limit, now=1004)

    assert (first.jobs, again.jobs, second.jobs) == (1, 1, 2)
    assert not third.admitted
    assert redelivered.admitted


def test_after_the_window_a_lineage_starts_again(aws):
    limit = settings(max_jobs=1, window=60)
    loop_guard.admit("L", upload(version="v1"), JOB_TYPE, limit, now=1000)
    refused = loop_guard.admit("L", upload(version="v2"), JOB_TYPE, limit, now=1030)

    later = loop_guard.admit("L", upload("loop/later.csv", "v3"), JOB_TYPE, limit, now=1061)

    assert not refused.admitted
    assert later.admitted
    assert (later.jobs, later.window_ends, later.origin) == (1, 1121, f"s3://{BUCKET}/loop/later.csv")


def test_lineages_are_counted_apart(aws):
    limit = settings(max_jobs=1)

    assert loop_guard.admit("A", upload(version="v1"), JOB_TYPE, limit, now=1000).admitted
    assert loop_guard.admit("B", upload(version="v2"), JOB_TYPE, limit, now=1000).admitted
    assert not loop_guard.admit("A", upload(version="v3"), JOB_TYPE, limit, now=1000).admitted


def test_the_counter_expires_with_its_window(aws):
    loop_guard.admit("L", upload(), JOB_TYPE, settings(window=600), now=1000)

    item = boto3.client("dynamodb").get_item(TableName=TABLE, Key={"id": {"S": "loop-guard#L"}})["Item"]

    assert item["expiration"] == {"N": "1600"}  # the table's TTL attribute
