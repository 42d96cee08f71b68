"""The schedule path end to end: template.yaml in moto, the handler in-process, jobs in moto Batch."""

from __future__ import annotations

import json

import pytest

from emulator.core import Emulator
from tests.conftest import load_event

pytestmark = pytest.mark.integration


def test_the_template_schedule_fires_the_function_with_the_contract_input(local: Emulator):
    schedule = local.schedules()[0]

    event = schedule.input_for("2026-11-23T12:00:00Z")

    assert schedule.expression == "rate(3 hours)"
    assert schedule.target_function == "ScheduleSubmitFunction"
    assert event["scheduledTime"] == "2026-11-23T12:00:00Z"
    assert event["scheduleArn"] == schedule.arn
    assert isinstance(event["parameters"], dict)


def test_a_tick_submits_one_job_that_runs_to_success(local: Emulator):
    outcome = local.tick("2026-11-23T12:00:00Z")

    jobs = local.jobs_submitted()
    assert outcome.error is None
    assert [job["jobName"] for job in jobs] == [outcome.result["jobName"]]
    assert jobs[0]["status"] == "SUCCEEDED"
    assert jobs[0]["jobQueue"] == local.stack.outputs["JobQueueArn"]
    assert jobs[0]["jobDefinition"].startswith(local.stack.outputs["JobDefinitionArn"].rsplit(":", 1)[0])
    assert jobs[0]["parameters"]["scheduledTime"] == "2026-11-23T12:00:00Z"


def test_a_tick_delivered_twice_submits_one_job(local: Emulator):
    first = local.tick("2026-11-23T12:00:00Z")
    second = local.tick("2026-11-23T12:00:00Z")

    assert len(local.jobs_submitted()) == 1
    assert second.result == {**first.result, "duplicate": True}


def test_the_classic_scheduled_event_is_accepted_too(local: Emulator):
    outcome = local.invoke("ScheduleSubmitFunction", load_event("schedule/classic-scheduled-event.json"))

    assert outcome.error is None
    assert local.jobs_submitted()[0]["parameters"]["scheduleName"] == "nightly-batch"


def test_a_malformed_tick_is_retried_then_parked_in_the_schedule_dlq(local: Emulator):
    event = load_event("schedule/malformed.json")

    outcome = local.invoke("ScheduleSubmitFunction", event)

    assert outcome.error is not None
    assert outcome.error["type"] == "InvalidScheduleEventError"
    assert outcome.attempts == 3  # the first try and Lambda's two async retries
    assert local.jobs_submitted() == []
    dlq = local.stack.functions["ScheduleSubmitFunction"].dead_letter_queue
    assert [json.loads(body) for body in local.dlq_messages()[dlq]] == [event]
