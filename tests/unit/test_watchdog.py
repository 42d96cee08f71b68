"""The watchdog: late job types, long-running jobs and parked ticks, each told once.

Scope: the WatchdogFunction handler end to end against in-process moto (Batch without Docker, the alert
state and idempotency tables, ScheduleDLQ, the job catalog's registry, the webhook secrets) and two
Slack stand-ins (the stack's channel and the nightly job type's). The check's clock is the tick's
`scheduledTime`: jobs run at the wall clock, and the checks happen before and after them.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from batch_dispatch import execution_environment
from batch_dispatch.alerts.watchdog.job_history import JobSeen
from batch_dispatch.aws import clients
from emulator.moto_server import failing_batch_jobs
from emulator.running_jobs import RunningJobs
from emulator.slack_stub import SlackStandIn
from functions.watchdog import app
from tests.conftest import (
    FakeLambdaContext,
    MotoBatch,
    create_alert_state_table,
    emitted_metrics,
    load_event,
    register_job_definition,
)

STACK = "batch-dispatch-test"  # the moto_batch fixture's JOB_NAME_PREFIX
REGISTRY = f"/batch-dispatch/{STACK}/job-types"
TABLE = "alert-state"


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def text_of(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False)


class BatchWithRunningJobs:
    """In-process moto's Batch client, answering as Batch does while the held jobs run (moto's no-Docker
    Batch finishes every job when it is submitted): the emulator's server rewrites the same way."""

    def __init__(self, client: Any, running: RunningJobs) -> None:
        self.client, self.running = client, running

    def list_jobs(self, **request: Any) -> dict[str, Any]:
        return self.running.list_jobs(request, self.client.list_jobs(**request))

    def describe_jobs(self, **request: Any) -> dict[str, Any]:
        return self.running.describe_jobs(self.client.describe_jobs(**request))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


@dataclass
class Watch:
    batch: MotoBatch
    stack_channel: SlackStandIn
    nightly_channel: SlackStandIn
    nightly_definition: str
    dlq_url: str
    started: datetime  # the wall clock when the test began: jobs run around it
    capsys: pytest.CaptureFixture[str]
    caplog: pytest.LogCaptureFixture
    metrics: Counter[str] = field(default_factory=Counter)  # what every check so far published

    def check(self, at: datetime) -> dict[str, Any]:
        """One watchdog run, as Scheduler sends it at `at`."""
        self.capsys.readouterr()
        result: dict[str, Any] = app.lambda_handler({"scheduledTime": iso(at)}, FakeLambdaContext())
        self.metrics.update(emitted_metrics(self.capsys.readouterr().out))
        return result

    def warnings(self, message: str) -> list[logging.LogRecord]:
        """The warnings logged with this (constant) message; their `extra` keys are attributes."""
        return [
            r
            for r in self.caplog.records
            if r.name == "batch-dispatch" and r.levelno == logging.WARNING and r.getMessage() == message
        ]

    def register(self, name: str, **entry: str) -> None:
        value = {
            "jobDefinition": self.nightly_definition,
            "jobQueue": self.batch.job_queue_arn,
            "routed": "false",
            "webhookSecretName": "batch-dispatch/slack-nightly",
            "scheduleExpression": "cron(0 2 * * ? *)",
            "scheduleEnabled": "true",
            "expectSuccessEvery": "off",
            **entry,
        }
        boto3.client("ssm").put_parameter(
            Name=f"{REGISTRY}/{name}", Type="String", Value=json.dumps(value), Overwrite=True
        )
        execution_environment.reset()  # the registry is cached: a new execution environment reads it

    def submit(self, definition: str | None = None, name: str = "job") -> str:
        return str(
            boto3.client("batch").submit_job(
                jobName=name,
                jobQueue=self.batch.job_queue_arn,
                jobDefinition=definition or self.batch.job_definition_arn,
            )["jobId"]
        )

    def keep_running(self, job_id: str) -> None:
        """The job keeps RUNNING, started when it was submitted, as the watchdog's Batch client sees it."""
        batch = boto3.client("batch")
        (summary,) = [
            s
            for s in batch.list_jobs(
                jobQueue=self.batch.job_queue_arn, filters=[{"name": "JOB_NAME", "values": ["*"]}]
            )["jobSummaryList"]
            if s["jobId"] == job_id
        ]
        running = RunningJobs()
        running.hold(self.batch.job_queue_arn, summary)
        clients.use_client("batch", BatchWithRunningJobs(batch, running))

    def state(self, pk: str, sk: str) -> dict[str, Any] | None:
        item = boto3.client("dynamodb").get_item(
            TableName=TABLE, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
        )
        return item.get("Item")

    def park(self, sample: str) -> None:
        message = load_event(sample)
        boto3.client("sqs").send_message(
            QueueUrl=self.dlq_url, MessageBody=message["Body"], MessageAttributes=message["MessageAttributes"]
        )

    def parked(self) -> list[str]:
        sqs = boto3.client("sqs")
        found = sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        return [m["Body"] for m in found.get("Messages", [])]


@pytest.fixture
def watch(
    moto_batch: MotoBatch,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> Iterator[Watch]:
    with SlackStandIn() as stack_channel, SlackStandIn() as nightly_channel:
        secrets = boto3.client("secretsmanager")
        secrets.create_secret(Name="batch-dispatch/slack-webhook", SecretString=stack_channel.url)
        secrets.create_secret(Name="batch-dispatch/slack-nightly", SecretString=nightly_channel.url)
        create_alert_state_table(TABLE)
        dlq_url = boto3.client("sqs").create_queue(QueueName="schedule-dlq")["QueueUrl"]
        nightly = register_job_definition(f"{STACK}_nightly")
        for name, value in {
            "SLACK_WEBHOOK_SECRET_NAME": "batch-dispatch/slack-webhook",
            "ALERT_STATE_TABLE_NAME": TABLE,
            "SCHEDULE_DLQ_URL": dlq_url,
            "SCHEDULE_EXPRESSION": "rate(3 hours)",
            "SCHEDULE_ENABLED": "true",
            "JOB_TYPES_PATH": REGISTRY,
            "ENVIRONMENT": "test",
            "SLACK_TIMEOUT_SECONDS": "2",
        }.items():
            monkeypatch.setenv(name, value)
        execution_environment.reset()
        yield Watch(
            moto_batch,
            stack_channel,
            nightly_channel,
            nightly,
            dlq_url,
            datetime.now(UTC).replace(microsecond=0),
            capsys,
            caplog,
        )
        execution_environment.reset()


def started_at(job_id: str) -> datetime:
    (job,) = clients.client("batch").describe_jobs(jobs=[job_id])["jobs"]
    return datetime.fromtimestamp(job["startedAt"] / 1000, UTC)


def test_a_failed_jobs_reason_carries_its_exit_code():
    # Given a ListJobs summary of a FAILED job, as Batch answers it
    summary = {
        "jobId": "5f2c1d4e-0000-4f0e-9c7d-2a5b8e1f4d36",
        "jobName": "nightly-2026",
        "status": "FAILED",
        "statusReason": "Essential container in task exited",
        "createdAt": 1795399200000,
        "startedAt": 1795399260000,
        "stoppedAt": 1795399500000,
        "container": {"exitCode": 137},
        "jobDefinition": f"arn:aws:batch:us-east-1:123456789012:job-definition/{STACK}_nightly:3",
    }

    job = JobSeen.from_summary(summary)

    assert job.reason == "Essential container in task exited (exit code 137)"
    assert job.stopped_at == datetime(2026, 11, 23, 2, 5, tzinfo=UTC)


# --- lateness -------------------------------------------------------------------------------------


def test_a_late_job_type_is_told_once_per_episode_and_once_when_it_recovers(watch):
    # Given the stack's job type on rate(3 hours) (expected every 4 h) and a watch that began 5 h ago
    t0 = watch.started
    watch.check(t0 - timedelta(hours=5))

    # When checks run past the 4 h, again and again
    first = watch.check(t0 - timedelta(minutes=30))
    for minutes in (25, 20, 10):
        watch.check(t0 - timedelta(minutes=minutes))

    # Then one alert says so, in the stack's channel
    assert first["lateness"]["default"] == "late-alerted"
    (late,) = watch.stack_channel.messages
    assert "default: no success since the watch began at" in late["text"]
    assert "expected every 4h" in late["text"]
    assert "Next run: within 3h" in text_of(late)
    assert watch.metrics["LateRunNotified"] == 1
    assert [(r.job_type, r.expected_every) for r in watch.warnings("Job type late")] == [("default", "4h")]

    # When a job succeeds, and the checks go on
    job_id = watch.submit()
    recovered = watch.check(t0 + timedelta(minutes=5))
    watch.check(t0 + timedelta(minutes=10))

    # Then one "recovered" follows, naming the job, and the episode is closed in the state table
    assert recovered["lateness"]["default"] == "recovered"
    assert len(watch.stack_channel.messages) == 2
    assert "default recovered" in watch.stack_channel.messages[1]["text"]
    assert job_id in text_of(watch.stack_channel.messages[1])
    state = watch.state("watch#default", "lateness")
    assert state is not None
    assert "episode" not in state
    assert state["last_success_job"]["S"] == job_id
    assert watch.nightly_channel.messages == []


def test_a_new_gap_after_a_recovery_is_a_new_episode_with_its_own_alert(watch):
    # Given a success now, checked
    job_id = watch.submit()
    t0 = watch.started
    watch.check(t0 + timedelta(minutes=1))

    # When no other success comes for 5 h, then 9 h
    watch.check(t0 + timedelta(hours=5))
    watch.check(t0 + timedelta(hours=9))

    # Then one alert, measured from that success
    (late,) = watch.stack_channel.messages
    assert "default: no success since" in late["text"]
    assert "the watch began" not in late["text"]
    state = watch.state("watch#default", "lateness")
    assert state is not None
    assert state["episode_alerted"] == {"BOOL": True}
    assert state["last_success_job"]["S"] == job_id


def test_the_late_alert_names_the_last_failure_and_the_next_run_in_the_job_types_channel(watch):
    # Given the nightly job type (cron 02:00 UTC, expected every 2 hours) in its own channel,
    # whose last job failed after a success
    watch.register("nightly", expectSuccessEvery="2 hours")
    watch.submit(watch.nightly_definition, name="nightly-ok")
    with failing_batch_jobs():
        failed = watch.submit(watch.nightly_definition, name="nightly-broken")

    # When the watchdog checks 3 hours later
    at = watch.started + timedelta(hours=3)
    watch.check(at)

    # Then the nightly channel hears it with the failed job and the schedule's next run
    (late,) = watch.nightly_channel.messages
    text = text_of(late)
    assert "nightly: no success since" in late["text"]
    assert "expected every 2h" in late["text"]
    assert f"Last failure: nightly-broken (`{failed}`)" in text
    next_run = (
        (at + timedelta(days=1)).replace(hour=2, minute=0, second=0)
        if at.hour >= 2
        else at.replace(hour=2, minute=0, second=0)
    )
    assert f"Next run: {next_run.strftime('%Y-%m-%d %H:%M UTC')}" in text
    assert f"#jobs/detail/{failed}" in text
    assert watch.stack_channel.messages == []


def test_a_job_type_with_the_check_off_is_never_told(watch, monkeypatch):
    # Given the stack's job type with ExpectSuccessEvery off, and nightly with expectSuccessEvery off
    monkeypatch.setenv("EXPECT_SUCCESS_EVERY", "off")
    execution_environment.reset()
    watch.register("nightly", expectSuccessEvery="off")

    # When checks run two days apart with no success at all
    result = watch.check(watch.started - timedelta(days=2))
    watch.check(watch.started)

    # Then nothing is posted and nothing is remembered
    assert result["lateness"] == {"default": "off", "nightly": "off"}
    assert watch.stack_channel.messages == watch.nightly_channel.messages == []
    assert watch.state("watch#default", "lateness") is None
    assert watch.state("watch#nightly", "lateness") is None


def test_an_upload_driven_job_type_expects_nothing_by_default(watch):
    # Given a job type with an upload route and no schedule, its expectation left at auto
    watch.register(
        "thumbnails", routed="true", routePrefix="images/", scheduleExpression="", expectSuccessEvery="auto"
    )

    # When checks run two days apart with no success at all
    result = watch.check(watch.started - timedelta(days=2))
    watch.check(watch.started)

    # Then it is not checked
    assert result["lateness"]["thumbnails"] == "off"
    assert watch.state("watch#thumbnails", "lateness") is None
    assert watch.nightly_channel.messages == []


# --- long-running jobs ----------------------------------------------------------------------------


def test_a_job_running_past_its_expected_duration_is_told_once(watch):
    # Given nightly expected to finish within an hour, and one of its jobs running since now
    watch.register("nightly", expectedDuration="1 hour")
    job_id = watch.submit(watch.nightly_definition, name="nightly-slow")
    watch.keep_running(job_id)

    started = started_at(job_id)

    # When the watchdog checks after 30 minutes, 2 hours, and 2 hours 10 minutes
    early = watch.check(started + timedelta(minutes=30))
    late = watch.check(started + timedelta(hours=2, seconds=1))
    again = watch.check(started + timedelta(hours=2, minutes=10))

    # Then the nightly channel hears it once, with the job, its start and a console link
    assert (early["longRunning"], late["longRunning"], again["longRunning"]) == (
        {},
        {"nightly": [job_id]},
        {},
    )
    (message,) = watch.nightly_channel.messages
    text = text_of(message)
    assert "still running after 2h" in message["text"]
    assert job_id in text
    assert "expected at most 1h" in text
    assert f"Started at {started.strftime('%Y-%m-%d %H:%M UTC')}" in text
    assert f"#jobs/detail/{job_id}" in text
    assert watch.state("watch#nightly", f"running#{job_id}")["alerted"] == {"BOOL": True}
    assert watch.metrics["LongRunningNotified"] == 1
    (warning,) = watch.warnings("Job running longer than expected")
    assert (warning.job_type, warning.job_id, warning.ran_seconds // 60) == ("nightly", job_id, 120)


def test_a_running_job_of_a_type_without_an_expected_duration_is_not_told(watch):
    watch.register("nightly")  # expectedDuration left off
    watch.keep_running(watch.submit(watch.nightly_definition))

    watch.check(watch.started + timedelta(days=1))

    assert watch.nightly_channel.messages == []


# --- ticks parked in ScheduleDLQ ------------------------------------------------------------------


def test_a_tick_scheduler_could_not_deliver_is_told_once_with_the_backfill_command(watch):
    # Given a nightly tick Scheduler parked after its retries
    watch.register("nightly")
    watch.park("schedule/dlq/scheduler-could-not-invoke.json")

    # When the watchdog checks, twice
    first = watch.check(watch.started)
    watch.check(watch.started + timedelta(minutes=5))

    # Then the nightly channel hears it once: schedule, missed time, why, and the command to catch up
    (message,) = watch.nightly_channel.messages
    text = text_of(message)
    assert first["missedTicks"] == [
        "batch-dispatch-dev-NightlyJobType-Schedule-1A2B3C4D5E6F@2026-11-23T02:00:00Z"
    ]
    assert "nightly: missed run at 2026-11-23 02:00 UTC" in message["text"]
    assert "batch-dispatch-dev-NightlyJobType-Schedule-1A2B3C4D5E6F" in text
    assert "AWS.Lambda.TooManyRequestsException" in text
    assert "after 20 retries" in text
    assert "batch-dispatch backfill nightly --from 2026-11-23T02:00:00Z --to 2026-11-24T02:00:00Z" in text
    # And the tick is still parked, for a redrive
    assert len(watch.parked()) == 1
    record = watch.state(
        "missed#batch-dispatch-dev-NightlyJobType-Schedule-1A2B3C4D5E6F", "2026-11-23T02:00:00Z"
    )
    assert record is not None
    assert record["alerted"] == {"BOOL": True}
    assert watch.metrics["MissedTickNotified"] == 1
    (warning,) = watch.warnings("Schedule tick missed")
    assert (warning.job_type, warning.scheduled_time) == ("nightly", "2026-11-23T02:00:00Z")


def test_a_tick_the_function_failed_on_is_told_with_its_error(watch):
    # Given a tick of the stack's own schedule that ScheduleSubmitFunction failed on (Lambda parked it)
    watch.park("schedule/dlq/function-failed.json")

    watch.check(watch.started)

    # Then the stack's channel hears it, with the function's error and a backfill of one period
    (message,) = watch.stack_channel.messages
    text = text_of(message)
    assert "ScheduleSubmitFunction failed on it" in text
    assert "TooManyRequestsException" in text
    assert "batch-dispatch backfill default --from 2026-11-23T12:00:00Z --to 2026-11-23T15:00:00Z" in text


def test_a_tick_told_by_a_run_that_died_before_marking_it_is_not_told_again(watch):
    # Given a parked tick the watchdog posted, whose run died before marking it alerted
    watch.park("schedule/dlq/function-failed.json")
    watch.check(watch.started)
    schedule = "batch-dispatch-dev-ScheduleSubmitFunctionSchedule-9Z8Y7X6W5V4U"
    boto3.client("dynamodb").update_item(
        TableName=TABLE,
        Key={"pk": {"S": f"missed#{schedule}"}, "sk": {"S": "2026-11-23T12:00:00Z"}},
        UpdateExpression="SET alerted = :no",
        ExpressionAttributeValues={":no": {"BOOL": False}},
    )

    # When the next run finds it unmarked
    watch.check(watch.started + timedelta(minutes=5))

    # Then the earlier post stands alone, counted as a duplicate, and the tick is marked this time
    assert len(watch.stack_channel.messages) == 1
    assert (watch.metrics["MissedTickNotified"], watch.metrics["DuplicateSkipped"]) == (1, 1)
    assert watch.state(f"missed#{schedule}", "2026-11-23T12:00:00Z")["alerted"] == {"BOOL": True}


def test_two_parked_copies_of_one_tick_are_told_once(watch):
    watch.register("nightly")
    watch.park("schedule/dlq/scheduler-could-not-invoke.json")
    watch.park("schedule/dlq/scheduler-could-not-invoke.json")

    watch.check(watch.started)

    assert len(watch.nightly_channel.messages) == 1
    assert len(watch.parked()) == 2


def test_a_parked_message_that_is_not_a_tick_is_left_alone(watch):
    boto3.client("sqs").send_message(QueueUrl=watch.dlq_url, MessageBody="not a tick")

    result = watch.check(watch.started)

    assert result["missedTicks"] == []
    assert watch.stack_channel.messages == watch.nightly_channel.messages == []
    assert watch.parked() == ["not a tick"]
