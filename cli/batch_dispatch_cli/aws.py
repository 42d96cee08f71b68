"""The command's AWS session, and lending its clients to the shared package while it runs.

batch_dispatch reaches AWS through `batch_dispatch.aws.clients` (injectable, as in the functions' tests).
The command injects clients of its own session (its region and profile) for the duration of a call into
the package, and forgets them afterwards together with the caches built on them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config

from batch_dispatch.aws import clients, idempotency
from batch_dispatch.job_types import reset_registry
from batch_dispatch.observability import metrics

# The services batch_dispatch calls on the command's behalf.
LAYER_SERVICES = ("batch", "dynamodb", "logs", "s3", "ssm")
_CONFIG = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=30)


class Aws:
    """One boto3 session (profile and region as the operator's environment and --region say)."""

    def __init__(self, region: str | None = None) -> None:
        self.session = boto3.Session(region_name=region) if region else boto3.Session()
        self._clients: dict[str, Any] = {}

    @property
    def region(self) -> str | None:
        return self.session.region_name

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service, config=_CONFIG)  # type: ignore[call-overload]
        return self._clients[service]

    @contextmanager
    def lent_to_layer(self) -> Iterator[None]:
        """batch_dispatch uses this session's clients inside the block (fresh caches before and after)."""
        _forget_layer_state()
        for service in LAYER_SERVICES:
            clients.use_client(service, self.client(service))
        try:
            yield
        finally:
            _forget_layer_state()


def discard_metrics() -> None:
    """The package counts business metrics for Lambda's EMF logs; the command publishes none (and
    Powertools would print them to stdout once a metric reaches 100 values)."""
    metrics.clear_metrics()


def _forget_layer_state() -> None:
    clients.reset_clients()
    idempotency.reset_persistence()
    reset_registry()
    discard_metrics()
