"""`batch-dispatch` against template.yaml deployed in moto: each subcommand's happy path, bad input (exit
code 2, nothing changed in moto), its --json document and exit codes.

One moto server for the module. Tests that count stack-wide things (DLQ depths, a clean status) take
`local`, a fresh account; the others take `deployed`, the stack as the previous test left it, and keep to
a job type of their own, so no test sees another's jobs.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from click.testing import CliRunner, Result

from batch_dispatch.schedule_times import Schedule
from batch_dispatch_cli.app import cli
from emulator.core import Emulator
from tests.conftest import REPO_ROOT, fresh_account, load_event, set_batch_status
from tests.integration.operator_cli import command, document, jobs_of

pytestmark = pytest.mark.integration

STATUS_KEYS = {"stack", "region", "checkedAt", "jobTypes", "deadLetterQueues", "attention", "warnings"}
FOLLOW_POLL_SECONDS = 0.2
FOLLOW_TIMEOUT_SECONDS = 60  # a fresh interpreter on a loaded machine, then one poll
RERUN_KEYS = {
    "originalJobId",
    "originalJobName",
    "jobs",
    "children",
    "manifestKey",
    "duplicate",
    "requestKey",
}
RUN_KEYS = {"jobType", "jobId", "jobName", "duplicate", "idempotencyKey", "parameters"}
RUN_WAIT_KEYS = RUN_KEYS | {"status", "statusReason", "logLines"}
SCHEDULE_KEYS = {"expression", "timezone", "enabled", "nextRun", "name"}
LAST_JOB_KEYS = {"jobId", "jobName", "at"}
DLQ_DEPTH_KEYS = {"name", "url", "messages"}
BACKFILL_KEYS = {"jobType", "schedule", "from", "to", "dryRun", "ticks", "counts"}
BACKFILL_SCHEDULE_KEYS = {"name", "expression", "timezone"}
TICK_KEYS = {"scheduledTime", "outcome", "jobId", "jobName"}
LOGS_KEYS = {"jobId", "jobName", "status", "attempt", "attempts", "logGroup", "logStream", "lines"}
LOG_LINE_KEYS = {"timestamp", "message"}
DLQ_SHOW_KEYS = {"queues"}
DLQ_SHOWN_QUEUE_KEYS = {"name", "url", "messages", "shown"}
DLQ_MESSAGE_KEYS = {"messageId", "receiveCount", "errorCode", "errorMessage", "body"}
REDRIVE_KEYS = {"queue", "kind", "dryRun", "target"}
REDRIVE_MOVE_DRY_RUN_KEYS = REDRIVE_KEYS | {"messages"}  # a real move adds taskHandle (moto has no move task)
REDRIVE_REINVOKE_DRY_RUN_KEYS = REDRIVE_KEYS | {"reinvoked", "wouldReinvoke"}
REDRIVE_REINVOKE_KEYS = REDRIVE_KEYS | {"reinvoked", "messageIds", "skipped"}
JOB_TYPE_KEYS = {
    "name",
    "schedule",
    "expectSuccessEverySeconds",
    "lastSuccess",
    "lastFailure",
    "running",
    "runnable",
    "failedLast24h",
    "attention",
}


@pytest.fixture
def deployed(module_emulator: Emulator) -> Emulator:
    """The module's stack, not redeployed (the emulator deployed it when it started)."""
    return module_emulator


def add_job_type(
    local: Emulator,
    name: str,
    *,
    schedule: str = "",
    timezone: str = "UTC",
    start: datetime | None = None,
    expect_success_every: str = "auto",
) -> dict[str, str]:
    """A job type as job-types/job-type.yaml deploys one: its job definition `<stack>_<name>`, its registry
    entry under JobTypesPath and, with `schedule`, its Scheduler schedule targeting ScheduleSubmitFunction."""
    outputs = local.stack.outputs
    definition = boto3.client("batch").register_job_definition(
        jobDefinitionName=f"{local.stack.name}_{name}",
        type="container",
        platformCapabilities=["FARGATE"],
        retryStrategy={"attempts": 1},
        containerProperties={
            "image": "public.ecr.aws/docker/library/busybox:1.37.0",
            "command": ["echo", "Ref::scheduledTime"],
            "resourceRequirements": [{"type": "VCPU", "value": "0.25"}, {"type": "MEMORY", "value": "512"}],
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {"awslogs-group": outputs["JobLogGroupName"]},
            },
        },
    )["jobDefinitionArn"]
    entry = {
        "jobDefinition": definition,
        "jobQueue": outputs["JobQueueArn"],
        "submitMode": "PER_OBJECT",
        "priority": "normal",
        "routed": "false",
        "scheduleExpression": schedule,
        "scheduleTimezone": timezone,
        "scheduleEnabled": "true" if schedule else "false",
        "expectSuccessEvery": expect_success_every,
    }
    boto3.client("ssm").put_parameter(
        Name=f"{outputs['JobTypesPath']}/{name}", Type="String", Value=json.dumps(entry), Overwrite=True
    )
    if schedule:
        function = boto3.client("lambda").get_function(FunctionName=outputs["ScheduleSubmitFunctionName"])
        extra = {"StartDate": start} if start else {}
        boto3.client("scheduler").create_schedule(
            Name=f"{local.stack.name}-{name}-schedule",
            ScheduleExpression=schedule,
            ScheduleExpressionTimezone=timezone,
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={
                "Arn": function["Configuration"]["FunctionArn"],
                "RoleArn": f"arn:aws:iam::123456789012:role/{local.stack.name}-scheduler",
                "Input": json.dumps(
                    {
                        "scheduledTime": "<aws.scheduler.scheduled-time>",
                        "scheduleArn": "<aws.scheduler.schedule-arn>",
                        "parameters": {"mode": "catch-up"},
                        "jobType": name,
                    }
                ),
            },
            **extra,
        )
    return entry


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def fire(local: Emulator, job_type: str, when: str) -> dict[str, Any]:
    """The job type's schedule fires at `when` (the Input Scheduler sends, to ScheduleSubmitFunction)."""
    schedule_name = f"{local.stack.name}-{job_type}-schedule"
    schedule = boto3.client("scheduler").get_schedule(Name=schedule_name)
    event = json.loads(
        schedule["Target"]["Input"]
        .replace("<aws.scheduler.scheduled-time>", when)
        .replace("<aws.scheduler.schedule-arn>", schedule["Arn"])
    )
    invocation = local.invoke("ScheduleSubmitFunction", event)
    assert invocation.error is None
    return dict(invocation.result)


# --- the stack --------------------------------------------------------------------------------------


def test_an_unknown_stack_is_one_line_and_exit_code_2(deployed: Emulator):
    result = CliRunner(mix_stderr=False).invoke(cli, ["--stack", "no-such-stack", "status"])

    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "Error: no stack no-such-stack in us-east-1: check --stack, --config-env and --region"
    ]


def test_a_stack_that_is_not_batch_dispatch_is_refused_and_nothing_is_submitted(deployed: Emulator):
    boto3.client("cloudformation").create_stack(
        StackName="someone-elses",
        TemplateBody=json.dumps({"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}}),
    )
    before = len(deployed.jobs_submitted())

    result = CliRunner(mix_stderr=False).invoke(cli, ["run", "default", "--stack", "someone-elses"])

    assert result.exit_code == 2
    assert "someone-elses is not a batch-dispatch stack" in result.stderr
    assert len(deployed.jobs_submitted()) == before


def test_missing_credentials_are_one_line_saying_what_to_do(deployed: Emulator):
    no_credentials = {
        "AWS_ACCESS_KEY_ID": None,
        "AWS_SECRET_ACCESS_KEY": None,
        "AWS_SESSION_TOKEN": None,
        "AWS_PROFILE": None,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": None,
    }

    result = command(deployed, "status", env=no_credentials)

    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: no usable AWS credentials")
    assert "AWS_PROFILE" in line


# --- status -----------------------------------------------------------------------------------------


def test_status_of_a_fresh_stack_is_all_clear(local: Emulator):
    result = command(local, "status")

    assert result.exit_code == 0, result.output
    assert "default" in result.stdout
    assert "rate(3 hours)" in result.stdout, result.stdout
    assert "All clear." in result.stdout


def test_status_json_has_each_job_type_and_each_dlq(local: Emulator):
    add_job_type(local, "nightly", schedule="cron(0 2 * * ? *)", timezone="Europe/Berlin")
    local.tick("2026-11-23T12:00:00Z")

    result = command(local, "status", "--json")

    assert result.exit_code == 0, result.output
    status = document(result)
    assert set(status) == STATUS_KEYS
    default, nightly = status["jobTypes"]
    assert set(default) == set(nightly) == JOB_TYPE_KEYS
    assert (default["name"], nightly["name"]) == ("default", "nightly")
    assert set(default["schedule"]) == set(nightly["schedule"]) == SCHEDULE_KEYS
    assert set(default["lastSuccess"]) == LAST_JOB_KEYS
    assert all(set(queue) == DLQ_DEPTH_KEYS for queue in status["deadLetterQueues"])
    assert default["lastSuccess"]["jobName"].startswith(local.stack.name)
    assert default["schedule"]["expression"] == "rate(3 hours)"
    next_run = datetime.fromisoformat(nightly["schedule"]["nextRun"].replace("Z", "+00:00"))
    checked = datetime.fromisoformat(status["checkedAt"].replace("Z", "+00:00"))
    assert next_run == Schedule("cron(0 2 * * ? *)", "Europe/Berlin").next_after(checked)
    assert {q["name"]: q["messages"] for q in status["deadLetterQueues"]} == {
        "FailureNotifyDLQ": 0,
        "IntakeDLQ": 0,
        "ScheduleDLQ": 0,
        "StormDLQ": 0,
    }


def test_status_needs_attention_when_a_dlq_holds_a_message(local: Emulator):
    local.invoke("ScheduleSubmitFunction", load_event("schedule/malformed.json"))

    result = command(local, "status", "--json")

    assert result.exit_code == 1
    assert document(result)["attention"] == ["ScheduleDLQ: 1 message(s) parked"]


def test_status_needs_attention_after_a_failure_in_the_last_24_hours(local: Emulator):
    with local.jobs_fail():
        failed = local.tick("2026-11-23T12:00:00Z")

    result = command(local, "status")

    assert result.exit_code == 1
    assert "default: 1 failed in the last 24 h" in result.stdout
    last_failure = document(command(local, "status", "--json"))["jobTypes"][0]["lastFailure"]
    assert set(last_failure) == LAST_JOB_KEYS
    assert last_failure["jobId"] == failed.result["jobId"]


def test_status_needs_attention_when_a_schedule_has_not_succeeded_for_longer_than_its_period(local: Emulator):
    add_job_type(local, "hourly", schedule="rate(1 hour)", start=datetime.now(UTC) - timedelta(days=1))

    result = command(local, "status", "--json")

    assert result.exit_code == 1
    (reason,) = document(result)["attention"]
    assert reason.startswith("hourly: no success since its schedule started")


# --- run --------------------------------------------------------------------------------------------


def test_run_submits_a_job_of_the_job_type_through_the_schedules_path(deployed: Emulator):
    name = unique("report")
    entry = add_job_type(deployed, name)

    result = command(deployed, "run", name, "--param", "day=2026-11-22", "--json")

    assert result.exit_code == 0, result.output
    submitted = document(result)
    assert set(submitted) == RUN_KEYS
    (job,) = jobs_of(deployed, name)
    assert job["jobId"] == submitted["jobId"]
    assert submitted["duplicate"] is False
    assert job["jobName"].startswith(f"{name}-run-")
    assert (job["jobQueue"], job["jobDefinition"]) == (entry["jobQueue"], entry["jobDefinition"])
    assert job["parameters"]["day"] == "2026-11-22"


def test_run_twice_with_one_idempotency_key_submits_once(deployed: Emulator):
    name = unique("report")
    add_job_type(deployed, name)

    first = command(deployed, "run", name, "--idempotency-key", "ticket-42")
    second = command(deployed, "run", name, "--idempotency-key", "ticket-42")

    (job,) = jobs_of(deployed, name)
    assert (first.exit_code, second.exit_code) == (0, 0)
    assert "already submitted" in second.stdout.lower()
    assert job["jobId"] in first.stdout
    assert job["jobId"] in second.stdout


def test_run_without_a_key_submits_a_new_job_each_time(deployed: Emulator):
    name = unique("report")
    add_job_type(deployed, name)

    command(deployed, "run", name)
    command(deployed, "run", name)

    assert len(jobs_of(deployed, name)) == 2


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["run", "no-such-type"], "has no job type 'no-such-type'; it has: default"),
        (["run", "default", "--param", "day"], "--param takes NAME=VALUE, got 'day'"),
        (["run", "default", "--idempotency-key", " "], "--idempotency-key is empty"),
    ],
)
def test_run_with_bad_input_is_exit_code_2_and_submits_nothing(local: Emulator, args, says):
    result = command(local, *args)

    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert says in line
    assert local.jobs_submitted() == []


def test_run_wait_follows_the_job_to_its_end(deployed: Emulator):
    name = unique("report")
    add_job_type(deployed, name)

    result = command(deployed, "run", name, "--wait", "--json")

    assert result.exit_code == 0, result.output
    finished = document(result)
    assert set(finished) == RUN_WAIT_KEYS
    assert finished["status"] == "SUCCEEDED"
    assert finished["logLines"] == []


def test_run_wait_exits_1_when_the_job_fails(deployed: Emulator):
    name = unique("report")
    add_job_type(deployed, name)

    with deployed.jobs_fail():
        result = command(deployed, "run", name, "--wait")

    assert result.exit_code == 1
    assert ": FAILED" in result.stdout


def test_run_json_on_stdout_is_one_document_in_a_real_process(deployed: Emulator):
    # The console script's stdout: the shared package's JSON logs must not mix into the document.
    name = unique("report")
    add_job_type(deployed, name)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(REPO_ROOT / p) for p in ("cli", "layers/common/python")),
    }

    finished = subprocess.run(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "batch_dispatch_cli", "--stack", deployed.stack.name, "run", name, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )

    assert finished.returncode == 0, finished.stderr
    assert json.loads(finished.stdout)["jobId"] == jobs_of(deployed, name)[0]["jobId"]


# --- backfill ---------------------------------------------------------------------------------------


def test_backfill_submits_the_missed_ticks_and_skips_the_one_that_ran(deployed: Emulator):
    name = unique("nightly")
    add_job_type(deployed, name, schedule="cron(0 2 * * ? *)", timezone="Europe/Berlin")
    ran = fire(deployed, name, "2026-11-21T01:00:00Z")  # 02:00 in Berlin

    result = command(deployed, "backfill", name, "--from", "2026-11-20", "--to", "2026-11-23", "--json")

    assert result.exit_code == 0, result.output
    report = document(result)
    assert set(report) == BACKFILL_KEYS
    assert set(report["schedule"]) == BACKFILL_SCHEDULE_KEYS
    assert all(set(tick) == TICK_KEYS for tick in report["ticks"])
    assert [(t["scheduledTime"], t["outcome"]) for t in report["ticks"]] == [
        ("2026-11-20T01:00:00Z", "submitted"),
        ("2026-11-21T01:00:00Z", "skipped"),
        ("2026-11-22T01:00:00Z", "submitted"),
    ]
    assert report["ticks"][1]["jobId"] == ran["jobId"]
    assert report["counts"] == {"submitted": 2, "skipped": 1}
    jobs = jobs_of(deployed, name)
    assert sorted(j["parameters"]["scheduledTime"] for j in jobs) == [
        t["scheduledTime"] for t in report["ticks"]
    ]
    assert {j["parameters"]["mode"] for j in jobs} == {"catch-up"}  # the schedule's own parameters


def test_backfill_repeated_submits_nothing_more(deployed: Emulator):
    name = unique("nightly")
    add_job_type(deployed, name, schedule="cron(0 2 * * ? *)")
    window = ["--from", "2026-11-20T00:00:00Z", "--to", "2026-11-23T00:00:00Z"]

    first = command(deployed, "backfill", name, *window, "--json")
    again = command(deployed, "backfill", name, *window, "--json")

    assert document(first)["counts"] == {"submitted": 3, "skipped": 0}
    assert document(again)["counts"] == {"submitted": 0, "skipped": 3}
    assert len(jobs_of(deployed, name)) == 3


def test_backfill_of_the_default_job_type_skips_what_its_schedule_submitted(deployed: Emulator):
    scheduler = boto3.client("scheduler")
    schedule = scheduler.get_schedule(Name=deployed.schedules()[0].name)
    update = {k: schedule[k] for k in ("Name", "FlexibleTimeWindow", "Target", "State")}
    scheduler.update_schedule(**update, ScheduleExpression="cron(0 */6 * * ? *)")
    deployed.tick("2026-10-01T06:00:00Z")
    before = len(deployed.jobs_submitted())

    result = command(deployed, "backfill", "default", "--from", "2026-10-01", "--to", "2026-10-02", "--json")

    assert [t["outcome"] for t in document(result)["ticks"]] == [
        "submitted",
        "skipped",
        "submitted",
        "submitted",
    ]
    assert len(deployed.jobs_submitted()) == before + 3


def test_backfill_dry_run_lists_the_ticks_and_submits_nothing(deployed: Emulator):
    name = unique("nightly")
    add_job_type(deployed, name, schedule="cron(0 2 * * ? *)")
    fire(deployed, name, "2026-11-21T02:00:00Z")

    window = ["--from", "2026-11-20", "--to", "2026-11-22"]

    result = command(deployed, "backfill", name, *window, "--dry-run")

    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("2026-")]
    assert [row[:3] for row in rows] == [
        ["2026-11-20T02:00:00Z", "would", "submit"],
        ["2026-11-21T02:00:00Z", "already", "ran"],
    ]
    as_json = document(command(deployed, "backfill", name, *window, "--dry-run", "--json"))
    assert set(as_json) == BACKFILL_KEYS
    would, ran = as_json["ticks"]
    assert set(would) == set(ran) == TICK_KEYS
    assert (would["jobId"], would["jobName"]) == (None, None)
    assert as_json["counts"] == {"would-submit": 1, "already-ran": 1}
    assert len(jobs_of(deployed, name)) == 1


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--from", "yesterday", "--to", "now"], "'yesterday' is not a time"),
        (["--from", "2026-11-22", "--to", "2026-11-20"], "is not before --to"),
        (["--from", "2026-01-01", "--to", "2026-02-01"], "more than 1000: narrow the range, or pass --yes"),
    ],
)
def test_backfill_with_bad_input_is_exit_code_2_and_submits_nothing(deployed: Emulator, args, says):
    name = unique("minutely")
    add_job_type(deployed, name, schedule="cron(* * * * ? *)")

    result = command(deployed, "backfill", name, *args)

    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert says in line
    assert jobs_of(deployed, name) == []


def test_backfill_of_a_job_type_without_a_schedule_says_to_run_it(deployed: Emulator):
    name = unique("adhoc")
    add_job_type(deployed, name)

    result = command(deployed, "backfill", name, "--from", "-2d", "--to", "now")

    assert result.exit_code == 2
    assert f"{name} has no schedule: use `batch-dispatch run {name}` instead" in result.stderr


def test_backfill_shows_a_progress_bar_only_on_a_terminal(deployed: Emulator):
    name = unique("nightly")
    add_job_type(deployed, name, schedule="cron(0 2 * * ? *)")
    window = ["--from", "2026-11-01", "--to", "2026-11-04"]

    piped = command(deployed, "backfill", name, *window)
    terminal = command(deployed, "backfill", name, *window, env={"FORCE_COLOR": "1", "TERM": "xterm"})

    assert "Submitting 3 ticks" not in piped.stdout
    assert "\x1b[" not in piped.stdout  # no colours either
    assert "Submitting 3 ticks" in terminal.stdout
    assert "3/3" in terminal.stdout


# --- logs -------------------------------------------------------------------------------------------


def write_log_lines(local: Emulator, job_id: str, lines: list[str]) -> str:
    """Log `lines` as the job's container would: in the stream of its last attempt, or of the attempt
    it is running (Batch lists an attempt only once it has ended)."""
    (job,) = boto3.client("batch").describe_jobs(jobs=[job_id])["jobs"]
    group = local.stack.outputs["JobLogGroupName"]
    container = job["attempts"][-1]["container"] if job["attempts"] else job["container"]
    stream = container["logStreamName"]
    cloudwatch = boto3.client("logs")
    with contextlib.suppress(cloudwatch.exceptions.ResourceAlreadyExistsException):
        cloudwatch.create_log_stream(logGroupName=group, logStreamName=stream)
    now = int(time.time() * 1000)
    cloudwatch.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": now + n, "message": line} for n, line in enumerate(lines)],
    )
    return stream


def test_logs_prints_the_last_attempts_stream(deployed: Emulator):
    name = unique("report")
    add_job_type(deployed, name)
    job_id = document(command(deployed, "run", name, "--json"))["jobId"]
    stream = write_log_lines(deployed, job_id, ["starting", "wrote 12 rows", "done"])

    text = command(deployed, "logs", job_id)
    as_json = command(deployed, "logs", job_id, "--json", "--follow")

    assert text.exit_code == 0, text.output
    assert text.stdout.splitlines() == ["starting", "wrote 12 rows", "done"]
    logged = document(as_json)
    assert set(logged) == LOGS_KEYS
    assert all(set(line) == LOG_LINE_KEYS for line in logged["lines"])
    assert (logged["attempt"], logged["logStream"]) == (1, stream)
    assert logged["logGroup"] == deployed.stack.outputs["JobLogGroupName"]
    assert [line["message"] for line in logged["lines"]] == ["starting", "wrote 12 rows", "done"]


class FollowedLines:
    """`batch-dispatch logs JOB_ID --follow` in a process of its own, its stdout read line by line as it
    prints (a person watching a terminal sees the same lines at the same moments)."""

    def __init__(self, local: Emulator, job_id: str) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(str(REPO_ROOT / p) for p in ("cli", "layers/common/python")),
            "PYTHONUNBUFFERED": "1",
        }
        self.process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            [
                sys.executable,
                "-m",
                "batch_dispatch_cli",
                "--stack",
                local.stack.name,
                "logs",
                job_id,
                "--follow",
                "--poll-seconds",
                str(FOLLOW_POLL_SECONDS),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)  # the command ended

    def next(self) -> str | None:
        """The next line printed (None: the command ended)."""
        try:
            return self.lines.get(timeout=FOLLOW_TIMEOUT_SECONDS)
        except queue.Empty:
            pytest.fail(f"the command printed nothing more within {FOLLOW_TIMEOUT_SECONDS} s")

    def until_end(self) -> tuple[list[str], int]:
        """The lines printed until the command ended, and its exit code."""
        rest = list(iter(self.next, None))
        return rest, self.process.wait(timeout=FOLLOW_TIMEOUT_SECONDS)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def test_logs_follow_prints_a_running_jobs_lines_as_they_are_logged_until_it_ends(deployed: Emulator):
    # Given a RUNNING job that has logged its first line
    name = unique("report")
    add_job_type(deployed, name)
    with deployed.jobs_keep_running():
        job_id = document(command(deployed, "run", name, "--json"))["jobId"]
    write_log_lines(deployed, job_id, ["starting"])

    # When its log is followed
    followed = FollowedLines(deployed, job_id)
    try:
        # Then what it has logged is printed, and what it logs while it runs is printed as it comes
        assert followed.next() == "starting"
        write_log_lines(deployed, job_id, ["wrote 12 rows"])
        assert followed.next() == "wrote 12 rows"
        assert followed.process.poll() is None  # still following: the job runs
        # And once the job has ended, its last lines are printed and the command ends with 0
        write_log_lines(deployed, job_id, ["done"])
        deployed.running_jobs.clear()
        rest, exit_code = followed.until_end()
    finally:
        followed.stop()
    assert (rest, exit_code) == (["done"], 0)


def test_run_wait_ends_with_the_log_tail_when_there_is_one(deployed: Emulator):
    name = unique("report")
    add_job_type(deployed, name)
    job_id = document(command(deployed, "run", name, "--json", "--idempotency-key", "tail"))["jobId"]
    write_log_lines(deployed, job_id, ["one", "two"])

    result = command(deployed, "run", name, "--idempotency-key", "tail", "--wait")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-3:] == ["Last 2 log lines:", "  one", "  two"]


def test_logs_prints_what_a_job_failed_in_the_emulator_logged(deployed: Emulator):
    # Given a job whose container logs two lines and is killed (the emulator's jobs_fail, as in make demo)
    name = unique("report")
    add_job_type(deployed, name)
    with deployed.jobs_fail(exit_code=137, reason="OutOfMemoryError", log_lines=["loading", "killed"]):
        job_id = document(command(deployed, "run", name, "--json"))["jobId"]

    # When the operator reads its logs
    result = command(deployed, "logs", job_id)

    # Then they are the lines it logged, in the stream Batch describes for its attempt, with its exit
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["loading", "killed"]
    (job,) = boto3.client("batch").describe_jobs(jobs=[job_id])["jobs"]
    assert (job["status"], job["attempts"][-1]["container"]["exitCode"]) == ("FAILED", 137)


@pytest.mark.parametrize(
    ("job", "args", "says"),
    [
        ("missing", [], "Batch has no job"),
        ("ran-once", ["--attempt", "2"], "has 1 attempt(s), not 2"),
    ],
)
def test_logs_of_an_unknown_job_or_attempt_is_exit_code_2(deployed: Emulator, job, args, says):
    job_id = str(uuid.uuid4())
    if job == "ran-once":
        job_id = document(command(deployed, "run", "default", "--json"))["jobId"]

    result = command(deployed, "logs", job_id, *args)

    assert result.exit_code == 2
    assert says in result.stderr


# --- rerun ------------------------------------------------------------------------------------------


def test_rerun_submits_one_rerun_however_often_it_is_asked(deployed: Emulator):
    name = unique("report")
    add_job_type(deployed, name)
    with deployed.jobs_fail():
        failed = document(command(deployed, "run", name, "--json"))["jobId"]

    first = command(deployed, "rerun", failed, "--json")
    second = command(deployed, "rerun", failed, "--json")

    assert (first.exit_code, second.exit_code) == (0, 0), first.output + second.output
    assert set(document(first)) == set(document(second)) == RERUN_KEYS
    (rerun_job,) = document(first)["jobs"]
    assert set(rerun_job) == {"jobId", "jobName"}
    assert document(second)["duplicate"] is True
    assert document(second)["jobs"] == [rerun_job]
    assert sorted(j["jobId"] for j in jobs_of(deployed, name)) == sorted([failed, rerun_job["jobId"]])


def test_rerun_of_an_unknown_job_is_exit_code_2_and_submits_nothing(deployed: Emulator):
    before = len(deployed.jobs_submitted())

    result = command(deployed, "rerun", str(uuid.uuid4()))

    assert result.exit_code == 2
    assert "Batch has no job" in result.stderr
    assert len(deployed.jobs_submitted()) == before


def test_rerun_of_a_running_job_is_refused_and_works_once_it_has_ended(deployed: Emulator):
    # Given a job that is still RUNNING
    name = unique("report")
    add_job_type(deployed, name)
    with deployed.jobs_keep_running():
        running = document(command(deployed, "run", name, "--json"))["jobId"]

    # When it is rerun
    refused = command(deployed, "rerun", running)

    # Then the command refuses in one line, and Batch holds no other job
    assert refused.exit_code == 2
    (line,) = refused.stderr.strip().splitlines()
    assert line.endswith("is RUNNING: rerun it once it has ended (SUCCEEDED or FAILED).")
    assert [j["jobId"] for j in jobs_of(deployed, name)] == [running]
    # And the refusal kept no claim on the request key: once the job has ended, the rerun goes through
    deployed.running_jobs.clear()
    ended = command(deployed, "rerun", running, "--json")
    assert ended.exit_code == 0, ended.output
    assert document(ended)["duplicate"] is False
    assert len(jobs_of(deployed, name)) == 2


def test_rerun_failed_children_only_of_a_job_that_is_not_an_array_is_refused(deployed: Emulator):
    name = unique("report")
    add_job_type(deployed, name)
    with deployed.jobs_fail():
        failed = document(command(deployed, "run", name, "--json"))["jobId"]

    result = command(deployed, "rerun", failed, "--failed-children-only")

    assert result.exit_code == 2
    assert "is not an array job: rerun it whole instead" in result.stderr
    assert [j["jobId"] for j in jobs_of(deployed, name)] == [failed]


@pytest.fixture
def array_mode(module_emulator: Emulator) -> Iterator[Emulator]:
    """A fresh account with the stack deployed in array mode (SubmitMode=ARRAY); afterwards the module's
    stack again, as the tests that take `deployed` expect it."""
    parameters = module_emulator.parameter_overrides
    module_emulator.parameter_overrides = {**parameters, "SubmitMode": "ARRAY"}
    fresh_account(module_emulator).deploy()
    yield module_emulator
    module_emulator.parameter_overrides = parameters
    fresh_account(module_emulator).deploy()


def manifest_keys(bucket: str, key: str) -> list[str]:
    """The object keys a manifest lists, one per array child, in child order."""
    body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return [json.loads(line)["key"] for line in body.splitlines()]


def test_rerun_failed_children_only_reruns_just_their_objects_once(array_mode: Emulator):
    # Given an array job of 3 uploads whose children 1 and 2 FAILED (child 0 succeeded)
    local = array_mode
    for index in range(3):
        local.upload(f"incoming/part-{index}.csv")
    with local.jobs_fail(exit_code=2):
        local.drain()
    (parent,) = local.jobs_submitted()
    set_batch_status(f"{parent['jobId']}:0", "SUCCEEDED")
    bucket, original = parent["parameters"]["manifestBucket"], parent["parameters"]["manifestKey"]
    objects = manifest_keys(bucket, original)

    # When its failed children are rerun, twice
    first = command(local, "rerun", parent["jobId"], "--failed-children-only", "--json")
    again = command(local, "rerun", parent["jobId"], "--failed-children-only", "--json")

    # Then one array job of 2 children reads a new manifest of exactly children 1 and 2's objects
    assert (first.exit_code, again.exit_code) == (0, 0), first.output + again.output
    rerun = document(first)
    assert set(rerun) == RERUN_KEYS
    assert (rerun["children"], rerun["duplicate"]) == ([1, 2], False)
    (rerun_job,) = [j for j in local.jobs_submitted() if j["jobId"] != parent["jobId"]]
    assert rerun["jobs"] == [{"jobId": rerun_job["jobId"], "jobName": rerun_job["jobName"]}]
    assert rerun_job["arrayProperties"]["size"] == 2
    assert rerun_job["parameters"]["manifestKey"] == rerun["manifestKey"] != original
    assert manifest_keys(bucket, rerun["manifestKey"]) == objects[1:]
    # And the repeat submitted nothing: it names the first rerun's job
    assert document(again)["duplicate"] is True
    assert document(again)["jobs"] == rerun["jobs"]
    assert len(local.jobs_submitted()) == 2


# --- dlq --------------------------------------------------------------------------------------------


def park_in_intake_dlq(local: Emulator) -> str:
    local.invoke("S3SubmitFunction", load_event("s3/sqs-malformed.json"))
    (body,) = local.dlq_messages()["IntakeDLQ"]
    return body


def test_dlq_show_prints_what_is_parked_without_consuming_it(local: Emulator):
    body = park_in_intake_dlq(local)

    result = command(local, "dlq", "show", "--queue", "IntakeDLQ")
    as_json = document(command(local, "dlq", "--json"))

    assert result.exit_code == 0, result.output
    assert "== IntakeDLQ: ~1 message(s)" in result.stdout
    assert body in result.stdout
    assert set(as_json) == DLQ_SHOW_KEYS
    shown = {q["name"]: q for q in as_json["queues"]}
    assert set(shown) == {"FailureNotifyDLQ", "IntakeDLQ", "ScheduleDLQ", "StormDLQ"}
    assert all(set(queue) == DLQ_SHOWN_QUEUE_KEYS for queue in shown.values())
    (message,) = shown["IntakeDLQ"]["shown"]
    assert set(message) == DLQ_MESSAGE_KEYS
    assert [m["body"] for m in shown["IntakeDLQ"]["shown"]] == [body]
    assert local.dlq_messages()["IntakeDLQ"] == [body]  # still there for the alarm and a redrive


def test_dlq_show_says_why_a_message_was_parked_in_plain_words(local: Emulator):
    # Given a message parked with the reason the loop guard gives (message attributes)
    boto3.client("sqs").send_message(
        QueueUrl=local.stack.queue_url("IntakeDLQ"),
        MessageBody="{}",
        MessageAttributes={
            "ErrorCode": {"DataType": "String", "StringValue": "LoopGuardTripped"},
            "ErrorMessage": {"DataType": "String", "StringValue": "lineage started 5 jobs in 3600 s"},
        },
    )

    result = command(local, "dlq", "show", "--queue", "IntakeDLQ")

    # Then the reason is one readable line under the message, not a Python dict
    assert result.exit_code == 0, result.output
    assert "   parked: LoopGuardTripped: lineage started 5 jobs in 3600 s" in result.stdout.splitlines()
    assert "{'" not in result.stdout


def test_a_dry_run_redrive_of_the_intake_dlq_names_the_move_and_changes_nothing(local: Emulator):
    # moto has no StartMessageMoveTask (the API the real redrive uses), so only the dry run runs here.
    body = park_in_intake_dlq(local)

    result = command(local, "dlq", "redrive", "--queue", "IntakeDLQ", "--dry-run")
    as_json = command(local, "dlq", "redrive", "--queue", "IntakeDLQ", "--dry-run", "--json")

    assert "move IntakeDLQ -> IntakeQueue (dry run)" in result.stdout
    assert set(document(as_json)) == REDRIVE_MOVE_DRY_RUN_KEYS
    assert (document(as_json)["target"], document(as_json)["messages"]) == ("IntakeQueue", 1)
    assert local.dlq_messages()["IntakeDLQ"] == [body]


def test_a_dry_run_redrive_of_a_function_dlq_changes_nothing(local: Emulator):
    event = load_event("schedule/malformed.json")
    local.invoke("ScheduleSubmitFunction", event)

    result = command(local, "dlq", "redrive", "--queue", "ScheduleDLQ", "--dry-run", "--json")

    assert result.exit_code == 0
    assert set(document(result)) == REDRIVE_REINVOKE_DRY_RUN_KEYS
    assert len(document(result)["wouldReinvoke"]) == 1
    assert [json.loads(b) for b in local.dlq_messages()["ScheduleDLQ"]] == [event]


def redrive_document(result: Result) -> Any:
    """The redrive's document. moto, running in this process, prints to stdout when asked to invoke a
    function (it has no Docker to run it in): that text comes first."""
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout[result.stdout.index("{\n") :])


def test_a_redrive_of_a_function_dlq_reinvokes_each_event_once_and_empties_it(local: Emulator):
    local.invoke("ScheduleSubmitFunction", load_event("schedule/malformed.json"))
    local.invoke("ScheduleSubmitFunction", {**load_event("schedule/malformed.json"), "scheduledTime": "soon"})

    first = redrive_document(command(local, "dlq", "redrive", "--queue", "ScheduleDLQ", "--json"))
    again = redrive_document(command(local, "dlq", "redrive", "--queue", "ScheduleDLQ", "--json"))

    assert set(first) == set(again) == REDRIVE_REINVOKE_KEYS
    assert (first["reinvoked"], again["reinvoked"]) == (2, 0)
    assert first["target"] == local.stack.outputs["ScheduleSubmitFunctionName"]
    assert local.dlq_messages()["ScheduleDLQ"] == []


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["show", "--queue", "NoSuchDLQ"], "has no DLQ 'NoSuchDLQ'; --queue takes one of: FailureNotifyDLQ"),
        (["redrive"], "redrive needs --queue, one of: FailureNotifyDLQ"),
    ],
)
def test_dlq_with_bad_input_is_exit_code_2_and_leaves_the_messages(local: Emulator, args, says):
    body = park_in_intake_dlq(local)

    result = command(local, "dlq", *args)

    assert result.exit_code == 2
    assert says in result.stderr
    assert local.dlq_messages()["IntakeDLQ"] == [body]
