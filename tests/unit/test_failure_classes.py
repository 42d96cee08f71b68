"""The failure classes: each one recognised on real event shapes, with what it means and what to do.

Scope: batch_dispatch.alerts.failure_classes through `summarize` (the facts come from events/batch/, as
Batch sends them; a variant is a real shape with one field changed, named in the test).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from batch_dispatch.alerts import failure_classes
from batch_dispatch.alerts.failed_job import summarize
from batch_dispatch.alerts.failure_classes import CLASSES, Facts, classify, diagnose, is_operator_cancel
from batch_dispatch.alerts.job_state import parse_event
from tests.conftest import load_event


def event(name: str, change: Callable[[dict[str, Any]], object] | None = None) -> dict[str, Any]:
    loaded = copy.deepcopy(load_event(f"batch/{name}"))
    if change is not None:
        change(loaded["detail"])
    return loaded


def last_container(detail: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = detail["attempts"][-1]["container"]
    return container


def killed(exit_code: int) -> Callable[[dict[str, Any]], None]:
    """The OOM shape without its OutOfMemoryError reason: only the exit code says what happened."""

    def change(detail: dict[str, Any]) -> None:
        last_container(detail).pop("reason")
        last_container(detail)["exitCode"] = exit_code

    return change


def unknown(detail: dict[str, Any]) -> None:
    detail["statusReason"] = "Something Batch has not said before"
    detail["attempts"][-1]["statusReason"] = "Something Batch has not said before"
    last_container(detail).pop("reason")


# (test id, event file, change, class key, what the meaning says, what the next step says)
CASES: list[tuple[str, str, Any, str, str, str]] = [
    (
        "out of memory",
        "job-failed-out-of-memory.json",
        None,
        "out_of_memory",
        "needed more than the 2048 MiB it had",
        "Raise the template parameter `JobMemory` (now 2048 MiB",
    ),
    (
        "timed out",
        "job-failed-timeout.json",
        None,
        "timed_out",
        "ran 1h 0m 12s and hit the job's limit of 1h 0m 0s (3600 s)",
        "raise the template parameter `JobTimeoutSeconds`",
    ),
    (
        "killed by SIGKILL",
        "job-failed-out-of-memory.json",
        killed(137),
        "killed_by_signal",
        "killed with SIGKILL (exit code 137) without an out-of-memory reason",
        "if memory was growing, raise the template parameter `JobMemory`",
    ),
    (
        "killed by SIGTERM",
        "job-failed-out-of-memory.json",
        killed(143),
        "killed_by_signal",
        "asked to stop (SIGTERM, exit code 143)",
        "resubmit if it was not on purpose",
    ),
    (
        "segmentation fault",
        "job-failed-out-of-memory.json",
        killed(139),
        "killed_by_signal",
        "segmentation fault (SIGSEGV, exit code 139)",
        "recent image or library change",
    ),
    (
        "Spot reclaim",
        "job-failed-spot-reclaimed.json",
        None,
        "host_reclaimed",
        "instance running the job was terminated under it",
        "allow more instance types (`InstanceTypes`)",
    ),
    (
        "image tag not found",
        "job-failed-never-running.json",
        None,
        "image_pull_failed",
        "Most likely the tag",
        "the tag exists (`JobImage`",
    ),
    (
        "image pull denied",
        "job-failed-image-pull-denied.json",
        None,
        "image_pull_failed",
        "Most likely permissions",
        "the execution role may pull it",
    ),
    (
        "Fargate resource initialisation",
        "job-failed-fargate-resource-init.json",
        None,
        "fargate_resource_init",
        "Fargate could not prepare the task",
        "subnets reach ECR, Secrets Manager or SSM and CloudWatch Logs",
    ),
    (
        "operator cancel",
        "job-failed-operator-cancelled.json",
        None,
        "cancelled",
        "cancelled or terminated the job (CancelJob/TerminateJob) before it ran",
        "Nothing to fix if this was intended",
    ),
    (
        "operator terminate",
        "job-failed-operator-terminated.json",
        None,
        "cancelled",
        "after running 2m 54s",
        "otherwise resubmit it",
    ),
    (
        "queue time limit",
        "job-cancelled-time-limit.json",
        None,
        "queue_time_limit",
        "longer than the queue allows (`RunnableTimeLimitSeconds`) because: EC2 has no capacity",
        "the blocked-queue message says what to check",
    ),
    (
        "dependency failed",
        "job-failed-dependency.json",
        None,
        "dependency_failed",
        "A job this one depends on failed",
        "Fix and rerun the job it depends on (7b3e9d1f-5a2c-4e8b-a6d4-2c0e8f6a4b2d)",
    ),
    (
        "program exit",
        "job-failed-container.json",
        None,
        "program_exit",
        "The program exited with code 1",
        "what exit code 1 means for this program",
    ),
    (
        "array children",
        "array-parent-failed-storm.json",
        None,
        "array_children_failed",
        "412 of 1000 children of this array job failed",
        "resubmit the failed indexes",
    ),
    (
        "unknown",
        "job-failed-never-running.json",
        unknown,
        "unknown",
        "Batch gave no reason this alert recognises",
        "the Batch console shows every attempt",
    ),
]


@pytest.mark.parametrize(
    ("name", "change", "key", "meaning", "next_step"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_each_class_is_recognised_on_a_real_shape_and_explains_itself(name, change, key, meaning, next_step):
    # Given a FAILED event of this stack's default job type
    summary = summarize(parse_event(event(name, change)), job_type="default")

    # Then its class, what it means and what to do
    assert summary.diagnosis.key == key
    assert meaning in summary.diagnosis.meaning
    assert next_step in summary.diagnosis.next_step


def test_every_class_in_the_table_has_a_case():
    assert {c.key for c in CLASSES} == {case[3] for case in CASES}


# (event, the default job type's advice, a catalog job type's, another stack's job's)
ADVICE = [
    (
        "job-failed-out-of-memory.json",
        "Raise the template parameter `JobMemory` (now 2048 MiB; on Fargate it must fit `JobVcpu`)",
        "Raise `Memory` in the `thumbnails` job type's block in template.yaml (now 2048 MiB; on Fargate it "
        "must fit its `Vcpu`)",
        "Raise the MEMORY in the job definition's resourceRequirements",
    ),
    (
        "job-failed-timeout.json",
        "raise the template parameter `JobTimeoutSeconds`",
        "raise `TimeoutSeconds` in the `thumbnails` job type's block in template.yaml",
        "raise the job definition's timeout",
    ),
    (
        "job-failed-never-running.json",
        "the tag exists (`JobImage`",
        "the tag exists (`Image` in the `thumbnails` job type's block in template.yaml",
        "the tag exists (the job definition's image",
    ),
    (
        # Every job type runs on the stack's compute environment: its parameters apply to all of them.
        "job-failed-spot-reclaimed.json",
        "allow more instance types (`InstanceTypes`)",
        "allow more instance types (`InstanceTypes`)",
        "retry on `Host EC2*` in the job definition",
    ),
]
STACK_JOB_PARAMETERS = ("JobMemory", "JobTimeoutSeconds", "JobImage", "JobVcpu")


@pytest.mark.parametrize(
    ("name", "default_says", "catalog_says", "foreign_says"), ADVICE, ids=[a[0] for a in ADVICE]
)
def test_advice_names_the_setting_where_the_failed_job_type_sets_it(
    name, default_says, catalog_says, foreign_says
):
    # Given the same failure of the default job type, of a catalog job type and of another stack's job
    default = summarize(parse_event(event(name)), job_type="default").diagnosis.next_step
    catalog = summarize(parse_event(event(name)), job_type="thumbnails").diagnosis.next_step
    foreign = summarize(parse_event(event(name)), job_type=None).diagnosis.next_step

    # Then each names the setting that job really has
    assert default_says in default
    assert catalog_says in catalog
    assert foreign_says in foreign
    for parameter in STACK_JOB_PARAMETERS:
        assert parameter not in catalog
        assert parameter not in foreign
    for parameter in ("InstanceTypes", "ComputeType"):
        assert parameter not in foreign


def test_a_sigkill_of_a_catalog_job_type_points_at_its_own_memory():
    summary = summarize(
        parse_event(event("job-failed-out-of-memory.json", killed(137))), job_type="csv-ingest"
    )

    assert summary.diagnosis.key == "killed_by_signal"
    assert (
        "raise `Memory` in the `csv-ingest` job type's block in template.yaml" in summary.diagnosis.next_step
    )


def test_a_queue_time_limit_names_the_stacks_parameter_for_every_job_type_of_the_stack():
    name = "job-cancelled-time-limit.json"

    for job_type in ("default", "nightly-report"):
        meaning = summarize(parse_event(event(name)), job_type=job_type).diagnosis.meaning
        assert "(`RunnableTimeLimitSeconds`)" in meaning
    foreign = summarize(parse_event(event(name))).diagnosis.meaning
    assert "(its job state time limit)" in foreign


@pytest.mark.parametrize(
    "reason",
    [
        "Operator cancelled",  # captured event (spacetelescope/calcloud)
        "Task killed by the user",  # what Airflow's BatchOperator sends on kill
        "Cancelling job.",  # AWS's CancelJob example
        "Terminating job.",  # AWS's TerminateJob example
        "Forced shutdown by aws-lambda-shutdown",
    ],
)
def test_operator_reasons_read_as_cancels(reason):
    assert is_operator_cancel(Facts(status_reason=reason))


@pytest.mark.parametrize(
    "reason",
    [
        "Host EC2 (instance i-0737c70432d64f82a) terminated.",
        "Canceled by JobStateTimeLimit action due to reason: CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY",
        "Essential container in task exited",
        "Job attempt duration exceeded timeout",
        "Dependent Job failed",
        "Task failed to start",
        "Nightly run failed validation",  # free text without an operator's words: not hidden as a cancel
    ],
)
def test_batchs_own_reasons_never_read_as_cancels(reason):
    assert not is_operator_cancel(Facts(status_reason=reason))


def test_an_out_of_memory_reason_wins_over_the_exit_code():
    # The captured calcloud OOM event exited 24, not 137: the container's reason decides
    facts = Facts(
        status_reason="Essential container in task exited",
        container_reason="OutOfMemoryError: Container killed due to memory usage",
        exit_code=24,
        memory_mib=1792,
    )

    assert classify(facts).key == "out_of_memory"
    assert "1792 MiB" in diagnose(facts).meaning


@pytest.mark.parametrize(
    ("facts", "line"),
    [
        (
            Facts(
                status_reason="Essential container in task exited",
                container_reason="OutOfMemoryError: x",
                exit_code=137,
            ),
            "OutOfMemoryError: x (exit code 137, SIGKILL)",
        ),
        (Facts(status_reason="Essential container in task exited", exit_code=2), "Exit code 2"),
        (Facts(status_reason="Essential container in task exited", exit_code=143), "Exit code 143 (SIGTERM)"),
        (Facts(status_reason="Host EC2 (instance i-1) terminated."), "Host EC2 (instance i-1) terminated."),
        (Facts(status_reason="Task failed due to container exit code 1", exit_code=1), "Exit code 1"),
        (Facts(), "No reason given"),
        (Facts(array_size=10, array_failed=3), "3 of 10 children failed"),
    ],
)
def test_the_cause_line_leads_with_the_most_telling_text(facts, line):
    assert failure_classes.cause_line(facts) == line


def test_digest_titles_of_stored_keys_and_of_keys_this_version_does_not_know():
    assert failure_classes.class_for("out_of_memory").title == "out of memory"
    assert failure_classes.class_for("exit code 1").title == "exit code 1"  # a record from before classes
