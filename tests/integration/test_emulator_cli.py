"""`python -m emulator invoke` prints the documented JSON document (ARCHITECTURE.md contract)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import EVENTS_DIR, REPO_ROOT

pytestmark = pytest.mark.integration


def run_emulator(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "emulator", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_invoke_prints_one_json_document_with_the_contract_keys():
    tick = str(EVENTS_DIR / "schedule/scheduler-tick.json")

    completed = run_emulator("invoke", "ScheduleSubmitFunction", tick, tick)

    assert completed.returncode == 0, completed.stderr[-2000:]
    document = json.loads(completed.stdout)
    assert set(document) == {"invocations", "jobs_submitted", "slack_messages", "dlq_messages", "schedules"}
    assert [i["event"] for i in document["invocations"]] == [tick, tick]
    assert [i["error"] for i in document["invocations"]] == [None, None]
    assert document["invocations"][1]["result"]["duplicate"] is True
    (job,) = document["jobs_submitted"]
    assert set(job) == {
        "jobName",
        "jobQueue",
        "jobDefinition",
        "parameters",
        "containerOverrides",
        "job_type",
    }
    assert job["parameters"]["mode"] == "full"
    assert job["job_type"] == "default"
    assert document["slack_messages"] == []
    assert all(bodies == [] for bodies in document["dlq_messages"].values())


def test_invoke_names_the_functions_when_given_an_unknown_one():
    completed = run_emulator("invoke", "NoSuchFunction", str(EVENTS_DIR / "schedule/scheduler-tick.json"))

    assert completed.returncode != 0
    assert "ScheduleSubmitFunction" in completed.stderr


def test_upload_routes_each_key_to_its_job_type():
    completed = run_emulator(
        "upload", "incoming/csv/a b+c.csv", "images/x.png", "--job-types", "job-types/examples.yaml"
    )

    assert completed.returncode == 0, completed.stderr[-2000:]
    document = json.loads(completed.stdout)
    jobs = {job["parameters"]["key"]: job["job_type"] for job in document["jobs_submitted"]}
    assert jobs == {"incoming/csv/a b+c.csv": "csv-ingest", "images/x.png": "thumbnails"}
    assert {s["job_type"] for s in document["schedules"]} == {"default", "nightly-report"}


def test_tick_fires_the_job_types_schedule_and_refuses_one_without():
    ticked = run_emulator(
        "tick", "nightly-report", "--time", "2026-11-23T01:00:00Z", "--job-types", "job-types/examples.yaml"
    )
    refused = run_emulator("tick", "csv-ingest", "--job-types", "job-types/examples.yaml")

    assert ticked.returncode == 0, ticked.stderr[-2000:]
    (job,) = json.loads(ticked.stdout)["jobs_submitted"]
    assert job["job_type"] == "nightly-report"
    assert job["parameters"]["scheduledTime"] == "2026-11-23T01:00:00Z"
    assert refused.returncode != 0
    assert "no schedule submits job type 'csv-ingest'" in refused.stderr
    assert "nightly-report" in refused.stderr
