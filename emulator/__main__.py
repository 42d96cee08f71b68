"""`python -m emulator invoke FUNCTION EVENT.json ...` and `python -m emulator demo`."""

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


def _invoke(function: str, event_files: list[str], parameters: dict[str, str]) -> dict[str, Any]:
    from emulator.core import Emulator

    with Emulator(parameters) as local:
        if function not in local.stack.functions:
            raise SystemExit(
                f"unknown function {function!r}; template.yaml has: {', '.join(local.stack.functions)}"
            )
        invocations = []
        for name in event_files:
            event = json.loads(Path(name).read_text(encoding="utf-8"))
            invocations.append((name, local.invoke(function, event)))
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
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    invoke = commands.add_parser("invoke", help="deploy a fresh local stack and feed events to one function")
    invoke.add_argument("function", help="logical id in template.yaml, e.g. ScheduleSubmitFunction")
    invoke.add_argument("events", nargs="+", help="event JSON files, delivered in order")
    invoke.add_argument("--parameter", action="append", default=[], help="template parameter NAME=VALUE")
    commands.add_parser("demo", help="run the whole story locally and explain what happened")
    args = parser.parse_args(argv)

    if args.command == "invoke":
        document = _invoke(args.function, args.events, _parse_parameters(args.parameter))
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
