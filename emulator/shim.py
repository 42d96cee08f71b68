"""Apply what moto's CloudFormation skips, reading it from the deployed template.

moto creates these resource types as no-ops (or ignores these properties); the shim resolves their
properties with moto's own intrinsic-function resolver (Ref, GetAtt, Sub, If... against the real
stack) and calls the service APIs that do work in moto.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from moto.cloudformation.models import cloudformation_backends
from moto.cloudformation.parsing import clean_json

from emulator import aws_clients
from emulator.moto_server import ACCOUNT_ID, REGION
from emulator.stack import Stack, referenced_logical_id


@dataclass(frozen=True)
class Schedule:
    """An AWS::Scheduler::Schedule the emulator fires itself (moto skips the resource)."""

    logical_id: str
    name: str
    expression: str
    enabled: bool
    target_function: str | None  # logical id (in the root stack)
    input_template: str
    max_retry_attempts: int | None
    dead_letter_queue: str | None  # logical id (in the root stack)
    timezone: str = "UTC"

    @property
    def arn(self) -> str:
        return f"arn:aws:scheduler:{REGION}:{ACCOUNT_ID}:schedule/default/{self.name}"

    @property
    def job_type(self) -> str:
        """The job type the schedule submits: its Input's `jobType`, else the stack's default one; ""
        for a schedule whose Input is not a tick (no `scheduleArn`: the watchdog's check)."""
        try:
            document = json.loads(self.input_template)
        except ValueError:
            document = None
        if not isinstance(document, dict) or "scheduleArn" not in document:
            return ""
        declared = document.get("jobType")
        return declared if isinstance(declared, str) and declared else "default"

    def input_for(self, scheduled_time: str) -> Any:
        """The event Scheduler sends: its Input with the context placeholders filled in."""
        text = self.input_template.replace("<aws.scheduler.scheduled-time>", scheduled_time)
        text = text.replace("<aws.scheduler.schedule-arn>", self.arn)
        text = text.replace("<aws.scheduler.execution-id>", f"local-{scheduled_time}")
        return json.loads(text)


@dataclass(frozen=True)
class Rule:
    """An enabled EventBridge rule with its pattern and the functions and queues it targets."""

    logical_id: str
    pattern: dict[str, Any]
    target_functions: list[str]
    target_queues: list[str] = field(default_factory=list)  # logical ids (in the root stack)


# What Lambda's SQS poller does when the mapping sets no ScalingConfig.MaximumConcurrency: it starts
# with five concurrent batches (and scales up from there, which the emulator does not model).
DEFAULT_SQS_CONCURRENCY = 5


@dataclass(frozen=True)
class SqsEventSource:
    """An SQS event source mapping of the template (moto's Lambda would run Docker; the emulator polls).

    Every setting is the mapping's own, with Lambda's defaults where the template sets none.
    """

    logical_id: str
    function: str  # logical id
    queue: str  # logical id
    batch_size: int
    batching_window_seconds: float
    max_concurrency: int
    report_batch_item_failures: bool  # FunctionResponseTypes has ReportBatchItemFailures
    enabled: bool


class Resolver:
    """Resolves intrinsic functions against the deployed moto stack."""

    def __init__(self, stack: Stack) -> None:
        backend = cloudformation_backends[ACCOUNT_ID][REGION]
        moto_stack = next(
            s for s in backend.stacks.values() if s.name == stack.name and s.status != "DELETE_COMPLETE"
        )
        self._resource_map = moto_stack.resource_map

    def created(self, resource: dict[str, Any]) -> bool:
        condition = resource.get("Condition")
        return not condition or bool(self._resource_map.lazy_condition_map[condition])

    def __call__(self, node: Any) -> Any:
        """`node` with its intrinsic functions resolved; AWS::NoValue entries dropped."""
        return _strip_no_value(clean_json(node, self._resource_map))


def _strip_no_value(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_no_value(v) for k, v in node.items() if v is not None and v != "AWS::NoValue"}
    if isinstance(node, list):
        return [_strip_no_value(v) for v in node if v is not None and v != "AWS::NoValue"]
    return node


class Shim:
    """What moto skips, for one stack. A nested stack's (a job type's) targets are the root stack's
    functions and queues, which it names by ARN (through its Platform parameter): `root` finds them."""

    def __init__(self, stack: Stack, root: Stack | None = None) -> None:
        self.stack = stack
        self.root = root or stack
        self.resolve = Resolver(stack)

    def _root_function(self, raw_arn: Any) -> str | None:
        """The root stack's function a target names: by reference, or by its resolved ARN."""
        referenced = referenced_logical_id(raw_arn)
        if referenced in self.root.functions:
            return referenced
        arn = self.resolve(raw_arn) if raw_arn is not None else None
        name = str(arn).rsplit(":", 1)[-1]
        return next((f.logical_id for f in self.root.functions.values() if f.physical_name == name), None)

    def _root_queue(self, raw_arn: Any) -> str | None:
        referenced = referenced_logical_id(raw_arn)
        if referenced and self.root.resource_type(referenced) == "AWS::SQS::Queue":
            return referenced
        return self.root.queue_logical_id(str(self.resolve(raw_arn))) if raw_arn is not None else None

    def _created(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.stack.resources_of_type(resource_type).items()
            if self.resolve.created(resource)
        }

    def apply(self) -> None:
        self.apply_bucket_notifications()
        self.apply_queue_policies()
        self.apply_secrets()
        self.apply_schedules()

    def apply_bucket_notifications(self) -> None:
        s3: Any = aws_clients.client("s3")
        for logical_id, resource in self._created("AWS::S3::Bucket").items():
            config = resource.get("Properties", {}).get("NotificationConfiguration")
            if not config:
                continue
            resolved = self.resolve(config)
            api_config: dict[str, Any] = {}
            for cfn_key, api_key, arn_key, target_key in (
                ("QueueConfigurations", "QueueConfigurations", "QueueArn", "Queue"),
                ("TopicConfigurations", "TopicConfigurations", "TopicArn", "Topic"),
            ):
                for item in resolved.get(cfn_key, []):
                    entry: dict[str, Any] = {arn_key: item[target_key], "Events": [item["Event"]]}
                    rules = item.get("Filter", {}).get("S3Key", {}).get("Rules", [])
                    if rules:
                        entry["Filter"] = {"Key": {"FilterRules": rules}}
                    api_config.setdefault(api_key, []).append(entry)
            if "EventBridgeConfiguration" in resolved:
                api_config["EventBridgeConfiguration"] = {}
            s3.put_bucket_notification_configuration(
                Bucket=self.stack.physical_ids[logical_id], NotificationConfiguration=api_config
            )

    def apply_queue_policies(self) -> None:
        sqs = aws_clients.client("sqs")
        for resource in self._created("AWS::SQS::QueuePolicy").values():
            props = self.resolve(resource["Properties"])
            for queue_url in props.get("Queues", []):
                sqs.set_queue_attributes(
                    QueueUrl=queue_url, Attributes={"Policy": json.dumps(props["PolicyDocument"])}
                )

    def apply_secrets(self) -> None:
        secrets = aws_clients.client("secretsmanager")
        for logical_id, resource in self._created("AWS::SecretsManager::Secret").items():
            props = self.resolve(resource.get("Properties", {}))
            secrets.create_secret(
                Name=props.get("Name") or f"{self.stack.name}-{logical_id}",
                SecretString=props.get("SecretString", "{}"),
            )

    def schedules(self) -> list[Schedule]:
        found = []
        for logical_id, resource in self._created("AWS::Scheduler::Schedule").items():
            props = self.resolve(resource["Properties"])
            raw_target = resource["Properties"]["Target"]
            target = props["Target"]
            dlq = raw_target.get("DeadLetterConfig", {}).get("Arn")
            nested = self.root is not self.stack
            found.append(
                Schedule(
                    logical_id=logical_id,
                    name=self._schedule_name(logical_id, props, nested),
                    expression=props["ScheduleExpression"],
                    enabled=props.get("State", "ENABLED") == "ENABLED",
                    target_function=self._root_function(raw_target.get("Arn")),
                    input_template=target.get("Input", "{}"),
                    max_retry_attempts=target.get("RetryPolicy", {}).get("MaximumRetryAttempts"),
                    dead_letter_queue=self._root_queue(dlq) if dlq else None,
                    timezone=props.get("ScheduleExpressionTimezone") or "UTC",
                )
            )
        return found

    def _schedule_name(self, logical_id: str, props: dict[str, Any], nested: bool) -> str:
        # Without a Name, CloudFormation names it after the stack and the logical id.
        return str(props.get("Name") or (f"{self.stack.name}-{logical_id}" if nested else logical_id))

    def apply_schedules(self) -> None:
        """Create each schedule in moto's EventBridge Scheduler as the template defines it, so what reads
        schedules through the API (`batch-dispatch status`, `backfill`) finds them. moto never fires
        them: the emulator does (`Emulator.tick`)."""
        scheduler = aws_clients.client("scheduler")
        for logical_id, resource in self._created("AWS::Scheduler::Schedule").items():
            props = _strip_no_value(self.resolve(resource["Properties"]))
            kept = ("ScheduleExpression", "ScheduleExpressionTimezone", "State", "Description", "Target")
            request = {key: props[key] for key in kept if key in props}
            scheduler.create_schedule(
                Name=self._schedule_name(logical_id, props, self.root is not self.stack),
                FlexibleTimeWindow=props.get("FlexibleTimeWindow", {"Mode": "OFF"}),
                **request,
            )

    def rules(self) -> list[Rule]:
        found = []
        for logical_id, resource in self._created("AWS::Events::Rule").items():
            props = resource["Properties"]
            pattern = props.get("EventPattern")
            if not pattern or self.resolve(props.get("State", "ENABLED")) != "ENABLED":
                continue
            targets = [self._root_function(t.get("Arn")) for t in props.get("Targets", [])]
            queues = [self._root_queue(t.get("Arn")) for t in props.get("Targets", [])]
            found.append(
                Rule(
                    logical_id=logical_id,
                    pattern=self.resolve(pattern),
                    target_functions=[t for t in targets if t is not None],
                    target_queues=[q for q in queues if q is not None],
                )
            )
        return found

    def async_retry_attempts(self, function_logical_id: str) -> int:
        """Lambda's async retries for a function (EventInvokeConfig, default 2)."""
        for resource in self._created("AWS::Lambda::EventInvokeConfig").values():
            props = resource["Properties"]
            if referenced_logical_id(props.get("FunctionName")) == function_logical_id:
                return int(props.get("MaximumRetryAttempts", 2))
        return 2

    def sqs_event_sources(self) -> dict[str, SqsEventSource]:
        """The template's SQS event source mappings, by function logical id (the first, if several)."""
        found: dict[str, SqsEventSource] = {}
        for raw in self.stack.event_source_mappings:
            function = referenced_logical_id(raw.get("FunctionName"))
            queue = referenced_logical_id(raw.get("EventSourceArn"))
            if function is None or queue is None or self.stack.resource_type(queue) != "AWS::SQS::Queue":
                continue
            props = self.resolve(
                {k: v for k, v in raw.items() if k not in {"FunctionName", "EventSourceArn"}}
            )
            scaling = props.get("ScalingConfig") or {}
            found.setdefault(
                function,
                SqsEventSource(
                    logical_id=str(raw.get("LogicalId", "")),
                    function=function,
                    queue=queue,
                    batch_size=int(props.get("BatchSize", 10)),
                    batching_window_seconds=float(props.get("MaximumBatchingWindowInSeconds", 0)),
                    max_concurrency=int(scaling.get("MaximumConcurrency", DEFAULT_SQS_CONCURRENCY)),
                    report_batch_item_failures="ReportBatchItemFailures"
                    in (props.get("FunctionResponseTypes") or []),
                    enabled=str(props.get("Enabled", True)).lower() != "false",
                ),
            )
        return found

    def redrive_policy(self, queue_logical_id: str) -> tuple[int, str | None]:
        """(maxReceiveCount, DLQ logical id) of a queue, from its RedrivePolicy (0, None without one)."""
        raw = (
            self.stack.cfn_template["Resources"][queue_logical_id].get("Properties", {}).get("RedrivePolicy")
        )
        if not raw:
            return 0, None
        policy = self.resolve(raw)
        return int(policy.get("maxReceiveCount", 0)), referenced_logical_id(raw.get("deadLetterTargetArn"))
