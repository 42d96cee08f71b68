"""Submit a job exactly once per idempotency key, however often the triggering event is delivered.

SubmitJob has no client token, so deduplication is ours:
1. Powertools idempotency records the key in DynamoDB (INPROGRESS, then COMPLETED with the job id).
   A second delivery gets the stored job back; a concurrent one gets IdempotencyAlreadyInProgressError
   and is retried later by its trigger. A submit that raised deletes the record so a retry can run.
2. The one gap left is a crash between SubmitJob and saving COMPLETED: the INPROGRESS record expires
   and a retry would submit again. Job names are derived from the key, so a retry first asks Batch
   for a job with that name (`reconcile=True`) and adopts it instead of submitting a second one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from aws_lambda_powertools.utilities.idempotency import idempotent_function
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_dispatch.aws.batch_jobs import JobSpec, RetryPolicy, SubmittedJob, find_job_by_name, submit_job
from batch_dispatch.aws.idempotency import idempotency_config, persistence_layer
from batch_dispatch.job_types import JobType
from batch_dispatch.observability import MetricUnit, logger, metrics


class SubmitOutcome(NamedTuple):
    job: SubmittedJob
    duplicate: bool  # an earlier delivery of the same key had already submitted this job


def submit_once(
    spec: JobSpec,
    *,
    job_type: JobType,
    table_name: str,
    key_prefix: str,
    idempotency_key: Mapping[str, Any],
    lambda_context: LambdaContext | None = None,
    reconcile: bool = False,
    retry: RetryPolicy | None = None,
) -> SubmitOutcome:
    """Submit `spec` as a job of `job_type`, once per (`key_prefix`, `idempotency_key`). Emits JobSubmitted
    or DuplicateSkipped."""
    config = idempotency_config(lambda_context)
    if job_type.environment:  # the job type's variables; the spec's own win
        spec = spec._replace(environment={**job_type.environment, **spec.environment})
    remaining: Callable[[], float] | None = (
        (lambda: lambda_context.get_remaining_time_in_millis() / 1000) if lambda_context else None
    )

    @idempotent_function(
        data_keyword_argument="key",
        persistence_store=persistence_layer(table_name, key_prefix),
        config=config,
        key_prefix=key_prefix,
    )
    def submit(key: Mapping[str, Any]) -> dict[str, Any]:
        if reconcile and (existing := find_job_by_name(job_type.job_queue_arn, spec.job_name)):
            logger.info("Adopted job submitted by an earlier attempt", extra={"job_id": existing.job_id})
            return {"jobId": existing.job_id, "jobName": existing.job_name, "duplicate": True}
        job = submit_job(
            spec,
            job_queue=job_type.job_queue_arn,
            job_definition=job_type.job_definition_arn,
            remaining_seconds=remaining,
            retry=retry,
        )
        return {"jobId": job.job_id, "jobName": job.job_name, "duplicate": False}

    result = submit(key=dict(idempotency_key))
    outcome = SubmitOutcome(
        job=SubmittedJob(job_id=result["jobId"], job_name=result["jobName"]),
        duplicate=bool(result.get("duplicate")),
    )
    if outcome.duplicate:
        metrics.add_metric(name="DuplicateSkipped", unit=MetricUnit.Count, value=1)
        logger.info("Duplicate delivery, job already submitted", extra={"job_id": outcome.job.job_id})
    else:
        metrics.add_metric(name="JobSubmitted", unit=MetricUnit.Count, value=1)
        logger.info(
            "Job submitted",
            extra={"job_id": outcome.job.job_id, "job_name": outcome.job.job_name, "job_type": job_type.name},
        )
    return outcome
