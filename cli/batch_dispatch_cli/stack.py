"""Which stack the command operates, and what its outputs say.

The stack is `--stack`, else `stack_name` of the `--config-env` section of samconfig.toml (the deploy
section, then the global one), read with tomllib. Its outputs (CloudFormation DescribeStacks) name
everything the command touches; a stack without the batch-dispatch outputs is refused.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from batch_dispatch_cli.errors import OperatorError

SAMCONFIG = Path("samconfig.toml")
# Outputs every batch-dispatch stack has; without them this is some other stack.
REQUIRED_OUTPUTS = (
    "JobQueueArn",
    "JobDefinitionArn",
    "JobTypesPath",
    "IdempotencyTableName",
    "ScheduleSubmitFunctionName",
)
QUEUE_OUTPUTS = ("HighPriorityJobQueueArn", "JobQueueArn", "LowPriorityJobQueueArn")
DLQ_OUTPUT_SUFFIX = "DLQUrl"
DEFAULT_JOB_LOG_GROUP = "/aws/batch/job"
DEFAULT_MANIFEST_PREFIX = "_batch-dispatch/manifests/"


def samconfig_value(path: Path, config_env: str, key: str) -> str | None:
    """`key` of `[<config_env>.deploy.parameters]`, else of `[<config_env>.global.parameters]`."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except tomllib.TOMLDecodeError as error:
        raise OperatorError(f"{path} is not valid TOML ({error}): fix it, or pass --stack") from None
    environment = document.get(config_env)
    if not isinstance(environment, dict):
        return None
    for command in ("deploy", "global"):
        section = environment.get(command, {})
        value = section.get("parameters", {}).get(key) if isinstance(section, dict) else None
        if isinstance(value, str) and value:
            return value
    return None


def stack_name_for(stack: str | None, config_env: str, samconfig: Path = SAMCONFIG) -> str:
    """The stack to operate: `--stack`, or samconfig.toml's stack_name for `config_env`."""
    if stack:
        return stack
    name = samconfig_value(samconfig, config_env, "stack_name")
    if name:
        return name
    if not samconfig.exists():
        raise OperatorError(f"no --stack given and no {samconfig} here: pass --stack NAME")
    raise OperatorError(
        f"{samconfig} has no stack_name for config env {config_env!r}: pass --stack NAME or --config-env ENV"
    )


@dataclass(frozen=True)
class DeployedStack:
    """A batch-dispatch stack as DescribeStacks shows it."""

    name: str
    region: str
    outputs: dict[str, str]
    parameters: dict[str, str] = field(default_factory=dict)

    @property
    def job_queue_arns(self) -> list[str]:
        return [self.outputs[key] for key in QUEUE_OUTPUTS if self.outputs.get(key)]

    @property
    def dead_letter_queues(self) -> dict[str, str]:
        """DLQ name (e.g. IntakeDLQ) -> queue URL, from the outputs ending in DLQUrl."""
        return {
            key.removesuffix("Url"): url
            for key, url in sorted(self.outputs.items())
            if key.endswith(DLQ_OUTPUT_SUFFIX) and url
        }

    @property
    def idempotency_table(self) -> str:
        return self.outputs["IdempotencyTableName"]

    @property
    def job_types_path(self) -> str:
        return self.outputs["JobTypesPath"]

    @property
    def job_log_group(self) -> str:
        return self.outputs.get("JobLogGroupName") or DEFAULT_JOB_LOG_GROUP

    @property
    def manifest_prefix(self) -> str:
        return self.parameters.get("ManifestPrefix") or DEFAULT_MANIFEST_PREFIX

    def output(self, key: str) -> str:
        value = self.outputs.get(key)
        if not value:
            raise OperatorError(f"stack {self.name} has no output {key}: deploy the current template.yaml")
        return value


def describe_stack(cloudformation: Any, name: str, region: str) -> DeployedStack:
    """The stack's outputs and parameters, or an OperatorError if it is missing or not batch-dispatch."""
    try:
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ValidationError":
            raise OperatorError(
                f"no stack {name} in {region}: check --stack, --config-env and --region"
            ) from None
        raise
    described = stacks[0]
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in described.get("Outputs", [])}
    missing = [key for key in REQUIRED_OUTPUTS if not outputs.get(key)]
    if missing:
        raise OperatorError(
            f"stack {name} is not a batch-dispatch stack (no output {', '.join(missing)}): check --stack"
        )
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in described.get("Parameters", [])}
    return DeployedStack(name=name, region=region, outputs=outputs, parameters=parameters)
