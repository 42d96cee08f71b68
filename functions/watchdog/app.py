"""WatchdogFunction: every few minutes (EventBridge Scheduler) -> late job types, long-running jobs and
missed schedule ticks, each told once in Slack."""

from __future__ import annotations

from typing import Any

import boto3  # noqa: F401 - first, at top level: docs/benchmarks.md#import-depth
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_dispatch import settings
from batch_dispatch.alerts.watchdog import checks
from batch_dispatch.observability import logger, metrics, tracer
from batch_dispatch.settings import WatchdogSettings


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Errors propagate: the run fails (WatchdogErrorsAlarm) and the next tick checks everything again.
    return checks.handle(event, settings.load(WatchdogSettings), context)
