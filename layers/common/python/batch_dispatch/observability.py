"""One Logger, Metrics and tracer for the whole package (configured by POWERTOOLS_* variables).

Tracing AWS calls with the X-Ray SDK is opt-in (template parameter TraceAwsCalls): Lambda's active
tracing records every invocation without it, and Powertools' Tracer imports and configures the X-Ray
SDK even when told to stay disabled, a cost every cold start pays (bench/cold_start.py --costs). So
when POWERTOOLS_TRACE_DISABLED is true no Tracer is built, and `tracer` is a stand-in whose
decorators return the function unchanged.

The defaults match template.yaml, so the package also works where those variables are not set
when it is first imported (a test runner, a notebook).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "batch-dispatch"
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "BatchDispatch"
TRACING = os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() not in ("true", "1")


class UntracedFunctions:
    """The parts of Powertools' Tracer the package uses, doing nothing (tracing off)."""

    def capture_lambda_handler(
        self, lambda_handler: Callable[..., Any] | None = None, **_options: Any
    ) -> Callable[..., Any]:
        return lambda_handler if lambda_handler is not None else _unchanged

    def capture_method(self, method: Callable[..., Any] | None = None, **_options: Any) -> Callable[..., Any]:
        return method if method is not None else _unchanged


def _unchanged(function: Callable[..., Any]) -> Callable[..., Any]:
    return function


def _tracer() -> Any:
    if not TRACING:
        return UntracedFunctions()
    from aws_lambda_powertools import Tracer

    return Tracer(service=SERVICE)


logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
tracer = _tracer()

__all__ = ["TRACING", "MetricUnit", "logger", "metrics", "tracer"]
