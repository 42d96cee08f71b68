"""Check the job catalog declared in template.yaml: names, routes that would fit the same keys, and
upload buckets the stack does not attach.

    .venv/bin/python scripts/check_job_types.py [--template template.yaml] [--job-types FILE]
                                                [--samconfig samconfig.toml]

Every job type is an AWS::Serverless::Application whose Location is job-types/job-type.yaml. Two job
types with the same bucket, upload prefix and suffix fit exactly the same uploads: routing would have
to pick one by name, so that is refused here (run by `make lint`). A route that contains another is
fine: the longest prefix, then the longest suffix, wins (docs/job-types.md#routing-uploads).

A job type's UploadBucket only sends events through the stack's AttachedBuckets rule, a deploy-time
parameter. Where its value is known here (the template's default, or an environment's
parameter_overrides in samconfig.toml), a job type whose bucket it lacks is refused; when nothing here
sets it, a warning says which buckets the deploy must list.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
import tomllib
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


def text(value: Any) -> str:
    """A literal parameter value ("" for an intrinsic such as !Ref IntakeBucket: the intake bucket)."""
    return value if isinstance(value, str) else ""


def problems(template: dict[str, Any], attached: dict[str, list[str]] | None = None) -> list[str]:
    """What is wrong with the catalog; `attached`: where AttachedBuckets is known -> its bucket names."""
    found: list[str] = []
    names: dict[str, str] = {}
    routes: dict[tuple[str, str, str], str] = {}
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
        bucket = text(parameters.get("UploadBucket", ""))
        for where, buckets in (attached or {}).items():
            if bucket and bucket not in buckets:
                found.append(
                    f"{logical_id}: UploadBucket {bucket!r} is not in AttachedBuckets of {where} "
                    f"({','.join(buckets) or 'empty'}): its uploads would never reach the stack"
                )
        route = (bucket, text(parameters.get("UploadPrefix", "")), text(parameters.get("UploadSuffix", "")))
        if route == ("", "", ""):
            continue  # no upload route
        if route in routes:
            found.append(
                f"{logical_id}: upload route bucket {route[0] or 'intake'!r} prefix {route[1]!r} suffix "
                f"{route[2]!r} is also {routes[route]}'s: give one of them a longer prefix or suffix"
            )
        routes[route] = logical_id
    return found


def upload_buckets(template: dict[str, Any]) -> dict[str, str]:
    """Job type logical id -> its literal UploadBucket, for the job types that name one."""
    return {
        logical_id: bucket
        for logical_id, parameters in declared_job_types(template).items()
        if (bucket := text(parameters.get("UploadBucket", "")))
    }


def attached_buckets(template: dict[str, Any], samconfig: Path | None) -> dict[str, list[str]]:
    """Where AttachedBuckets is known before deploying -> its bucket names: the template's default
    (when not empty) and each samconfig.toml environment that sets it."""
    known: dict[str, list[str]] = {}
    default = str(template.get("Parameters", {}).get("AttachedBuckets", {}).get("Default", ""))
    if default:
        known["the template's default"] = default.split(",")
    if samconfig is not None and samconfig.exists():
        config = tomllib.loads(samconfig.read_text(encoding="utf-8"))
        for environment, commands in sorted(config.items()):
            if not isinstance(commands, dict):
                continue
            overrides = commands.get("deploy", {}).get("parameters", {}).get("parameter_overrides", "")
            pairs = dict(item.partition("=")[::2] for item in shlex.split(str(overrides)))
            if "AttachedBuckets" in pairs:
                value = pairs["AttachedBuckets"]
                known[f"samconfig.toml [{environment}]"] = value.split(",") if value else []
    return known


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--template", type=Path, default=ROOT / "template.yaml")
    parser.add_argument(
        "--job-types", type=Path, help="YAML of job types added to the template's resources (examples)"
    )
    parser.add_argument("--samconfig", type=Path, default=ROOT / "samconfig.toml")
    args = parser.parse_args()
    template = load_template(args.template)
    if args.job_types:
        template["Resources"].update(read_template(args.job_types))
    attached = attached_buckets(template, args.samconfig)
    found = problems(template, attached)
    for problem in found:
        print(f"job catalog: {problem}", file=sys.stderr)
    if not attached:
        for logical_id, bucket in sorted(upload_buckets(template).items()):
            print(
                f"job catalog: warning: {logical_id}'s UploadBucket {bucket!r} must be in the deploy's "
                "AttachedBuckets (nothing here sets it)",
                file=sys.stderr,
            )
    if not found:
        print(f"job catalog: {len(declared_job_types(template))} job type(s), no overlapping routes")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
