"""`batch-dispatch logs JOB_ID`: the job's CloudWatch Logs stream (its last attempt, or --attempt N)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import click
from botocore.exceptions import ClientError

from batch_dispatch_cli.context import Operator, operator_command
from batch_dispatch_cli.errors import ATTENTION, OperatorError
from batch_dispatch_cli.follow import follow_job
from batch_dispatch_cli.jobs import describe_job, log_location
from batch_dispatch_cli.output import from_millis, iso

MAX_PAGES = 1000  # 10,000 events a page at most: more than any job worth reading here


class StreamReader:
    """Reads a stream forward from its start; `new_events()` returns what arrived since the last call."""

    def __init__(self, logs: Any, group: str, stream: str) -> None:
        self.logs, self.group, self.stream = logs, group, stream
        self.token: str | None = None

    def new_events(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            request: dict[str, Any] = {"logGroupName": self.group, "logStreamName": self.stream}
            if self.token:
                request["nextToken"] = self.token
            else:
                request["startFromHead"] = True
            try:
                page = self.logs.get_log_events(**request)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                    return events  # not created yet (a job just started), or expired
                raise
            events.extend(page.get("events", []))
            token = page.get("nextForwardToken")
            if not token or token == self.token:
                break
            self.token = token
        return events


def _lines(events: list[dict[str, Any]]) -> Iterator[tuple[str | None, str]]:
    for event in events:
        for line in str(event.get("message", "")).rstrip("\n").split("\n"):
            yield iso(from_millis(event.get("timestamp"))), line


def wait_for_attempt(operator: Operator, job_id: str, poll_seconds: float) -> dict[str, Any]:
    """The job, described once it has an attempt (or has ended without one)."""
    batch = operator.aws.client("batch")
    with operator.output.status(f"{job_id}: waiting for it to start") as show:
        while True:
            job = describe_job(batch, job_id) or {}
            show(f"{job.get('jobName', job_id)}: {job.get('status')}")
            if job.get("attempts") or job.get("status") in ("STARTING", "RUNNING", "SUCCEEDED", "FAILED"):
                return job
            time.sleep(poll_seconds)


@click.command()
@click.argument("job_id")
@click.option(
    "--attempt", type=click.IntRange(min=1), default=None, help="Attempt number, 1 = first [default: last]."
)
@click.option("--follow", is_flag=True, help="Keep printing new lines until the job has ended.")
@click.option("--poll-seconds", default=5.0, show_default=True, hidden=True, type=click.FloatRange(min=0))
@operator_command
def logs(operator: Operator, job_id: str, attempt: int | None, follow: bool, poll_seconds: float) -> int:
    """Print the log stream of JOB_ID's last attempt (or --attempt N); --follow polls until it ends."""
    stack, out = operator.stack, operator.output
    batch, cloudwatch = operator.aws.client("batch"), operator.aws.client("logs")
    job = describe_job(batch, job_id)
    if job is None:
        raise OperatorError(f"Batch has no job {job_id} in {stack.region}: check the job id and --region")
    location = log_location(job, attempt, stack)
    if location is None and follow and attempt is None:  # not started yet: wait for its first attempt
        job = wait_for_attempt(operator, job_id, poll_seconds)
        location = log_location(job, attempt, stack)
    if location is None:
        have = len(job.get("attempts") or [])
        if attempt is None:
            raise OperatorError(
                f"{job_id} has not run yet ({job.get('status')}): try again with --follow later"
            )
        raise OperatorError(f"{job_id} has {have} attempt(s), not {attempt}: pick one of 1..{max(have, 1)}")
    printed: list[dict[str, str | None]] = []

    def show(events: list[dict[str, Any]]) -> None:
        for timestamp, line in _lines(events):
            printed.append({"timestamp": timestamp, "message": line})
            out.line(line)

    reader = (
        StreamReader(cloudwatch, location.log_group, location.log_stream) if location.log_stream else None
    )
    if reader is not None:
        show(reader.new_events())
    if follow and job.get("status") not in ("SUCCEEDED", "FAILED"):
        job = follow_job(
            batch,
            job_id,
            out,
            poll_seconds=poll_seconds,
            on_poll=lambda _job: show(reader.new_events()) if reader is not None else None,
        )
    out.document(
        {
            "jobId": job_id,
            "jobName": job.get("jobName"),
            "status": job.get("status"),
            "attempt": location.attempt,
            "attempts": location.attempts,
            "logGroup": location.log_group,
            "logStream": location.log_stream,
            "lines": printed,
        }
    )
    if location.log_stream is None:
        out.note(f"Attempt {location.attempt} of {job_id} never reached RUNNING: it has no log stream.")
        return ATTENTION
    if not printed:
        out.note(f"No log lines in {location.log_group} {location.log_stream}.")
    return 0
