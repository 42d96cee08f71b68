"""Who may click Rerun, per job type, end to end in the emulator: template.yaml with the job types below
added as nested applications (each writes its RerunAllowedSlackUsers/Groups into its registry entry),
deployed into moto with the Rerun button on. A scheduled job of each type FAILS in moto Batch, its alert
reaches the Slack stand-in, the stand-in signs clicks as Slack does, and SlackActionsFunction finds the
job's type from its job definition in the registry and applies that type's lists, or the stack's when
the type sets none. Outcomes are read from moto Batch (new jobs) and the stand-in (answers, API calls).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest

from emulator.core import Emulator
from tests.conftest import job_type_block, job_types_file

pytestmark = pytest.mark.integration

ONCALL = "U0ONCALL"  # the stack's RerunAllowedSlackUsers
ALICE, BOB = "U0ALICE", "U0BOB"
MEDIA_GROUP, MEDIA_MEMBER = "S0MEDIA", "U0MEDIA"

# As a team adds them under Resources (docs/job-types.md, "Add a job type").
JOB_TYPES = (
    job_type_block(
        "PayrollJobType",
        "payroll",
        command="echo,Ref::scheduledTime",
        ScheduleExpression="cron(0 1 * * ? *)",
        RerunAllowedSlackUsers=ALICE,
    )
    + job_type_block(
        "ReportsJobType", "reports", command="echo,Ref::scheduledTime", ScheduleExpression="cron(0 2 * * ? *)"
    )
    + job_type_block(
        "MediaJobType",
        "media",
        command="echo,Ref::scheduledTime",
        ScheduleExpression="cron(0 3 * * ? *)",
        RerunAllowedSlackGroups=MEDIA_GROUP,
    )
)


@pytest.fixture(scope="module")
def emulator_parameters() -> dict[str, str]:
    # A bot token, for the media job type's group (the deploy requires it; the emulator stores it)
    return {
        "EnableRerunButton": "true",
        "RerunAllowedSlackUsers": ONCALL,
        "SlackBotTokenSecretName": "batch-dispatch-slack-bot-token",
    }


@pytest.fixture(scope="module")
def emulator_job_types(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return job_types_file(tmp_path_factory, JOB_TYPES)


def failed_job_of(local: Emulator, job_type: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A scheduled job of `job_type` that FAILED, and the alert FailureNotifyFunction posted for it."""
    posted = len(local.slack_messages())
    with local.jobs_fail(exit_code=1, reason="Essential container in task exited"):
        tick = local.tick("2026-11-23T15:00:00Z", job_type=job_type)
    assert tick is not None
    assert [i.error for i in local.publish_batch_events()] == [None]
    (alert,) = local.slack_messages()[posted:]
    (job,) = [j for j in local.jobs_submitted() if j["jobId"] == tick.result["jobId"]]
    assert job["job_type"] == job_type
    return job, alert


def click(local: Emulator, alert: dict[str, Any], user_id: str) -> dict[str, Any]:
    """`user_id` clicks Rerun; the answer posted to the click's response URL."""
    answered = len(local.slack.responses)
    invocation = local.click(alert, user_id=user_id)
    assert invocation.error is None
    assert invocation.result["statusCode"] == 200
    (reply,) = local.slack.responses[answered:]
    return dict(reply)


def reruns(local: Emulator) -> list[dict[str, Any]]:
    return [job for job in local.jobs_submitted() if "-rerun-" in job["jobName"]]


def test_the_registry_carries_each_job_types_lists(local: Emulator):
    entries = local.job_type_entries()

    assert (entries["payroll"]["rerunAllowedSlackUsers"], entries["payroll"]["rerunAllowedSlackGroups"]) == (
        ALICE,
        "",
    )
    assert (entries["reports"]["rerunAllowedSlackUsers"], entries["reports"]["rerunAllowedSlackGroups"]) == (
        "",
        "",
    )
    assert entries["media"]["rerunAllowedSlackGroups"] == MEDIA_GROUP


def test_a_job_type_that_allows_alice_lets_her_rerun_and_refuses_bob_and_the_stacks_on_call(
    local: Emulator,
):
    # Given a failed payroll job (payroll allows Alice; the stack allows the on-call)
    original, alert = failed_job_of(local, "payroll")

    # When Bob, then the stack's on-call click Rerun
    refusals = [click(local, alert, BOB), click(local, alert, ONCALL)]

    # Then neither is rerun: each is told, only them, that payroll's list does not hold them
    assert reruns(local) == []
    for user, refusal in zip((BOB, ONCALL), refusals, strict=True):
        assert refusal["response_type"] == "ephemeral"
        assert f"<@{user}> may not rerun jobs of job type `payroll`" in refusal["text"]
        assert "RerunAllowedSlackUsers" in refusal["text"]

    # When Alice clicks
    update = click(local, alert, ALICE)

    # Then Batch holds one new payroll job, rerun by her, and the alert says so
    (rerun,) = reruns(local)
    assert rerun["jobDefinition"] == original["jobDefinition"]
    assert rerun["jobName"].startswith(f"{original['jobName']}-rerun-")
    (described,) = boto3.client("batch").describe_jobs(jobs=[rerun["jobId"]])["jobs"]
    assert described["tags"]["batch-dispatch:rerun-by"] == ALICE
    assert update["replace_original"] is True
    assert f"Rerun by <@{ALICE}>" in str(update["blocks"])


def test_a_job_type_without_lists_falls_back_to_the_stacks(local: Emulator):
    # Given a failed reports job (reports names nobody)
    original, alert = failed_job_of(local, "reports")

    # When Alice, whom only payroll allows, clicks: the stack's list applies, without her
    refusal = click(local, alert, ALICE)
    assert reruns(local) == []
    assert f"<@{ALICE}> may not rerun jobs here" in refusal["text"]

    # When the stack's on-call clicks
    click(local, alert, ONCALL)

    # Then the job is rerun once, by them
    (rerun,) = reruns(local)
    assert rerun["jobDefinition"] == original["jobDefinition"]
    (described,) = boto3.client("batch").describe_jobs(jobs=[rerun["jobId"]])["jobs"]
    assert described["tags"]["batch-dispatch:rerun-by"] == ONCALL


def test_a_group_allowed_on_one_job_type_reruns_its_jobs_only(local: Emulator):
    # Given the media group in the workspace, allowed by the media job type only, and a failed job of
    # reports (no lists: the stack's) and of media
    local.slack.add_user_group(MEDIA_GROUP, [MEDIA_MEMBER])
    _, reports_alert = failed_job_of(local, "reports")
    media_original, media_alert = failed_job_of(local, "media")

    # When a member of the group clicks Rerun on the reports job
    refusal = click(local, reports_alert, MEDIA_MEMBER)

    # Then nothing: the stack's list (the on-call) applies there, and Slack was not asked about a group
    assert reruns(local) == []
    assert "may not rerun jobs here" in refusal["text"]
    assert local.slack.api_calls == []

    # When the stack's on-call clicks Rerun on the media job, then the group's member does
    refused = click(local, media_alert, ONCALL)
    click(local, media_alert, MEDIA_MEMBER)

    # Then the on-call is refused, and the member reruns it: one lookup of the media group with the
    # stack's bot token (its members kept for the second click)
    assert f"<@{ONCALL}> may not rerun jobs of job type `media`" in refused["text"]
    (rerun,) = reruns(local)
    assert rerun["jobDefinition"] == media_original["jobDefinition"]
    (described,) = boto3.client("batch").describe_jobs(jobs=[rerun["jobId"]])["jobs"]
    assert described["tags"]["batch-dispatch:rerun-by"] == MEDIA_MEMBER
    assert [(call.status, call.payload) for call in local.slack.api_calls] == [
        (200, {"usergroup": MEDIA_GROUP})
    ]
