"""What the operator command reads from people and files: times, ranges, parameters, samconfig.toml,
which schedules are the stack's, and when a scheduled job type counts as late."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from batch_dispatch.job_types import Catalog, JobType, default_job_type
from batch_dispatch_cli.errors import OperatorError
from batch_dispatch_cli.jobs import Activity
from batch_dispatch_cli.schedules import StackSchedule, from_get_schedule, targets_function
from batch_dispatch_cli.stack import samconfig_value, stack_name_for
from batch_dispatch_cli.status import lateness, overlap_warnings
from batch_dispatch_cli.timeparse import InvalidInputError, parse_parameters, parse_range, parse_time

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-20T02:00:00Z", datetime(2026, 11, 20, 2, tzinfo=UTC)),
        ("2026-11-20T03:00:00+01:00", datetime(2026, 11, 20, 2, tzinfo=UTC)),
        ("2026-11-19T21:00-05:00", datetime(2026, 11, 20, 2, tzinfo=UTC)),
        ("2026-11-20T02:00", datetime(2026, 11, 20, 2, tzinfo=UTC)),  # no offset: UTC
        ("2026-11-20", datetime(2026, 11, 20, tzinfo=UTC)),
        ("now", NOW),
        ("-6h", NOW - timedelta(hours=6)),
        ("-3d", NOW - timedelta(days=3)),
        ("-2w", NOW - timedelta(weeks=2)),
        ("-30m", NOW - timedelta(minutes=30)),
    ],
)
def test_times_are_read_as_utc_instants(text, expected):
    moment = parse_time(text, now=NOW)

    assert moment == expected
    assert moment.tzinfo == UTC


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "6h", "-6y", ""])
def test_a_malformed_time_says_what_it_takes(text):
    with pytest.raises(InvalidInputError, match="use ISO 8601"):
        parse_time(text, now=NOW)


def test_a_range_is_from_included_to_excluded_across_time_zones():
    window = parse_range("2026-11-20T03:00+01:00", "2026-11-20T03:00Z", now=NOW)

    assert window.contains(datetime(2026, 11, 20, 2, tzinfo=UTC))
    assert not window.contains(datetime(2026, 11, 20, 3, tzinfo=UTC))


@pytest.mark.parametrize(("start", "end"), [("2026-11-22", "2026-11-20"), ("now", "now"), ("-1d", "-2d")])
def test_a_range_whose_start_is_not_before_its_end_is_refused(start, end):
    with pytest.raises(InvalidInputError, match="is not before --to"):
        parse_range(start, end, now=NOW)


def test_parameters_are_name_value_pairs_and_values_may_hold_equals_signs():
    assert parse_parameters(["day=2026-11-22", "filter=a=b", "empty=", " spaced =x"]) == {
        "day": "2026-11-22",
        "filter": "a=b",
        "empty": "",
        "spaced": "x",
    }


@pytest.mark.parametrize("item", ["day", "=value", " =x"])
def test_a_parameter_without_a_name_or_equals_sign_is_refused(item):
    with pytest.raises(InvalidInputError, match="--param takes NAME=VALUE"):
        parse_parameters([item])


SAMCONFIG = """
version = 0.1
[default.global.parameters]
stack_name = "from-global"
[default.deploy.parameters]
stack_name = "batch-dispatch-dev"
region = "eu-west-1"
[prod.global.parameters]
stack_name = "batch-dispatch-prod"
[staging.build.parameters]
cached = true
"""


@pytest.fixture
def samconfig(tmp_path: Path) -> Path:
    path = tmp_path / "samconfig.toml"
    path.write_text(SAMCONFIG, encoding="utf-8")
    return path


def test_the_stack_comes_from_the_config_envs_deploy_section_then_its_global_one(samconfig):
    assert stack_name_for(None, "default", samconfig) == "batch-dispatch-dev"
    assert stack_name_for(None, "prod", samconfig) == "batch-dispatch-prod"
    assert samconfig_value(samconfig, "default", "region") == "eu-west-1"
    assert samconfig_value(samconfig, "prod", "region") is None


def test_stack_wins_over_samconfig(samconfig):
    assert stack_name_for("mine", "prod", samconfig) == "mine"


def test_a_config_env_without_a_stack_name_says_what_to_pass(samconfig):
    with pytest.raises(OperatorError, match="has no stack_name for config env 'staging': pass --stack"):
        stack_name_for(None, "staging", samconfig)


def test_no_samconfig_and_no_stack_says_what_to_pass(tmp_path):
    with pytest.raises(OperatorError, match=r"no --stack given and no .*samconfig\.toml here: pass --stack"):
        stack_name_for(None, "default", tmp_path / "samconfig.toml")


def test_a_broken_samconfig_is_named(tmp_path):
    path = tmp_path / "samconfig.toml"
    path.write_text("[default.deploy.parameters\n", encoding="utf-8")

    with pytest.raises(OperatorError, match="is not valid TOML"):
        stack_name_for(None, "default", path)


def test_the_repositorys_samconfig_names_each_environments_stack():
    repository = Path(__file__).resolve().parents[2] / "samconfig.toml"

    assert [stack_name_for(None, env, repository) for env in ("default", "dev", "prod")] == [
        "batch-dispatch-dev",
        "batch-dispatch-dev",
        "batch-dispatch-prod",
    ]


@pytest.mark.parametrize(
    ("target", "ours"),
    [
        ("arn:aws:lambda:us-east-1:123456789012:function:stack-ScheduleSubmit-ABC", True),
        ("arn:aws:lambda:us-east-1:123456789012:function:stack-ScheduleSubmit-ABC:live", True),
        ("arn:aws:lambda:us-east-1:123456789012:function:stack-ScheduleSubmit-ABCD", False),
        ("arn:aws:sqs:us-east-1:123456789012:stack-ScheduleSubmit-ABC", False),
    ],
)
def test_a_schedule_is_the_stacks_when_it_targets_its_schedule_function(target, ours):
    assert targets_function(target, "stack-ScheduleSubmit-ABC") is ours


def test_a_schedule_names_its_job_type_and_parameters_in_its_input():
    created = datetime(2026, 11, 1, 9, 30, 12, 345678, tzinfo=UTC)
    schedule = from_get_schedule(
        {
            "Name": "s",
            "Arn": "arn:aws:scheduler:us-east-1:123456789012:schedule/default/s",
            "ScheduleExpression": "rate(3 hours)",
            "State": "DISABLED",
            "CreationDate": created,
            "Target": {
                "Input": '{"scheduledTime": "<aws.scheduler.scheduled-time>", "parameters": {"a": 1}, '
                '"jobType": "nightly"}'
            },
        }
    )

    assert (schedule.job_type, schedule.parameters, schedule.enabled) == ("nightly", {"a": 1}, False)
    assert schedule.anchor == created.replace(microsecond=0)
    assert schedule.timezone == "UTC"


def test_a_schedule_without_a_job_type_is_the_default_job_types():
    schedule = from_get_schedule({"Name": "s", "Arn": "a", "Target": {"Input": '{"parameters": {}}'}})

    assert schedule.job_type == "default"


JOB_TYPE = default_job_type(job_definition_arn="arn:d", job_queue_arn="arn:q", job_name_prefix="p")
EVERY_3_HOURS = StackSchedule("default", "s", "arn:s", "rate(3 hours)", anchor=NOW - timedelta(days=30))


def succeeded(ago: timedelta) -> Activity:
    stopped = int((NOW - ago).timestamp() * 1000)
    return Activity({"jobId": "j", "status": "SUCCEEDED", "stoppedAt": stopped}, None, 0, 0, 0)


def test_a_scheduled_job_type_is_late_past_its_expectation():
    # rate(3 hours) expects a success every 4 hours (its period and a grace), as the watchdog does
    on_time = lateness(JOB_TYPE, EVERY_3_HOURS, succeeded(timedelta(hours=3, minutes=59)), NOW)
    late = lateness(JOB_TYPE, EVERY_3_HOURS, succeeded(timedelta(hours=4, minutes=1)), NOW)

    assert on_time == (timedelta(hours=4), None)
    assert late[1] == "default: no success for 4h 1m (expected every 4h)"


def test_the_job_types_own_expectation_wins_over_the_schedules_and_off_turns_it_off():
    daily_expectation = JOB_TYPE._replace(expect_success_every="1 day")
    never_checked = JOB_TYPE._replace(expect_success_every="off")

    interval, late = lateness(daily_expectation, EVERY_3_HOURS, succeeded(timedelta(hours=20)), NOW)

    assert (interval, late) == (timedelta(days=1), None)
    assert lateness(never_checked, EVERY_3_HOURS, succeeded(timedelta(days=3)), NOW) == (None, None)


def test_a_disabled_or_one_time_schedule_is_never_late():
    never = Activity(None, None, 0, 0, 0)

    assert lateness(JOB_TYPE, EVERY_3_HOURS._replace(enabled=False), never, NOW) == (None, None)
    assert lateness(JOB_TYPE, EVERY_3_HOURS._replace(expression="at(2026-01-01T00:00:00)"), never, NOW) == (
        None,
        None,
    )


def test_a_new_schedule_is_not_late_before_its_first_period_has_passed():
    never = Activity(None, None, 0, 0, 0)
    new = EVERY_3_HOURS._replace(anchor=NOW - timedelta(hours=2))

    assert lateness(JOB_TYPE, new, never, NOW)[1] is None


def test_overlapping_routes_are_one_warning_per_pair_naming_the_job_type_uploads_start():
    everything = JOB_TYPE._replace(name="everything", job_name_prefix="everything")
    csv = JOB_TYPE._replace(name="csv", job_name_prefix="csv", route_prefix="in/", route_suffix=".csv")
    unrouted = JOB_TYPE._replace(name="nightly", job_name_prefix="nightly", routed=False)
    catalog = Catalog(job_types={t.name: t for t in (JOB_TYPE, everything, csv, unrouted)})

    assert overlap_warnings(catalog) == [
        "default and everything have the same upload route *; uploads that fit it start default only"
    ]
    assert overlap_warnings(Catalog(job_types={"csv": csv, "nightly": unrouted})) == []


def test_an_overlap_names_the_bucket_it_is_in_and_the_job_type_routing_starts_there():
    # Given two job types with one route in the intake bucket, and two more with it in an attached bucket
    def orders(name: str, bucket: str = "") -> JobType:
        return JOB_TYPE._replace(name=name, job_name_prefix=name, route_prefix="orders/", bucket=bucket)

    catalog = Catalog(
        job_types={
            t.name: t
            for t in (
                orders("x-orders"),
                orders("y-orders"),
                orders("a-partner", "partner"),
                orders("b-partner", "partner"),
            )
        },
        intake_bucket="intake",
    )

    # Then each pair is warned of in its own bucket, with the job type uploads there start
    assert overlap_warnings(catalog) == [
        "a-partner and b-partner have the same upload route s3://partner/orders/*; "
        "uploads that fit it start b-partner only",
        "x-orders and y-orders have the same upload route orders/*; uploads that fit it start y-orders only",
    ]
