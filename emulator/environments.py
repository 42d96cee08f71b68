"""Warm Lambda execution environments of one function, each its own Python process.

`LambdaRuntime.invoke` runs a handler on the caller's thread: simple, and what the tests use (they
patch handler internals and read in-process state). But every concurrent invocation then shares one
interpreter lock with moto's server, so a burst measures one core, where Lambda gives each
concurrent invocation its own execution environment. `ExecutionEnvironments(stack, id, count)`
starts `count` worker processes (spawned, so none inherits the server's threads or locks), loads the
handler in each, and waits until all are warm; `invoke(event)` then runs the handler in an idle one,
talking to moto over HTTP like any AWS client. Each process runs one invocation at a time, with the
function's deployed environment variables, as Lambda does.

    with ExecutionEnvironments(local.stack, "S3SubmitFunction", 5) as environments:
        local.drain("S3SubmitFunction", environments=environments)

Anything installed on the parent's clients (emulator.throttle's client hook, test fakes) does not
reach the workers: throttle in the server instead (`SubmitJobThrottle.in_front_of_moto`).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from emulator.handlers import (
    Invocation,
    LocalContext,
    environment_values,
    handler_error,
    layer_python_dirs,
    load_handler,
)
from emulator.stack import Stack

# -- in the worker process -------------------------------------------------------------------------

_handlers: dict[str, Callable[[Any, Any], Any]] = {}
_all_warm: Any = None


def _start_worker(layer_dirs: list[str], output_path: str | None, all_warm: Any) -> None:
    global _all_warm
    for layer_dir in reversed(layer_dirs):
        if layer_dir not in sys.path:
            sys.path.insert(0, layer_dir)
    if output_path:  # function logs and EMF metrics, as Lambda sends them to CloudWatch
        output = open(output_path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - the process's own stdout
        sys.stdout = sys.stderr = output
    _all_warm = all_warm


def _handler(request: dict[str, Any]) -> Callable[[Any, Any], Any]:
    os.environ.update(request["environment"])  # one invocation at a time in this process
    logical_id = request["logical_id"]
    if logical_id not in _handlers:
        _handlers[logical_id] = load_handler(logical_id, Path(request["code_dir"]), request["handler"])
    return _handlers[logical_id]


def _warm_up(request: dict[str, Any]) -> int:
    """Load the handler (the init phase), then wait for every other environment to be warm too."""
    _handler(request)
    _all_warm.wait(timeout=300)
    return os.getpid()


def _invoke(request: dict[str, Any]) -> dict[str, Any]:
    handler = _handler(request)
    context = LocalContext(function_name=request["function_name"], timeout_seconds=request["timeout"])
    try:
        return {"result": handler(json.loads(request["event"]), context), "error": None}
    except Exception as exc:  # reported like LambdaRuntime.invoke does
        return {"result": None, "error": handler_error(request["logical_id"], exc)}


# -- in the emulator -------------------------------------------------------------------------------


class ExecutionEnvironments:
    """`count` warm execution environments of `logical_id`, one process each."""

    def __init__(self, stack: Stack, logical_id: str, count: int, *, output_path: str | None = None) -> None:
        self.stack = stack
        self.logical_id = logical_id
        self.count = max(1, count)
        context = multiprocessing.get_context("spawn")
        all_warm = context.Barrier(self.count)
        self._pool = context.Pool(
            self.count,
            initializer=_start_worker,
            initargs=(layer_python_dirs(stack), output_path, all_warm),
        )
        # One warm-up per process: each waits at the barrier until all `count` are loaded.
        self.pids = self._pool.map(_warm_up, [self._request(None)] * self.count, chunksize=1)

    def _request(self, event: Any) -> dict[str, Any]:
        info = self.stack.functions[self.logical_id]
        return {
            "logical_id": self.logical_id,
            "code_dir": str(info.code_dir),
            "handler": info.handler,
            "environment": environment_values(info),
            "function_name": info.physical_name,
            "timeout": info.timeout,
            "event": json.dumps(event),
        }

    def invoke(self, event: Any) -> Invocation:
        answer = self._pool.apply(_invoke, (self._request(event),))
        return Invocation(result=answer["result"], error=answer["error"])

    def close(self) -> None:
        self._pool.close()
        self._pool.join()

    def __enter__(self) -> ExecutionEnvironments:
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()
