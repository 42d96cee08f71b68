"""The event source mapping's side of an SQS queue: ReceiveMessage, DeleteMessageBatch and
ChangeMessageVisibility over HTTP, like any SQS client.

In AWS, Lambda's pollers run on Lambda's fleet; here they are threads of the emulator talking to
moto's server, whose one lock makes each call atomic (emulator/moto_server.py), so any number of
pollers can share a queue. They never long-poll: a long poll would hold that lock while it waits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import boto3
from botocore.config import Config


class PollerQueue(Protocol):
    """What the event source mapping's pollers do with their queue."""

    def receive(self, max_messages: int) -> list[dict[str, Any]]: ...
    def delete(self, receipt_handles: list[str]) -> None: ...
    def change_visibility(self, receipt_handle: str, visibility_timeout: int) -> None: ...
    def is_empty(self) -> bool: ...


# (queue URL, concurrent pollers) -> the pollers' queue
PollerQueueFactory = Callable[[str, int], PollerQueue]


class MappingQueue:
    """Receive, delete and return messages of one queue (ReceiveMessage's response shape)."""

    def __init__(self, queue_url: str, max_connections: int = 10) -> None:
        self.queue_url = queue_url
        # one connection per concurrent poller, so none waits for another's socket
        self._sqs: Any = boto3.client("sqs", config=Config(max_pool_connections=max(10, max_connections)))

    def receive(self, max_messages: int) -> list[dict[str, Any]]:
        """Up to `max_messages` visible messages, each hidden for the queue's VisibilityTimeout."""
        response = self._sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max_messages,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=0,
        )
        return list(response.get("Messages", []))

    def delete(self, receipt_handles: list[str]) -> None:
        for start in range(0, len(receipt_handles), 10):
            entries = [
                {"Id": str(n), "ReceiptHandle": handle}
                for n, handle in enumerate(receipt_handles[start : start + 10])
            ]
            failed = self._sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries).get("Failed")
            if failed:
                raise RuntimeError(f"DeleteMessageBatch failed for {failed}")

    def change_visibility(self, receipt_handle: str, visibility_timeout: int) -> None:
        self._sqs.change_message_visibility(
            QueueUrl=self.queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=visibility_timeout
        )

    def is_empty(self) -> bool:
        """Nothing visible and nothing in flight (delayed messages are neither, as in SQS)."""
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(value) for value in attributes.values()) == 0
