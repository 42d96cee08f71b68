"""Array-mode claims: who is submitting which object, in the same records the per-object path uses.

An object is claimed by writing its Powertools idempotency record (same table, same id as the per-object
mode, so no object is ever submitted twice across modes) as INPROGRESS naming the batch's manifest and
the claimer's deadline (`claimExpiry`). Claims go 100 per TransactWriteItems call; a cancelled
transaction says per object why (ALL_OLD), and each answer is settled:
- COMPLETED record, or a live claim of another invocation: a duplicate (the other claimer's message is
  only deleted once the object is in a submitted job, so nothing is lost by acknowledging this one);
- a stale claim (its invocation died): if its manifest's job exists and lists the object, the object is
  done (recorded COMPLETED with that job); otherwise the claim is taken over;
- a stale per-object record: adopt the job Batch has under the object's job name, or take it over.
After one cancelled transaction (and on redeliveries) records are read first, so one object held
elsewhere does not cancel 99 free ones. A claim naming a manifest whose job exists is itself the record
that the object was submitted: no COMPLETED write follows a successful array job.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any, Literal, NamedTuple

from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from batch_dispatch.aws import clients
from batch_dispatch.aws.batch_jobs import SubmittedJob, find_job_by_name
from batch_dispatch.aws.idempotency import (
    COMPLETED,
    IDEMPOTENCY_TTL_SECONDS,
    INPROGRESS,
    RecordLayout,
    persistence_layer,
    plain_item,
    record_id,
    record_layout,
)
from batch_dispatch.job_types import JobType
from batch_dispatch.observability import logger
from batch_dispatch.settings import S3SubmitSettings
from batch_dispatch.submit import manifests
from batch_dispatch.submit.once import SubmitOutcome
from batch_dispatch.submit.s3_events import S3Upload
from batch_dispatch.submit.upload_job import IDEMPOTENCY_PREFIX, idempotency_key, upload_job_spec

TRANSACT_CHUNK = 100  # TransactWriteItems limit
WRITE_CHUNK = 25  # BatchWriteItem limit
CLAIM_ROUNDS = 8
MANIFEST = "manifestKey"
CLAIM_EXPIRY = "claimExpiry"  # epoch ms: the claimer's deadline


def layout(settings: S3SubmitSettings) -> RecordLayout:
    return record_layout(persistence_layer(settings.idempotency_table_name, IDEMPOTENCY_PREFIX))


def upload_record_id(upload: S3Upload, job_type: JobType) -> str:
    return record_id(IDEMPOTENCY_PREFIX, idempotency_key(upload, job_type))


class PendingUpload:
    """An upload of the batch, its job type, its idempotency record and the SQS messages carrying it."""

    __slots__ = ("job_type", "lineage", "message_ids", "record_id", "upload")

    def __init__(self, upload: S3Upload, job_type: JobType, lineage: str = "") -> None:
        self.upload = upload
        self.job_type = job_type
        self.lineage = lineage  # the upload's input lineage (loop_guard.py), on its manifest line
        self.record_id = upload_record_id(upload, job_type)
        self.message_ids: set[str] = set()

    def manifest_line(self) -> str:
        return manifests.manifest_line(self.upload, self.record_id, self.lineage)


class Takeover(NamedTuple):
    """A stale record we may overwrite: only while it is still exactly that stale record."""

    manifest_key: str | None  # the stale claim's manifest; None = a stale per-object record


ClaimVerdict = Literal["duplicate", "contested", "retry"] | Takeover


def claim_is_live(record: Mapping[str, Any], now: float) -> bool:
    """A claim whose invocation may still be running (its deadline has not passed)."""
    return int(record.get(CLAIM_EXPIRY, 0)) >= int(now * 1000)


class ClaimLedger:
    """Per invocation and job type: what is known about manifests' jobs, and the COMPLETED records to
    write."""

    def __init__(self, settings: S3SubmitSettings, job_type: JobType, *, read_first: bool = False) -> None:
        self.settings = settings
        self.job_type = job_type
        self.layout = layout(settings)
        self.duplicates = 0
        # Read the records before claiming once a claim transaction was cancelled, or on a redelivery:
        # a transaction is all-or-nothing, so one object claimed elsewhere cancels 99 free ones.
        self.read_first = read_first
        self._jobs: dict[str, SubmittedJob | None] = {}
        self._indexes: dict[str, dict[str, int]] = {}
        self._completions: list[tuple[str, str, str]] = []

    def settle(self, pending: PendingUpload, current: Mapping[str, Any], now: float) -> ClaimVerdict:
        """What to do with `pending` given the record another claimer left."""
        rec = self.layout
        status = current.get(rec.status)
        if int(current.get(rec.expiry, 0)) < int(now):
            return "retry"  # expired since: the free condition holds now
        if status == COMPLETED:
            self.duplicates += 1
            return "duplicate"
        if status != INPROGRESS:
            return "contested"
        manifest_key = current.get(MANIFEST)
        if manifest_key:  # an array-mode claim
            if claim_is_live(current, now):
                self.duplicates += 1
                return "duplicate"  # in flight: the claimer's message carries it (module docstring)
            try:
                adopted = self.adopt(pending, str(manifest_key))
            except ClientError:
                logger.exception(
                    "Manifest of an earlier array job unreadable", extra={"manifest_key": manifest_key}
                )
                return "contested"  # never guess: the message comes back (then the DLQ)
            if adopted:
                self.duplicates += 1
                return "duplicate"
            return Takeover(manifest_key=str(manifest_key))
        # a per-object (Powertools) record
        if rec.in_progress_expiry not in current or int(current[rec.in_progress_expiry]) >= int(now * 1000):
            return "contested"
        job_name = upload_job_spec(pending.upload, self.job_type).job_name
        if job := find_job_by_name(self.job_type.job_queue_arn, job_name):
            logger.info("Adopted job of an earlier per-object attempt", extra={"job_id": job.job_id})
            self.complete(pending, job.job_id, job.job_name)
            self.duplicates += 1
            return "duplicate"
        return Takeover(manifest_key=None)

    def adopt(self, pending: PendingUpload, manifest_key: str) -> bool:
        """If the manifest's array job exists and lists the object, complete it in that job (to flush)."""
        job = self.manifest_job(manifest_key)
        if job is None:
            return False
        bucket = manifests.manifest_bucket(self.settings, pending.upload.bucket)
        if manifest_key not in self._indexes:
            self._indexes[manifest_key] = manifests.read_manifest_index(bucket, manifest_key)
        index = self._indexes[manifest_key].get(pending.record_id)
        if index is None:
            return False
        logger.info("Adopted array job of an earlier attempt", extra={"job_id": job.job_id})
        self.complete(pending, f"{job.job_id}:{index}", job.job_name)
        return True

    def manifest_job(self, manifest_key: str) -> SubmittedJob | None:
        """The array job submitted for a manifest: its `s3-manifest` record, else Batch by name."""
        if manifest_key not in self._jobs:
            job: SubmittedJob | None = None
            rid = record_id(manifests.MANIFEST_IDEMPOTENCY_PREFIX, {"manifestKey": manifest_key})
            item = (
                clients.client("dynamodb")
                .get_item(
                    TableName=self.settings.idempotency_table_name,
                    Key={self.layout.id: {"S": rid}},
                    ConsistentRead=True,
                )
                .get("Item")
            )
            response = self.layout.stored_response(plain_item(item or {}))
            if response and response.get("jobId"):
                job = SubmittedJob(job_id=str(response["jobId"]), job_name=str(response.get("jobName", "")))
            if job is None:
                name = manifests.array_job_name(self.job_type.job_name_prefix, manifest_key)
                job = find_job_by_name(self.job_type.job_queue_arn, name)
            self._jobs[manifest_key] = job
        return self._jobs[manifest_key]

    @property
    def pending_completions(self) -> list[tuple[str, str, str]]:
        """(record id, job id, job name) of the COMPLETED records not written yet."""
        return list(self._completions)

    def complete(self, pending: PendingUpload, job_id: str, job_name: str) -> None:
        self._completions.append((pending.record_id, job_id, job_name))

    def flush(self) -> None:
        """COMPLETED records in the shape the per-object path stores (its duplicates see them too)."""
        completions, self._completions = self._completions, []
        expires_at = int(time.time()) + IDEMPOTENCY_TTL_SECONDS
        batch_write(
            self.settings.idempotency_table_name,
            [
                self.layout.completed_item(
                    rid, {"jobId": job_id, "jobName": job_name, "duplicate": False}, expires_at
                )
                for rid, job_id, job_name in completions
            ],
        )

    def abandon(self, claimed: list[PendingUpload], manifest_key: str) -> None:
        """Our claims end now but keep naming the manifest: the next delivery looks for its job first."""
        ids = {p.record_id for p in claimed}
        self._completions = [c for c in self._completions if c[0] not in ids]
        rec = self.layout
        expiry = str(int(time.time()) + IDEMPOTENCY_TTL_SECONDS)
        try:
            batch_write(
                self.settings.idempotency_table_name,
                [
                    {
                        rec.id: {"S": p.record_id},
                        rec.status: {"S": INPROGRESS},
                        rec.expiry: {"N": expiry},
                        MANIFEST: {"S": manifest_key},
                        CLAIM_EXPIRY: {"N": "0"},
                    }
                    for p in claimed
                ],
            )
        except Exception:  # they stay live until the invocation's deadline, then the same happens
            logger.exception("Could not abandon claims", extra={"objects": len(claimed)})


def claim(
    chunk: list[PendingUpload],
    manifest_key: str,
    failed_messages: set[str],
    context: LambdaContext | None,
    ledger: ClaimLedger,
) -> list[PendingUpload]:
    """Claim the chunk's objects for `manifest_key`; returns the claimed ones, sorted by record id.

    Duplicates are completed in the ledger; contested objects (and those still unclaimed after the
    retries) add their messages to `failed_messages`.
    """
    table = ledger.settings.idempotency_table_name
    now = time.time()
    remaining_ms = context.get_remaining_time_in_millis() if context is not None else 60_000
    claim_expiry = int(now * 1000) + remaining_ms
    pending: list[tuple[PendingUpload, Takeover | None]] = [(p, None) for p in chunk]
    claimed: list[PendingUpload] = []
    contested = 0

    def apply_verdict(
        item: PendingUpload, takeover: Takeover | None, verdict: ClaimVerdict, retry_into: list[Any]
    ) -> None:
        nonlocal contested
        if verdict == "contested":
            contested += 1
            failed_messages.update(item.message_ids)
        elif verdict == "retry":
            retry_into.append((item, takeover))
        elif verdict != "duplicate":
            retry_into.append((item, verdict))

    for round_ in range(CLAIM_ROUNDS):
        if not pending:
            break
        if round_:
            time.sleep(min(0.5, 0.02 * 2**round_))  # only transaction conflicts and throttling wait
        again: list[tuple[PendingUpload, Takeover | None]] = []
        for group in chunks(pending, TRANSACT_CHUNK):
            if ledger.read_first:
                records = existing_records(
                    ledger, [item.record_id for item, takeover in group if not takeover]
                )
                free: list[tuple[PendingUpload, Takeover | None]] = []
                for item, takeover in group:
                    current = records.get(item.record_id)
                    if current is None:
                        free.append((item, takeover))
                    else:
                        apply_verdict(item, takeover, ledger.settle(item, current, now), free)
                group = free
                if not group:
                    continue
            reasons = transact_claims(ledger.layout, table, group, manifest_key, claim_expiry, now)
            if reasons is None:
                claimed.extend(item for item, _ in group)
                continue
            ledger.read_first = True
            for (item, takeover), reason in zip(group, reasons, strict=True):
                apply_verdict(item, takeover, _verdict(item, reason, ledger, now), again)
        pending = again
    if pending:
        logger.warning(
            "Uploads not claimed after retries, SQS will redeliver them", extra={"objects": len(pending)}
        )
        for item, _ in pending:
            failed_messages.update(item.message_ids)
    if contested:
        logger.info("Uploads being submitted by another invocation", extra={"objects": contested})
    return sorted(claimed, key=lambda p: p.record_id)


def transact_claims(
    rec: RecordLayout,
    table: str,
    group: list[tuple[PendingUpload, Takeover | None]],
    manifest_key: str,
    claim_expiry: int,
    now: float,
) -> list[dict[str, Any]] | None:
    """One TransactWriteItems of conditional Puts: None if all were claimed, else the reasons."""
    expiry = str(int(now) + IDEMPOTENCY_TTL_SECONDS)
    items = []
    for item, takeover in group:
        condition, names, values = claim_condition(rec, takeover, now)
        items.append(
            {
                "Put": {
                    "TableName": table,
                    "Item": {
                        rec.id: {"S": item.record_id},
                        rec.status: {"S": INPROGRESS},
                        rec.expiry: {"N": expiry},
                        MANIFEST: {"S": manifest_key},
                        CLAIM_EXPIRY: {"N": str(claim_expiry)},
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


def existing_records(ledger: ClaimLedger, record_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The records that exist among `record_ids` (at most 100), read consistently, as plain values."""
    if not record_ids:
        return {}
    rec, table = ledger.layout, ledger.settings.idempotency_table_name
    wanted = (rec.id, rec.status, rec.expiry, MANIFEST, CLAIM_EXPIRY, rec.in_progress_expiry)
    names = {f"#a{i}": name for i, name in enumerate(wanted)}
    request: dict[str, Any] = {
        table: {
            "Keys": [{rec.id: {"S": rid}} for rid in record_ids],
            "ConsistentRead": True,
            "ProjectionExpression": ", ".join(names),
            "ExpressionAttributeNames": names,
        }
    }
    found: dict[str, dict[str, Any]] = {}
    dynamodb = clients.client("dynamodb")
    for attempt in range(8):
        answer = dynamodb.batch_get_item(RequestItems=request)
        for item in answer.get("Responses", {}).get(table, []):
            record = plain_item(item)
            found[str(record[rec.id])] = record
        request = answer.get("UnprocessedKeys") or {}
        if not request:
            return found
        time.sleep(0.05 * 2**attempt)
    raise RuntimeError("DynamoDB kept returning UnprocessedKeys")


def claim_condition(
    rec: RecordLayout, takeover: Takeover | None, now: float
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """Free (never written, or expired), or still exactly the stale record we decided to take over."""
    condition = "attribute_not_exists(#id) OR #expiry < :now"
    names = {"#id": rec.id, "#expiry": rec.expiry}
    values: dict[str, Any] = {":now": {"N": str(int(now))}}
    if takeover is not None:
        names |= {"#status": rec.status, "#manifest": MANIFEST}
        values |= {":inprogress": {"S": INPROGRESS}, ":now_ms": {"N": str(int(now * 1000))}}
        if takeover.manifest_key is None:
            condition += (
                " OR (#status = :inprogress AND attribute_not_exists(#manifest)"
                " AND #in_progress_expiry < :now_ms)"
            )
            names["#in_progress_expiry"] = rec.in_progress_expiry
        else:
            condition += " OR (#status = :inprogress AND #manifest = :stale AND #claim_expiry < :now_ms)"
            names["#claim_expiry"] = CLAIM_EXPIRY
            values[":stale"] = {"S": takeover.manifest_key}
    return condition, names, values


def _verdict(item: PendingUpload, reason: Mapping[str, Any], ledger: ClaimLedger, now: float) -> ClaimVerdict:
    code = reason.get("Code")
    if code in (None, "None"):
        return "retry"  # passed its condition; the transaction failed for another object
    if code != "ConditionalCheckFailed":
        return "retry"  # TransactionConflict (a concurrent transaction on it), throttling
    current = plain_item(reason.get("Item") or {})
    if not current:
        return "retry"  # gone since (deleted): claim it freely
    return ledger.settle(item, current, now)


def release(settings: S3SubmitSettings, item: PendingUpload, manifest_key: str) -> None:
    """Delete our fresh claim (nothing was submitted for it) so the per-object path can claim it."""
    rec = layout(settings)
    try:
        clients.client("dynamodb").delete_item(
            TableName=settings.idempotency_table_name,
            Key={rec.id: {"S": item.record_id}},
            ConditionExpression="#status = :inprogress AND #manifest = :manifest",
            ExpressionAttributeNames={"#status": rec.status, "#manifest": MANIFEST},
            ExpressionAttributeValues={":inprogress": {"S": INPROGRESS}, ":manifest": {"S": manifest_key}},
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise


SettledClaim = SubmitOutcome | Literal["free", "busy", "not-a-claim"]


def settle_claim(upload: S3Upload, job_type: JobType, settings: S3SubmitSettings) -> SettledClaim:
    """The per-object path met a record it may not overwrite: if it is an array-mode claim, settle it.

    Returns the outcome when the object is in the claim's array job already; "free" when the claim was
    stale with no job and has been removed (submit the object alone now); "busy" for a live claim whose
    job does not exist yet (the message comes back later); "not-a-claim" for a per-object record.
    """
    ledger = ClaimLedger(settings, job_type)
    rec = ledger.layout
    pending = PendingUpload(upload, job_type)
    item = (
        clients.client("dynamodb")
        .get_item(
            TableName=settings.idempotency_table_name,
            Key={rec.id: {"S": pending.record_id}},
            ConsistentRead=True,
        )
        .get("Item")
    )
    current = plain_item(item or {})
    if not current.get(MANIFEST) or current.get(rec.status) != INPROGRESS:
        return "not-a-claim"
    manifest_key = str(current[MANIFEST])
    if ledger.adopt(pending, manifest_key):  # the claim's array job exists and lists the object
        (_rid, job_id, job_name), *_ = ledger.pending_completions
        ledger.flush()
        return SubmitOutcome(job=SubmittedJob(job_id=job_id, job_name=job_name), duplicate=True)
    if claim_is_live(current, time.time()):
        return "busy"  # its invocation is submitting it; this message comes back later (conservative)
    try:  # the stale claim's manifest has no job: remove the claim
        clients.client("dynamodb").delete_item(
            TableName=settings.idempotency_table_name,
            Key={rec.id: {"S": pending.record_id}},
            ConditionExpression="#status = :inprogress AND #manifest = :stale AND #claim_expiry < :now_ms",
            ExpressionAttributeNames={
                "#status": rec.status,
                "#manifest": MANIFEST,
                "#claim_expiry": CLAIM_EXPIRY,
            },
            ExpressionAttributeValues={
                ":inprogress": {"S": INPROGRESS},
                ":stale": {"S": manifest_key},
                ":now_ms": {"N": str(int(time.time() * 1000))},
            },
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return "busy"  # someone else settled it first
        raise
    return "free"


def chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def batch_write(table: str, items: list[dict[str, Any]]) -> None:
    dynamodb = clients.client("dynamodb")
    for chunk in chunks(items, WRITE_CHUNK):
        request: dict[str, Any] = {table: [{"PutRequest": {"Item": item}} for item in chunk]}
        for attempt in range(8):
            unprocessed = dynamodb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
            if not unprocessed:
                break
            request = unprocessed
            time.sleep(0.05 * 2**attempt)
        else:
            raise RuntimeError("DynamoDB kept returning UnprocessedItems")
