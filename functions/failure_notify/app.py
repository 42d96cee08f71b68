"""FailureNotifyFunction: Batch events from our rule -> Slack.

FAILED job -> one message per job, or counted in a failure-storm digest; "Batch Job Queue Blocked" or a
RUNNABLE job with a blocked reason -> one message per queue and reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from batch_dispatch.observability import logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Imported on the first invocation, not at init: pydantic, slack_sdk and the idempotency store are
    # ~150 ms of cold start (bench/cold_start.py); later invocations find them in sys.modules.
    from batch_dispatch.failure_alert import notify_settings
    from batch_dispatch.operations import handle_batch_event

    settings = notify_settings()
    # Slack and DynamoDB errors propagate on purpose: Lambda's async retries run, then the event lands in
    # the DLQ.
    return handle_batch_event(event, settings, context)
