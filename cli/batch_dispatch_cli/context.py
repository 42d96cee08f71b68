"""What every subcommand shares: the target options, the output mode, the session and the stack."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from batch_dispatch_cli.aws import Aws
from batch_dispatch_cli.errors import aws_errors
from batch_dispatch_cli.output import Output
from batch_dispatch_cli.stack import SAMCONFIG, DeployedStack, describe_stack, samconfig_value, stack_name_for

DEFAULT_CONFIG_ENV = "default"


@dataclass(frozen=True)
class Target:
    """Which stack: --stack, else samconfig.toml's stack_name for --config-env; in which region."""

    stack: str | None = None
    config_env: str | None = None
    region: str | None = None
    samconfig: Path = SAMCONFIG

    def over(self, base: Target) -> Target:
        """These options where given, the group's (`base`) elsewhere."""
        return Target(
            stack=self.stack or base.stack,
            config_env=self.config_env or base.config_env,
            region=self.region or base.region,
            samconfig=base.samconfig,
        )

    @property
    def env(self) -> str:
        return self.config_env or DEFAULT_CONFIG_ENV


class Operator:
    """One run of a subcommand: its output, and (on first use) the AWS session and the stack."""

    def __init__(self, target: Target, output: Output) -> None:
        self.target = target
        self.output = output
        self._aws: Aws | None = None
        self._stack: DeployedStack | None = None

    @property
    def aws(self) -> Aws:
        if self._aws is None:
            region = self.target.region or samconfig_value(self.target.samconfig, self.target.env, "region")
            self._aws = Aws(region)
        return self._aws

    @property
    def stack(self) -> DeployedStack:
        if self._stack is None:
            name = stack_name_for(self.target.stack, self.target.env, self.target.samconfig)
            cloudformation = self.aws.client("cloudformation")
            self._stack = describe_stack(cloudformation, name, cloudformation.meta.region_name)
        return self._stack


def operator_command(function: Callable[..., int | None]) -> Callable[..., None]:
    """Adds --stack, --config-env, --region and --json to a subcommand; calls it with an Operator and
    exits with what it returns (0 when None). AWS's credential, region and access errors become one
    line and exit code 2."""

    @click.option("--json", "as_json", is_flag=True, help="Print one JSON document (for scripts).")
    @click.option("--region", default=None, help="AWS region (default: samconfig.toml's, then AWS_REGION).")
    @click.option(
        "--config-env", default=None, help="samconfig.toml section giving the stack name [default: default]."
    )
    @click.option(
        "--stack",
        default=None,
        envvar="BATCH_DISPATCH_STACK",
        help="Stack name (default: from samconfig.toml).",
    )
    @click.pass_context
    @functools.wraps(function)
    def command(
        ctx: click.Context,
        stack: str | None,
        config_env: str | None,
        region: str | None,
        as_json: bool,
        **kwargs: Any,
    ) -> None:
        base = ctx.find_object(Target) or Target()
        operator = Operator(Target(stack, config_env, region).over(base), Output(as_json=as_json))
        with aws_errors():
            code = function(operator, **kwargs)
        ctx.exit(code or 0)

    return command
