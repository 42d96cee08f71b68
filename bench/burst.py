"""Burst intake: N S3 notifications through the real intake queue and S3SubmitFunction, SubmitJob throttled.

    .venv/bin/python bench/burst.py --objects 2000 --tps 50 --duplicate-rate 0.1
    .venv/bin/python bench/burst.py --mode array --objects 10000 --fast-moto [--processes]

Deploys template.yaml into the emulator, puts N notifications (R of them twice, shuffled) on the
IntakeQueue, puts a token-bucket SubmitJob throttle of T calls/s in front of moto's Batch (HTTP 429
TooManyRequestsException, like Batch), and drains the queue with the event source mapping's
BatchSize, MaximumBatchingWindowInSeconds and MaximumConcurrency (`Emulator.drain`), the function
running in-process on the pollers' threads; with --processes each concurrent invocation runs in its
own warm worker process instead, as in Lambda's execution environments (emulator/environments.py),
rather than sharing one interpreter lock with moto's server. Then it counts, from Batch and S3
(emulator/job_objects.py): the objects jobs ran (an array job's children that ran, child i being the
object on line i of its manifest), duplicates (runs beyond one per object), objects in the IntakeDLQ,
and lost objects (never run and not in the DLQ).

Runs on moto as released, like the tests and the demo. --fast-moto installs bench/moto_speedups.py
first: moto's SQS and DynamoDB costs grow with queue depth and table size (AWS's do not), which a
10,000-object array burst on plain moto measures more than our code; and the pollers, which are
Lambda's own fleet in AWS, reach moto's queue in-process instead of over loopback HTTP.

A message the function fails (a duplicate still in progress elsewhere, say) comes back when the
queue's VisibilityTimeout (420 s) ends, in AWS as in the emulator; the bench fast-forwards that to
--retry-visibility seconds (1 by default, as before) so the elapsed time measures the burst, not
that wait. `--retry-visibility -1` waits the queue's own timeout.

Elapsed is from the first poll until the queue is empty (the manifests' own notifications included);
"all submitted" is when the last SubmitJob that created a job was let through.

Function logs and EMF metrics go to --log (default: discarded). Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "common" / "python")]

import boto3  # noqa: E402

from bench.benchmark_run import benchmark_run  # noqa: E402
from bench.moto_speedups import DirectQueue  # noqa: E402
from bench.report import print_report  # noqa: E402
from emulator.core import Emulator, s3_notification  # noqa: E402
from emulator.environments import ExecutionEnvironments  # noqa: E402
from emulator.mapping_queue import MappingQueue  # noqa: E402
from emulator.moto_server import ACCOUNT_ID, REGION  # noqa: E402
from emulator.throttle import SubmitJobThrottle  # noqa: E402

FUNCTION = "S3SubmitFunction"


def enqueue(queue_url: str, bodies: list[str]) -> None:
    sqs: Any = boto3.client("sqs")
    for start in range(0, len(bodies), 10):
        sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start : start + 10])],
        )


def objects_in_dlq(local: Emulator) -> set[tuple[str, str]]:
    from batch_dispatch.submit.s3_events import S3Upload, parse_body

    found: set[tuple[str, str]] = set()
    for body in local.dlq_messages().get("IntakeDLQ", []):
        with contextlib.suppress(ValueError):
            found.update((i.bucket, i.key) for i in parse_body(body) if isinstance(i, S3Upload))
    return found


def run(args: argparse.Namespace) -> dict[str, Any]:
    with benchmark_run(args) as rng:
        overrides = {"SubmitMode": "ARRAY"} if args.mode == "array" else {}
        if args.batch_size:
            overrides["IntakeBatchSize"] = str(args.batch_size)
        if args.batching_window is not None:
            overrides["IntakeBatchingWindowSeconds"] = f"{args.batching_window:g}"
        with Emulator(overrides, with_slack=False) as local:
            function = local.stack.functions[FUNCTION]
            function.environment["POWERTOOLS_LOG_LEVEL"] = args.log_level
            bucket = local.bucket()
            keys = [f"incoming/burst/{i:06d} part {i % 7}+x.csv" for i in range(args.objects)]
            bodies = [s3_notification(bucket, key, i) for i, key in enumerate(keys)]
            bodies += rng.sample(bodies, round(args.objects * args.duplicate_rate))
            rng.shuffle(bodies)
            enqueue(local.stack.queue_url("IntakeQueue"), bodies)

            throttle = SubmitJobThrottle(rate_per_second=args.tps)
            environments: ExecutionEnvironments | None = None
            with contextlib.ExitStack() as stack:
                if args.processes:  # spawned and warmed before the clock starts
                    concurrency = local.runtime.event_source(FUNCTION).max_concurrency
                    environments = stack.enter_context(
                        ExecutionEnvironments(local.stack, FUNCTION, concurrency, output_path=args.log)
                    )
                stack.enter_context(throttle.in_front_of_moto(local.server))
                started = time.monotonic()
                # --fast-moto: the pollers reach moto's queue in-process (bench/moto_speedups.py)
                pollers = DirectQueue.factory(local.server.app.lock, ACCOUNT_ID, REGION)
                invocations = local.drain(
                    FUNCTION,
                    idle_timeout=args.timeout,
                    environments=environments,
                    queue_factory=pollers if args.fast_moto else MappingQueue,
                    retry_visibility_seconds=None if args.retry_visibility < 0 else args.retry_visibility,
                )
                elapsed = time.monotonic() - started
                throttle.enabled = False
            last_submit = throttle.stats.last_allowed

            per_object, submit_calls = local.jobs_per_object()
            batch_size = local.stack.parameters.get("IntakeBatchSize")
            window = local.stack.parameters.get("IntakeBatchingWindowSeconds")
            in_dlq = objects_in_dlq(local)
    wanted = {(bucket, k) for k in keys}
    floor = args.objects / args.tps
    return {
        "mode": args.mode,
        "batch_size": batch_size,
        "batching_window_s": window,
        "objects": args.objects,
        "deliveries": len(bodies),
        "tps": args.tps,
        "jobs": sum(per_object.values()),
        "submit_job_calls": submit_calls,
        "duplicates": sum(n - 1 for n in per_object.values() if n > 1),
        "lost": len(wanted - set(per_object) - in_dlq),
        "in_dlq": len(in_dlq),
        "throttled_calls": throttle.stats.throttled,
        "invocations": invocations,
        "elapsed_s": round(elapsed, 2),
        "all_submitted_s": round(last_submit - started, 2) if last_submit else None,
        "execution_environments": "processes" if args.processes else "in-process",
        "moto": "with bench/moto_speedups.py" if args.fast_moto else "as released",
        "retry_visibility_s": "queue's" if args.retry_visibility < 0 else args.retry_visibility,
        "floor_s": round(floor, 2),
        "efficiency": round(floor / elapsed, 3) if elapsed else None,
        "objects_per_s": round(args.objects / elapsed, 1) if elapsed else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--tps", type=float, default=50.0, help="SubmitJob calls/s before 429s")
    parser.add_argument("--duplicate-rate", type=float, default=0.1, help="share of notifications sent twice")
    parser.add_argument("--mode", choices=["per-object", "array"], default="per-object")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="IntakeBatchSize: messages per invocation (default: the template's; array mode: 10000)",
    )
    parser.add_argument(
        "--batching-window",
        type=float,
        default=None,
        help="IntakeBatchingWindowSeconds (default: the template's, 1 s)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--processes",
        action="store_true",
        help="run each concurrent invocation in its own warm worker process (emulator/environments.py)",
    )
    parser.add_argument(
        "--fast-moto",
        action="store_true",
        help="install bench/moto_speedups.py first (default: moto as released)",
    )
    parser.add_argument(
        "--retry-visibility",
        type=int,
        default=1,
        help="seconds until a failed message comes back (fast-forward; -1: the queue's VisibilityTimeout)",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="give up draining after this many s")
    parser.add_argument("--log", default="/dev/null", help="where function logs and EMF metrics go")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args()
    if args.mode == "array" and args.batch_size is None:
        args.batch_size = 10_000
    result = run(args)

    rows = [
        ("mode", result["mode"]),
        ("batch size / window s", f"{result['batch_size']} / {result['batching_window_s']}"),
        ("objects", result["objects"]),
        ("deliveries (with duplicates)", result["deliveries"]),
        ("object runs (array: children that ran)", result["jobs"]),
        ("SubmitJob calls that created a job", result["submit_job_calls"]),
        ("duplicates", result["duplicates"]),
        ("lost", result["lost"]),
        ("in DLQ", result["in_dlq"]),
        ("SubmitJob calls throttled (429)", result["throttled_calls"]),
        ("Lambda invocations", result["invocations"]),
        ("execution environments", result["execution_environments"]),
        ("moto", result["moto"]),
        ("failed messages back after s", result["retry_visibility_s"]),
        ("all submitted s (last SubmitJob)", result["all_submitted_s"]),
        ("elapsed s (queue empty)", result["elapsed_s"]),
        (f"floor s (N / {result['tps']:g} TPS)", result["floor_s"]),
        ("efficiency (floor / elapsed)", result["efficiency"]),
        ("objects/s", result["objects_per_s"]),
    ]
    print_report(rows, result)


if __name__ == "__main__":
    main()
