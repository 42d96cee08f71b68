"""S3SubmitFunction's one call: an SQS batch of upload notifications -> jobs, in the configured mode."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_dispatch.settings import S3SubmitSettings
from batch_dispatch.submit import array_mode, per_object

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse


def handle(
    event: dict[str, Any], settings: S3SubmitSettings, context: LambdaContext | None = None
) -> PartialItemFailureResponse:
    """One job per object, or (SUBMIT_MODE=ARRAY) one array job per batch. Failed messages are listed
    in `batchItemFailures`: SQS redelivers them, then parks them in the DLQ."""
    if settings.array_mode:
        return array_mode.handle(event, settings, context)
    return per_object.handle(event, settings, context)
