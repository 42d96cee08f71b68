"""A "Batch Job State Change" event, read leniently: every field optional, a malformed one reads as absent.

The event's `detail` is a DescribeJobs JobDetail, in one of several layouts:
- classic container jobs: `attempts[].container` (exitCode, reason, logStreamName);
- ECS-properties jobs (and multi-container multi-node jobs): `attempts[].taskProperties[].containers[]`,
  with `essential` only known from `ecsProperties.taskProperties[].containers[]` (matched by name);
- multi-node children (`jobId#N`, `nodeDetails.nodeIndex`) and array children (`jobId:N`,
  `arrayProperties.index`).
Only the LAST attempt matters (Batch sends FAILED once, after every retry). `logStreamName` exists only if
the attempt reached RUNNING. An alert with gaps beats a crashed notifier, so nothing here raises: each
accessor checks the type of what it reads (unknown fields are kept in `raw_event`; AWS adds fields).

The nodes follow Powertools' event data classes (a read-only mapping with typed properties) without
importing them: that package loads every event source's class, a cold-start cost the notifier, which
needs none of them, would pay on every cold start (bench/cold_start.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

NodeT = TypeVar("NodeT", bound="EventNode")


class EventNode(Mapping[str, Any]):
    """A dict of the event; typed getters return None (or empty) for a missing or mistyped field."""

    def __init__(self, data: Any) -> None:
        self._data: dict[str, Any] = data if isinstance(data, dict) else {}

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    @property
    def raw_event(self) -> dict[str, Any]:
        return self._data

    def text(self, name: str) -> str | None:
        value = self.get(name)
        return value if isinstance(value, str) else None

    def integer(self, name: str) -> int | None:
        value = self.get(name)
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        return None

    def flag(self, name: str) -> bool | None:
        value = self.get(name)
        return value if isinstance(value, bool) else None

    def mapping(self, name: str) -> dict[str, Any]:
        value = self.get(name)
        return value if isinstance(value, dict) else {}

    def node(self, name: str, cls: type[NodeT]) -> NodeT | None:
        value = self.get(name)
        return cls(value) if isinstance(value, dict) else None

    def nodes(self, name: str, cls: type[NodeT]) -> list[NodeT]:
        value = self.get(name)
        return [cls(item) for item in value if isinstance(item, dict)] if isinstance(value, list) else []


class ContainerDetail(EventNode):
    @property
    def name(self) -> str | None:
        return self.text("name")

    @property
    def essential(self) -> bool | None:
        return self.flag("essential")

    @property
    def exit_code(self) -> int | None:
        return self.integer("exitCode")

    @property
    def reason(self) -> str | None:
        return self.text("reason")

    @property
    def log_stream_name(self) -> str | None:
        return self.text("logStreamName")

    @property
    def log_group(self) -> str | None:
        """`logConfiguration.options.awslogs-group`, when the event carries it."""
        group = EventNode(self.mapping("logConfiguration")).mapping("options").get("awslogs-group")
        return group if isinstance(group, str) and group else None

    @property
    def memory_mib(self) -> int | None:
        """MEMORY from resourceRequirements (or the older `memory` field), in MiB."""
        for requirement in self.nodes("resourceRequirements", EventNode):
            if requirement.text("type") == "MEMORY":
                return requirement.integer("value")
        return self.integer("memory")


class TaskProperties(EventNode):
    @property
    def containers(self) -> list[ContainerDetail]:
        return self.nodes("containers", ContainerDetail)


class EcsProperties(EventNode):
    @property
    def task_properties(self) -> list[TaskProperties]:
        return self.nodes("taskProperties", TaskProperties)


class Attempt(EventNode):
    @property
    def container(self) -> ContainerDetail | None:
        return self.node("container", ContainerDetail)

    @property
    def task_properties(self) -> list[TaskProperties]:
        return self.nodes("taskProperties", TaskProperties)

    @property
    def started_at(self) -> int | None:
        return self.integer("startedAt")

    @property
    def stopped_at(self) -> int | None:
        return self.integer("stoppedAt")

    @property
    def status_reason(self) -> str | None:
        return self.text("statusReason")


class ArrayProperties(EventNode):
    @property
    def index(self) -> int | None:
        return self.integer("index")

    @property
    def size(self) -> int | None:
        return self.integer("size")

    @property
    def status_summary(self) -> dict[str, int]:
        return {k: v for k, v in self.mapping("statusSummary").items() if isinstance(v, int)}


class NodeDetails(EventNode):
    @property
    def node_index(self) -> int | None:
        return self.integer("nodeIndex")

    @property
    def is_main_node(self) -> bool | None:
        return self.flag("isMainNode")


class NodeRange(EventNode):
    @property
    def container(self) -> ContainerDetail | None:
        return self.node("container", ContainerDetail)

    @property
    def ecs_properties(self) -> EcsProperties | None:
        return self.node("ecsProperties", EcsProperties)


class NodeProperties(EventNode):
    @property
    def num_nodes(self) -> int | None:
        return self.integer("numNodes")

    @property
    def main_node(self) -> int | None:
        return self.integer("mainNode")

    @property
    def node_range_properties(self) -> list[NodeRange]:
        return self.nodes("nodeRangeProperties", NodeRange)


class JobDetail(EventNode):
    @property
    def job_name(self) -> str | None:
        return self.text("jobName")

    @property
    def job_id(self) -> str | None:
        return self.text("jobId")

    @property
    def job_queue(self) -> str | None:
        return self.text("jobQueue")

    @property
    def job_definition(self) -> str | None:
        return self.text("jobDefinition")

    @property
    def status(self) -> str | None:
        return self.text("status")

    @property
    def status_reason(self) -> str | None:
        return self.text("statusReason")

    @property
    def attempts(self) -> list[Attempt]:
        return self.nodes("attempts", Attempt)

    @property
    def created_at(self) -> int | None:
        return self.integer("createdAt")

    @property
    def stopped_at(self) -> int | None:
        return self.integer("stoppedAt")

    @property
    def parameters(self) -> dict[str, Any]:
        return self.mapping("parameters")

    @property
    def container(self) -> ContainerDetail | None:
        return self.node("container", ContainerDetail)

    @property
    def ecs_properties(self) -> EcsProperties | None:
        return self.node("ecsProperties", EcsProperties)

    @property
    def array_properties(self) -> ArrayProperties | None:
        return self.node("arrayProperties", ArrayProperties)

    @property
    def node_details(self) -> NodeDetails | None:
        return self.node("nodeDetails", NodeDetails)

    @property
    def node_properties(self) -> NodeProperties | None:
        return self.node("nodeProperties", NodeProperties)

    @property
    def timeout_seconds(self) -> int | None:
        """`timeout.attemptDurationSeconds`: how long one attempt may run."""
        return EventNode(self.mapping("timeout")).integer("attemptDurationSeconds")

    @property
    def depends_on(self) -> list[str]:
        """Job ids this job waited for (`dependsOn[].jobId`)."""
        return [d.text("jobId") or "" for d in self.nodes("dependsOn", EventNode) if d.text("jobId")]


class JobStateChange(EventNode):
    """The EventBridge envelope of a Batch event."""

    @property
    def id(self) -> str | None:
        return self.text("id")

    @property
    def detail_type(self) -> str | None:
        return self.text("detail-type")

    @property
    def region(self) -> str | None:
        return self.text("region")

    @property
    def account(self) -> str | None:
        return self.text("account")

    @property
    def detail(self) -> JobDetail:
        return JobDetail(self.get("detail"))


def parse_event(event: Any) -> JobStateChange:
    """The event as a model. Never raises: missing or malformed fields read as None/empty."""
    return JobStateChange(event)
