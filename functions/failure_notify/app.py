"""FailureNotifyFunction: Batch events from our rule -> Slack (failed jobs, blocked queues, storms)."""

from __future__ import annotations

from typing import Any

import boto3  # noqa: F401 - first, at top level: docs/benchmarks.md#import-depth
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_dispatch import settings
from batch_dispatch.alerts import routing
from batch_dispatch.observability import logger, metrics, tracer
from batch_dispatch.settings import FailureNotifySettings


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Slack and DynamoDB errors propagate: Lambda's async retries run, then the event lands in the DLQ.
    return routing.handle(event, settings.load(FailureNotifySettings), context)
