"""A job type's jobs as Batch lists them, and where a job's attempt logs.

ListJobs takes one filter: the job type's name prefix (every job name of a job type starts with it); the
job definition family then keeps exactly the job type's jobs. Batch lists finished jobs for about 7 days.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from batch_dispatch.alerts.job_state import Attempt, ContainerDetail, JobDetail
from batch_dispatch.job_types import JobType, definition_family
from batch_dispatch_cli.output import from_millis
from batch_dispatch_cli.stack import DEFAULT_JOB_LOG_GROUP, DeployedStack

FINISHED = ("SUCCEEDED", "FAILED")
RUNNING = ("STARTING", "RUNNING")
WAITING = ("SUBMITTED", "PENDING", "RUNNABLE")


def job_type_jobs(batch: Any, queues: Iterable[str], job_type: JobType) -> list[dict[str, Any]]:
    """Summaries of the job type's jobs (top-level: no array children) in `queues`, any status."""
    family = job_type.definition_family
    found: dict[str, dict[str, Any]] = {}
    for queue in queues:
        pages = batch.get_paginator("list_jobs").paginate(
            jobQueue=queue, filters=[{"name": "JOB_NAME", "values": [f"{job_type.job_name_prefix}*"]}]
        )
        for page in pages:
            for summary in page.get("jobSummaryList", []):
                if ":" in summary["jobId"] or definition_family(summary.get("jobDefinition")) != family:
                    continue
                found.setdefault(summary["jobId"], summary)
    return list(found.values())


class Activity(NamedTuple):
    last_success: dict[str, Any] | None
    last_failure: dict[str, Any] | None
    running: int
    runnable: int
    failed_recently: int


def finished_at(summary: dict[str, Any]) -> datetime | None:
    return from_millis(summary.get("stoppedAt")) or from_millis(summary.get("createdAt"))


def activity(summaries: list[dict[str, Any]], now: datetime, window: timedelta) -> Activity:
    def latest(status: str) -> dict[str, Any] | None:
        done = [s for s in summaries if s.get("status") == status and finished_at(s)]
        return max(done, key=lambda s: finished_at(s) or now, default=None)

    since = now - window
    return Activity(
        last_success=latest("SUCCEEDED"),
        last_failure=latest("FAILED"),
        running=sum(1 for s in summaries if s.get("status") in RUNNING),
        runnable=sum(1 for s in summaries if s.get("status") in WAITING),
        failed_recently=sum(
            1 for s in summaries if s.get("status") == "FAILED" and (finished_at(s) or since) > since
        ),
    )


def describe_job(batch: Any, job_id: str) -> dict[str, Any] | None:
    jobs = batch.describe_jobs(jobs=[job_id]).get("jobs", [])
    return jobs[0] if jobs else None


class LogLocation(NamedTuple):
    attempt: int  # 1-based
    attempts: int  # how many the job has had (the running one included)
    log_group: str
    log_stream: str | None  # None: that attempt never reached RUNNING


def attempt_containers(job: JobDetail) -> list[ContainerDetail | None]:
    """The container of each attempt, oldest first; a running job's current attempt last."""
    found: list[ContainerDetail | None] = [_container_of(attempt) for attempt in job.attempts]
    if job.status in RUNNING:  # Batch adds the attempt to `attempts` only once it has ended
        found.append(job.container)
    return found


def _container_of(attempt: Attempt) -> ContainerDetail | None:
    if attempt.container is not None:
        return attempt.container
    for task in attempt.task_properties:
        for container in task.containers:
            return container
    return None


def log_location(raw_job: dict[str, Any], attempt: int | None, stack: DeployedStack) -> LogLocation | None:
    """Where attempt `attempt` (1-based; None: the last) logs; None when the job has no such attempt."""
    job = JobDetail(raw_job)
    containers = attempt_containers(job)
    if not containers:
        return None
    number = attempt or len(containers)
    if not 1 <= number <= len(containers):
        return None
    container = containers[number - 1]
    group = (
        (container.log_group if container else None)
        or (job.container.log_group if job.container else None)
        or (
            stack.job_log_group
            if definition_family(job.job_definition).startswith(f"{stack.name}_")
            else DEFAULT_JOB_LOG_GROUP
        )
    )
    return LogLocation(number, len(containers), group, container.log_stream_name if container else None)
