"""checkov finds nothing, and every skip in the template is one checkov really applies.

A skip for a check that never runs on CloudFormation (a Terraform-only id, or a check for another
resource type) is an untested claim: checkov would count it as neither passed nor skipped. checkov lives
in its own virtualenv (.venv/checkov, `make venv`); without it these tests are skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
from functools import cache
from typing import Any

import pytest

from tests.template.cfn import REPO_ROOT, TEMPLATE_PATH, sam_template

CHECKOV = REPO_ROOT / ".venv" / "checkov" / "bin" / "checkov"

pytestmark = pytest.mark.skipif(not CHECKOV.exists(), reason="checkov is not installed (make venv)")


@cache
def checkov_results() -> dict[str, Any]:
    completed = subprocess.run(  # noqa: S603 - our own virtualenv's checkov on our own template
        [
            str(CHECKOV),
            "--skip-download",
            "--framework",
            "cloudformation",
            "-f",
            str(TEMPLATE_PATH),
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"},
        timeout=300,
    )
    return dict(json.loads(completed.stdout))


def declared_skips() -> set[tuple[str, str]]:
    """(check id, logical id) of every checkov skip written in the template's Metadata."""
    return {
        (skip["id"], logical_id)
        for logical_id, resource in sam_template()["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    }


def test_checkov_fails_nothing():
    summary = checkov_results()["summary"]

    assert (summary["failed"], summary["parsing_errors"]) == (0, 0)


def test_every_declared_skip_is_a_check_checkov_ran_on_that_resource():
    # Given the skips checkov reported (resource names are "<type>.<logical id>")
    applied = {
        (check["check_id"], check["resource"].rsplit(".", 1)[-1])
        for check in checkov_results()["results"]["skipped_checks"]
    }

    # Then they are exactly the skips written in the template: none is for a check that never runs
    assert declared_skips() == applied
    # And each one says why
    for logical_id, resource in sam_template()["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert len(skip.get("comment", "")) > 20, (logical_id, skip["id"])
