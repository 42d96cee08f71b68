"""Read an SQS queue's messages without consuming them: a dead-letter queue must keep what it holds for
its redrive, and its depth alarm must keep seeing it.

Messages are received with a short visibility timeout (so one pass sees each message once) and made
visible again at once (ChangeMessageVisibility 0), never deleted. Short polls only: a message SQS leaves
out of this pass is seen by the next one.
"""

from __future__ import annotations

from typing import Any

from batch_dispatch.aws import clients

HOLD_SECONDS = 30


def peek(queue_url: str, limit: int, client: Any = None) -> list[dict[str, Any]]:
    """Up to `limit` messages with their attributes and message attributes, left in the queue."""
    sqs = client or clients.client("sqs")
    seen: list[dict[str, Any]] = []
    try:
        while len(seen) < limit:
            batch = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=min(10, limit - len(seen)),
                VisibilityTimeout=HOLD_SECONDS,
                WaitTimeSeconds=0,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not batch:
                break
            seen.extend(batch)
    finally:
        release(sqs, queue_url, seen)
    return seen


def release(sqs: Any, queue_url: str, messages: list[dict[str, Any]]) -> None:
    """Make received messages visible again now."""
    for start in range(0, len(messages), 10):
        entries = [
            {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"], "VisibilityTimeout": 0}
            for index, message in enumerate(messages[start : start + 10])
        ]
        sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)
