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

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar, overload

NodeT = TypeVar("NodeT", bound="EventNode")
T = TypeVar("T")


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


class Field(Generic[T]):
    """One key of a node, read by one of EventNode's typed getters: a declarative, read-only property."""

    def __init__(self, key: str, read: Callable[[EventNode, str], T]) -> None:
        self.key = key
        self._read = read

    @overload
    def __get__(self, node: None, owner: type[Any]) -> Field[T]: ...

    @overload
    def __get__(self, node: EventNode, owner: type[Any]) -> T: ...

    def __get__(self, node: EventNode | None, owner: type[Any]) -> Field[T] | T:
        return self if node is None else self._read(node, self.key)


def text_at(key: str) -> Field[str | None]:
    return Field(key, EventNode.text)


def integer_at(key: str) -> Field[int | None]:
    return Field(key, EventNode.integer)


def flag_at(key: str) -> Field[bool | None]:
    return Field(key, EventNode.flag)


def node_at(key: str, cls: type[NodeT]) -> Field[NodeT | None]:
    return Field(key, lambda node, name: node.node(name, cls))


def nodes_at(key: str, cls: type[NodeT]) -> Field[list[NodeT]]:
    return Field(key, lambda node, name: node.nodes(name, cls))


class ContainerDetail(EventNode):
    name = text_at("name")
    essential = flag_at("essential")
    exit_code = integer_at("exitCode")
    reason = text_at("reason")
    log_stream_name = text_at("logStreamName")

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
    containers = nodes_at("containers", ContainerDetail)


class EcsProperties(EventNode):
    task_properties = nodes_at("taskProperties", TaskProperties)


class Attempt(EventNode):
    container = node_at("container", ContainerDetail)
    task_properties = nodes_at("taskProperties", TaskProperties)
    started_at = integer_at("startedAt")
    stopped_at = integer_at("stoppedAt")
    status_reason = text_at("statusReason")


class ArrayProperties(EventNode):
    index = integer_at("index")
    size = integer_at("size")

    @property
    def status_summary(self) -> dict[str, int]:
        return {k: v for k, v in self.mapping("statusSummary").items() if isinstance(v, int)}


class NodeDetails(EventNode):
    node_index = integer_at("nodeIndex")
    is_main_node = flag_at("isMainNode")


class NodeRange(EventNode):
    container = node_at("container", ContainerDetail)
    ecs_properties = node_at("ecsProperties", EcsProperties)


class NodeProperties(EventNode):
    num_nodes = integer_at("numNodes")
    main_node = integer_at("mainNode")
    node_range_properties = nodes_at("nodeRangeProperties", NodeRange)


class JobDetail(EventNode):
    job_name = text_at("jobName")
    job_id = text_at("jobId")
    job_queue = text_at("jobQueue")
    job_definition = text_at("jobDefinition")
    status = text_at("status")
    status_reason = text_at("statusReason")
    attempts = nodes_at("attempts", Attempt)
    created_at = integer_at("createdAt")
    stopped_at = integer_at("stoppedAt")

    container = node_at("container", ContainerDetail)
    ecs_properties = node_at("ecsProperties", EcsProperties)
    array_properties = node_at("arrayProperties", ArrayProperties)
    node_details = node_at("nodeDetails", NodeDetails)
    node_properties = node_at("nodeProperties", NodeProperties)

    @property
    def parameters(self) -> dict[str, Any]:
        return self.mapping("parameters")

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

    id = text_at("id")
    detail_type = text_at("detail-type")
    region = text_at("region")
    account = text_at("account")

    @property
    def detail(self) -> JobDetail:
        return JobDetail(self.get("detail"))


def parse_event(event: Any) -> JobStateChange:
    """The event as a model. Never raises: missing or malformed fields read as None/empty."""
    return JobStateChange(event)
