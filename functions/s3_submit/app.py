"""S3SubmitFunction: SQS batches of S3 upload notifications -> Batch jobs (one per object, or array mode)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3  # noqa: F401 - first, at top level: docs/benchmarks.md#import-depth
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_dispatch import settings
from batch_dispatch.observability import logger, metrics, tracer
from batch_dispatch.settings import S3SubmitSettings
from batch_dispatch.submit import intake

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # Failed messages go back to SQS (redelivered, then parked in IntakeDLQ); the rest are deleted.
    return intake.handle(event, settings.load(S3SubmitSettings), context)
