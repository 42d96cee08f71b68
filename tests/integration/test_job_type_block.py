"""The "Add a job type" block of docs/job-types.md, pasted into a copy of template.yaml as the page tells
users to, deploys and runs: its route submits its job type's job."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from samtranslator.yaml_helper import yaml_parse

from emulator.core import Emulator
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration


def test_the_documented_add_a_job_type_block_deploys_as_written(
    deploy_edited_template: Callable[[Callable[[dict[str, Any]], None]], Emulator],
):
    page = (REPO_ROOT / "docs" / "job-types.md").read_text(encoding="utf-8")
    block = re.search(r"```yaml\n(  \w+JobType:\n.*?)```", page, re.DOTALL)
    assert block is not None, "docs/job-types.md lost its 'Add a job type' block"
    added = yaml_parse(block.group(1))

    local = deploy_edited_template(lambda template: template["Resources"].update(added))
    (name,) = local.job_type_entries()
    local.upload("images/2026/dog.png")
    local.drain()

    (job,) = local.jobs_submitted()
    assert job["job_type"] == name
    assert job["parameters"]["key"] == "images/2026/dog.png"
