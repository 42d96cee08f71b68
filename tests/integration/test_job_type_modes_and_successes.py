"""Two job-type settings end to end: NotifySucceeded (the job type's own SUCCEEDED rule and channel)
and SubmitMode (array-mode and per-object job types sharing one intake batch).

Scope: template.yaml with the job types below added as nested applications, deployed into moto. Batch
events go through the template's rules (the parent's and each job type's) to FailureNotifyFunction and
the Slack stand-in, whose posts carry the webhook secret they were sent to. Intake batches go to
S3SubmitFunction as its event source mapping delivers them.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from emulator.core import Emulator, s3_notification
from tests.conftest import job_type_block, job_types_file

pytestmark = pytest.mark.integration

REPORTS_SECRET = "batch-dispatch/slack-reports"
INGEST_SECRET = "batch-dispatch/slack-ingest"
STACK_SECRET = "batch-dispatch/slack-webhook"


JOB_TYPES = (
    job_type_block(
        "ReportsJobType",
        "reports",
        UploadPrefix="reports/",
        SlackWebhookSecretName=REPORTS_SECRET,
        NotifySucceeded="true",
    )
    + job_type_block("IngestJobType", "ingest", UploadPrefix="ingest/", SlackWebhookSecretName=INGEST_SECRET)
    + job_type_block(
        "BurstJobType", "burst", command="echo,Ref::manifestKey", UploadPrefix="burst/", SubmitMode="ARRAY"
    )
)


@pytest.fixture(scope="module")
def emulator_job_types(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return job_types_file(tmp_path_factory, JOB_TYPES)


def intake_batch(local: Emulator, keys: list[str]) -> dict[str, Any]:
    """One SQS batch of S3 notifications for `keys`, as the intake queue's event source mapping sends it."""
    bucket, queue_arn = local.bucket(), local.stack.queue_arn("IntakeQueue")
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "handle",
                "body": s3_notification(bucket, key, index),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            }
            for index, key in enumerate(keys)
        ]
    }


def redelivered(batch: dict[str, Any]) -> dict[str, Any]:
    """The same messages received again (after a crash, say), in the opposite order."""
    records = [
        {**record, "attributes": {"ApproximateReceiveCount": "2"}} for record in reversed(batch["Records"])
    ]
    return {"Records": records}


# --- NotifySucceeded ----------------------------------------------------------------------------------


def test_a_job_type_that_asks_for_successes_gets_them_in_its_channel_and_others_get_none(local: Emulator):
    # Given jobs of three job types that all succeed: reports asks for successes, ingest and the
    # default job type do not
    for key in ("reports/2026-11.csv", "ingest/orders.csv", "elsewhere/file.bin"):
        local.upload(key)
    local.drain()
    assert sorted(job["job_type"] for job in local.jobs_submitted()) == ["default", "ingest", "reports"]

    # When Batch reports their state changes (through the template's rules)
    local.publish_batch_events()

    # Then exactly one message was posted: the reports job's success, in the reports channel
    posts = local.slack_posts()
    assert [post["webhook_secret"] for post in posts] == [REPORTS_SECRET]
    text = json.dumps(posts[0])
    assert "SUCCEEDED" in text
    assert "reports-" in text  # the job's name starts with its job type
    assert "ingest-" not in text


def test_only_the_job_type_that_asks_for_successes_has_a_rule_for_them(local: Emulator):
    # Given the deployed rules that take SUCCEEDED jobs to the notifier
    succeeded_rules = [
        rule for rule in local.rules() if "SUCCEEDED" in json.dumps(rule.pattern.get("detail", {}))
    ]

    # Then there is one, matching the reports job definition only
    (rule,) = succeeded_rules
    (prefix,) = rule.pattern["detail"]["jobDefinition"]
    assert prefix["prefix"].endswith(f":job-definition/{local.stack.name}_reports:")
    assert rule.target_functions == ["FailureNotifyFunction"]


# --- array mode and per-object mode in one batch -------------------------------------------------------


def test_one_batch_mixing_array_and_per_object_job_types_submits_each_upload_once_in_its_mode(
    local: Emulator,
):
    # Given one intake batch with uploads for the array-mode job type, two per-object job types and the
    # default job type
    burst = [f"burst/part-{n}.bin" for n in range(4)]
    others = {
        "ingest/orders.csv": "ingest",
        "ingest/refunds.csv": "ingest",
        "reports/2026-11.csv": "reports",
        "elsewhere/x.bin": "default",
    }
    batch = intake_batch(local, [*burst[:2], *others, *burst[2:]])

    # When S3SubmitFunction handles it, and then a redelivery of the whole batch
    first = local.runtime.invoke("S3SubmitFunction", batch)
    again = local.runtime.invoke("S3SubmitFunction", redelivered(batch))

    # Then no message failed
    assert first.error is None
    assert again.error is None
    assert first.result == {"batchItemFailures": []}
    assert again.result == {"batchItemFailures": []}
    # And the array-mode job type's uploads are one array job of its job definition, one child each
    jobs = local.jobs_submitted()
    array_jobs = [job for job in jobs if job["arrayProperties"].get("size")]
    (array_job,) = array_jobs
    assert array_job["job_type"] == "burst"
    assert array_job["arrayProperties"]["size"] == len(burst)
    assert array_job["jobDefinition"].rsplit("/", 1)[-1] == f"{local.stack.name}_burst:1"
    # And every other upload is one plain job of its own job type
    plain = {job["parameters"]["key"]: job["job_type"] for job in jobs if job not in array_jobs}
    assert plain == others
    # And each upload was run exactly once, across both modes
    runs, _ = local.jobs_per_object()
    assert Counter({key: n for (_bucket, key), n in runs.items()}) == Counter(
        dict.fromkeys([*burst, *others], 1)
    )
