"""Array mode (SubmitMode=ARRAY): the uploads of one SQS batch become ONE Batch array job.

Batch allows about 50 SubmitJob calls/s per account but 10,000 children per array job, so a burst of
uploads takes a handful of SubmitJob calls. Per batch: parse every message, claim the objects
(claims.py), write the manifest (manifests.py), then submit the array job once (`submit_once`, prefix
`s3-manifest`, reconciled by job name on redelivery). An object whose claim fails, or whose array job
could not be submitted, fails its messages: SQS redelivers them, then parks them in the DLQ. Uploads
the loop guard refuses are left out; their messages are parked in the IntakeDLQ once nothing else of
theirs failed (a failed message comes back, and is parked then).
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_dispatch.aws.batch_jobs import JobSpec, SubmittedJob
from batch_dispatch.aws.sqs_batch import receive_count
from batch_dispatch.job_types import Catalog, catalog_for
from batch_dispatch.observability import MetricUnit, logger, metrics
from batch_dispatch.settings import S3SubmitSettings
from batch_dispatch.submit import claims, loop_guard, manifests, per_object
from batch_dispatch.submit.claims import ClaimLedger, PendingUpload
from batch_dispatch.submit.loop_guard import Tripped
from batch_dispatch.submit.once import submit_once
from batch_dispatch.submit.s3_events import MalformedNotificationError, Skip, parse_body

# The loop guard reads each object's metadata and counts it (two calls per object): a few at a time.
GUARD_CONCURRENCY = 16

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse


class BatchPlan:
    """What a batch asks for, after parsing."""

    def __init__(self) -> None:
        self.uploads: dict[str, PendingUpload] = {}  # by record id
        self.failed_messages: set[str] = set()
        self.redelivered = False
        self.bodies: dict[str, str] = {}  # by message id
        self.tripped: dict[str, list[Tripped]] = {}  # by message id: what the loop guard refused


def handle(
    event: dict[str, Any],
    settings: S3SubmitSettings,
    context: LambdaContext | None = None,
    *,
    catalog: Catalog | None = None,
) -> PartialItemFailureResponse:
    """Submit the uploads of an SQS batch as array jobs; the response lists the messages to redeliver."""
    plan = plan_batch(event.get("Records") or [], settings, catalog or catalog_for(settings))
    guard_batch(plan, settings)
    by_type: dict[str, list[PendingUpload]] = {}
    for pending in sorted(plan.uploads.values(), key=lambda p: p.record_id):
        by_type.setdefault(pending.job_type.name, []).append(pending)
    for uploads in by_type.values():
        job_type = uploads[0].job_type
        if not job_type.array_mode:
            for pending in uploads:
                submit_alone(pending, plan, context, settings)
            continue
        ledger = ClaimLedger(settings, job_type, read_first=plan.redelivered)
        for chunk in claims.chunks(uploads, settings.max_array_size):
            submit_chunk(chunk, plan, context, ledger)
        ledger.flush()
        if ledger.duplicates:
            metrics.add_metric(name="DuplicateSkipped", unit=MetricUnit.Count, value=ledger.duplicates)
            logger.info(
                "Duplicate deliveries, objects already submitted",
                extra={"objects": ledger.duplicates, "job_type": job_type.name},
            )
    park_tripped(plan, settings, context)
    return {"batchItemFailures": [{"itemIdentifier": m} for m in sorted(plan.failed_messages)]}


def plan_batch(records: Iterable[dict[str, Any]], settings: S3SubmitSettings, catalog: Catalog) -> BatchPlan:
    plan = BatchPlan()
    for record in records:
        message_id = str(record.get("messageId", ""))
        plan.redelivered |= receive_count(record.get("attributes")) > 1
        plan.bodies[message_id] = str(record.get("body", ""))
        try:
            items = parse_body(plan.bodies[message_id])
        except MalformedNotificationError as error:
            per_object.log_rejected(message_id, error)
            plan.failed_messages.add(message_id)
            continue
        for item in items:
            if isinstance(item, Skip):
                per_object.log_skipped(message_id, item)
                continue
            target = per_object.route(item, catalog, settings)
            if isinstance(target, Skip):
                per_object.log_skipped(message_id, target)
                continue
            pending = PendingUpload(item, target)
            plan.uploads.setdefault(pending.record_id, pending).message_ids.add(message_id)
    return plan


def guard_batch(plan: BatchPlan, settings: S3SubmitSettings) -> None:
    """Give every upload its lineage and leave out those the loop guard refuses (their messages are
    parked at the end). An upload whose check failed fails its messages."""
    pending = list(plan.uploads.values())

    def check(item: PendingUpload) -> tuple[PendingUpload, Any]:
        try:
            return item, loop_guard.guard(item.upload, item.job_type, settings)
        except Exception as error:  # reported below, on the main thread
            return item, error

    workers = GUARD_CONCURRENCY if settings.loop_guard_on else 1
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(pending)))) as pool:
        results = list(pool.map(check, pending)) if pending else []
    for item, outcome in results:
        if isinstance(outcome, Exception):
            logger.error(
                "Loop guard check failed, SQS will redeliver the upload",
                extra={"key": item.upload.key, "error_type": type(outcome).__name__, "error": str(outcome)},
            )
            plan.failed_messages.update(item.message_ids)
            del plan.uploads[item.record_id]
            continue
        lineage, admission = outcome
        item.lineage = lineage
        if admission is not None and not admission.admitted:
            del plan.uploads[item.record_id]
            for message_id in item.message_ids:
                plan.tripped.setdefault(message_id, []).append(
                    Tripped(item.upload, item.job_type, lineage, admission)
                )


def park_tripped(plan: BatchPlan, settings: S3SubmitSettings, context: LambdaContext | None) -> None:
    """Alert and park each message holding a refused upload, unless it failed (it comes back)."""
    for message_id, tripped in sorted(plan.tripped.items()):
        if message_id in plan.failed_messages:
            continue
        try:
            loop_guard.stop(message_id, plan.bodies[message_id], tripped, settings, context)
        except Exception:
            logger.exception("Loop guard could not park a message, SQS will redeliver it")
            plan.failed_messages.add(message_id)


def submit_chunk(
    chunk: list[PendingUpload], plan: BatchPlan, context: LambdaContext | None, ledger: ClaimLedger
) -> None:
    # An object whose message already failed (another of its records is contested) still goes in:
    # its redelivery then finds it COMPLETED. Never leave one out silently.
    settings = ledger.settings
    if len(chunk) == 1:  # Batch array jobs have 2 children at least: one object is a plain job
        submit_alone(chunk[0], plan, context, settings)
        return
    manifest_key = manifests.manifest_key((p.record_id for p in chunk), settings.manifest_prefix)
    try:
        claimed = claims.claim(chunk, manifest_key, plan.failed_messages, context, ledger)
    except Exception:  # claims made so far end at the invocation's deadline, then are settled
        logger.exception("Claiming failed, SQS will redeliver the batch", extra={"objects": len(chunk)})
        fail(plan, chunk)
        return
    if len(claimed) == 1:  # the others were duplicates or contested: give it back, submit it alone
        claims.release(settings, claimed[0], manifest_key)
        submit_alone(claimed[0], plan, context, settings)
        return
    if not claimed:
        return
    try:
        submit_array(claimed, manifest_key, plan, context, settings)
    except Exception:
        logger.exception(
            "Array job not submitted, SQS will redeliver the batch", extra={"objects": len(claimed)}
        )
        ledger.abandon(claimed, manifest_key)
        fail(plan, claimed)
        return
    # Nothing more to write: the claims name the manifest, whose job now exists (claims.py).
    metrics.add_metric(name="ObjectsInArrayJob", unit=MetricUnit.Count, value=len(claimed))


def submit_alone(
    pending: PendingUpload, plan: BatchPlan, context: LambdaContext | None, settings: S3SubmitSettings
) -> None:
    try:
        per_object.submit_or_settle(
            pending.upload, pending.job_type, settings, context, plan.redelivered, pending.lineage
        )
    except per_object.RETRY_LATER as error:
        logger.warning("Upload not submitted yet, SQS will redeliver it", extra={"error": str(error)})
        plan.failed_messages.update(pending.message_ids)
    except Exception:
        logger.exception("Upload submit failed", extra={"key": pending.upload.key})
        plan.failed_messages.update(pending.message_ids)


def fail(plan: BatchPlan, pending: Iterable[PendingUpload]) -> None:
    for item in pending:
        plan.failed_messages.update(item.message_ids)


def submit_array(
    claimed: list[PendingUpload],
    manifest_key: str,
    plan: BatchPlan,
    context: LambdaContext | None,
    settings: S3SubmitSettings,
) -> SubmittedJob:
    """Write the manifest, then submit its array job once (the job, or the one an earlier try made)."""
    job_type = claimed[0].job_type
    bucket = manifests.manifest_bucket(settings, claimed[0].upload.bucket)
    manifests.write_manifest(bucket, manifest_key, [p.manifest_line() for p in claimed])
    spec = JobSpec(
        job_name=manifests.array_job_name(job_type.job_name_prefix, manifest_key),
        parameters={"manifestBucket": bucket, "manifestKey": manifest_key, "objectCount": str(len(claimed))},
        array_size=len(claimed),
        tags={
            "batch-dispatch:trigger": "s3-array",
            "batch-dispatch:manifest": manifests.manifest_digest(manifest_key),
            "batch-dispatch:job-type": job_type.name,
        },
    )
    outcome = submit_once(
        spec,
        job_type=job_type,
        table_name=settings.idempotency_table_name,
        key_prefix=manifests.MANIFEST_IDEMPOTENCY_PREFIX,
        idempotency_key={"manifestKey": manifest_key},
        lambda_context=context,
        reconcile=plan.redelivered,
    )
    logger.info(
        "Array job submitted",
        extra={"job_id": outcome.job.job_id, "manifest_key": manifest_key, "objects": len(claimed)},
    )
    return outcome.job
