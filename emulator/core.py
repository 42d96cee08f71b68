"""The local batch-dispatch: template.yaml deployed into moto, handlers run in-process, Slack stood in."""

from __future__ import annotations

import json
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

from moto.events.models import EventPattern

from emulator import aws_clients
from emulator.exited_jobs import Exit, ExitedJobs
from emulator.handlers import Invocation
from emulator.job_objects import ObjectId, manifest_objects, objects_run
from emulator.moto_server import ACCOUNT_ID, REGION, MotoServer, failing_batch_jobs
from emulator.running_jobs import RunningJobs
from emulator.runtime import LambdaRuntime
from emulator.sam import TEMPLATE_PATH, read_template
from emulator.shim import Rule, Schedule, Shim
from emulator.slack_stub import APP_BOT_TOKEN, APP_SIGNING_SECRET
from emulator.stack import Stack, deploy, referenced_logical_id

_ASYNC_TRIGGERS = {"ScheduleV2", "Schedule", "EventBridgeRule", "CloudWatchEvent", "SNS", "S3"}
WEBHOOK_SECRET_ENV = "SLACK_WEBHOOK_SECRET_NAME"  # noqa: S105 - an env var name, not a secret
SIGNING_SECRET_ENV = "SLACK_SIGNING_SECRET_NAME"  # noqa: S105 - an env var name, not a secret
BOT_TOKEN_ENV = "SLACK_BOT_TOKEN_SECRET_NAME"  # noqa: S105 - an env var name, not a secret
SLACK_API_URL_PARAMETER = "SlackApiUrl"


def reset_process_state() -> None:
    """Forget the caches the shared package keeps per execution environment (a new 'cold start').

    Only a package already imported has caches; importing the package here, before the runtime puts
    the template's layer first on sys.path, could load another copy (an installed one) for the
    handlers. Once it is imported, its execution_environment module comes from that same copy.
    """
    if "batch_dispatch" not in sys.modules:
        return
    from batch_dispatch import execution_environment

    execution_environment.reset()


class Emulator:
    """Start with `with Emulator() as local:`; everything stays on loopback."""

    def __init__(
        self,
        parameter_overrides: dict[str, str] | None = None,
        *,
        with_slack: bool = True,
        slack: Any = None,
        template_path: Path = TEMPLATE_PATH,
        job_types: Path | None = None,
        outside_buckets: Sequence[str] = (),
    ) -> None:
        """`slack`: a Slack stand-in of the caller's (emulator.slack_stub.SlackStandInProcess, say),
        started here and stopped with the emulator, instead of a new SlackStandIn."""
        self.parameter_overrides = parameter_overrides or {}
        self.template_path = template_path
        self.job_types = job_types
        # Buckets "created outside the stack": made before each deploy, as their owner set them up.
        self.outside_buckets = tuple(outside_buckets)
        self._workdir = tempfile.TemporaryDirectory(prefix="batch-dispatch-emulator-")
        self.with_slack = with_slack or slack is not None
        self.server = MotoServer()
        self.slack: Any = slack
        self.stack: Stack
        self.shim: Shim
        self.nested_shims: list[Shim] = []
        self.runtime: LambdaRuntime
        self.webhook_secrets: dict[str, str] = {}  # stand-in URL path -> webhook secret name
        self._published: set[tuple[str, str]] = set()
        self.running_jobs = RunningJobs()  # jobs kept RUNNING (`jobs_keep_running`)
        self.exited_jobs = ExitedJobs()  # FAILED jobs' exit codes, reasons and log streams (`jobs_fail`)
        self.server.app.rewriters.extend((self.running_jobs, self.exited_jobs))
        self._outputs_written: set[str] = set()  # job ids whose stand-in wrote its output

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> Emulator:
        self.server.start()
        # moto's backends are process-wide: a stack left by an earlier Emulator in this process (another
        # test module) would make this deploy fail with "stack already exists".
        self.server.reset()
        if self.with_slack:
            if self.slack is None:
                from emulator.slack_stub import SlackStandIn

                self.slack = SlackStandIn()
            self.slack.start()
        self.deploy()
        return self

    def deploy(self, template_path: Path | None = None) -> None:
        """Deploy template.yaml (or `template_path`, whose code paths are relative to the repository),
        with the job types of `job_types` added to its resources, as a user adds them to template.yaml."""
        reset_process_state()
        for name in self.outside_buckets:
            create_outside_bucket(name)
        path = template_path or self.template_path
        if self.job_types is not None:
            path = with_job_types(path, self.job_types, Path(self._workdir.name))
        self.stack = deploy(self.slack_parameters(path) | self.parameter_overrides, template_path=path)
        self.shim = Shim(self.stack)
        self.nested_shims = [Shim(child, root=self.stack) for child in self.stack.nested]
        for shim in (self.shim, *self.nested_shims):
            shim.apply()
        self._store_webhook_secrets()
        self.runtime = LambdaRuntime(self.stack, self.shim.sqs_event_sources(), self.shim.redrive_policy)
        self._published.clear()
        self.exited_jobs.clear()
        self.running_jobs.clear()
        self._outputs_written.clear()

    def stop(self) -> None:
        if self.slack is not None:
            self.slack.stop()
        self.server.stop()
        self._workdir.cleanup()
        reset_process_state()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def slack_parameters(self, template_path: Path) -> dict[str, str]:
        """The Web API's base URL is the stand-in's (as a GovSlack user passes https://slack-gov.com/api/),
        unless the caller chose one."""
        declared = read_template(template_path).get("Parameters", {})
        if self.slack is None or SLACK_API_URL_PARAMETER not in declared:
            return {}
        return {SLACK_API_URL_PARAMETER: self.slack.api_url}

    def _store_webhook_secrets(self) -> None:
        """The webhook secrets a user creates by hand in AWS hold stand-in URLs here: the stack's (named
        in the functions' environment) and each job type's (named in its catalog entry), one URL path
        each, so every post says which secret's channel it went to."""
        self.webhook_secrets = {}
        if self.slack is None:
            return
        names = [
            f.environment[WEBHOOK_SECRET_ENV]
            for f in self.stack.functions.values()
            if WEBHOOK_SECRET_ENV in f.environment
        ]
        names += [entry.get("webhookSecretName", "") for entry in self.job_type_entries().values()]
        secrets = aws_clients.client("secretsmanager")
        base = self.slack.url.split("/services/", 1)[0]
        for index, name in enumerate(dict.fromkeys(n for n in names if n)):
            path = f"/services/T000/B{index:03d}/local"
            self.webhook_secrets[path] = name
            secrets.create_secret(Name=name, SecretString=base + path)
        # The Slack app's signing secret (the Rerun button's clicks) and bot token (the allowed user
        # groups' members), under the names the stack gives them.
        functions = self.stack.functions.values()
        for variable, value in ((SIGNING_SECRET_ENV, APP_SIGNING_SECRET), (BOT_TOKEN_ENV, APP_BOT_TOKEN)):
            for secret_name in {f.environment.get(variable, "") for f in functions} - {""}:
                secrets.create_secret(Name=secret_name, SecretString=value)

    def job_type_entries(self) -> dict[str, dict[str, Any]]:
        """The job catalog's registry as deployed: job type name -> its entry (JSON in SSM)."""
        path = self.stack.outputs.get("JobTypesPath")
        if not path:
            return {}
        ssm: Any = aws_clients.client("ssm")
        entries: dict[str, dict[str, Any]] = {}
        for page in ssm.get_paginator("get_parameters_by_path").paginate(Path=path):
            for parameter in page["Parameters"]:
                entries[parameter["Name"].rsplit("/", 1)[-1]] = json.loads(parameter["Value"])
        return entries

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
            source = referenced_logical_id(mapping.get("EventSourceArn")) or ""
            if referenced_logical_id(mapping.get("FunctionName")) == logical_id:
                from_queue = self.stack.resource_type(source) == "AWS::SQS::Queue"
                types.add("SQS" if from_queue else "EventSourceMapping")
        return types

    def invoke(self, logical_id: str, event: Any) -> Invocation:
        """Deliver `event` to the function with the semantics of its trigger in the template."""
        triggers = self.trigger_types(logical_id)
        if logical_id in self.runtime.event_sources:  # SQS, from the template's event source mappings
            return self.runtime.invoke_sqs_event(logical_id, event)
        if triggers & _ASYNC_TRIGGERS:
            return self.runtime.invoke_async(logical_id, event, self.shim.async_retry_attempts(logical_id))
        return self.runtime.invoke(logical_id, event)

    def click(self, message: dict[str, Any], action_id: str = "rerun", *, user_id: str) -> Invocation:
        """`user_id` clicks a button of `message` (as the Slack stand-in received it): the stand-in app
        signs the click as Slack does, and it goes to the stack's function URL."""
        event = self.slack.click(message, action_id, user_id=user_id, signing_secret=APP_SIGNING_SECRET)
        return self.deliver_to_function_url(event)

    def deliver_to_function_url(self, event: dict[str, Any]) -> Invocation:
        """What Lambda does with a request to the stack's function URL: invoke its function."""
        if not self.stack.function_urls:
            raise RuntimeError(
                "the stack has no function URL for Slack's clicks: deploy EnableRerunButton=true"
            )
        (function,) = self.stack.function_urls
        return self.invoke(function, event)

    def schedules(self) -> list[Schedule]:
        """The stack's schedules that submit jobs, then each job type's (not the watchdog's check)."""
        return [s for s in self.all_schedules() if s.job_type]

    def all_schedules(self) -> list[Schedule]:
        """Every schedule of the stack and of its job types."""
        return [schedule for shim in (self.shim, *self.nested_shims) for schedule in shim.schedules()]

    def rules(self) -> list[Rule]:
        """The enabled EventBridge rules of the stack and of its job types."""
        return [rule for shim in (self.shim, *self.nested_shims) for rule in shim.rules()]

    def schedule_of(self, job_type: str) -> Schedule:
        found = [s for s in self.schedules() if s.job_type == job_type]
        if not found:
            known = sorted({s.job_type for s in self.schedules()})
            raise KeyError(f"no schedule submits job type {job_type!r}; scheduled job types: {known}")
        return found[0]

    def tick(
        self, scheduled_time: str | None = None, schedule: Schedule | None = None, job_type: str | None = None
    ) -> Invocation | None:
        """Fire a schedule (the first, or `job_type`'s) as EventBridge Scheduler would (async invoke of
        its target).

        A schedule whose State is DISABLED does not fire: nothing is invoked and None is returned.
        """
        schedule = schedule or (self.schedule_of(job_type) if job_type else self.schedules()[0])
        when = scheduled_time or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if not schedule.enabled:
            print(f"[emulator] schedule {schedule.logical_id} is DISABLED: not fired", file=sys.stderr)
            return None
        if schedule.target_function is None:
            raise RuntimeError(f"schedule {schedule.logical_id} does not target a function of this stack")
        return self.invoke(schedule.target_function, schedule.input_for(when))

    def bucket(self, logical_id: str = "IntakeBucket") -> str:
        return self.stack.physical_ids[logical_id]

    def upload(self, key: str, body: bytes = b"data", bucket_logical_id: str = "IntakeBucket") -> None:
        aws_clients.client("s3").put_object(Bucket=self.bucket(bucket_logical_id), Key=key, Body=body)

    def upload_to(
        self, bucket: str, key: str, body: bytes = b"data", metadata: dict[str, str] | None = None
    ) -> None:
        """Put an object into any bucket by name (one outside the stack: its owner's EventBridge
        notifications take it from there, through moto's S3 and the stack's rule, to the queue)."""
        aws_clients.client("s3").put_object(Bucket=bucket, Key=key, Body=body, Metadata=metadata or {})

    def jobs_write_outputs(
        self, output_key: Callable[[str], str], *, with_lineage: bool = True, input_prefix: str = ""
    ) -> int:
        """A job stand-in: every upload job that ran (and has not written yet) whose input key starts
        with `input_prefix` writes its output object into its input's bucket at `output_key(input key)`,
        tagged with its BATCH_DISPATCH_LINEAGE as `x-amz-meta-batch-dispatch-lineage` when
        `with_lineage`, as the docs ask jobs to. moto's Batch runs no container, so the emulator writes
        what the container would. Returns the objects written.
        """
        written = 0
        for job in self.jobs_submitted():
            parameters = job["parameters"]
            if job["status"] not in {"SUCCEEDED", "FAILED"} or job["jobId"] in self._outputs_written:
                continue
            if "bucket" not in parameters or "key" not in parameters:
                continue
            if not parameters["key"].startswith(input_prefix):
                continue
            self._outputs_written.add(job["jobId"])
            environment = {e["name"]: e["value"] for e in job["containerOverrides"].get("environment", [])}
            lineage = environment.get("BATCH_DISPATCH_LINEAGE", "")
            metadata = {"batch-dispatch-lineage": lineage} if with_lineage and lineage else {}
            self.upload_to(parameters["bucket"], output_key(parameters["key"]), b"output", metadata)
            written += 1
        return written

    def drain(self, logical_id: str = "S3SubmitFunction", **kwargs: Any) -> int:
        return self.runtime.drain_queue(logical_id, **kwargs)

    @contextmanager
    def jobs_fail(
        self,
        exit_code: int = 1,
        reason: str = "Essential container in task exited",
        log_lines: Sequence[str] = (),
    ) -> Iterator[None]:
        """Jobs submitted inside this block FAIL, as if their container exited with `exit_code` after
        writing `log_lines` to its CloudWatch log stream.

        moto's no-Docker Batch fails them (MOTO_SIMPLE_BATCH_FAIL_AFTER) but has no container to
        report an exit code or write logs: the emulator notes the jobs that appeared in the block
        (ListJobs before and after), writes their lines to the log group and stream Batch would use,
        and the server describes them with that exit code, reason and stream (emulator/exited_jobs.py).
        """
        before = {job["jobId"] for job in self._job_summaries()}
        with failing_batch_jobs():
            yield
        for job in self._job_summaries():
            if job["jobId"] not in before:
                self.job_exited(job["jobId"], exit_code, reason, log_lines)

    def job_exited(self, job_id: str, exit_code: int, reason: str, log_lines: Sequence[str] = ()) -> None:
        """Show job `job_id`'s last attempt as exited with `exit_code` for `reason` (a FAILED job),
        having logged `log_lines`."""
        stream = self._write_job_log(job_id, log_lines) if log_lines else None
        self.exited_jobs.note(job_id, Exit(exit_code, reason, stream))

    def _write_job_log(self, job_id: str, lines: Sequence[str]) -> str:
        """Write `lines` where Batch's awslogs driver would: the job definition's group, and a stream
        `<stream prefix>/default/<task id>`."""
        batch: Any = aws_clients.client("batch")
        logs: Any = aws_clients.client("logs")
        (job,) = batch.describe_jobs(jobs=[job_id])["jobs"]
        (definition,) = batch.describe_job_definitions(jobDefinitions=[job["jobDefinition"]])[
            "jobDefinitions"
        ]
        options = definition.get("containerProperties", {}).get("logConfiguration", {}).get("options", {})
        group = options.get("awslogs-group") or self.stack.outputs["JobLogGroupName"]
        stream = f"{options.get('awslogs-stream-prefix', 'batch')}/default/{job_id.replace('-', '')}"
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        now = int(datetime.now(UTC).timestamp() * 1000)
        logs.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[{"timestamp": now + i, "message": line} for i, line in enumerate(lines)],
        )
        return stream

    @contextmanager
    def jobs_keep_running(self) -> Iterator[None]:
        """Jobs submitted inside this block stay RUNNING (started when submitted), as a long job would.

        moto's no-Docker Batch finishes every job when it is submitted; the emulator notes the ones
        submitted in the block (ListJobs before and after) and the server answers ListJobs and
        DescribeJobs as Batch would while they run (emulator/running_jobs.py).
        """
        before = {job["jobId"] for job in self._job_summaries()}
        yield
        batch: Any = aws_clients.client("batch")
        for queue in self.job_queue_arns():
            for page in batch.get_paginator("list_jobs").paginate(
                jobQueue=queue, filters=[{"name": "JOB_NAME", "values": ["*"]}]
            ):
                for summary in page.get("jobSummaryList", []):
                    if summary["jobId"] not in before:
                        self.running_jobs.hold(queue, summary)

    def scheduler_gives_up(
        self,
        scheduled_time: str,
        schedule: Schedule | None = None,
        error_code: str = "AWS.Lambda.TooManyRequestsException",
        error_message: str = "Rate Exceeded.",
    ) -> None:
        """EventBridge Scheduler could not invoke the schedule's target within its retry policy: the tick
        goes to the schedule's dead-letter queue, its Input as the body, with Scheduler's attributes."""
        schedule = schedule or self.schedules()[0]
        if schedule.dead_letter_queue is None or schedule.target_function is None:
            raise RuntimeError(f"schedule {schedule.logical_id} has no dead-letter queue or no target here")
        target = self.stack.functions[schedule.target_function].physical_name
        attributes = {
            "ERROR_CODE": error_code,
            "ERROR_MESSAGE": error_message,
            "EXECUTION_ID": uuid.uuid4().hex[:16],
            "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttempts",
            "IS_PAYLOAD_TRUNCATED": "false",
            "RETRY_ATTEMPTS": str(
                schedule.max_retry_attempts if schedule.max_retry_attempts is not None else 185
            ),
            "SCHEDULED_TIME": scheduled_time,
            "SCHEDULE_ARN": schedule.arn,
            "TARGET_ARN": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{target}",
        }
        aws_clients.client("sqs").send_message(
            QueueUrl=self.stack.queue_url(schedule.dead_letter_queue),
            MessageBody=json.dumps(schedule.input_for(scheduled_time)),
            MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
        )

    # -- Batch state changes -----------------------------------------------------------------------
    def batch_event(self, job: dict[str, Any]) -> dict[str, Any]:
        """A "Batch Job State Change" event for a described job, as EventBridge delivers it."""
        return aws_batch_event("Batch Job State Change", job, [job.get("jobArn", "")])

    def publish_batch_events(self) -> list[Invocation]:
        """Send a state-change event for every job that reached a new terminal state to matching rules.

        moto emits no Batch events, so the emulator builds them from DescribeJobs.
        """
        invocations: list[Invocation] = []
        rules = self.rules()
        for job in self.describe_jobs():
            marker = (job["jobId"], job["status"])
            if job["status"] not in {"SUCCEEDED", "FAILED"} or marker in self._published:
                continue
            self._published.add(marker)
            invocations.extend(self.publish_event(self.batch_event(job), rules))
        return invocations

    def submit_array_job(self, name: str, size: int) -> str:
        """Submit an array job of `size` children to our queue (inside `jobs_fail()` they all FAIL)."""
        batch = aws_clients.client("batch")
        return str(
            batch.submit_job(
                jobName=name,
                jobQueue=self.job_queue_arns()[0],
                jobDefinition=self.stack.outputs["JobDefinitionArn"],
                arrayProperties={"size": size},
            )["jobId"]
        )

    def publish_event(self, event: dict[str, Any], rules: list[Rule] | None = None) -> list[Invocation]:
        """Put one event on the default bus: every enabled rule of the template whose pattern matches
        delivers it to its target functions (invoked) and queues (the event is the message body, as
        EventBridge sends it; `drain` then runs the queue's function).

        moto's EventBridge does not implement TestEventPattern, so the pattern is matched with moto's
        own matcher (the one its PutEvents uses).
        """
        invocations: list[Invocation] = []
        sqs: Any = aws_clients.client("sqs")
        for rule in self.rules() if rules is None else rules:
            if EventPattern.load(json.dumps(rule.pattern)).matches_event(event):  # type: ignore[arg-type]
                invocations.extend(self.invoke(target, event) for target in rule.target_functions)
                for queue in rule.target_queues:
                    sqs.send_message(QueueUrl=self.stack.queue_url(queue), MessageBody=json.dumps(event))
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
        """Deliver the delayed messages of the function's queue now (fast-forward SQS DelaySeconds).

        Each message sent to the queue with a delay still running is sent again without one (the
        server noted it from the wire: emulator/moto_server.py `DelayedMessages`).
        """
        queue = self.runtime.event_source(function_logical_id).queue
        url = self.stack.queue_url(queue)
        sqs: Any = aws_clients.client("sqs")
        pending = self.server.delayed_messages.take_pending(url.rsplit("/", 1)[-1])
        for message in pending:
            sqs.send_message(QueueUrl=url, **message.send_parameters())
        return len(pending)

    def close_storm_windows(self, function_logical_id: str = "StormDigestFunction") -> int:
        """Let time pass until every open failure window closes: release the delayed closes, run them."""
        self.release_delayed(function_logical_id)
        return self.drain(function_logical_id)

    # -- observations ------------------------------------------------------------------------------
    def job_queue_arns(self) -> list[str]:
        return [self.stack.physical_ids[q] for q in self.stack.resources_of_type("AWS::Batch::JobQueue")]

    def _job_summaries(self) -> list[dict[str, Any]]:
        """ListJobs of our queues, every status (array children included, as moto lists them)."""
        batch: Any = aws_clients.client("batch")
        summaries: list[dict[str, Any]] = []
        for queue in self.job_queue_arns():
            for page in batch.get_paginator("list_jobs").paginate(
                jobQueue=queue, filters=[{"name": "JOB_NAME", "values": ["*"]}]
            ):
                summaries.extend(page.get("jobSummaryList", []))
        return summaries

    def describe_jobs(self) -> list[dict[str, Any]]:
        """Every job in our queues (array children included), described, oldest first."""
        batch: Any = aws_clients.client("batch")
        ids = [job["jobId"] for job in self._job_summaries()]
        jobs: list[dict[str, Any]] = []
        for start in range(0, len(ids), 100):
            jobs.extend(batch.describe_jobs(jobs=ids[start : start + 100])["jobs"])
        return sorted(jobs, key=lambda j: j.get("createdAt", 0))

    def jobs_submitted(self) -> list[dict[str, Any]]:
        """Every top-level job in our queues, in submission order, with what it was submitted with.

        DescribeJobs shows the job definition's parameter defaults and container merged with what the
        submit gave: the parameters and environment entries the job definition does not have (or has
        with another value) are the `parameters` and `containerOverrides` the job was submitted with.
        """
        batch: Any = aws_clients.client("batch")
        definitions: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
        jobs = []
        for job in self.describe_jobs():
            if ":" in job["jobId"]:  # array children carry <parent id>:<index>
                continue
            arn = job["jobDefinition"]
            if arn not in definitions:
                (definition,) = batch.describe_job_definitions(jobDefinitions=[arn])["jobDefinitions"]
                environment = definition.get("containerProperties", {}).get("environment", [])
                definitions[arn] = (
                    dict(definition.get("parameters") or {}),
                    {e["name"]: e["value"] for e in environment},
                )
            default_parameters, default_environment = definitions[arn]
            jobs.append(
                {
                    "jobName": job["jobName"],
                    "jobId": job["jobId"],
                    "jobQueue": job["jobQueue"],
                    "jobDefinition": arn,
                    "parameters": {
                        name: value
                        for name, value in (job.get("parameters") or {}).items()
                        if default_parameters.get(name) != value
                    },
                    "containerOverrides": _overrides(job, default_environment),
                    "status": job["status"],
                    "createdAt": job.get("createdAt"),
                    "arrayProperties": job.get("arrayProperties", {}),
                    "job_type": self.job_type_of(arn),
                }
            )
        return jobs

    def jobs_per_object(self) -> tuple[Counter[ObjectId], int]:
        """How many job runs each (bucket, key) got, and the number of SubmitJob calls that created jobs.

        An array job counts once per child that ran, each child being the object on its line of the
        manifest (emulator/job_objects.py).
        """
        s3: Any = aws_clients.client("s3")
        batch: Any = aws_clients.client("batch")
        jobs = self.jobs_submitted()

        def children_of(job_id: str) -> list[dict[str, Any]]:
            return [
                summary
                for page in batch.get_paginator("list_jobs").paginate(arrayJobId=job_id)
                for summary in page.get("jobSummaryList", [])
            ]

        def manifest_of(bucket: str, key: str) -> list[ObjectId]:
            return manifest_objects(s3.get_object(Bucket=bucket, Key=key)["Body"].read())

        return objects_run(jobs, children_of, manifest_of), len(jobs)

    def dlq_messages(self) -> dict[str, list[str]]:
        sqs: Any = aws_clients.client("sqs")
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

    def job_type_of(self, job_definition_arn: str) -> str:
        """The job type of a job definition: its name is `<stack>_<job type>`."""
        name = job_definition_arn.rsplit("/", 1)[-1].split(":", 1)[0]
        return name.removeprefix(f"{self.stack.name}_")

    def slack_messages(self) -> list[Any]:
        return list(self.slack.messages) if self.slack is not None else []

    def slack_posts(self) -> list[dict[str, Any]]:
        """Each accepted post with the name of the webhook secret whose URL it went to."""
        if self.slack is None:
            return []
        return [
            {**request.payload, "webhook_secret": self.webhook_secrets.get(request.path, "")}
            for request in self.slack.requests
            if request.status == 200 and isinstance(request.payload, dict)
        ]

    def report(self, invocations: list[tuple[str, Invocation]]) -> dict[str, Any]:
        return {
            "invocations": [{"event": name, **inv.as_dict()} for name, inv in invocations],
            "jobs_submitted": [
                {
                    k: j[k]
                    for k in (
                        "jobName",
                        "jobQueue",
                        "jobDefinition",
                        "parameters",
                        "containerOverrides",
                        "job_type",
                    )
                }
                for j in self.jobs_submitted()
            ],
            "slack_messages": self.slack_posts(),
            "dlq_messages": self.dlq_messages(),
            "schedules": [
                {
                    "job_type": schedule.job_type,
                    "expression": schedule.expression,
                    "state": "ENABLED" if schedule.enabled else "DISABLED",
                    "input": schedule.input_template,
                }
                for schedule in self.schedules()
            ],
        }


def create_outside_bucket(name: str) -> None:
    """A bucket its owner made outside the stack: versioned, and with EventBridge notifications turned
    on by the one call docs/intake.md gives the owner (it replaces the bucket's notifications)."""
    s3: Any = aws_clients.client("s3")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_notification_configuration(
        Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )


def with_job_types(template_path: Path, job_types: Path, directory: Path) -> Path:
    """A copy of the template, written into `directory`, with the resources of `job_types` (YAML:
    logical id -> nested application, as docs/job-types.md shows) added."""
    from emulator.sam import read_template

    template = read_template(template_path)
    added = read_template(job_types)
    clashes = sorted(set(added) & set(template.get("Resources", {})))
    if clashes:
        raise ValueError(f"{job_types} redefines resources of {template_path.name}: {clashes}")
    template.setdefault("Resources", {}).update(added)
    path = directory / "template.json"
    path.write_text(json.dumps(template), encoding="utf-8")  # JSON is YAML
    return path


def _overrides(job: dict[str, Any], definition_environment: dict[str, str]) -> dict[str, Any]:
    """The container environment a described job has beyond its job definition's."""
    environment: dict[str, str] = {}
    for entry in job.get("container", {}).get("environment", []):
        name, value = entry["name"], entry["value"]
        if name == "AWS_BATCH_JOB_ID" or definition_environment.get(name) == value:
            continue  # Batch's own, or the job definition's
        environment.setdefault(name, value)
    if not environment:
        return {}
    return {"environment": [{"name": k, "value": v} for k, v in environment.items()]}


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
