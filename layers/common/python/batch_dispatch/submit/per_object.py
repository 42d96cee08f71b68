"""One job per uploaded object (SubmitMode=PER_OBJECT), exactly once, one SQS message at a time.

Every `ObjectCreated:*` record of a message becomes one job through `submit_once`, keyed on bucket +
decoded key + versionId (sequencer when unversioned, eventTime + eTag when neither is sent). A message
that fails (malformed body, throttling past the time budget, a concurrent delivery in progress) is
reported in `batchItemFailures` on its own: SQS redelivers it, then parks it in the DLQ; its batch
mates are unaffected. A record the loop guard refuses (loop_guard.py) is not submitted; its message is
parked in the IntakeDLQ at once, after the message's other records were submitted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_dispatch.aws.batch_jobs import SubmitFailedError
from batch_dispatch.aws.sqs_batch import SqsMessage, process_messages
from batch_dispatch.job_types import Catalog, JobType, catalog_for
from batch_dispatch.observability import MetricUnit, logger, metrics
from batch_dispatch.settings import S3SubmitSettings
from batch_dispatch.submit import claims, loop_guard, manifests
from batch_dispatch.submit.loop_guard import Tripped
from batch_dispatch.submit.once import SubmitOutcome, submit_once
from batch_dispatch.submit.s3_events import MalformedNotificationError, S3Upload, Skip, parse_body
from batch_dispatch.submit.upload_job import IDEMPOTENCY_PREFIX, idempotency_key, upload_job_spec

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

# Don't start a record with less time than this left: a record is a DynamoDB write, SubmitJob (with
# backoff while throttled) and a DynamoDB update. Deferred records come back after the visibility timeout.
DEFAULT_START_MARGIN_SECONDS = 5.0
# Expected under concurrency or throttling: the message fails and comes back later.
RETRY_LATER = (IdempotencyAlreadyInProgressError, SubmitFailedError)


class BudgetExhaustedError(RuntimeError):
    """Too little Lambda time left to start this record; it is reported failed and SQS redelivers it."""


class RecordResult(NamedTuple):
    """What one SQS message produced (the record handler's return value)."""

    message_id: str
    submitted: tuple[SubmitOutcome, ...] = ()
    skipped: tuple[Skip, ...] = ()
    parked: tuple[Tripped, ...] = ()  # refused by the loop guard; the message went to the IntakeDLQ


def submit_upload(
    upload: S3Upload,
    job_type: JobType,
    settings: S3SubmitSettings,
    *,
    lambda_context: LambdaContext | None = None,
    reconcile: bool = False,
    lineage: str = "",
) -> SubmitOutcome:
    """Submit the upload's job once (same table as the schedule path, prefix `s3-object`)."""
    return submit_once(
        upload_job_spec(upload, job_type, lineage),
        job_type=job_type,
        table_name=settings.idempotency_table_name,
        key_prefix=IDEMPOTENCY_PREFIX,
        idempotency_key=idempotency_key(upload, job_type),
        lambda_context=lambda_context,
        reconcile=reconcile,
    )


def submit_or_settle(
    upload: S3Upload,
    job_type: JobType,
    settings: S3SubmitSettings,
    lambda_context: LambdaContext | None,
    reconcile: bool,
    lineage: str = "",
) -> SubmitOutcome:
    """`submit_upload`; a record Powertools reports in progress may be an array-mode claim left by a
    crashed invocation (claims carry no in_progress_expiration): those are settled (claims.py)."""

    def submit() -> SubmitOutcome:
        return submit_upload(
            upload, job_type, settings, lambda_context=lambda_context, reconcile=reconcile, lineage=lineage
        )

    try:
        return submit()
    except IdempotencyAlreadyInProgressError:
        settled = claims.settle_claim(upload, job_type, settings)
        if isinstance(settled, SubmitOutcome):
            metrics.add_metric(name="DuplicateSkipped", unit=MetricUnit.Count, value=1)
            return settled
        if settled == "free":
            return submit()
        raise


def log_rejected(message_id: str, error: MalformedNotificationError) -> None:
    logger.error(
        "Rejected SQS message: not an S3 event notification",
        extra={"message_id": message_id, "reason": error.reason},
    )
    metrics.add_metric(name="RecordRejected", unit=MetricUnit.Count, value=1)


def route(upload: S3Upload, catalog: Catalog, settings: S3SubmitSettings) -> JobType | Skip:
    """The job type the upload starts, or why it starts none (an array-mode manifest, a job's output,
    no route)."""
    if manifests.is_own_manifest(upload, settings):
        return Skip(reason="manifest", event_name=upload.event_name, bucket=upload.bucket, key=upload.key)
    if catalog.output_of(upload.key, upload.bucket) is not None:
        return Skip(
            reason="output-prefix", event_name=upload.event_name, bucket=upload.bucket, key=upload.key
        )
    job_type = catalog.route(upload.key, upload.bucket)
    if job_type is None:
        return Skip(reason="no-route", event_name=upload.event_name, bucket=upload.bucket, key=upload.key)
    return job_type


def log_skipped(message_id: str, item: Skip) -> None:
    reason = item.reason
    logger.info(
        "S3 notification record skipped",
        extra={
            "message_id": message_id,
            "reason": reason,
            "event_name": item.event_name,
            "bucket": item.bucket,
            "key": item.key,
        },
    )
    metrics.add_metric(name="ObjectSkipped", unit=MetricUnit.Count, value=1)


def _ensure_time_left(lambda_context: LambdaContext | None, margin_seconds: float, message_id: str) -> None:
    if lambda_context is None:
        return
    remaining = lambda_context.get_remaining_time_in_millis() / 1000
    if remaining < margin_seconds:
        logger.warning(
            "Time budget nearly spent, leaving record for redelivery",
            extra={"message_id": message_id, "remaining_seconds": remaining},
        )
        metrics.add_metric(name="RecordDeferred", unit=MetricUnit.Count, value=1)
        raise BudgetExhaustedError(f"{remaining:.1f}s left, need {margin_seconds:.1f}s to start a record")


def record_handler(
    message: SqsMessage,
    lambda_context: LambdaContext | None = None,
    *,
    settings: S3SubmitSettings,
    catalog: Catalog,
    start_margin_seconds: float = DEFAULT_START_MARGIN_SECONDS,
) -> RecordResult:
    """Handle one SQS message; raising makes it a failed item (SQS redelivers it, then the DLQ).

    A redelivered message (receive count > 1) may follow a crash between SubmitJob and saving the
    idempotency record, so only then does the submit first look for the job in Batch (reconcile).
    """
    message_id = message.message_id
    try:
        items = parse_body(message.body)
    except MalformedNotificationError as error:
        log_rejected(message_id, error)
        raise

    reconcile = message.receive_count > 1
    submitted: list[SubmitOutcome] = []
    skipped: list[Skip] = []
    tripped: list[Tripped] = []
    for item in items:
        if isinstance(item, Skip):
            log_skipped(message_id, item)
            skipped.append(item)
            continue
        target = route(item, catalog, settings)
        if isinstance(target, Skip):
            log_skipped(message_id, target)
            skipped.append(target)
            continue
        _ensure_time_left(lambda_context, start_margin_seconds, message_id)
        logger.append_keys(message_id=message_id, bucket=item.bucket, key=item.key, job_type=target.name)
        try:
            lineage, admission = loop_guard.guard(item, target, settings)
            if admission is not None and not admission.admitted:
                tripped.append(Tripped(item, target, lineage, admission))
                continue
            submitted.append(submit_or_settle(item, target, settings, lambda_context, reconcile, lineage))
        except RETRY_LATER as error:
            logger.warning("Upload not submitted yet, SQS will redeliver it", extra={"error": str(error)})
            raise
        except Exception:
            logger.exception("Upload submit failed")
            raise
        finally:
            logger.remove_keys(["message_id", "bucket", "key", "job_type"])
    if tripped:  # the message's other records are submitted: park it, with the reason
        loop_guard.stop(message_id, message.body, tripped, settings, lambda_context)
    return RecordResult(
        message_id=message_id, submitted=tuple(submitted), skipped=tuple(skipped), parked=tuple(tripped)
    )


def handle(
    event: dict[str, Any],
    settings: S3SubmitSettings,
    context: LambdaContext | None = None,
    *,
    catalog: Catalog | None = None,
    start_margin_seconds: float = DEFAULT_START_MARGIN_SECONDS,
) -> PartialItemFailureResponse:
    """Process an SQS batch; the response lists the messages SQS must redeliver (all of them when every
    message fails: same SQS outcome, and a rejected body is always "reported as a failed item")."""
    known = catalog or catalog_for(settings)
    return process_messages(
        event,
        lambda message: record_handler(
            message, context, settings=settings, catalog=known, start_margin_seconds=start_margin_seconds
        ),
    )
