"""The Powertools idempotency store shared by every function (one DynamoDB table, key prefixes per use)."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_dispatch import clients

# Longer than the 14-day retention of the DLQs, so a redrive after a fix never acts twice.
IDEMPOTENCY_TTL_SECONDS = 15 * 24 * 3600


@cache
def persistence_layer(table_name: str) -> DynamoDBPersistenceLayer:
    """Created on first use (not at import), with the shared, injectable DynamoDB client."""
    return DynamoDBPersistenceLayer(table_name=table_name, boto3_client=clients.client("dynamodb"))


def reset_persistence() -> None:
    """Forget the cached store (tests inject new clients between cases)."""
    persistence_layer.cache_clear()


def _mark_duplicate(response: Any, idempotent_data: DataRecord) -> Any:
    """Answers replayed from the store say so, so callers can count DuplicateSkipped."""
    return {**response, "duplicate": True} if isinstance(response, dict) else response


def idempotency_config(
    lambda_context: LambdaContext | None = None, expires_after_seconds: int = IDEMPOTENCY_TTL_SECONDS
) -> IdempotencyConfig:
    """Our idempotency settings: replayed answers carry `duplicate: True`; an INPROGRESS record of an
    invocation that died expires with that invocation's remaining time (when the context is known)."""
    config = IdempotencyConfig(expires_after_seconds=expires_after_seconds, response_hook=_mark_duplicate)
    if lambda_context is not None:
        config.register_lambda_context(lambda_context)
    return config
