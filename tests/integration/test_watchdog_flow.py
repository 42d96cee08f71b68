"""The watchdog end to end: template.yaml in moto, its schedule's tick fed to WatchdogFunction with a
chosen time, jobs in moto Batch, findings in the deployed AlertStateTable and the Slack stand-in.

The clock is the tick's `scheduledTime`: jobs run at the wall clock (t0), and the watchdog checks
before and after them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from click.testing import CliRunner

from batch_dispatch_cli.app import cli
from emulator.core import Emulator
from tests.conftest import fresh_account

pytestmark = pytest.mark.integration


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def check(local: Emulator, at: datetime) -> Any:
    """Fire the watchdog's own schedule at `at` (its Input, as Scheduler fills it in)."""
    (schedule,) = [s for s in local.all_schedules() if s.target_function == "WatchdogFunction"]
    invocation = local.tick(iso(at), schedule)
    assert invocation is not None
    assert invocation.error is None, invocation.error
    return invocation.result


def tick(local: Emulator, at: datetime) -> dict[str, Any]:
    """Fire the stack's job schedule at `at`: the job it submitted."""
    invocation = local.tick(iso(at))
    assert invocation is not None
    assert invocation.error is None, invocation.error
    result: dict[str, Any] = invocation.result
    return result


def state(local: Emulator, pk: str, sk: str) -> dict[str, Any] | None:
    item = boto3.client("dynamodb").get_item(
        TableName=local.stack.outputs["AlertStateTableName"],
        Key={"pk": {"S": pk}, "sk": {"S": sk}},
        ConsistentRead=True,
    )
    return item.get("Item")


def texts(local: Emulator) -> list[str]:
    return [json.dumps(m, ensure_ascii=False) for m in local.slack_messages()]


@pytest.fixture
def deploy_with(module_emulator: Emulator) -> Iterator[Callable[..., Emulator]]:
    """A fresh account with the template deployed with these parameters (the defaults otherwise)."""
    saved = module_emulator.parameter_overrides

    def deploy(**parameters: str) -> Emulator:
        module_emulator.parameter_overrides = {**saved, **parameters}
        fresh_account(module_emulator).deploy()
        return module_emulator

    yield deploy
    module_emulator.parameter_overrides = saved


def test_the_template_schedules_the_watchdog_every_five_minutes(local: Emulator):
    (schedule,) = [s for s in local.all_schedules() if s.target_function == "WatchdogFunction"]

    assert schedule.expression == "rate(5 minutes)"
    assert schedule.input_for("2026-11-23T12:05:00Z") == {"scheduledTime": "2026-11-23T12:05:00Z"}
    # it submits no job type: `tick()`, `tick JOB_TYPE` and the JSON document's schedules leave it out
    assert schedule.job_type == ""
    assert [s.target_function for s in local.schedules()] == ["ScheduleSubmitFunction"]


def test_a_late_default_job_type_is_told_once_and_once_recovered(local: Emulator):
    # Given the default stack (rate(3 hours): a success expected every 4 hours), watched from 5 h ago
    t0 = datetime.now(UTC).replace(microsecond=0)
    check(local, t0 - timedelta(hours=5))

    # When the checks go on past 4 hours without a success
    for minutes in (30, 25, 20, 15):
        check(local, t0 - timedelta(minutes=minutes))

    # Then one alert
    assert len(local.slack_messages()) == 1
    assert "default: no success since the watch began" in local.slack_messages()[0]["text"]

    # When the schedule's tick runs a job to success, and the checks go on
    job = tick(local, t0)
    results = [check(local, t0 + timedelta(minutes=m)) for m in (5, 10, 15)]

    # Then one "recovered", naming the job, and the state table has closed the episode
    assert [r["lateness"]["default"] for r in results] == ["recovered", "on-time", "on-time"]
    assert len(local.slack_messages()) == 2
    assert "default recovered" in local.slack_messages()[1]["text"]
    assert job["jobId"] in texts(local)[1]
    item = state(local, "watch#default", "lateness")
    assert item is not None
    assert "episode" not in item
    assert item["last_success_job"]["S"] == job["jobId"]


def test_the_late_alert_names_the_last_failure_and_the_next_run(local: Emulator):
    # Given a scheduled job that failed, and no success
    t0 = datetime.now(UTC).replace(microsecond=0)
    check(local, t0 - timedelta(hours=5))
    with local.jobs_fail(exit_code=137, reason="OutOfMemoryError: Container killed due to memory usage"):
        failed = tick(local, t0)

    # When the watchdog checks after it failed, past the 4 hours
    check(local, t0 + timedelta(minutes=5))

    # Then the alert names the last failure and when the schedule runs next
    # (moto's ListJobs knows no exit reason: the emulator shows it only in the events it builds)
    (text,) = texts(local)
    assert f"Last failure: {failed['jobName']}" in text
    assert failed["jobId"] in text
    assert "Next run: about" in text  # rate(): counted from the last tick's job


def test_a_job_running_past_its_expected_duration_is_told_once(deploy_with):
    # Given a stack whose jobs should take at most an hour, and a job that keeps running
    local = deploy_with(JobExpectedDuration="1 hour")
    t0 = datetime.now(UTC).replace(microsecond=0)
    with local.jobs_keep_running():
        job = tick(local, t0)

    # When the watchdog checks after 30 minutes, 2 hours and 2 hours 10 minutes
    results = [check(local, t0 + delay) for delay in (timedelta(minutes=30), timedelta(hours=2, minutes=1))]
    results.append(check(local, t0 + timedelta(hours=2, minutes=10)))

    # Then one alert, with the job and a link to it
    assert [r["longRunning"] for r in results] == [{}, {"default": [job["jobId"]]}, {}]
    (text,) = texts(local)
    assert "still running after 2h" in text
    assert f"#jobs/detail/{job['jobId']}" in text
    assert state(local, "watch#default", f"running#{job['jobId']}")["alerted"] == {"BOOL": True}


def test_a_tick_scheduler_gave_up_on_is_told_once_with_the_backfill_command(local: Emulator):
    # Given a tick of the stack's schedule that Scheduler could not deliver
    local.scheduler_gives_up("2026-11-23T12:00:00Z")
    schedule = local.schedules()[0]

    # When the watchdog checks twice
    check(local, datetime.now(UTC))
    check(local, datetime.now(UTC) + timedelta(minutes=5))

    # Then one alert names the schedule, the missed time and the command that catches it up
    (text,) = texts(local)
    assert schedule.name in text
    assert "missed run at 2026-11-23 12:00 UTC" in text
    assert "batch-dispatch backfill default --from 2026-11-23T12:00:00Z --to 2026-11-23T15:00:00Z" in text
    # And the tick is still in ScheduleDLQ for a redrive
    (parked,) = local.dlq_messages()["ScheduleDLQ"]
    assert json.loads(parked)["scheduledTime"] == "2026-11-23T12:00:00Z"
    assert state(local, f"missed#{schedule.name}", "2026-11-23T12:00:00Z")["alerted"] == {"BOOL": True}


def test_the_alerts_backfill_command_submits_the_missed_tick_once(deploy_with):
    # Given a nightly schedule whose 02:00 tick Scheduler could not deliver, and the watchdog's alert
    local = deploy_with(ScheduleExpression="cron(0 2 * * ? *)")
    local.scheduler_gives_up("2026-11-23T02:00:00Z")
    check(local, datetime.now(UTC))
    (text,) = texts(local)
    found = re.search(r"batch-dispatch (backfill \S+ --from \S+ --to \S+)`", text)
    assert found is not None, text

    # When the operator runs the command the alert gives, twice
    arguments = ["--stack", local.stack.name, *found.group(1).split(), "--json"]
    first = CliRunner(mix_stderr=False).invoke(cli, arguments, catch_exceptions=False)
    again = CliRunner(mix_stderr=False).invoke(cli, arguments, catch_exceptions=False)

    # Then exactly the missed tick is submitted, once
    assert first.exit_code == 0, first.stderr
    assert [(t["scheduledTime"], t["outcome"]) for t in json.loads(first.stdout)["ticks"]] == [
        ("2026-11-23T02:00:00Z", "submitted")
    ]
    assert json.loads(again.stdout)["counts"] == {"submitted": 0, "skipped": 1}
    (job,) = local.jobs_submitted()
    assert job["parameters"]["scheduledTime"] == "2026-11-23T02:00:00Z"


def test_a_tick_the_function_failed_on_is_told_with_its_error(local: Emulator):
    # Given a tick naming a job type the catalog does not have: the function fails, Lambda parks it
    tick = {**local.schedules()[0].input_for("2026-11-23T12:00:00Z"), "jobType": "reports"}
    assert local.invoke("ScheduleSubmitFunction", tick).error is not None

    check(local, datetime.now(UTC))

    (text,) = texts(local)
    assert "ScheduleSubmitFunction failed on it" in text
    assert "not in this stack" in text
    assert "batch-dispatch backfill reports --from 2026-11-23T12:00:00Z --to 2026-11-23T12:01:00Z" in text


def test_with_the_check_off_nothing_is_told_or_remembered(deploy_with):
    local = deploy_with(ExpectSuccessEvery="off")
    t0 = datetime.now(UTC)

    results = [check(local, t0 - timedelta(days=2)), check(local, t0)]

    assert [r["lateness"] for r in results] == [{"default": "off"}, {"default": "off"}]
    assert local.slack_messages() == []
    assert state(local, "watch#default", "lateness") is None


def test_an_upload_driven_job_type_expects_nothing(deploy_with):
    # Given the stack's schedule disabled (its job type is then upload-driven only)
    local = deploy_with(ScheduleEnabled="false")
    t0 = datetime.now(UTC)

    # When uploads run jobs and days pass between checks
    local.upload("incoming/a.csv")
    local.drain()
    results = [check(local, t0 - timedelta(days=2)), check(local, t0 + timedelta(days=3))]

    # Then it is not checked
    assert [r["lateness"] for r in results] == [{"default": "off"}, {"default": "off"}]
    assert local.slack_messages() == []
    assert state(local, "watch#default", "lateness") is None
