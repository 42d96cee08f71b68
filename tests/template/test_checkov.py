"""checkov finds nothing, and every skip in the template is one checkov really applies.

checkov does not expand `Fn::ForEach`: on template.yaml as written it would not see the looped
resources at all. It reads the template as CloudFormation deploys it instead, with the loops expanded
(`emulator.sam.load_template`, the same expansion `make lint` writes to a temporary file).

A skip for a check that never runs on CloudFormation (a Terraform-only id, or a check for another
resource type) is an untested claim: checkov would count it as neither passed nor skipped. checkov lives
in its own virtualenv (.venv/checkov, `make venv`); without it these tests are skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from emulator.sam import expand_language_extensions, read_template
from tests.template.cfn import REPO_ROOT, Resolver, sam_template

CHECKOV = REPO_ROOT / ".venv" / "checkov" / "bin" / "checkov"

pytestmark = pytest.mark.skipif(not CHECKOV.exists(), reason="checkov is not installed (make venv)")


def run_checkov(template: dict[str, Any]) -> dict[str, Any]:
    """checkov's JSON report on `template` with its language extensions expanded."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "template.json"
        path.write_text(json.dumps(expand_language_extensions(template)), encoding="utf-8")
        completed = subprocess.run(  # noqa: S603 - our own virtualenv's checkov on our own template
            [str(CHECKOV), "--skip-download", "--framework", "cloudformation", "-f", str(path), "-o", "json"],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"},
            timeout=300,
        )
    return dict(json.loads(completed.stdout))


@cache
def checkov_results() -> dict[str, Any]:
    return run_checkov(read_template())


def checked(results: dict[str, Any], outcome: str) -> set[tuple[str, str]]:
    """(check id, logical id) of the checks with this outcome (checkov names resources "<type>.<id>")."""
    return {
        (check["check_id"], check["resource"].rsplit(".", 1)[-1])
        for check in results["results"][f"{outcome}_checks"]
    }


def declared_skips(template: dict[str, Any] | None = None) -> set[tuple[str, str]]:
    """(check id, logical id) of every checkov skip written in the template's Metadata, on the resources
    the parameters' defaults create: checkov evaluates Conditions with the defaults, so it never checks a
    resource they leave out (test_rerun_button_template.py scans the Rerun button's with it turned on)."""
    template = template or sam_template()
    conditions = Resolver(template, {})
    return {
        (skip["id"], logical_id)
        for logical_id, resource in template["Resources"].items()
        if "Condition" not in resource or conditions.condition(resource["Condition"])
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    }


def test_checkov_fails_nothing_and_reads_every_resource_loops_included():
    summary = checkov_results()["summary"]

    assert (summary["failed"], summary["parsing_errors"]) == (0, 0)
    assert summary["resource_count"] == len(sam_template()["Resources"])


def test_every_declared_skip_is_a_check_checkov_ran_on_that_resource():
    # Given the skips checkov reported
    applied = checked(checkov_results(), "skipped")

    # Then they are exactly the skips written in the template: none is for a check that never runs
    assert declared_skips() == applied
    # And each one says why
    for logical_id, resource in sam_template()["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert len(skip.get("comment", "")) > 20, (logical_id, skip["id"])


def _loop_body(template: dict[str, Any], loop: str) -> dict[str, Any]:
    """The resources one Fn::ForEach loop of the template's Resources repeats, as written."""
    body: dict[str, Any] = template["Resources"][f"Fn::ForEach::{loop}"][2]
    return body


def test_checkov_checks_every_resource_a_loop_creates():
    # Given a copy of the template whose log group loop keeps logs forever, and whose dead-letter queue
    # loop drops its (justified) skip of the encryption check
    template = read_template()
    _loop_body(template, "FunctionLogsAndAlarms")["${Function}LogGroup"]["Properties"].pop("RetentionInDays")
    _loop_body(template, "DeadLetterQueues")["${Queue}"].pop("Metadata")

    # When checkov reads it as CloudFormation would deploy it
    failed = checked(run_checkov(template), "failed")

    # Then each resource of those loops fails, and nothing else does
    assert failed == {
        *(
            ("CKV_AWS_66", f"{name}LogGroup")
            for name in (
                "ScheduleSubmit",
                "S3Submit",
                "FailureNotify",
                "StormDigest",
                "SlackActions",
                "Watchdog",
            )
        ),
        *(("CKV_AWS_27", queue) for queue in ("IntakeDLQ", "ScheduleDLQ", "FailureNotifyDLQ", "StormDLQ")),
    }
