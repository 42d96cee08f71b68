"""StormDigestFunction: a storm window's delayed close (SQS) -> digest / "storm over" Slack messages."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3  # noqa: F401 - first, at top level: docs/benchmarks.md#import-depth
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_dispatch import settings
from batch_dispatch.alerts.storm import closer
from batch_dispatch.observability import logger, metrics, tracer
from batch_dispatch.settings import StormDigestSettings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # A message that fails (Slack down, DynamoDB error) fails alone: SQS redelivers it, then StormDLQ.
    return closer.handle(event, settings.load(StormDigestSettings), context)
