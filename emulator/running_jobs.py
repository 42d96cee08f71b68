"""Jobs the emulator keeps RUNNING: moto's no-Docker Batch finishes every job when it is submitted.

`RunningJobs` holds jobs (as ListJobs first listed them, with their queue) and turns moto's ListJobs and
DescribeJobs answers into what Batch would answer while those jobs run: status RUNNING, started when
submitted, no stop, no finished attempt; listed under RUNNING, and not under the status moto gave them.
The emulator's server applies it to every answer (`MotoServer.rewriting`); a unit test on in-process
moto applies `list_jobs`/`describe_jobs` to its client's answers.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from emulator.moto_server import WireRequest

RUNNING = "RUNNING"
_FINISHED_FIELDS = ("stoppedAt", "statusReason", "container", "isCancelled", "isTerminated")


def _same_queue(requested: str, queue_arn: str) -> bool:
    return requested in (queue_arn, queue_arn.rsplit("/", 1)[-1])


class RunningJobs:
    def __init__(self) -> None:
        self._held: dict[str, tuple[str, dict[str, Any]]] = {}  # job id -> (queue ARN, summary)
        self._lock = threading.Lock()

    def hold(self, queue_arn: str, summary: dict[str, Any]) -> None:
        """Keep this job RUNNING from now on."""
        running = {k: v for k, v in summary.items() if k not in _FINISHED_FIELDS}
        running["status"] = RUNNING
        running.setdefault("startedAt", running.get("createdAt"))
        with self._lock:
            self._held[str(summary["jobId"])] = (queue_arn, running)

    def clear(self) -> None:
        with self._lock:
            self._held.clear()

    def list_jobs(self, request: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
        """ListJobs as Batch answers it while the held jobs run."""
        with self._lock:
            held = dict(self._held)
        if not held:
            return answer
        listed = answer.get("jobSummaryList", [])
        kept = [s for s in listed if s.get("jobId") not in held]
        queue = str(request.get("jobQueue") or "")
        if request.get("filters"):  # every status: the held jobs moto listed (its filter chose them)
            kept += [held[s["jobId"]][1] for s in listed if s.get("jobId") in held]
        elif request.get("jobStatus") == RUNNING and queue:
            kept += [summary for arn, summary in held.values() if _same_queue(queue, arn)]
        return {**answer, "jobSummaryList": kept}

    def describe_jobs(self, answer: dict[str, Any]) -> dict[str, Any]:
        """DescribeJobs as Batch answers it while the held jobs run."""
        with self._lock:
            held = dict(self._held)
        if not held:
            return answer
        jobs = []
        for job in answer.get("jobs", []):
            if job.get("jobId") in held:
                job = {k: v for k, v in job.items() if k not in ("stoppedAt", "statusReason")}
                job.update(status=RUNNING, attempts=[], startedAt=held[job["jobId"]][1].get("startedAt"))
            jobs.append(job)
        return {**answer, "jobs": jobs}

    def __call__(self, request: WireRequest, status: int, body: bytes) -> bytes | None:
        """The server's rewriter: a new body for Batch's ListJobs and DescribeJobs answers, else None."""
        if status != 200 or not self._held:
            return None
        if request.path.endswith("/v1/listjobs"):
            return json.dumps(self.list_jobs(request.json(), json.loads(body or b"{}"))).encode()
        if request.path.endswith("/v1/describejobs"):
            return json.dumps(self.describe_jobs(json.loads(body or b"{}"))).encode()
        return None
