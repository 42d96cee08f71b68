"""Burst mode (`SUBMIT_MODE=ARRAY`): the uploads of one SQS batch become ONE Batch array job.

Batch allows ~50 SubmitJob calls/s per account but 10,000 children per array job, so a burst of
10,000 uploads takes a handful of SubmitJob calls instead of 200 seconds of them. Each child reads
its object from a manifest the function writes to S3 (JSON lines of {bucket, key, versionId, ...}):
line `AWS_BATCH_JOB_ARRAY_INDEX` (0-based) of `s3://<manifestBucket>/<manifestKey>`.

Exactly once, as in the per-object mode, and in the same DynamoDB table with the same record ids:
1. Objects already submitted (alone, or in an earlier manifest) are skipped: their `s3-object`
   records are COMPLETED (BatchGetItem). Objects another invocation is submitting right now leave
   their message for a later delivery.
2. The rest are claimed INPROGRESS with conditional writes (the Powertools condition), each claim
   naming the manifest and the object's line in it. A lost race releases the claims, drops just
   the contested objects' messages (they come back later) and claims the others again.
3. The manifest key and the job name are derived from the set of idempotency keys, and the array
   job is submitted through `submit_once` (prefix `s3-manifest`): a retried batch with the same
   objects gets the same job back, even after a crash between SubmitJob and saving (reconcile).
4. Each object's record becomes COMPLETED with `<array job id>:<index>`, exactly what the
   per-object mode stores, so switching modes never submits an object twice. A crash before this
   step leaves claims that name a manifest: a later delivery finds the manifest's job and completes
   them instead of submitting again.
A failure before the job exists releases the claims and reports every message of the batch failed.

The manifests are written under MANIFEST_PREFIX (default in the intake bucket), so their own upload
notifications come back: both modes recognise that prefix and skip them.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from batch_dispatch import clients
from batch_dispatch.batch import JobSpec, SubmitFailedError, safe_job_name
from batch_dispatch.config import SubmitSettings, load_settings
from batch_dispatch.idempotency import IDEMPOTENCY_TTL_SECONDS
from batch_dispatch.observability import MetricUnit, logger, metrics
from batch_dispatch.s3_intake import (
    DEFAULT_MANIFEST_PREFIX,
    IDEMPOTENCY_PREFIX,
    MalformedNotificationError,
    S3Upload,
    Skip,
    idempotency_key,
    is_own_manifest,
    parse_body,
    submit_upload,
)
from batch_dispatch.submission import submit_once

ARRAY_MODE = "ARRAY"
PER_OBJECT_MODE = "PER_OBJECT"
MANIFEST_IDEMPOTENCY_PREFIX = "s3-manifest"
MAX_ARRAY_SIZE = 10_000  # Batch's limit of children per array job
_CLAIM_THREADS = 8
_GET_CHUNK = 100  # BatchGetItem limit
_WRITE_CHUNK = 25  # BatchWriteItem limit
_INPROGRESS, _COMPLETED = "INPROGRESS", "COMPLETED"
# Powertools' DynamoDBPersistenceLayer attribute names (its defaults, which idempotency.py uses).
_ID, _EXPIRY, _IN_PROGRESS_EXPIRY, _STATUS, _DATA = (
    "id",
    "expiration",
    "in_progress_expiration",
    "status",
    "data",
)
_MANIFEST, _INDEX = "manifestKey", "manifestIndex"


class BurstSettings(BaseModel):
    """Burst-mode settings (validated on each invocation: cheap, and a changed env var is seen at once)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    submit_mode: Literal["PER_OBJECT", "ARRAY"] = Field(default="PER_OBJECT", alias="SUBMIT_MODE")
    manifest_bucket: str = Field(default="", alias="MANIFEST_BUCKET")  # "" = the uploads' bucket
    manifest_prefix: str = Field(default=DEFAULT_MANIFEST_PREFIX, alias="MANIFEST_PREFIX", min_length=1)
    max_array_size: int = Field(default=MAX_ARRAY_SIZE, alias="MAX_ARRAY_SIZE", ge=2, le=MAX_ARRAY_SIZE)


def burst_settings() -> BurstSettings:
    return load_settings(BurstSettings)


# --- record ids, the same Powertools computes ----------------------------------------------------


def record_id(prefix: str, key: Mapping[str, Any]) -> str:
    """The idempotency record id Powertools gives `key` under `prefix` (md5 of the sorted JSON)."""
    digest = hashlib.md5(json.dumps(key, sort_keys=True).encode(), usedforsecurity=False).hexdigest()
    return f"{prefix}#{digest}"


@dataclass
class _Object:
    upload: S3Upload
    record_id: str
    message_ids: set[str] = field(default_factory=set)

    def manifest_line(self) -> str:
        return json.dumps(self.upload.parameters(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass
class _Plan:
    """What a batch asks for, after parsing."""

    objects: dict[str, _Object] = field(default_factory=dict)  # by record id
    failed: set[str] = field(default_factory=set)  # message ids to report failed
    redelivered: bool = False


@dataclass(frozen=True)
class ArraySubmission:
    job_id: str
    job_name: str
    manifest_bucket: str
    manifest_key: str
    size: int
    duplicate: bool


# --- the batch -----------------------------------------------------------------------------------


def handle_batch(
    event: dict[str, Any],
    context: LambdaContext | None,
    settings: SubmitSettings,
    burst: BurstSettings,
) -> PartialItemFailureResponse:
    """Submit the uploads of an SQS batch as array jobs; the response lists the messages to redeliver."""
    records = event.get("Records") or []
    plan = _parse(records, burst)
    if plan.objects:
        pending = _skip_submitted(plan, settings)
        for chunk in _chunks(sorted(pending, key=lambda o: o.record_id), burst.max_array_size):
            _submit_chunk(chunk, plan, context, settings, burst)
    return {"batchItemFailures": [{"itemIdentifier": m} for m in sorted(plan.failed)]}


def _parse(records: Iterable[dict[str, Any]], burst: BurstSettings) -> _Plan:
    plan = _Plan()
    for record in records:
        message_id = str(record.get("messageId", ""))
        plan.redelivered |= _receive_count(record) > 1
        try:
            items = parse_body(str(record.get("body", "")))
        except MalformedNotificationError as error:
            logger.error(
                "Rejected SQS message: not an S3 event notification",
                extra={"message_id": message_id, "reason": error.reason},
            )
            metrics.add_metric(name="RecordRejected", unit=MetricUnit.Count, value=1)
            plan.failed.add(message_id)
            continue
        for item in items:
            if isinstance(item, Skip) or is_own_manifest(item):
                reason = item.reason if isinstance(item, Skip) else "manifest"
                logger.info(
                    "S3 notification record skipped",
                    extra={
                        "message_id": message_id,
                        "reason": reason,
                        "bucket": item.bucket,
                        "key": item.key,
                    },
                )
                metrics.add_metric(name="ObjectSkipped", unit=MetricUnit.Count, value=1)
                continue
            rid = record_id(IDEMPOTENCY_PREFIX, idempotency_key(item))
            plan.objects.setdefault(rid, _Object(item, rid)).message_ids.add(message_id)
    return plan


def _receive_count(record: dict[str, Any]) -> int:
    try:
        return int((record.get("attributes") or {}).get("ApproximateReceiveCount") or 1)
    except (TypeError, ValueError):
        return 1


def _skip_submitted(plan: _Plan, settings: SubmitSettings) -> list[_Object]:
    """Objects that still need a job. Already submitted ones are dropped (DuplicateSkipped); ones
    another invocation is submitting right now fail their messages (SQS brings them back)."""
    table = settings.idempotency_table_name
    stored = _get_items(table, list(plan.objects))
    now_s, now_ms = int(time.time()), int(time.time() * 1000)
    manifests: dict[str, dict[str, Any] | None] = {}
    pending: list[_Object] = []
    completions: list[tuple[_Object, str, str]] = []
    duplicates = 0
    for rid, obj in plan.objects.items():
        item = stored.get(rid)
        if item is None or int(item.get(_EXPIRY, 0)) < now_s:
            pending.append(obj)
            continue
        if item.get(_STATUS) == _COMPLETED:
            duplicates += 1
            continue
        # INPROGRESS: a claim. If it names a manifest whose array job exists, the object is done.
        manifest_key = item.get(_MANIFEST)
        if manifest_key:
            if manifest_key not in manifests:
                manifests[manifest_key] = _manifest_job(table, manifest_key)
            job = manifests[manifest_key]
            if job is not None:
                completions.append((obj, f"{job['jobId']}:{int(item.get(_INDEX, 0))}", job["jobName"]))
                duplicates += 1
                continue
        if int(item.get(_IN_PROGRESS_EXPIRY, 0)) < now_ms:
            pending.append(obj)  # the claimer died before submitting: claim it again
            continue
        logger.info("Upload being submitted by another invocation", extra={"key": obj.upload.key})
        plan.failed.update(obj.message_ids)
    if completions:
        _write_completed(table, completions)
    if duplicates:
        metrics.add_metric(name="DuplicateSkipped", unit=MetricUnit.Count, value=duplicates)
        logger.info("Duplicate deliveries, objects already submitted", extra={"objects": duplicates})
    return pending


def _submit_chunk(
    chunk: list[_Object],
    plan: _Plan,
    context: LambdaContext | None,
    settings: SubmitSettings,
    burst: BurstSettings,
) -> None:
    # An object whose message already failed (another of its records is contested) still goes in:
    # its redelivery then finds it COMPLETED. Never leave one out silently.
    if len(chunk) == 1:  # Batch array jobs have 2 children at least: one object is a plain job
        _submit_single(chunk[0], plan, context, settings)
        return
    table = settings.idempotency_table_name
    for _round in range(3):
        manifest_key = _manifest_key(chunk, burst)
        contested = _claim(table, chunk, manifest_key, context)
        if not contested:
            break
        for obj in contested:
            logger.info("Upload claimed by another invocation", extra={"key": obj.upload.key})
            plan.failed.update(obj.message_ids)
        chunk = [o for o in chunk if o not in contested]
        if len(chunk) < 2:
            for obj in chunk:
                _submit_single(obj, plan, context, settings)
            return
    else:
        logger.warning(
            "Uploads contested three times, SQS will redeliver them", extra={"objects": len(chunk)}
        )
        _fail(plan, chunk)
        return
    try:
        submission = _submit_array(chunk, manifest_key, plan, context, settings, burst)
    except Exception:
        logger.exception(
            "Array job not submitted, SQS will redeliver the batch", extra={"objects": len(chunk)}
        )
        _release(table, chunk, manifest_key)
        _fail(plan, chunk)
        return
    _write_completed(
        table, [(obj, f"{submission.job_id}:{i}", submission.job_name) for i, obj in enumerate(chunk)]
    )
    metrics.add_metric(name="ObjectsInArrayJob", unit=MetricUnit.Count, value=len(chunk))


def _submit_single(
    obj: _Object, plan: _Plan, context: LambdaContext | None, settings: SubmitSettings
) -> None:
    try:
        submit_upload(obj.upload, settings, lambda_context=context, reconcile=plan.redelivered)
    except (IdempotencyAlreadyInProgressError, SubmitFailedError) as error:
        logger.warning("Upload not submitted yet, SQS will redeliver it", extra={"error": str(error)})
        plan.failed.update(obj.message_ids)
    except Exception:
        logger.exception("Upload submit failed", extra={"key": obj.upload.key})
        plan.failed.update(obj.message_ids)


def _fail(plan: _Plan, chunk: list[_Object]) -> None:
    for obj in chunk:
        plan.failed.update(obj.message_ids)


def _manifest_key(chunk: list[_Object], burst: BurstSettings) -> str:
    """Deterministic: the same set of objects always gets the same manifest (and job name)."""
    digest = hashlib.sha256("\n".join(sorted(o.record_id for o in chunk)).encode()).hexdigest()[:40]
    return f"{burst.manifest_prefix}{digest}.jsonl"


def _submit_array(
    chunk: list[_Object],
    manifest_key: str,
    plan: _Plan,
    context: LambdaContext | None,
    settings: SubmitSettings,
    burst: BurstSettings,
) -> ArraySubmission:
    bucket = burst.manifest_bucket or chunk[0].upload.bucket
    body = "\n".join(obj.manifest_line() for obj in chunk) + "\n"
    clients.client("s3").put_object(
        Bucket=bucket, Key=manifest_key, Body=body.encode("utf-8"), ContentType="application/x-ndjson"
    )
    digest = manifest_key.rsplit("/", 1)[-1].removesuffix(".jsonl")
    spec = JobSpec(
        job_name=safe_job_name(settings.job_name_prefix, f"array-{len(chunk)}", manifest_key),
        parameters={"manifestBucket": bucket, "manifestKey": manifest_key, "objectCount": str(len(chunk))},
        array_size=len(chunk),
        tags={"batch-dispatch:trigger": "s3-array", "batch-dispatch:manifest": digest},
    )
    outcome = submit_once(
        spec,
        key_prefix=MANIFEST_IDEMPOTENCY_PREFIX,
        idempotency_key={"manifestKey": manifest_key},
        settings=settings,
        lambda_context=context,
        reconcile=plan.redelivered,
    )
    logger.info(
        "Array job submitted",
        extra={"job_id": outcome.job.job_id, "manifest_key": manifest_key, "objects": len(chunk)},
    )
    return ArraySubmission(
        job_id=outcome.job.job_id,
        job_name=outcome.job.job_name,
        manifest_bucket=bucket,
        manifest_key=manifest_key,
        size=len(chunk),
        duplicate=outcome.duplicate,
    )


# --- DynamoDB ------------------------------------------------------------------------------------


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _plain(item: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB item ({"S": ...}/{"N": ...}) as plain values."""
    out: dict[str, Any] = {}
    for name, value in item.items():
        if "S" in value:
            out[name] = value["S"]
        elif "N" in value:
            out[name] = int(value["N"])
    return out


def _get_items(table: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    dynamodb = clients.client("dynamodb")
    found: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(ids, _GET_CHUNK):
        request: dict[str, Any] = {table: {"Keys": [{_ID: {"S": i}} for i in chunk], "ConsistentRead": True}}
        for _attempt in range(8):
            response = dynamodb.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(table, []):
                plain = _plain(item)
                found[plain[_ID]] = plain
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
            time.sleep(0.05 * 2**_attempt)
        else:
            raise RuntimeError("DynamoDB kept returning UnprocessedKeys")
    return found


def _manifest_job(table: str, manifest_key: str) -> dict[str, Any] | None:
    """The array job stored for a manifest, if its submit completed."""
    item = _get_items(table, [record_id(MANIFEST_IDEMPOTENCY_PREFIX, {"manifestKey": manifest_key})])
    record = next(iter(item.values()), None)
    if not record or record.get(_STATUS) != _COMPLETED or int(record.get(_EXPIRY, 0)) < int(time.time()):
        return None
    data = json.loads(record.get(_DATA) or "{}")
    return data if isinstance(data, dict) and data.get("jobId") else None


def _claim(
    table: str, chunk: list[_Object], manifest_key: str, context: LambdaContext | None
) -> list[_Object]:
    """Claim every object for `manifest_key` (one conditional PutItem each, the Powertools condition).

    Returns the contested objects; when there are any, every claim made here is released again.
    """
    dynamodb = clients.client("dynamodb")
    now = time.time()
    remaining_ms = context.get_remaining_time_in_millis() if context is not None else 60_000
    values = {
        ":now": {"N": str(int(now))},
        ":now_in_millis": {"N": str(int(now * 1000))},
        ":inprogress": {"S": _INPROGRESS},
        ":manifest": {"S": manifest_key},
    }
    condition = (
        "attribute_not_exists(#id) OR #expiry < :now OR "
        "(#status = :inprogress AND attribute_exists(#in_progress_expiry)"
        " AND #in_progress_expiry < :now_in_millis)"
        " OR (#status = :inprogress AND #manifest = :manifest)"
    )
    names = {
        "#id": _ID,
        "#expiry": _EXPIRY,
        "#status": _STATUS,
        "#in_progress_expiry": _IN_PROGRESS_EXPIRY,
        "#manifest": _MANIFEST,
    }

    def claim(position: int, obj: _Object) -> bool:
        try:
            dynamodb.put_item(
                TableName=table,
                Item={
                    _ID: {"S": obj.record_id},
                    _STATUS: {"S": _INPROGRESS},
                    _EXPIRY: {"N": str(int(now) + IDEMPOTENCY_TTL_SECONDS)},
                    _IN_PROGRESS_EXPIRY: {"N": str(int(now * 1000) + remaining_ms)},
                    _MANIFEST: {"S": manifest_key},
                    _INDEX: {"N": str(position)},
                },
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    # Claims are independent network round trips: a few threads cut a 1,000-object batch from
    # seconds to a fraction of one in AWS (the shared client is thread-safe).
    with ThreadPoolExecutor(max_workers=_CLAIM_THREADS) as pool:
        futures = [pool.submit(claim, i, obj) for i, obj in enumerate(chunk)]
        errors = [f.exception() for f in futures]
    claimed = [obj for obj, f, e in zip(chunk, futures, errors, strict=True) if e is None and f.result()]
    failure = next((e for e in errors if e is not None), None)
    contested = [
        obj for obj, f, e in zip(chunk, futures, errors, strict=True) if e is None and not f.result()
    ]
    if failure is not None or contested:
        _release(table, claimed, manifest_key)
    if failure is not None:
        raise failure
    return contested


def _release(table: str, objects: list[_Object], manifest_key: str) -> None:
    """Delete our claims (only those still naming `manifest_key`), so a retry can claim them again."""
    dynamodb = clients.client("dynamodb")
    for obj in objects:
        try:
            dynamodb.delete_item(
                TableName=table,
                Key={_ID: {"S": obj.record_id}},
                ConditionExpression="#status = :inprogress AND #manifest = :manifest",
                ExpressionAttributeNames={"#status": _STATUS, "#manifest": _MANIFEST},
                ExpressionAttributeValues={
                    ":inprogress": {"S": _INPROGRESS},
                    ":manifest": {"S": manifest_key},
                },
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                logger.warning("Could not release claim", extra={"key": obj.upload.key})


def _write_completed(table: str, completions: list[tuple[_Object, str, str]]) -> None:
    """COMPLETED records in the shape per-object `submit_once` stores (its duplicates see them too)."""
    dynamodb = clients.client("dynamodb")
    expiry = str(int(time.time()) + IDEMPOTENCY_TTL_SECONDS)
    requests = [
        {
            "PutRequest": {
                "Item": {
                    _ID: {"S": obj.record_id},
                    _STATUS: {"S": _COMPLETED},
                    _EXPIRY: {"N": expiry},
                    _DATA: {"S": json.dumps({"jobId": job_id, "jobName": job_name, "duplicate": False})},
                }
            }
        }
        for obj, job_id, job_name in completions
    ]
    for chunk in _chunks(requests, _WRITE_CHUNK):
        pending: dict[str, Any] = {table: chunk}
        for attempt in range(8):
            unprocessed = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if not unprocessed:
                break
            pending = unprocessed
            time.sleep(0.05 * 2**attempt)
        else:
            # The claims stay INPROGRESS naming the manifest: a later delivery completes them.
            logger.warning("Could not mark objects completed", extra={"objects": len(chunk)})
