"""ScheduleSubmitFunction: EventBridge Scheduler (or a classic schedule rule) -> one Batch job per tick."""

from __future__ import annotations

from typing import Any

import boto3  # noqa: F401 - first, at top level: docs/benchmarks.md#import-depth
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_dispatch import settings
from batch_dispatch.observability import logger, metrics, tracer
from batch_dispatch.settings import ScheduleSubmitSettings
from batch_dispatch.submit import schedule


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # A malformed tick raises: Lambda's async retries run, then the event is parked in the schedule DLQ.
    outcome = schedule.handle(event, settings.load(ScheduleSubmitSettings), context)
    return {"jobId": outcome.job.job_id, "jobName": outcome.job.job_name, "duplicate": outcome.duplicate}
