"""The S3 intake path: SQS messages carrying S3 event notifications become one Batch job per upload.

A message body is an S3 event notification (S3 -> SQS), an SNS notification wrapping one
(S3 -> SNS -> SQS), or `s3:TestEvent`. Every `ObjectCreated:*` record of a body becomes one job,
exactly once (see `submission.submit_once`), keyed on bucket + decoded key + versionId (sequencer
when unversioned, eventTime + eTag when neither is sent). Other event names, folder markers and test
events submit nothing. A body that is none of these raises `MalformedNotificationError`, so the
message is reported as a failed item and the queue's redrive policy parks it in the DLQ.

The steps are separate on purpose: `parse_body` (pure) -> `job_spec_for` / `idempotency_key` ->
`submit_upload`. A burst mode (one array job per batch) can reuse `parse_body` over every record and
build its own spec without touching the per-record path.
"""

from __future__ import annotations

import json
import os
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal, TypeVar
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from batch_dispatch.batch import JobSpec, SubmitFailedError, safe_job_name
from batch_dispatch.config import SubmitSettings, submit_settings
from batch_dispatch.observability import MetricUnit, logger, metrics
from batch_dispatch.submission import SubmitOutcome, submit_once

IDEMPOTENCY_PREFIX = "s3-object"
# Don't start a record with less time than this left: a record is a DynamoDB write, SubmitJob (with
# backoff while throttled) and a DynamoDB update. Deferred records come back after the visibility timeout.
DEFAULT_START_MARGIN_SECONDS = 5.0
UPLOAD_EVENT_PREFIX = "ObjectCreated:"
# S3 writes versionId "null" for objects put while versioning is suspended: not a unique version.
_NULL_VERSION = "null"

# Burst mode (batch_dispatch.burst) writes its manifests here; their own notifications submit nothing.
MANIFEST_BUCKET_ENV, MANIFEST_PREFIX_ENV = "MANIFEST_BUCKET", "MANIFEST_PREFIX"
DEFAULT_MANIFEST_PREFIX = "_batch-dispatch/manifests/"

SkipReason = Literal["test-event", "not-an-upload", "folder-marker", "manifest"]


class MalformedNotificationError(ValueError):
    """The body is not an S3 event notification, an SNS-wrapped one or `s3:TestEvent`.

    `reason` says what was wrong without quoting the body (bodies may carry anything).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BudgetExhaustedError(RuntimeError):
    """Too little Lambda time left to start this record; it is reported failed and SQS redelivers it."""


# --- inbound models ----------------------------------------------------------------------------
# Lenient on purpose: only what we use is required and unknown fields are kept. Powertools'
# S3RecordModel requires userIdentity, requestParameters, responseElements and bucket.ownerIdentity,
# which moto's notifications (and the emulator built on them) don't send; the SQS record itself is
# the Powertools `SQSRecord` data class that BatchProcessor hands to the record handler.


class _Inbound(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)


_ModelT = TypeVar("_ModelT", bound=_Inbound)


class SnsEnvelope(_Inbound):
    """An SNS notification as SQS receives it (raw message delivery off)."""

    Type: Literal["Notification"]
    Message: str
    TopicArn: str | None = None
    MessageId: str | None = None


class S3BucketRef(_Inbound):
    name: str = Field(min_length=1)


class S3ObjectRef(_Inbound):
    key: str = Field(min_length=1)  # URL-encoded as S3 sends it (spaces as '+')
    size: int | None = Field(default=None, ge=0)
    eTag: str | None = None
    versionId: str | None = None
    sequencer: str | None = None


class S3Entity(_Inbound):
    bucket: S3BucketRef
    object_: S3ObjectRef = Field(alias="object")


class S3EventRecord(_Inbound):
    eventName: str = Field(min_length=1)
    eventTime: str | None = None
    s3: S3Entity


class S3EventNotification(_Inbound):
    Records: list[S3EventRecord] = Field(min_length=1)


# --- domain values -----------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Upload:
    """One `ObjectCreated:*` record, key decoded."""

    bucket: str
    key: str
    event_name: str
    event_time: str | None = None
    version_id: str | None = None
    size: int | None = None
    etag: str | None = None
    sequencer: str | None = None

    def parameters(self) -> dict[str, str]:
        """The job's Batch parameters (all strings): bucket and key, plus what the record carried."""
        optional = {
            "versionId": self.version_id,
            "size": None if self.size is None else str(self.size),
            "etag": self.etag,
            "eventTime": self.event_time,
        }
        return {"bucket": self.bucket, "key": self.key} | {k: v for k, v in optional.items() if v is not None}


@dataclass(frozen=True)
class Skip:
    """A record (or a whole body) that is valid but asks for no job."""

    reason: SkipReason
    event_name: str | None = None
    bucket: str | None = None
    key: str | None = None


@dataclass(frozen=True)
class RecordResult:
    """What one SQS message produced (the record handler's return value)."""

    message_id: str
    submitted: tuple[SubmitOutcome, ...] = field(default_factory=tuple)
    skipped: tuple[Skip, ...] = field(default_factory=tuple)


# --- parsing (pure) ----------------------------------------------------------------------------


def parse_body(body: str) -> list[S3Upload | Skip]:
    """Every record of one SQS body, in order, as an upload or a skip.

    Raises MalformedNotificationError when the body is none of the accepted shapes, or any of its
    records lacks bucket/key: the whole message then fails (nothing of it is submitted).
    """
    document = _load_json(body, "body")
    if isinstance(document, dict) and "Type" in document:
        envelope = _validate(SnsEnvelope, document, "SNS notification")
        document = _load_json(envelope.Message, "SNS Message")
    if not isinstance(document, dict):
        raise MalformedNotificationError(f"expected a JSON object, got {type(document).__name__}")
    if document.get("Event") == "s3:TestEvent":
        bucket = document.get("Bucket")
        return [Skip(reason="test-event", bucket=bucket if isinstance(bucket, str) else None)]
    if "Records" not in document:
        raise MalformedNotificationError(
            "not an S3 event notification (no Records), an SNS notification or s3:TestEvent"
        )
    notification = _validate(S3EventNotification, document, "S3 event notification")
    return [_classify(record) for record in notification.Records]


def _load_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError) as exc:
        # json's message gives a position, never the content.
        raise MalformedNotificationError(f"{what} is not JSON ({exc})") from None


def _validate(model: type[_ModelT], document: dict[str, Any], what: str) -> _ModelT:
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        # Locations and pydantic's messages only: `input` would quote the body.
        problems = [
            f"{'.'.join(str(p) for p in err['loc']) or what}: {err['msg']}"
            for err in exc.errors(include_url=False, include_input=False)
        ]
        more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
        raise MalformedNotificationError(f"invalid {what}: {'; '.join(problems[:3])}{more}") from None


def decode_key(raw: str) -> str:
    """The object key as stored in S3 (notifications URL-encode it, spaces as '+')."""
    try:
        return unquote_plus(raw, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise MalformedNotificationError("object key is not percent-encoded UTF-8") from None


def _classify(record: S3EventRecord) -> S3Upload | Skip:
    event_name = record.eventName.removeprefix("s3:")
    bucket = record.s3.bucket.name
    obj = record.s3.object_
    key = decode_key(obj.key)
    if not event_name.startswith(UPLOAD_EVENT_PREFIX):
        return Skip(reason="not-an-upload", event_name=event_name, bucket=bucket, key=key)
    if key.endswith("/") and not obj.size:
        return Skip(reason="folder-marker", event_name=event_name, bucket=bucket, key=key)
    upload = S3Upload(
        bucket=bucket,
        key=key,
        event_name=event_name,
        event_time=record.eventTime,
        version_id=obj.versionId,
        size=obj.size,
        etag=obj.eTag,
        sequencer=obj.sequencer,
    )
    if not (_real_version(upload) or upload.sequencer or upload.event_time):
        raise MalformedNotificationError(
            "upload record has no versionId, sequencer or eventTime to tell it from a later upload"
        )
    return upload


def is_own_manifest(upload: S3Upload) -> bool:
    """A manifest burst mode wrote (MANIFEST_BUCKET/MANIFEST_PREFIX; bucket "" = any), not an upload."""
    prefix = os.environ.get(MANIFEST_PREFIX_ENV) or DEFAULT_MANIFEST_PREFIX
    bucket = os.environ.get(MANIFEST_BUCKET_ENV) or upload.bucket
    return upload.bucket == bucket and upload.key.startswith(prefix)


def _real_version(upload: S3Upload) -> str | None:
    return upload.version_id if upload.version_id and upload.version_id != _NULL_VERSION else None


# --- jobs --------------------------------------------------------------------------------------


def idempotency_key(upload: S3Upload) -> dict[str, str]:
    """What makes an upload unique: bucket + key + versionId, else sequencer, else eventTime + eTag.

    Every delivery of one S3 event carries the same values, and two uploads of the same key differ
    in each of them.
    """
    key = {"bucket": upload.bucket, "key": upload.key}
    if version := _real_version(upload):
        return key | {"versionId": version}
    if upload.sequencer:
        return key | {"sequencer": upload.sequencer}
    return key | {"eventTime": upload.event_time or "", "etag": upload.etag or ""}


def idempotency_key_text(upload: S3Upload) -> str:
    """The idempotency key as one canonical string (the job name's hash input)."""
    return json.dumps(idempotency_key(upload), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def readable_name(key: str) -> str:
    """The key folded to ASCII (café -> cafe); safe_job_name keeps its end when it is too long."""
    return unicodedata.normalize("NFKD", key).encode("ascii", "ignore").decode("ascii")


def job_spec_for(upload: S3Upload, prefix: str) -> JobSpec:
    """The job for one upload: a name derived from key + idempotency key, the upload as parameters."""
    return JobSpec(
        job_name=safe_job_name(prefix, readable_name(upload.key), idempotency_key_text(upload)),
        parameters=upload.parameters(),
        tags={"batch-dispatch:trigger": "s3", "batch-dispatch:bucket": upload.bucket},
    )


def submit_upload(
    upload: S3Upload,
    settings: SubmitSettings,
    *,
    lambda_context: LambdaContext | None = None,
    reconcile: bool = False,
) -> SubmitOutcome:
    """Submit the upload's job once (same table as the schedule path, prefix `s3-object`)."""
    return submit_once(
        job_spec_for(upload, settings.job_name_prefix),
        key_prefix=IDEMPOTENCY_PREFIX,
        idempotency_key=idempotency_key(upload),
        settings=settings,
        lambda_context=lambda_context,
        reconcile=reconcile,
    )


# --- SQS batch ---------------------------------------------------------------------------------


def receive_count(record: SQSRecord) -> int:
    """SQS's ApproximateReceiveCount (1 on first delivery)."""
    try:
        return int(record.attributes.get("ApproximateReceiveCount") or 1)
    except (TypeError, ValueError):
        return 1


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
    record: SQSRecord,
    lambda_context: LambdaContext | None = None,
    *,
    settings: SubmitSettings | None = None,
    start_margin_seconds: float = DEFAULT_START_MARGIN_SECONDS,
) -> RecordResult:
    """Handle one SQS message; raising makes it a failed item (SQS redelivers it, then the DLQ).

    A redelivered message (receive count > 1) may follow a crash between SubmitJob and saving the
    idempotency record, so only then does the submit first look for the job in Batch (reconcile).
    """
    settings = settings or submit_settings()
    message_id = record.message_id
    try:
        items = parse_body(record.body)
    except MalformedNotificationError as error:
        logger.error(
            "Rejected SQS message: not an S3 event notification",
            extra={"message_id": message_id, "reason": error.reason},
        )
        metrics.add_metric(name="RecordRejected", unit=MetricUnit.Count, value=1)
        raise

    reconcile = receive_count(record) > 1
    submitted: list[SubmitOutcome] = []
    skipped: list[Skip] = []
    for item in items:
        if isinstance(item, S3Upload) and is_own_manifest(item):
            item = Skip(reason="manifest", event_name=item.event_name, bucket=item.bucket, key=item.key)
        if isinstance(item, Skip):
            logger.info(
                "S3 notification record skipped",
                extra={
                    "message_id": message_id,
                    "reason": item.reason,
                    "event_name": item.event_name,
                    "bucket": item.bucket,
                    "key": item.key,
                },
            )
            metrics.add_metric(name="ObjectSkipped", unit=MetricUnit.Count, value=1)
            skipped.append(item)
            continue
        _ensure_time_left(lambda_context, start_margin_seconds, message_id)
        logger.append_keys(message_id=message_id, bucket=item.bucket, key=item.key)
        try:
            submitted.append(submit_or_settle(item, settings, lambda_context, reconcile))
        except (IdempotencyAlreadyInProgressError, SubmitFailedError) as error:
            # Expected under concurrency or throttling: the message fails and comes back later.
            logger.warning("Upload not submitted yet, SQS will redeliver it", extra={"error": str(error)})
            raise
        except Exception:
            logger.exception("Upload submit failed")
            raise
        finally:
            logger.remove_keys(["message_id", "bucket", "key"])
    return RecordResult(message_id=message_id, submitted=tuple(submitted), skipped=tuple(skipped))


def submit_or_settle(
    upload: S3Upload, settings: SubmitSettings, lambda_context: LambdaContext | None, reconcile: bool
) -> SubmitOutcome:
    """`submit_upload`; a record Powertools reports in progress may be a burst-mode claim left by a
    crashed invocation (claims carry no in_progress_expiration): burst mode settles those."""
    try:
        return submit_upload(upload, settings, lambda_context=lambda_context, reconcile=reconcile)
    except IdempotencyAlreadyInProgressError:
        from batch_dispatch import burst  # only on this rare path (and burst imports this module)

        outcome = burst.settle_claim(upload, settings, lambda_context=lambda_context, reconcile=reconcile)
        if outcome is None:
            raise
        return outcome


def record_handler_for(
    settings: SubmitSettings, *, start_margin_seconds: float = DEFAULT_START_MARGIN_SECONDS
) -> Callable[..., RecordResult]:
    """`record_handler` bound to settings (BatchProcessor still injects `lambda_context`)."""
    return partial(record_handler, settings=settings, start_margin_seconds=start_margin_seconds)


def new_processor() -> BatchProcessor:
    """SQS partial-batch processor. When every message fails it still returns them all as
    `batchItemFailures` (instead of raising): same SQS outcome, and a rejected body is always
    "reported as a failed item"."""
    return BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def handle_batch(
    event: dict[str, Any],
    context: LambdaContext,
    settings: SubmitSettings,
    *,
    start_margin_seconds: float = DEFAULT_START_MARGIN_SECONDS,
) -> PartialItemFailureResponse:
    """Process an SQS event; the response lists the messages SQS must redeliver."""
    return process_partial_response(
        event=event,
        record_handler=record_handler_for(settings, start_margin_seconds=start_margin_seconds),
        processor=new_processor(),
        context=context,
    )


def handle_event(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """S3SubmitFunction's one call: one job per object, or (SUBMIT_MODE=ARRAY) one array job per batch."""
    from batch_dispatch import burst  # burst mode builds on this module

    settings = submit_settings()
    burst_settings = burst.burst_settings()
    if burst_settings.submit_mode == burst.ARRAY_MODE:
        return burst.handle_batch(event, context, settings, burst_settings)
    return handle_batch(event, context, settings)
