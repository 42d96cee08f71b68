"""The job for one uploaded object: what makes the upload unique, and its job's name and parameters."""

from __future__ import annotations

import json
import unicodedata

from batch_dispatch.aws.batch_jobs import JobSpec, safe_job_name
from batch_dispatch.job_types import JobType
from batch_dispatch.submit.s3_events import S3Upload

IDEMPOTENCY_PREFIX = "s3-object"
# The job's input lineage (submit/loop_guard.py); jobs copy it onto what they write.
LINEAGE_ENV = "BATCH_DISPATCH_LINEAGE"


def idempotency_key(upload: S3Upload, job_type: JobType) -> dict[str, str]:
    """What makes an upload's job unique: the job type (not named for the default job type, whose keys
    predate the catalog), bucket + key + versionId, else sequencer, else eventTime + eTag.

    Every delivery of one S3 event carries the same values, and two uploads of the same key differ
    in each of them.
    """
    key = {"bucket": upload.bucket, "key": upload.key}
    if not job_type.is_default:
        key["jobType"] = job_type.name
    if version := upload.real_version_id:
        return key | {"versionId": version}
    if upload.sequencer:
        return key | {"sequencer": upload.sequencer}
    return key | {"eventTime": upload.event_time or "", "etag": upload.etag or ""}


def idempotency_key_text(upload: S3Upload, job_type: JobType) -> str:
    """The idempotency key as one canonical string (the job name's hash input)."""
    key = idempotency_key(upload, job_type)
    return json.dumps(key, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def readable_name(key: str) -> str:
    """The key folded to ASCII (café -> cafe); safe_job_name keeps its end when it is too long."""
    return unicodedata.normalize("NFKD", key).encode("ascii", "ignore").decode("ascii")


def upload_job_spec(upload: S3Upload, job_type: JobType, lineage: str = "") -> JobSpec:
    """The job for one upload: named after the job type and key (plus a hash of the idempotency key),
    the upload as parameters, its lineage in the environment."""
    name = safe_job_name(
        job_type.job_name_prefix, readable_name(upload.key), idempotency_key_text(upload, job_type)
    )
    return JobSpec(
        job_name=name,
        parameters=upload.parameters(),
        environment={LINEAGE_ENV: lineage} if lineage else {},
        tags={
            "batch-dispatch:trigger": "s3",
            "batch-dispatch:bucket": upload.bucket,
            "batch-dispatch:job-type": job_type.name,
        },
    )
