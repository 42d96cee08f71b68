"""The stack's job catalog, read the way the functions read it (batch_dispatch.job_types): the default
job type from the stack's own outputs and parameters, plus every registry entry under JobTypesPath."""

from __future__ import annotations

from batch_dispatch.expectations import AUTO, OFF
from batch_dispatch.job_types import DEFAULT, Catalog, JobType, catalog_for
from batch_dispatch.settings import JobSubmitSettings
from batch_dispatch_cli.errors import OperatorError
from batch_dispatch_cli.stack import DeployedStack

REGISTRY_MAX_AGE_SECONDS = 300  # one registry read per command


def submit_settings(stack: DeployedStack) -> JobSubmitSettings:
    """What ScheduleSubmitFunction's environment holds, from the stack's outputs (template.yaml sets
    JOB_NAME_PREFIX to the stack's name)."""
    return JobSubmitSettings(
        job_queue_arn=stack.outputs["JobQueueArn"],
        job_definition_arn=stack.outputs["JobDefinitionArn"],
        job_name_prefix=stack.name,
        upload_prefix=stack.parameters.get("UploadPrefix", ""),
        upload_suffix=stack.parameters.get("UploadSuffix", ""),
        job_types_path=stack.job_types_path,
        job_types_max_age_seconds=REGISTRY_MAX_AGE_SECONDS,
        idempotency_table_name=stack.idempotency_table,
        environment=stack.parameters.get("Environment", "dev"),
    )


def load_catalog(stack: DeployedStack) -> Catalog:
    """Every job type of the stack (call inside `Aws.lent_to_layer()`); the default job type with the
    stack's ExpectSuccessEvery and JobExpectedDuration, as WatchdogFunction's environment has them."""
    catalog = catalog_for(submit_settings(stack))
    default = catalog.default
    if default is None:
        return catalog
    expecting = default._replace(
        expect_success_every=stack.parameters.get("ExpectSuccessEvery", AUTO),
        expected_duration=stack.parameters.get("JobExpectedDuration", OFF),
    )
    return catalog._replace(job_types={**catalog.job_types, DEFAULT: expecting})


def job_type_named(catalog: Catalog, name: str, stack: DeployedStack) -> JobType:
    job_type = catalog.job_types.get(name)
    if job_type is None:
        known = ", ".join(sorted(catalog.job_types)) or "none"
        raise OperatorError(f"stack {stack.name} has no job type {name!r}; it has: {known}")
    return job_type
