"""Shared test fixtures: loopback-only network, fake AWS credentials, event files, Lambda context, and
the emulator (template.yaml deployed into moto as released)."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from emulator.core import Emulator

REPO_ROOT = Path(__file__).resolve().parent.parent
EVENTS_DIR = REPO_ROOT / "events"
_LOOPBACK = ("127.", "localhost", "::1")


def _is_loopback(host: object) -> bool:
    return isinstance(host, str) and host.startswith(_LOOPBACK)


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never leave the machine: any connection or lookup beyond loopback fails loudly."""
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def connect(sock: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else address
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(host):
            raise ConnectionRefusedError(f"tests may only connect to loopback, not {address!r}")
        return real_connect(sock, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not _is_loopback(host):
            raise socket.gaierror(f"tests may only resolve loopback, not {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture(autouse=True)
def fake_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and a region, so no test can reach (or bill) a real account."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "batch-dispatch",
        "POWERTOOLS_METRICS_NAMESPACE": "BatchDispatch",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def load_event(relative_path: str) -> Any:
    """An event file from events/ (the same files `sam local invoke -e` uses)."""
    return json.loads((EVENTS_DIR / relative_path).read_text(encoding="utf-8"))


def emitted_metrics(stdout: str) -> Counter[str]:
    """The metrics a handler published, summed by name, read back from the EMF lines it printed."""
    counts: Counter[str] = Counter()
    for line in stdout.splitlines():
        try:
            blob = json.loads(line)
        except ValueError:
            continue
        if not isinstance(blob, dict) or "_aws" not in blob:
            continue
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                value = blob[metric["Name"]]
                counts[metric["Name"]] += int(sum(value) if isinstance(value, list) else value)
    return counts


@dataclass
class FakeLambdaContext:
    """A Lambda context whose time runs out `timeout_seconds` after it was made, or, with `remaining_ms`
    set, whose time left is whatever the test sets it to (a clock that moves only when told)."""

    function_name: str = "test-function"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    timeout_seconds: float = 30.0
    remaining_ms: int | None = None
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        if self.remaining_ms is not None:
            return self.remaining_ms
        return max(0, int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000))


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


class AtomicClient:
    """A boto3 client whose requests are each atomic, as DynamoDB's are: in-process moto is not thread-safe
    (it checks a write's condition and stores the item in two steps another thread can come between; a
    transaction can be seen half-applied). The emulator's server serialises requests the same way.
    Attributes that are not calls (meta, exceptions) are the client's."""

    lock = threading.Lock()  # one for the process, as moto's in-process backends are

    def __init__(self, client: Any) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.client, name)
        if not callable(attribute):
            return attribute

        def atomically(*args: Any, **kwargs: Any) -> Any:
            with self.lock:
                return attribute(*args, **kwargs)

        return atomically


@dataclass
class MotoBatch:
    """A job queue, job definition and idempotency table in moto, wired into batch_dispatch."""

    job_queue_arn: str
    job_definition_arn: str
    table_name: str

    def jobs(self) -> list[dict[str, Any]]:
        """Every job in the queue, any status, fully described."""
        import boto3

        batch = boto3.client("batch")
        summaries = batch.list_jobs(
            jobQueue=self.job_queue_arn, filters=[{"name": "JOB_NAME", "values": ["*"]}]
        )["jobSummaryList"]
        if not summaries:
            return []
        return list(batch.describe_jobs(jobs=[s["jobId"] for s in summaries])["jobs"])


def create_id_table(name: str) -> None:
    """A DynamoDB table keyed by `id`, as the template's idempotency table is (in the current moto)."""
    import boto3

    boto3.client("dynamodb").create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )


def create_alert_state_table(name: str) -> None:
    """A DynamoDB table keyed by `pk` + `sk`, as the template's AlertStateTable is (in the current moto)."""
    import boto3

    boto3.client("dynamodb").create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
    )


def register_job_definition(name: str, vcpu: str = "0.25", memory: str = "512") -> str:
    """A Fargate job definition echoing its `key` parameter (in the current moto); returns its ARN."""
    import boto3

    return str(
        boto3.client("batch").register_job_definition(
            jobDefinitionName=name,
            type="container",
            platformCapabilities=["FARGATE"],
            retryStrategy={"attempts": 1},
            containerProperties={
                "image": "public.ecr.aws/docker/library/busybox:1.37.0",
                "command": ["echo", "Ref::key"],
                "resourceRequirements": [
                    {"type": "VCPU", "value": vcpu},
                    {"type": "MEMORY", "value": memory},
                ],
            },
        )["jobDefinitionArn"]
    )


@pytest.fixture
def moto_batch(monkeypatch: pytest.MonkeyPatch) -> Any:
    """In-process moto (no Docker, no server) with Batch + DynamoDB ready for the submit paths."""
    import boto3
    from moto import mock_aws

    from batch_dispatch import execution_environment

    with mock_aws(config={"batch": {"use_docker": False}}):
        iam = boto3.client("iam")
        role = iam.create_role(
            RoleName="AWSServiceRoleForBatch",
            Path="/aws-service-role/batch.amazonaws.com/",
            AssumeRolePolicyDocument="{}",
        )["Role"]["Arn"]
        ec2 = boto3.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
        group = ec2.create_security_group(GroupName="jobs", Description="jobs", VpcId=vpc)["GroupId"]
        batch = boto3.client("batch")
        environment = batch.create_compute_environment(
            computeEnvironmentName="jobs-ce",
            type="MANAGED",
            state="ENABLED",
            serviceRole=role,
            computeResources={
                "type": "FARGATE",
                "maxvCpus": 4,
                "subnets": [subnet],
                "securityGroupIds": [group],
            },
        )["computeEnvironmentArn"]
        queue = batch.create_job_queue(
            jobQueueName="jobs-queue",
            state="ENABLED",
            priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment}],
        )["jobQueueArn"]
        definition = register_job_definition("job")
        create_id_table("idempotency")
        monkeypatch.setenv("JOB_QUEUE_ARN", queue)
        monkeypatch.setenv("JOB_DEFINITION_ARN", definition)
        monkeypatch.setenv("IDEMPOTENCY_TABLE_NAME", "idempotency")
        monkeypatch.setenv("JOB_NAME_PREFIX", "batch-dispatch-test")
        execution_environment.reset()
        yield MotoBatch(job_queue_arn=queue, job_definition_arn=definition, table_name="idempotency")
        execution_environment.reset()


# --- the emulator: one moto server per test module, a freshly deployed stack per test ----------------


@pytest.fixture(scope="module")
def emulator_parameters() -> dict[str, str]:
    """Template parameters of the module's stack; a test module overrides this fixture to set some."""
    return {}


def job_type_block(logical_id: str, name: str, command: str = "echo,Ref::key", **parameters: str) -> str:
    """One job type, as a team adds it under Resources (docs/job-types.md, "Add a job type"), with
    `parameters` (UploadPrefix, ScheduleExpression, ...) besides the ones every job type names."""
    more = "".join(f'\n      {parameter}: "{value}"' for parameter, value in parameters.items())
    return f"""
{logical_id}:
  Type: AWS::Serverless::Application
  Properties:
    Location: job-types/job-type.yaml
    Parameters:
      Platform: !GetAtt JobTypePlatform.Value
      ComputeType: !Ref ComputeType
      Name: {name}
      Image: public.ecr.aws/docker/library/busybox:1.37.0
      Command: "{command}"{more}
"""


def job_types_file(tmp_path_factory: pytest.TempPathFactory, text: str) -> Path:
    """`text` (job types as YAML) in a file of the test session's, for the emulator_job_types fixture."""
    path = tmp_path_factory.mktemp("job-types") / "job-types.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def emulator_job_types() -> Path | None:
    """Job types added to template.yaml (a YAML of nested applications); a test module may set some."""
    return None


@pytest.fixture(scope="module")
def emulator_outside_buckets() -> tuple[str, ...]:
    """Buckets created outside the stack before each deploy (their owner's); a test module may set some."""
    return ()


@pytest.fixture(scope="module")
def module_emulator(
    emulator_parameters: dict[str, str],
    emulator_job_types: Path | None,
    emulator_outside_buckets: tuple[str, ...],
) -> Iterator[Emulator]:
    """The test module's emulator: one moto server, started once. Tests take `local` (a fresh account
    with template.yaml deployed); a test that deploys in its own steps may take this one."""
    from bench.moto_speedups import installed_speedups
    from emulator.core import Emulator

    # The suite runs on moto as users get it: nothing may have left the benchmark's speedups installed.
    assert installed_speedups() == [], "moto is patched; tests must run on moto as released"
    # The module-scoped fixture runs outside the per-test loopback guard; moto only binds 127.0.0.1.
    with Emulator(
        emulator_parameters, job_types=emulator_job_types, outside_buckets=emulator_outside_buckets
    ) as local:
        yield local


def fresh_account(emulator: Emulator) -> Emulator:
    """Drop every resource in the emulator's moto server and every message its Slack stand-in got."""
    emulator.server.reset()
    if emulator.slack is not None:
        emulator.slack.reset()
    return emulator


@pytest.fixture
def local(module_emulator: Emulator) -> Emulator:
    """A fresh account with template.yaml deployed into it (about a second)."""
    fresh_account(module_emulator).deploy()
    return module_emulator


@pytest.fixture
def deploy_edited_template(
    module_emulator: Emulator, tmp_path: Path
) -> Callable[[Callable[[dict[str, Any]], None]], Emulator]:
    """`deploy_edited_template(edit)`: a fresh account with a copy of template.yaml, changed by
    `edit(template)`, deployed into it. The copy lives in a temporary directory; its code paths still
    resolve from the repository."""
    from emulator.sam import load_template

    def deploy(edit: Callable[[dict[str, Any]], None]) -> Emulator:
        template = load_template()
        edit(template)
        path = tmp_path / "template.yaml"
        path.write_text(json.dumps(template), encoding="utf-8")  # JSON is YAML
        fresh_account(module_emulator).deploy(path)
        return module_emulator

    return deploy


def set_batch_status(job_id: str, status: str) -> None:
    """Set a job's status in moto's Batch (in this process, the emulator's moto server included). Its
    no-Docker backend ends every job, and every child of an array job, alike and at once; a real array
    job's children each end their own way, and a job may still be running. This sets the state on moto's
    job model (no moto code is changed): no API of moto's can."""
    from moto.batch.models import batch_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    batch_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].get_job_by_id(job_id).status = status
