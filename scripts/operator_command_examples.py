"""Regenerate the example outputs of docs/operator-command.md: the real command against the emulator.

    .venv/bin/python scripts/operator_command_examples.py            # print every example
    .venv/bin/python scripts/operator_command_examples.py --write    # and put them into the doc

Deploys template.yaml with job-types/examples.yaml's job types into the emulator (stack
batch-dispatch-local), sets the scene the doc describes (a default job that failed after logging three
lines, a nightly-report tick that ran on 2026-11-21, a malformed event parked in ScheduleDLQ), then runs
each example's commands in order, in this process, with output piped as in a script (no colours, whole
table rows). Each example replaces the code block under `<!-- example: NAME -->` in the doc. A
`| jq ...` after a command is applied here (jq's output is JSON indented by two spaces, as here).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for path in ("", "layers/common/python", "cli"):  # the repository's packages, as pytest's pythonpath
    sys.path.insert(0, str(ROOT / path))

import boto3  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from batch_dispatch_cli.app import cli, quiet_shared_package  # noqa: E402
from emulator.core import Emulator  # noqa: E402

DOC = ROOT / "docs" / "operator-command.md"
EXAMPLE_JOB_TYPES = ROOT / "job-types" / "examples.yaml"
STACK = "batch-dispatch-local"
FAILED_JOB_LOG = [
    "loading orders for 2026-11-22",
    "wrote 1200 rows to s3://reports/2026-11-22.csv",
    "upload failed: AccessDenied on s3://reports/2026-11-22.csv",
]
NIGHTLY_TICK = "2026-11-21T01:00:00Z"  # 02:00 in Berlin
MARKER = re.compile(r"(<!-- example: ([a-z-]+) -->\n```\n)(.*?)(\n```)", re.DOTALL)
# Names of the examples, in the order they run (later ones see what earlier ones did).
EXAMPLES = ("status", "status-json", "logs", "rerun", "run", "backfill", "dlq")


def batch_dispatch(*args: str, jq: Callable[[Any], Any] | None = None, jq_text: str = "") -> str:
    """`$ batch-dispatch ARGS` and what it printed (stdout, then stderr), as a terminal shows them."""
    result = CliRunner(mix_stderr=False).invoke(
        cli, list(args), env={"COLUMNS": None, "BATCH_DISPATCH_STACK": STACK}, catch_exceptions=False
    )
    printed = result.stdout
    if jq is not None:
        printed = json.dumps(jq(json.loads(printed)), indent=2) + "\n"
    shown = " ".join(_quoted(arg) for arg in args) + (f" | jq '{jq_text}'" if jq else "")
    lines = f"$ batch-dispatch {shown}\n{printed}{result.stderr}".rstrip("\n").splitlines()
    return "\n".join(line.rstrip() for line in lines)  # tables pad their last column with spaces


def _quoted(arg: str) -> str:
    return arg if re.fullmatch(r"[\w@%+=:,./-]+", arg) else f"'{arg}'"


def log(local: Emulator, job_id: str, lines: list[str]) -> None:
    """Log `lines` as the job's container would: in the stream its last attempt names."""
    (job,) = boto3.client("batch").describe_jobs(jobs=[job_id])["jobs"]
    group, stream = local.stack.outputs["JobLogGroupName"], job["attempts"][-1]["container"]["logStreamName"]
    logs = boto3.client("logs")
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    start = int(datetime.now(UTC).timestamp() * 1000)
    events = [{"timestamp": start + n * 1500, "message": line} for n, line in enumerate(lines)]
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)


def set_the_scene(local: Emulator) -> str:
    """What the doc's examples find: returns the id of the default job that failed."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    local.tick((now - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    with local.jobs_fail():
        failed = local.tick(now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert failed is not None
    assert failed.result is not None
    log(local, failed.result["jobId"], FAILED_JOB_LOG)
    local.tick(NIGHTLY_TICK, job_type="nightly-report")
    local.invoke("ScheduleSubmitFunction", {"scheduledTime": "not-a-time", "parameters": {"mode": "full"}})
    return str(failed.result["jobId"])


def run_examples(local: Emulator) -> dict[str, str]:
    failed = set_the_scene(local)
    only_nightly = '.jobTypes |= map(select(.name == "nightly-report"))'

    def nightly_only(document: dict[str, Any]) -> dict[str, Any]:
        return {**document, "jobTypes": [t for t in document["jobTypes"] if t["name"] == "nightly-report"]}

    examples = {
        "status": [batch_dispatch("status")],
        "status-json": [batch_dispatch("status", "--json", jq=nightly_only, jq_text=only_nightly)],
        "logs": [batch_dispatch("logs", failed)],
        "rerun": [batch_dispatch("rerun", failed), batch_dispatch("rerun", failed, "--json")],
        "run": [
            batch_dispatch(
                "run", "nightly-report", "--param", "day=2026-11-22", "--idempotency-key", "ticket-42"
            ),
            batch_dispatch(
                "run",
                "nightly-report",
                "--param",
                "day=2026-11-22",
                "--idempotency-key",
                "ticket-42",
                "--json",
            ),
            batch_dispatch("run", "nightly-reports"),
        ],
        "backfill": [
            batch_dispatch(
                "backfill", "nightly-report", "--from", "2026-11-20", "--to", "2026-11-23", "--dry-run"
            ),
            batch_dispatch("backfill", "nightly-report", "--from", "2026-11-20", "--to", "2026-11-23"),
            batch_dispatch("backfill", "nightly-report", "--from", "2026-11-23", "--to", "2026-11-20"),
        ],
        "dlq": [
            batch_dispatch("dlq"),
            batch_dispatch("dlq", "redrive", "--queue", "ScheduleDLQ", "--dry-run"),
        ],
    }
    assert tuple(examples) == EXAMPLES
    return {name: "\n\n".join(blocks) for name, blocks in examples.items()}


def write_into(doc: str, examples: dict[str, str]) -> str:
    """The doc with each marked block replaced; every marker needs an example and every example a marker."""
    marked = [match.group(2) for match in MARKER.finditer(doc)]
    if sorted(marked) != sorted(examples):
        raise SystemExit(f"{DOC.name} marks examples {marked}; this script makes {list(examples)}")
    return MARKER.sub(lambda m: m.group(1) + examples[m.group(2)] + m.group(4), doc)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--write", action="store_true", help=f"replace the examples in {DOC}")
    args = parser.parse_args()
    # The handlers the emulator runs print their metrics to stdout: stdout is for the examples only.
    examples_out, sys.stdout = sys.stdout, sys.stderr
    quiet_shared_package()
    with Emulator(job_types=EXAMPLE_JOB_TYPES) as local:
        if local.stack.name != STACK:
            raise SystemExit(f"the emulator's stack is {local.stack.name}, not {STACK}")
        examples = run_examples(local)
    for name, text in examples.items():
        print(f"<!-- example: {name} -->\n```\n{text}\n```\n", file=examples_out)
    if args.write:
        DOC.write_text(write_into(DOC.read_text(encoding="utf-8"), examples), encoding="utf-8")
        print(f"wrote {len(examples)} examples into {DOC.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
