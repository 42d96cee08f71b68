"""Burst mode's pure parts: record ids shared with Powertools, deterministic manifests, claim conditions."""

from __future__ import annotations

import re

from batch_dispatch import burst
from batch_dispatch.s3_intake import S3Upload


def upload(key: str, version: str = "v1") -> S3Upload:
    return S3Upload(bucket="b", key=key, event_name="ObjectCreated:Put", version_id=version)


def obj(key: str) -> burst._Object:
    u = upload(key)
    return burst._Object(u, burst.upload_record_id(u))


def test_record_ids_are_the_ones_powertools_gives_the_per_object_path():
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

    layer = DynamoDBPersistenceLayer(table_name="t", boto3_client=object())
    layer.configure(config=IdempotencyConfig(), key_prefix="s3-object")
    key = {"bucket": "b", "key": "k", "versionId": "v1"}
    assert burst.record_id("s3-object", key) == layer._get_hashed_idempotency_key(key)


def test_the_manifest_key_depends_on_the_set_of_objects_not_their_order():
    settings = burst.BurstSettings()
    a, b, c = obj("a"), obj("b"), obj("c")
    assert burst.manifest_key_for([a, b, c], settings) == burst.manifest_key_for([c, a, b], settings)
    assert burst.manifest_key_for([a, b], settings) != burst.manifest_key_for([a, c], settings)
    assert burst.manifest_key_for([a, b], settings).startswith(settings.manifest_prefix)


def test_a_manifest_line_names_the_object_and_its_record():
    line = obj("dir/x y.csv").manifest_line()
    assert '"key":"dir/x y.csv"' in line
    assert '"idempotencyId":"s3-object#' in line


def test_claim_conditions_use_every_name_and_value_they_declare():
    for takeover in (None, burst._Takeover("m.jsonl"), burst._Takeover(None)):
        condition, names, values = burst._claim_condition(takeover, 1_700_000_000.0)
        assert set(re.findall(r"#\w+", condition)) == set(names)
        assert set(re.findall(r":\w+", condition)) == set(values)
