"""Failure storms, deciding (FailureNotifyFunction): its own message, or counted in the window's digest.

Per job, under any number of concurrent, repeated deliveries:
1. Read `job#<id>` and the group's state together: the job decided already -> reuse that decision.
2. No open window: this failure opens one. Its close is sent first (a delayed SQS message), then ONE
   transaction makes the window current, creates its counter (rank 1, close scheduled) and records the
   job; if another writer got there first, look again. A close whose window never opened is a no-op.
3. Otherwise take a rank in the open window (atomic `ADD n 1`, refused once the window is sealed).
   Rank <= threshold -> its own message; above -> the digest. Array children: the first of a window is
   posted as an example, the others go to the parent's digest.
4. Record the job in ONE transaction (`job#<id>` and the window's `job#<id>`, both only if absent) with
   a ConditionCheck that the window is still not sealed. Sealed -> a new window and retry.
5. Make sure the window's close is scheduled (a delayed SQS message, then a `scheduled` flag).
The invocation succeeds only after the job is recorded and its window's close is sent, so a crash
anywhere repeats the step on the retry. Ranks are never reused: a retried delivery may waste a rank
(one fewer individual message), never a job. The first failure of a calm period costs one read, one
SQS message and one transaction.
"""

from __future__ import annotations

from typing import Any

from batch_dispatch.alerts.storm.close_schedule import WindowState, close_message
from batch_dispatch.alerts.storm.model import DIGEST, INDIVIDUAL, FailedJob, StormDecision
from batch_dispatch.alerts.storm.store import StormStore, number_attr


class StormTracker(WindowState):
    def threshold(self, group: str) -> int:
        return self.config.array_threshold if group.startswith("array:") else self.config.threshold

    def record_failure(self, job: FailedJob, max_attempts: int = 5) -> StormDecision:
        """Decide whether `job` gets its own message or goes into a digest; durable before returning."""
        group = job.group
        not_before = 0  # a window id found taken: open a later one
        for _ in range(max_attempts):
            existing, state = self.store.job_and_group(job.job_id, group)
            if existing is not None:
                return self._redelivered(job, existing)
            current = number_attr(state, "current")
            now_ms = int(self.clock() * 1000)
            if current is None or now_ms >= current + self.config.window_seconds * 1000:
                window = max(now_ms, (current or 0) + 1, not_before)
                decision = self._decide(group, window, rank=1)
                self._send_close(group, window, job.queue_arn)
                opened = self.store.open_window_with(job, decision, previous=current)
                if opened == "ok":
                    return decision
                if opened == "taken":
                    not_before = window + 1
                continue
            window = current
            counter = self.store.take_rank(group, window)
            if counter is None:  # sealed under us: next attempt opens a new window
                self._open_after(group, window)
                continue
            decision = self._decide(group, window, rank=number_attr(counter, "n") or 1)
            outcome = self.store.record(job, decision)
            if outcome == "sealed":
                self._open_after(group, window)
                continue
            if outcome == "exists":  # a concurrent delivery of the same job won: the loop reads its record
                continue
            self._ensure_close_scheduled(group, window, job.queue_arn, counter)
            return decision
        raise RuntimeError(f"could not record failed job {job.job_id} in a storm window (sealed repeatedly)")

    def _decide(self, group: str, window: int, rank: int) -> StormDecision:
        threshold = self.threshold(group)
        return StormDecision(
            decision=INDIVIDUAL if rank <= threshold else DIGEST,
            group=group,
            window=window,
            rank=rank,
            starts_storm=rank == threshold + 1 and not group.startswith("array:"),
        )

    def _redelivered(self, job: FailedJob, record: dict[str, Any]) -> StormDecision:
        group = record.get("group", {}).get("S", job.group)
        window = number_attr(record, "window") or 0
        rank = number_attr(record, "rank") or 0
        self._ensure_close_scheduled(group, window, job.queue_arn, None)
        return StormDecision(
            decision=record.get("decision", {}).get("S", INDIVIDUAL),
            group=group,
            window=window,
            rank=rank,
            redelivery=True,
            starts_storm=rank == self.threshold(group) + 1 and not group.startswith("array:"),
        )

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
        self._send_close(group, window, queue_arn)
        self.store.mark_scheduled(group, window)

    def _send_close(self, group: str, window: int, queue_arn: str) -> None:
        closes_at = window / 1000 + self.config.window_seconds + self.config.grace_seconds
        self.scheduler.send(close_message(group, window, queue_arn), not_before=closes_at)
