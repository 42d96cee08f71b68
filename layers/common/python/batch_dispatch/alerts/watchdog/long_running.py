"""Long-running jobs: a job of a type with an ExpectedDuration, RUNNING for longer, is told once.

Opt-in per job type (ExpectedDuration, off by default). The job's record in AlertStateTable makes the
alert once per job however often the check runs; it expires after Batch's longest attempt time (14 days)
and a day.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_dispatch.alerts.channels import channel_of
from batch_dispatch.alerts.watchdog.job_history import JobHistory
from batch_dispatch.alerts.watchdog.messages import Where, long_running_message, when
from batch_dispatch.alerts.watchdog.post_finding import post_finding
from batch_dispatch.alerts.watchdog.state import WatchStore
from batch_dispatch.job_types import JobType
from batch_dispatch.settings import WatchdogSettings

IDEMPOTENCY_PREFIX = "long-running"
RECORD_LIFETIME = timedelta(days=15)


def check_long_running(
    job_type: JobType,
    history: JobHistory,
    store: WatchStore,
    settings: WatchdogSettings,
    lambda_context: LambdaContext | None = None,
) -> list[str]:
    """Alert each of the type's jobs running past its expected duration, once. Returns their job ids."""
    expected = job_type.expected_duration_seconds
    if not expected:
        return []
    now = history.now
    alerted: list[str] = []
    for job in history.running(job_type):
        if job.started_at is None or now - job.started_at <= timedelta(seconds=expected):
            continue
        pk, sk = f"watch#{job_type.name}", f"running#{job.job_id}"
        if not store.record(pk, sk, now + RECORD_LIFETIME, started_at=when(job.started_at)):
            continue
        channel = channel_of(job_type, settings.slack_mention)
        ran = (now - job.started_at).total_seconds()
        text = long_running_message(
            job_type.name,
            job,
            ran,
            expected,
            Where(settings.environment, settings.aws_region),
            channel.mention,
        )
        post_finding(
            IDEMPOTENCY_PREFIX,
            job.job_id,
            text,
            channel,
            settings,
            lambda_context,
            mark_alerted=partial(store.mark_alerted, pk, sk),
            metric="LongRunningNotified",
            log_message="Job running longer than expected",
            log_extra={"job_type": job_type.name, "job_id": job.job_id, "ran_seconds": int(ran)},
        )
        alerted.append(job.job_id)
    return alerted
