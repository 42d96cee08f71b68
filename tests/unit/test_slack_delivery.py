"""Slack delivery against the real Slack stand-in on loopback (no mocks of slack_sdk), secrets in moto.

Scope: retries/timeouts/permanent errors of `batch_dispatch.slack.webhook`, and the FailureNotifyFunction
handler end to end (idempotency in moto DynamoDB, metrics from its EMF output, no webhook URL in any log
line).
Waits are short: timeouts of 1 s, Retry-After 1 s, backoff of a few tens of milliseconds.
"""

from __future__ import annotations

import io
import json
import logging
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from batch_dispatch import execution_environment
from batch_dispatch.aws import clients
from batch_dispatch.observability import logger, metrics
from batch_dispatch.settings import ConfigurationError
from batch_dispatch.slack import webhook
from batch_dispatch.slack.delivery_policy import DeliveryPolicy
from batch_dispatch.slack.webhook import SlackPermanentError, SlackTransientError, post_message
from emulator.slack_stub import Reply, SlackStandIn, SlackStandInProcess
from functions.failure_notify import app
from tests.conftest import FakeLambdaContext, create_id_table, load_event

SECRET_NAME = "batch-dispatch/test/slack-webhook"
TABLE = "batch-dispatch-idempotency"
SECRET_TOKEN = "s3cr3tW3bh00kT0k3n"  # the part of the URL that is the credential
FAST = DeliveryPolicy(
    timeout_seconds=1, max_retries=2, backoff_seconds=0.02, max_retry_after_seconds=2, budget_seconds=8
)
MESSAGE = {"text": "hello", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hello"}}]}


class CountingSecrets:
    """The moto Secrets Manager client, counting GetSecretValue calls (to see cache hits and refreshes)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.fetches = 0

    def get_secret_value(self, **kwargs: Any) -> Any:
        self.fetches += 1
        return self.inner.get_secret_value(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@dataclass
class World:
    stand_in: SlackStandIn
    secrets: CountingSecrets

    def store_url(self, value: str) -> None:
        self.secrets.inner.put_secret_value(SecretId=SECRET_NAME, SecretString=value)


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """A running stand-in whose URL is the webhook secret, moto Secrets Manager + DynamoDB, fresh caches."""
    monkeypatch.setattr(metrics.provider, "namespace", "BatchDispatch")
    monkeypatch.setattr(metrics.provider, "service", "batch-dispatch")
    metrics.clear_metrics()
    with SlackStandIn(path=f"/services/T0TEST/B0TEST/{SECRET_TOKEN}") as stand_in, mock_aws():
        secretsmanager = CountingSecrets(boto3.client("secretsmanager"))
        secretsmanager.inner.create_secret(Name=SECRET_NAME, SecretString=stand_in.url)
        dynamodb = boto3.client("dynamodb")
        create_id_table(TABLE)
        for name, value in {
            "SLACK_WEBHOOK_SECRET_NAME": SECRET_NAME,
            "IDEMPOTENCY_TABLE_NAME": TABLE,
            "JOB_QUEUE_ARN": "arn:aws:batch:us-east-1:123456789012:job-queue/batch-dispatch-dev-queue",
            "SLACK_TIMEOUT_SECONDS": "1",
            "SLACK_MAX_RETRIES": "1",
            "SLACK_BACKOFF_SECONDS": "0.02",
            "SLACK_MAX_RETRY_AFTER_SECONDS": "2",
            "SLACK_BUDGET_SECONDS": "8",
        }.items():
            monkeypatch.setenv(name, value)
        _reset()
        clients.use_client("secretsmanager", secretsmanager)
        clients.use_client("dynamodb", dynamodb)
        yield World(stand_in=stand_in, secrets=secretsmanager)
        _reset()


def _reset() -> None:
    execution_environment.reset()


def statuses(stand_in: SlackStandIn) -> list[int]:
    return [r.status for r in stand_in.requests]


# --- delivery -----------------------------------------------------------------------------------------


def test_a_200_delivers_exactly_one_message(world):
    post_message(MESSAGE, secret_name=SECRET_NAME, policy=FAST)

    assert world.stand_in.messages == [MESSAGE]
    assert statuses(world.stand_in) == [200]


def test_429_waits_for_retry_after_then_delivers_once(world):
    # Given Slack rate limits the first post with Retry-After: 1
    world.stand_in.script(Reply.rate_limited(retry_after=1), "ok")

    started = time.monotonic()
    post_message(MESSAGE, secret_name=SECRET_NAME, policy=FAST)
    elapsed = time.monotonic() - started

    # Then the second post, a second later, is the one that lands
    assert statuses(world.stand_in) == [429, 200]
    assert world.stand_in.messages == [MESSAGE]
    assert 1.0 <= elapsed < 2.5


def test_429_asking_for_longer_than_we_may_wait_fails_fast_as_transient(world):
    world.stand_in.script(Reply.rate_limited(retry_after=30))

    started = time.monotonic()
    with pytest.raises(SlackTransientError) as raised:
        post_message(MESSAGE, secret_name=SECRET_NAME, policy=FAST)

    assert raised.value.kind == "rate_limited"
    assert statuses(world.stand_in) == [429]
    assert time.monotonic() - started < 1.0


def test_500_then_200_is_delivered(world):
    world.stand_in.script("server_error", "ok")

    post_message(MESSAGE, secret_name=SECRET_NAME, policy=FAST)

    assert statuses(world.stand_in) == [500, 200]
    assert len(world.stand_in.messages) == 1


def test_persistent_5xx_raises_transient_after_bounded_retries(world):
    world.stand_in.set_mode("server_error", status=503)

    with pytest.raises(SlackTransientError, match="503") as raised:
        post_message(MESSAGE, secret_name=SECRET_NAME, policy=FAST)

    assert raised.value.kind == "http_503"
    assert statuses(world.stand_in) == [503] * (1 + FAST.max_retries)
    assert world.stand_in.messages == []


def test_a_hang_times_out_and_the_retry_delivers(world):
    # Given Slack does not answer the first post for 3 s (our timeout is 1 s)
    world.stand_in.script(Reply.hang(seconds=3), "ok")

    started = time.monotonic()
    post_message(MESSAGE, secret_name=SECRET_NAME, policy=FAST)

    assert len(world.stand_in.messages) == 1
    assert time.monotonic() - started < 2.5


def test_slack_hanging_forever_raises_within_the_budget(world):
    world.stand_in.set_mode("hang", seconds=5)
    policy = DeliveryPolicy(timeout_seconds=1, max_retries=1, backoff_seconds=0.02, budget_seconds=8)

    started = time.monotonic()
    with pytest.raises(SlackTransientError, match="timeout") as raised:
        post_message(MESSAGE, secret_name=SECRET_NAME, policy=policy)

    assert raised.value.kind == "timeout"
    assert time.monotonic() - started < 3.5  # two 1 s attempts, not 2 x 5 s


def test_the_lambdas_remaining_time_shrinks_the_retry_budget(world):
    # Given only 3.5 s left in the Lambda (3 s kept as a safety margin)
    world.stand_in.script(Reply.rate_limited(retry_after=1), "ok")

    with pytest.raises(SlackTransientError):
        post_message(MESSAGE, secret_name=SECRET_NAME, policy=FAST, remaining_seconds=3.5)

    # Then no 1 s Retry-After wait is attempted: it would not fit
    assert statuses(world.stand_in) == [429]


def test_unreachable_slack_raises_transient_connection_error(world):
    # Given nothing listens on the webhook's port any more
    world.stand_in.stop()

    with pytest.raises(SlackTransientError) as raised:
        post_message(MESSAGE, secret_name=SECRET_NAME, policy=FAST)

    assert raised.value.kind == "connection_error"
    assert SECRET_TOKEN not in str(raised.value)


# --- permanent errors ---------------------------------------------------------------------------------


def test_no_service_is_permanent_and_refetches_the_secret_once(world):
    # Given the webhook was revoked (404 no_service) and the secret still holds it
    world.stand_in.set_mode("no_service")

    with pytest.raises(SlackPermanentError) as raised:
        post_message(MESSAGE, secret_name=SECRET_NAME, policy=FAST)

    # Then the error says what to fix, the secret was read again once (not from cache), no retry loop
    error = raised.value
    assert error.kind == "no_service"
    assert error.status == 404
    assert "revoked" in str(error)
    assert SECRET_NAME in str(error)
    assert SECRET_TOKEN not in str(error)
    assert world.secrets.fetches == 2
    assert statuses(world.stand_in) == [404]


def test_a_rotated_secret_is_picked_up_after_a_404_without_a_cold_start(world):
    # Given the old URL is cached, then the webhook is rotated in Secrets Manager, then the old one revoked
    webhook.webhook_url(SECRET_NAME)
    rotated = world.stand_in.url.replace(SECRET_TOKEN, "R0TAT3D")
    world.store_url(rotated)
    world.stand_in.script("no_service", "ok")

    post_message(MESSAGE, secret_name=SECRET_NAME, policy=FAST)

    # Then the message went to the new webhook, once
    assert [r.path for r in world.stand_in.requests] == [
        f"/services/T0TEST/B0TEST/{SECRET_TOKEN}",
        "/services/T0TEST/B0TEST/R0TAT3D",
    ]
    assert statuses(world.stand_in) == [404, 200]
    assert len(world.stand_in.messages) == 1


@pytest.mark.parametrize(
    ("reply", "kind", "hint"),
    [
        (Reply.invalid_payload(), "invalid_payload", "bug in batch_dispatch.alerts"),
        (Reply.channel_is_archived(), "channel_is_archived", "archived"),
        (Reply.channel_not_found(), "channel_not_found", "deleted"),
        (Reply.action_prohibited(), "action_prohibited", "admin"),
    ],
)
def test_permanent_errors_are_not_retried_and_say_what_to_fix(world, reply, kind, hint):
    world.stand_in.set_mode(reply)

    with pytest.raises(SlackPermanentError, match=hint) as raised:
        post_message(MESSAGE, secret_name=SECRET_NAME, policy=FAST)

    assert raised.value.kind == kind
    assert len(world.stand_in.requests) == 1


def test_an_invalid_payload_does_not_refetch_the_secret(world):
    world.stand_in.set_mode("invalid_payload")

    with pytest.raises(SlackPermanentError):
        post_message(MESSAGE, secret_name=SECRET_NAME, policy=FAST)

    assert world.secrets.fetches == 1


@pytest.mark.parametrize(
    ("payload", "code"),
    [({"username": "x"}, "no_text"), ({"text": "x", "blocks": [{"type": "divider"}] * 51}, "invalid_blocks")],
)
def test_the_stand_in_rejects_what_slack_would_reject(world, payload, code):
    with pytest.raises(SlackPermanentError) as raised:
        post_message(payload, secret_name=SECRET_NAME, policy=FAST)

    assert raised.value.kind == code
    assert world.stand_in.messages == []
    assert world.stand_in.requests[0].reply == code


def test_the_stand_in_records_when_each_post_arrived_not_when_it_was_answered(world):
    world.stand_in.script(Reply.hang(0.5), "ok")
    sent_at = time.time()

    once_quickly = FAST._replace(timeout_seconds=0.2, max_retries=0)
    with pytest.raises(SlackTransientError):  # the hang outlasts the post's 0.2 s timeout
        post_message(MESSAGE, secret_name=SECRET_NAME, policy=once_quickly)
    time.sleep(0.4)  # the hang ends: the stand-in answers (and records) it now
    post_message(MESSAGE, secret_name=SECRET_NAME, policy=FAST)

    hung, accepted = sorted(world.stand_in.requests, key=lambda r: r.received_at)
    assert (hung.status, accepted.status) == (503, 200)
    assert sent_at <= hung.received_at < sent_at + 0.2  # arrival, before the 0.5 s hang
    assert accepted.received_at - hung.received_at >= 0.5


def test_a_stand_in_in_its_own_process_answers_and_records_like_one_in_this_process():
    with SlackStandInProcess() as stand_in:
        before = time.time()
        for n in range(2):
            body = json.dumps({"text": f"post {n}"}).encode()
            request = urllib.request.Request(  # noqa: S310 - the stand-in, on loopback
                stand_in.url, data=body, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 - loopback
                assert answer.read() == b"ok"
        after = time.time()
        requests, messages = stand_in.requests, stand_in.messages

    assert messages == [{"text": "post 0"}, {"text": "post 1"}]
    assert [(r.status, r.path) for r in requests] == [(200, "/services/T000/B000/XXXX")] * 2
    assert before <= requests[0].received_at <= requests[1].received_at <= after


# --- the secret ---------------------------------------------------------------------------------------


def test_a_json_secret_with_a_url_key_works(world):
    world.store_url(json.dumps({"url": world.stand_in.url}))

    post_message(MESSAGE, secret_name=SECRET_NAME, policy=FAST)

    assert len(world.stand_in.messages) == 1


def test_the_secret_is_cached_between_posts(world):
    post_message(MESSAGE, secret_name=SECRET_NAME, policy=FAST)
    post_message(MESSAGE, secret_name=SECRET_NAME, policy=FAST)

    assert world.secrets.fetches == 1
    assert len(world.stand_in.messages) == 2


def test_a_new_secrets_client_starts_a_fresh_cache(world):
    # Given the URL is cached, then a new client is injected (as the emulator does after a redeploy)
    post_message(MESSAGE, secret_name=SECRET_NAME, policy=FAST)
    fresh = CountingSecrets(world.secrets.inner)
    clients.use_client("secretsmanager", fresh)

    post_message(MESSAGE, secret_name=SECRET_NAME, policy=FAST)

    # Then the secret is read through the new client, not served from the old cache
    assert fresh.fetches == 1


def test_a_secret_that_is_not_a_url_is_permanent_and_not_echoed(world):
    world.store_url("xoxb-not-a-webhook-but-still-secret")

    with pytest.raises(SlackPermanentError, match="does not hold a Slack webhook URL") as raised:
        post_message(MESSAGE, secret_name=SECRET_NAME, policy=FAST)

    assert raised.value.kind == "secret_invalid"
    assert "xoxb" not in str(raised.value)


def test_a_missing_secret_is_reported_by_name(world):
    with pytest.raises(SlackTransientError, match="batch-dispatch/nope") as raised:
        post_message(MESSAGE, secret_name="batch-dispatch/nope", policy=FAST)

    assert raised.value.kind == "secret_unavailable"
    assert "ResourceNotFoundException" in str(raised.value)


# --- the handler, end to end --------------------------------------------------------------------------


@dataclass
class Invocation:
    result: dict[str, Any] | None
    error: BaseException | None
    metrics: Counter[str]
    output: str  # everything the invocation wrote to stdout/stderr (logs, EMF)


@pytest.fixture
def invoke(world: World, capsys: pytest.CaptureFixture[str]) -> Callable[..., Invocation]:
    """Call the real handler (decorators included) like Lambda would; metrics read from its EMF output."""

    def _invoke(event: Any) -> Invocation:
        capsys.readouterr()
        result: dict[str, Any] | None = None
        error: BaseException | None = None
        try:
            result = app.lambda_handler(event, FakeLambdaContext(timeout_seconds=30))
        except Exception as exc:  # the test inspects what Lambda would see
            error = exc
        counts: Counter[str] = Counter()
        captured = capsys.readouterr()
        for line in captured.out.splitlines():
            try:
                blob = json.loads(line)
            except ValueError:
                continue
            if isinstance(blob, dict) and "_aws" in blob:
                for directive in blob["_aws"]["CloudWatchMetrics"]:
                    for metric in directive["Metrics"]:
                        value = blob[metric["Name"]]
                        counts[metric["Name"]] += int(sum(value) if isinstance(value, list) else value)
        return Invocation(result=result, error=error, metrics=counts, output=captured.out + captured.err)

    return _invoke


def test_the_same_failed_event_delivered_twice_posts_one_message(world, invoke):
    event = load_event("batch/job-failed-container.json")

    first = invoke(event)
    second = invoke(event)

    assert first.result == {
        "notified": True,
        "jobId": "8f2c1d4e-3b6a-4f0e-9c7d-2a5b8e1f4d36",
        "duplicate": False,
    }
    assert second.result == {
        "notified": True,
        "jobId": "8f2c1d4e-3b6a-4f0e-9c7d-2a5b8e1f4d36",
        "duplicate": True,
    }
    assert len(world.stand_in.messages) == 1
    assert first.metrics["FailureNotified"] == 1
    assert second.metrics["FailureNotified"] == 0
    assert second.metrics["DuplicateSkipped"] == 1
    message = world.stand_in.messages[0]
    assert "KeyError 'region'" in message["text"]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("batch/job-running.json", "status RUNNING"),
        ("batch/job-succeeded.json", "status SUCCEEDED"),
        (
            "batch/job-failed-multinode.json",
            "node of a multi-node job (its parent job's alert tells the failure)",
        ),
    ],
)
def test_non_failed_events_post_nothing_and_do_not_fail(world, invoke, name, reason):
    outcome = invoke(load_event(name))

    assert outcome.error is None
    assert outcome.result == {"notified": False, "reason": reason}
    assert outcome.metrics["AlertSkipped"] == 1
    assert world.stand_in.requests == []


def test_a_failed_post_releases_the_record_so_the_retry_posts(world, invoke):
    # Given Slack fails both tries of the first invocation (SLACK_MAX_RETRIES=1)
    world.stand_in.script("server_error", "server_error")
    event = load_event("batch/job-failed-task-properties.json")

    first = invoke(event)
    retry = invoke(event)  # Lambda's async retry of the same event

    # Then the first invocation raised (so Lambda retries / the DLQ catches it) and the retry posted once
    assert isinstance(first.error, SlackTransientError)
    assert first.metrics["NotificationFailed"] == 1
    assert retry.error is None
    assert retry.result == {
        "notified": True,
        "jobId": "2b7e9a14-5c3d-4e8f-a1b6-9d0c7f3e2a58",
        "duplicate": False,
    }
    assert len(world.stand_in.messages) == 1


def test_a_permanent_error_raises_from_the_handler_for_the_dlq(world, invoke):
    world.stand_in.set_mode("no_service")

    outcome = invoke(load_event("batch/job-failed-array-child.json"))

    assert isinstance(outcome.error, SlackPermanentError)
    assert outcome.metrics["NotificationFailed"] == 1
    # and once the webhook is fixed, a redrive of the same event posts it
    world.stand_in.set_mode("ok")
    assert invoke(load_event("batch/job-failed-array-child.json")).result["notified"] is True
    assert len(world.stand_in.messages) == 1


def test_each_failed_job_gets_its_own_message(world, invoke):
    for name in ("batch/job-failed-multinode-parent.json", "batch/job-failed-never-running.json"):
        assert invoke(load_event(name)).error is None

    assert len(world.stand_in.messages) == 2


def test_missing_configuration_fails_fast(world, invoke, monkeypatch):
    monkeypatch.delenv("SLACK_WEBHOOK_SECRET_NAME")

    outcome = invoke(load_event("batch/job-failed-container.json"))

    assert isinstance(outcome.error, ConfigurationError)
    assert "SLACK_WEBHOOK_SECRET_NAME" in str(outcome.error)


def test_the_webhook_url_never_reaches_the_logs(world, invoke, caplog):
    # Given every logger at DEBUG, and a run through success, a retry, a timeout and a revoked webhook
    caplog.set_level(logging.DEBUG)
    previous_level = logger.log_level
    logger.setLevel("DEBUG")
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)
    try:
        world.stand_in.script("rate_limited", "ok")
        runs = [invoke(load_event("batch/job-failed-container.json"))]
        world.stand_in.script(Reply.hang(seconds=2), Reply.hang(seconds=2))
        runs.append(invoke(load_event("batch/job-failed-multinode-parent.json")))
        world.stand_in.set_mode("no_service")
        revoked = invoke(load_event("batch/job-failed-hostile-text.json"))
    finally:
        logging.getLogger(logger.name).removeHandler(handler)
        logger.setLevel(previous_level)

    # Then the runs happened and logged, but the URL's secret part appears nowhere
    assert isinstance(revoked.error, SlackPermanentError)
    runs.append(revoked)
    everything = buffer.getvalue() + caplog.text + "".join(r.output + repr(r.error) for r in runs)
    assert "Slack webhook looks revoked" in everything
    assert SECRET_TOKEN not in everything
    assert world.stand_in.url not in everything
