"""The emulator's own boto3 clients: one per service for the moto server in use.

Creating a boto3 client loads and parses its service model, which costs more than most of the calls the
emulator then makes with it, and a demo or a test makes hundreds of them. A client is safe to share
between threads once created; creating one is not, hence the lock. The cache follows the endpoint and
region in os.environ, so the next moto server (another Emulator) gets new clients.

The functions under test never use these: they get theirs from the package (`batch_dispatch.aws.clients`).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import boto3

_lock = threading.Lock()
_clients: dict[str, Any] = {}
_for: tuple[str, str] = ("", "")


def client(service: str) -> Any:
    """The shared client for `service` against the current endpoint and region."""
    global _for
    place = (os.environ.get("AWS_ENDPOINT_URL", ""), os.environ.get("AWS_DEFAULT_REGION", ""))
    with _lock:
        if place != _for:
            _clients.clear()
            _for = place
        if service not in _clients:
            _clients[service] = boto3.client(service)  # type: ignore[call-overload]
        return _clients[service]
