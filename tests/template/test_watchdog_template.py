"""The watchdog in the template: its schedule, its settings, and a role that reads what it checks and
writes only its own findings.

Scope: template.yaml and job-types/job-type.yaml as CloudFormation receives them (transformed, conditions
applied), offline.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.template.cfn import as_list, deploy, job_type_template, props, role_statements
from tests.template.cfn import sam_template as _sam_template


def statements_by_action(role: str) -> dict[str, list[str]]:
    """action -> the resources the role (inline and attached policies) may use it on, as JSON."""
    found: dict[str, list[str]] = {}
    for statement in role_statements(deploy(), role):
        assert statement["Effect"] == "Allow"
        for action in as_list(statement["Action"]):
            found.setdefault(action, []).extend(json.dumps(r) for r in as_list(statement["Resource"]))
    return found


def test_the_watchdog_runs_every_watchdog_rate_as_of_the_ticks_time():
    # Given the watchdog's schedule
    schedule = props(deploy(), "WatchdogFunctionCheck")

    # Then Scheduler fires it every WatchdogRate (5 minutes by default) with the tick's time as its clock
    assert schedule["ScheduleExpression"] == "rate(5 minutes)"
    assert props(deploy(WatchdogRate="rate(15 minutes)"), "WatchdogFunctionCheck")["ScheduleExpression"] == (
        "rate(15 minutes)"
    )
    assert json.loads(schedule["Target"]["Input"]) == {"scheduledTime": "<aws.scheduler.scheduled-time>"}
    assert schedule["Target"]["Arn"] == {"Fn::GetAtt": ["WatchdogFunction", "Arn"]}
    # And a check that cannot be delivered is not parked with the schedule's ticks
    assert "DeadLetterConfig" not in schedule["Target"]


@pytest.mark.parametrize(
    ("rate", "accepted"),
    [
        ("rate(5 minutes)", True),
        ("rate(2 minutes)", True),
        ("rate(59 minutes)", True),
        ("rate(1 hour)", True),
        ("rate(1 minute)", False),
        ("rate(0 minutes)", False),
        ("rate(2 hours)", False),
        ("cron(*/5 * * * ? *)", False),
    ],
)
def test_watchdog_rate_takes_minutes_up_to_an_hour(rate, accepted):
    pattern = _sam_template()["Parameters"]["WatchdogRate"]["AllowedPattern"]

    assert (re.fullmatch(pattern, rate) is not None) is accepted


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("auto", True),
        ("off", True),
        ("0", True),
        ("3 hours", True),
        ("90 minutes", True),
        ("1 day", True),
        ("3h", False),
        ("03 hours", False),
        ("3 weeks", False),
        ("", False),
    ],
)
def test_expect_success_every_is_auto_off_or_a_span_in_both_templates(value, accepted):
    stack = _sam_template()["Parameters"]["ExpectSuccessEvery"]["AllowedPattern"]
    job_type = job_type_template()["Parameters"]["ExpectSuccessEvery"]["AllowedPattern"]

    assert stack == job_type
    assert (re.fullmatch(stack, value) is not None) is accepted


def test_the_default_job_types_schedule_and_expectations_reach_the_watchdog():
    variables = props(deploy(), "WatchdogFunction")["Environment"]["Variables"]

    assert variables["SCHEDULE_EXPRESSION"] == "rate(3 hours)"
    assert variables["SCHEDULE_ENABLED"] == "true"
    assert variables["EXPECT_SUCCESS_EVERY"] == "auto"
    assert variables["JOB_EXPECTED_DURATION"] == "off"
    assert variables["ALERT_STATE_TABLE_NAME"] == {"Ref": "AlertStateTable"}
    assert variables["SCHEDULE_DLQ_URL"] == {"Ref": "ScheduleDLQ"}


def test_a_job_types_registry_entry_carries_its_expectations():
    entry = job_type_template()["Resources"]["RegistryEntry"]["Properties"]["Value"]["Fn::Sub"][0]

    assert '"expectSuccessEvery": "${ExpectSuccessEvery}"' in entry
    assert '"expectedDuration": "${ExpectedDuration}"' in entry


def test_the_watchdog_peeks_at_the_schedule_dlq_and_writes_only_its_own_state():
    # Given everything the watchdog's role may do (inline and attached policies)
    allowed = statements_by_action("WatchdogFunctionRole")
    dlq = json.dumps({"Fn::GetAtt": ["ScheduleDLQ", "Arn"]})
    table = json.dumps({"Fn::GetAtt": ["AlertStateTable", "Arn"]})

    # Then it may receive from ScheduleDLQ and make messages visible again, but never delete one
    assert allowed["sqs:ReceiveMessage"] == [dlq]
    assert allowed["sqs:ChangeMessageVisibility"] == [dlq]
    assert not [action for action in allowed if action.startswith("sqs:") and "Delete" in action]
    # And write only the alert state table (and the shared idempotency records)
    for action in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"):
        assert table in allowed[action]
    assert not [a for a in allowed if a.startswith("dynamodb:") and a.endswith(("Scan", "DeleteTable"))]
    # And list jobs (no resource-level permissions exist for ListJobs), nothing else of Batch
    assert [a for a in allowed if a.startswith("batch:")] == ["batch:ListJobs"]
    # And read only the webhook secrets the notifier reads (the stack's and those under the prefix)
    assert (
        allowed["secretsmanager:GetSecretValue"]
        == statements_by_action("FailureNotifyFunctionRole")["secretsmanager:GetSecretValue"]
    )


def test_only_the_watchdogs_schedule_may_invoke_it_through_its_role():
    role = props(deploy(), "WatchdogFunctionScheduleRole")
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    statements = [s for p in role["Policies"] for s in as_list(p["PolicyDocument"]["Statement"])]

    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert [(s["Action"], s["Resource"]) for s in statements] == [
        ("lambda:InvokeFunction", {"Fn::GetAtt": ["WatchdogFunction", "Arn"]})
    ]
