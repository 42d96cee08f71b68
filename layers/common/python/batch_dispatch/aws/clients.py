"""boto3 clients, created lazily on first use and cached for the life of the execution environment.

Nothing here runs at import time, so handler modules import fast and tests can inject fakes with
`use_client(...)` before the code under test asks for one.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

# Retries of throttling are ours (with a time budget); botocore's standard mode still covers
# connection errors. A short connect timeout keeps a dead endpoint from eating the Lambda budget.
_BOTO_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=20)

_injected: dict[str, Any] = {}


@cache
def _create(service: str) -> Any:
    return boto3.client(service, config=_BOTO_CONFIG)  # type: ignore[call-overload]


def client(service: str) -> Any:
    """The shared client for `service` (an injected one if a test set it)."""
    return _injected.get(service) or _create(service)


@cache
def _create_quick(service: str, connect_timeout: float, read_timeout: float) -> Any:
    config = Config(
        retries={"total_max_attempts": 1}, connect_timeout=connect_timeout, read_timeout=read_timeout
    )
    return boto3.client(service, config=config)  # type: ignore[call-overload]


def quick_client(service: str, *, connect_timeout: float, read_timeout: float) -> Any:
    """A client for a best-effort call that must fit a small time budget: short timeouts, no retries
    (an injected client, if a test set one, is used as is)."""
    return _injected.get(service) or _create_quick(service, connect_timeout, read_timeout)


def use_client(service: str, instance: Any) -> None:
    """Inject a client (moto, a Stubber-wrapped client, a fake) for `service`."""
    _injected[service] = instance


def reset_clients() -> None:
    """Forget injected and cached clients (tests, or the emulator after changing endpoints)."""
    _injected.clear()
    _create.cache_clear()
    _create_quick.cache_clear()
