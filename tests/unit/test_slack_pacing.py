"""Slack takes one message per second per webhook: posts claim the webhook's next free second in the
alert-state table (moto DynamoDB here), whichever function or execution environment posts them."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from typing import Any

import boto3
import pytest
from moto import mock_aws

from batch_dispatch.slack.pacing import SlackPacer

TABLE = "alert-state"


class Locked:
    """moto's in-process DynamoDB is not thread-safe (the emulator's server serialises requests)."""

    def __init__(self, client: Any) -> None:
        self._client, self._lock = client, threading.Lock()

    def update_item(self, **kwargs: Any) -> Any:
        with self._lock:
            return self._client.update_item(**kwargs)


class FrozenClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def dynamodb() -> Any:
    with mock_aws():
        client = boto3.client("dynamodb")
        client.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
        )
        yield client


def test_posts_at_the_same_instant_are_spaced_a_second_apart_per_webhook(dynamodb):
    clock = FrozenClock()
    pacer = SlackPacer(TABLE, 1.0, client=dynamodb, clock=clock)

    waits = [pacer.claim("batch-dispatch/slack-webhook") for _ in range(3)]
    other_channel = pacer.claim("batch-dispatch/slack-thumbnails")

    assert waits == [0.0, 1.0, 2.0]
    assert other_channel == 0.0


def test_a_post_after_the_interval_goes_at_once(dynamodb):
    clock = FrozenClock()
    pacer = SlackPacer(TABLE, 1.0, client=dynamodb, clock=clock)
    pacer.claim("hook")

    clock.now += 1.0
    assert pacer.claim("hook") == 0.0
    clock.now += 0.25
    assert pacer.claim("hook") == 0.75


def test_concurrent_posters_get_distinct_slots_at_least_a_second_apart(dynamodb):
    client = Locked(dynamodb)
    start = threading.Barrier(8)

    def claim_slot(_poster: int) -> float:
        readings: list[float] = []

        def clock() -> float:
            readings.append(time.time())
            return readings[-1]

        pacer = SlackPacer(TABLE, 1.0, client=client, clock=clock)  # one per execution environment
        start.wait()
        wait = pacer.claim("hook")
        return readings[-1] + wait  # the slot: the claim's own "now" plus its wait

    with ThreadPoolExecutor(max_workers=8) as pool:
        slots = sorted(pool.map(claim_slot, range(8)))

    gaps = [later - earlier for earlier, later in pairwise(slots)]
    assert min(gaps) >= 0.998  # the table keeps milliseconds
    assert slots[-1] - slots[0] < 7.5  # and no slot is wasted


def test_waiting_sleeps_until_the_slot(dynamodb):
    clock = FrozenClock()
    slept: list[float] = []
    pacer = SlackPacer(TABLE, 1.0, client=dynamodb, clock=clock, sleep=slept.append)

    waited = [pacer.wait_for_turn("hook", max_wait_seconds=5) for _ in range(3)]

    assert waited == [0.0, 1.0, 2.0]
    assert slept == [1.0, 2.0]


def test_a_slot_further_than_the_post_may_wait_is_not_taken_and_the_post_goes_now(dynamodb):
    # Given posts that took the next two seconds
    clock = FrozenClock()
    slept: list[float] = []
    pacer = SlackPacer(TABLE, 1.0, client=dynamodb, clock=clock, sleep=slept.append)
    pacer.wait_for_turn("hook", max_wait_seconds=1.5)
    pacer.wait_for_turn("hook", max_wait_seconds=1.5)

    # When more posts may wait only 1.5 s (the next free slot is 2 s away)
    waited = [pacer.wait_for_turn("hook", max_wait_seconds=1.5) for _ in range(5)]

    # Then they go now without taking a slot: the next free one is still 2 s away, not 7
    assert waited == [0.0] * 5
    assert slept == [1.0]
    assert pacer.claim("hook") == 2.0


def test_a_failing_table_costs_the_pacing_not_the_post(dynamodb):
    slept: list[float] = []
    pacer = SlackPacer("no-such-table", 1.0, client=dynamodb, sleep=slept.append)

    assert pacer.wait_for_turn("hook", max_wait_seconds=10) == 0.0
    assert pacer.wait_for_turn("hook", max_wait_seconds=10) == 0.0
    assert slept == []
