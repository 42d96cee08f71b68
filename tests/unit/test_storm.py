"""Failure storms: every failed job is in its own message or in exactly one digest, whatever the delivery.

Scope: batch_dispatch.alerts.storm against moto DynamoDB (real conditional writes and transactions),
with a fake clock, an in-memory storm queue and an in-memory Slack. Deliveries are repeated and run
concurrently from threads, as EventBridge -> Lambda async does; windows are sealed while writers run.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from moto import mock_aws

from batch_dispatch.alerts.failure_classes import Facts
from batch_dispatch.alerts.storm.close_schedule import CloseScheduler
from batch_dispatch.alerts.storm.closer import StormCloser
from batch_dispatch.alerts.storm.messages import SlackRenderer, summarize_causes
from batch_dispatch.alerts.storm.model import (
    DIGEST,
    INDIVIDUAL,
    FailedJob,
    StormConfig,
    WindowReport,
    cause_of,
)
from batch_dispatch.alerts.storm.store import StormStore
from batch_dispatch.alerts.storm.tracker import StormTracker
from batch_dispatch.settings import StormDigestSettings, from_environment
from tests.conftest import AtomicClient, create_alert_state_table

QUEUE = "arn:aws:batch:us-east-1:123456789012:job-queue/jobs"
PARENT = "5e6f7081-92a3-4b4c-8d5e-6f708192a3b4"


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


class FakeSlack:
    """Posts once per idempotency key, like post_once does; remembers what was posted."""

    def __init__(self) -> None:
        self.posted: dict[str, dict[str, Any]] = {}

    def __call__(self, key: str, message: dict[str, Any], channel: str = "") -> bool:
        if key in self.posted:
            return False
        self.posted[key] = message
        return True


class InMemoryQueue:
    """The storm queue as CloseScheduler uses it (SendMessage with DelaySeconds); tests let time pass."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.messages: list[dict[str, Any]] = []  # body, delay, due (delivered once released)

    def send_message(self, QueueUrl: str, MessageBody: str, DelaySeconds: int = 0) -> dict[str, Any]:
        with self._lock:
            self.messages.append(
                {"body": json.loads(MessageBody), "delay": DelaySeconds, "due": DelaySeconds == 0}
            )
        return {"MessageId": str(len(self.messages))}

    def scheduled(self) -> list[tuple[dict[str, Any], int]]:
        with self._lock:
            return [(m["body"], m["delay"]) for m in self.messages]

    def release_all(self) -> None:
        with self._lock:
            for message in self.messages:
                message["due"] = True

    def take_due(self) -> list[dict[str, Any]]:
        with self._lock:
            due = [m for m in self.messages if m["due"] and not m.get("taken")]
            for message in due:
                message["taken"] = True
            return [m["body"] for m in due]


class PlainRenderer:
    def digest(self, report: WindowReport, config: StormConfig) -> dict[str, Any]:
        return {
            "kind": "digest",
            "jobs": [j["job_id"] for j in report.digested],
            "causes": report.causes(),
            "total": report.total,
        }

    def storm_ended(self, group, queue_arn, since, last_window, total, report, config) -> dict[str, Any]:
        return {"kind": "storm-ended", "since": since, "total": total}


@pytest.fixture
def aws():
    with mock_aws():
        create_alert_state_table("alert-state")
        yield boto3.client("dynamodb"), InMemoryQueue()


def make(aws, clock: Clock, threshold: int = 10, window: int = 300):
    dynamodb, queue = aws
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/storm"
    config = StormConfig(table_name="alert-state", queue_url=url, threshold=threshold, window_seconds=window)
    store = StormStore("alert-state", client=AtomicClient(dynamodb), clock=clock)
    scheduler = CloseScheduler(url, client=queue, clock=clock)
    tracker = StormTracker(config, store=store, scheduler=scheduler, clock=clock)
    closer = StormCloser(config, store=store, scheduler=scheduler, clock=clock)
    return tracker, closer


def scheduled(aws) -> list[tuple[dict[str, Any], int]]:
    """Every message sent to the storm queue with its delay."""
    return aws[1].scheduled()


def job(n: int, cause: str = "program_exit", queue: str = QUEUE) -> FailedJob:
    return FailedJob(job_id=f"job-{n:05d}", job_name=f"name-{n}", queue_arn=queue, cause=cause)


def child(index: int, cause: str = "program_exit") -> FailedJob:
    return FailedJob(job_id=f"{PARENT}:{index}", job_name="fanout", queue_arn=QUEUE, cause=cause)


def close_all(aws, closer: StormCloser, slack: FakeSlack) -> list[Any]:
    """Deliver every close / end check sent so far once, as if their delay had passed (and any sent
    without delay while they are handled)."""
    queue: InMemoryQueue = aws[1]
    queue.release_all()
    outcomes = []
    while due := queue.take_due():
        outcomes.extend(closer.handle(body, slack, PlainRenderer()) for body in due)
    return outcomes


# --- deciding ---------------------------------------------------------------------------------------


def test_below_the_threshold_every_failure_gets_its_own_message(aws):
    # Given a threshold of 10
    tracker, _ = make(aws, Clock())

    # When 10 jobs fail in one window
    verdicts = [tracker.record_failure(job(n)) for n in range(10)]

    # Then each is posted individually, ranks 1..10, and one close is scheduled for the window
    assert [v.decision for v in verdicts] == [INDIVIDUAL] * 10
    assert [v.rank for v in verdicts] == list(range(1, 11))
    assert len({v.window for v in verdicts}) == 1
    closes = scheduled(aws)
    assert [body["kind"] for body, _ in closes] == ["close"]
    assert closes[0][1] == 300 + 90  # window + grace


def test_past_the_threshold_failures_go_to_the_digest_and_the_first_one_starts_the_storm(aws):
    tracker, _ = make(aws, Clock())

    verdicts = [tracker.record_failure(job(n)) for n in range(14)]

    assert [v.decision for v in verdicts] == [INDIVIDUAL] * 10 + [DIGEST] * 4
    assert [v.starts_storm for v in verdicts].count(True) == 1
    assert verdicts[10].starts_storm


def test_the_first_failed_child_of_an_array_is_posted_and_the_rest_go_to_the_parents_digest(aws):
    tracker, _ = make(aws, Clock())

    verdicts = [tracker.record_failure(child(i)) for i in range(3)]

    assert [v.decision for v in verdicts] == [INDIVIDUAL, DIGEST, DIGEST]
    assert {v.group for v in verdicts} == {f"array:{PARENT}"}
    assert not any(v.starts_storm for v in verdicts)  # the digest is the array's message


def test_a_redelivered_failure_keeps_its_first_decision_and_takes_no_new_rank(aws):
    tracker, _ = make(aws, Clock(), threshold=1)
    first = tracker.record_failure(job(1))
    second = tracker.record_failure(job(2))

    again = [tracker.record_failure(job(1)), tracker.record_failure(job(2))]

    assert (first.decision, second.decision) == (INDIVIDUAL, DIGEST)
    assert [(v.decision, v.rank, v.redelivery) for v in again] == [(INDIVIDUAL, 1, True), (DIGEST, 2, True)]
    assert again[1].starts_storm  # the notice is re-attempted (idempotent) in case the first post failed


def test_a_window_lasts_window_seconds_from_its_first_failure(aws):
    clock = Clock()
    tracker, _ = make(aws, clock)
    first = tracker.record_failure(job(1))
    clock.advance(299)
    same = tracker.record_failure(job(2))
    clock.advance(2)

    later = tracker.record_failure(job(3))

    assert same.window == first.window
    assert later.window == first.window + 301_000
    assert later.rank == 1


def test_a_failure_is_counted_by_its_class():
    oom = Facts(
        status_reason="Essential container in task exited",
        container_reason="OutOfMemoryError: Container killed due to memory usage",
        exit_code=137,
    )
    assert cause_of(oom) == "out_of_memory"
    assert cause_of(Facts(status_reason="Essential container in task exited", exit_code=1)) == "program_exit"
    assert (
        cause_of(Facts(container_reason="CannotPullContainerError: pull access denied"))
        == "image_pull_failed"
    )
    assert (
        cause_of(Facts(status_reason="Job attempt duration exceeded timeout", exit_code=137)) == "timed_out"
    )
    assert cause_of(Facts(status_reason="Terminating job.", exit_code=137)) == "cancelled"
    assert cause_of(Facts(queue_cancel_code="CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY")) == "queue_time_limit"


def test_a_digest_counts_by_class_with_the_cancels_apart():
    causes = [("out_of_memory", 31), ("timed_out", 8), ("cancelled", 1), ("program_exit", 3)]
    report = WindowReport(
        group=f"queue:{QUEUE}",
        window=1_800_000_000_000,
        queue_arn=QUEUE,
        jobs=tuple(
            {"job_id": f"{key}-{n}", "job_name": "n", "cause": key, "log_url": "", "decision": DIGEST}
            for key, count in causes
            for n in range(count)
        ),
    )
    settings = from_environment(
        StormDigestSettings, {"SLACK_WEBHOOK_SECRET_NAME": "s", "IDEMPOTENCY_TABLE_NAME": "t"}
    )

    digest = SlackRenderer(settings).digest(report, StormConfig(table_name="t", queue_url="q"))

    assert summarize_causes(report.causes()) == "31 out of memory, 8 timed out, 3 non-zero exit; 1 cancelled"
    assert digest["blocks"][0]["text"]["text"] == "Failure digest: 42 jobs failed in jobs, 1 cancelled"
    assert "*42 jobs failed in queue jobs, 1 cancelled*: 31 out of memory, 8 timed out" in json.dumps(digest)


# --- closing -----------------------------------------------------------------------------------------


def test_closing_a_window_posts_one_digest_with_every_suppressed_failure(aws):
    # Given 60 children of one array job: 56 exited non-zero and 4 ran out of memory
    tracker, closer = make(aws, Clock())
    for i in range(60):
        tracker.record_failure(child(i, "out_of_memory" if i % 15 == 14 else "program_exit"))
    slack = FakeSlack()

    # When the window closes (twice: the close message is delivered at least once)
    outcome = closer.close(f"array:{PARENT}", scheduled(aws)[0][0]["window"], QUEUE, slack, PlainRenderer())
    closer.close(f"array:{PARENT}", outcome.report.window, QUEUE, slack, PlainRenderer())

    # Then one digest counts all 60 by cause: the first child was posted on its own, 59 only here
    [digest] = slack.posted.values()
    assert digest["total"] == 60
    assert dict(digest["causes"]) == {"program_exit": 56, "out_of_memory": 4}
    assert sorted(digest["jobs"]) == sorted(f"{PARENT}:{i}" for i in range(1, 60))


def test_a_storm_posts_digest_then_ends_when_a_window_after_it_stays_quiet(aws):
    clock = Clock()
    tracker, closer = make(aws, clock, threshold=2)
    slack = FakeSlack()
    for n in range(5):  # 2 individual + 3 digested
        tracker.record_failure(job(n))
    clock.advance(390)
    close_all(aws, closer, slack)  # digest; schedules the end check

    # When no job fails for a window, the end check runs
    clock.advance(300)
    close_all(aws, closer, slack)

    assert [m["kind"] for m in slack.posted.values()] == ["digest", "storm-ended"]
    assert list(slack.posted.values())[1]["total"] == 3


def test_a_close_for_a_window_that_never_opened_posts_nothing_and_ends_no_storm(aws):
    # Given a storm in progress (a digest posted for its first window)
    clock = Clock()
    tracker, closer = make(aws, clock, threshold=2)
    slack = FakeSlack()
    for n in range(5):
        tracker.record_failure(job(n))
    clock.advance(390)
    close_all(aws, closer, slack)
    group = f"queue:{QUEUE}"

    # When the close of a later window arrives whose opener lost the race to open it
    outcome = closer.handle(
        {"kind": "close", "group": group, "window": int(clock() * 1000), "queue": QUEUE},
        slack,
        PlainRenderer(),
    )

    # Then nothing is posted: the storm is not declared over by an empty window that never existed
    assert outcome is not None
    assert outcome.posted == []
    assert [m["kind"] for m in slack.posted.values()] == ["digest"]


def test_a_storm_ends_when_the_next_window_stays_under_the_threshold(aws):
    clock = Clock()
    tracker, closer = make(aws, clock, threshold=2)
    slack = FakeSlack()
    for n in range(5):
        tracker.record_failure(job(n))
    clock.advance(301)
    tracker.record_failure(job(100))  # opens the next window: one failure, posted individually
    clock.advance(100)
    close_all(aws, closer, slack)  # closes window 1 (digest) and window 2 (calm: storm over)

    kinds = [m["kind"] for m in slack.posted.values()]
    assert kinds == ["digest", "storm-ended"]
    # And the end check scheduled by window 1 finds the storm already over: nothing more
    clock.advance(300)
    close_all(aws, closer, slack)
    assert len(slack.posted) == 2


def test_a_failure_arriving_after_its_window_was_sealed_lands_in_a_new_window(aws):
    # Given a window that closes early (a close delivered while writers still run)
    clock = Clock()
    tracker, closer = make(aws, clock, threshold=0)
    first = tracker.record_failure(job(1))
    closer.close(first.group, first.window, QUEUE, FakeSlack(), PlainRenderer())

    # When another failure comes in within what would have been the same window
    late = tracker.record_failure(job(2))

    # Then it is recorded in a new window, which gets its own close
    assert late.window > first.window
    windows = {body["window"] for body, _ in scheduled(aws) if body["kind"] == "close"}
    assert windows == {first.window, late.window}


# --- the guarantee, under concurrency ----------------------------------------------------------------


def test_concurrent_repeated_deliveries_with_an_early_close_lose_and_double_count_nothing(aws):
    # Given 120 failed jobs (60 array children, 60 plain), each delivered 1-3 times, from 16 threads,
    # while the windows are closed in the middle of the burst
    clock = Clock()
    tracker, closer = make(aws, clock, threshold=10)
    slack = FakeSlack()
    jobs = [child(i) for i in range(60)] + [job(n) for n in range(60)]
    deliveries = [j for n, j in enumerate(jobs) for _ in range(1 + n % 3)]
    verdicts: dict[str, set[tuple[str, int]]] = {}
    lock = threading.Lock()

    def deliver(failed: FailedJob) -> None:
        verdict = tracker.record_failure(failed)
        with lock:
            verdicts.setdefault(failed.job_id, set()).add((verdict.decision, verdict.window))

    with ThreadPoolExecutor(max_workers=16) as pool:
        half = len(deliveries) // 2
        list(pool.map(deliver, deliveries[:half]))
        early = [pool.submit(close_all, aws, closer, slack)]
        list(pool.map(deliver, deliveries[half:]))
        [f.result() for f in early]
    clock.advance(400)
    close_all(aws, closer, slack)

    # Then every delivery of a job got the same decision
    assert all(len(seen) == 1 for seen in verdicts.values())
    decided = {job_id: next(iter(seen)) for job_id, seen in verdicts.items()}
    individual = {j for j, (d, _) in decided.items() if d == INDIVIDUAL}
    # And every job is posted individually or counted in exactly one digest, never both
    digested = Counter(j for m in slack.posted.values() if m["kind"] == "digest" for j in m["jobs"])
    assert set(digested) | individual == {j.job_id for j in jobs}
    assert not set(digested) & individual
    assert max(digested.values()) == 1
    # And at most one child per window (as the example) and 10 plain jobs per window were posted alone
    per_window = Counter((":" in j, w) for j, (d, w) in decided.items() if d == INDIVIDUAL)
    assert all(n <= (1 if is_child else 10) for (is_child, _), n in per_window.items())
