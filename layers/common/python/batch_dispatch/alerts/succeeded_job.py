"""A SUCCEEDED job of a job type that asked for them (NotifySucceeded): one short message in its channel."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_dispatch.alerts.channels import Channel
from batch_dispatch.alerts.failed_job import FailureSummary, NotifyOutcome, title_line
from batch_dispatch.alerts.failure_classes import format_duration
from batch_dispatch.observability import MetricUnit, logger, metrics
from batch_dispatch.settings import FailureNotifySettings
from batch_dispatch.slack.blocks import header, link_buttons, message, section, slack_text
from batch_dispatch.slack.post_once import post_once

IDEMPOTENCY_PREFIX = "succeeded-alert"


def build_success_message(summary: FailureSummary, environment: str) -> dict[str, Any]:
    title = title_line(summary, environment).replace(" FAILED: ", " SUCCEEDED: ", 1)
    queue = slack_text(summary.queue_name or "unknown queue", 200)
    ran = format_duration(summary.duration_seconds)
    text = (
        f":white_check_mark: *{slack_text(summary.job_name, 200)}* succeeded in queue *{queue}* (ran {ran})."
    )
    blocks = [
        header(title),
        section(text),
        link_buttons([("Open job in Batch console", summary.console_url)]),
    ]
    return message(slack_text(title, 400), blocks)


def notify_succeeded(
    job_id: str,
    summary: FailureSummary,
    channel: Channel,
    settings: FailureNotifySettings,
    lambda_context: LambdaContext | None = None,
) -> NotifyOutcome:
    """Post the job's success once, to its job type's channel."""
    posted = post_once(
        IDEMPOTENCY_PREFIX,
        f"{job_id}#SUCCEEDED",
        build_success_message(summary, settings.environment),
        settings,
        lambda_context,
        secret_name=channel.secret_name or None,
    )
    metrics.add_metric(
        name="SuccessNotified" if posted else "DuplicateSkipped", unit=MetricUnit.Count, value=1
    )
    logger.info(
        "Success posted" if posted else "Duplicate delivery, success already posted",
        extra={"job_type": channel.job_type},
    )
    return NotifyOutcome(notified=True, job_id=job_id, duplicate=not posted)
