"""S3SubmitFunction: SQS batches of S3 upload notifications -> one Batch job per uploaded object."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_dispatch.config import submit_settings
from batch_dispatch.observability import logger, metrics, tracer
from batch_dispatch.s3_intake import new_processor, record_handler_for


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    settings = submit_settings()
    # Failed messages go back to SQS (redelivered, then parked in IntakeDLQ); the rest are deleted.
    return process_partial_response(
        event=event, record_handler=record_handler_for(settings), processor=new_processor(), context=context
    )
