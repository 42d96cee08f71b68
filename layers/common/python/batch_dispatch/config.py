"""Environment settings, validated the first time a handler runs (fail fast, with a clear message)."""

from __future__ import annotations

import os
from functools import cache
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class ConfigurationError(RuntimeError):
    """The function's environment is missing or malformed: a deployment problem, not a data problem."""


class SubmitSettings(BaseModel):
    """What every job-submitting function needs."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    job_queue_arn: str = Field(alias="JOB_QUEUE_ARN", min_length=1)
    job_definition_arn: str = Field(alias="JOB_DEFINITION_ARN", min_length=1)
    idempotency_table_name: str = Field(alias="IDEMPOTENCY_TABLE_NAME", min_length=1)
    job_name_prefix: str = Field(default="batch-dispatch", alias="JOB_NAME_PREFIX")
    environment: str = Field(default="dev", alias="ENVIRONMENT")


SettingsT = TypeVar("SettingsT", bound=BaseModel)


def load_settings(model: type[SettingsT]) -> SettingsT:
    """Build `model` from os.environ or raise ConfigurationError naming every missing variable."""
    try:
        return model.model_validate(dict(os.environ))
    except ValidationError as exc:
        problems = sorted(
            f"{'/'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors(include_url=False)
        )
        raise ConfigurationError(
            f"{model.__name__} is misconfigured ({'; '.join(problems)}). "
            "Deploy with `sam deploy` (template.yaml sets these) or export them for local runs."
        ) from None


@cache
def submit_settings() -> SubmitSettings:
    return load_settings(SubmitSettings)
