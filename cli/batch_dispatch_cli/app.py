"""The `batch-dispatch` command: one group, global target options, one module per subcommand."""

from __future__ import annotations

import os
import sys
import warnings

import click

# The command traces nothing; without this Powertools' Tracer would import the X-Ray SDK when
# batch_dispatch.observability is first imported (below, through the subcommands).
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")

from batch_dispatch import __version__
from batch_dispatch.observability import logger
from batch_dispatch_cli.backfill import backfill
from batch_dispatch_cli.context import Target
from batch_dispatch_cli.dlq import dlq
from batch_dispatch_cli.logs import logs
from batch_dispatch_cli.rerun import rerun
from batch_dispatch_cli.run import run
from batch_dispatch_cli.status import status


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="batch-dispatch")
@click.option(
    "--stack", default=None, envvar="BATCH_DISPATCH_STACK", help="Stack name (default: from samconfig.toml)."
)
@click.option(
    "--config-env", default=None, help="samconfig.toml section giving the stack name [default: default]."
)
@click.option("--region", default=None, help="AWS region (default: samconfig.toml's, then AWS_REGION).")
@click.pass_context
def cli(ctx: click.Context, stack: str | None, config_env: str | None, region: str | None) -> None:
    """Operate a deployed batch-dispatch stack: status, run now, rerun, backfill, logs and DLQs.

    Every subcommand takes --json (one JSON document on stdout). Exit codes: 0 fine, 1 something needs
    attention (or the followed job failed), 2 bad input (nothing was changed).
    """
    ctx.obj = Target(stack=stack, config_env=config_env, region=region)


for command in (status, run, rerun, backfill, logs, dlq):
    cli.add_command(command)


def quiet_shared_package() -> None:
    """The shared package logs for Lambda (JSON, INFO, stdout); here stdout is the command's output, so
    only its warnings show, on stderr."""
    logger.setLevel("WARNING")
    handler = logger.registered_handler
    if hasattr(handler, "setStream"):
        handler.setStream(sys.stderr)
    # Powertools idempotency asks for a Lambda context to bound in-progress records; the command has none.
    warnings.filterwarnings("ignore", message="Couldn't determine the remaining time left")


def main() -> None:
    """The console script."""
    quiet_shared_package()
    cli(prog_name="batch-dispatch")
