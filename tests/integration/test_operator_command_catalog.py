"""`batch-dispatch` against template.yaml with job-types/examples.yaml's job types added, deployed in moto:
`run` submits what each job type's schedule would (its Input's parameters, `scheduledTime`,
`scheduleName`), `--param` over it; `status` warns of job types with the same upload route.

Scope: the schedules are the ones the emulator created in Scheduler from the template (the stack's own
and nightly-report's nested one), fired with the Input Scheduler sends; jobs are read back from moto
Batch. `run` tests share the module's stack (`deployed`) and find their jobs by id; `status` tests take a
fresh account (`local`).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from emulator.core import Emulator
from tests.conftest import REPO_ROOT
from tests.integration.operator_cli import command, document

pytestmark = pytest.mark.integration

EXAMPLES = REPO_ROOT / "job-types" / "examples.yaml"
DEFINITION_DEFAULT = "none"  # the job definitions' default for a parameter nobody set


@pytest.fixture(scope="module")
def emulator_job_types() -> Path:
    return EXAMPLES


@pytest.fixture
def deployed(module_emulator: Emulator) -> Emulator:
    """The module's stack, not redeployed (the emulator deployed it when it started)."""
    return module_emulator


def job(local: Emulator, job_id: str) -> dict[str, Any]:
    """The job as moto Batch describes it (the job definition's defaults filled in)."""
    (described,) = boto3.client("batch").describe_jobs(jobs=[job_id])["jobs"]
    return dict(described)


def scheduled_job(local: Emulator, job_type: str) -> dict[str, Any]:
    """The job the job type's schedule submits for a tick now."""
    when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    invocation = local.tick(when, job_type=job_type)
    assert invocation is not None
    assert invocation.error is None
    return job(local, invocation.result["jobId"])


def without_time(parameters: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in parameters.items() if name != "scheduledTime"}


# --- run: what the schedule would submit ------------------------------------------------------------


@pytest.mark.parametrize("job_type", ["nightly-report", "default"])
def test_run_submits_the_job_the_schedule_would(deployed: Emulator, job_type: str):
    # Given the job type's schedule, and the job one of its ticks submits
    ticked = scheduled_job(deployed, job_type)

    # When the job type is run by hand
    result = command(deployed, "run", job_type, "--json")

    # Then Batch holds a job of the same definition and queue, with the tick's parameters (its
    # ScheduleParameters, scheduleName) and the time of the request as scheduledTime
    assert result.exit_code == 0, result.output
    submitted = document(result)
    run = job(deployed, submitted["jobId"])
    assert (run["jobDefinition"], run["jobQueue"]) == (ticked["jobDefinition"], ticked["jobQueue"])
    assert without_time(run["parameters"]) == without_time(ticked["parameters"])
    assert run["parameters"]["scheduleName"] == deployed.schedule_of(job_type).name
    requested = datetime.fromisoformat(run["parameters"]["scheduledTime"].replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - requested).total_seconds()) < 120
    assert submitted["parameters"].items() <= run["parameters"].items()


def test_the_nightly_report_run_carries_its_schedules_report(deployed: Emulator):
    result = command(deployed, "run", "nightly-report", "--json")

    run = job(deployed, document(result)["jobId"])
    assert run["parameters"]["report"] == "daily-sales"  # ScheduleParameters in job-types/examples.yaml
    assert run["parameters"]["scheduleName"] != DEFINITION_DEFAULT


def test_a_param_overrides_one_of_the_schedules_parameters_and_keeps_the_others(deployed: Emulator):
    result = command(
        deployed, "run", "nightly-report", "--param", "report=weekly-sales", "--param", "day=2026-11-22"
    )

    assert result.exit_code == 0, result.output
    (job_id,) = re.findall(r"\(([0-9a-f-]{36})\)", result.stdout)
    run = job(deployed, job_id)
    assert run["parameters"]["report"] == "weekly-sales"
    assert run["parameters"]["day"] == "2026-11-22"
    assert run["parameters"]["scheduleName"] == deployed.schedule_of("nightly-report").name
    lines = result.stdout.splitlines()
    said = lines[
        lines.index(f"Parameters (schedule {deployed.schedule_of('nightly-report').name}'s, then --param):") :
    ]
    assert said[1:3] == ["  day=2026-11-22", "  report=weekly-sales"]
    assert said[3].startswith("  scheduleName=")


def test_a_job_type_without_a_schedule_runs_with_its_job_definitions_defaults(deployed: Emulator):
    result = command(
        deployed,
        "run",
        "csv-ingest",
        "--param",
        "bucket=landing",
        "--param",
        "key=incoming/csv/a.csv",
        "--json",
    )

    assert result.exit_code == 0, result.output
    submitted = document(result)
    assert submitted["parameters"] == {"bucket": "landing", "key": "incoming/csv/a.csv"}
    run = job(deployed, submitted["jobId"])
    assert run["parameters"]["key"] == "incoming/csv/a.csv"
    assert run["parameters"]["scheduledTime"] == DEFINITION_DEFAULT
    assert run["parameters"]["scheduleName"] == DEFINITION_DEFAULT


# --- status: job types whose routes overlap --------------------------------------------------------


def register_copy(local: Emulator, job_type: str, name: str) -> None:
    """A second registry entry with the job type's route (its own name, the same everything else)."""
    entry = local.job_type_entries()[job_type]
    boto3.client("ssm").put_parameter(
        Name=f"{local.stack.outputs['JobTypesPath']}/{name}", Type="String", Value=json.dumps(entry)
    )


def test_status_warns_of_two_job_types_with_the_same_route_without_calling_for_attention(local: Emulator):
    # Given a second job type with csv-ingest's route (incoming/csv/*.csv)
    register_copy(local, "csv-ingest", "csv-ingest-v2")

    # When status is asked
    text = command(local, "status")
    as_json = command(local, "status", "--json")

    # Then it warns of the pair, names the one uploads start, and exits 0: routing still works
    warning = (
        "csv-ingest and csv-ingest-v2 have the same upload route incoming/csv/*.csv; "
        "uploads that fit it start csv-ingest-v2 only"
    )
    assert (text.exit_code, as_json.exit_code) == (0, 0), text.output
    assert text.stdout.splitlines()[-3:] == [
        "Warnings:",
        f"  - {warning}",
        "Nothing needs attention (see the warnings).",
    ]
    status = document(as_json)
    assert status["warnings"] == [warning]
    assert status["attention"] == []
    # And the job type it names is the one an upload there really starts
    local.upload("incoming/csv/2026/sales.csv")
    local.drain()
    (job,) = local.jobs_submitted()
    assert job["jobName"].startswith("csv-ingest-v2-")


def test_status_of_the_example_catalog_has_no_warnings(local: Emulator):
    result = command(local, "status", "--json")

    assert result.exit_code == 0, result.output
    assert document(result)["warnings"] == []
