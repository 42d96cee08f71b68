"""What Batch knows about a job type's jobs as of the check's time: its last success and failure, its
newest job, and its jobs running now.

ListJobs with the JOB_DEFINITION filter (the definition's name: every revision) lists one job type's
jobs in every status, newest first; paging stops once a page holds a success, or after `max_pages`.
Running jobs come from ListJobs per queue in status RUNNING (bounded by the compute environment).
Each job is matched to its job type by its definition's name, whatever the filter did. Jobs created
after the check's time, or finished after it, are not seen yet: a check is reproducible for a given time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple

from batch_dispatch.aws import clients
from batch_dispatch.job_types import JobType, definition_family

SUCCEEDED, FAILED, RUNNING = "SUCCEEDED", "FAILED", "RUNNING"
PAGE_SIZE = 100


class JobSeen(NamedTuple):
    """One job from a ListJobs summary."""

    job_id: str
    job_name: str
    status: str
    created_at: datetime | None
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    reason: str = ""  # the status reason, with the container's exit code when there is one

    @classmethod
    def from_summary(cls, summary: dict[str, Any]) -> JobSeen:
        reason = str(summary.get("statusReason") or "")
        exit_code = (summary.get("container") or {}).get("exitCode")
        if exit_code is not None:
            reason = f"{reason} (exit code {exit_code})" if reason else f"exit code {exit_code}"
        return cls(
            job_id=str(summary.get("jobId", "")),
            job_name=str(summary.get("jobName", "")),
            status=str(summary.get("status", "")),
            created_at=_moment(summary.get("createdAt")),
            started_at=_moment(summary.get("startedAt")),
            stopped_at=_moment(summary.get("stoppedAt")),
            reason=reason,
        )


def _moment(epoch_ms: Any) -> datetime | None:
    if not isinstance(epoch_ms, int | float) or epoch_ms <= 0:
        return None
    return datetime.fromtimestamp(epoch_ms / 1000, UTC)


class JobHistory:
    """ListJobs answers for one check, read at most once per job type and per queue."""

    def __init__(self, now: datetime, client: Any = None, max_pages: int = 10) -> None:
        self.now = now
        self.client = client or clients.client("batch")
        self.max_pages = max_pages
        self._recent: dict[str, list[JobSeen]] = {}
        self._running: dict[str, list[tuple[str, JobSeen]]] = {}

    def recent(self, job_type: JobType) -> list[JobSeen]:
        """The job type's newest jobs (created by the check's time), any status."""
        if job_type.name not in self._recent:
            family = job_type.definition_family
            found: list[JobSeen] = []
            request: dict[str, Any] = {
                "jobQueue": job_type.job_queue_arn,
                "filters": [{"name": "JOB_DEFINITION", "values": [family]}],
                "maxResults": PAGE_SIZE,
            }
            for _ in range(self.max_pages):
                page = self.client.list_jobs(**request)
                jobs = [
                    JobSeen.from_summary(s)
                    for s in page.get("jobSummaryList", [])
                    if definition_family(s.get("jobDefinition")) == family and ":" not in str(s.get("jobId"))
                ]
                found.extend(j for j in jobs if j.created_at is None or j.created_at <= self.now)
                request["nextToken"] = page.get("nextToken")
                if not request["nextToken"] or any(j.status == SUCCEEDED for j in jobs):
                    break
            self._recent[job_type.name] = found
        return self._recent[job_type.name]

    def _finished(self, job_type: JobType, status: str) -> JobSeen | None:
        done = [
            j
            for j in self.recent(job_type)
            if j.status == status and j.stopped_at is not None and j.stopped_at <= self.now
        ]
        return max(done, key=lambda j: j.stopped_at or self.now, default=None)

    def last_success(self, job_type: JobType) -> JobSeen | None:
        return self._finished(job_type, SUCCEEDED)

    def last_failure(self, job_type: JobType) -> JobSeen | None:
        return self._finished(job_type, FAILED)

    def newest(self, job_type: JobType) -> JobSeen | None:
        """The job type's most recently created job (a scheduled type's last tick, near enough)."""
        dated = [j for j in self.recent(job_type) if j.created_at is not None]
        return max(dated, key=lambda j: j.created_at or self.now, default=None)

    def running(self, job_type: JobType) -> list[JobSeen]:
        """The job type's jobs in status RUNNING that had started by the check's time."""
        queue = job_type.job_queue_arn
        if queue not in self._running:
            found: list[tuple[str, JobSeen]] = []
            request: dict[str, Any] = {"jobQueue": queue, "jobStatus": RUNNING, "maxResults": PAGE_SIZE}
            while True:
                page = self.client.list_jobs(**request)
                found.extend(
                    (definition_family(s.get("jobDefinition")), JobSeen.from_summary(s))
                    for s in page.get("jobSummaryList", [])
                    if ":" not in str(s.get("jobId"))
                )
                request["nextToken"] = page.get("nextToken")
                if not request["nextToken"]:
                    break
            self._running[queue] = found
        return [
            job
            for family, job in self._running[queue]
            if family == job_type.definition_family
            and job.status == RUNNING
            and job.started_at is not None
            and job.started_at <= self.now
        ]
