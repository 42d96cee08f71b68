"""The local batch-dispatch: template.yaml deployed into moto, handlers run in-process, Slack stood in."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

import boto3
from moto.batch.models import batch_backends
from moto.events.models import EventPattern

from emulator import moto_patches
from emulator.moto_server import ACCOUNT_ID, REGION, MotoServer, failing_batch_jobs
from emulator.runtime import Invocation, LambdaRuntime
from emulator.shim import Schedule, Shim
from emulator.stack import Stack, _referenced_logical_id, deploy

_ASYNC_TRIGGERS = {"ScheduleV2", "Schedule", "EventBridgeRule", "CloudWatchEvent", "SNS", "S3"}
WEBHOOK_SECRET_ENV = "SLACK_WEBHOOK_SECRET_NAME"  # noqa: S105 - an env var name, not a secret


def reset_process_state() -> None:
    """Forget the caches the shared package keeps per execution environment (a new 'cold start')."""
    try:
        from batch_dispatch import execution_environment
    except ImportError:  # the layer is not on sys.path yet: nothing cached
        return
    execution_environment.reset()


class Emulator:
    """Start with `with Emulator() as local:`; everything stays on loopback."""

    def __init__(
        self,
        parameter_overrides: dict[str, str] | None = None,
        *,
        with_slack: bool = True,
        patch_moto: bool = True,
    ) -> None:
        self.parameter_overrides = parameter_overrides or {}
        self.patch_moto = patch_moto
        self.with_slack = with_slack
        self.server = MotoServer()
        self.slack: Any = None
        self.stack: Stack
        self.shim: Shim
        self.runtime: LambdaRuntime
        self._published: set[tuple[str, str]] = set()

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> Emulator:
        if self.patch_moto:  # moto's deep-queue and transaction costs and races (emulator/moto_patches.py)
            moto_patches.apply()
        self.server.start()
        # moto's backends are process-wide: a stack left by an earlier Emulator in this process (another
        # test module) would make this deploy fail with "stack already exists".
        self.server.reset()
        if self.with_slack:
            from emulator.slack_stub import SlackStandIn

            self.slack = SlackStandIn()
            self.slack.start()
        self.deploy()
        return self

    def deploy(self) -> None:
        reset_process_state()
        self.stack = deploy(self.parameter_overrides)
        self.shim = Shim(self.stack)
        self.shim.apply()
        self._store_webhook_secret()
        self.runtime = LambdaRuntime(self.stack)
        self._published.clear()

    def stop(self) -> None:
        if self.slack is not None:
            self.slack.stop()
        self.server.stop()
        reset_process_state()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _store_webhook_secret(self) -> None:
        """The webhook secret a user creates by hand in AWS holds the stand-in's URL here."""
        if self.slack is None:
            return
        names = {
            f.environment[WEBHOOK_SECRET_ENV]
            for f in self.stack.functions.values()
            if WEBHOOK_SECRET_ENV in f.environment
        }
        secrets = boto3.client("secretsmanager")
        for name in names:
            secrets.create_secret(Name=name, SecretString=self.slack.url)

    def update_function_environment(self, logical_id: str, **variables: str) -> None:
        """Change a function's environment variables, as UpdateFunctionConfiguration does: later
        invocations run in new execution environments (a cold start that reads the new values)."""
        self.stack.functions[logical_id].environment.update(variables)
        reset_process_state()

    # -- triggers ----------------------------------------------------------------------------------
    def trigger_types(self, logical_id: str) -> set[str]:
        types = {str(t.get("Type")) for t in self.stack.functions[logical_id].triggers.values()}
        # A function may read a queue through an AWS::Lambda::EventSourceMapping of its own, not a SAM event.
        for mapping in self.stack.event_source_mappings:
            source = _referenced_logical_id(mapping.get("EventSourceArn")) or ""
            if _referenced_logical_id(mapping.get("FunctionName")) == logical_id:
                from_queue = self.stack.resource_type(source) == "AWS::SQS::Queue"
                types.add("SQS" if from_queue else "EventSourceMapping")
        return types

    def invoke(self, logical_id: str, event: Any) -> Invocation:
        """Deliver `event` to the function with the semantics of its trigger in the template."""
        triggers = self.trigger_types(logical_id)
        if "SQS" in triggers:
            return self.runtime.invoke_sqs_event(logical_id, event)
        if triggers & _ASYNC_TRIGGERS:
            return self.runtime.invoke_async(logical_id, event, self.shim.async_retry_attempts(logical_id))
        return self.runtime.invoke(logical_id, event)

    def schedules(self) -> list[Schedule]:
        return self.shim.schedules()

    def tick(self, scheduled_time: str | None = None, schedule: Schedule | None = None) -> Invocation:
        """Fire a schedule as EventBridge Scheduler would (async invoke of its target)."""
        schedule = schedule or self.schedules()[0]
        when = scheduled_time or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if schedule.target_function is None:
            raise RuntimeError(f"schedule {schedule.logical_id} does not target a function of this stack")
        return self.invoke(schedule.target_function, schedule.input_for(when))

    def bucket(self, logical_id: str = "IntakeBucket") -> str:
        return self.stack.physical_ids[logical_id]

    def upload(self, key: str, body: bytes = b"data", bucket_logical_id: str = "IntakeBucket") -> None:
        boto3.client("s3").put_object(Bucket=self.bucket(bucket_logical_id), Key=key, Body=body)

    def drain(self, logical_id: str = "S3SubmitFunction", **kwargs: Any) -> int:
        return self.runtime.drain_queue(logical_id, **kwargs)

    @contextmanager
    def jobs_fail(
        self, exit_code: int = 1, reason: str = "Essential container in task exited"
    ) -> Iterator[None]:
        """Jobs submitted inside this block FAIL, as if their container exited with `exit_code`.

        moto's no-Docker Batch has no container to produce an exit code, so the emulator writes
        the one a real container would have reported onto each attempt.
        """
        backend = batch_backends[ACCOUNT_ID][REGION]
        before = set(backend._jobs)
        with failing_batch_jobs():
            yield
        for job_id in set(backend._jobs) - before:
            job = backend._jobs[job_id]
            job.job_stopped_reason = reason
            for attempt in job.attempts:
                attempt.setdefault("container", {}).update(exitCode=exit_code, reason=reason)
                attempt["statusReason"] = reason

    # -- Batch state changes -----------------------------------------------------------------------
    def batch_event(self, job: dict[str, Any]) -> dict[str, Any]:
        """A "Batch Job State Change" event for a described job, as EventBridge delivers it."""
        return aws_batch_event("Batch Job State Change", job, [job.get("jobArn", "")])

    def publish_batch_events(self) -> list[Invocation]:
        """Send a state-change event for every job that reached a new terminal state to matching rules.

        moto emits no Batch events, so the emulator builds them from DescribeJobs.
        """
        invocations: list[Invocation] = []
        rules = self.shim.rules()
        for job in self.describe_jobs():
            marker = (job["jobId"], job["status"])
            if job["status"] not in {"SUCCEEDED", "FAILED"} or marker in self._published:
                continue
            self._published.add(marker)
            event = self.batch_event(job)
            for rule in rules:
                if EventPattern.load(json.dumps(rule.pattern)).matches_event(event):  # type: ignore[arg-type]
                    invocations.extend(self.invoke(target, event) for target in rule.target_functions)
        return invocations

    def submit_array_job(self, name: str, size: int) -> str:
        """Submit an array job of `size` children to our queue (inside `jobs_fail()` they all FAIL)."""
        batch = boto3.client("batch")
        return str(
            batch.submit_job(
                jobName=name,
                jobQueue=self.job_queue_arns()[0],
                jobDefinition=self.stack.outputs["JobDefinitionArn"],
                arrayProperties={"size": size},
            )["jobId"]
        )

    def publish_event(self, event: dict[str, Any]) -> list[Invocation]:
        """Put one event on the default bus: every rule of the template whose pattern matches delivers it."""
        invocations: list[Invocation] = []
        for rule in self.shim.rules():
            if EventPattern.load(json.dumps(rule.pattern)).matches_event(event):  # type: ignore[arg-type]
                invocations.extend(self.invoke(target, event) for target in rule.target_functions)
        return invocations

    def queue_blocked_event(
        self, status_reason: str, job: dict[str, Any] | None = None, queue_arn: str | None = None
    ) -> dict[str, Any]:
        """A "Batch Job Queue Blocked" event in the documented format, for `job` (or a made-up one)."""
        queue = queue_arn or self.job_queue_arns()[0]
        detail = {
            "jobArn": f"arn:aws:batch:{REGION}:{ACCOUNT_ID}:job/{uuid.uuid4()}",
            "jobName": "stuck-job",
            "jobId": str(uuid.uuid4()),
            "createdAt": int(datetime.now(UTC).timestamp() * 1000),
            "attempts": [],
            "dependsOn": [],
            "parameters": {},
            **(job or {}),
            "jobQueue": queue,
            "status": "RUNNABLE",
            "statusReason": status_reason,
        }
        detail["jobArn"] = f"arn:aws:batch:{REGION}:{ACCOUNT_ID}:job/{detail['jobId']}"
        return aws_batch_event("Batch Job Queue Blocked", detail, [detail["jobArn"], queue])

    def publish_queue_blocked(
        self, status_reason: str, job: dict[str, Any] | None = None
    ) -> list[Invocation]:
        """Batch detected a RUNNABLE job blocking our queue (moto never does): deliver the event."""
        return self.publish_event(self.queue_blocked_event(status_reason, job))

    def release_delayed(self, function_logical_id: str) -> int:
        """Make the delayed messages of the function's queue visible now (fast-forward SQS DelaySeconds)."""
        from moto.sqs.models import sqs_backends

        queue_id = self.runtime.mapping_for(function_logical_id).get("EventSourceArn")
        logical_id = _referenced_logical_id(queue_id)
        if logical_id is None:
            raise KeyError(f"cannot resolve the queue of {function_logical_id}")
        name = self.stack.queue_url(logical_id).rsplit("/", 1)[-1]
        queue = sqs_backends[ACCOUNT_ID][REGION].queues[name]
        released = 0
        for message in list(queue._messages):
            if message.delayed:
                message.delayed_until = 0
                released += 1
        return released

    def close_storm_windows(self, function_logical_id: str = "StormDigestFunction") -> int:
        """Let time pass until every open failure window closes: release the delayed closes, run them."""
        self.release_delayed(function_logical_id)
        return self.drain(function_logical_id)

    # -- observations ------------------------------------------------------------------------------
    def job_queue_arns(self) -> list[str]:
        return [self.stack.physical_ids[q] for q in self.stack.resources_of_type("AWS::Batch::JobQueue")]

    def describe_jobs(self) -> list[dict[str, Any]]:
        batch = boto3.client("batch")
        ids: list[str] = []
        for queue in self.job_queue_arns():
            summaries = batch.list_jobs(jobQueue=queue, filters=[{"name": "JOB_NAME", "values": ["*"]}])
            ids.extend(s["jobId"] for s in summaries.get("jobSummaryList", []))
        jobs: list[dict[str, Any]] = []
        for start in range(0, len(ids), 100):
            jobs.extend(batch.describe_jobs(jobs=ids[start : start + 100])["jobs"])
        return sorted(jobs, key=lambda j: j.get("createdAt", 0))

    def jobs_submitted(self) -> list[dict[str, Any]]:
        """Every top-level job in our queues, in submission order, with what it was submitted with."""
        backend = batch_backends[ACCOUNT_ID][REGION]
        queues = set(self.job_queue_arns())
        jobs = []
        for job in list(backend._jobs.values()):
            if job.job_queue.arn not in queues or ":" in job.job_id:  # array children carry id:index
                continue
            jobs.append(
                {
                    "jobName": job.job_name,
                    "jobId": job.job_id,
                    "jobQueue": job.job_queue.arn,
                    "jobDefinition": job.job_definition.arn,
                    "parameters": dict(job.parameters or {}),
                    "containerOverrides": dict(job.container_overrides or {}),
                    "status": getattr(job.status, "value", str(job.status)),
                    "createdAt": job.job_created_at.isoformat() if job.job_created_at else None,
                }
            )
        return sorted(jobs, key=lambda j: j["createdAt"] or "")

    def jobs_per_object(self) -> tuple[Counter[tuple[str, str]], int]:
        """How many jobs each (bucket, key) got, and the number of SubmitJob calls that created them.

        An array job counts once per child, each child being the object on its line of the manifest.
        """
        s3: Any = boto3.client("s3")
        per_object: Counter[tuple[str, str]] = Counter()
        jobs = self.jobs_submitted()
        for job in jobs:
            params = job["parameters"]
            # moto fills parameters the job left out with the job definition's defaults ("none")
            if params.get("manifestKey", "none") != "none":
                body = s3.get_object(Bucket=params["manifestBucket"], Key=params["manifestKey"])[
                    "Body"
                ].read()
                for line in body.decode("utf-8").splitlines():
                    entry = json.loads(line)
                    per_object[(entry["bucket"], entry["key"])] += 1
            elif params.get("key", "none") != "none":
                per_object[(params["bucket"], params["key"])] += 1
        return per_object, len(jobs)

    def dlq_messages(self) -> dict[str, list[str]]:
        sqs: Any = boto3.client("sqs")
        found: dict[str, list[str]] = {}
        for logical_id in self.stack.dead_letter_queues():
            url = self.stack.queue_url(logical_id)
            seen: list[dict[str, Any]] = []
            while batch := sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600
            ).get("Messages", []):
                seen.extend(batch)
            for message in seen:  # looking is not consuming: make them visible again
                sqs.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
            found[logical_id] = [m["Body"] for m in seen]
        return found

    def slack_messages(self) -> list[Any]:
        return list(self.slack.messages) if self.slack is not None else []

    def report(self, invocations: list[tuple[str, Invocation]]) -> dict[str, Any]:
        return {
            "invocations": [{"event": name, **inv.as_dict()} for name, inv in invocations],
            "jobs_submitted": [
                {
                    k: j[k]
                    for k in ("jobName", "jobQueue", "jobDefinition", "parameters", "containerOverrides")
                }
                for j in self.jobs_submitted()
            ],
            "slack_messages": self.slack_messages(),
            "dlq_messages": self.dlq_messages(),
        }


def aws_batch_event(detail_type: str, detail: dict[str, Any], resources: list[str]) -> dict[str, Any]:
    """An event from source aws.batch as EventBridge delivers it on the default bus."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "aws.batch",
        "account": ACCOUNT_ID,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": resources,
        "detail": detail,
    }


def s3_notification(bucket: str, key: str, index: int) -> str:
    """An S3 ObjectCreated:Put notification as S3 sends it to SQS (key URL-encoded)."""
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-01-15T10:30:00.000Z",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {
                "key": quote_plus(key, safe="/"),
                "size": 1024 + index,
                "eTag": uuid.uuid4().hex,
                "versionId": uuid.uuid4().hex,
                "sequencer": f"{index:016X}",
            },
        },
    }
    return json.dumps({"Records": [record]})
