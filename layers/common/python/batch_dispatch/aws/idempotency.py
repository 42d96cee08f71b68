"""The idempotency store every function shares (one DynamoDB table, Powertools idempotency), and the one
adapter that reads and writes Powertools' records directly.

Array mode claims up to 100 objects per DynamoDB transaction, which Powertools has no API for, and the
records it writes must be the ones Powertools' own idempotent functions (the per-object path) read, so
an object is never submitted twice across modes. `RecordLayout` and `record_id` are the only code that
knows how Powertools stores a record; tests/unit/test_idempotency_records.py pins them against the
installed Powertools, so an upgrade that changes the layout fails a test instead of exactly-once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from functools import cache
from typing import Any, NamedTuple

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import STATUS_CONSTANTS, DataRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_dispatch.aws import clients

# Longer than the 14-day retention of the DLQs, so a redrive after a fix never acts twice.
IDEMPOTENCY_TTL_SECONDS = 15 * 24 * 3600
INPROGRESS = STATUS_CONSTANTS["INPROGRESS"]
COMPLETED = STATUS_CONSTANTS["COMPLETED"]


@cache
def persistence_layer(table_name: str, key_prefix: str) -> DynamoDBPersistenceLayer:
    """One store per key prefix (Powertools keeps the prefix on the store), with the shared client."""
    return DynamoDBPersistenceLayer(table_name=table_name, boto3_client=clients.client("dynamodb"))


def reset_persistence() -> None:
    """Forget the cached stores (tests and the emulator inject new clients)."""
    persistence_layer.cache_clear()


def _mark_duplicate(response: Any, idempotent_data: DataRecord) -> Any:
    """Answers replayed from the store say so, so callers can count DuplicateSkipped."""
    return {**response, "duplicate": True} if isinstance(response, dict) else response


def idempotency_config(
    lambda_context: LambdaContext | None = None, expires_after_seconds: int = IDEMPOTENCY_TTL_SECONDS
) -> IdempotencyConfig:
    """Replayed answers carry `duplicate: True`; an INPROGRESS record of an invocation that died expires
    with that invocation's remaining time (when the context is known)."""
    config = IdempotencyConfig(expires_after_seconds=expires_after_seconds, response_hook=_mark_duplicate)
    if lambda_context is not None:
        config.register_lambda_context(lambda_context)
    return config


# --- Powertools' record layout, for bulk reads and writes ------------------------------------------


class RecordLayout(NamedTuple):
    """Attribute names of a Powertools idempotency record (read from the store, not assumed)."""

    id: str
    status: str
    expiry: str  # epoch seconds (the table's TTL attribute)
    in_progress_expiry: str  # epoch milliseconds: when an INPROGRESS record's invocation is over
    data: str  # the stored response, JSON

    def completed_item(self, record_id: str, response: Mapping[str, Any], expires_at: int) -> dict[str, Any]:
        """A COMPLETED record holding `response`, as Powertools writes it after a successful call."""
        return {
            self.id: {"S": record_id},
            self.status: {"S": COMPLETED},
            self.expiry: {"N": str(expires_at)},
            self.data: {"S": json.dumps(dict(response), sort_keys=True)},
        }

    def stored_response(self, record: Mapping[str, Any]) -> dict[str, Any] | None:
        """The response a plain (see `plain_item`) COMPLETED record holds, or None."""
        if record.get(self.status) != COMPLETED:
            return None
        try:
            data = json.loads(str(record.get(self.data) or "{}"))
        except ValueError:
            return None
        return data if isinstance(data, dict) else None


def record_layout(store: DynamoDBPersistenceLayer) -> RecordLayout:
    """The layout `store` writes (the attribute names it was configured with)."""
    return RecordLayout(
        id=store.key_attr,
        status=store.status_attr,
        expiry=store.expiry_attr,
        in_progress_expiry=store.in_progress_expiry_attr,
        data=store.data_attr,
    )


def record_id(key_prefix: str, key: Mapping[str, Any]) -> str:
    """The id Powertools gives the record of `key` under `key_prefix` (its default md5 of sorted JSON)."""
    digest = hashlib.md5(json.dumps(dict(key), sort_keys=True).encode(), usedforsecurity=False).hexdigest()
    return f"{key_prefix}#{digest}"


def plain_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB item ({"S": ...}/{"N": ...}) as plain values (strings and ints)."""
    out: dict[str, Any] = {}
    for name, value in item.items():
        if "S" in value:
            out[name] = value["S"]
        elif "N" in value:
            out[name] = int(value["N"])
    return out
