"""The event source mapping's side of an SQS queue: moto's own queue, without the HTTP round trip.

In AWS, Lambda's pollers run on Lambda's fleet: receiving, deleting and returning messages costs
the function nothing. In the emulator they share one Python process (and its interpreter lock) with
the functions and moto's server, and going through botocore -> loopback HTTP -> werkzeug -> moto
for every 10 messages cost more CPU than the functions' own work (a burst of 11,000 messages took
~2,200 such calls at ~30 ms each). So the pollers call moto's SQS backend directly: the same queue
objects, the same receive (visibility timeout, receive count, maxReceiveCount -> DLQ), delete and
visibility code that the HTTP API runs. The functions themselves still talk to moto over HTTP.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from emulator import moto_patches
from emulator.moto_server import ACCOUNT_ID, REGION

# What ReceiveMessage with AttributeNames=["All"] returns (moto's responses.receive_message).
_SYSTEM_ATTRIBUTES = (
    ("SenderId", "sender_id"),
    ("SentTimestamp", "sent_timestamp"),
    ("ApproximateReceiveCount", "approximate_receive_count"),
    ("ApproximateFirstReceiveTimestamp", "approximate_first_receive_timestamp"),
    ("MessageDeduplicationId", "deduplication_id"),
    ("MessageGroupId", "group_id"),
    ("SequenceNumber", "sequence_number"),
)


class MappingQueue:
    """Receive, delete and return messages of one queue, in ReceiveMessage's response shape."""

    def __init__(self, queue_url: str) -> None:
        from moto.sqs.models import sqs_backends

        self.queue_name = queue_url.rstrip("/").rsplit("/", 1)[-1]
        self._backend = sqs_backends[ACCOUNT_ID][REGION]
        # Patched moto locks every message operation itself; released moto needs callers to take
        # turns (a concurrent delete there can undo another one).
        self._lock: Any = contextlib.nullcontext() if moto_patches.sqs_is_thread_safe() else threading.Lock()

    def receive(self, max_messages: int, visibility_timeout: int) -> list[dict[str, Any]]:
        with self._lock:
            received = self._backend.receive_message(
                self.queue_name, max_messages, 0, visibility_timeout, ["All"]
            )
        return [_as_response(message) for message in received]

    def delete(self, receipt_handles: list[str]) -> None:
        with self._lock:
            for handle in receipt_handles:
                self._backend.delete_message(self.queue_name, handle)

    def change_visibility(self, receipt_handle: str, visibility_timeout: int) -> None:
        with self._lock:
            self._backend.change_message_visibility(self.queue_name, receipt_handle, visibility_timeout)

    def is_empty(self) -> bool:
        """Nothing visible and nothing in flight (GetQueueAttributes' two counts)."""
        with self._lock:
            queue = self._backend.get_queue(self.queue_name)
            visible = queue.approximate_number_of_messages
            return visible + queue.approximate_number_of_messages_not_visible == 0


def _as_response(message: Any) -> dict[str, Any]:
    attributes = {}
    for name, attribute in _SYSTEM_ATTRIBUTES:
        value = getattr(message, attribute, None)
        if value is not None:
            attributes[name] = str(value)
    response: dict[str, Any] = {
        "MessageId": message.id,
        "ReceiptHandle": message.receipt_handle,
        "MD5OfBody": message.body_md5,
        "Body": message.body,
        "Attributes": attributes,
    }
    if message.message_attributes:
        response["MessageAttributes"] = message.message_attributes
        response["MD5OfMessageAttributes"] = message.attribute_md5
    return response
