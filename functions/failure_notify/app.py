"""FailureNotifyFunction: Batch events from our rules -> Slack.

FAILED job -> one message per job, or counted in a storm digest; Queue Blocked / blocked RUNNABLE job ->
one message per queue and reason.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_dispatch.failure_alert import notify_settings
from batch_dispatch.observability import logger, metrics, tracer
from batch_dispatch.operations import handle_batch_event


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = notify_settings()
    # Slack and DynamoDB errors propagate on purpose: Lambda's async retries run, then the event lands in
    # the DLQ.
    return handle_batch_event(event, settings, context)
