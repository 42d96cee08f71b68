"""SlackActionsFunction: Slack's Rerun button clicks (function URL, signed by Slack) -> the job rerun once."""

from __future__ import annotations

from typing import Any

import boto3  # noqa: F401 - first, at top level: docs/benchmarks.md#import-depth
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_dispatch import settings
from batch_dispatch.alerts import rerun_click
from batch_dispatch.observability import logger, metrics, tracer
from batch_dispatch.settings import SlackActionsSettings


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Refusals are answered (HTTP 401, or an ephemeral text in Slack); an unexpected error is answered in
    # Slack, then raised so the function's Errors alarm sees it.
    return rerun_click.handle(event, settings.load(SlackActionsSettings), context)
