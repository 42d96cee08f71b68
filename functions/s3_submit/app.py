"""S3SubmitFunction: SQS batches of S3 upload notifications -> one Batch job per uploaded object.

`SUBMIT_MODE=ARRAY` (burst mode) submits the objects of one batch as a single array job instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from batch_dispatch.observability import logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # Imported on the first invocation, not at init: pydantic, the batch processor and the idempotency
    # store are ~100 ms of cold start (bench/cold_start.py); later invocations find them in sys.modules.
    from batch_dispatch.s3_intake import handle_event

    # Failed messages go back to SQS (redelivered, then parked in IntakeDLQ); the rest are deleted.
    return handle_event(event, context)
