"""Jobs the emulator shows as exited: moto's no-Docker Batch fails a job without running a container, so
it has no exit code, no container reason and no log stream to report.

`ExitedJobs` holds, per job id, what its container did (`Emulator.jobs_fail`, `Emulator.job_exited`), and
turns moto's DescribeJobs answers into what Batch would answer for those FAILED jobs: each attempt's
exit code, reason and log stream, and the job's status reason. The emulator's server applies it to
every answer (`MotoServer.rewriting`), so the functions, the operator command and the emulator itself
all see the same job.
"""

from __future__ import annotations

import json
import threading
from typing import Any, NamedTuple

from emulator.moto_server import WireRequest


class Exit(NamedTuple):
    exit_code: int
    reason: str
    log_stream: str | None  # None: the job logged nothing


class ExitedJobs:
    def __init__(self) -> None:
        self._exits: dict[str, Exit] = {}
        self._lock = threading.Lock()

    def note(self, job_id: str, exited: Exit) -> None:
        with self._lock:
            self._exits[job_id] = exited

    def clear(self) -> None:
        with self._lock:
            self._exits.clear()

    def described(self, job: dict[str, Any]) -> dict[str, Any]:
        """`job` as DescribeJobs describes it, with its container's exit if the job FAILED after one."""
        with self._lock:
            exited = self._exits.get(str(job.get("jobId")))
        if exited is None or job.get("status") != "FAILED":
            return job
        attempts = []
        for attempt in job.get("attempts", []):
            container = {**attempt.get("container", {}), "exitCode": exited.exit_code}
            container["reason"] = exited.reason
            if exited.log_stream:
                container["logStreamName"] = exited.log_stream
            attempts.append({**attempt, "container": container, "statusReason": exited.reason})
        return {**job, "statusReason": exited.reason, "attempts": attempts}

    def __call__(self, request: WireRequest, status: int, body: bytes) -> bytes | None:
        """The server's rewriter: a new body for Batch's DescribeJobs answers, else None."""
        if status != 200 or not self._exits or not request.path.endswith("/v1/describejobs"):
            return None
        answer = json.loads(body or b"{}")
        jobs = [self.described(job) for job in answer.get("jobs", [])]
        return json.dumps({**answer, "jobs": jobs}).encode()
