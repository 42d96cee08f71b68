"""The job catalog: registry entries, routing rules, the registry cache, and submits per job type.

Scope: batch_dispatch.job_types (pure routing over in-memory catalogs) and the submit paths against
moto Batch, DynamoDB and SSM (the registry), as a stack with the default job type plus `thumbnails`.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections import Counter
from typing import Any

import boto3
import pytest

from batch_dispatch import settings as settings_module
from batch_dispatch.job_types import (
    Catalog,
    JobType,
    RerunAllowed,
    catalog_for,
    default_job_type,
    from_registry_entry,
    load_catalog,
)
from batch_dispatch.observability import logger
from batch_dispatch.settings import S3SubmitSettings, ScheduleSubmitSettings
from batch_dispatch.submit import intake
from batch_dispatch.submit.schedule import UnknownJobTypeError, parse_tick, submit_tick
from tests.conftest import MotoBatch, load_event, register_job_definition

REGISTRY = "/batch-dispatch/test-stack/job-types"
QUEUE = "arn:aws:batch:us-east-1:123456789012:job-queue/q"


INTAKE = "stack-intakebucket-1a2b3c"
ATTACHED = "team-landing"


def job_type(
    name: str,
    prefix: str = "",
    suffix: str = "",
    routed: bool = True,
    bucket: str = "",
    output_prefix: str = "",
) -> JobType:
    return JobType(
        name=name,
        job_definition_arn=f"arn:aws:batch:us-east-1:123456789012:job-definition/stack_{name}:1",
        job_queue_arn=QUEUE,
        job_name_prefix=name,
        route_prefix=prefix,
        route_suffix=suffix,
        routed=routed,
        bucket=bucket,
        output_prefix=output_prefix,
    )


def catalog(*types: JobType, intake_bucket: str = "") -> Catalog:
    return Catalog(job_types={t.name: t for t in types}, intake_bucket=intake_bucket)


# --- routing ---------------------------------------------------------------------------------------


def test_the_longest_prefix_wins():
    known = catalog(job_type("all", "incoming/"), job_type("csv", "incoming/csv/"))

    assert known.route("incoming/csv/a.csv").name == "csv"
    assert known.route("incoming/b.csv").name == "all"


def test_with_equal_prefixes_the_longest_suffix_wins():
    known = catalog(job_type("any", "images/"), job_type("png", "images/", ".png"))

    assert known.route("images/a.png").name == "png"
    assert known.route("images/a.jpg").name == "any"


def test_a_key_no_route_fits_starts_nothing():
    known = catalog(job_type("png", "images/", ".png"))

    assert known.route("reports/a.csv") is None
    assert known.route("images/a.jpg") is None


def test_a_default_job_type_with_an_empty_route_takes_what_no_other_route_fits():
    default = default_job_type(job_definition_arn="arn:d", job_queue_arn=QUEUE, job_name_prefix="stack")
    known = catalog(default, job_type("png", "images/", ".png"))

    assert known.route("images/a.png").name == "png"
    assert known.route("anything/else.txt").name == "default"


def test_a_job_type_without_an_upload_route_is_never_routed_to():
    known = catalog(job_type("nightly", routed=False))

    assert known.route("nightly/x") is None


def test_routes_that_fit_the_same_keys_equally_are_reported_as_overlaps():
    known = catalog(job_type("a", "in/", ".csv"), job_type("b", "in/", ".csv"), job_type("c", "in/"))

    assert known.overlaps() == [("a", "b")]


def test_a_job_types_route_applies_to_its_own_bucket_and_the_default_to_every_bucket():
    # Given the default job type, one on the intake bucket and one on an attached bucket
    default = default_job_type(job_definition_arn="arn:d", job_queue_arn=QUEUE, job_name_prefix="stack")
    known = catalog(
        default,
        job_type("csv", "incoming/", ".csv"),
        job_type("orders", "incoming/", ".csv", bucket=ATTACHED),
        intake_bucket=INTAKE,
    )

    # Then the same key routes by bucket
    assert known.route("incoming/a.csv", INTAKE).name == "csv"
    assert known.route("incoming/a.csv", ATTACHED).name == "orders"
    # And in another attached bucket only the default job type's route applies
    assert known.route("incoming/a.csv", "another-bucket").name == "default"
    assert known.route("reports/a.txt", ATTACHED).name == "default"


def test_a_job_type_naming_its_bucket_wins_over_the_default_on_an_equal_route():
    default = default_job_type(job_definition_arn="arn:d", job_queue_arn=QUEUE, job_name_prefix="stack")
    known = catalog(default, job_type("everything", bucket=ATTACHED), intake_bucket=INTAKE)

    assert known.route("any/key.bin", ATTACHED).name == "everything"
    assert known.route("any/key.bin", INTAKE).name == "default"
    assert known.overlaps() == []


def test_a_job_type_without_a_bucket_keeps_routing_any_bucket_when_the_intake_bucket_is_unknown():
    known = catalog(job_type("csv", "incoming/"))

    assert known.route("incoming/a.csv", "whatever-bucket").name == "csv"
    assert known.route("incoming/a.csv").name == "csv"


def test_an_upload_under_an_output_prefix_belongs_to_the_job_type_writing_there():
    # Given job types writing under results/ in the intake bucket and loaded/ in the attached bucket
    known = catalog(
        job_type("csv", "incoming/", output_prefix="results/"),
        job_type("orders", bucket=ATTACHED, output_prefix="loaded/"),
        intake_bucket=INTAKE,
    )

    # Then each output prefix counts in its own job type's bucket only
    writer = known.output_of("results/a.csv", INTAKE)
    assert writer is not None
    assert writer.name == "csv"
    assert known.output_of("results/a.csv", ATTACHED) is None
    loaded = known.output_of("loaded/o.json", ATTACHED)
    assert loaded is not None
    assert loaded.name == "orders"
    assert known.output_of("loaded/o.json", INTAKE) is None
    assert known.output_of("incoming/a.csv", INTAKE) is None


def test_routes_overlap_only_within_one_bucket():
    known = catalog(
        job_type("a", "in/", bucket=ATTACHED),
        job_type("b", "in/", bucket=ATTACHED),
        job_type("c", "in/"),
        job_type("d", "in/", bucket="elsewhere"),
        intake_bucket=INTAKE,
    )

    assert known.overlaps() == [("a", "b")]


def test_a_job_maps_back_to_its_job_type_by_job_definition_whatever_the_revision():
    known = catalog(job_type("thumbnails", "images/"))

    found = known.for_definition("arn:aws:batch:us-east-1:123456789012:job-definition/stack_thumbnails:7")
    assert found is not None
    assert found.name == "thumbnails"
    assert known.for_definition("arn:aws:batch:us-east-1:123456789012:job-definition/other:1") is None


# --- registry entries -------------------------------------------------------------------------------


def entry(**overrides: Any) -> dict[str, Any]:
    return {
        "jobDefinition": "arn:aws:batch:us-east-1:123456789012:job-definition/stack_thumbnails:1",
        "jobQueue": QUEUE,
        "submitMode": "PER_OBJECT",
        "priority": "high",
        "routed": "true",
        "routePrefix": "images/",
        "routeSuffix": ".png",
        "environment": "MODE=fast,LEVEL=3",
        "webhookSecretName": "batch-dispatch/slack-thumbnails",
        "mention": "<!here>",
        "notifySucceeded": "false",
        "scheduleExpression": "cron(0 2 * * ? *)",
        "scheduleTimezone": "UTC",
        "scheduleEnabled": "true",
        **overrides,
    }


def test_a_registry_entry_becomes_a_job_type():
    parsed = from_registry_entry("thumbnails", entry())

    assert parsed.job_name_prefix == "thumbnails"
    assert (parsed.route_prefix, parsed.route_suffix, parsed.routed) == ("images/", ".png", True)
    assert parsed.priority == "high"
    assert dict(parsed.environment) == {"MODE": "fast", "LEVEL": "3"}
    assert parsed.webhook_secret_name == "batch-dispatch/slack-thumbnails"
    assert parsed.schedule_enabled is True
    assert (parsed.bucket, parsed.output_prefix) == ("", "")


def test_a_registry_entry_names_its_upload_bucket_and_output_prefix():
    parsed = from_registry_entry("orders", entry(bucket=ATTACHED, outputPrefix="loaded/"))

    assert (parsed.bucket, parsed.output_prefix) == (ATTACHED, "loaded/")


def test_a_job_types_own_alert_settings_come_from_its_entry():
    parsed = from_registry_entry("thumbnails", entry(logTailLines="5", mentionOnCancel="true"))

    assert parsed.log_tail_lines == 5
    assert parsed.mention_on_cancel is True
    quiet = from_registry_entry("thumbnails", entry(logTailLines="0", mentionOnCancel="false"))
    assert (quiet.log_tail_lines, quiet.mention_on_cancel) == (0, False)


@pytest.mark.parametrize(
    "settings",
    [
        {},  # an entry written before the job type had these settings
        {"logTailLines": "", "mentionOnCancel": ""},  # left empty in the job type's block
        {"logTailLines": "500", "mentionOnCancel": "sometimes"},  # hand-edited out of bounds
        {"logTailLines": "-1", "mentionOnCancel": 1},
    ],
    ids=["absent", "empty", "out of bounds", "malformed"],
)
def test_a_job_type_without_its_own_alert_settings_uses_the_stacks(settings):
    parsed = from_registry_entry("thumbnails", entry(**settings))

    assert parsed.log_tail_lines is None
    assert parsed.mention_on_cancel is None


def test_a_job_types_own_rerun_lists_come_from_its_entry():
    parsed = from_registry_entry(
        "thumbnails",
        entry(rerunAllowedSlackUsers="U0ALICE,W0LEAD", rerunAllowedSlackGroups="S0MEDIA,S0ONCALL,S0MEDIA"),
    )

    # Groups keep their order (they are asked about in it), each once
    assert parsed.rerun_allowed == RerunAllowed(
        users=frozenset({"U0ALICE", "W0LEAD"}), groups=("S0MEDIA", "S0ONCALL"), job_type="thumbnails"
    )


@pytest.mark.parametrize(
    ("users", "groups", "expected"),
    [
        ("U0ALICE", "", RerunAllowed(users=frozenset({"U0ALICE"}), job_type="thumbnails")),
        ("", "S0MEDIA", RerunAllowed(groups=("S0MEDIA",), job_type="thumbnails")),
    ],
    ids=["users only", "groups only"],
)
def test_either_list_alone_is_the_job_types_whole_rule(users, groups, expected):
    # The other list is not taken from the stack: the job type said who may rerun it
    parsed = from_registry_entry(
        "thumbnails", entry(rerunAllowedSlackUsers=users, rerunAllowedSlackGroups=groups)
    )

    assert parsed.rerun_allowed == expected


@pytest.mark.parametrize("users", ["none", " None "])
def test_users_none_allows_nobody_by_id_and_replaces_the_stacks_lists(users):
    logged = io.StringIO()
    handler = logging.StreamHandler(logged)
    logger.addHandler(handler)
    try:
        alone = from_registry_entry("thumbnails", entry(rerunAllowedSlackUsers=users)).rerun_allowed
    finally:
        logger.removeHandler(handler)
    with_group = from_registry_entry(
        "thumbnails", entry(rerunAllowedSlackUsers=users, rerunAllowedSlackGroups="S0MEDIA")
    ).rerun_allowed

    assert alone == RerunAllowed(job_type="thumbnails")
    assert alone.nobody
    assert with_group == RerunAllowed(groups=("S0MEDIA",), job_type="thumbnails")
    assert not with_group.nobody
    assert "Invalid Slack ids" not in logged.getvalue()  # a setting, not a malformed id


@pytest.mark.parametrize(
    "lists",
    [{}, {"rerunAllowedSlackUsers": "", "rerunAllowedSlackGroups": ""}, {"rerunAllowedSlackUsers": " , "}],
    ids=["absent", "empty", "only separators"],
)
def test_a_job_type_without_rerun_lists_uses_the_stacks(lists):
    assert from_registry_entry("thumbnails", entry(**lists)).rerun_allowed is None


@pytest.mark.parametrize(
    "lists",
    [
        {"rerunAllowedSlackUsers": "u0alice"},
        {"rerunAllowedSlackUsers": "S0MEDIA"},  # a group among the users
        {"rerunAllowedSlackGroups": "U0ALICE"},
        {"rerunAllowedSlackUsers": ["U0ALICE"]},  # not text
    ],
    ids=["lower case", "group as user", "user as group", "a list"],
)
def test_a_hand_edited_list_of_no_valid_id_allows_nobody_rather_than_the_stacks_lists(lists):
    parsed = from_registry_entry("thumbnails", entry(**lists))

    assert parsed.rerun_allowed == RerunAllowed(job_type="thumbnails")


def test_a_malformed_id_is_left_out_and_the_valid_ones_kept():
    parsed = from_registry_entry("thumbnails", entry(rerunAllowedSlackUsers="U0ALICE,bob,W0LEAD"))

    assert parsed.rerun_allowed is not None
    assert parsed.rerun_allowed.users == {"U0ALICE", "W0LEAD"}


@pytest.fixture
def ssm() -> Any:
    from moto import mock_aws

    from batch_dispatch import execution_environment

    with mock_aws():
        execution_environment.reset()
        yield boto3.client("ssm")
        execution_environment.reset()


def register(ssm: Any, name: str, value: Any) -> None:
    text = value if isinstance(value, str) else json.dumps(value)
    ssm.put_parameter(Name=f"{REGISTRY}/{name}", Type="String", Value=text, Overwrite=True)


def test_invalid_entries_are_left_out_and_the_rest_is_kept(ssm):
    register(ssm, "thumbnails", entry())
    register(ssm, "broken", "{not json")
    register(ssm, "no-definition", entry(jobDefinition=""))
    register(ssm, "default", entry())  # reserved for the stack's own job type
    register(ssm, "Bad_Name", entry())

    known = load_catalog(None, REGISTRY, max_age=0)

    assert sorted(known.job_types) == ["thumbnails"]


def test_every_page_of_a_large_registry_is_read(ssm):
    # Given more job types than GetParametersByPath returns in one page (10)
    names = [f"type-{n:02d}" for n in range(23)]
    for name in names:
        register(ssm, name, entry())

    # When the catalog is read
    known = load_catalog(None, REGISTRY, max_age=0)

    # Then every one is in it, by its name under the registry path
    assert sorted(known.job_types) == names


def test_the_registry_is_read_at_most_once_per_max_age(ssm):
    # Given a catalog read with a 60 s cache
    register(ssm, "thumbnails", entry())
    assert sorted(load_catalog(None, REGISTRY, max_age=60).job_types) == ["thumbnails"]

    # When a job type is added, the next reads within max_age answer from the cache (no new read)
    register(ssm, "reports", entry())
    assert sorted(load_catalog(None, REGISTRY, max_age=60).job_types) == ["thumbnails"]
    assert sorted(load_catalog(None, REGISTRY, max_age=60).job_types) == ["thumbnails"]


def test_a_short_max_age_sees_a_new_job_type_after_it_expires(ssm):
    register(ssm, "thumbnails", entry())
    assert sorted(load_catalog(None, REGISTRY, max_age=1).job_types) == ["thumbnails"]
    register(ssm, "reports", entry())

    time.sleep(1.1)

    assert sorted(load_catalog(None, REGISTRY, max_age=1).job_types) == ["reports", "thumbnails"]


# --- submitting per job type ------------------------------------------------------------------------


@pytest.fixture
def thumbnails(moto_batch: MotoBatch, monkeypatch: pytest.MonkeyPatch) -> JobType:
    """A second job type registered next to the default one, with its own job definition."""
    definition = register_job_definition("stack_thumbnails", vcpu="1", memory="2048")
    register(
        boto3.client("ssm"),
        "thumbnails",
        entry(jobDefinition=definition, jobQueue=moto_batch.job_queue_arn),
    )
    monkeypatch.setenv("JOB_TYPES_PATH", REGISTRY)
    monkeypatch.setenv("UPLOAD_PREFIX", "incoming/")
    settings_module.reset()
    found = catalog_for(settings_module.load(S3SubmitSettings)).get("thumbnails")
    assert found is not None
    return found


def tick_for(job_type_name: str | None, when: str = "2026-11-23T02:00:00Z") -> dict[str, Any]:
    event = {**load_event("schedule/scheduler-tick.json"), "scheduledTime": when}
    event["scheduleArn"] = event["scheduleArn"].replace("ScheduleSubmitFunctionSchedule", f"{job_type_name}")
    if job_type_name:
        event["jobType"] = job_type_name
    return event


def test_a_tick_of_a_job_type_submits_its_job_definition_named_after_it(
    moto_batch, thumbnails, lambda_context
):
    outcome = submit_tick(
        parse_tick(tick_for("thumbnails")), settings_module.load(ScheduleSubmitSettings), lambda_context
    )

    [job] = moto_batch.jobs()
    assert job["jobId"] == outcome.job.job_id
    assert job["jobDefinition"] == thumbnails.job_definition_arn
    assert job["jobName"].startswith("thumbnails-")
    # And the job type's environment variables reach the container
    overrides = {e["name"]: e["value"] for e in job["container"].get("environment", [])}
    assert overrides.get("MODE") == "fast"


def test_a_tick_of_an_unknown_job_type_fails_with_what_to_do(moto_batch, thumbnails, lambda_context):
    with pytest.raises(UnknownJobTypeError, match="not in this stack's catalog"):
        submit_tick(
            parse_tick(tick_for("gone")), settings_module.load(ScheduleSubmitSettings), lambda_context
        )
    assert moto_batch.jobs() == []


def sqs_event(*keys: str, versions: tuple[str, ...] = ()) -> dict[str, Any]:
    records = []
    for n, key in enumerate(keys):
        body = json.loads(load_event("s3/sqs-object-created.json")["Records"][0]["body"])
        body["Records"][0]["s3"]["object"]["key"] = key
        body["Records"][0]["s3"]["object"]["versionId"] = versions[n] if versions else f"v{n}"
        records.append(
            {
                **load_event("s3/sqs-object-created.json")["Records"][0],
                "messageId": f"m{n}",
                "body": json.dumps(body),
            }
        )
    return {"Records": records}


def test_uploads_are_routed_to_their_job_types_and_unrouted_keys_are_skipped(
    moto_batch, thumbnails, lambda_context
):
    # Given the default job type on incoming/ and thumbnails on images/*.png
    event = sqs_event("images/cat.png", "incoming/report.csv", "images/cat.jpg", "elsewhere/x.bin")

    # When the batch is handled
    response = intake.handle(event, settings_module.load(S3SubmitSettings), lambda_context)

    # Then each routed upload is one job of its job type, the others start nothing and are not failures
    assert response == {"batchItemFailures": []}
    by_definition = Counter(
        (job["jobDefinition"] == thumbnails.job_definition_arn, job["parameters"]["key"])
        for job in moto_batch.jobs()
    )
    assert by_definition == Counter({(True, "images/cat.png"): 1, (False, "incoming/report.csv"): 1})


def test_each_job_type_submits_an_upload_once_however_often_it_is_delivered(
    moto_batch, thumbnails, lambda_context
):
    event = sqs_event("images/a.png", "images/a.png", "incoming/a.csv", versions=("v1", "v1", "v2"))
    settings = settings_module.load(S3SubmitSettings)

    intake.handle(event, settings, lambda_context)
    intake.handle(event, settings, lambda_context)

    assert sorted(job["parameters"]["key"] for job in moto_batch.jobs()) == ["images/a.png", "incoming/a.csv"]


# --- the catalog check make lint runs ----------------------------------------------------------------


def declared(*job_types: tuple[str, str, str, str]) -> dict[str, Any]:
    return {
        "Resources": {
            logical_id: {
                "Type": "AWS::Serverless::Application",
                "Properties": {
                    "Location": "job-types/job-type.yaml",
                    "Parameters": {"Name": name, "UploadPrefix": prefix, "UploadSuffix": suffix},
                },
            }
            for logical_id, name, prefix, suffix in job_types
        }
    }


def test_the_lint_check_refuses_an_upload_bucket_the_known_attached_buckets_lack(tmp_path):
    from scripts.check_job_types import attached_buckets, problems, upload_buckets

    # Given a job type on an attached bucket, and a samconfig.toml whose prod environment attaches
    # another bucket and whose dev environment sets nothing
    template = declared(("Orders", "orders", "orders/", ""))
    template["Resources"]["Orders"]["Properties"]["Parameters"]["UploadBucket"] = "partner-orders"
    template["Parameters"] = {"AttachedBuckets": {"Type": "String", "Default": ""}}
    samconfig = tmp_path / "samconfig.toml"
    samconfig.write_text(
        "version = 0.1\n"
        "[dev.deploy.parameters]\n"
        'parameter_overrides = "Environment=\\"dev\\""\n'
        "[prod.deploy.parameters]\n"
        'parameter_overrides = "Environment=\\"prod\\" AttachedBuckets=\\"team-landing\\""\n',
        encoding="utf-8",
    )

    # When the check reads what it can know before a deploy
    known = attached_buckets(template, samconfig)

    # Then prod is known and lacks the bucket: refused, naming where
    assert known == {"samconfig.toml [prod]": ["team-landing"]}
    (problem,) = problems(template, known)
    assert "partner-orders" in problem
    assert "samconfig.toml [prod]" in problem
    # And once prod lists it, nothing is refused; with nothing known, the bucket is only reported
    assert problems(template, {"samconfig.toml [prod]": ["team-landing", "partner-orders"]}) == []
    assert problems(template, {}) == []
    assert upload_buckets(template) == {"Orders": "partner-orders"}


def test_the_lint_check_refuses_job_types_whose_routes_fit_the_same_keys():
    from scripts.check_job_types import problems

    clean = declared(("A", "thumbnails", "images/", ".png"), ("B", "icons", "images/icons/", ".png"))
    overlapping = declared(("A", "thumbnails", "images/", ".png"), ("B", "icons", "images/", ".png"))
    misnamed = declared(("A", "Thumbnails", "", ""), ("B", "default", "", ""))

    assert problems(clean) == []
    assert [p.split(":")[0] for p in problems(overlapping)] == ["B"]
    assert len(problems(misnamed)) == 2
