"""`batch-dispatch run JOB_TYPE`: submit a job type now, through the schedule's submit path
(batch_dispatch.submit.on_demand): its job definition, queue, naming and idempotency table, and the
parameters its schedule would send (read from Scheduler), `--param` values over them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from batch_dispatch.alerts.log_tail import read_tail
from batch_dispatch.alerts.redaction import Redactor
from batch_dispatch.submit.on_demand import on_demand_parameters, submit_on_demand
from batch_dispatch_cli.catalog import job_type_named, load_catalog
from batch_dispatch_cli.context import Operator, operator_command
from batch_dispatch_cli.errors import ATTENTION, OperatorError
from batch_dispatch_cli.follow import follow_job
from batch_dispatch_cli.jobs import log_location
from batch_dispatch_cli.schedules import job_type_schedule
from batch_dispatch_cli.stack import DeployedStack
from batch_dispatch_cli.timeparse import InvalidInputError, parse_parameters

TAIL_LINES = 20
TAIL_SECONDS = 3.0


@click.command()
@click.argument("job_type")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="A job parameter (repeatable).")
@click.option(
    "--idempotency-key",
    default=None,
    metavar="KEY",
    help="Submit at most once per key (a repeat prints the first job); without one, each run is a new job.",
)
@click.option("--wait", is_flag=True, help="Follow the job until it ends, then print its last log lines.")
@click.option("--poll-seconds", default=10.0, show_default=True, hidden=True, type=click.FloatRange(min=0))
@operator_command
def run(
    operator: Operator,
    job_type: str,
    params: tuple[str, ...],
    idempotency_key: str | None,
    wait: bool,
    poll_seconds: float,
) -> int:
    """Submit a job of JOB_TYPE now, as its schedule would (job definition, queue, parameters), with
    --param values over the schedule's parameters."""
    try:
        parameters = parse_parameters(params)
    except InvalidInputError as error:
        raise OperatorError(str(error)) from None
    if idempotency_key is not None and not idempotency_key.strip():
        raise OperatorError("--idempotency-key is empty: give a key, or leave the option out")
    stack, out = operator.stack, operator.output
    with operator.aws.lent_to_layer():
        chosen = job_type_named(load_catalog(stack), job_type, stack)
    schedule = job_type_schedule(operator.aws.client("scheduler"), stack, chosen)
    schedule_input = schedule.input if schedule else None
    requested_at = datetime.now(UTC)
    with operator.aws.lent_to_layer():
        outcome = submit_on_demand(
            chosen,
            table_name=stack.idempotency_table,
            parameters=parameters,
            request_key=idempotency_key,
            requested_at=requested_at,
            schedule=schedule_input,
        )
    job = outcome.job
    document: dict[str, Any] = {
        "jobType": chosen.name,
        "jobId": job.job_id,
        "jobName": job.job_name,
        "duplicate": outcome.duplicate,
        "idempotencyKey": idempotency_key,
        # What this request sent (a duplicate sent nothing: the first request's job keeps its own).
        "parameters": None
        if outcome.duplicate
        else on_demand_parameters(chosen, parameters, requested_at, schedule_input),
    }
    if outcome.duplicate:
        out.line(
            f"Already submitted with idempotency key {idempotency_key!r}: job {job.job_name} ({job.job_id})."
        )
        out.line("Nothing new was submitted.")
    else:
        out.line(f"Submitted {chosen.name} job {job.job_name} ({job.job_id}).")
        source = (
            f"schedule {schedule.name}'s, then --param"
            if schedule
            else "--param; the job definition's defaults for the rest"
        )
        out.line(f"Parameters ({source}):" + ("" if document["parameters"] else " none"))
        for name, value in sorted(document["parameters"].items()):
            out.line(f"  {name}={value}")
    if not wait:
        out.document(document)
        return 0

    final = follow_job(operator.aws.client("batch"), job.job_id, out, poll_seconds=poll_seconds)
    status = str(final.get("status"))
    lines = last_log_lines(operator, stack, final)
    document.update(status=status, statusReason=final.get("statusReason"), logLines=lines)
    out.document(document)
    out.line(
        f"{job.job_name}: {status}" + (f" ({final['statusReason']})" if final.get("statusReason") else "")
    )
    if lines:
        out.line(f"Last {len(lines)} log line{'s' if len(lines) != 1 else ''}:")
        for text in lines:
            out.line(f"  {text}")
    else:
        out.line("No log lines.")
    return 0 if status == "SUCCEEDED" else ATTENTION


def last_log_lines(operator: Operator, stack: DeployedStack, job: dict[str, Any]) -> list[str]:
    """The last lines of the job's last attempt: the alerts' log tail, redacted the same way (what a
    terminal shows gets pasted into tickets)."""
    location = log_location(job, None, stack)
    if location is None or location.log_stream is None:
        return []
    with operator.aws.lent_to_layer():
        tail = read_tail(
            location.log_group,
            location.log_stream,
            max_lines=TAIL_LINES,
            budget_seconds=TAIL_SECONDS,
            redactor=Redactor(),
        )
    if tail.note:
        operator.output.note(tail.note)
    return list(tail.lines)
