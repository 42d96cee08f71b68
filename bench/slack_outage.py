"""Slack outage: FAILED events reach FailureNotifyFunction while Slack rate limits, fails, hangs, recovers.

    .venv/bin/python bench/slack_outage.py [--jobs 50] [--duplicate-rate 0.2]

Deploys template.yaml into the emulator, makes N real jobs FAIL in moto Batch (our queue, distinct
jobs) and builds each one's "Batch Job State Change" event from DescribeJobs, as EventBridge would.
The events (R of them delivered a second time, EventBridge being at-least-once) arrive spread over
the outage, several at once, each with Lambda's asynchronous semantics (`Emulator.invoke`: the first
try, the EventInvokeConfig retries --retry-delay seconds apart, then FailureNotifyDLQ). Meanwhile the
Slack stand-in goes through its phases: 429 with Retry-After, then 500s, then hangs (longer than the
function's Slack timeout), then it recovers. Then FailureNotifyDLQ is redriven like `make redrive`
(each parked event re-invoked asynchronously) until it is empty or --max-redrives passes ran.

The function's Slack timeouts are scaled down with its own environment (SLACK_TIMEOUT_SECONDS,
SLACK_BUDGET_SECONDS) so the run takes about a minute, and STORM_THRESHOLD is raised past N so storm
digests (which merge messages on purpose) stay out of the count: every failed job must get its own
message. Counted from the stand-in and the DLQ themselves: messages per job, duplicates (jobs with
more than one message), in DLQ at the end, lost (no message and not in the DLQ).

Function logs go to --log (default: discarded). Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "common" / "python")]

import boto3  # noqa: E402

from bench.report import print_report  # noqa: E402
from emulator.core import Emulator  # noqa: E402
from emulator.slack_stub import Reply  # noqa: E402

FUNCTION = "FailureNotifyFunction"
DLQ = "FailureNotifyDLQ"


@dataclass(frozen=True)
class Phase:
    name: str
    reply: Reply
    seconds: float  # how long Slack answers this way (the last phase lasts until the end)


def phases(args: argparse.Namespace) -> list[Phase]:
    return [
        Phase(
            f"429 Retry-After {args.retry_after}s", Reply.rate_limited(args.retry_after), args.phase_seconds
        ),
        Phase("500 internal_error", Reply.server_error(500), args.phase_seconds),
        Phase(f"hang {args.hang_seconds:g}s", Reply.hang(args.hang_seconds), args.phase_seconds),
        Phase("recovered (200 ok)", Reply.ok(), 0.0),
    ]


def fail_jobs(local: Emulator, count: int) -> list[dict[str, Any]]:
    """`count` real jobs in our queue, FAILED in moto, described as their events will carry them."""
    batch: Any = boto3.client("batch")
    with local.jobs_fail(exit_code=1, reason="Essential container in task exited"):
        for index in range(count):
            batch.submit_job(
                jobName=f"outage-job-{index:04d}",
                jobQueue=local.job_queue_arns()[0],
                jobDefinition=local.stack.outputs["JobDefinitionArn"],
            )
    jobs = [j for j in local.describe_jobs() if j["jobName"].startswith("outage-job-")]
    if len(jobs) != count or any(j["status"] != "FAILED" for j in jobs):
        raise SystemExit(f"expected {count} FAILED jobs in moto, found {Counter(j['status'] for j in jobs)}")
    return jobs


def redrive(local: Emulator, sqs: Any) -> int:
    """One pass of `make redrive DLQ=FailureNotifyDLQ`: each parked event re-invoked, then deleted."""
    url = local.stack.queue_url(DLQ)
    moved = 0
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600).get(
        "Messages", []
    ):
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            local.invoke(FUNCTION, json.loads(message["Body"]))  # fails again -> back in the DLQ
            moved += 1
    return moved


def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    log = open(args.log, "a", encoding="utf-8")  # noqa: SIM115 - closed below, after the emulator
    try:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log), Emulator() as local:
            function = local.stack.functions[FUNCTION]
            function.environment.update(
                SLACK_TIMEOUT_SECONDS=str(args.slack_timeout),
                SLACK_BUDGET_SECONDS=str(args.slack_budget),
                STORM_THRESHOLD="1000",
                POWERTOOLS_LOG_LEVEL=args.log_level,
            )
            local.runtime.retry_delay_seconds = args.retry_delay
            jobs = fail_jobs(local, args.jobs)
            events = [local.batch_event(job) for job in jobs]
            deliveries = events + rng.sample(events, round(len(events) * args.duplicate_rate))
            plan = list(phases(args))
            outage = sum(p.seconds for p in plan)
            # Arrivals spread over the outage and a little after it; a duplicate arrives any time.
            schedule = sorted(
                ((rng.uniform(0, outage + args.after_seconds), e) for e in deliveries),
                key=lambda pair: pair[0],
            )

            stop = threading.Event()
            phase_log: list[tuple[float, str]] = []

            def run_phases(started: float) -> None:
                for phase in plan:
                    local.slack.set_mode(phase.reply)
                    phase_log.append((round(time.monotonic() - started, 1), phase.name))
                    if stop.wait(phase.seconds) or not phase.seconds:
                        return

            started = time.monotonic()
            conductor = threading.Thread(target=run_phases, args=(started,), daemon=True)
            conductor.start()
            errors: Counter[str] = Counter()
            with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
                futures = []
                for at, event in schedule:
                    time.sleep(max(0.0, at - (time.monotonic() - started)))
                    futures.append(pool.submit(local.invoke, FUNCTION, event))
                for future in futures:
                    outcome = future.result()
                    if outcome.error is not None:
                        errors[outcome.error["type"]] += 1
            conductor.join()
            stop.set()
            local.slack.set_mode(Reply.ok())
            delivered_at = time.monotonic() - started
            sqs: Any = boto3.client("sqs")
            parked_before_redrive = len(local.dlq_messages()[DLQ])
            passes = redriven = 0
            while local.dlq_messages()[DLQ] and passes < args.max_redrives:
                redriven += redrive(local, sqs)
                passes += 1
            elapsed = time.monotonic() - started

            job_ids = [job["jobId"] for job in jobs]
            per_job: Counter[str] = Counter()
            for message in local.slack_messages():
                text = json.dumps(message)
                per_job.update(job_id for job_id in job_ids if job_id in text)
            in_dlq = {json.loads(body).get("detail", {}).get("jobId") for body in local.dlq_messages()[DLQ]}
            statuses = Counter(str(r.status) for r in local.slack.requests)
            messages = len(local.slack_messages())
    finally:
        log.close()
    return {
        "events": len(events),
        "deliveries": len(deliveries),
        "distinct_failed_jobs": len(set(job_ids)),
        "messages_delivered": messages,
        "jobs_with_a_message": len(per_job),
        "duplicates": sum(1 for n in per_job.values() if n > 1),
        "in_dlq": len(in_dlq & set(job_ids)),
        "lost": len(set(job_ids) - set(per_job) - in_dlq),
        "parked_before_redrive": parked_before_redrive,
        "redriven": redriven,
        "redrive_passes": passes,
        "failed_invocations": dict(errors),
        "slack_answers": dict(sorted(statuses.items())),
        "phases": [f"{at:g}s {name}" for at, name in phase_log],
        "deliveries_done_s": round(delivered_at, 1),
        "elapsed_s": round(elapsed, 1),
        "settings": {
            "slack_timeout_s": args.slack_timeout,
            "slack_budget_s": args.slack_budget,
            "async_retry_delay_s": args.retry_delay,
            "concurrency": args.concurrency,
            "phase_s": args.phase_seconds,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--jobs", type=int, default=50, help="distinct FAILED jobs (one event each)")
    parser.add_argument("--duplicate-rate", type=float, default=0.2, help="share of events delivered twice")
    parser.add_argument("--phase-seconds", type=float, default=12.0, help="length of each outage phase")
    parser.add_argument("--after-seconds", type=float, default=6.0, help="arrivals after Slack recovered")
    parser.add_argument("--retry-after", type=int, default=1, help="Retry-After of the 429 phase")
    parser.add_argument("--hang-seconds", type=float, default=2.0, help="how long a post hangs (> timeout)")
    parser.add_argument("--slack-timeout", type=int, default=1, help="the function's SLACK_TIMEOUT_SECONDS")
    parser.add_argument("--slack-budget", type=float, default=4.0, help="the function's SLACK_BUDGET_SECONDS")
    parser.add_argument(
        "--retry-delay", type=float, default=2.0, help="between Lambda's async retries (AWS: 1 then 2 min)"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="async invocations running at once")
    parser.add_argument("--max-redrives", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--log", default="/dev/null", help="where function logs and EMF metrics go")
    parser.add_argument("--log-level", default="WARNING")
    result = run(parser.parse_args())

    rows = [
        ("events (distinct FAILED jobs)", result["events"]),
        ("deliveries (with duplicates)", result["deliveries"]),
        ("Slack phases", "; ".join(result["phases"])),
        ("Slack answers by status", ", ".join(f"{k}: {v}" for k, v in result["slack_answers"].items())),
        ("invocations ending in the DLQ", sum(result["failed_invocations"].values())),
        ("parked in DLQ before redrive", result["parked_before_redrive"]),
        ("redriven (passes)", f"{result['redriven']} ({result['redrive_passes']})"),
        ("messages delivered", result["messages_delivered"]),
        ("jobs with a message", result["jobs_with_a_message"]),
        ("duplicates (jobs with > 1 message)", result["duplicates"]),
        ("in DLQ at the end", result["in_dlq"]),
        ("lost", result["lost"]),
        ("elapsed s", result["elapsed_s"]),
    ]
    print_report(rows, result)


if __name__ == "__main__":
    main()
