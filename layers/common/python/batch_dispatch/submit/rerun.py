"""Rerun a finished job of this stack, exactly once per request key. The Slack Rerun button and the
operator CLI both call `rerun`.

The rerun has the original's job definition (the same revision), queue, parameters and container
overrides: the command, the environment (less the AWS_BATCH_* variables Batch sets itself) and the
resource requirements DescribeJobs reports. What is submitted:
- the whole job: one job like the original (an array job: every child runs again);
- an array job's FAILED children (`failed_children_only`; an array child's own id means that child):
  - array-mode jobs (parameters manifestBucket/manifestKey): a new manifest of just those lines, under
    the manifest prefix, and one array job of that size; a single child becomes a plain job with its
    line's parameters, as array mode submits a single object;
  - other array jobs: one job per child (at most `max_separate_jobs`), its index in
    BATCH_DISPATCH_ARRAY_INDEX. Batch reserves the AWS_BATCH_ prefix, so no job can be handed
    AWS_BATCH_JOB_ARRAY_INDEX: such a job must read BATCH_DISPATCH_ARRAY_INDEX when that is absent.
Anything else is refused with a RerunRefusedError whose message a person reads.

Exactly once: Powertools idempotency on the request key (prefix `rerun`; the Slack button's key is the
job id, so a job is rerun once whichever button is clicked, however often). Job names are
`<original name, shortened>-rerun-<hash of the key>` (`-<index>` per separate child), so jobs an attempt
submitted before dying are found by name and adopted instead of submitted again.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, cast

from aws_lambda_powertools.utilities.idempotency import idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_dispatch.aws.batch_jobs import (
    MAX_JOB_NAME_LENGTH,
    JobSpec,
    SubmittedJob,
    array_child_indices,
    describe_job,
    find_jobs_by_name_prefix,
    job_name_part,
    submit_job,
)
from batch_dispatch.aws.idempotency import idempotency_config, persistence_layer
from batch_dispatch.job_types import definition_family, is_stack_definition
from batch_dispatch.observability import MetricUnit, logger, metrics
from batch_dispatch.submit import manifests
from batch_dispatch.submit.upload_job import LINEAGE_ENV

IDEMPOTENCY_PREFIX = "rerun"
FINISHED = ("SUCCEEDED", "FAILED")
MAX_SEPARATE_JOBS = 10  # separate jobs per rerun: each is a SubmitJob call inside Slack's 3 seconds
OUTSIDE_LAMBDA_SECONDS = 60.0  # a caller without a Lambda context (the CLI): its rerun's time budget
ARRAY_INDEX_VARIABLE = "BATCH_DISPATCH_ARRAY_INDEX"
BATCH_VARIABLE_PREFIX = "AWS_BATCH_"  # set by Batch itself; refused in overrides
PLACEHOLDER = "none"  # a job definition's default for a parameter nobody set
TRIGGER_TAG, RERUN_OF_TAG, RERUN_BY_TAG = (
    "batch-dispatch:trigger",
    "batch-dispatch:rerun-of",
    "batch-dispatch:rerun-by",
)
MANIFEST_TAG, ARRAY_INDEX_TAG = "batch-dispatch:manifest", "batch-dispatch:array-index"
MAX_TAGS = 50
_INDEX_ROOM = 6  # "-9999" after a separate child's name, and a spare character
_TAG_VALUE = re.compile(r"[^\w .:/=+@-]+")


# --------------------------------------------------------------------------------------------------------
# Refusals


class RerunRefusedError(Exception):
    """Nothing was submitted, for a reason the message explains to the person who asked."""

    reason = "refused"  # a short label for logs and metrics


class JobNotFoundError(RerunRefusedError):
    reason = "not_found"


class JobStillRunningError(RerunRefusedError):
    reason = "still_running"


class ForeignJobError(RerunRefusedError):
    reason = "not_this_stack"


class NothingToRerunError(RerunRefusedError):
    reason = "nothing_failed"


class TooManyChildrenError(RerunRefusedError):
    reason = "too_many_children"


class UnsupportedJobError(RerunRefusedError):
    reason = "unsupported"


class RerunInProgressError(RerunRefusedError):
    reason = "in_progress"


# --------------------------------------------------------------------------------------------------------
# What a rerun needs to know and what it did


class RerunPolicy(NamedTuple):
    stack_name: str  # the stack's job definitions are named <stack>_<job type>
    idempotency_table_name: str
    manifest_prefix: str = "_batch-dispatch/manifests/"
    max_separate_jobs: int = MAX_SEPARATE_JOBS


class RerunOutcome(NamedTuple):
    original_job_id: str
    original_job_name: str
    jobs: tuple[SubmittedJob, ...]
    children: tuple[int, ...] = ()  # the array indices rerun; () = the whole job
    manifest_key: str | None = None  # the rerun's own manifest (failed children of an array-mode job)
    duplicate: bool = False  # an earlier request with the same key had rerun it: these are its jobs

    def as_record(self) -> dict[str, Any]:
        """The outcome as the idempotency record keeps it (JSON)."""
        return {
            "originalJobId": self.original_job_id,
            "originalJobName": self.original_job_name,
            "jobs": [{"jobId": j.job_id, "jobName": j.job_name} for j in self.jobs],
            "children": list(self.children),
            "manifestKey": self.manifest_key,
            "duplicate": False,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> RerunOutcome:
        return cls(
            original_job_id=str(record.get("originalJobId", "")),
            original_job_name=str(record.get("originalJobName", "")),
            jobs=tuple(SubmittedJob(str(j["jobId"]), str(j["jobName"])) for j in record.get("jobs", [])),
            children=tuple(int(i) for i in record.get("children", [])),
            manifest_key=record.get("manifestKey"),
            duplicate=bool(record.get("duplicate")),
        )


class TimeBudget:
    """A deadline shaped like the Lambda context's, for callers outside Lambda: Powertools gives the
    INPROGRESS record this much time, so a run that dies does not hold its key until the record expires."""

    def __init__(self, seconds: float) -> None:
        self._ends = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._ends - time.monotonic()) * 1000))


class Plan(NamedTuple):
    """The jobs to submit for one rerun (and the manifest to write before them)."""

    original_job_id: str
    original_job_name: str
    queue: str
    definition: str
    base_name: str
    specs: tuple[JobSpec, ...]
    children: tuple[int, ...] = ()
    manifest: tuple[str, str, tuple[str, ...]] | None = None  # bucket, key, lines


# --------------------------------------------------------------------------------------------------------
# The use case


def rerun(
    job_id: str,
    policy: RerunPolicy,
    *,
    request_key: str | None = None,
    failed_children_only: bool = False,
    requested_by: str = "",
    lambda_context: LambdaContext | None = None,
    described: Mapping[str, Any] | None = None,
) -> RerunOutcome:
    """Rerun `job_id` once per `request_key` (default: the job id). A repeated request returns the first
    one's jobs with `duplicate=True`. Raises a RerunRefusedError subclass when nothing may be submitted.
    `described`: the job as DescribeJobs answered the caller a moment ago (saves reading it again)."""
    job_id = job_id.strip()
    if not job_id:
        raise JobNotFoundError("No job id given: name the Batch job to rerun.")
    key = request_key or job_id
    context = lambda_context or cast(LambdaContext, TimeBudget(OUTSIDE_LAMBDA_SECONDS))

    @idempotent_function(
        data_keyword_argument="request",
        persistence_store=persistence_layer(policy.idempotency_table_name, IDEMPOTENCY_PREFIX),
        config=idempotency_config(context),
        key_prefix=IDEMPOTENCY_PREFIX,
    )
    def rerun_once(request: Mapping[str, Any]) -> dict[str, Any]:
        job = rerunnable(job_id, described or describe_job(job_id), policy)
        plan = plan_rerun(job, key, policy, failed_children_only, requested_by)
        return submit_plan(plan, lambda: context.get_remaining_time_in_millis() / 1000).as_record()

    try:
        outcome = RerunOutcome.from_record(rerun_once(request={"requestKey": key}))
    except IdempotencyAlreadyInProgressError:
        raise RerunInProgressError(
            f"A rerun of {job_id} is being submitted right now (another click or request); "
            "its result is on its way."
        ) from None
    if outcome.duplicate:
        metrics.add_metric(name="DuplicateSkipped", unit=MetricUnit.Count, value=1)
        logger.info("Job already rerun", extra={"job_id": job_id, "rerun_job_ids": _ids(outcome)})
    else:
        metrics.add_metric(name="JobRerun", unit=MetricUnit.Count, value=1)
        logger.info(
            "Job rerun submitted",
            extra={
                "job_id": job_id,
                "rerun_job_ids": _ids(outcome),
                "children": len(outcome.children),
                "requested_by": requested_by,
            },
        )
    return outcome


def _ids(outcome: RerunOutcome) -> list[str]:
    return [job.job_id for job in outcome.jobs]


def rerunnable(job_id: str, job: Mapping[str, Any] | None, policy: RerunPolicy) -> Mapping[str, Any]:
    """`job` (DescribeJobs' answer for `job_id`), if this stack may rerun it now; otherwise the refusal
    that says why not."""
    if job is None:
        raise JobNotFoundError(
            f"Batch has no job {job_id}: it may be older than Batch keeps finished jobs (about 7 days), "
            "or belong to another account or region."
        )
    name = str(job.get("jobName") or job_id)
    if not is_stack_definition(policy.stack_name, job.get("jobDefinition")):
        family = definition_family(job.get("jobDefinition")) or "unknown"
        raise ForeignJobError(
            f"{name} ({job_id}) is not a job of stack {policy.stack_name}: its job definition {family} is "
            f"not one of {policy.stack_name}_*. Rerun it where it was submitted."
        )
    status = str(job.get("status") or "unknown")
    if status not in FINISHED:
        raise JobStillRunningError(
            f"{name} ({job_id}) is {status}: rerun it once it has ended (SUCCEEDED or FAILED)."
        )
    if job.get("nodeProperties") or not isinstance(job.get("container"), dict):
        raise UnsupportedJobError(
            f"{name} ({job_id}) is a multi-node, ECS- or EKS-properties job; the rerun handles container "
            "jobs only. Resubmit it from the Batch console."
        )
    return job


def plan_rerun(
    job: Mapping[str, Any], key: str, policy: RerunPolicy, failed_children_only: bool, requested_by: str
) -> Plan:
    """What to submit for `job` (already checked by `rerunnable`)."""
    job_id, name = str(job["jobId"]), str(job.get("jobName") or job["jobId"])
    array = job.get("arrayProperties") or {}
    base = rerun_name(name, key)
    whole = JobSpec(
        job_name=base,
        parameters={str(k): str(v) for k, v in (job.get("parameters") or {}).items()},
        environment=batch_free_environment(job["container"]),
        array_size=array.get("size") if isinstance(array.get("size"), int) else None,
        tags=rerun_tags(job, requested_by),
        command=_command(job["container"]),
        resource_requirements=_resource_requirements(job["container"]),
    )
    plan = Plan(
        original_job_id=job_id,
        original_job_name=name,
        queue=str(job["jobQueue"]),
        definition=str(job["jobDefinition"]),
        base_name=base,
        specs=(whole,),
    )
    child = array_index(job_id, array)
    if child is not None:  # an array child's own id: that child
        indices: tuple[int, ...] = (child,)
    elif not failed_children_only:
        return plan
    elif whole.array_size is None:
        raise NothingToRerunError(f"{name} ({job_id}) is not an array job: rerun it whole instead.")
    else:
        indices = tuple(array_child_indices(job_id, "FAILED"))
        if not indices:
            raise NothingToRerunError(f"No child of array job {name} ({job_id}) failed: nothing to rerun.")
    whole = whole._replace(array_size=None)
    manifest = manifest_of(whole.parameters)
    if manifest is not None:
        return manifest_plan(plan, whole, manifest, indices, key, policy, name)
    return separate_plan(plan, whole, indices, policy, name)


def manifest_plan(
    plan: Plan,
    whole: JobSpec,
    manifest: tuple[str, str],
    indices: tuple[int, ...],
    key: str,
    policy: RerunPolicy,
    name: str,
) -> Plan:
    """Failed children of an array-mode job: their manifest lines, as one array job (or one plain job)."""
    bucket, original_key = manifest
    lines = manifests.read_manifest_lines(bucket, original_key)
    missing = [i for i in indices if i >= len(lines)]
    if missing:
        raise UnsupportedJobError(
            f"The manifest of {name} has {len(lines)} lines and child {missing[0]} has none: "
            "rerun the whole job instead."
        )
    chosen = tuple(lines[i] for i in indices)
    if len(chosen) == 1:  # Batch array jobs have 2 children at least: one object is a plain job
        fields = json.loads(chosen[0])
        fields.pop(manifests.LINE_RECORD_ID, None)
        # The line's lineage goes where array mode puts a single object's: the environment.
        lineage = str(fields.pop(manifests.LINE_LINEAGE, ""))
        line = {k: str(v) for k, v in fields.items()}
        kept = {k: v for k, v in whole.parameters.items() if k not in _MANIFEST_PARAMETERS}
        tags = {k: v for k, v in whole.tags.items() if k != MANIFEST_TAG}  # no manifest: one object
        environment = {**whole.environment, LINEAGE_ENV: lineage} if lineage else whole.environment
        spec = whole._replace(parameters={**kept, **line}, tags=tags, environment=environment)
        return plan._replace(specs=(spec,), children=indices)
    digest = hashlib.sha256(f"{key}\n{bucket}/{original_key}\n{indices}".encode()).hexdigest()[:40]
    new_key = f"{policy.manifest_prefix}rerun-{digest}.jsonl"
    spec = whole._replace(
        parameters={
            **whole.parameters,
            manifests.BUCKET_PARAMETER: bucket,
            manifests.KEY_PARAMETER: new_key,
            manifests.COUNT_PARAMETER: str(len(chosen)),
        },
        array_size=len(chosen),
        tags={**whole.tags, MANIFEST_TAG: manifests.manifest_digest(new_key)},
    )
    return plan._replace(specs=(spec,), children=indices, manifest=(bucket, new_key, chosen))


_MANIFEST_PARAMETERS = (manifests.BUCKET_PARAMETER, manifests.KEY_PARAMETER, manifests.COUNT_PARAMETER)


def separate_plan(
    plan: Plan, whole: JobSpec, indices: tuple[int, ...], policy: RerunPolicy, name: str
) -> Plan:
    """Failed children of an array job without a manifest: one job each, its index in the environment."""
    if len(indices) > policy.max_separate_jobs:
        raise TooManyChildrenError(
            f"{len(indices)} children of {name} failed; without a manifest each would be a job of its "
            f"own, and at most {policy.max_separate_jobs} are submitted that way. Rerun the whole array "
            "job instead."
        )
    specs = tuple(
        whole._replace(
            job_name=f"{plan.base_name}-{index}",
            environment={**whole.environment, ARRAY_INDEX_VARIABLE: str(index)},
            tags={**whole.tags, ARRAY_INDEX_TAG: str(index)},
        )
        for index in indices
    )
    return plan._replace(specs=specs, children=indices)


def submit_plan(plan: Plan, remaining: Callable[[], float]) -> RerunOutcome:
    """Write the manifest, then submit each job, adopting any an earlier attempt already submitted."""
    if plan.manifest is not None:
        bucket, key, lines = plan.manifest
        manifests.write_manifest(bucket, key, list(lines))
    existing = find_jobs_by_name_prefix(plan.queue, plan.base_name)
    jobs: list[SubmittedJob] = []
    for spec in plan.specs:
        adopted = existing.get(spec.job_name)
        if adopted is not None:
            logger.info("Adopted rerun job submitted by an earlier attempt", extra={"job_id": adopted.job_id})
            jobs.append(adopted)
            continue
        jobs.append(
            submit_job(
                spec, job_queue=plan.queue, job_definition=plan.definition, remaining_seconds=remaining
            )
        )
    return RerunOutcome(
        original_job_id=plan.original_job_id,
        original_job_name=plan.original_job_name,
        jobs=tuple(SubmittedJob(j.job_id, j.job_name) for j in jobs),
        children=plan.children,
        manifest_key=plan.manifest[1] if plan.manifest else None,
    )


# --------------------------------------------------------------------------------------------------------
# Pieces of the plan


def rerun_name(original: str, key: str) -> str:
    """`<original name, shortened>-rerun-<hash of the request key>`: the same request, the same name."""
    suffix = f"-rerun-{hashlib.sha256(key.encode('utf-8')).hexdigest()[:12]}"
    head = job_name_part(original)[: MAX_JOB_NAME_LENGTH - len(suffix) - _INDEX_ROOM].rstrip("-_")
    return f"{head or 'job'}{suffix}"


def array_index(job_id: str, array: Mapping[str, Any]) -> int | None:
    """The index of an array child (`arrayProperties.index`, or its id `<parent>:<index>`), else None."""
    index = array.get("index")
    if isinstance(index, int):
        return index
    parent, sep, tail = job_id.rpartition(":")
    return int(tail) if sep and parent and tail.isdigit() else None


def manifest_of(parameters: Mapping[str, str]) -> tuple[str, str] | None:
    """(bucket, key) of an array-mode job's manifest, or None for any other job."""
    bucket = parameters.get(manifests.BUCKET_PARAMETER, PLACEHOLDER)
    key = parameters.get(manifests.KEY_PARAMETER, PLACEHOLDER)
    return None if PLACEHOLDER in (bucket, key) or not bucket or not key else (bucket, key)


def batch_free_environment(container: Mapping[str, Any]) -> dict[str, str]:
    """The job's effective environment without what Batch sets itself (AWS_BATCH_*, refused in overrides)."""
    found: dict[str, str] = {}
    for variable in container.get("environment") or []:
        name = str(variable.get("name", ""))
        if name and not name.startswith(BATCH_VARIABLE_PREFIX):
            found[name] = str(variable.get("value", ""))
    return found


def _command(container: Mapping[str, Any]) -> tuple[str, ...] | None:
    command = container.get("command")
    return tuple(str(part) for part in command) if isinstance(command, list) and command else None


def _resource_requirements(container: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    found = container.get("resourceRequirements") or []
    return tuple((str(r["type"]), str(r["value"])) for r in found if isinstance(r, dict) and "type" in r)


def rerun_tags(job: Mapping[str, Any], requested_by: str) -> dict[str, str]:
    """The original's tags (less AWS's own), marked as a rerun of it, by whom."""
    ours = {TRIGGER_TAG: "rerun", RERUN_OF_TAG: str(job["jobId"])}
    if requested_by:
        ours[RERUN_BY_TAG] = _TAG_VALUE.sub("-", requested_by)[:256]
    inherited = [
        (str(k), str(v))
        for k, v in (job.get("tags") or {}).items()
        if not str(k).startswith("aws:") and k not in ours
    ]
    return {**dict(inherited[: MAX_TAGS - len(ours) - 1]), **ours}  # room for a manifest or index tag
