"""Posting one watchdog finding: the Slack post (once), the mark in AlertStateTable, the metric, the log.

Every check (lateness, long-running jobs, missed ticks) ends a finding this way, in this order: a run
that dies between the post and the mark posts again next time, and `post_once` keeps that quiet.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_dispatch.alerts.channels import Channel
from batch_dispatch.observability import MetricUnit, logger, metrics
from batch_dispatch.settings import WatchdogSettings
from batch_dispatch.slack.post_once import post_once


def post_finding(
    prefix: str,
    key: str,
    message: dict[str, Any],
    channel: Channel,
    settings: WatchdogSettings,
    lambda_context: LambdaContext | None,
    *,
    mark_alerted: Callable[[], None],
    metric: str,
    log_message: str,
    log_extra: dict[str, Any],
) -> None:
    """Post the finding to its channel once (idempotency on prefix + key), mark it alerted, count it
    (`metric`, or DuplicateSkipped when an earlier run already posted it) and log it as a warning."""
    posted = post_once(
        prefix, key, message, settings, lambda_context, secret_name=channel.secret_name or None
    )
    mark_alerted()
    metrics.add_metric(name=metric if posted else "DuplicateSkipped", unit=MetricUnit.Count, value=1)
    logger.warning(log_message, extra=log_extra)
