"""Rerun a finished job (submit/rerun.py) against moto: the jobs Batch then holds, the manifests in S3.

moto's no-Docker Batch ends every job (and every child of an array job) the same way: SUCCEEDED, or FAILED
with MOTO_SIMPLE_BATCH_FAIL_AFTER=0. A real array job's children each end their own way, so some tests set
a child's status in moto's job model (tests.conftest.set_batch_status).
"""

from __future__ import annotations

import json
import re
from typing import Any

import boto3
import pytest

from batch_dispatch.aws.idempotency import INPROGRESS, persistence_layer, record_id, record_layout
from batch_dispatch.submit import rerun as rerun_module
from batch_dispatch.submit.rerun import (
    ARRAY_INDEX_VARIABLE,
    ForeignJobError,
    JobNotFoundError,
    JobStillRunningError,
    NothingToRerunError,
    RerunInProgressError,
    TooManyChildrenError,
    rerun,
    rerun_name,
)
from tests.conftest import set_batch_status
from tests.unit.conftest import BUCKET, PREFIX, Stack

VALID_JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")


def environment_of(job: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in job["container"]["environment"]}


def write_manifest(key: str, lines: list[dict[str, str]]) -> None:
    body = "".join(json.dumps(line) + "\n" for line in lines)
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=body.encode())


def manifest_lines(key: str) -> list[dict[str, str]]:
    body = boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
    return [json.loads(line) for line in body.splitlines() if line.strip()]


def array_mode_job(
    stack: Stack, manifest: str, lines: list[dict[str, str]], succeeded: tuple[int, ...] = ()
) -> str:
    """An array-mode job as burst mode submits it, one child per line of manifest `<manifest>.jsonl`;
    the children in `succeeded` succeeded, the others failed. Returns the parent's job id."""
    key = f"{PREFIX}{manifest}.jsonl"
    write_manifest(key, lines)
    parent = stack.submit(
        f"batch-dispatch-test-array-{manifest}",
        arrayProperties={"size": len(lines)},
        parameters={"manifestBucket": BUCKET, "manifestKey": key, "objectCount": str(len(lines))},
        tags={"batch-dispatch:manifest": manifest, "batch-dispatch:job-type": "default"},
    )
    for index in succeeded:
        set_batch_status(f"{parent}:{index}", "SUCCEEDED")
    return parent


# --------------------------------------------------------------------------------------------------------
# A whole job


def test_a_failed_job_is_submitted_again_like_the_original(rerun_stack: Stack):
    # Given a failed job submitted with parameters and container overrides
    original_id = rerun_stack.submit(
        "nightly-report-20261123",
        parameters={"key": "reports/today.csv"},
        containerOverrides={
            "command": ["python", "-m", "report", "Ref::key"],
            "environment": [{"name": "MODE", "value": "full"}],
        },
        tags={"team": "data"},
    )

    # When it is rerun
    outcome = rerun(original_id, rerun_stack.policy, requested_by="U0ONCALL")

    # Then Batch holds one new job: same definition, queue, parameters, command and environment
    (new,) = rerun_stack.rerun_jobs()
    assert outcome.jobs[0].job_id == new["jobId"]
    assert outcome.duplicate is False
    assert new["jobDefinition"] == rerun_stack.definition
    assert new["jobQueue"] == rerun_stack.batch.job_queue_arn
    assert new["parameters"]["key"] == "reports/today.csv"
    assert new["container"]["command"] == ["python", "-m", "report", "Ref::key"]
    environment = environment_of(new)
    assert environment["MODE"] == "full"
    assert environment["ENVIRONMENT"] == "test"
    # And its name says what it is; it is tagged with the original and who asked, keeping the original's tags
    assert new["jobName"] == rerun_name("nightly-report-20261123", original_id)
    assert new["jobName"].startswith("nightly-report-20261123-rerun-")
    assert new["tags"]["batch-dispatch:rerun-of"] == original_id
    assert new["tags"]["batch-dispatch:rerun-by"] == "U0ONCALL"
    assert new["tags"]["team"] == "data"


def test_batchs_own_variables_are_not_passed_on(rerun_stack: Stack):
    # Given a failed job (DescribeJobs lists AWS_BATCH_JOB_ID among its variables: Batch sets it)
    original_id = rerun_stack.submit("job-a")
    original = rerun_stack.jobs()["job-a"]
    assert "AWS_BATCH_JOB_ID" in environment_of(original)

    # When it is rerun
    rerun(original_id, rerun_stack.policy)

    # Then the rerun was not submitted with any AWS_BATCH_ variable (Batch refuses those in overrides)
    backend_overrides = rerun_stack.batch.jobs()  # described again: the new job's own AWS_BATCH_JOB_ID only
    (new,) = [j for j in backend_overrides if "-rerun-" in j["jobName"]]
    ids = [e["value"] for e in new["container"]["environment"] if e["name"] == "AWS_BATCH_JOB_ID"]
    assert original_id not in ids


def test_a_succeeded_job_may_be_rerun_too(rerun_stack: Stack):
    original_id = rerun_stack.submit("job-ok", failed=False)

    rerun(original_id, rerun_stack.policy)

    assert len(rerun_stack.rerun_jobs()) == 1


def test_the_same_request_twice_reruns_once_and_says_so(rerun_stack: Stack):
    # Given a failed job rerun once (a click)
    original_id = rerun_stack.submit("job-b")
    first = rerun(original_id, rerun_stack.policy)

    # When the same request comes again (a double click, a replay)
    second = rerun(original_id, rerun_stack.policy)

    # Then no second job: the answer is the first rerun's job, marked as a duplicate
    assert len(rerun_stack.rerun_jobs()) == 1
    assert second.duplicate is True
    assert second.jobs == first.jobs


def test_either_button_reruns_a_job_once(rerun_stack: Stack):
    # Given an array job rerun whole
    original_id = rerun_stack.submit("array-job", arrayProperties={"size": 2})
    rerun(original_id, rerun_stack.policy)

    # When its failed children are asked for next (the other button: same key, the job id)
    again = rerun(original_id, rerun_stack.policy, failed_children_only=True)

    # Then nothing more is submitted
    assert again.duplicate is True
    assert len(rerun_stack.rerun_jobs()) == 1


def test_another_request_key_is_another_rerun(rerun_stack: Stack):
    # Given a job already rerun for the Slack button (key: the job id)
    original_id = rerun_stack.submit("job-c")
    first = rerun(original_id, rerun_stack.policy)

    # When an operator asks again with a key of their own
    second = rerun(original_id, rerun_stack.policy, request_key=f"{original_id}#cli-2")

    # Then it is a second rerun, with a name of its own
    assert second.duplicate is False
    assert second.jobs[0].job_name != first.jobs[0].job_name
    assert len(rerun_stack.rerun_jobs()) == 2


def test_a_rerun_that_died_after_submitting_is_adopted_not_repeated(rerun_stack: Stack):
    # Given a job whose rerun was submitted by an attempt that died before recording it
    original_id = rerun_stack.submit("job-d")
    name = rerun_name("job-d", original_id)
    earlier = rerun_stack.submit(name, failed=False)

    # When the rerun is asked for again
    outcome = rerun(original_id, rerun_stack.policy)

    # Then the job already there is the answer; nothing new is submitted
    assert [j.job_id for j in outcome.jobs] == [earlier]
    assert len(rerun_stack.rerun_jobs()) == 1


def test_long_names_are_shortened_and_stay_valid(rerun_stack: Stack):
    original_id = rerun_stack.submit("x" * 128)

    outcome = rerun(original_id, rerun_stack.policy)

    assert VALID_JOB_NAME.match(outcome.jobs[0].job_name)
    assert outcome.jobs[0].job_name.startswith("x" * 100)


# --------------------------------------------------------------------------------------------------------
# An array job's failed children


def test_failed_children_of_an_array_mode_job_get_a_manifest_of_their_own(rerun_stack: Stack):
    # Given an array-mode job of 4 objects whose children 1 and 3 failed
    lines = [{"bucket": BUCKET, "key": f"in/{i}.csv", "idempotencyId": f"s3-object#{i}"} for i in range(4)]
    parent = array_mode_job(rerun_stack, "abc", lines, succeeded=(0, 2))

    # When its failed children are rerun
    outcome = rerun(parent, rerun_stack.policy, failed_children_only=True)

    # Then one array job of 2 children reads a new manifest holding exactly lines 1 and 3
    (new,) = rerun_stack.rerun_jobs()
    assert new["arrayProperties"]["size"] == 2
    assert outcome.children == (1, 3)
    new_key = new["parameters"]["manifestKey"]
    assert new_key.startswith(PREFIX)
    assert new_key != f"{PREFIX}abc.jsonl"
    assert new["parameters"]["manifestBucket"] == BUCKET
    assert new["parameters"]["objectCount"] == "2"
    assert manifest_lines(new_key) == [lines[1], lines[3]]
    assert outcome.manifest_key == new_key
    assert new["tags"]["batch-dispatch:manifest"] == new_key.rsplit("/", 1)[-1].removesuffix(".jsonl")
    # And the original manifest is untouched
    assert manifest_lines(f"{PREFIX}abc.jsonl") == lines


def test_one_failed_child_of_an_array_mode_job_is_a_plain_job_for_its_object(rerun_stack: Stack):
    # Given an array-mode job of 3 objects whose child 2 alone failed
    lines = [
        {"bucket": BUCKET, "key": f"in/{i}.csv", "idempotencyId": f"s3-object#{i}", "lineage": f"lin-{i}"}
        for i in range(3)
    ]
    parent = array_mode_job(rerun_stack, "def", lines, succeeded=(0, 1))

    # When its failed children are rerun
    rerun(parent, rerun_stack.policy, failed_children_only=True)

    # Then a plain job runs that object, as array mode submits a single object (no manifest)
    (new,) = rerun_stack.rerun_jobs()
    assert "arrayProperties" not in new
    assert new["parameters"]["bucket"] == BUCKET
    assert new["parameters"]["key"] == "in/2.csv"
    assert new["parameters"]["manifestKey"] == "none"  # the definition's default: no manifest
    assert "idempotencyId" not in new["parameters"]
    # And its input lineage is in its environment, as array mode gives a single object's job
    assert "lineage" not in new["parameters"]
    assert environment_of(new)["BATCH_DISPATCH_LINEAGE"] == "lin-2"
    assert "batch-dispatch:manifest" not in new["tags"]
    assert new["tags"]["batch-dispatch:job-type"] == "default"


def test_failed_children_of_another_array_job_are_one_job_each_with_their_index(rerun_stack: Stack):
    # Given an array job of 4 children (no manifest) whose children 0 and 2 failed
    parent = rerun_stack.submit("fan-out", arrayProperties={"size": 4}, parameters={"key": "all"})
    set_batch_status(f"{parent}:1", "SUCCEEDED")
    set_batch_status(f"{parent}:3", "SUCCEEDED")

    # When its failed children are rerun
    outcome = rerun(parent, rerun_stack.policy, failed_children_only=True)

    # Then one plain job per failed child, its index in BATCH_DISPATCH_ARRAY_INDEX
    jobs = rerun_stack.rerun_jobs()
    assert sorted(environment_of(j)[ARRAY_INDEX_VARIABLE] for j in jobs) == ["0", "2"]
    assert all("arrayProperties" not in j and j["parameters"]["key"] == "all" for j in jobs)
    assert sorted(j.job_name for j in outcome.jobs) == sorted(j["jobName"] for j in jobs)
    assert {j["jobName"].rsplit("-", 1)[1] for j in jobs} == {"0", "2"}


def test_too_many_failed_children_without_a_manifest_are_refused(rerun_stack: Stack):
    # Given an array job without a manifest whose 3 children failed, and a cap of 2 separate jobs
    parent = rerun_stack.submit("wide", arrayProperties={"size": 3})
    policy = rerun_stack.policy._replace(max_separate_jobs=2)

    # When its failed children are asked for, then it is refused, saying why and what to do instead
    with pytest.raises(TooManyChildrenError, match=r"3 children of wide failed.*at most 2.*whole array job"):
        rerun(parent, policy, failed_children_only=True)
    assert rerun_stack.rerun_jobs() == []


def test_an_array_childs_own_id_reruns_that_child(rerun_stack: Stack):
    # Given an array job (no manifest) whose children all failed
    parent = rerun_stack.submit("fan-in", arrayProperties={"size": 3})

    # When child 1 is asked for by its own id
    outcome = rerun(f"{parent}:1", rerun_stack.policy)

    # Then that child alone runs again
    (new,) = rerun_stack.rerun_jobs()
    assert environment_of(new)[ARRAY_INDEX_VARIABLE] == "1"
    assert outcome.children == (1,)


def test_an_array_job_whose_children_all_succeeded_has_nothing_to_rerun(rerun_stack: Stack):
    parent = rerun_stack.submit("all-good", arrayProperties={"size": 2}, failed=False)

    with pytest.raises(NothingToRerunError, match=r"No child of array job all-good .* failed"):
        rerun(parent, rerun_stack.policy, failed_children_only=True)
    assert rerun_stack.rerun_jobs() == []


def test_failed_children_of_a_plain_job_are_refused(rerun_stack: Stack):
    original_id = rerun_stack.submit("plain")

    with pytest.raises(NothingToRerunError, match="not an array job"):
        rerun(original_id, rerun_stack.policy, failed_children_only=True)


# --------------------------------------------------------------------------------------------------------
# Refusals


def test_a_job_batch_does_not_know_is_refused(rerun_stack: Stack):
    with pytest.raises(JobNotFoundError, match="Batch has no job 00000000-0000-0000-0000-000000000000"):
        rerun("00000000-0000-0000-0000-000000000000", rerun_stack.policy)


def test_a_job_still_running_is_refused(rerun_stack: Stack):
    original_id = rerun_stack.submit("busy")
    set_batch_status(original_id, "RUNNING")

    with pytest.raises(JobStillRunningError, match=r"busy .* is RUNNING: rerun it once it has ended"):
        rerun(original_id, rerun_stack.policy)
    assert rerun_stack.rerun_jobs() == []


def test_another_stacks_job_is_refused(rerun_stack: Stack):
    original_id = rerun_stack.submit("theirs", definition=rerun_stack.foreign_definition)

    with pytest.raises(ForeignJobError, match=r"not a job of stack batch-dispatch-test.*other-stack_default"):
        rerun(original_id, rerun_stack.policy)
    assert rerun_stack.rerun_jobs() == []


def test_a_refusal_is_not_remembered(rerun_stack: Stack):
    # Given a refused request (the job was still running)
    original_id = rerun_stack.submit("later")
    set_batch_status(original_id, "RUNNING")
    with pytest.raises(JobStillRunningError):
        rerun(original_id, rerun_stack.policy)

    # When it is asked again once the job has ended
    set_batch_status(original_id, "FAILED")
    outcome = rerun(original_id, rerun_stack.policy)

    # Then it is rerun
    assert outcome.duplicate is False
    assert len(rerun_stack.rerun_jobs()) == 1


def test_a_rerun_in_progress_elsewhere_is_refused_without_submitting(rerun_stack: Stack):
    # Given another invocation is rerunning the job right now (its idempotency record is INPROGRESS)
    original_id = rerun_stack.submit("contested")
    store = persistence_layer(rerun_stack.policy.idempotency_table_name, rerun_module.IDEMPOTENCY_PREFIX)
    layout = record_layout(store)
    key = record_id(rerun_module.IDEMPOTENCY_PREFIX, {"requestKey": original_id})
    boto3.client("dynamodb").put_item(
        TableName=rerun_stack.policy.idempotency_table_name,
        Item={
            layout.id: {"S": key},
            layout.status: {"S": INPROGRESS},
            layout.expiry: {"N": "9999999999"},
            layout.in_progress_expiry: {"N": "9999999999000"},
        },
    )

    # When it is asked for, then the answer says a rerun is under way, and nothing is submitted
    with pytest.raises(RerunInProgressError, match="being submitted right now"):
        rerun(original_id, rerun_stack.policy)
    assert rerun_stack.rerun_jobs() == []


def test_a_whole_rerun_of_an_array_mode_job_reads_the_same_manifest(rerun_stack: Stack):
    parent = array_mode_job(rerun_stack, "ghi", [{"bucket": BUCKET, "key": f"in/{i}.csv"} for i in range(2)])

    rerun(parent, rerun_stack.policy)

    (new,) = rerun_stack.rerun_jobs()
    assert new["arrayProperties"]["size"] == 2
    assert new["parameters"]["manifestKey"] == f"{PREFIX}ghi.jsonl"
    assert new["tags"]["batch-dispatch:manifest"] == "ghi"
