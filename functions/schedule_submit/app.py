"""ScheduleSubmitFunction: EventBridge Scheduler (or a classic schedule rule) -> one Batch job per tick."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from batch_dispatch.observability import MetricUnit, logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Imported on the first invocation, not at init: pydantic and the idempotency store are ~100 ms
    # of cold start (bench/cold_start.py); later invocations find them in sys.modules.
    from batch_dispatch.config import submit_settings
    from batch_dispatch.schedule import InvalidScheduleEventError, parse_tick, submit_scheduled_job

    settings = submit_settings()
    try:
        tick = parse_tick(event)
    except InvalidScheduleEventError:
        # Raise so Lambda's async retries end with the event parked in the schedule DLQ.
        logger.exception("Rejected schedule event")
        metrics.add_metric(name="RecordRejected", unit=MetricUnit.Count, value=1)
        raise
    logger.append_keys(schedule_arn=tick.schedule_arn, scheduled_time=tick.scheduled_time_iso)
    outcome = submit_scheduled_job(tick, settings, context)
    return {"jobId": outcome.job.job_id, "jobName": outcome.job.job_name, "duplicate": outcome.duplicate}
