"""Array mode's pure parts: deterministic manifests, manifest lines, claim conditions."""

from __future__ import annotations

import re

from batch_dispatch.aws.idempotency import RecordLayout
from batch_dispatch.job_types import default_job_type
from batch_dispatch.submit import manifests
from batch_dispatch.submit.claims import PendingUpload, Takeover, claim_condition
from batch_dispatch.submit.s3_events import S3Upload

PREFIX = "_batch-dispatch/manifests/"
DEFAULT_TYPE = default_job_type(
    job_definition_arn="arn:aws:batch:us-east-1:123456789012:job-definition/job:1",
    job_queue_arn="arn:aws:batch:us-east-1:123456789012:job-queue/jobs",
    job_name_prefix="stack",
)
LAYOUT = RecordLayout(
    id="id", status="status", expiry="expiration", in_progress_expiry="in_progress_expiration", data="data"
)


def pending(key: str) -> PendingUpload:
    upload = S3Upload(bucket="b", key=key, event_name="ObjectCreated:Put", version_id="v1")
    return PendingUpload(upload, DEFAULT_TYPE)


def manifest_of(*items: PendingUpload) -> str:
    return manifests.manifest_key((p.record_id for p in items), PREFIX)


def test_the_manifest_key_depends_on_the_set_of_objects_not_their_order():
    a, b, c = pending("a"), pending("b"), pending("c")
    assert manifest_of(a, b, c) == manifest_of(c, a, b)
    assert manifest_of(a, b) != manifest_of(a, c)
    assert manifest_of(a, b).startswith(PREFIX)


def test_a_manifest_line_names_the_object_and_its_record():
    line = pending("dir/x y.csv").manifest_line()
    assert '"key":"dir/x y.csv"' in line
    assert '"idempotencyId":"s3-object#' in line


def test_claim_conditions_use_every_name_and_value_they_declare():
    for takeover in (None, Takeover("m.jsonl"), Takeover(None)):
        condition, names, values = claim_condition(LAYOUT, takeover, 1_700_000_000.0)
        assert set(re.findall(r"#\w+", condition)) == set(names)
        assert set(re.findall(r":\w+", condition)) == set(values)
