"""One Logger, Tracer and Metrics for the whole package (configured by POWERTOOLS_* variables).

The defaults match template.yaml, so the package also works where those variables are not set
when it is first imported (a test runner, a notebook).
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "batch-dispatch"
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "BatchDispatch"

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

__all__ = ["MetricUnit", "logger", "metrics", "tracer"]
