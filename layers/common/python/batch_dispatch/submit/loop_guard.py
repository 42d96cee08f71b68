"""The loop guard: an input lineage may start at most LOOP_GUARD_MAX_JOBS jobs per window.

A job that writes its output where its own route picks it up starts itself again, forever. Every job an
upload starts gets the upload's **lineage** (env var `BATCH_DISPATCH_LINEAGE`): the lineage the object
carries in its metadata `x-amz-meta-batch-dispatch-lineage` (jobs copy it onto what they write), else
the object's own, a digest of bucket/key (S3 metadata is ASCII and 2 KB at most, keys are neither). So a
job rewriting its own key, and a job writing new keys tagged with the lineage, both stay in one lineage.

Per lineage, one item in the idempotency table (`loop-guard#<lineage>`, TTL `expiration`) holds the
uploads admitted in the current window (a string set of their idempotency record ids: a redelivery is
admitted again without counting twice), the window's end and the lineage's first upload. One conditional
UpdateItem admits an upload or refuses it; a window that has ended is replaced by a new one.

A refused upload is not submitted: its SQS message is parked in the IntakeDLQ (same body, message
attributes ErrorCode/ErrorMessage saying why) and the job type's channel is told once per lineage and
window. Parking takes the message out of the intake queue at once, so the record never waits for
IntakeMaxReceiveCount redeliveries, and the reason stays with it for `make dlq`.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from batch_dispatch.aws import clients
from batch_dispatch.aws.idempotency import record_id
from batch_dispatch.job_types import JobType
from batch_dispatch.observability import MetricUnit, logger, metrics
from batch_dispatch.settings import ConfigurationError, S3SubmitSettings
from batch_dispatch.submit.s3_events import S3Upload
from batch_dispatch.submit.upload_job import IDEMPOTENCY_PREFIX, LINEAGE_ENV, idempotency_key

__all__ = ["LINEAGE_ENV", "Admission", "Tripped", "admit", "guard", "lineage_of", "stop"]
LINEAGE_METADATA = "batch-dispatch-lineage"  # x-amz-meta-batch-dispatch-lineage
COUNTER_PREFIX = "loop-guard"
ALERT_PREFIX = "loop-guard-alert"
PARKED_ERROR_CODE = "LoopGuardTripped"
# What a lineage may look like when an object brings one (anything else: the object's own is used).
_LINEAGE = re.compile(r"^[A-Za-z0-9._:/=+-]{1,200}$")
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
_RESET_ATTEMPTS = 3


class Admission(NamedTuple):
    """What the counter said about one upload of a lineage."""

    admitted: bool
    jobs: int  # uploads admitted in the window, this one included when admitted
    window_ends: int  # epoch seconds
    origin: str  # s3://bucket/key of the lineage's first upload in the window


class Tripped(NamedTuple):
    """An upload the loop guard refused."""

    upload: S3Upload
    job_type: JobType
    lineage: str
    admission: Admission


def own_lineage(upload: S3Upload) -> str:
    """The lineage an object starts: a digest of its bucket and key (stable across its versions)."""
    return hashlib.sha256(f"{upload.bucket}/{upload.key}".encode()).hexdigest()[:32]


def lineage_of(upload: S3Upload, settings: S3SubmitSettings) -> str:
    """The object's lineage: from its metadata when the loop guard is on (one HeadObject), else its own."""
    if not settings.loop_guard_on:
        return own_lineage(upload)
    try:
        head = clients.client("s3").head_object(Bucket=upload.bucket, Key=upload.key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in _NOT_FOUND:
            return own_lineage(upload)  # deleted since: nothing to inherit
        raise
    carried = (head.get("Metadata") or {}).get(LINEAGE_METADATA, "")
    return carried if _LINEAGE.match(carried) else own_lineage(upload)


def upload_id(upload: S3Upload, job_type: JobType) -> str:
    """The upload's idempotency record id: a redelivery of it is the same upload."""
    return record_id(IDEMPOTENCY_PREFIX, idempotency_key(upload, job_type))


def admit(
    lineage: str, upload: S3Upload, job_type: JobType, settings: S3SubmitSettings, now: float | None = None
) -> Admission:
    """Count the upload in its lineage's window, unless the window already holds LOOP_GUARD_MAX_JOBS
    other uploads (then it is refused)."""
    now = time.time() if now is None else now
    table, dynamodb = settings.idempotency_table_name, clients.client("dynamodb")
    key = {"id": {"S": f"{COUNTER_PREFIX}#{lineage}"}}
    rid = upload_id(upload, job_type)
    origin = f"s3://{upload.bucket}/{upload.key}"
    ends = int(now) + settings.loop_guard_window_seconds
    names = {"#uploads": "uploads", "#origin": "origin", "#ends": "windowEnds", "#expiration": "expiration"}
    for _ in range(_RESET_ATTEMPTS):
        try:
            item = dynamodb.update_item(
                TableName=table,
                Key=key,
                UpdateExpression=(
                    "ADD #uploads :rids SET #origin = if_not_exists(#origin, :origin), "
                    "#ends = if_not_exists(#ends, :ends), #expiration = if_not_exists(#expiration, :ends)"
                ),
                ConditionExpression=(
                    "attribute_not_exists(#ends) OR "
                    "(#ends > :now AND (contains(#uploads, :rid) OR size(#uploads) < :max))"
                ),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={
                    ":rids": {"SS": [rid]},
                    ":rid": {"S": rid},
                    ":origin": {"S": origin},
                    ":ends": {"N": str(ends)},
                    ":now": {"N": str(int(now))},
                    ":max": {"N": str(settings.loop_guard_max_jobs)},
                },
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )["Attributes"]
            return _admission(True, item)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            current: Mapping[str, Any] = error.response.get("Item") or {}  # type: ignore[assignment]
        if int(current.get("windowEnds", {}).get("N", "0")) > int(now):
            return _admission(False, current)
        if _start_window(table, key, rid, origin, ends, current):  # the old window has ended
            return Admission(True, 1, ends, origin)
    raise RuntimeError(f"loop guard window of lineage {lineage} kept changing under this upload")


def _start_window(
    table: str, key: dict[str, Any], rid: str, origin: str, ends: int, ended: Mapping[str, Any]
) -> bool:
    """Replace an ended window with a new one holding this upload (False: someone replaced it first)."""
    try:
        clients.client("dynamodb").put_item(
            TableName=table,
            Item={
                **key,
                "uploads": {"SS": [rid]},
                "origin": {"S": origin},
                "windowEnds": {"N": str(ends)},
                "expiration": {"N": str(ends)},
            },
            ConditionExpression="#ends = :ended",
            ExpressionAttributeNames={"#ends": "windowEnds"},
            ExpressionAttributeValues={":ended": ended.get("windowEnds", {"N": "0"})},
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise
    return True


def _admission(admitted: bool, item: Mapping[str, Any]) -> Admission:
    return Admission(
        admitted=admitted,
        jobs=len(item.get("uploads", {}).get("SS", [])),
        window_ends=int(item.get("windowEnds", {}).get("N", "0")),
        origin=str(item.get("origin", {}).get("S", "")),
    )


def guard(upload: S3Upload, job_type: JobType, settings: S3SubmitSettings) -> tuple[str, Admission | None]:
    """The upload's lineage, and (loop guard on) whether it may start a job."""
    lineage = lineage_of(upload, settings)
    if not settings.loop_guard_on:
        return lineage, None
    return lineage, admit(lineage, upload, job_type, settings)


def stop(
    message_id: str,
    body: str,
    tripped: Sequence[Tripped],
    settings: S3SubmitSettings,
    lambda_context: LambdaContext | None = None,
) -> None:
    """Alert once per lineage and window, then park the message in the IntakeDLQ. Raises if either
    fails: the message then comes back (and the redrive policy parks it in the end)."""
    if not settings.intake_dlq_url:
        raise ConfigurationError("the loop guard is on (LOOP_GUARD_MAX_JOBS) but INTAKE_DLQ_URL is not set")
    for item in tripped:
        logger.warning(
            "Loop guard stopped an upload: its lineage started too many jobs",
            extra={
                "message_id": message_id,
                "bucket": item.upload.bucket,
                "key": item.upload.key,
                "job_type": item.job_type.name,
                "lineage": item.lineage,
                "jobs_in_window": item.admission.jobs,
                "origin": item.admission.origin,
            },
        )
        metrics.add_metric(name="LoopGuardTripped", unit=MetricUnit.Count, value=1)
    for item in {(t.lineage, t.admission.window_ends): t for t in tripped}.values():
        alert(item, settings, lambda_context)
    first = tripped[0]
    reason = (
        f"Loop guard: lineage {first.lineage} (from {first.admission.origin}) started "
        f"{first.admission.jobs} {first.job_type.name} jobs within {settings.loop_guard_window_seconds} s; "
        f"{', '.join(f's3://{t.upload.bucket}/{t.upload.key}' for t in tripped)} not submitted"
    )
    clients.client("sqs").send_message(
        QueueUrl=settings.intake_dlq_url,
        MessageBody=body,
        MessageAttributes={
            "ErrorCode": {"DataType": "String", "StringValue": PARKED_ERROR_CODE},
            "ErrorMessage": {"DataType": "String", "StringValue": reason[:1000]},
        },
    )
    logger.info("Message parked in the IntakeDLQ by the loop guard", extra={"message_id": message_id})


def alert(item: Tripped, settings: S3SubmitSettings, lambda_context: LambdaContext | None = None) -> None:
    """Tell the job type's channel, once per lineage and window, what stopped and what to do."""
    from batch_dispatch.alerts.channels import channel_of
    from batch_dispatch.alerts.loop_guard import LoopStopped, build_loop_guard_message
    from batch_dispatch.slack.post_once import post_once

    channel = channel_of(item.job_type, settings.slack_mention)
    if not (channel.secret_name or settings.slack_webhook_secret_name):
        raise ConfigurationError("the loop guard is on but no Slack webhook secret is set to alert")
    stopped = LoopStopped(
        job_type=item.job_type.name,
        lineage=item.lineage,
        origin=item.admission.origin,
        upload=f"s3://{item.upload.bucket}/{item.upload.key}",
        jobs=item.admission.jobs,
        window_seconds=settings.loop_guard_window_seconds,
        window_ends=datetime.fromtimestamp(item.admission.window_ends, UTC).strftime("%Y-%m-%d %H:%M UTC"),
        output_prefix=item.job_type.output_prefix,
        environment=settings.environment,
    )
    posted = post_once(
        ALERT_PREFIX,
        f"{item.lineage}#{item.admission.window_ends}",
        build_loop_guard_message(stopped, channel.mention),
        settings,
        lambda_context,
        secret_name=channel.secret_name or None,
        expires_after_seconds=max(settings.loop_guard_window_seconds * 2, 3600),
    )
    if posted:
        metrics.add_metric(name="LoopGuardNotified", unit=MetricUnit.Count, value=1)
        logger.info(
            "Loop guard alert posted", extra={"job_type": item.job_type.name, "lineage": item.lineage}
        )
