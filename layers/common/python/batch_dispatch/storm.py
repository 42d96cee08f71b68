"""Failure storms: many FAILED jobs in a short time become one digest, and no failure goes unreported.

Groups and windows
  Every failed job belongs to one group: the children of an array job (`<parent>:<index>`) to
  `array:<parent id>`, every other job to `queue:<job queue ARN>`. A group has at most one open window at a
  time; a window opens at the first failure that finds none open (a "session" window, so a burst is not
  split by a clock boundary) and takes failures for `window_seconds`.

Deciding, per job (FailureNotifyFunction, any number of concurrent, repeated deliveries)
  1. `job#<id>` exists -> a delivery already decided: reuse that decision (redelivery).
  2. Otherwise take a rank in the window: an atomic `ADD n 1` on the window counter, refused once the
     window is sealed. Rank <= threshold -> "individual" (its own Slack message, as before), otherwise
     "digest" (counted in the window's digest). For array children the threshold is 1: the first failed
     child of a window is posted as an example, the others go to the parent's digest.
  3. Record the job in ONE transaction: `job#<id>` and `window#<g>#<w> / job#<id>` (both only if absent),
     with a ConditionCheck that the window is still not sealed. Sealed -> open a new window and retry;
     job already there -> a concurrent delivery won, reuse its decision.
  4. Make sure the window's close is scheduled: if the counter has no `scheduled` flag, send a delayed
     SQS message (window end + grace) and then set the flag. Duplicate messages are harmless.
  The invocation succeeds only after 3 and 4, so a crash anywhere repeats the step on the retry.

Closing (StormDigestFunction, from the delayed message; idempotent)
  Seal the window (`SET sealed`), then read every job recorded in it (strongly consistent query). The seal
  and the ConditionCheck in step 3 make this exact: a job is in the digest's read iff its transaction
  committed before the seal, and a job whose transaction comes after the seal is refused and re-recorded
  in a newer window (which gets its own close). So each failure is either posted on its own or counted in
  exactly one digest. Posts go through Powertools idempotency (a redelivered close posts nothing twice).

Storm start and end (queue groups)
  The first job past the threshold posts a short "storm started" notice at once (the digest only comes
  when the window closes). A window whose digest is not empty marks the group "in storm" and schedules an
  end check one window later. The storm ends, with a follow-up message, when a later window closes with
  no digest (its failures were all posted individually) or when the end check finds no newer window.

Costs: per failed job 1 GetItem, 1 UpdateItem, 1 TransactWriteItems (+1 SQS message per window).
Ranks are never reused, so a retried delivery may waste a rank (one fewer individual message), never a job.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from batch_dispatch import clients
from batch_dispatch.observability import logger

INDIVIDUAL = "individual"
DIGEST = "digest"
RECORD_TTL_SECONDS = 7 * 24 * 3600
MAX_SQS_DELAY_SECONDS = 900
_ERROR_TOKEN = re.compile(r"^([A-Za-z][A-Za-z0-9]*?)(?:Error|Exception)\b")


@dataclass(frozen=True)
class StormConfig:
    table_name: str
    queue_url: str
    threshold: int = 10  # individual messages per window and group; more become a digest
    window_seconds: int = 300
    grace_seconds: int = 90  # > the notifier's timeout: every write to a window is done before it closes
    array_threshold: int = 1  # array children posted individually per window (the rest: parent's digest)


@dataclass(frozen=True)
class FailedJob:
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


@dataclass(frozen=True)
class Verdict:
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


# --------------------------------------------------------------------------------------------------------
# Storage (DynamoDB, table with pk/sk and TTL attribute "expiration")


class StormStore:
    def __init__(self, table_name: str, client: Any = None, clock: Callable[[], float] = time.time) -> None:
        self.table = table_name
        self.client = client or clients.client("dynamodb")
        self.clock = clock

    def _expiration(self) -> dict[str, str]:
        return {"N": str(int(self.clock()) + RECORD_TTL_SECONDS)}

    @staticmethod
    def window_pk(group: str, window: int) -> str:
        return f"window#{group}#{window}"

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        item = self.client.get_item(
            TableName=self.table, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
        ).get("Item")
        return item or None

    def job_record(self, job_id: str) -> dict[str, Any] | None:
        return self.get(f"job#{job_id}", "job")

    def group_state(self, group: str) -> dict[str, Any] | None:
        return self.get(f"group#{group}", "state")

    def open_window(self, group: str, new_window: int, previous: int | None) -> bool:
        """Make `new_window` the group's current window, unless another writer changed it first."""
        condition = "attribute_not_exists(#cur)" if previous is None else "#cur = :prev"
        values: dict[str, Any] = {":w": {"N": str(new_window)}, ":exp": self._expiration()}
        if previous is not None:
            values[":prev"] = {"N": str(previous)}
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"pk": {"S": f"group#{group}"}, "sk": {"S": "state"}},
                UpdateExpression="SET #cur = :w, expiration = :exp",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#cur": "current"},
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if _code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def take_rank(self, group: str, window: int) -> dict[str, Any] | None:
        """Atomically count one more job in the window; None if the window is sealed."""
        try:
            return dict(
                self.client.update_item(
                    TableName=self.table,
                    Key={"pk": {"S": self.window_pk(group, window)}, "sk": {"S": "counter"}},
                    UpdateExpression="ADD n :one SET expiration = :exp",
                    ConditionExpression="attribute_not_exists(sealed)",
                    ExpressionAttributeValues={":one": {"N": "1"}, ":exp": self._expiration()},
                    ReturnValues="ALL_NEW",
                )["Attributes"]
            )
        except ClientError as error:
            if _code(error) == "ConditionalCheckFailedException":
                return None
            raise

    def record(self, job: FailedJob, verdict: Verdict) -> str:
        """Write the job's decision and window entry together. Returns "ok", "sealed" or "exists"."""
        pk = self.window_pk(verdict.group, verdict.window)
        common = {
            "decision": {"S": verdict.decision},
            "rank": {"N": str(verdict.rank)},
            "expiration": self._expiration(),
        }
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "ConditionCheck": {
                            "TableName": self.table,
                            "Key": {"pk": {"S": pk}, "sk": {"S": "counter"}},
                            "ConditionExpression": "attribute_not_exists(sealed)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": {
                                "pk": {"S": f"job#{job.job_id}"},
                                "sk": {"S": "job"},
                                "group": {"S": verdict.group},
                                "window": {"N": str(verdict.window)},
                                **common,
                            },
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": {
                                "pk": {"S": pk},
                                "sk": {"S": f"job#{job.job_id}"},
                                "job_name": {"S": job.job_name[:200] or "-"},
                                "cause": {"S": job.cause[:120] or "-"},
                                "queue": {"S": job.queue_arn or "-"},
                                **({"log_url": {"S": job.log_url}} if job.log_url else {}),
                                **common,
                            },
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
        except ClientError as error:
            if _code(error) != "TransactionCanceledException":
                raise
            reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
            if reasons and reasons[0] == "ConditionalCheckFailed":
                return "sealed"
            if "ConditionalCheckFailed" in reasons:
                return "exists"
            raise
        return "ok"

    def mark_scheduled(self, group: str, window: int) -> None:
        self.client.update_item(
            TableName=self.table,
            Key={"pk": {"S": self.window_pk(group, window)}, "sk": {"S": "counter"}},
            UpdateExpression="SET scheduled = :t, expiration = :exp",
            ExpressionAttributeValues={":t": {"BOOL": True}, ":exp": self._expiration()},
        )

    def seal(self, group: str, window: int) -> dict[str, Any]:
        return dict(
            self.client.update_item(
                TableName=self.table,
                Key={"pk": {"S": self.window_pk(group, window)}, "sk": {"S": "counter"}},
                UpdateExpression="SET sealed = :t, expiration = :exp",
                ExpressionAttributeValues={":t": {"BOOL": True}, ":exp": self._expiration()},
                ReturnValues="ALL_NEW",
            )["Attributes"]
        )

    def window_jobs(self, group: str, window: int) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :job)",
            "ExpressionAttributeValues": {
                ":pk": {"S": self.window_pk(group, window)},
                ":job": {"S": "job#"},
            },
            "ConsistentRead": True,
        }
        while True:
            page = self.client.query(**kwargs)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def mark_storm_window(self, group: str, window: int, digested: int) -> None:
        """Remember that `window` had a digest (once per window, whatever the retries)."""
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"pk": {"S": f"group#{group}"}, "sk": {"S": "state"}},
                UpdateExpression=(
                    "SET storm_since = if_not_exists(storm_since, :w), expiration = :exp "
                    "ADD storm_total :n, storm_windows :ws"
                ),
                ConditionExpression="attribute_not_exists(storm_windows) OR NOT contains(storm_windows, :w)",
                ExpressionAttributeValues={
                    ":w": {"N": str(window)},
                    ":n": {"N": str(digested)},
                    ":ws": {"NS": [str(window)]},
                    ":exp": self._expiration(),
                },
            )
        except ClientError as error:
            if _code(error) != "ConditionalCheckFailedException":
                raise

    def end_storm(self, group: str, since: int) -> None:
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"pk": {"S": f"group#{group}"}, "sk": {"S": "state"}},
                UpdateExpression="REMOVE storm_since, storm_total, storm_windows",
                ConditionExpression="storm_since = :since",
                ExpressionAttributeValues={":since": {"N": str(since)}},
            )
        except ClientError as error:
            if _code(error) != "ConditionalCheckFailedException":
                raise


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _n(item: dict[str, Any] | None, name: str) -> int | None:
    if not item or name not in item:
        return None
    return int(item[name]["N"])


# --------------------------------------------------------------------------------------------------------
# Scheduling window closes (SQS delay messages)


class CloseScheduler:
    def __init__(self, queue_url: str, client: Any = None, clock: Callable[[], float] = time.time) -> None:
        self.queue_url = queue_url
        self.client = client or clients.client("sqs")
        self.clock = clock

    def send(self, message: dict[str, Any], not_before: float) -> None:
        delay = min(max(math.ceil(not_before - self.clock()), 0), MAX_SQS_DELAY_SECONDS)
        self.client.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(message), DelaySeconds=delay)


def close_message(verdict_group: str, window: int, queue_arn: str) -> dict[str, Any]:
    return {"kind": "close", "group": verdict_group, "window": window, "queue": queue_arn}


class _WindowState:
    """What both sides of a storm window use: its settings, the state table, the close scheduler."""

    def __init__(
        self,
        config: StormConfig,
        store: StormStore | None = None,
        scheduler: CloseScheduler | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.clock = clock
        self.store = store or StormStore(config.table_name, clock=clock)
        self.scheduler = scheduler or CloseScheduler(config.queue_url, clock=clock)


# --------------------------------------------------------------------------------------------------------
# Deciding (FailureNotifyFunction)


class StormTracker(_WindowState):
    def threshold(self, group: str) -> int:
        return self.config.array_threshold if group.startswith("array:") else self.config.threshold

    def record_failure(self, job: FailedJob, max_attempts: int = 5) -> Verdict:
        """Decide whether `job` gets its own message or goes into a digest; durable before returning."""
        group = job.group
        for _ in range(max_attempts):
            existing = self.store.job_record(job.job_id)
            if existing is not None:
                return self._redelivered(job, existing)
            window = self._current_window(group)
            counter = self.store.take_rank(group, window)
            if counter is None:  # sealed under us: next attempt opens a new window
                self._open_after(group, window)
                continue
            rank = _n(counter, "n") or 1
            threshold = self.threshold(group)
            verdict = Verdict(
                decision=INDIVIDUAL if rank <= threshold else DIGEST,
                group=group,
                window=window,
                rank=rank,
                starts_storm=rank == threshold + 1 and not group.startswith("array:"),
            )
            outcome = self.store.record(job, verdict)
            if outcome == "sealed":
                self._open_after(group, window)
                continue
            if outcome == "exists":  # a concurrent delivery of the same job won: the loop reads its record
                continue
            self._ensure_close_scheduled(group, window, job.queue_arn, counter)
            return verdict
        raise RuntimeError(f"could not record failed job {job.job_id} in a storm window (sealed repeatedly)")

    def _redelivered(self, job: FailedJob, record: dict[str, Any]) -> Verdict:
        group = record.get("group", {}).get("S", job.group)
        window = _n(record, "window") or 0
        rank = _n(record, "rank") or 0
        self._ensure_close_scheduled(group, window, job.queue_arn, None)
        return Verdict(
            decision=record.get("decision", {}).get("S", INDIVIDUAL),
            group=group,
            window=window,
            rank=rank,
            redelivery=True,
            starts_storm=rank == self.threshold(group) + 1 and not group.startswith("array:"),
        )

    def _current_window(self, group: str) -> int:
        now_ms = int(self.clock() * 1000)
        for _ in range(5):
            state = self.store.group_state(group)
            current = _n(state, "current")
            if current is not None and now_ms < current + self.config.window_seconds * 1000:
                return current
            if self.store.open_window(group, max(now_ms, (current or 0) + 1), current):
                return max(now_ms, (current or 0) + 1)
        raise RuntimeError(f"could not open a storm window for {group}")

    def _open_after(self, group: str, sealed_window: int) -> None:
        """The window was sealed early: start the next one now (if nobody did)."""
        now_ms = int(self.clock() * 1000)
        self.store.open_window(group, max(now_ms, sealed_window + 1), sealed_window)

    def _ensure_close_scheduled(
        self, group: str, window: int, queue_arn: str, counter: dict[str, Any] | None
    ) -> None:
        if counter is None:
            counter = self.store.get(StormStore.window_pk(group, window), "counter")
        if counter is not None and counter.get("scheduled", {}).get("BOOL"):
            return
        closes_at = window / 1000 + self.config.window_seconds + self.config.grace_seconds
        self.scheduler.send(close_message(group, window, queue_arn), not_before=closes_at)
        self.store.mark_scheduled(group, window)


# --------------------------------------------------------------------------------------------------------
# Closing (StormDigestFunction)


@dataclass(frozen=True)
class WindowReport:
    group: str
    window: int
    queue_arn: str
    jobs: list[dict[str, str]] = field(default_factory=list)  # job_id, job_name, cause, log_url, decision

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


@dataclass(frozen=True)
class CloseOutcome:
    report: WindowReport
    posted: list[str]  # kinds of message posted: digest, storm-ended


Poster = Callable[[str, dict[str, Any]], bool]  # (idempotency key, message) -> posted now (False: duplicate)


class StormCloser(_WindowState):
    def handle(self, message: dict[str, Any], post: Poster, render: Renderer) -> CloseOutcome | None:
        kind = message.get("kind")
        group, window = str(message["group"]), int(message["window"])
        queue_arn = str(message.get("queue") or "")
        if kind == "close":
            return self.close(group, window, queue_arn, post, render)
        if kind == "end-check":
            self.end_check(group, window, queue_arn, post, render)
            return None
        raise ValueError(f"unknown storm message kind {kind!r}")

    def close(self, group: str, window: int, queue_arn: str, post: Poster, render: Renderer) -> CloseOutcome:
        self.store.seal(group, window)
        jobs = [
            {
                "job_id": item["sk"]["S"].removeprefix("job#"),
                "job_name": item.get("job_name", {}).get("S", "-"),
                "cause": item.get("cause", {}).get("S", "-"),
                "log_url": item.get("log_url", {}).get("S", ""),
                "queue": item.get("queue", {}).get("S", ""),
                "decision": item.get("decision", {}).get("S", DIGEST),
            }
            for item in self.store.window_jobs(group, window)
        ]
        if not queue_arn:
            queue_arn = next((j["queue"] for j in jobs if j["queue"] not in ("", "-")), "")
        report = WindowReport(
            group=group, window=window, queue_arn=queue_arn, jobs=sorted(jobs, key=lambda j: j["job_id"])
        )
        posted: list[str] = []
        if report.digested:
            if post(f"digest#{group}#{window}", render.digest(report, self.config)):
                posted.append("digest")
            if not group.startswith("array:"):
                self.store.mark_storm_window(group, window, len(report.digested))
                self.scheduler.send(
                    {"kind": "end-check", "group": group, "window": window, "queue": queue_arn},
                    not_before=self.clock() + self.config.window_seconds,
                )
        elif not group.startswith("array:"):
            state = self.store.group_state(group) or {}
            since = _n(state, "storm_since")
            storm_windows = [int(w) for w in state.get("storm_windows", {}).get("NS", [])]
            if since is not None and storm_windows and max(storm_windows) < window:
                total = _n(state, "storm_total") or 0
                last = max(storm_windows)
                message = render.storm_ended(group, queue_arn, since, last, total, report, self.config)
                if post(f"storm-ended#{group}#{since}", message):
                    posted.append("storm-ended")
                self.store.end_storm(group, since)
        logger.info(
            "Storm window closed",
            extra={"group": group, "window": window, "digested": len(report.digested), "posted": posted},
        )
        return CloseOutcome(report=report, posted=posted)

    def end_check(self, group: str, window: int, queue_arn: str, post: Poster, render: Renderer) -> bool:
        """After a stormy window: if no failure opened a newer window since, the storm is over."""
        state = self.store.group_state(group) or {}
        since = _n(state, "storm_since")
        current = _n(state, "current")
        if since is None or (current is not None and current > window):
            return False  # already ended, or a newer window's close decides
        total = _n(state, "storm_total") or 0
        quiet = WindowReport(group=group, window=window, queue_arn=queue_arn)
        message = render.storm_ended(group, queue_arn, since, window, total, quiet, self.config)
        post(f"storm-ended#{group}#{since}", message)
        self.store.end_storm(group, since)
        return True


class Renderer:
    """Builds the Slack messages (kept apart so the state machine can be tested with plain fakes)."""

    def digest(self, report: WindowReport, config: StormConfig) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError

    def storm_ended(  # pragma: no cover
        self,
        group: str,
        queue_arn: str,
        since: int,
        last_window: int,
        total: int,
        report: WindowReport,
        config: StormConfig,
    ) -> dict[str, Any]:
        raise NotImplementedError


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def summarize_causes(causes: Iterable[tuple[str, int]], limit: int = 8) -> str:
    items = list(causes)
    text = ", ".join(f"{count} {cause}" for cause, count in items[:limit])
    if len(items) > limit:
        rest = sum(count for _, count in items[limit:])
        text += f", {rest} other"
    return text
