"""Cold start as a user sees it: init (import the handler) PLUS the first invocation, per function.

    .venv/bin/python bench/cold_start.py [--runs 9] [--costs]

Each sample is a fresh `python -I` process with what Lambda gives a function: its directory and
layers/common/python on sys.path, the environment template.yaml sets for it (Globals and its own
variables, references filled with stand-in names), LAMBDA_TASK_ROOT and fake credentials. It imports
`app`, then calls `app.lambda_handler` with a real sample event from events/. Every AWS call and the
Slack post are answered at once by a stub on loopback (DynamoDB, Batch, SQS, SSM, Secrets Manager, Logs, the
webhook, a click's response URL), so the figure is our code's cost, not the network's. The Rerun click
(events/slack/rerun-click.json) is signed again before each sample, with the stub's signing secret and
the current time (a signature older than 5 minutes is refused), its response URL pointing at the stub.

The baseline is what any Python function with the same AWS clients pays: `import boto3` and creating
the boto3 clients this function uses, in the same kind of process (the stub records the services each
function called: one its baseline does not create stops the run). Each function's sample runs back to
back with one of its baseline and one of the same-calls reference (the order rotates), and each ratio
is the median of the ratios within those triples, so machine noise hits both sides of a ratio alike.
Target: every handler's init + first invocation at most 1.15x its baseline.

The same-calls reference is the baseline plus the very AWS calls (same operations and parameters, same
order) and Slack posts the function's first invocation makes, made with bare boto3 and urllib (recorded
once from the function, untimed): what any function doing this work pays. So "same calls ratio" is the
cost of the work itself, and "to same calls" is our code's own cost on top of it.

`--costs` also prints what the optional pieces cost on top of boto3 (X-Ray SDK patching, pydantic,
slack_sdk, Powertools utilities). Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, NamedTuple
from urllib.parse import parse_qs, urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from report import print_report  # noqa: E402

LAYER = ROOT / "layers" / "common" / "python"
TARGET_RATIO = 1.15
WEBHOOK_PATH = "/services/T000/B000/bench"
RESPONSE_PATH = "/actions/T000/1/bench"
CLICK_EVENT = "events/slack/rerun-click.json"
SIGNING_SECRET = "bench-signing-secret"  # noqa: S105 - the stub's, signs the bench's own clicks
CLICKED_JOB_TYPE = "nightly-report"  # not in the stub's (empty) registry: the stack's allowed users apply

# logical id -> (function directory, sample event, the boto3 clients its first invocation uses). The stub
# checks the last list: a function that calls a service its baseline does not create fails the run.
FUNCTIONS: dict[str, tuple[str, str, list[str]]] = {
    "ScheduleSubmitFunction": (
        "functions/schedule_submit",
        "events/schedule/scheduler-tick.json",
        ["dynamodb", "batch"],
    ),
    "S3SubmitFunction": (
        "functions/s3_submit",
        "events/s3/sqs-object-created.json",
        # ssm: the job-type registry, read to route the upload; s3: the loop guard reads the object's lineage
        ["ssm", "s3", "dynamodb", "batch"],
    ),
    "FailureNotifyFunction": (
        "functions/failure_notify",
        "events/batch/job-failed-container.json",
        ["dynamodb", "sqs", "secretsmanager", "logs"],  # logs: the failed attempt's log tail
    ),
    "StormDigestFunction": (
        "functions/storm_digest",
        "events/storm/sqs-window-close.json",
        ["dynamodb", "sqs", "secretsmanager"],
    ),
    "SlackActionsFunction": (
        "functions/slack_actions",
        CLICK_EVENT,
        # the signing secret; the clicked job's type in the job-type registry (its own allowed users);
        # the idempotency record; the job and its rerun
        ["secretsmanager", "ssm", "dynamodb", "batch"],
    ),
    "WatchdogFunction": (
        "functions/watchdog",
        "events/watchdog/scheduler-tick.json",
        ["ssm", "batch", "dynamodb", "secretsmanager", "sqs"],  # secretsmanager: the webhook of its alert
    ),
}

# What Lambda passes a handler as its context (the parts our handlers read).
_CONTEXT = """
class Context:
    function_name = {name!r}
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + {name!r}
    aws_request_id = "00000000-0000-4000-8000-000000000001"
    def get_remaining_time_in_millis(self):
        return 60_000
"""

_FUNCTION_PROBE = """
import json, sys, time
sys.path[:0] = {paths!r}
cpu_started = time.process_time()
started = time.perf_counter()
import app
initialised = time.perf_counter()

{context}
with open({event!r}, encoding="utf-8") as f:
    event = json.load(f)
result = app.lambda_handler(event, Context())
done = time.perf_counter()
cpu = time.process_time() - cpu_started
print(json.dumps({{"init_ms": (initialised - started) * 1000, "total_ms": (done - started) * 1000,
                   "cpu_ms": cpu * 1000, "result": result}}, default=str))
"""

_BASELINE_PROBE = """
import json, time
cpu_started = time.process_time()
started = time.perf_counter()
import boto3
for service in {services!r}:
    boto3.client(service)
print(json.dumps({{"total_ms": (time.perf_counter() - started) * 1000,
                   "cpu_ms": (time.process_time() - cpu_started) * 1000}}))
"""

# The function's first invocation again, recording what it asked AWS (not timed): the same-calls reference
# below replays it.
_RECORD_PROBE = """
import json, sys
sys.path[:0] = {paths!r}
import app
import botocore.client

calls = []
make_api_call = botocore.client.BaseClient._make_api_call

def recorded(client, operation, params):
    calls.append((client.meta.service_model.service_name, operation, params))
    return make_api_call(client, operation, params)

botocore.client.BaseClient._make_api_call = recorded

{context}
with open({event!r}, encoding="utf-8") as f:
    app.lambda_handler(json.load(f), Context())
print(json.dumps(calls))
"""

# The same-calls reference: the baseline, then the very AWS calls (same operations, same parameters, in
# the same order) and Slack posts the function's first invocation made, with bare boto3 and urllib:
# what any function doing this work pays, so function / same calls is our code's own overhead.
_SAME_CALLS_PROBE = """
import json, time
cpu_started = time.process_time()
started = time.perf_counter()
import boto3
from botocore import xform_name
clients = {{service: boto3.client(service) for service in {services!r}}}
for service, operation, params in json.loads({calls!r}):
    getattr(clients[service], xform_name(operation))(**params)
posts = {posts!r}
if posts:
    import urllib.request
    for url, body, content_type in posts:
        request = urllib.request.Request(url, data=body, headers={{"Content-Type": content_type}})
        urllib.request.urlopen(request, timeout=5).read()
print(json.dumps({{"total_ms": (time.perf_counter() - started) * 1000,
                   "cpu_ms": (time.process_time() - cpu_started) * 1000}}))
"""

# What optional pieces cost on top of boto3 (for --costs): name -> code run after `import boto3`.
COSTS = {
    "X-Ray SDK, patched as Tracer does": "from aws_xray_sdk.core import patch_all; patch_all()",
    "pydantic (import + first model)": (
        "import pydantic\nclass M(pydantic.BaseModel):\n    a: int = 1\nM(a=2)"
    ),
    "slack_sdk WebhookClient": "from slack_sdk.webhook import WebhookClient",
    "slack_sdk SignatureVerifier": "from slack_sdk.signature import SignatureVerifier",
    "slack_sdk WebClient (user group lookups)": "from slack_sdk import WebClient",
    "Powertools Logger + Metrics": (
        "from aws_lambda_powertools import Logger, Metrics\nLogger(service='x')\nMetrics(namespace='x')"
    ),
    "Powertools idempotency": "import aws_lambda_powertools.utilities.idempotency",
    "Powertools batch": "import aws_lambda_powertools.utilities.batch",
    "Powertools parameters": "import aws_lambda_powertools.utilities.parameters",
    "Powertools Logger + Metrics + idempotency + parameters (what every handler imports)": (
        "from aws_lambda_powertools import Logger, Metrics\nLogger(service='x')\nMetrics(namespace='x')\n"
        "import aws_lambda_powertools.utilities.idempotency, aws_lambda_powertools.utilities.parameters"
    ),
}
_COST_PROBE = """
import json, time
import boto3
started = time.perf_counter()
{code}
print(json.dumps({{"total_ms": (time.perf_counter() - started) * 1000, "cpu_ms": 0}}))
"""


class StubAws(BaseHTTPRequestHandler):
    """Answers every call the functions make with a plausible success, at once."""

    webhook_url = ""
    signing_secret_name = ""
    stack_name = ""
    services_called: ClassVar[set[str]] = set()  # signing names since the last clear
    posts: ClassVar[list[tuple[str, bytes, str]]] = []  # Slack posts since the last clear: path, body, type
    protocol_version = "HTTP/1.1"  # keep connections open, as AWS endpoints do
    disable_nagle_algorithm = True  # headers and body go out at once (no delayed-ACK stall)

    def do_HEAD(self) -> None:
        """HeadObject: an object without metadata (the loop guard reads its lineage)."""
        self.services_called.add(signing_service(self.headers.get("Authorization", "")))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.send_header("Last-Modified", "Thu, 15 Jan 2026 10:30:00 GMT")
        self.end_headers()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        target = self.headers.get("X-Amz-Target", "")
        self.services_called.add(signing_service(self.headers.get("Authorization", "")))
        answer: Any = {}
        content_type = "application/x-amz-json-1.0"
        if self.path in (WEBHOOK_PATH, RESPONSE_PATH):
            self.posts.append((self.path, body, self.headers.get("Content-Type", "application/json")))
            self._reply(b"ok", "text/plain")
            return
        if target.endswith(".UpdateItem"):
            answer = {"Attributes": {"n": {"N": "1"}}}
        elif target.endswith(".Query"):
            answer = {"Items": [self._digested_job()], "Count": 1}
        elif target.endswith(".GetSecretValue"):
            signing = json.loads(body or b"{}").get("SecretId") == self.signing_secret_name
            answer = {
                "ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:bench-AbCdEf",
                "Name": "bench",
                "SecretString": SIGNING_SECRET if signing else self.webhook_url,
                "VersionId": "v1",
            }
        elif target.endswith(".GetLogEvents"):
            answer = {
                "events": [{"timestamp": 1, "message": f"line {n}", "ingestionTime": 1} for n in range(20)],
                "nextForwardToken": "f/1",
                "nextBackwardToken": "b/1",
            }
        elif target.endswith(".SendMessage"):
            sent = json.loads(body or b"{}").get("MessageBody", "")
            answer = {"MessageId": "m-1", "MD5OfMessageBody": hashlib.md5(sent.encode()).hexdigest()}  # noqa: S324
        elif self.path.endswith("/submitjob"):
            request = json.loads(body or b"{}")
            answer = {"jobId": "job-1", "jobName": request.get("jobName", "job"), "jobArn": "arn:job/job-1"}
            content_type = "application/json"
        elif self.path.endswith("/listjobs"):
            answer, content_type = {"jobSummaryList": []}, "application/json"
        elif self.path.endswith("/describejobs"):
            (job_id,) = json.loads(body or b"{}").get("jobs", ["job-1"])
            answer, content_type = {"jobs": [self._failed_job(job_id)]}, "application/json"
        self._reply(json.dumps(answer).encode(), content_type)

    @classmethod
    def _failed_job(cls, job_id: str) -> dict[str, Any]:
        """The clicked job as DescribeJobs describes it: a FAILED job of one of this stack's job types
        (not the default's), so the click reads the job-type registry for the type's allowed users."""
        detail = json.loads((ROOT / "events/batch/job-failed-container.json").read_text(encoding="utf-8"))[
            "detail"
        ]
        prefix = "arn:aws:batch:us-east-1:123456789012"
        return {
            **detail,
            "jobId": job_id,
            "jobDefinition": f"{prefix}:job-definition/{cls.stack_name}_{CLICKED_JOB_TYPE}:1",
            "jobQueue": f"{prefix}:job-queue/{cls.stack_name}-JobQueue",
        }

    @staticmethod
    def _digested_job() -> dict[str, Any]:
        return {
            "pk": {"S": "window#queue:q#1795435200000"},
            "sk": {"S": "job#job-7"},
            "job_name": {"S": "nightly"},
            "cause": {"S": "exit code 1"},
            "decision": {"S": "digest"},
        }

    def _reply(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


def signing_service(authorization: str) -> str:
    """The service a SigV4 request was signed for (`Credential=KEY/DATE/REGION/SERVICE/aws4_request`);
    "" for an unsigned request (the webhook, a click's response URL)."""
    scope = authorization.partition("Credential=")[2].split(",", 1)[0].split("/")
    return scope[3] if len(scope) == 5 else ""


def function_environments(endpoint: str) -> dict[str, dict[str, str]]:
    """Each function's environment as template.yaml sets it (default parameters): the template deployed
    into the local emulator, whose CloudFormation resolves every reference and condition."""
    from emulator.core import Emulator

    with Emulator(with_slack=False) as local:
        found = {name: dict(local.stack.functions[name].environment) for name in FUNCTIONS}
    for env in found.values():
        for name in ("STORM_QUEUE_URL", "SCHEDULE_DLQ_URL"):  # the stub answers any queue URL of its own
            if name in env:
                env[name] = f"{endpoint}/123456789012/" + env[name].rsplit("/", 1)[-1]
    # The sample upload lands in the intake bucket (routes of the default job type apply to it alone).
    found["S3SubmitFunction"]["INTAKE_BUCKET"] = sample_upload_bucket()
    # The click's user is allowed (RerunAllowedSlackUsers), so the sample reruns the job.
    found["SlackActionsFunction"]["ALLOWED_SLACK_USERS"] = clicking_user()
    StubAws.signing_secret_name = found["SlackActionsFunction"]["SLACK_SIGNING_SECRET_NAME"]
    StubAws.stack_name = found["SlackActionsFunction"]["JOB_NAME_PREFIX"]
    return found


def fresh_click(endpoint: str, directory: Path) -> Path:
    """events/slack/rerun-click.json signed now with the stub's signing secret, its response URL the
    stub's: the click as Slack would send it at this moment."""
    from emulator.slack_stub import slack_signature

    event = json.loads((ROOT / CLICK_EVENT).read_text(encoding="utf-8"))
    payload = json.loads(parse_qs(base64.b64decode(event["body"]).decode())["payload"][0])
    payload["response_url"] = endpoint + RESPONSE_PATH
    body = urlencode({"payload": json.dumps(payload, separators=(",", ":"))}).encode()
    now = int(time.time())
    event["body"] = base64.b64encode(body).decode()
    event["headers"] |= {
        "content-length": str(len(body)),
        "x-slack-request-timestamp": str(now),
        "x-slack-signature": slack_signature(SIGNING_SECRET, now, body),
    }
    path = directory / f"click-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(event), encoding="utf-8")
    return path


def sample_upload_bucket() -> str:
    event = json.loads((ROOT / FUNCTIONS["S3SubmitFunction"][1]).read_text(encoding="utf-8"))
    return str(json.loads(event["Records"][0]["body"])["Records"][0]["s3"]["bucket"]["name"])


def clicking_user() -> str:
    event = json.loads((ROOT / CLICK_EVENT).read_text(encoding="utf-8"))
    return str(json.loads(parse_qs(base64.b64decode(event["body"]).decode())["payload"][0])["user"]["id"])


def lambda_environment(function_name: str, extra: dict[str, str], endpoint: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "LAMBDA_TASK_ROOT": "/var/task",
        "_HANDLER": "app.lambda_handler",
        "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0",
        "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_ENDPOINT_URL": endpoint,
        **extra,
    }


def check_baseline_clients(name: str, called: set[str], baseline: set[str]) -> None:
    """The baseline must create the clients the function used, or the ratio compares unlike things."""
    if called != baseline:
        raise SystemExit(
            f"{name} called {sorted(called)} but its baseline creates {sorted(baseline)}: "
            "update FUNCTIONS in bench/cold_start.py"
        )


def run_probe(code: str, env: dict[str, str]) -> dict[str, Any]:
    completed = subprocess.run(  # noqa: S603 - our own interpreter, our own code
        [sys.executable, "-I", "-c", code], env=env, capture_output=True, text=True, check=False, cwd="/"
    )
    if completed.returncode != 0:
        raise SystemExit(f"probe failed:\n{completed.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


class FirstInvocation(NamedTuple):
    """What a function's first invocation asked of AWS and Slack, for the same-calls reference."""

    calls_json: str  # [[service, operation, parameters], ...] as boto3 was called
    posts: list[tuple[str, bytes, str]]  # url, body, content type


def record_first_invocation(
    name: str, environment: dict[str, str], endpoint: str, clicks: Path
) -> FirstInvocation:
    directory, event, _services = FUNCTIONS[name]
    event_path = fresh_click(endpoint, clicks) if event == CLICK_EVENT else ROOT / event
    code = _RECORD_PROBE.format(
        paths=[str(ROOT / directory), str(LAYER)], context=_CONTEXT.format(name=name), event=str(event_path)
    )
    StubAws.posts.clear()
    completed = subprocess.run(  # noqa: S603 - our own interpreter, our own code
        [sys.executable, "-I", "-c", code],
        env=lambda_environment(name, environment, endpoint),
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
    )
    if completed.returncode != 0:
        raise SystemExit(f"recording {name} failed:\n{completed.stderr[-3000:]}")
    posts = [(endpoint + path, body, content_type) for path, body, content_type in StubAws.posts]
    return FirstInvocation(calls_json=completed.stdout.strip().splitlines()[-1], posts=posts)


def sample(
    name: str,
    kind: str,
    environment: dict[str, str],
    endpoint: str,
    clicks: Path,
    results: dict[str, Any],
    first: FirstInvocation,
) -> dict[str, Any]:
    """One cold start of the function `name` (kind "function"), of its baseline (kind "baseline") or of
    the baseline making the function's first invocation's calls (kind "same calls")."""
    directory, event, services = FUNCTIONS[name]
    env = lambda_environment(name, environment, endpoint)
    if kind == "baseline":
        return run_probe(_BASELINE_PROBE.format(services=services), env)
    if kind == "same calls":
        code = _SAME_CALLS_PROBE.format(services=services, calls=first.calls_json, posts=first.posts)
        return run_probe(code, env)
    event_path = fresh_click(endpoint, clicks) if event == CLICK_EVENT else ROOT / event
    code = _FUNCTION_PROBE.format(
        paths=[str(ROOT / directory), str(LAYER)], context=_CONTEXT.format(name=name), event=str(event_path)
    )
    StubAws.services_called.clear()
    outcome = run_probe(code, env)
    results[name] = outcome["result"]
    check_baseline_clients(name, StubAws.services_called - {""}, set(services))
    return outcome


def main() -> None:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # the SAM transform needs a region
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--runs", type=int, default=9, help="samples per target (median reported)")
    parser.add_argument("--costs", action="store_true", help="also measure the optional pieces' cost")
    args = parser.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", 0), StubAws)
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    StubAws.webhook_url = endpoint + WEBHOOK_PATH
    threading.Thread(target=server.serve_forever, daemon=True).start()
    environments = function_environments(endpoint)

    clicks = Path(tempfile.mkdtemp(prefix="bench-clicks-"))
    first = {name: record_first_invocation(name, environments[name], endpoint, clicks) for name in FUNCTIONS}
    kinds = ("baseline", "same calls", "function")
    samples: dict[tuple[str, str], list[float]] = {(n, k): [] for n in FUNCTIONS for k in kinds}
    # (numerator, denominator) -> per function, the ratios of samples taken back to back, wall and CPU
    compared = (("function", "baseline"), ("same calls", "baseline"), ("function", "same calls"))
    ratios: dict[tuple[str, str, str, str], list[float]] = {
        (n, a, b, clock): [] for n in FUNCTIONS for a, b in compared for clock in ("total_ms", "cpu_ms")
    }
    results: dict[str, Any] = {}
    names = list(FUNCTIONS)
    for run in range(args.runs):
        shift = run % len(names)
        for name in names[shift:] + names[:shift]:
            # A function's sample and its references' run back to back (the order rotates), so all three
            # see the same moment of a noisy machine; each ratio is taken within one such triple.
            order = kinds[run % 3 :] + kinds[: run % 3]
            triple = {
                kind: sample(name, kind, environments[name], endpoint, clicks, results, first[name])
                for kind in order
            }
            samples[(name, "baseline")].append(triple["baseline"]["total_ms"])
            samples[(name, "same calls")].append(triple["same calls"]["total_ms"])
            samples[(name, "function")].append(triple["function"]["total_ms"])
            for (a, b), clock in ((pair, clock) for pair in compared for clock in ("total_ms", "cpu_ms")):
                ratios[(name, a, b, clock)].append(triple[a][clock] / triple[b][clock])
    server.shutdown()
    for path in clicks.iterdir():
        path.unlink()
    clicks.rmdir()

    def median_ratio(name: str, a: str, b: str, clock: str = "total_ms") -> float:
        return statistics.median(ratios[(name, a, b, clock)])

    figures: dict[str, dict[str, Any]] = {}
    rows: list[tuple[str, Any]] = [
        (
            "function",
            "baseline ms  same calls ms  init+first ms  ratio (CPU)  same calls ratio  to same calls",
        )
    ]
    for name in FUNCTIONS:
        baseline = statistics.median(samples[(name, "baseline")])
        same_calls = statistics.median(samples[(name, "same calls")])
        total = statistics.median(samples[(name, "function")])
        ratio, cpu_ratio = (
            median_ratio(name, "function", "baseline"),
            median_ratio(name, "function", "baseline", "cpu_ms"),
        )
        floor = median_ratio(name, "same calls", "baseline")
        over_floor = median_ratio(name, "function", "same calls")
        figures[name] = {
            "baseline_ms": round(baseline, 1),
            "same_calls_ms": round(same_calls, 1),
            "init_plus_first_ms": round(total, 1),
            "aws_calls": len(json.loads(first[name].calls_json)),
            "slack_posts": len(first[name].posts),
            "ratio": round(ratio, 3),
            "cpu_ratio": round(cpu_ratio, 3),
            "same_calls_ratio": round(floor, 3),
            "ratio_to_same_calls": round(over_floor, 3),
            "meets_target": ratio <= TARGET_RATIO,
            "first_result": results.get(name),
        }
        rows.append(
            (
                name,
                f"{baseline:>11.1f}  {same_calls:>13.1f}  {total:>13.1f}  {ratio:>5.2f} ({cpu_ratio:.2f})"
                f"  {floor:>16.2f}  {over_floor:>13.2f}",
            )
        )
    met = all(f["meets_target"] for f in figures.values())
    rows.append(("target", f"every handler <= {TARGET_RATIO}x its baseline: {'met' if met else 'NOT met'}"))
    costs: dict[str, float] = {}
    if args.costs:
        env = lambda_environment("costs", {}, endpoint)
        for label, code in COSTS.items():
            runs = [run_probe(_COST_PROBE.format(code=code), env)["total_ms"] for _ in range(args.runs)]
            costs[label] = round(statistics.median(runs), 1)
            rows.append((f"cost: {label}", f"+{costs[label]:.1f} ms"))
    print_report(
        rows,
        {
            "runs": args.runs,
            # The submit functions' baseline (import boto3 + Batch and DynamoDB clients); each function's
            # own baseline (its own clients) is in functions.<name>.baseline_ms.
            "baseline_ms": figures["ScheduleSubmitFunction"]["baseline_ms"],
            "functions": {
                name: {k: v for k, v in f.items() if k != "first_result"} for name, f in figures.items()
            },
            "target_ratio": TARGET_RATIO,
            "target_met": met,
            "costs_ms": costs,
        },
    )


if __name__ == "__main__":
    main()
