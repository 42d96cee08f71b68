"""Cold start: importing each handler module in a fresh interpreter, against `boto3.client("batch")`.

    .venv/bin/python bench/cold_start.py [--runs 9]

Each sample is a new `python -I` process whose sys.path is the function's directory plus
layers/common/python (what Lambda mounts), with the environment Lambda sets (function name, region,
POWERTOOLS_*, LAMBDA_TASK_ROOT so the Tracer is live and patches like in Lambda, fake credentials).
It times `import app` (the init phase), then the imports the handler defers to its first invocation
(`first call`), so init + first call can be compared with importing everything at init.
The baseline is `import boto3; boto3.client("batch")` in the same kind of process. Samples are
interleaved (baseline, each function, in rotating order) so machine noise hits all of them alike.
Target: every handler's init at most 1.25x the baseline. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / "layers" / "common" / "python"
TARGET_RATIO = 1.25

# logical id -> (function directory, modules its handler imports on the first invocation)
FUNCTIONS: dict[str, tuple[str, list[str]]] = {
    "ScheduleSubmitFunction": ("functions/schedule_submit", ["batch_dispatch.schedule"]),
    "S3SubmitFunction": ("functions/s3_submit", ["batch_dispatch.s3_intake", "batch_dispatch.burst"]),
    "FailureNotifyFunction": ("functions/failure_notify", ["batch_dispatch.failure_alert"]),
}
BASELINE = "baseline"

_PROBE = """
import importlib, json, sys, time
sys.path[:0] = {paths!r}
started = time.perf_counter()
{init}
init = time.perf_counter() - started
started = time.perf_counter()
for name in {first_call!r}:
    importlib.import_module(name)
first = time.perf_counter() - started
print(json.dumps({{"init_ms": init * 1000, "first_call_ms": first * 1000}}))
"""


def lambda_environment(function_name: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "LAMBDA_TASK_ROOT": "/var/task",
        "_HANDLER": "app.lambda_handler",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "POWERTOOLS_SERVICE_NAME": "batch-dispatch",
        "POWERTOOLS_METRICS_NAMESPACE": "BatchDispatch",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }
    return env


def sample(target: str) -> dict[str, float]:
    if target == BASELINE:
        paths, init, first_call, name = [], 'import boto3\nboto3.client("batch")', [], "baseline"
    else:
        directory, first_call = FUNCTIONS[target]
        paths, init, name = [str(ROOT / directory), str(LAYER)], "import app", target
    code = _PROBE.format(paths=paths, init=init, first_call=first_call)
    completed = subprocess.run(  # noqa: S603 - our own interpreter, our own code
        [sys.executable, "-I", "-c", code],
        env=lambda_environment(name),
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
    )
    if completed.returncode != 0:
        raise SystemExit(f"{target} failed to import:\n{completed.stderr}")
    result: dict[str, float] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--runs", type=int, default=9, help="samples per target (median reported)")
    args = parser.parse_args()

    targets = [BASELINE, *FUNCTIONS]
    samples: dict[str, list[dict[str, float]]] = {t: [] for t in targets}
    for run in range(args.runs):
        shift = run % len(targets)
        for target in targets[shift:] + targets[:shift]:
            samples[target].append(sample(target))

    def median(target: str, key: str) -> float:
        return statistics.median(s[key] for s in samples[target])

    baseline = median(BASELINE, "init_ms")
    figures: dict[str, dict[str, float | bool]] = {}
    print(f"{'function':<24} {'init ms':>8} {'ratio':>6} {'first call ms':>14} {'init+first ms':>14}")
    print(f"{'baseline (boto3 client)':<24} {baseline:>8.1f} {1.0:>6.2f} {'':>14} {'':>14}")
    for target in FUNCTIONS:
        init, first = median(target, "init_ms"), median(target, "first_call_ms")
        ratio = init / baseline
        figures[target] = {
            "init_ms": round(init, 1),
            "ratio": round(ratio, 3),
            "first_call_ms": round(first, 1),
            "init_plus_first_ms": round(init + first, 1),
            "meets_target": ratio <= TARGET_RATIO,
        }
        print(f"{target:<24} {init:>8.1f} {ratio:>6.2f} {first:>14.1f} {init + first:>14.1f}")
    verdict = all(f["meets_target"] for f in figures.values())
    print(f"target: every handler <= {TARGET_RATIO}x baseline -> {'met' if verdict else 'NOT met'}")
    print(
        json.dumps(
            {
                "runs": args.runs,
                "baseline_ms": round(baseline, 1),
                "functions": figures,
                "target_ratio": TARGET_RATIO,
                "target_met": verdict,
            },
            sort_keys=True,
        )
    )


if __name__ == "__main__":
    main()
