"""The "Add a job type" block of docs/job-types.md, pasted into a copy of template.yaml as the page tells
users to, deploys what the issue's contract asks for: a job type named `thumbnails` with 1 vCPU and
2048 MiB, its upload route (`images/` ending in `.png`), its schedule `cron(0 2 * * ? *)`, and its
alerts in the channel of the webhook secret `batch-dispatch/slack-thumbnails`."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from samtranslator.yaml_helper import yaml_parse

from emulator.core import Emulator
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration

SECRET = "batch-dispatch/slack-thumbnails"


@pytest.fixture
def thumbnails(deploy_edited_template: Callable[[Callable[[dict[str, Any]], None]], Emulator]) -> Emulator:
    """A fresh stack of template.yaml with the documented block pasted under Resources."""
    page = (REPO_ROOT / "docs" / "job-types.md").read_text(encoding="utf-8")
    block = re.search(r"```yaml\n(  \w+JobType:\n.*?)```", page, re.DOTALL)
    assert block is not None, "docs/job-types.md lost its 'Add a job type' block"
    added = yaml_parse(block.group(1))
    return deploy_edited_template(lambda template: template["Resources"].update(added))


def test_the_documented_block_deploys_the_thumbnails_job_type_as_the_contract_says(thumbnails: Emulator):
    # Given the stack with the pasted block: one job type in the catalog
    local = thumbnails
    entries = local.job_type_entries()
    assert sorted(entries) == ["thumbnails"]
    entry = entries["thumbnails"]

    # Then its job definition is the stack's thumbnails definition, 1 vCPU and 2048 MiB
    (definition,) = boto3.client("batch").describe_job_definitions(jobDefinitions=[entry["jobDefinition"]])[
        "jobDefinitions"
    ]
    assert definition["jobDefinitionName"] == f"{local.stack.name}_thumbnails"
    # (Batch answers strings; moto gives a Number parameter back as a number)
    resources = {
        r["type"]: str(r["value"]) for r in definition["containerProperties"]["resourceRequirements"]
    }
    assert resources == {"VCPU": "1", "MEMORY": "2048"}
    # And its route, its schedule and its channel are the documented ones
    assert (entry["routePrefix"], entry["routeSuffix"]) == ("images/", ".png")
    schedule = local.schedule_of("thumbnails")
    assert (schedule.expression, schedule.enabled) == ("cron(0 2 * * ? *)", True)
    assert entry["webhookSecretName"] == SECRET


def test_the_documented_blocks_route_schedule_and_channel_work(thumbnails: Emulator):
    local = thumbnails

    # When a PNG and a JPEG land under images/, and the schedule ticks, and every job fails
    with local.jobs_fail(exit_code=1, reason="Essential container in task exited"):
        local.upload("images/2026/dog.png")
        local.upload("images/2026/dog.jpg")
        local.drain()
        local.tick("2026-11-23T02:00:00Z", job_type="thumbnails")
    local.publish_batch_events()

    # Then the PNG and the tick started thumbnails jobs, the JPEG the default job type's
    jobs = local.jobs_submitted()
    by_key = {job["parameters"].get("key"): job["job_type"] for job in jobs}
    assert by_key == {
        "images/2026/dog.png": "thumbnails",
        "images/2026/dog.jpg": "default",
        None: "thumbnails",
    }
    assert all(job["jobName"].startswith("thumbnails-") for job in jobs if job["job_type"] == "thumbnails")
    # And the thumbnails failures were posted to the thumbnails channel, the default one's to the stack's
    posts = local.slack_posts()
    channels = sorted(post["webhook_secret"] for post in posts)
    assert channels == [SECRET, SECRET, "batch-dispatch/slack-webhook"]
    assert all("thumbnails-" in str(post) for post in posts if post["webhook_secret"] == SECRET)
