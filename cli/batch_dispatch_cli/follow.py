"""Following a job until it ends, with a live status line on a terminal."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from batch_dispatch_cli.errors import OperatorError
from batch_dispatch_cli.jobs import FINISHED, describe_job
from batch_dispatch_cli.output import Output


def follow_job(
    batch: Any,
    job_id: str,
    output: Output,
    *,
    poll_seconds: float,
    on_poll: Callable[[dict[str, Any]], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Describe `job_id` every `poll_seconds` until it SUCCEEDED or FAILED; return its last description.
    `on_poll(job)` runs after every look (e.g. to print new log lines)."""
    with output.status(f"{job_id}: waiting") as show:
        while True:
            job = describe_job(batch, job_id)
            if job is None:
                raise OperatorError(f"Batch has no job {job_id}: check the job id and --region")
            show(f"{job.get('jobName', job_id)}: {job.get('status')} {job.get('statusReason', '')}".rstrip())
            if on_poll is not None:
                on_poll(job)
            if job.get("status") in FINISHED:
                return job
            sleep(poll_seconds)
