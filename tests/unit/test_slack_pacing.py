"""Slack takes one message per second per webhook: posts claim the webhook's next free slot in the
alert-state table (moto DynamoDB here), whichever function or execution environment posts them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from typing import Any

import boto3
import pytest
from moto import mock_aws

from batch_dispatch import execution_environment
from batch_dispatch.aws import clients
from batch_dispatch.settings import SlackSettings, from_environment
from batch_dispatch.slack.delivery_policy import DeliveryPolicy
from batch_dispatch.slack.pacing import SlackPacer
from batch_dispatch.slack.post_once import longest_wait, post_once
from emulator.slack_stub import SlackStandIn
from tests.conftest import AtomicClient, FakeLambdaContext, create_alert_state_table, create_id_table

TABLE = "alert-state"


class FrozenClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def dynamodb() -> Any:
    with mock_aws():
        create_alert_state_table(TABLE)
        yield boto3.client("dynamodb")


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
    client = AtomicClient(dynamodb)
    start = threading.Barrier(8)
    # All claim at the same moment (a clock that does not move, so a busy machine cannot spread them)
    clock = FrozenClock()

    def claim_slot(_poster: int) -> float:
        pacer = SlackPacer(TABLE, 1.0, client=client, clock=clock)  # one per execution environment
        start.wait()
        wait = pacer.claim("hook")
        assert wait is not None
        return clock.now + wait  # the slot: the claim's "now" plus its wait

    with ThreadPoolExecutor(max_workers=8) as pool:
        slots = sorted(pool.map(claim_slot, range(8)))

    gaps = [later - earlier for earlier, later in pairwise(slots)]
    assert min(gaps) >= 0.998  # the table keeps milliseconds
    assert slots[-1] - slots[0] < 7.5  # and no slot is wasted: eight slots in seven seconds


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


@pytest.mark.parametrize(
    ("time_left", "longest"),
    [(None, 20.0), (60.0, 20.0), (40.0, 12.0), (28.0, 0.0), (5.0, 0.0)],
)
def test_a_post_waits_at_most_its_budget_and_only_while_its_whole_delivery_still_fits(time_left, longest):
    # budget 20 s, then one more 5 s timeout, and 3 s kept free
    policy = DeliveryPolicy(timeout_seconds=5, budget_seconds=20.0, safety_margin_seconds=3.0)

    assert longest_wait(policy, time_left) == longest


# --- through post_once, as the alert functions post ----------------------------------------------------

SECRET_NAME = "batch-dispatch/test/slack-webhook"
IDEMPOTENCY_TABLE = "batch-dispatch-idempotency"


@pytest.fixture
def stand_in() -> Iterator[SlackStandIn]:
    """The Slack stand-in behind the webhook secret, the idempotency and alert-state tables in moto."""
    with SlackStandIn() as slack, mock_aws():
        boto3.client("secretsmanager").create_secret(Name=SECRET_NAME, SecretString=slack.url)
        create_id_table(IDEMPOTENCY_TABLE)
        create_alert_state_table(TABLE)
        execution_environment.reset()
        clients.use_client("dynamodb", boto3.client("dynamodb"))
        yield slack
        execution_environment.reset()


def slack_settings(**environment: str) -> SlackSettings:
    return from_environment(
        SlackSettings,
        {
            "SLACK_WEBHOOK_SECRET_NAME": SECRET_NAME,
            "IDEMPOTENCY_TABLE_NAME": IDEMPOTENCY_TABLE,
            "ALERT_STATE_TABLE_NAME": TABLE,
            **environment,
        },
    )


def next_free_slot() -> float:
    item = boto3.client("dynamodb").get_item(
        TableName=TABLE, Key={"pk": {"S": f"slack#{SECRET_NAME}"}, "sk": {"S": "next-post"}}
    )["Item"]
    return int(item["next_ms"]["N"]) / 1000


def test_the_next_slot_is_more_than_a_second_after_a_post_reached_slack(stand_in):
    # Given the alert functions' own settings (Slack counts a post when it arrives)
    settings = slack_settings()

    # When an alert is posted
    assert post_once(
        "test", "job-1", {"text": "job-1 failed"}, settings, FakeLambdaContext(timeout_seconds=60.0)
    )

    # Then the webhook's next post may not arrive within a second of this one's arrival
    (arrived,) = [r.received_at for r in stand_in.requests]
    assert next_free_slot() - arrived > 1.0


def test_a_post_waits_for_its_slot_when_the_webhook_posted_just_before(stand_in):
    # Given a post that just reached the webhook
    settings = slack_settings(SLACK_BUDGET_SECONDS="4")
    post_once("test", "job-1", {"text": "job-1 failed"}, settings, FakeLambdaContext(timeout_seconds=60.0))

    # When another alert is posted at once
    post_once("test", "job-2", {"text": "job-2 failed"}, settings, FakeLambdaContext(timeout_seconds=60.0))

    # Then Slack receives it a second later
    first, second = [r.received_at for r in stand_in.requests]
    assert second - first >= 1.0
