"""The Powertools idempotency store shared by every function (one DynamoDB table, key prefixes per use)."""

from __future__ import annotations

from functools import cache

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

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
