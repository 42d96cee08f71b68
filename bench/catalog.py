"""Job catalog at scale: N job types in one stack, against CloudFormation's limits, and uploads routed.

    .venv/bin/python bench/catalog.py [--job-types 100] [--uploads 1000] [--duplicate-rate 0.1]

Generates N job types in a temporary directory from the "Add a job type" block of docs/job-types.md
(as a team pastes it N times: each with its own logical id, Name and upload route, one in four with
its own schedule), adds them to template.yaml's resources like `Emulator(job_types=...)` does, and
measures:
- the templates against CloudFormation's quotas: the parent's resources, parameters and outputs after
  the SAM transform (emulator.sam.transform_template, nested applications pointed at S3 as `sam
  package` does), its size as `sam package` writes it (YAML, comments dropped) and as transformed
  (compact JSON) (`sam deploy` uploads it to S3: 1 MB; a TemplateBody would be 51,200 bytes),
  job-types/job-type.yaml's size and parameters, and the
  resources of the largest nested stack as deployed (its conditions evaluated);
- the emulator's deploy (moto creating the parent and N nested stacks, then the shim);
- U uploads spread over the N routes, put into the intake bucket (bucket notification -> IntakeQueue),
  R of the notifications delivered a second time (byte-identical copies, as SQS's at-least-once
  delivery allows), drained by the real S3SubmitFunction with its event source mapping's settings.
  Counted from moto Batch: jobs per object and each job's job type (its job definition), so
  "submitted once to the right job type", lost (no job, not in IntakeDLQ) and duplicates come from
  the system, not from the script;
- registry reads: GetParametersByPath requests moto's server answered while the queue drained
  (`MotoServer.request_counts`; a read of N entries takes ceil(N / 10) pages), against what caching
  for JOB_TYPES_MAX_AGE_SECONDS allows: one read per execution environment per max age (Lambda runs up
  to the mapping's MaximumConcurrency environments; in-process, the emulator's share one cache).

The routes exercise every routing rule: prefix and suffix, prefix only, suffix only, and a prefix
nested inside another type's prefix (longest prefix wins); some keys need URL-decoding. A failed
message (a duplicate still in progress elsewhere) comes back after --retry-visibility seconds instead
of the queue's 420 s, as in bench/burst.py. Runs on moto as released.

Function logs go to --log (default: discarded). Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "common" / "python")]

import boto3  # noqa: E402
from samcli.yamlhelper import yaml_dump  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402

from bench.burst import objects_in_dlq  # noqa: E402
from bench.report import print_report  # noqa: E402
from emulator.core import Emulator, with_job_types  # noqa: E402
from emulator.environments import ExecutionEnvironments  # noqa: E402
from emulator.sam import TEMPLATE_PATH, load_template, transform_template  # noqa: E402
from emulator.shim import Resolver  # noqa: E402
from emulator.stack import default_parameters  # noqa: E402

FUNCTION = "S3SubmitFunction"
JOB_TYPE_TEMPLATE = ROOT / "job-types" / "job-type.yaml"
REGISTRY_READ = "AmazonSSM.GetParametersByPath"
# CloudFormation quotas (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html)
MAX_RESOURCES = 500
MAX_PARAMETERS = 200
MAX_OUTPUTS = 200
MAX_TEMPLATE_S3_BYTES = 1_000_000  # a template in S3 (sam deploy uploads it there)
MAX_TEMPLATE_BODY_BYTES = 51_200  # a template passed inline as TemplateBody
SUFFIXES = (".csv", ".json", ".png", "")


# -- the catalog -------------------------------------------------------------------------------------


def documented_block() -> tuple[str, dict[str, Any]]:
    """The logical id and resource of the first ```yaml block of docs/job-types.md's "Add a job type"."""
    page = (ROOT / "docs" / "job-types.md").read_text(encoding="utf-8")
    section = page.split("## Add a job type", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    if block is None:
        raise SystemExit("docs/job-types.md has no yaml block under 'Add a job type'")
    ((logical_id, resource),) = yaml_parse(block.group(1)).items()
    return logical_id, resource


def route_of(index: int) -> tuple[str, str]:
    """Job type `index`'s (prefix, suffix): every routing rule appears, no two routes are the same."""
    if index % 10 == 5:
        return "", f".t{index:03d}"  # suffix only
    if index % 10 == 9:
        return f"in/{index - 1:03d}/deep/", ""  # nested in job type index-1's prefix: longest wins
    return f"in/{index:03d}/", SUFFIXES[index % len(SUFFIXES)]  # prefix (and a suffix, mostly)


def catalog(count: int) -> dict[str, dict[str, Any]]:
    """`count` job types: the documented block with its logical id, Name, route and schedule changed."""
    _, block = documented_block()
    job_types: dict[str, dict[str, Any]] = {}
    for index in range(count):
        resource = copy.deepcopy(block)
        parameters = resource["Properties"]["Parameters"]
        prefix, suffix = route_of(index)
        parameters.update(Name=f"type-{index:03d}", UploadPrefix=prefix, UploadSuffix=suffix)
        parameters.pop("SlackWebhookSecretName", None)  # the stack's channel (secrets are the user's)
        if index % 4 == 0:
            parameters["ScheduleExpression"] = f"cron({index % 60} {index % 24} * * ? *)"
        else:
            parameters.pop("ScheduleExpression", None)
        job_types[f"Type{index:03d}JobType"] = resource
    return job_types


def upload_key(index: int, job_types: int) -> tuple[str, str]:
    """Upload `index`'s key and the job type it is for (uploads go round the routes)."""
    job_type = index % job_types
    prefix, suffix = route_of(job_type)
    if job_type % 10 == 9 and job_type > 0:
        suffix = route_of(job_type - 1)[1]  # so the outer route fits the key too: the longer prefix wins
    name = f"upload {index:05d}+v" if index % 7 == 0 else f"upload-{index:05d}"  # some keys URL-encoded
    folder = "" if prefix else "misc/"
    return f"{prefix}{folder}{name}{suffix}", f"type-{job_type:03d}"


# -- the templates -----------------------------------------------------------------------------------


def packaged(sam_template: dict[str, Any]) -> dict[str, Any]:
    """The template as `sam package` leaves it: each local nested application's Location an S3 URL."""
    template = copy.deepcopy(sam_template)
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") == "AWS::Serverless::Application":
            resource["Properties"]["Location"] = f"https://s3.amazonaws.com/artifacts/{logical_id}.template"
    return template


def template_figures(template_path: Path) -> dict[str, Any]:
    submitted = packaged(load_template(template_path))
    transformed = transform_template(submitted, default_parameters(submitted))
    child = load_template(JOB_TYPE_TEMPLATE)
    return {
        "parent_resources": len(transformed["Resources"]),
        "parent_parameters": len(transformed.get("Parameters", {})),
        "parent_outputs": len(transformed.get("Outputs", {})),
        "parent_submitted_bytes": len(yaml_dump(submitted).encode("utf-8")),
        "parent_transformed_bytes": len(json.dumps(transformed, separators=(",", ":"))),
        "job_type_template_bytes": JOB_TYPE_TEMPLATE.stat().st_size,
        "job_type_declared_resources": len(child["Resources"]),
        "job_type_parameters": len(child.get("Parameters", {})),
        "job_type_outputs": len(child.get("Outputs", {})),
    }


def largest_nested_stack(local: Emulator) -> int:
    """Resources the biggest job-type stack created (its conditions evaluated by moto)."""
    sizes = [
        sum(1 for resource in nested.cfn_template["Resources"].values() if Resolver(nested).created(resource))
        for nested in local.stack.nested
    ]
    return max(sizes, default=0)


def catalog_check(job_types_file: Path) -> str:
    """What `make lint`'s catalog check says about the generated job types."""
    answer = subprocess.run(  # noqa: S603 - our own script, with our interpreter
        [sys.executable, str(ROOT / "scripts" / "check_job_types.py"), "--job-types", str(job_types_file)],
        capture_output=True,
        text=True,
        check=False,
    )
    return (answer.stdout + answer.stderr).strip().splitlines()[-1]


# -- the uploads -------------------------------------------------------------------------------------


def deliver_some_twice(local: Emulator, share: float, rng: random.Random) -> int:
    """Send again a copy of `share` of the notifications on the intake queue (as SQS may deliver
    twice), looking at the queue without consuming it."""
    sqs: Any = boto3.client("sqs")
    url = local.stack.queue_url("IntakeQueue")
    seen: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600).get(
        "Messages", []
    ):
        seen.extend(batch)
    uploads = [m for m in seen if "s3:TestEvent" not in m["Body"]]  # S3's test of the notification
    again = rng.sample(uploads, round(len(uploads) * share))
    for start in range(0, len(again), 10):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "MessageBody": m["Body"]} for i, m in enumerate(again[start : start + 10])
            ],
        )
    for message in seen:
        sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    return len(uploads) + len(again)


def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    workdir = tempfile.TemporaryDirectory(prefix="batch-dispatch-catalog-")
    log = open(args.log, "a", encoding="utf-8")  # noqa: SIM115 - closed below, after the emulator
    try:
        job_types_file = Path(workdir.name) / "job-types.yaml"
        job_types_file.write_text(
            json.dumps(catalog(args.job_types), indent=1), encoding="utf-8"
        )  # JSON is YAML
        figures: dict[str, Any] = {"catalog_check": catalog_check(job_types_file)}
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            started = time.monotonic()
            local = Emulator(job_types=job_types_file, with_slack=False).start()
            deploy_s = time.monotonic() - started
            try:  # the transform needs a region: the emulator's environment gives it one
                combined = with_job_types(TEMPLATE_PATH, job_types_file, Path(workdir.name))
                figures.update(template_figures(combined))
                figures.update(upload_figures(local, args, rng))
                figures["registered_job_types"] = len(local.job_type_entries())
                figures["nested_stacks"] = len(local.stack.nested)
                figures["largest_nested_stack_resources"] = largest_nested_stack(local)
            finally:
                local.stop()
    finally:
        log.close()
        workdir.cleanup()
    return {"job_types": args.job_types, "deploy_s": round(deploy_s, 1), **figures}


def upload_figures(local: Emulator, args: argparse.Namespace, rng: random.Random) -> dict[str, Any]:
    function = local.stack.functions[FUNCTION]
    function.environment["POWERTOOLS_LOG_LEVEL"] = args.log_level
    bucket = local.bucket()
    wanted = dict(upload_key(i, args.job_types) for i in range(args.uploads))
    s3: Any = boto3.client("s3")
    for key in wanted:
        s3.put_object(Bucket=bucket, Key=key, Body=b"data")  # S3 notifies the intake queue
    deliveries = deliver_some_twice(local, args.duplicate_rate, rng)

    source = local.runtime.event_source(FUNCTION)
    counts = local.server.request_counts
    reads_before, pages_before = counts.calls(REGISTRY_READ), counts.requests(REGISTRY_READ)
    with contextlib.ExitStack() as stack:
        environments = None
        if args.processes:  # spawned and warmed (cold, no registry read yet) before the clock starts
            environments = stack.enter_context(
                ExecutionEnvironments(local.stack, FUNCTION, source.max_concurrency, output_path=args.log)
            )
        started = time.monotonic()
        invocations = local.drain(
            FUNCTION,
            idle_timeout=args.timeout,
            environments=environments,
            retry_visibility_seconds=args.retry_visibility,
        )
        elapsed = time.monotonic() - started
    reads = counts.calls(REGISTRY_READ) - reads_before
    pages = counts.requests(REGISTRY_READ) - pages_before

    per_object, _ = local.jobs_per_object()
    job_types_run: dict[str, list[str]] = {}
    for job in local.jobs_submitted():
        key = job["parameters"].get("key")
        if key is not None:
            job_types_run.setdefault(key, []).append(job["job_type"])
    in_dlq = {key for b, key in objects_in_dlq(local) if b == bucket}
    runs = Counter({key: per_object.get((bucket, key), 0) for key in wanted})
    max_age = int(function.environment.get("JOB_TYPES_MAX_AGE_SECONDS") or args.default_max_age)
    environments_count = source.max_concurrency
    allowed = environments_count * (1 + math.floor(elapsed / max_age)) if max_age else None
    return {
        "uploads": args.uploads,
        "deliveries": deliveries,
        "routes_used": len(set(wanted.values())),
        "submitted_once": sum(1 for n in runs.values() if n == 1),
        "right_job_type": sum(1 for k, t in wanted.items() if job_types_run.get(k) == [t]),
        "wrong_job_type": sum(1 for k, t in wanted.items() if any(r != t for r in job_types_run.get(k, []))),
        "duplicates": sum(n - 1 for n in runs.values() if n > 1),
        "lost": sum(1 for k, n in runs.items() if n == 0 and k not in in_dlq),
        "in_dlq": len(in_dlq),
        "invocations": invocations,
        "drain_s": round(elapsed, 1),
        "execution_environments": "processes" if args.processes else "in-process (one shared cache)",
        "max_concurrency": environments_count,
        "job_types_max_age_s": max_age,
        "registry_reads": reads,
        "registry_pages": pages,
        "registry_reads_per_invocation": round(reads / invocations, 4) if invocations else None,
        "registry_reads_allowed": allowed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--job-types", type=int, default=100)
    parser.add_argument("--uploads", type=int, default=1000, help="uploads, spread across the routes")
    parser.add_argument("--duplicate-rate", type=float, default=0.1, help="share of notifications sent twice")
    parser.add_argument(
        "--processes",
        action="store_true",
        help="run each concurrent invocation in its own warm worker process (own registry cache)",
    )
    parser.add_argument(
        "--retry-visibility", type=int, default=1, help="seconds until a failed message comes back"
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="give up draining after this many s")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--log", default="/dev/null", help="where function logs and EMF metrics go")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args()
    args.default_max_age = 60  # settings.CatalogSettings' default, when the template sets none
    result = run(args)

    def of(value: int, limit: int) -> str:
        return f"{value} of {limit} ({value / limit:.0%})"

    rows = [
        (
            "job types (registered / nested stacks)",
            f"{result['registered_job_types']} / {result['nested_stacks']}",
        ),
        ("catalog check (make lint)", result["catalog_check"]),
        ("parent resources (after SAM transform)", of(result["parent_resources"], MAX_RESOURCES)),
        ("parent parameters", of(result["parent_parameters"], MAX_PARAMETERS)),
        ("parent outputs", of(result["parent_outputs"], MAX_OUTPUTS)),
        (
            "parent template bytes, as sam package writes it",
            of(result["parent_submitted_bytes"], MAX_TEMPLATE_S3_BYTES),
        ),
        ("parent template bytes, transformed", of(result["parent_transformed_bytes"], MAX_TEMPLATE_S3_BYTES)),
        ("  (TemplateBody limit, unused: sam deploy uses S3)", MAX_TEMPLATE_BODY_BYTES),
        ("job-type.yaml bytes", of(result["job_type_template_bytes"], MAX_TEMPLATE_BODY_BYTES)),
        (
            "job-type.yaml resources declared / parameters",
            f"{result['job_type_declared_resources']} / {result['job_type_parameters']}",
        ),
        (
            "largest nested stack, resources created",
            of(result["largest_nested_stack_resources"], MAX_RESOURCES),
        ),
        ("emulator deploy s", result["deploy_s"]),
        ("uploads (routes used)", f"{result['uploads']} ({result['routes_used']})"),
        ("deliveries (with duplicates)", result["deliveries"]),
        ("submitted once", result["submitted_once"]),
        ("to the right job type", result["right_job_type"]),
        ("to a wrong job type", result["wrong_job_type"]),
        ("duplicates", result["duplicates"]),
        ("lost", result["lost"]),
        ("in IntakeDLQ", result["in_dlq"]),
        ("S3SubmitFunction invocations", result["invocations"]),
        ("execution environments", result["execution_environments"]),
        ("drain s", result["drain_s"]),
        (
            "registry reads (GetParametersByPath pages)",
            f"{result['registry_reads']} ({result['registry_pages']})",
        ),
        ("registry reads per invocation", result["registry_reads_per_invocation"]),
        (
            f"reads allowed ({result['max_concurrency']} env. x max age {result['job_types_max_age_s']} s)",
            result["registry_reads_allowed"],
        ),
    ]
    print_report(rows, result)


if __name__ == "__main__":
    main()
