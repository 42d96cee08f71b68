"""`batch-dispatch rerun JOB_ID`: the Slack Rerun button's rerun (batch_dispatch.submit.rerun), exactly
once per request key. The default key is the job id, the button's own: a job is rerun once, whichever
of the two asks; `--request-key` asks for another rerun on purpose."""

from __future__ import annotations

import getpass
from typing import Any

import click

import batch_dispatch.submit.rerun as shared_rerun
from batch_dispatch_cli.context import Operator, operator_command
from batch_dispatch_cli.errors import ATTENTION, OperatorError


@click.command()
@click.argument("job_id")
@click.option("--failed-children-only", is_flag=True, help="An array job: rerun only its FAILED children.")
@click.option(
    "--request-key",
    default=None,
    metavar="KEY",
    help="Rerun once per this key [default: the job id, as the Slack button does].",
)
@operator_command
def rerun(operator: Operator, job_id: str, failed_children_only: bool, request_key: str | None) -> int:
    """Rerun the finished job JOB_ID (same definition, queue, parameters and overrides), once."""
    stack, out = operator.stack, operator.output
    policy = shared_rerun.RerunPolicy(
        stack_name=stack.name,
        idempotency_table_name=stack.idempotency_table,
        manifest_prefix=stack.manifest_prefix,
    )
    try:
        with operator.aws.lent_to_layer():
            outcome = shared_rerun.rerun(
                job_id,
                policy,
                request_key=request_key,
                failed_children_only=failed_children_only,
                requested_by=f"batch-dispatch rerun by {getpass.getuser()}",
            )
    except shared_rerun.RerunInProgressError as error:
        out.note(str(error))
        return ATTENTION
    except shared_rerun.RerunRefusedError as error:
        raise OperatorError(str(error)) from None
    document: dict[str, Any] = {
        "originalJobId": outcome.original_job_id,
        "originalJobName": outcome.original_job_name,
        "jobs": [{"jobId": job.job_id, "jobName": job.job_name} for job in outcome.jobs],
        "children": list(outcome.children),
        "manifestKey": outcome.manifest_key,
        "duplicate": outcome.duplicate,
        "requestKey": request_key or job_id,
    }
    out.document(document)
    what = f"{len(outcome.children)} failed children of " if outcome.children else ""
    if outcome.duplicate:
        out.line(f"Already rerun (request key {request_key or job_id!r}); nothing new was submitted:")
    else:
        out.line(f"Rerunning {what}{outcome.original_job_name} ({outcome.original_job_id}):")
    out.table(None, ("job", "job id"), [(job.job_name, job.job_id) for job in outcome.jobs])
    return 0
