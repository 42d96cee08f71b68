"""SQS event source mappings with ReportBatchItemFailures: each message succeeds or fails on its own.

A message whose handler raises is listed in `batchItemFailures`: SQS redelivers it and, after the
queue's maxReceiveCount, parks it in the DLQ, while the batch's other messages are deleted. A record
that is not an SQS message at all fails the same way (and is logged without its content).

Powertools' BatchProcessor does this and more (FIFO, async handlers, pydantic models), but importing it
loads asyncio and every event source's data class, which together cost more cold start than either
function's own code (docs/decisions.md); bench/cold_start.py --costs measures them.
So the two SQS-triggered functions use this loop, and the same response shape.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from batch_dispatch.observability import logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse, PartialItemFailures


class SqsMessage(NamedTuple):
    """One SQS record as the event source mapping delivers it."""

    message_id: str
    body: str
    receive_count: int  # ApproximateReceiveCount: 1 on the first delivery
    attributes: Mapping[str, Any]

    @classmethod
    def of(cls, record: Any) -> SqsMessage:
        if not isinstance(record, dict) or not isinstance(record.get("body"), str):
            raise ValueError("not an SQS record (no string body)")
        found = record.get("attributes")
        attributes: Mapping[str, Any] = found if isinstance(found, dict) else {}
        return cls(str(record.get("messageId", "")), record["body"], receive_count(attributes), attributes)


def receive_count(attributes: Mapping[str, Any] | None) -> int:
    """SQS's ApproximateReceiveCount (1 on first delivery, and when missing or malformed)."""
    try:
        return int((attributes or {}).get("ApproximateReceiveCount") or 1)
    except (TypeError, ValueError):
        return 1


def records(event: Any) -> list[Any]:
    found = event.get("Records") if isinstance(event, dict) else None
    return found if isinstance(found, list) else []


def process_messages(event: Any, handle_message: Callable[[SqsMessage], Any]) -> PartialItemFailureResponse:
    """Run `handle_message` on every message of the batch; the response lists the ones that raised."""
    failures: list[PartialItemFailures] = []
    for record in records(event):
        message_id = str(record.get("messageId", "")) if isinstance(record, dict) else ""
        try:
            handle_message(SqsMessage.of(record))
        except Exception as error:  # one message's failure must not fail its batch mates
            logger.warning(
                "Message failed, SQS will redeliver it",
                extra={"message_id": message_id, "error_type": type(error).__name__},
            )
            failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}
