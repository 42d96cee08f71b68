"""Running `batch-dispatch` in the test process against the emulator's stack, as the operator command
tests do."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner, Result

from batch_dispatch_cli.app import cli
from emulator.core import Emulator


def command(local: Emulator, *args: str, env: dict[str, str | None] | None = None) -> Result:
    """`batch-dispatch --stack <the local stack> ARGS`, in-process; stdout and stderr kept apart."""
    runner = CliRunner(mix_stderr=False)
    # Piped output has whole table rows unless COLUMNS says otherwise (test runners' workers set it).
    environment: dict[str, str | None] = {"COLUMNS": None, **(env or {})}
    return runner.invoke(cli, ["--stack", local.stack.name, *args], env=environment, catch_exceptions=False)


def document(result: Result) -> Any:
    """The one JSON document --json printed (json.loads refuses anything more)."""
    return json.loads(result.stdout)


def jobs_of(local: Emulator, job_type: str) -> list[dict[str, Any]]:
    """The job type's jobs in moto Batch (its definition `<stack>_<job type>`)."""
    family = f"{local.stack.name}_{job_type}"
    return [
        j for j in local.jobs_submitted() if j["jobDefinition"].rsplit("/", 1)[-1].split(":")[0] == family
    ]
