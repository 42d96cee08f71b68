"""Failure storms, the data: a failed job, the decision about it, and a closed window's report.

Every failed job belongs to one group: the children of an array job (`<parent>:<index>`) to
`array:<parent id>`, every other job to `queue:<job queue ARN>`. A group has at most one open window at
a time; a window opens at the first failure that finds none open and takes failures for `window_seconds`.
The first `threshold` failures of a window get their own message; the rest are counted in its digest.
"""

from __future__ import annotations

from collections import Counter
from typing import NamedTuple

from batch_dispatch.alerts.failure_classes import Facts, classify
from batch_dispatch.settings import StormSettings

INDIVIDUAL = "individual"
DIGEST = "digest"


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
    cause: str  # the failure class key (failure_classes): "out_of_memory", "timed_out", "cancelled"...
    log_url: str | None = None
    channel: str = ""  # the job type's webhook secret ("" = the stack's)

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


def cause_of(facts: Facts) -> str:
    """What a digest counts a failure by: its failure class (failure_classes), stored by key."""
    return classify(facts).key


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

    @property
    def channel(self) -> str:
        """The job type channel every job of the window shares ("" = the stack's channel)."""
        channels = {j.get("channel", "") for j in self.jobs}
        return channels.pop() if len(channels) == 1 else ""

    def causes(self) -> list[tuple[str, int]]:
        """Every job of the window by cause (those posted individually included), most frequent first."""
        return Counter(j["cause"] for j in self.jobs).most_common()


class CloseOutcome(NamedTuple):
    report: WindowReport
    posted: list[str]  # kinds of message posted: digest, storm-ended
