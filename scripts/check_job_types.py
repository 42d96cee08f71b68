"""Check the job catalog declared in template.yaml: names, and routes that would fit the same keys.

    .venv/bin/python scripts/check_job_types.py [--template template.yaml] [--job-types FILE]

Every job type is an AWS::Serverless::Application whose Location is job-types/job-type.yaml. Two job
types with the same upload prefix and suffix fit exactly the same keys: routing would have to pick one
by name, so that is refused here (run by `make lint`). A route that contains another is fine: the
longest prefix, then the longest suffix, wins (docs/job-types.md#routing-uploads).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emulator.sam import load_template, read_template  # noqa: E402

JOB_TYPE_TEMPLATE = "job-types/job-type.yaml"
NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")


def declared_job_types(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """logical id -> Parameters of every job type the template declares."""
    return {
        logical_id: resource.get("Properties", {}).get("Parameters", {})
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") == "AWS::Serverless::Application"
        and str(resource.get("Properties", {}).get("Location", "")).endswith(JOB_TYPE_TEMPLATE)
    }


def problems(template: dict[str, Any]) -> list[str]:
    found: list[str] = []
    names: dict[str, str] = {}
    routes: dict[tuple[str, str], str] = {}
    for logical_id, parameters in sorted(declared_job_types(template).items()):
        name = parameters.get("Name")
        if not isinstance(name, str) or not NAME.match(name) or name == "default":
            found.append(
                f"{logical_id}: Name {name!r} must be lower-case letters, digits and '-' (not 'default')"
            )
            continue
        if name in names:
            found.append(f"{logical_id}: Name {name!r} is already the name of {names[name]}")
        names[name] = logical_id
        route = (str(parameters.get("UploadPrefix", "")), str(parameters.get("UploadSuffix", "")))
        if route == ("", ""):
            continue  # no upload route
        if route in routes:
            found.append(
                f"{logical_id}: upload route prefix {route[0]!r} suffix {route[1]!r} is also "
                f"{routes[route]}'s: give one of them a longer prefix or suffix"
            )
        routes[route] = logical_id
    return found


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--template", type=Path, default=ROOT / "template.yaml")
    parser.add_argument(
        "--job-types", type=Path, help="YAML of job types added to the template's resources (examples)"
    )
    args = parser.parse_args()
    template = load_template(args.template)
    if args.job_types:
        template["Resources"].update(read_template(args.job_types))
    found = problems(template)
    for problem in found:
        print(f"job catalog: {problem}", file=sys.stderr)
    if not found:
        print(f"job catalog: {len(declared_job_types(template))} job type(s), no overlapping routes")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
