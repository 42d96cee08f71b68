"""The on-demand path: a job of a job type submitted now by a person (`batch-dispatch run`), not a tick.

It takes the schedule's path: the job type's definition and queue from the catalog, a job name that
starts with the job type's prefix and derives from the request's key, the shared idempotency table
through `submit_once` (with the same look-up of an earlier submit by name). A request with an
idempotency key submits once however often it is repeated; a request without one gets a fresh key,
so each is a new job. `scheduledTime` is the time of the request unless the parameters set it, so a
command written for the schedule (`Ref::scheduledTime`) runs the same when started by hand.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from batch_dispatch.aws.batch_jobs import JobSpec, safe_job_name
from batch_dispatch.job_types import JobType
from batch_dispatch.submit.once import SubmitOutcome, submit_once
from batch_dispatch.submit.schedule import batch_parameters

IDEMPOTENCY_PREFIX = "on-demand"
TRIGGER = "on-demand"


def new_request_key() -> str:
    """A key no other request has: a request without one of its own is a new job."""
    return uuid.uuid4().hex


def request_idempotency_key(job_type: JobType, request_key: str) -> dict[str, str]:
    """What the idempotency record is keyed on: the same key names a different request per job type."""
    return {"jobType": job_type.name, "requestKey": request_key}


def on_demand_job_spec(
    job_type: JobType, parameters: Mapping[str, Any], request_key: str, requested_at: datetime
) -> JobSpec:
    """The request's job: `<job type prefix>-run-<key>-<hash>`, its parameters as Batch strings."""
    values = batch_parameters(dict(parameters))
    values.setdefault("scheduledTime", requested_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    return JobSpec(
        job_name=safe_job_name(
            job_type.job_name_prefix, f"run-{request_key}", f"{TRIGGER}|{job_type.name}|{request_key}"
        ),
        parameters=values,
        tags={"batch-dispatch:trigger": TRIGGER, "batch-dispatch:job-type": job_type.name},
    )


def submit_on_demand(
    job_type: JobType,
    *,
    table_name: str,
    parameters: Mapping[str, Any] | None = None,
    request_key: str | None = None,
    requested_at: datetime | None = None,
) -> SubmitOutcome:
    """Submit one job of `job_type` now, once per `request_key` (None: a new key, so a new job).
    A repeated key returns the first request's job with `duplicate=True`."""
    key = request_key or new_request_key()
    spec = on_demand_job_spec(job_type, parameters or {}, key, requested_at or datetime.now(UTC))
    return submit_once(
        spec,
        job_type=job_type,
        table_name=table_name,
        key_prefix=IDEMPOTENCY_PREFIX,
        idempotency_key=request_idempotency_key(job_type, key),
        reconcile=True,
    )
