"""The job catalog in the deployed stack: job types added to template.yaml as nested applications.

Scope: template.yaml with job-types/examples.yaml's three job types added (as a user pastes them into
its Resources), deployed into moto; schedules fired with the Input Scheduler sends, uploads delivered
notification -> queue -> S3SubmitFunction, Batch events -> FailureNotifyFunction -> the Slack stand-in,
whose posts carry the webhook secret they were sent to. Also the "Add a job type" block of
docs/job-types.md pasted into a template copy, as the documentation tells users to.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from emulator.core import Emulator
from emulator.sam import read_template
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration

EXAMPLES = REPO_ROOT / "job-types" / "examples.yaml"
STACK_SECRET = "batch-dispatch/slack-webhook"
THUMBNAILS_SECRET = "batch-dispatch/slack-thumbnails"
QUEUE_PRIORITY = {"high": 100, "normal": 50, "low": 10}  # docs/job-types.md#priority


@pytest.fixture(scope="module")
def emulator_job_types() -> Path:
    return EXAMPLES


def queue_name(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def by_key(local: Emulator) -> dict[str, dict[str, Any]]:
    return {job["parameters"]["key"]: job for job in local.jobs_submitted() if "key" in job["parameters"]}


def test_every_job_type_is_in_the_registry_with_its_queue(local: Emulator):
    entries = local.job_type_entries()

    assert sorted(entries) == ["csv-ingest", "nightly-report", "partner-orders", "thumbnails"]
    assert (entries["partner-orders"]["bucket"], entries["csv-ingest"]["bucket"]) == (
        "partner-orders-example",
        "",
    )
    assert "HighPriorityJobQueue" in entries["csv-ingest"]["jobQueue"]
    assert "LowPriorityJobQueue" in entries["nightly-report"]["jobQueue"]
    assert entries["thumbnails"]["webhookSecretName"] == THUMBNAILS_SECRET


def test_each_job_types_priority_puts_its_jobs_in_the_queue_of_that_priority(local: Emulator):
    # Given the job types of examples.yaml as declared (Priority defaults to normal) and as registered
    declared = {
        application["Properties"]["Parameters"]["Name"]: application["Properties"]["Parameters"].get(
            "Priority", "normal"
        )
        for application in read_template(EXAMPLES).values()
    }
    entries = local.job_type_entries()
    batch = boto3.client("batch")
    queues = {q["jobQueueArn"]: q for q in batch.describe_job_queues()["jobQueues"]}
    default_queue = local.stack.functions["S3SubmitFunction"].environment["JOB_QUEUE_ARN"]

    # Then each one's registry entry names a queue of that priority in Batch, over the one compute environment
    assert sorted(set(declared.values())) == ["high", "low", "normal"]
    assert {name: entry["priority"] for name, entry in entries.items()} == declared
    assert {name: queues[entry["jobQueue"]]["priority"] for name, entry in entries.items()} == {
        name: QUEUE_PRIORITY[priority] for name, priority in declared.items()
    }
    assert queues[default_queue]["priority"] == QUEUE_PRIORITY["normal"]  # the default job type's
    environments = {str(q["computeEnvironmentOrder"]) for q in queues.values()}
    assert len(queues) == 3
    assert len(environments) == 1

    # And a job of each routed job type lands in its queue
    local.upload("incoming/csv/a.csv")
    local.upload("images/a.png")
    local.drain()
    landed = {job["job_type"]: queues[job["jobQueue"]]["priority"] for job in local.jobs_submitted()}
    assert landed == {"csv-ingest": 100, "thumbnails": 50}


def test_each_schedule_submits_its_own_job_type_once_per_tick(local: Emulator):
    assert {s["job_type"]: s["expression"] for s in local.report([])["schedules"]} == {
        "default": "rate(3 hours)",
        "nightly-report": "cron(0 2 * * ? *)",
    }

    first = local.tick("2026-11-23T01:00:00Z", job_type="nightly-report")
    again = local.tick("2026-11-23T01:00:00Z", job_type="nightly-report")
    local.tick("2026-11-23T01:00:00Z", job_type="default")

    assert first is not None
    assert again is not None
    assert again.result is not None
    assert again.result["duplicate"] is True
    jobs = {job["job_type"]: job for job in local.jobs_submitted()}
    assert len(local.jobs_submitted()) == 2
    report = jobs["nightly-report"]
    assert report["jobDefinition"].rsplit("/", 1)[-1] == f"{local.stack.name}_nightly-report:1"
    assert queue_name(report["jobQueue"]).startswith(f"{local.stack.name}-LowPriorityJobQueue")
    assert re.fullmatch(r"nightly-report-20261123T010000Z-[0-9a-f]{12}", report["jobName"])
    assert report["parameters"]["report"] == "daily-sales"
    assert report["parameters"]["scheduledTime"] == "2026-11-23T01:00:00Z"
    assert jobs["default"]["jobDefinition"].rsplit("/", 1)[-1] == f"{local.stack.name}_default:1"


def test_uploads_reach_the_job_type_whose_route_fits_best(local: Emulator):
    keys = {
        "incoming/csv/2026/sales.csv": "csv-ingest",
        "images/cats/tom.png": "thumbnails",
        "images/cats/tom.jpg": "default",  # the prefix fits, the suffix does not
        "incoming/csv/README.txt": "default",
        "exports/report.bin": "default",
    }
    for key in keys:
        local.upload(key)
    local.drain()

    jobs = by_key(local)
    assert {key: job["job_type"] for key, job in jobs.items()} == keys
    assert queue_name(jobs["incoming/csv/2026/sales.csv"]["jobQueue"]).startswith(
        f"{local.stack.name}-HighPriorityJobQueue"
    )
    assert jobs["images/cats/tom.png"]["jobName"].startswith("thumbnails-")
    assert jobs["exports/report.bin"]["jobName"].startswith(f"{local.stack.name}-")


def test_a_failed_job_alerts_in_its_job_types_channel_and_others_in_the_stacks(local: Emulator):
    with local.jobs_fail(
        exit_code=137,
        reason="OutOfMemoryError: Container killed due to memory usage",
        log_lines=["resizing tom.png to 256x256", "decoded 48000x32000 pixels"],
    ):
        local.upload("images/cats/tom.png")
        local.upload("exports/report.bin")
        local.drain()
    local.publish_batch_events()

    posts = {post["webhook_secret"]: post for post in local.slack_posts()}
    assert sorted(posts) == [THUMBNAILS_SECRET, STACK_SECRET]
    assert "thumbnails-" in str(posts[THUMBNAILS_SECRET])
    assert "<!subteam^S0MEDIA>" in str(posts[THUMBNAILS_SECRET])
    assert "decoded 48000x32000 pixels" in str(posts[THUMBNAILS_SECRET])  # the job's last log lines
    assert "thumbnails-" not in str(posts[STACK_SECRET])
    assert "S0MEDIA" not in str(posts[STACK_SECRET])
    # And each says where to give its job more memory: the job type's own block, or the stack's parameter
    assert "Raise `Memory` in the `thumbnails` job type's block in template.yaml" in str(
        posts[THUMBNAILS_SECRET]
    )
    assert "JobMemory" not in str(posts[THUMBNAILS_SECRET])
    assert "Raise the template parameter `JobMemory`" in str(posts[STACK_SECRET])


def test_a_job_types_own_alert_settings_reach_the_registry_and_its_alerts(
    deploy_edited_template: Callable[[Callable[[dict[str, Any]], None]], Emulator],
):
    # Given a job type that shows 1 log line and mentions on cancels, next to the examples (which leave
    # both settings to the stack)
    quiet = {
        "Type": "AWS::Serverless::Application",
        "Properties": {
            "Location": "job-types/job-type.yaml",
            "Parameters": {
                "Platform": {"Fn::GetAtt": ["JobTypePlatform", "Value"]},
                "ComputeType": {"Ref": "ComputeType"},
                "Name": "gif-frames",
                "Image": "public.ecr.aws/docker/library/busybox:1.37.0",
                "Command": "sh,-c,echo $0,Ref::key",
                "UploadPrefix": "images/",
                "UploadSuffix": ".gif",
                "LogTailLines": "1",
                "MentionOnCancel": "true",
            },
        },
    }
    local = deploy_edited_template(lambda template: template["Resources"].update(GifFramesJobType=quiet))

    # Then its registry entry carries them, and the examples' entries leave them empty
    entries = local.job_type_entries()
    assert (entries["gif-frames"]["logTailLines"], entries["gif-frames"]["mentionOnCancel"]) == ("1", "true")
    assert (entries["thumbnails"]["logTailLines"], entries["thumbnails"]["mentionOnCancel"]) == ("", "")

    # When a job of it and one of the default job type fail after logging three lines
    with local.jobs_fail(
        exit_code=2, reason="Essential container in task exited", log_lines=["a1", "b2", "c3"]
    ):
        local.upload("images/cat.gif")
        local.upload("exports/report.bin")
        local.drain()
    local.publish_batch_events()

    # Then the job type's alert shows its last line only, the default's the stack's 20
    (gif,) = [post for post in local.slack_posts() if "gif-frames-" in str(post)]
    (default,) = [post for post in local.slack_posts() if "gif-frames-" not in str(post)]
    assert "*Last 1 log line of attempt 1*" in str(gif)
    assert "*Last 3 log lines of attempt 1*" in str(default)
