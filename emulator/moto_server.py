"""A moto server on loopback that every boto3 client in this process talks to."""

from __future__ import annotations

import json
import logging
import os
import socket
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from moto.server import ThreadedMotoServer

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"

_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    # Never read the developer's real ~/.aws profile or credentials.
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MotoServer:
    """moto's threaded server on 127.0.0.1 with Batch in no-Docker mode."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._saved_env: dict[str, str | None] = {}

    def start(self) -> MotoServer:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server.start()
        self._set_env({**_AWS_ENV, "AWS_ENDPOINT_URL": self.endpoint})
        self._post("/moto-api/config", {"batch": {"use_docker": False}})
        return self

    def stop(self) -> None:
        self._server.stop()
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()

    def reset(self) -> None:
        """Drop every resource in the server (a fresh account) but keep it running."""
        self._post("/moto-api/reset", {})
        self._post("/moto-api/config", {"batch": {"use_docker": False}})

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _set_env(self, values: dict[str, str]) -> None:
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    def _post(self, path: str, payload: dict) -> None:
        request = urllib.request.Request(  # noqa: S310 - loopback URL we built ourselves
            self.endpoint + path, data=json.dumps(payload).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310
            pass


@contextmanager
def failing_batch_jobs() -> Iterator[None]:
    """Jobs submitted inside this block FAIL in moto's no-Docker Batch (it reads this variable per job)."""
    previous = os.environ.get("MOTO_SIMPLE_BATCH_FAIL_AFTER")
    os.environ["MOTO_SIMPLE_BATCH_FAIL_AFTER"] = "0"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("MOTO_SIMPLE_BATCH_FAIL_AFTER", None)
        else:
            os.environ["MOTO_SIMPLE_BATCH_FAIL_AFTER"] = previous
