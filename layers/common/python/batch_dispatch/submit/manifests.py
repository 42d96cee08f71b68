"""Array-mode manifests: the JSON-lines file an array job's children read their object from.

Child `AWS_BATCH_JOB_ARRAY_INDEX` (0-based) of an array job reads line of that index of
`s3://<manifestBucket>/<manifestKey>`. Each line is the object's job parameters, its lineage and the id
of its idempotency record, which is how a recovering invocation finds an object's index. Manifests go
to the stack's manifest bucket, which sends no notifications: they never come back as uploads. Manifest
keys and array job names are derived from the set of objects, so a retry of the same set finds the
same job.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from batch_dispatch.aws import clients
from batch_dispatch.aws.batch_jobs import safe_job_name
from batch_dispatch.settings import S3SubmitSettings
from batch_dispatch.submit.s3_events import S3Upload

MANIFEST_IDEMPOTENCY_PREFIX = "s3-manifest"
LINE_RECORD_ID = "idempotencyId"
LINE_LINEAGE = "lineage"  # the object's input lineage: a child's BATCH_DISPATCH_LINEAGE (loop_guard.py)
# The array job's parameters that name its manifest (and how many lines it has).
BUCKET_PARAMETER, KEY_PARAMETER, COUNT_PARAMETER = "manifestBucket", "manifestKey", "objectCount"


def manifest_key(record_ids: Iterable[str], prefix: str) -> str:
    """Deterministic: the same set of objects always gets the same manifest (and job name)."""
    digest = hashlib.sha256("\n".join(sorted(record_ids)).encode()).hexdigest()[:40]
    return f"{prefix}{digest}.jsonl"


def manifest_digest(key: str) -> str:
    return key.rsplit("/", 1)[-1].removesuffix(".jsonl")


def array_job_name(job_name_prefix: str, key: str) -> str:
    """The array job's name, from its manifest key alone (a recovery looks the job up by it)."""
    return safe_job_name(job_name_prefix, "array", key)


def manifest_line(upload: S3Upload, record_id: str, lineage: str = "") -> str:
    line = upload.parameters() | {LINE_RECORD_ID: record_id}
    if lineage:
        line[LINE_LINEAGE] = lineage
    return json.dumps(line, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def manifest_bucket(settings: S3SubmitSettings, upload_bucket: str) -> str:
    return settings.manifest_bucket or upload_bucket


def is_own_manifest(upload: S3Upload, settings: S3SubmitSettings) -> bool:
    """A manifest array mode wrote (its notification comes back to the intake queue), not an upload."""
    return upload.bucket == manifest_bucket(settings, upload.bucket) and upload.key.startswith(
        settings.manifest_prefix
    )


def write_manifest(bucket: str, key: str, lines: list[str]) -> None:
    body = "\n".join(lines) + "\n"
    clients.client("s3").put_object(
        Bucket=bucket, Key=key, Body=body.encode("utf-8"), ContentType="application/x-ndjson"
    )


def read_manifest_index(bucket: str, key: str) -> dict[str, int]:
    """Record id -> line of the manifest (written before its job was submitted)."""
    body = clients.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
    lines = [json.loads(line) for line in body.splitlines() if line.strip()]
    return {str(line.get(LINE_RECORD_ID)): index for index, line in enumerate(lines)}


def read_manifest_lines(bucket: str, key: str) -> list[str]:
    """The manifest's lines, in order (line i is child i's object)."""
    body = clients.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
    return [line for line in body.splitlines() if line.strip()]
