"""What an intake message says: the S3 uploads (and non-uploads) in one SQS body, keys decoded.

A body is an S3 event notification (S3 -> SQS), an SNS notification wrapping one (S3 -> SNS -> SQS),
`s3:TestEvent`, or an EventBridge S3 event (a bucket with EventBridge notifications -> a rule of this
stack -> SQS), whose key is NOT URL-encoded. Every created object becomes an `S3Upload` with its key as
stored, so the same upload delivered in two shapes has the same identity; other event names and
detail-types (deletes, restores), folder markers and test events become a `Skip` (no job, not a
failure). A body that is none of these raises `MalformedNotificationError`, whose reason says what is
wrong without quoting the body.

Parsing is strict about what a job needs (bucket, key, something that tells two uploads of one key
apart) and lenient about the rest: unknown fields are ignored (AWS adds fields), and fields S3 sends
but moto does not (userIdentity, requestParameters...) are never required.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple
from urllib.parse import unquote_plus

UPLOAD_EVENT_PREFIX = "ObjectCreated:"
EVENTBRIDGE_SOURCE = "aws.s3"
EVENTBRIDGE_UPLOAD = "Object Created"
# S3 writes versionId "null" for objects put while versioning is suspended: not a unique version.
NULL_VERSION = "null"

SkipReason = Literal["test-event", "not-an-upload", "folder-marker", "manifest", "output-prefix", "no-route"]


class MalformedNotificationError(ValueError):
    """The body is not an S3 event notification, an SNS-wrapped one or `s3:TestEvent`.

    `reason` says what was wrong without quoting the body (bodies may carry anything).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class S3Upload(NamedTuple):
    """One created object, key decoded."""

    bucket: str
    key: str
    event_name: str
    event_time: str | None = None
    version_id: str | None = None
    size: int | None = None
    etag: str | None = None
    sequencer: str | None = None

    @property
    def real_version_id(self) -> str | None:
        """The versionId, unless it is S3's "null" (versioning suspended)."""
        return self.version_id if self.version_id and self.version_id != NULL_VERSION else None

    def parameters(self) -> dict[str, str]:
        """The job's Batch parameters (all strings): bucket and key, plus what the record carried."""
        optional = {
            "versionId": self.version_id,
            "size": None if self.size is None else str(self.size),
            "etag": self.etag,
            "eventTime": self.event_time,
        }
        return {"bucket": self.bucket, "key": self.key} | {k: v for k, v in optional.items() if v is not None}


class Skip(NamedTuple):
    """A record (or a whole body) that is valid but asks for no job."""

    reason: SkipReason
    event_name: str | None = None
    bucket: str | None = None
    key: str | None = None


def parse_body(body: str) -> list[S3Upload | Skip]:
    """Every record of one SQS body, in order, as an upload or a skip.

    Raises MalformedNotificationError when the body is none of the accepted shapes, or any of its
    records lacks bucket/key: the whole message then fails (nothing of it is submitted).
    """
    document = _load_json(body, "body")
    if isinstance(document, dict) and "Type" in document:
        document = _load_json(_sns_message(document), "SNS Message")
    if not isinstance(document, dict):
        raise MalformedNotificationError(f"expected a JSON object, got {type(document).__name__}")
    if document.get("source") == EVENTBRIDGE_SOURCE and "detail-type" in document:
        return [_eventbridge_event(document)]
    if document.get("Event") == "s3:TestEvent":
        bucket = document.get("Bucket")
        return [Skip(reason="test-event", bucket=bucket if isinstance(bucket, str) else None)]
    if "Records" not in document:
        raise MalformedNotificationError(
            "not an S3 event notification (no Records), an SNS notification or s3:TestEvent"
        )
    records = document["Records"]
    if not isinstance(records, list) or not records:
        raise MalformedNotificationError("invalid S3 event notification: Records must be a non-empty list")
    return [_record(record, index) for index, record in enumerate(records)]


def _load_json(text: Any, what: str) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError) as exc:
        # json's message gives a position, never the content.
        raise MalformedNotificationError(f"{what} is not JSON ({exc})") from None


def _sns_message(envelope: dict[str, Any]) -> str:
    """The Message of an SNS Notification as SQS receives it (raw message delivery off)."""
    if envelope.get("Type") != "Notification":
        raise MalformedNotificationError("invalid SNS notification: Type must be Notification")
    message = envelope.get("Message")
    if not isinstance(message, str):
        raise MalformedNotificationError("invalid SNS notification: Message must be a string")
    return message


def _text(node: Mapping[str, Any], name: str, where: str) -> str:
    value = node.get(name)
    if not isinstance(value, str) or not value:
        raise MalformedNotificationError(f"invalid S3 event notification: {where}.{name} missing or empty")
    return value


def _object(node: Mapping[str, Any], name: str, where: str) -> Mapping[str, Any]:
    value = node.get(name)
    if not isinstance(value, dict):
        raise MalformedNotificationError(f"invalid S3 event notification: {where}.{name} missing")
    return value


def _optional_text(node: Mapping[str, Any], name: str) -> str | None:
    value = node.get(name)
    return value if isinstance(value, str) and value else None


def _record(record: Any, index: int) -> S3Upload | Skip:
    where = f"Records.{index}"
    if not isinstance(record, dict):
        raise MalformedNotificationError(f"invalid S3 event notification: {where} is not an object")
    event_name = _text(record, "eventName", where).removeprefix("s3:")
    s3 = _object(record, "s3", where)
    obj = _object(s3, "object", f"{where}.s3")
    upload = S3Upload(
        bucket=_text(_object(s3, "bucket", f"{where}.s3"), "name", f"{where}.s3.bucket"),
        key=decode_key(_text(obj, "key", f"{where}.s3.object")),
        event_name=event_name,
        event_time=_optional_text(record, "eventTime"),
        version_id=_optional_text(obj, "versionId"),
        size=_size(obj),
        etag=_optional_text(obj, "eTag"),
        sequencer=_optional_text(obj, "sequencer"),
    )
    return _new_object(
        upload, event_name.startswith(UPLOAD_EVENT_PREFIX), "versionId, sequencer or eventTime"
    )


def _eventbridge_event(event: dict[str, Any]) -> S3Upload | Skip:
    """An EventBridge S3 event ("Object Created", "Object Deleted"...): one object, key as stored."""
    detail = _object(event, "detail", "EventBridge event")
    detail_type = _text(event, "detail-type", "EventBridge event")
    obj = _object(detail, "object", "detail")
    is_upload = detail_type == EVENTBRIDGE_UPLOAD
    reason = _optional_text(detail, "reason") or "PutObject"
    upload = S3Upload(
        bucket=_text(_object(detail, "bucket", "detail"), "name", "detail.bucket"),
        key=_text(obj, "key", "detail.object"),  # EventBridge sends the key as stored: no decoding
        event_name=f"{UPLOAD_EVENT_PREFIX}{reason}" if is_upload else detail_type,
        event_time=_optional_text(event, "time"),
        version_id=_optional_text(obj, "version-id"),
        size=_size(obj),
        etag=_optional_text(obj, "etag"),
        sequencer=_optional_text(obj, "sequencer"),
    )
    return _new_object(upload, is_upload, "version-id, sequencer or time")


def _size(obj: Mapping[str, Any]) -> int | None:
    size = obj.get("size")
    return size if isinstance(size, int) and size >= 0 else None


def _new_object(upload: S3Upload, is_upload: bool, stamps: str) -> S3Upload | Skip:
    """The upload, or a Skip for what is not a new object; an upload nothing tells apart is malformed."""
    if not is_upload:
        return Skip(
            reason="not-an-upload", event_name=upload.event_name, bucket=upload.bucket, key=upload.key
        )
    if upload.key.endswith("/") and not upload.size:
        return Skip(
            reason="folder-marker", event_name=upload.event_name, bucket=upload.bucket, key=upload.key
        )
    if not (upload.real_version_id or upload.sequencer or upload.event_time):
        raise MalformedNotificationError(f"upload has no {stamps} to tell it from a later upload of its key")
    return upload


def decode_key(raw: str) -> str:
    """The object key as stored in S3 (notifications URL-encode it, spaces as '+')."""
    try:
        return unquote_plus(raw, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise MalformedNotificationError("object key is not percent-encoded UTF-8") from None
