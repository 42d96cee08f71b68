"""Burst mode (`SUBMIT_MODE=ARRAY`): the uploads of one SQS batch become ONE Batch array job.

Batch allows ~50 SubmitJob calls/s per account but 10,000 children per array job, so a burst of
10,000 uploads takes a handful of SubmitJob calls instead of 200 seconds of them. Each child reads
its object from a manifest the function writes to S3 (JSON lines of {bucket, key, versionId, ...}):
line `AWS_BATCH_JOB_ARRAY_INDEX` (0-based) of `s3://<manifestBucket>/<manifestKey>`.

Exactly once per object, in the same DynamoDB table and with the same record ids (`s3-object#<md5>`)
as the per-object mode, so an object is never submitted twice across modes:
1. Claim. The batch's objects are claimed with TransactWriteItems, 100 conditional Puts per call
   (`attribute_not_exists(id) OR expiration < now`), each claim INPROGRESS naming the manifest
   (`manifestKey`) and its own liveness (`claimExpiry`, the invocation's deadline). A cancelled
   transaction says, per object (`CancellationReasons` with ALL_OLD), why: COMPLETED -> a duplicate,
   skipped; a live claim of another invocation -> a duplicate in flight, acknowledged (see below); a
   stale claim (its owner died) -> settled: if that claim's manifest has a job, the object is done
   (marked COMPLETED with that job); if not, it is taken over. The transaction is retried with the
   objects that passed: claims that succeeded are kept, never released and raced for again.
   Once a transaction of the invocation was cancelled (and on redeliveries), the records of the
   next 100 objects are read first (BatchGetItem) and settled the same way, and only free objects
   go into the transaction: one object held elsewhere would cancel 99 free ones.
   Claims carry no `in_progress_expiration`, so Powertools (the per-object path) never takes one
   over; it adopts the claim's array job if it exists, or takes a stale claim without one over
   (`settle_claim`).
2. Submit. The manifest key is derived from the sorted ids of the objects the chunk set out to
   claim, the job name from the manifest key; the manifest is written, then the array job is
   submitted through `submit_once` (prefix `s3-manifest`, reconciled by job name on redelivery).
3. Done. The claims are left as they are: a claim naming a manifest whose job exists IS the record
   that the object was submitted (writing 10,000 COMPLETED records would cost 400 BatchWriteItem
   calls per burst and say nothing new). A later delivery meets the claim: while it is live, see
   below; once stale, the manifest's job is looked up (its `s3-manifest` record, else ListJobs by
   name, once per manifest and invocation) and the object's line read from the manifest: found ->
   a duplicate (its record then becomes COMPLETED with `<array job id>:<index>`, what the per-object
   mode stores); not found -> taken over. A crash anywhere after SubmitJob ends the same way.
If anything fails before the job is known, the claims are abandoned (claimExpiry = 0, they stay
naming their manifest, so a job that did get created is still found) and every message of the
chunk is reported failed.

A live claim of another invocation means that invocation holds an SQS message for the same object,
and that message is only deleted once the object is in a submitted array job; if its invocation
fails or dies, SQS redelivers it (or parks it in the DLQ after maxReceiveCount). So a second
delivery meeting a live claim is a duplicate in flight: it is acknowledged, not failed. (Failing it
instead sends it round again while the first is still being submitted: redeliveries, and in a long
burst whose retries come quickly, duplicates parked in the DLQ.) The per-object path stays
conservative (Powertools' in-progress error: its message comes back later).

The manifests are written under MANIFEST_PREFIX (default in the intake bucket), so their own upload
notifications come back: both modes recognise that prefix and skip them.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from batch_dispatch import clients
from batch_dispatch.batch import JobSpec, SubmitFailedError, SubmittedJob, find_job_by_name, safe_job_name
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
    job_spec_for,
    parse_body,
    submit_or_settle,
    submit_upload,
)
from batch_dispatch.submission import SubmitOutcome, submit_once

ARRAY_MODE = "ARRAY"
PER_OBJECT_MODE = "PER_OBJECT"
MANIFEST_IDEMPOTENCY_PREFIX = "s3-manifest"
MAX_ARRAY_SIZE = 10_000  # Batch's limit of children per array job
_TRANSACT_CHUNK = 100  # TransactWriteItems limit
_WRITE_CHUNK = 25  # BatchWriteItem limit
_CLAIM_ROUNDS = 8
_INPROGRESS, _COMPLETED = "INPROGRESS", "COMPLETED"
# Powertools' DynamoDBPersistenceLayer attribute names (its defaults, which idempotency.py uses).
_ID, _EXPIRY, _IN_PROGRESS_EXPIRY, _STATUS, _DATA = (
    "id",
    "expiration",
    "in_progress_expiration",
    "status",
    "data",
)
_MANIFEST, _CLAIM_EXPIRY = "manifestKey", "claimExpiry"
_SETTLE_ATTRIBUTES = (_ID, _STATUS, _EXPIRY, _MANIFEST, _CLAIM_EXPIRY, _IN_PROGRESS_EXPIRY)
_LINE_ID = "idempotencyId"  # each manifest line names its object's record (how a recovery finds its index)


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


def upload_record_id(upload: S3Upload) -> str:
    return record_id(IDEMPOTENCY_PREFIX, idempotency_key(upload))


@dataclass
class _Object:
    upload: S3Upload
    record_id: str
    message_ids: set[str] = field(default_factory=set)

    def manifest_line(self) -> str:
        line = self.upload.parameters() | {_LINE_ID: self.record_id}
        return json.dumps(line, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass
class _Plan:
    """What a batch asks for, after parsing."""

    objects: dict[str, _Object] = field(default_factory=dict)  # by record id
    failed: set[str] = field(default_factory=set)  # message ids to report failed
    redelivered: bool = False


@dataclass(frozen=True)
class _Takeover:
    """A stale record we may overwrite: only while it is still exactly that stale record."""

    manifest_key: str | None  # the stale burst claim's manifest; None = a stale Powertools record


_Verdict = Literal["duplicate", "contested", "retry"] | _Takeover


# --- the batch -----------------------------------------------------------------------------------


def handle_batch(
    event: dict[str, Any],
    context: LambdaContext | None,
    settings: SubmitSettings,
    burst: BurstSettings,
) -> PartialItemFailureResponse:
    """Submit the uploads of an SQS batch as array jobs; the response lists the messages to redeliver."""
    records = event.get("Records") or []
    plan = _parse(records)
    if plan.objects:
        ledger = _Ledger(settings, burst, look_first=plan.redelivered)
        pending = sorted(plan.objects.values(), key=lambda o: o.record_id)
        for chunk in _chunks(pending, burst.max_array_size):
            _submit_chunk(chunk, plan, context, ledger)
        ledger.flush()
        if ledger.duplicates:
            metrics.add_metric(name="DuplicateSkipped", unit=MetricUnit.Count, value=ledger.duplicates)
            logger.info(
                "Duplicate deliveries, objects already submitted", extra={"objects": ledger.duplicates}
            )
    return {"batchItemFailures": [{"itemIdentifier": m} for m in sorted(plan.failed)]}


def _parse(records: Iterable[dict[str, Any]]) -> _Plan:
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
            rid = upload_record_id(item)
            plan.objects.setdefault(rid, _Object(item, rid)).message_ids.add(message_id)
    return plan


def _receive_count(record: dict[str, Any]) -> int:
    try:
        return int((record.get("attributes") or {}).get("ApproximateReceiveCount") or 1)
    except (TypeError, ValueError):
        return 1


def _submit_chunk(chunk: list[_Object], plan: _Plan, context: LambdaContext | None, ledger: _Ledger) -> None:
    # An object whose message already failed (another of its records is contested) still goes in:
    # its redelivery then finds it COMPLETED. Never leave one out silently.
    if len(chunk) == 1:  # Batch array jobs have 2 children at least: one object is a plain job
        _submit_single(chunk[0], plan, context, ledger.settings)
        return
    manifest_key = manifest_key_for(chunk, ledger.burst)
    try:
        claimed = _claim(chunk, manifest_key, plan, context, ledger)
    except Exception:  # claims made so far end at the invocation's deadline, then are settled
        logger.exception("Claiming failed, SQS will redeliver the batch", extra={"objects": len(chunk)})
        _fail(plan, chunk)
        return
    if len(claimed) == 1:  # the others were duplicates or contested: give it back, submit it alone
        _release(ledger.settings.idempotency_table_name, claimed[0], manifest_key)
        _submit_single(claimed[0], plan, context, ledger.settings)
        return
    if not claimed:
        return
    try:
        _submit_array(claimed, manifest_key, plan, context, ledger)
    except Exception:
        logger.exception(
            "Array job not submitted, SQS will redeliver the batch", extra={"objects": len(claimed)}
        )
        ledger.abandon(claimed, manifest_key)
        _fail(plan, claimed)
        return
    # Nothing more to write: the claims name the manifest, whose job now exists (module docstring).
    metrics.add_metric(name="ObjectsInArrayJob", unit=MetricUnit.Count, value=len(claimed))


def _submit_single(
    obj: _Object, plan: _Plan, context: LambdaContext | None, settings: SubmitSettings
) -> None:
    try:
        submit_or_settle(obj.upload, settings, context, plan.redelivered)
    except (IdempotencyAlreadyInProgressError, SubmitFailedError) as error:
        logger.warning("Upload not submitted yet, SQS will redeliver it", extra={"error": str(error)})
        plan.failed.update(obj.message_ids)
    except Exception:
        logger.exception("Upload submit failed", extra={"key": obj.upload.key})
        plan.failed.update(obj.message_ids)


def _fail(plan: _Plan, objects: Iterable[_Object]) -> None:
    for obj in objects:
        plan.failed.update(obj.message_ids)


def manifest_key_for(chunk: Iterable[_Object], burst: BurstSettings) -> str:
    """Deterministic: the same set of objects always gets the same manifest (and job name)."""
    digest = hashlib.sha256("\n".join(sorted(o.record_id for o in chunk)).encode()).hexdigest()[:40]
    return f"{burst.manifest_prefix}{digest}.jsonl"


def array_job_name(settings: SubmitSettings, manifest_key: str) -> str:
    """The array job's name, from its manifest key alone (a recovery looks the job up by it)."""
    return safe_job_name(settings.job_name_prefix, "array", manifest_key)


def _submit_array(
    claimed: list[_Object], manifest_key: str, plan: _Plan, context: LambdaContext | None, ledger: _Ledger
) -> SubmittedJob:
    """Write the manifest, then submit its array job once (the job, or the one an earlier try made)."""
    settings = ledger.settings
    bucket = ledger.manifest_bucket(claimed[0].upload.bucket)
    body = "\n".join(obj.manifest_line() for obj in claimed) + "\n"
    clients.client("s3").put_object(
        Bucket=bucket, Key=manifest_key, Body=body.encode("utf-8"), ContentType="application/x-ndjson"
    )
    digest = manifest_key.rsplit("/", 1)[-1].removesuffix(".jsonl")
    spec = JobSpec(
        job_name=array_job_name(settings, manifest_key),
        parameters={"manifestBucket": bucket, "manifestKey": manifest_key, "objectCount": str(len(claimed))},
        array_size=len(claimed),
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
        extra={"job_id": outcome.job.job_id, "manifest_key": manifest_key, "objects": len(claimed)},
    )
    return outcome.job


# --- claims ----------------------------------------------------------------------------------------


def _claim(
    chunk: list[_Object], manifest_key: str, plan: _Plan, context: LambdaContext | None, ledger: _Ledger
) -> list[_Object]:
    """Claim the chunk's objects for `manifest_key`; returns the claimed ones, sorted by record id.

    Duplicates are completed in the ledger, contested objects fail their messages.
    """
    table = ledger.settings.idempotency_table_name
    now = time.time()
    remaining_ms = context.get_remaining_time_in_millis() if context is not None else 60_000
    claim_expiry = int(now * 1000) + remaining_ms
    pending: list[tuple[_Object, _Takeover | None]] = [(obj, None) for obj in chunk]
    claimed: list[_Object] = []
    contested = 0

    def follow(obj: _Object, takeover: _Takeover | None, verdict: _Verdict, into: list[Any]) -> None:
        nonlocal contested
        if verdict == "contested":
            contested += 1
            plan.failed.update(obj.message_ids)
        elif verdict == "retry":
            into.append((obj, takeover))
        elif verdict != "duplicate":
            into.append((obj, verdict))

    for round_ in range(_CLAIM_ROUNDS):
        if not pending:
            break
        if round_:
            time.sleep(min(0.5, 0.02 * 2**round_))  # only transaction conflicts and throttling wait
        again: list[tuple[_Object, _Takeover | None]] = []
        for group in _chunks(pending, _TRANSACT_CHUNK):
            if ledger.look_first:
                records = _existing_records(table, [obj.record_id for obj, takeover in group if not takeover])
                free: list[tuple[_Object, _Takeover | None]] = []
                for obj, takeover in group:
                    current = records.get(obj.record_id)
                    if current is None:
                        free.append((obj, takeover))
                    else:
                        follow(obj, takeover, ledger.settle(obj, current, now), free)
                group = free
                if not group:
                    continue
            reasons = _transact_claims(table, group, manifest_key, claim_expiry, now)
            if reasons is None:
                claimed.extend(obj for obj, _ in group)
                continue
            ledger.look_first = True
            for (obj, takeover), reason in zip(group, reasons, strict=True):
                follow(obj, takeover, _verdict(obj, takeover, reason, ledger, now), again)
        pending = again
    if pending:
        logger.warning(
            "Uploads not claimed after retries, SQS will redeliver them", extra={"objects": len(pending)}
        )
        _fail(plan, (obj for obj, _ in pending))
    if contested:
        logger.info("Uploads being submitted by another invocation", extra={"objects": contested})
    return sorted(claimed, key=lambda o: o.record_id)


def _transact_claims(
    table: str,
    group: list[tuple[_Object, _Takeover | None]],
    manifest_key: str,
    claim_expiry: int,
    now: float,
) -> list[dict[str, Any]] | None:
    """One TransactWriteItems of conditional Puts: None if all were claimed, else the reasons."""
    expiry = str(int(now) + IDEMPOTENCY_TTL_SECONDS)
    items = []
    for obj, takeover in group:
        condition, names, values = _claim_condition(takeover, now)
        items.append(
            {
                "Put": {
                    "TableName": table,
                    "Item": {
                        _ID: {"S": obj.record_id},
                        _STATUS: {"S": _INPROGRESS},
                        _EXPIRY: {"N": expiry},
                        _MANIFEST: {"S": manifest_key},
                        _CLAIM_EXPIRY: {"N": str(claim_expiry)},
                    },
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            }
        )
    try:
        clients.client("dynamodb").transact_write_items(TransactItems=items)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if code != "TransactionCanceledException":  # throttled, in progress, 5xx after botocore's retries
            logger.warning("Claim transaction failed, retrying", extra={"error_code": code})
            return [{"Code": code or "Error"} for _ in group]
        reasons = error.response.get("CancellationReasons") or []
        if len(reasons) != len(group):  # no per-item answer: try them all again
            return [{"Code": "TransactionConflict"} for _ in group]
        return [dict(reason) for reason in reasons]
    return None


def _existing_records(table: str, record_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The records that exist among `record_ids` (at most 100), read consistently, as plain values."""
    if not record_ids:
        return {}
    dynamodb = clients.client("dynamodb")
    names = {f"#a{i}": name for i, name in enumerate(_SETTLE_ATTRIBUTES)}
    request: dict[str, Any] = {
        table: {
            "Keys": [{_ID: {"S": rid}} for rid in record_ids],
            "ConsistentRead": True,
            "ProjectionExpression": ", ".join(names),
            "ExpressionAttributeNames": names,
        }
    }
    found: dict[str, dict[str, Any]] = {}
    for attempt in range(8):
        answer = dynamodb.batch_get_item(RequestItems=request)
        for item in answer.get("Responses", {}).get(table, []):
            record = _plain(item)
            found[str(record[_ID])] = record
        request = answer.get("UnprocessedKeys") or {}
        if not request:
            return found
        time.sleep(0.05 * 2**attempt)
    raise RuntimeError("DynamoDB kept returning UnprocessedKeys")


def _claim_condition(takeover: _Takeover | None, now: float) -> tuple[str, dict[str, str], dict[str, Any]]:
    """Free (never written, or expired), or still exactly the stale record we decided to take over."""
    condition = "attribute_not_exists(#id) OR #expiry < :now"
    names = {"#id": _ID, "#expiry": _EXPIRY}
    values: dict[str, Any] = {":now": {"N": str(int(now))}}
    if takeover is not None:
        names |= {"#status": _STATUS, "#manifest": _MANIFEST}
        values |= {":inprogress": {"S": _INPROGRESS}, ":now_ms": {"N": str(int(now * 1000))}}
        if takeover.manifest_key is None:
            condition += (
                " OR (#status = :inprogress AND attribute_not_exists(#manifest)"
                " AND #in_progress_expiry < :now_ms)"
            )
            names["#in_progress_expiry"] = _IN_PROGRESS_EXPIRY
        else:
            condition += " OR (#status = :inprogress AND #manifest = :stale AND #claim_expiry < :now_ms)"
            names["#claim_expiry"] = _CLAIM_EXPIRY
            values[":stale"] = {"S": takeover.manifest_key}
    return condition, names, values


def _verdict(
    obj: _Object, takeover: _Takeover | None, reason: Mapping[str, Any], ledger: _Ledger, now: float
) -> _Verdict:
    code = reason.get("Code")
    if code in (None, "None"):
        return "retry"  # passed its condition; the transaction failed for another object
    if code != "ConditionalCheckFailed":
        return "retry"  # TransactionConflict (a concurrent transaction on it), throttling
    current = _plain(reason.get("Item") or {})
    if not current:
        return "retry"  # gone since (deleted): claim it freely
    return ledger.settle(obj, current, now)


def _release(table: str, obj: _Object, manifest_key: str) -> None:
    """Delete our fresh claim (nothing was submitted for it) so the per-object path can claim it."""
    try:
        clients.client("dynamodb").delete_item(
            TableName=table,
            Key={_ID: {"S": obj.record_id}},
            ConditionExpression="#status = :inprogress AND #manifest = :manifest",
            ExpressionAttributeNames={"#status": _STATUS, "#manifest": _MANIFEST},
            ExpressionAttributeValues={":inprogress": {"S": _INPROGRESS}, ":manifest": {"S": manifest_key}},
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise


# --- settling existing records -----------------------------------------------------------------


class _Ledger:
    """Per invocation: what is known about manifests' jobs, and the COMPLETED records to write."""

    def __init__(
        self, settings: SubmitSettings, burst: BurstSettings | None = None, *, look_first: bool = False
    ) -> None:
        self.settings = settings
        self.burst = burst or burst_settings()
        self.duplicates = 0
        # Read the records before claiming (BatchGetItem): once one claim transaction of this
        # invocation was cancelled, or on a redelivery. A transaction is all-or-nothing, so one
        # object claimed elsewhere cancels 99 free ones, and in a burst with duplicates spread over
        # concurrent batches most transactions would be cancelled two or three times.
        self.look_first = look_first
        self._jobs: dict[str, SubmittedJob | None] = {}
        self._indexes: dict[str, dict[str, int]] = {}
        self._completions: list[tuple[str, str, str]] = []

    def manifest_bucket(self, upload_bucket: str) -> str:
        return self.burst.manifest_bucket or upload_bucket

    def settle(self, obj: _Object, current: Mapping[str, Any], now: float) -> _Verdict:
        """What to do with `obj` given the record another claimer left."""
        now_ms = int(now * 1000)
        status = current.get(_STATUS)
        if int(current.get(_EXPIRY, 0)) < int(now):
            return "retry"  # expired since: the free condition holds now
        if status == _COMPLETED:
            self.duplicates += 1
            return "duplicate"
        if status != _INPROGRESS:
            return "contested"
        manifest_key = current.get(_MANIFEST)
        if manifest_key:  # a burst claim
            if _claim_is_live(current, now):
                self.duplicates += 1
                return "duplicate"  # in flight: the claimer's message carries it (module docstring)
            try:
                adopted = self.adopt(obj, str(manifest_key))
            except ClientError:
                logger.exception(
                    "Manifest of an earlier array job unreadable", extra={"manifest_key": manifest_key}
                )
                return "contested"  # never guess: the message comes back (then the DLQ)
            if adopted:
                self.duplicates += 1
                return "duplicate"
            return _Takeover(manifest_key=str(manifest_key))
        # a Powertools (per-object) record
        if _IN_PROGRESS_EXPIRY not in current or int(current[_IN_PROGRESS_EXPIRY]) >= now_ms:
            return "contested"
        spec = job_spec_for(obj.upload, self.settings.job_name_prefix)
        if job := find_job_by_name(self.settings.job_queue_arn, spec.job_name):
            logger.info("Adopted job of an earlier per-object attempt", extra={"job_id": job.job_id})
            self.complete(obj, job.job_id, job.job_name)
            self.duplicates += 1
            return "duplicate"
        return _Takeover(manifest_key=None)

    def adopt(self, obj: _Object, manifest_key: str) -> bool:
        """If the manifest's array job exists and lists `obj`, complete `obj` in it (to flush)."""
        job = self.manifest_job(manifest_key)
        if job is None:
            return False
        index = self.manifest_index(obj.upload.bucket, manifest_key).get(obj.record_id)
        if index is None:
            return False
        logger.info("Adopted array job of an earlier attempt", extra={"job_id": job.job_id})
        self.complete(obj, f"{job.job_id}:{index}", job.job_name)
        return True

    def manifest_job(self, manifest_key: str) -> SubmittedJob | None:
        """The array job submitted for a manifest: its `s3-manifest` record, else Batch by name."""
        if manifest_key not in self._jobs:
            job: SubmittedJob | None = None
            rid = record_id(MANIFEST_IDEMPOTENCY_PREFIX, {"manifestKey": manifest_key})
            item = (
                clients.client("dynamodb")
                .get_item(
                    TableName=self.settings.idempotency_table_name, Key={_ID: {"S": rid}}, ConsistentRead=True
                )
                .get("Item")
            )
            record = _plain(item or {})
            if record.get(_STATUS) == _COMPLETED:
                data = json.loads(str(record.get(_DATA) or "{}"))
                if isinstance(data, dict) and data.get("jobId"):
                    job = SubmittedJob(job_id=str(data["jobId"]), job_name=str(data.get("jobName", "")))
            if job is None:
                job = find_job_by_name(
                    self.settings.job_queue_arn, array_job_name(self.settings, manifest_key)
                )
            self._jobs[manifest_key] = job
        return self._jobs[manifest_key]

    def manifest_index(self, upload_bucket: str, manifest_key: str) -> dict[str, int]:
        """Record id -> line of the manifest (written before its job was submitted)."""
        if manifest_key not in self._indexes:
            body = (
                clients.client("s3")
                .get_object(Bucket=self.manifest_bucket(upload_bucket), Key=manifest_key)["Body"]
                .read()
                .decode("utf-8")
            )
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
            self._indexes[manifest_key] = {str(line.get(_LINE_ID)): i for i, line in enumerate(lines)}
        return self._indexes[manifest_key]

    @property
    def pending(self) -> list[tuple[str, str, str]]:
        """(record id, job id, job name) of the COMPLETED records not written yet."""
        return list(self._completions)

    def complete(self, obj: _Object, job_id: str, job_name: str) -> None:
        self._completions.append((obj.record_id, job_id, job_name))

    def flush(self) -> None:
        """COMPLETED records in the shape per-object `submit_once` stores (its duplicates see them too)."""
        completions, self._completions = self._completions, []
        expiry = str(int(time.time()) + IDEMPOTENCY_TTL_SECONDS)
        _batch_write(
            self.settings.idempotency_table_name,
            [
                {
                    _ID: {"S": rid},
                    _STATUS: {"S": _COMPLETED},
                    _EXPIRY: {"N": expiry},
                    _DATA: {"S": json.dumps({"jobId": job_id, "jobName": job_name, "duplicate": False})},
                }
                for rid, job_id, job_name in completions
            ],
        )

    def abandon(self, objects: list[_Object], manifest_key: str) -> None:
        """Our claims end now but keep naming the manifest: the next delivery looks for its job first."""
        self._completions = [c for c in self._completions if c[0] not in {o.record_id for o in objects}]
        expiry = str(int(time.time()) + IDEMPOTENCY_TTL_SECONDS)
        try:
            _batch_write(
                self.settings.idempotency_table_name,
                [
                    {
                        _ID: {"S": obj.record_id},
                        _STATUS: {"S": _INPROGRESS},
                        _EXPIRY: {"N": expiry},
                        _MANIFEST: {"S": manifest_key},
                        _CLAIM_EXPIRY: {"N": "0"},
                    }
                    for obj in objects
                ],
            )
        except Exception:  # they stay live until the invocation's deadline, then the same happens
            logger.exception("Could not abandon claims", extra={"objects": len(objects)})


def settle_claim(
    upload: S3Upload,
    settings: SubmitSettings,
    *,
    lambda_context: LambdaContext | None = None,
    reconcile: bool = False,
) -> SubmitOutcome | None:
    """The per-object path met a record it may not overwrite: if it is a burst-mode claim, settle it.

    Returns the outcome (the object is in the claim's array job already, or the claim was stale with
    no job and the object was submitted alone now), or None when the record is a live claim whose job
    does not exist yet (the caller's message fails and comes back later).
    """
    ledger = _Ledger(settings)
    obj = _Object(upload, upload_record_id(upload))
    item = (
        clients.client("dynamodb")
        .get_item(
            TableName=settings.idempotency_table_name, Key={_ID: {"S": obj.record_id}}, ConsistentRead=True
        )
        .get("Item")
    )
    current = _plain(item or {})
    if not current.get(_MANIFEST) or current.get(_STATUS) != _INPROGRESS:
        return None  # not a burst claim: Powertools' own answer stands
    manifest_key = str(current[_MANIFEST])
    if ledger.adopt(obj, manifest_key):  # the claim's array job exists and lists the object
        (_rid, job_id, job_name), *_ = ledger.pending
        ledger.flush()
        metrics.add_metric(name="DuplicateSkipped", unit=MetricUnit.Count, value=1)
        return SubmitOutcome(job=SubmittedJob(job_id=job_id, job_name=job_name), duplicate=True)
    if _claim_is_live(current, time.time()):
        return None  # its invocation is submitting it; this message comes back later (conservative)
    try:  # the stale claim's manifest has no job: remove the claim, submit alone
        clients.client("dynamodb").delete_item(
            TableName=settings.idempotency_table_name,
            Key={_ID: {"S": obj.record_id}},
            ConditionExpression="#status = :inprogress AND #manifest = :stale AND #claim_expiry < :now_ms",
            ExpressionAttributeNames={
                "#status": _STATUS,
                "#manifest": _MANIFEST,
                "#claim_expiry": _CLAIM_EXPIRY,
            },
            ExpressionAttributeValues={
                ":inprogress": {"S": _INPROGRESS},
                ":stale": {"S": manifest_key},
                ":now_ms": {"N": str(int(time.time() * 1000))},
            },
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return None  # someone else settled it first
        raise
    return submit_upload(upload, settings, lambda_context=lambda_context, reconcile=reconcile)


# --- DynamoDB ------------------------------------------------------------------------------------


def _claim_is_live(record: Mapping[str, Any], now: float) -> bool:
    """A burst claim whose invocation may still be running (its deadline has not passed)."""
    return int(record.get(_CLAIM_EXPIRY, 0)) >= int(now * 1000)


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


def _batch_write(table: str, items: list[dict[str, Any]]) -> None:
    dynamodb = clients.client("dynamodb")
    for chunk in _chunks(items, _WRITE_CHUNK):
        pending: dict[str, Any] = {table: [{"PutRequest": {"Item": item}} for item in chunk]}
        for attempt in range(8):
            unprocessed = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if not unprocessed:
                break
            pending = unprocessed
            time.sleep(0.05 * 2**attempt)
        else:
            raise RuntimeError("DynamoDB kept returning UnprocessedItems")
