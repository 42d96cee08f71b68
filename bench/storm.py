"""Failure storm at scale: an array job of N children fails while uploads keep arriving.

    .venv/bin/python bench/storm.py [--children 10000] [--uploads 1000] --fast-moto [--processes]

Deploys template.yaml into the emulator and makes an array job of N children FAIL in moto Batch (no
Docker). Each child's "Batch Job State Change" event is built from DescribeJobs, as EventBridge
delivers it; 10 % of them are delivered a second time (EventBridge is at-least-once), shuffled, then
the parent's own FAILED event. They reach FailureNotifyFunction with Lambda's asynchronous semantics
(`Emulator.invoke`: retries, then FailureNotifyDLQ), never more at once than the function's reserved
concurrency (ReservedConcurrentExecutions, read from Lambda: the template's
NotifierReservedConcurrency); the runtime records the most invocations that ever ran at once. With
--processes, FailureNotifyFunction and StormDigestFunction run in warm worker processes, one per
concurrent invocation as in Lambda's execution environments (emulator/environments.py), instead of on
threads of this process.

Meanwhile U uploads arrive in the intake bucket (bucket notification -> IntakeQueue) and
S3SubmitFunction drains them with its event source mapping's settings; StormDigestFunction polls
StormQueue, where each window's close becomes visible when its SQS delay ends, as in AWS.

Scaled down so a run takes minutes, with the functions' own environment (as UpdateFunctionConfiguration
would set it): STORM_WINDOW_SECONDS --window-seconds instead of 300 and STORM_GRACE_SECONDS
--grace-seconds instead of 90 (the same 30:9 ratio by default). When the last event is delivered, the
last windows' closes are fast-forwarded (as `Emulator.close_storm_windows` does: their SQS delays
released).

Counted from the system, not from the script: Slack posts from the stand-in (per webhook, with the
time each arrived), the children posted on their own (their job ids) and the digests' own counts
("k posted on its own above, m counted only here"): a child neither posted nor counted is a lost
alert. Slack's rate (one message per second per webhook) comes from the stand-in's arrival times.
Storm windows are the windows the digests name; posts per window count a digest in the window it
names and every other post in the window it arrived in ("storm over" apart). Uploads: jobs per
object in moto Batch, objects in IntakeDLQ, lost = neither. The Slack stand-in runs in a process of
its own (emulator.slack_stub.SlackStandInProcess): on a thread of this busy process it would note
arrivals late, by up to a second, and the rate per webhook would measure that. Senders on threads of
this process (without --processes) are late the same way: the rate is Lambda's with --processes.

--fast-moto installs bench/moto_speedups.py first, as bench/burst.py does: the storm writes two
DynamoDB items per child in transactions, which plain moto answers by copying the whole table per
item (AWS does not).

Function logs go to --log (default: discarded). Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "common" / "python")]

import boto3  # noqa: E402

from bench.benchmark_run import benchmark_run  # noqa: E402
from bench.burst import objects_in_dlq  # noqa: E402
from bench.moto_speedups import DirectQueue  # noqa: E402
from bench.report import print_report  # noqa: E402
from emulator.core import Emulator  # noqa: E402
from emulator.environments import ExecutionEnvironments  # noqa: E402
from emulator.mapping_queue import MappingQueue  # noqa: E402
from emulator.moto_server import ACCOUNT_ID, REGION  # noqa: E402
from emulator.slack_stub import SlackStandInProcess  # noqa: E402

NOTIFIER = "FailureNotifyFunction"
DIGESTER = "StormDigestFunction"
INTAKE = "S3SubmitFunction"
SLACK_SECONDS_PER_POST = 1.0  # Slack: one message per second per incoming webhook
POSTS_PER_WINDOW = 3  # target: at most this many per queue per storm window, plus "storm over"

DIGEST = re.compile(r"^Failure digest: (\d+) children of array job (\S+) failed")
SPLIT = re.compile(r"(\d+) posted on (?:its|their) own above, (\d+) counted only here")
WINDOW = re.compile(r"_Window:_ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC to ")


# -- Slack, as the stand-in saw it -------------------------------------------------------------------


def most_in_any_stretch(times: list[float], seconds: float) -> int:
    """The most posts that arrived within any `seconds`-long stretch of time."""
    times = sorted(times)
    most, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= seconds:
            first += 1
        most = max(most, last - first + 1)
    return most


def digest_window(payload: dict[str, Any]) -> float | None:
    """The start (epoch seconds) of the storm window a digest names ("_Window:_ <start> to <end>")."""
    for block in payload.get("blocks", []):
        found = WINDOW.search(str((block.get("text") or {}).get("text", "")))
        if found:
            return datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()
    return None


def slack_figures(local: Emulator, parent: str, children: int) -> dict[str, Any]:
    """What the stand-in received: kinds of post, per-webhook rate, posts per storm window, and every
    child accounted for (posted on its own, or counted by a digest)."""
    accepted = [r for r in local.slack.requests if r.status == 200 and isinstance(r.payload, dict)]
    by_webhook: dict[str, list[float]] = {}
    for request in accepted:
        by_webhook.setdefault(request.path, []).append(request.received_at)
    gaps = [later - earlier for times in by_webhook.values() for earlier, later in pairwise(sorted(times))]
    child_id = re.compile(re.escape(parent) + r":(\d+)\b")
    posted_alone: set[str] = set()
    counted_in_digests = 0
    digests: Counter[float] = Counter()  # window start -> digests naming it
    others: list[float] = []  # arrival of every other post but "storm over"
    kinds: Counter[str] = Counter()
    for request in accepted:
        text = str(request.payload.get("text", ""))
        whole = json.dumps(request.payload, ensure_ascii=False)
        digest = DIGEST.match(text)
        if digest and digest.group(2) == parent:
            kinds["digest"] += 1
            split = SPLIT.search(text)
            counted_in_digests += int(split.group(2)) if split else 0
            window = digest_window(request.payload)
            digests[window if window is not None else request.received_at] += 1
            continue
        if text.startswith("Failure storm over"):
            kinds["storm over"] += 1
            continue
        if text.startswith("Failure storm"):
            kinds["storm notice"] += 1
        elif ids := set(child_id.findall(whole)):
            kinds["child alert"] += 1
            posted_alone.update(ids)
        elif parent in whole:
            kinds["array job alert"] += 1
        else:
            kinds["other"] += 1
        others.append(request.received_at)
    # A digest belongs to the window it names; any other post to the window it arrived in (the
    # latest that had started; the windows' starts are printed to the second, posts are paced apart).
    starts = sorted(digests)
    per_window = Counter(digests)
    for at in others:
        per_window[max((s for s in starts if s <= at), default=starts[0] if starts else 0.0)] += 1
    alerted = len(posted_alone) + counted_in_digests
    return {
        "slack_posts": len(accepted),
        "slack_posts_by_kind": dict(sorted(kinds.items())),
        "webhooks": len(by_webhook),
        "slack_most_per_second": max(
            (most_in_any_stretch(t, SLACK_SECONDS_PER_POST) for t in by_webhook.values()), default=0
        ),
        "slack_min_gap_s": round(min(gaps), 3) if gaps else None,
        "windows": len(starts),
        "most_posts_per_window": max(per_window.values(), default=0),
        "children_posted_alone": len(posted_alone),
        "children_counted_in_digests": counted_in_digests,
        "lost_alerts": max(children - alerted, 0),
        "over_counted_alerts": max(alerted - children, 0),
    }


# -- the run -----------------------------------------------------------------------------------------


def fail_array_job(local: Emulator, children: int) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """An array job of `children` that all FAIL in moto; its children's and its own descriptions."""
    with local.jobs_fail(exit_code=1, reason="Essential container in task exited"):
        parent = local.submit_array_job("storm", size=children)
    jobs = local.describe_jobs()
    kids = [j for j in jobs if j["jobId"].startswith(f"{parent}:")]
    (parent_job,) = [j for j in jobs if j["jobId"] == parent]
    statuses = Counter(j["status"] for j in [*kids, parent_job])
    if len(kids) != children or set(statuses) != {"FAILED"}:
        raise SystemExit(f"expected {children} FAILED children and a FAILED parent, found {statuses}")
    return parent, kids, parent_job


def reserved_concurrency(local: Emulator, logical_id: str) -> int:
    answer = boto3.client("lambda").get_function_concurrency(
        FunctionName=local.stack.functions[logical_id].physical_name
    )
    reserved = answer.get("ReservedConcurrentExecutions")
    if not reserved:
        raise SystemExit(
            f"{logical_id} has no reserved concurrency: deploy with NotifierReservedConcurrency > 0"
        )
    return int(reserved)


class UntilStopped(threading.Thread):
    """Runs `step` over and over (a poller's loop) until stopped, then once more."""

    def __init__(self, name: str, step: Any, pause: float = 0.2) -> None:
        super().__init__(name=name, daemon=True)
        self.step, self.pause = step, pause
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                self.step()
                self.stopping.wait(self.pause)
            self.step()
        except BaseException as error:  # reported by the main thread
            self.error = error

    def stop(self) -> None:
        self.stopping.set()
        self.join()
        if self.error is not None:
            raise self.error


def run(args: argparse.Namespace) -> dict[str, Any]:
    with (
        benchmark_run(args) as rng,
        Emulator(slack=SlackStandInProcess()) as local,  # notes arrivals on time, whatever our load
        contextlib.ExitStack() as processes,
    ):
        storm_environment = {
            "STORM_WINDOW_SECONDS": str(args.window_seconds),
            "STORM_GRACE_SECONDS": str(args.grace_seconds),
            "POWERTOOLS_LOG_LEVEL": args.log_level,
        }
        for function in (NOTIFIER, DIGESTER):
            local.update_function_environment(function, **storm_environment)
        local.update_function_environment(INTAKE, POWERTOOLS_LOG_LEVEL=args.log_level)
        reserved = reserved_concurrency(local, NOTIFIER)
        threshold = int(local.stack.functions[NOTIFIER].environment.get("STORM_THRESHOLD", "10"))
        notifiers = digesters = None
        if args.processes:  # spawned and warmed before the clock starts, as a storm finds Lambda's
            notifiers = processes.enter_context(
                ExecutionEnvironments(local.stack, NOTIFIER, reserved, output_path=args.log)
            )
            digest_concurrency = local.runtime.event_source(DIGESTER).max_concurrency
            digesters = processes.enter_context(
                ExecutionEnvironments(local.stack, DIGESTER, digest_concurrency, output_path=args.log)
            )
        notifier_retries = local.shim.async_retry_attempts(NOTIFIER)

        parent, kids, parent_job = fail_array_job(local, args.children)
        events = [local.batch_event(job) for job in kids]
        deliveries = events + rng.sample(events, round(len(events) * args.duplicate_rate))
        rng.shuffle(deliveries)
        deliveries.append(local.batch_event(parent_job))  # the parent fails when its children have

        bucket = local.bucket()
        keys = [f"incoming/storm/{i:05d} part+{i % 7}.csv" for i in range(args.uploads)]
        queues = (
            DirectQueue.factory(local.server.app.lock, ACCOUNT_ID, REGION) if args.fast_moto else MappingQueue
        )
        uploaded = threading.Event()

        def upload_spread_out() -> None:
            s3: Any = boto3.client("s3")
            for index, key in enumerate(keys):
                s3.put_object(Bucket=bucket, Key=key, Body=b"data")
                time.sleep(max(0.0, started + index * args.upload_seconds / len(keys) - time.monotonic()))
            uploaded.set()

        def drain(function: str, environments: ExecutionEnvironments | None = None) -> Any:
            return lambda: local.drain(
                function,
                idle_timeout=args.timeout,
                queue_factory=queues,
                retry_visibility_seconds=1,
                environments=environments,
            )

        def notify(event: dict[str, Any]) -> Any:  # EventBridge -> Lambda, asynchronously
            return local.runtime.invoke_async(NOTIFIER, event, notifier_retries, environments=notifiers)

        started = time.monotonic()
        uploader = threading.Thread(target=upload_spread_out, name="uploads", daemon=True)
        intake = UntilStopped("intake", drain(INTAKE))
        digests = UntilStopped("digests", drain(DIGESTER, digesters))
        for thread in (uploader, intake, digests):
            thread.start()
        errors: Counter[str] = Counter()
        with ThreadPoolExecutor(max_workers=reserved) as notifier:
            for outcome in notifier.map(notify, deliveries):
                if outcome.error is not None:
                    errors[outcome.error["type"]] += 1
        delivered_s = time.monotonic() - started
        uploader.join()
        intake.stop()
        digests.stop()
        # The last windows close later than the run: fast-forward their delayed closes (and any
        # end check they schedule) until nothing is left.
        while local.release_delayed(DIGESTER) + drain(DIGESTER, digesters)():
            pass
        elapsed = time.monotonic() - started

        figures = slack_figures(local, parent, args.children)
        per_object, _ = local.jobs_per_object()
        runs = {key: per_object.get((bucket, key), 0) for key in keys}
        in_dlq = {key for b, key in objects_in_dlq(local) if b == bucket}
        dlqs = {name: len(bodies) for name, bodies in local.dlq_messages().items()}
        peak = local.runtime.concurrency.peak(NOTIFIER)
    return {
        "children": args.children,
        "deliveries": len(deliveries),
        **figures,
        "max_notifier_concurrency": peak,
        "notifier_reserved_concurrency": reserved,
        "notifier_errors": dict(errors),
        "uploads": args.uploads,
        "upload_jobs": sum(runs.values()),
        "upload_duplicates": sum(n - 1 for n in runs.values() if n > 1),
        "uploads_lost": sum(1 for key, n in runs.items() if n == 0 and key not in in_dlq),
        "intake_dlq": dlqs.get("IntakeDLQ", 0),
        "failure_notify_dlq": dlqs.get("FailureNotifyDLQ", 0),
        "storm_dlq": dlqs.get("StormDLQ", 0),
        "deliveries_done_s": round(delivered_s, 1),
        "elapsed_s": round(elapsed, 1),
        "deliveries_per_s": round(len(deliveries) / delivered_s, 1) if delivered_s else None,
        "moto": "with bench/moto_speedups.py" if args.fast_moto else "as released",
        "execution_environments": "processes" if args.processes else "in-process",
        "scaled": {
            "storm_window_s": f"{args.window_seconds} (template default 300)",
            "storm_grace_s": f"{args.grace_seconds} (90)",
            "storm_threshold": threshold,
            "upload_spread_s": args.upload_seconds,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--children", type=int, default=10_000, help="children of the failing array job")
    parser.add_argument("--duplicate-rate", type=float, default=0.1, help="share of events delivered twice")
    parser.add_argument("--uploads", type=int, default=1000, help="uploads arriving during the storm")
    parser.add_argument(
        "--upload-seconds", type=float, default=30.0, help="the uploads arrive over this long"
    )
    parser.add_argument("--window-seconds", type=int, default=10, help="STORM_WINDOW_SECONDS (AWS: 300)")
    parser.add_argument("--grace-seconds", type=int, default=3, help="STORM_GRACE_SECONDS (AWS: 90)")
    parser.add_argument(
        "--fast-moto",
        action="store_true",
        help="install bench/moto_speedups.py first (default: moto as released)",
    )
    parser.add_argument(
        "--processes",
        action="store_true",
        help="run the notifier's and the digest's invocations in warm worker processes",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="give up draining after this many s")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--log", default="/dev/null", help="where function logs and EMF metrics go")
    parser.add_argument("--log-level", default="WARNING")
    result = run(parser.parse_args())

    rows = [
        ("children (array job FAILED)", result["children"]),
        ("deliveries (10 % twice, + the parent's)", result["deliveries"]),
        (
            "notifier concurrency: most at once / reserved",
            f"{result['max_notifier_concurrency']} / {result['notifier_reserved_concurrency']}",
        ),
        ("notifier invocations that failed", sum(result["notifier_errors"].values())),
        ("Slack posts", result["slack_posts"]),
        ("  by kind", ", ".join(f"{k}: {v}" for k, v in result["slack_posts_by_kind"].items())),
        ("storm windows (named by digests)", result["windows"]),
        (
            "most posts per storm window (+ storm over)",
            f"{result['most_posts_per_window']} (target <= {POSTS_PER_WINDOW})",
        ),
        ("most posts per webhook in any 1 s (target 1)", result["slack_most_per_second"]),
        ("shortest gap between posts s", result["slack_min_gap_s"]),
        (
            "children posted alone / counted in digests",
            f"{result['children_posted_alone']} / {result['children_counted_in_digests']}",
        ),
        ("lost alerts", result["lost_alerts"]),
        ("over-counted alerts", result["over_counted_alerts"]),
        ("uploads / jobs for them", f"{result['uploads']} / {result['upload_jobs']}"),
        ("uploads lost / duplicated", f"{result['uploads_lost']} / {result['upload_duplicates']}"),
        (
            "IntakeDLQ / FailureNotifyDLQ / StormDLQ",
            f"{result['intake_dlq']} / {result['failure_notify_dlq']} / {result['storm_dlq']}",
        ),
        ("moto", result["moto"]),
        ("alert functions run", result["execution_environments"]),
        ("scaled down", ", ".join(f"{k} {v}" for k, v in result["scaled"].items())),
        ("deliveries done s (per s)", f"{result['deliveries_done_s']} ({result['deliveries_per_s']})"),
        ("elapsed s", result["elapsed_s"]),
    ]
    print_report(rows, result)


if __name__ == "__main__":
    main()
