"""The local stack from the command line (each verb deploys a fresh one and prints one JSON document).

python -m emulator invoke FUNCTION EVENT.json [EVENT.json ...]
python -m emulator upload KEY [KEY ...]
python -m emulator tick JOB_TYPE [--time ISO8601]
python -m emulator demo
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

# Handlers log (and Powertools prints metrics) to stdout; keep stdout for what we print ourselves.
# This must happen before batch_dispatch is imported: its Logger binds to sys.stdout when created.
_REAL_STDOUT = sys.stdout
_REAL_STDERR = sys.stderr
DEMO_LOG = Path(".demo/demo.log")
if sys.argv[1:2] == ["demo"]:
    # The demo is read by a person: the handlers' JSON logs go to a file, the story to the terminal.
    DEMO_LOG.parent.mkdir(exist_ok=True)
    sys.stdout = sys.stderr = DEMO_LOG.open("w", encoding="utf-8")
else:
    sys.stdout = sys.stderr


def _run(args: argparse.Namespace) -> dict[str, Any]:
    from emulator.core import Emulator

    job_types = Path(args.job_types) if args.job_types else None
    with Emulator(_parse_parameters(args.parameter), job_types=job_types) as local:
        invocations: list[tuple[str, Any]] = []
        if args.command == "invoke":
            if args.function not in local.stack.functions:
                known = ", ".join(local.stack.functions)
                raise SystemExit(f"unknown function {args.function!r}; template.yaml has: {known}")
            for name in args.events:
                event = json.loads(Path(name).read_text(encoding="utf-8"))
                invocations.append((name, local.invoke(args.function, event)))
        elif args.command == "upload":
            for key in args.keys:
                local.upload(key)
            local.drain()
        else:
            try:
                schedule = local.schedule_of(args.job_type)
            except KeyError as error:
                raise SystemExit(str(error.args[0])) from None
            tick = local.tick(args.time, schedule=schedule)
            if tick is not None:
                invocations.append((schedule.name, tick))
        return local.report(invocations)


def _parse_parameters(items: list[str]) -> dict[str, str]:
    parameters = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--parameter takes NAME=VALUE, got {item!r}")
        parameters[name] = value
    return parameters


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m emulator", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    invoke = commands.add_parser("invoke", help="feed events to one function, as Lambda would")
    invoke.add_argument("function", help="logical id in template.yaml, e.g. ScheduleSubmitFunction")
    invoke.add_argument("events", nargs="+", help="event JSON files, delivered in order")
    upload = commands.add_parser(
        "upload", help="put objects into the intake bucket; notification -> queue -> function until empty"
    )
    upload.add_argument("keys", nargs="+", metavar="KEY", help="object keys, as stored")
    tick = commands.add_parser("tick", help="fire a job type's schedule with the Input it really sends")
    tick.add_argument(
        "job_type", metavar="JOB_TYPE", help='a job type with a schedule ("default": the stack\'s)'
    )
    tick.add_argument("--time", help="the scheduled time, ISO 8601 (default: now)")
    for command in (invoke, upload, tick):
        command.add_argument("--parameter", action="append", default=[], help="template parameter NAME=VALUE")
        command.add_argument(
            "--job-types",
            help="YAML of job types added to template.yaml's resources (job-types/examples.yaml)",
        )
    commands.add_parser("demo", help="run the whole story locally and explain what happened")
    args = parser.parse_args(argv)

    if args.command != "demo":
        document = _run(args)
        _REAL_STDOUT.write(json.dumps(document, indent=2, default=str) + "\n")
        return 0
    from emulator.demo import run_demo

    try:
        status = run_demo(_REAL_STDOUT)
    except Exception:
        import traceback

        traceback.print_exc(file=_REAL_STDERR)
        _REAL_STDERR.write(f"The demo failed; the functions' logs are in {DEMO_LOG}\n")
        return 1
    _REAL_STDOUT.write(f"The functions' structured logs (JSON, as in CloudWatch) are in {DEMO_LOG}\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
