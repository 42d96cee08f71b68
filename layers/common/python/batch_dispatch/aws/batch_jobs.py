"""AWS Batch: SubmitJob with safe job names and throttling-aware retries inside a time budget; finding jobs
by name, describing one, and listing an array job's children."""

from __future__ import annotations

import hashlib
import random
import re
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from botocore.exceptions import ClientError, ConnectionError, ReadTimeoutError

from batch_dispatch.aws import clients
from batch_dispatch.observability import MetricUnit, logger, metrics

MAX_JOB_NAME_LENGTH = 128
EMPTY_MAPPING: Mapping[str, str] = MappingProxyType({})
_INVALID_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]+")
_RETRYABLE_CODES = frozenset(
    {"TooManyRequestsException", "ThrottlingException", "Throttling", "ServerException", "ServiceUnavailable"}
)


class SubmitFailedError(RuntimeError):
    """SubmitJob kept failing with retryable errors until the time budget ran out."""


class JobSpec(NamedTuple):
    """One job to submit. Batch parameters are strings (they fill `Ref::name` in the command).

    `environment`, `command` and `resource_requirements` ((type, value) pairs) become container overrides;
    None or empty leaves the job definition's own."""

    job_name: str
    parameters: Mapping[str, str] = EMPTY_MAPPING
    environment: Mapping[str, str] = EMPTY_MAPPING
    array_size: int | None = None
    tags: Mapping[str, str] = EMPTY_MAPPING
    command: tuple[str, ...] | None = None
    resource_requirements: tuple[tuple[str, str], ...] = ()


class SubmittedJob(NamedTuple):
    job_id: str
    job_name: str
    job_arn: str | None = None


class RetryPolicy(NamedTuple):
    """Exponential backoff with full jitter (the AWS Architecture Blog recipe), capped per wait."""

    base_seconds: float = 0.1
    max_wait_seconds: float = 5.0
    safety_margin_seconds: float = 2.0

    def wait_for(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_wait_seconds, self.base_seconds * 2**attempt))  # noqa: S311


def job_name_part(text: str) -> str:
    """`text` reduced to the characters Batch allows in a job name (letters, digits, -, _)."""
    return _INVALID_NAME_CHARS.sub("-", text).strip("-_")


def safe_job_name(prefix: str, readable: str, unique: str) -> str:
    """A valid, deterministic job name: `<prefix>-<readable>-<hash of unique>`.

    The readable part is cut from the left (the end of an S3 key is the informative part), and the
    hash of `unique` keeps two different inputs from sharing a name after truncation.
    """
    digest = hashlib.sha256(unique.encode("utf-8")).hexdigest()[:12]
    head = job_name_part(prefix)[:40] or "job"
    if not head[0].isalnum():
        head = f"j{head}"
    budget = MAX_JOB_NAME_LENGTH - len(head) - len(digest) - 2
    body = job_name_part(readable)
    if len(body) > budget:
        body = job_name_part(body[-budget:])
    parts = [head, body, digest] if body else [head, digest]
    return "-".join(parts)


def is_retryable(error: Exception) -> bool:
    if isinstance(error, ConnectionError | ReadTimeoutError):
        return True
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        message = str(error.response.get("Error", {}).get("Message", ""))
        # Batch reports its 50 TPS limit as TooManyRequestsException, sometimes as ClientException.
        return code in _RETRYABLE_CODES or status == 429 or status >= 500 or "Too Many Requests" in message
    return False


def _error_code(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "ClientError"))
    return type(error).__name__


def submit_job(
    spec: JobSpec,
    *,
    job_queue: str,
    job_definition: str,
    remaining_seconds: Callable[[], float] | None = None,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SubmittedJob:
    """Submit `spec`, retrying throttling and 5xx with backoff while the time budget allows.

    Raises SubmitFailedError when the budget runs out, and lets non-retryable errors (bad
    parameters, missing queue) through at once: retrying those only delays the alarm.
    """
    retry = retry or RetryPolicy()
    request: dict[str, Any] = {
        "jobName": spec.job_name,
        "jobQueue": job_queue,
        "jobDefinition": job_definition,
        "parameters": dict(spec.parameters),
        "propagateTags": True,
    }
    overrides: dict[str, Any] = {}
    if spec.environment:
        overrides["environment"] = [{"name": k, "value": v} for k, v in sorted(spec.environment.items())]
    if spec.command is not None:
        overrides["command"] = list(spec.command)
    if spec.resource_requirements:
        overrides["resourceRequirements"] = [{"type": k, "value": v} for k, v in spec.resource_requirements]
    if overrides:
        request["containerOverrides"] = overrides
    if spec.array_size:
        request["arrayProperties"] = {"size": spec.array_size}
    if spec.tags:
        request["tags"] = dict(spec.tags)

    attempt = 0
    while True:
        try:
            response = clients.client("batch").submit_job(**request)
        except Exception as error:
            if not is_retryable(error):
                raise
            metrics.add_metric(name="SubmitThrottled", unit=MetricUnit.Count, value=1)
            wait = retry.wait_for(attempt)
            left = remaining_seconds() if remaining_seconds else float("inf")
            if left - wait < retry.safety_margin_seconds:
                raise SubmitFailedError(
                    f"SubmitJob for {spec.job_name} still failing after {attempt + 1} attempts "
                    f"({_error_code(error)}); giving up before the time budget runs out"
                ) from error
            logger.warning(
                "SubmitJob retryable error, backing off",
                extra={"job_name": spec.job_name, "error_code": _error_code(error), "wait_seconds": wait},
            )
            sleep(wait)
            attempt += 1
            continue
        return SubmittedJob(
            job_id=response["jobId"], job_name=response["jobName"], job_arn=response.get("jobArn")
        )


def find_job_by_name(job_queue: str, job_name: str) -> SubmittedJob | None:
    """The job already in `job_queue` with exactly this name, in any status (Batch keeps ~7 days)."""
    response = clients.client("batch").list_jobs(
        jobQueue=job_queue, filters=[{"name": "JOB_NAME", "values": [job_name]}]
    )
    for summary in response.get("jobSummaryList", []):
        if summary.get("jobName") == job_name:
            return SubmittedJob(
                job_id=summary["jobId"], job_name=summary["jobName"], job_arn=summary.get("jobArn")
            )
    return None


def find_jobs_by_name_prefix(job_queue: str, prefix: str) -> dict[str, SubmittedJob]:
    """Job name -> job, for the jobs in `job_queue` whose name starts with `prefix`, in any status."""
    found: dict[str, SubmittedJob] = {}
    request: dict[str, Any] = {
        "jobQueue": job_queue,
        "filters": [{"name": "JOB_NAME", "values": [f"{prefix}*"]}],
    }
    while True:
        response = clients.client("batch").list_jobs(**request)
        for summary in response.get("jobSummaryList", []):
            name = str(summary.get("jobName", ""))
            if name.startswith(prefix) and name not in found:
                found[name] = SubmittedJob(
                    job_id=summary["jobId"], job_name=name, job_arn=summary.get("jobArn")
                )
        if not response.get("nextToken"):
            return found
        request["nextToken"] = response["nextToken"]


def describe_job(job_id: str) -> dict[str, Any] | None:
    """DescribeJobs of one job (an array child is `<parent id>:<index>`), or None if Batch has no such job
    (Batch keeps finished jobs for about 7 days)."""
    try:
        jobs = clients.client("batch").describe_jobs(jobs=[job_id]).get("jobs", [])
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ClientException":  # a malformed id
            return None
        raise
    return next((job for job in jobs if job.get("jobId") == job_id), None)


def array_child_indices(array_job_id: str, status: str) -> list[int]:
    """The indices of the array job's children in `status` (e.g. FAILED), ascending."""
    indices: set[int] = set()
    request: dict[str, Any] = {"arrayJobId": array_job_id, "jobStatus": status, "maxResults": 1000}
    while True:
        response = clients.client("batch").list_jobs(**request)
        for summary in response.get("jobSummaryList", []):
            index = (summary.get("arrayProperties") or {}).get("index")
            if index is None:  # some answers give only the id: "<parent>:<index>"
                tail = str(summary.get("jobId", "")).rpartition(":")[2]
                index = int(tail) if tail.isdigit() else None
            if isinstance(index, int) and summary.get("status", status) == status:
                indices.add(index)
        if not response.get("nextToken"):
            return sorted(indices)
        request["nextToken"] = response["nextToken"]
