"""Missed ticks: a schedule tick parked in ScheduleDLQ submitted no job; say so once, with the command
that catches it up.

Two things park a tick there, both with the tick's Input (scheduledTime, scheduleArn, jobType) as the
message body: EventBridge Scheduler when it could not invoke ScheduleSubmitFunction after its retries
(message attributes ERROR_CODE, ERROR_MESSAGE, RETRY_ATTEMPTS, EXHAUSTED_RETRY_CONDITION, SCHEDULE_ARN,
SCHEDULED_TIME, TARGET_ARN...), and Lambda when the function failed on the tick after its async retries
(attributes RequestID, ErrorCode, ErrorMessage). The watchdog only peeks (aws/queue_peek): the tick stays
for a redrive, and the DLQ alarm stays on until someone acts. One alert per (schedule, scheduled time),
remembered longer than the DLQ keeps messages (14 days); a body that is not a tick is logged and left.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, NamedTuple

from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_dispatch.alerts.channels import Channel, channel_of
from batch_dispatch.alerts.watchdog.messages import MissedFacts, Where, iso, missed_tick_message
from batch_dispatch.alerts.watchdog.post_finding import post_finding
from batch_dispatch.alerts.watchdog.state import WatchStore
from batch_dispatch.aws.queue_peek import peek
from batch_dispatch.job_types import DEFAULT, Catalog
from batch_dispatch.observability import MetricUnit, logger, metrics
from batch_dispatch.schedule_times import Schedule, UnsupportedExpressionError
from batch_dispatch.settings import WatchdogSettings
from batch_dispatch.submit.schedule import InvalidScheduleEventError, parse_tick

IDEMPOTENCY_PREFIX = "missed-tick"
RECORD_LIFETIME = timedelta(days=15)
UNKNOWN_PERIOD = timedelta(minutes=1)
_JOB_TYPE_IN_TEXT = re.compile(r'"jobType"\s*:\s*"([a-z0-9-]{1,40})"')


class ParkedTick(NamedTuple):
    schedule_arn: str
    scheduled_time: datetime
    job_type: str
    why: str

    @property
    def schedule_name(self) -> str:
        return self.schedule_arn.rsplit("/", 1)[-1]


def _attribute(message: dict[str, Any], name: str) -> str:
    value = (message.get("MessageAttributes") or {}).get(name) or {}
    return str(value.get("StringValue") or "")


def why_parked(message: dict[str, Any]) -> str:
    """What parked the tick, from the message attributes Scheduler or Lambda gave it."""
    code, text = _attribute(message, "ERROR_CODE"), _attribute(message, "ERROR_MESSAGE")
    if code or text:
        retries = _attribute(message, "RETRY_ATTEMPTS")
        after = f" after {retries} retries" if retries else ""
        condition = _attribute(message, "EXHAUSTED_RETRY_CONDITION")
        until = f" ({condition} reached)" if condition else ""
        return f"EventBridge Scheduler could not invoke its target ({code}: {text}){after}{until}"
    lambda_error = _attribute(message, "ErrorMessage")
    if lambda_error or _attribute(message, "RequestID"):
        return f"ScheduleSubmitFunction failed on it after Lambda's retries ({lambda_error or 'no message'})"
    return "it was parked in ScheduleDLQ"


def parse_parked(message: dict[str, Any]) -> ParkedTick | None:
    """The tick a ScheduleDLQ message holds, or None if it holds something else."""
    body = str(message.get("Body") or "")
    try:
        tick = parse_tick(json.loads(body))
        return ParkedTick(tick.schedule_arn, tick.scheduled_time, tick.job_type, why_parked(message))
    except (ValueError, InvalidScheduleEventError):
        pass
    # A body Scheduler cut short (IS_PAYLOAD_TRUNCATED): the tick is in the attributes.
    arn, when_text = _attribute(message, "SCHEDULE_ARN"), _attribute(message, "SCHEDULED_TIME")
    try:
        moment = datetime.fromisoformat(when_text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if not arn:
        return None
    found = _JOB_TYPE_IN_TEXT.search(body)
    scheduled = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return ParkedTick(arn, scheduled, found.group(1) if found else DEFAULT, why_parked(message))


def backfill_end(tick: ParkedTick, catalog: Catalog) -> datetime:
    """The end of the backfill range [tick, end) that holds the tick: one period later, or a minute
    later when the period is unknown (a one-time schedule, a job type no longer in the catalog)."""
    job_type = catalog.get(tick.job_type)
    period: timedelta | None = None
    if job_type is not None and job_type.schedule_expression:
        try:
            period = Schedule(job_type.schedule_expression, job_type.schedule_timezone).period()
        except (UnsupportedExpressionError, ValueError, KeyError):
            period = None
    return tick.scheduled_time + (period or UNKNOWN_PERIOD)


def check_missed_ticks(
    catalog: Catalog,
    store: WatchStore,
    now: datetime,
    settings: WatchdogSettings,
    lambda_context: LambdaContext | None = None,
) -> list[str]:
    """Alert every parked tick not alerted before. Returns "<schedule>@<time>" of those alerted now."""
    alerted: list[str] = []
    for message in peek(settings.schedule_dlq_url, settings.dlq_peek_limit):
        tick = parse_parked(message)
        if tick is None:
            metrics.add_metric(name="ParkedMessageNotATick", unit=MetricUnit.Count, value=1)
            logger.warning(
                "ScheduleDLQ message is not a tick", extra={"message_id": message.get("MessageId")}
            )
            continue
        pk, sk = f"missed#{tick.schedule_name}", iso(tick.scheduled_time)
        if not store.record(pk, sk, now + RECORD_LIFETIME, job_type=tick.job_type):
            continue
        job_type = catalog.get(tick.job_type)
        channel = (
            channel_of(job_type, settings.slack_mention)
            if job_type
            else Channel("", settings.slack_mention, "")
        )
        facts = MissedFacts(
            tick.job_type, tick.schedule_name, tick.scheduled_time, tick.why, backfill_end(tick, catalog)
        )
        post_finding(
            IDEMPOTENCY_PREFIX,
            f"{tick.schedule_arn}|{sk}",
            missed_tick_message(facts, Where(settings.environment, settings.aws_region), channel.mention),
            channel,
            settings,
            lambda_context,
            mark_alerted=partial(store.mark_alerted, pk, sk),
            metric="MissedTickNotified",
            log_message="Schedule tick missed",
            log_extra={"job_type": tick.job_type, "schedule": tick.schedule_name, "scheduled_time": sk},
        )
        alerted.append(f"{tick.schedule_name}@{sk}")
    return alerted
