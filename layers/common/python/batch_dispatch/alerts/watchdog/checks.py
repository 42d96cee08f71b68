"""WatchdogFunction's one call: run every check once, as of the tick's time.

The check's clock is the Scheduler tick's `scheduledTime` (or a classic Scheduled Event's `time`), else
the wall clock: a check is reproducible for a given event, and a test or the emulator moves time by
sending a later tick. Slack and AWS errors propagate: the run fails, its alarm counts it, and the next
tick (minutes later) checks everything again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_dispatch.alerts.watchdog.job_history import JobHistory
from batch_dispatch.alerts.watchdog.lateness import check_lateness
from batch_dispatch.alerts.watchdog.long_running import check_long_running
from batch_dispatch.alerts.watchdog.messages import iso
from batch_dispatch.alerts.watchdog.missed_ticks import check_missed_ticks
from batch_dispatch.alerts.watchdog.state import WatchStore
from batch_dispatch.job_types import catalog_for
from batch_dispatch.observability import logger, tracer
from batch_dispatch.settings import WatchdogSettings


def check_time(event: Any) -> datetime:
    """The tick's scheduled time (Scheduler's `scheduledTime`, a classic event's `time`), else now."""
    if isinstance(event, dict):
        for name in ("scheduledTime", "time"):
            text = event.get(name)
            if isinstance(text, str) and text:
                try:
                    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
                except ValueError:
                    continue
                return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return datetime.now(UTC)


@tracer.capture_method(capture_response=False)
def handle(
    event: Any,
    settings: WatchdogSettings,
    lambda_context: LambdaContext | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Check every job type (lateness, long-running jobs) and ScheduleDLQ; post each finding once."""
    now = now or check_time(event)
    catalog = catalog_for(settings)
    history = JobHistory(now)
    store = WatchStore(settings.alert_state_table_name)
    lateness = {}
    long_running: dict[str, list[str]] = {}
    for job_type in sorted(catalog.job_types.values(), key=lambda t: t.name):
        lateness[job_type.name] = check_lateness(job_type, history, store, settings, lambda_context)
        running_long = check_long_running(job_type, history, store, settings, lambda_context)
        if running_long:
            long_running[job_type.name] = running_long
    missed = check_missed_ticks(catalog, store, now, settings, lambda_context)
    result = {"checkedAt": iso(now), "lateness": lateness, "longRunning": long_running, "missedTicks": missed}
    logger.info("Watchdog checked", extra={"job_types": len(lateness), "missed_ticks": len(missed)})
    return result
