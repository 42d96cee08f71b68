"""StormDigestFunction: a storm window's delayed close (SQS) -> digest / "storm over" Slack messages."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_dispatch.failure_alert import NotifySettings, notify_settings
from batch_dispatch.observability import logger, metrics, tracer
from batch_dispatch.operations import process_storm_message

processor = BatchProcessor(event_type=EventType.SQS)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings: NotifySettings = notify_settings()

    def record_handler(record: SQSRecord) -> dict[str, Any]:
        # A failure (Slack down, DynamoDB error) fails only this record: SQS redelivers it, then StormDLQ.
        return process_storm_message(record.body, settings, context)

    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)
