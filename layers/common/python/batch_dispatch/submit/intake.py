"""S3SubmitFunction's one call: an SQS batch of upload notifications -> jobs, in the configured mode."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_dispatch.job_types import catalog_for
from batch_dispatch.settings import S3SubmitSettings
from batch_dispatch.submit import array_mode, per_object

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse


def handle(
    event: dict[str, Any], settings: S3SubmitSettings, context: LambdaContext | None = None
) -> PartialItemFailureResponse:
    """One job per object, or one array job per batch and job type for job types in array mode. Failed
    messages are listed in `batchItemFailures`: SQS redelivers them, then parks them in the DLQ."""
    catalog = catalog_for(settings)
    if any(job_type.array_mode for job_type in catalog.job_types.values()):
        return array_mode.handle(event, settings, context, catalog=catalog)
    return per_object.handle(event, settings, context, catalog=catalog)
