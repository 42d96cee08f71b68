"""Failure storms, the data: a failed job, the decision about it, and a closed window's report.

Every failed job belongs to one group: the children of an array job (`<parent>:<index>`) to
`array:<parent id>`, every other job to `queue:<job queue ARN>`. A group has at most one open window at
a time; a window opens at the first failure that finds none open and takes failures for `window_seconds`.
The first `threshold` failures of a window get their own message; the rest are counted in its digest.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import NamedTuple

from batch_dispatch.settings import StormSettings

INDIVIDUAL = "individual"
DIGEST = "digest"
_ERROR_TOKEN = re.compile(r"^([A-Za-z][A-Za-z0-9]*?)(?:Error|Exception)\b")


class StormConfig(NamedTuple):
    table_name: str
    queue_url: str
    threshold: int = 10  # individual messages per window and group; more become a digest
    window_seconds: int = 300
    grace_seconds: int = 90  # > the notifier's timeout: every write to a window is done before it closes
    array_threshold: int = 1  # array children posted individually per window (the rest: parent's digest)

    @classmethod
    def from_settings(cls, settings: StormSettings) -> StormConfig:
        return cls(
            table_name=settings.alert_state_table_name,
            queue_url=settings.storm_queue_url,
            threshold=settings.storm_threshold,
            window_seconds=settings.storm_window_seconds,
            grace_seconds=settings.storm_grace_seconds,
        )


class FailedJob(NamedTuple):
    """What a digest needs to know about one failed job (small: a window may hold 10,000 children)."""

    job_id: str
    job_name: str
    queue_arn: str
    cause: str  # "exit code 1", "OutOfMemory", "cancelled (CAPACITY:...)"...
    log_url: str | None = None

    @property
    def parent_id(self) -> str | None:
        """Array children are `<parent>:<index>` (multi-node nodes are `<parent>#<node>`, not children)."""
        return self.job_id.split(":", 1)[0] if ":" in self.job_id else None

    @property
    def group(self) -> str:
        parent = self.parent_id
        return f"array:{parent}" if parent else f"queue:{self.queue_arn}"


class StormDecision(NamedTuple):
    decision: str  # INDIVIDUAL or DIGEST
    group: str
    window: int  # window start, epoch milliseconds
    rank: int
    redelivery: bool = False
    starts_storm: bool = False  # the first job of a queue group past the threshold (post the notice)


def cause_of(
    exit_code: int | None, reason: str | None, status_reason: str | None, cancelled: str | None
) -> str:
    """A short label to count failures by: the error type, else the exit code, else the status reason."""
    if cancelled:
        return f"cancelled ({cancelled})"
    match = _ERROR_TOKEN.match((reason or "").strip())
    if match and match.group(1) not in ("", "Essential"):
        return match.group(1)
    if exit_code is not None:
        return f"exit code {exit_code}"
    text = (reason or status_reason or "").strip()
    return text[:80] if text else "no exit code"


class WindowReport(NamedTuple):
    group: str
    window: int
    queue_arn: str
    jobs: tuple[dict[str, str], ...] = ()  # job_id, job_name, cause, log_url, decision

    @property
    def parent_id(self) -> str | None:
        return self.group.split(":", 1)[1] if self.group.startswith("array:") else None

    @property
    def digested(self) -> list[dict[str, str]]:
        return [j for j in self.jobs if j["decision"] == DIGEST]

    @property
    def individual(self) -> int:
        return len(self.jobs) - len(self.digested)

    @property
    def total(self) -> int:
        return len(self.jobs)

    def causes(self) -> list[tuple[str, int]]:
        """Every failure of the window by cause (those posted individually included)."""
        return Counter(j["cause"] for j in self.jobs).most_common()


class CloseOutcome(NamedTuple):
    report: WindowReport
    posted: list[str]  # kinds of message posted: digest, storm-ended
