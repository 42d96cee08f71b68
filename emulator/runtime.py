"""Run the functions in-process the way Lambda would: sync, async (retries then DLQ) and SQS polling."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3

from emulator.environments import ExecutionEnvironments, handler_error, load_handler
from emulator.mapping_queue import MappingQueue
from emulator.moto_server import ACCOUNT_ID, REGION
from emulator.sam import REPO_ROOT
from emulator.stack import FunctionInfo, Stack, _referenced_logical_id

_env_lock = threading.RLock()


@dataclass
class LocalContext:
    """The parts of Lambda's context object our handlers (and Powertools) read."""

    function_name: str
    memory_limit_in_mb: int = 256
    timeout_seconds: float = 30.0
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000))


@dataclass
class Invocation:
    result: Any = None
    error: dict[str, str] | None = None
    attempts: int = 1

    def as_dict(self) -> dict[str, Any]:
        return {"result": self.result, "error": self.error}


class LambdaRuntime:
    """Loads each function's handler from its CodeUri and invokes it with the deployed environment."""

    def __init__(self, stack: Stack, *, retry_delay_seconds: float = 0.0) -> None:
        self.stack = stack
        self.retry_delay_seconds = retry_delay_seconds
        self._handlers: dict[str, Callable[[Any, Any], Any]] = {}
        for layer_dir in self.layer_python_dirs():
            if layer_dir not in sys.path:
                sys.path.insert(0, layer_dir)

    def layer_python_dirs(self) -> list[str]:
        """Lambda mounts layers at /opt; Python code is under python/ (ARCHITECTURE.md layout)."""
        dirs = []
        for resource in self.stack.sam_template["Resources"].values():
            if resource.get("Type") == "AWS::Serverless::LayerVersion":
                content = resource["Properties"].get("ContentUri")
                if isinstance(content, str):
                    dirs.append(str((REPO_ROOT / content / "python").resolve()))
        return dirs

    # -- plain invoke ----------------------------------------------------------------------------
    def handler(self, logical_id: str) -> Callable[[Any, Any], Any]:
        if logical_id not in self._handlers:
            info = self.stack.functions[logical_id]
            with self.environment(info):
                self._handlers[logical_id] = load_handler(logical_id, info.code_dir, info.handler)
        return self._handlers[logical_id]

    @staticmethod
    def environment_values(info: FunctionInfo) -> dict[str, str]:
        """The function's deployed environment variables plus what Lambda itself sets."""
        return {
            **info.environment,
            "AWS_LAMBDA_FUNCTION_NAME": info.physical_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon locally
        }

    @contextmanager
    def environment(self, info: FunctionInfo) -> Iterator[None]:
        """The function's deployed environment variables, as Lambda would set them."""
        values = self.environment_values(info)
        with _env_lock:
            saved = {name: os.environ.get(name) for name in values}
            os.environ.update(values)
        try:
            yield
        finally:
            with _env_lock:
                for name, value in saved.items():
                    if value is None:
                        os.environ.pop(name, None)
                    else:
                        os.environ[name] = value

    def invoke(self, logical_id: str, event: Any) -> Invocation:
        """One synchronous invocation (what `sam local invoke` does)."""
        info = self.stack.functions[logical_id]
        handler = self.handler(logical_id)
        context = LocalContext(function_name=info.physical_name, timeout_seconds=info.timeout)
        with self.environment(info):
            try:
                return Invocation(result=handler(json.loads(json.dumps(event)), context))
            except Exception as exc:  # the emulator reports every handler failure, as Lambda does
                return Invocation(error=handler_error(logical_id, exc))

    # -- asynchronous invoke (EventBridge rules, Scheduler) ----------------------------------------
    def invoke_async(self, logical_id: str, event: Any, max_retries: int = 2) -> Invocation:
        """Lambda's async semantics: retry up to `max_retries` times, then the function's DLQ."""
        outcome = Invocation()
        for attempt in range(max_retries + 1):
            outcome = self.invoke(logical_id, event)
            outcome.attempts = attempt + 1
            if outcome.error is None:
                return outcome
            time.sleep(self.retry_delay_seconds)
        dlq = self.stack.functions[logical_id].dead_letter_queue
        if dlq:
            boto3.client("sqs").send_message(
                QueueUrl=self.stack.queue_url(dlq), MessageBody=json.dumps(event)
            )
        return outcome

    # -- SQS event source mappings ---------------------------------------------------------------
    def mapping_for(self, logical_id: str) -> dict[str, Any]:
        for mapping in self.stack.event_source_mappings:
            if _referenced_logical_id(mapping.get("FunctionName")) == logical_id:
                return mapping
        raise KeyError(f"{logical_id} has no SQS event source mapping in the template")

    def mapping_concurrency(self, logical_id: str) -> int:
        """The SQS event source mapping's ScalingConfig.MaximumConcurrency (parallel invocations)."""
        mapping = self.mapping_for(logical_id)
        return max(1, int(_param(self.stack, mapping.get("ScalingConfig", {}).get("MaximumConcurrency", 2))))

    def _redrive(self, queue_logical_id: str) -> tuple[int, str | None]:
        """(maxReceiveCount, DLQ logical id) of a queue, from its RedrivePolicy in the template."""
        props = self.stack.cfn_template["Resources"][queue_logical_id].get("Properties", {})
        policy = props.get("RedrivePolicy") or {}
        max_receive = policy.get("maxReceiveCount", 0)
        if isinstance(max_receive, dict):  # a Ref to a parameter
            max_receive = self.stack.parameters.get(str(max_receive.get("Ref")), 0)
        return int(max_receive), _referenced_logical_id(policy.get("deadLetterTargetArn"))

    def invoke_sqs_event(self, logical_id: str, event: dict[str, Any]) -> Invocation:
        """Feed an SQS event; failed items are redelivered like SQS would, then parked in the DLQ."""
        queue_logical_id = _referenced_logical_id(self.mapping_for(logical_id).get("EventSourceArn"))
        max_receive, dlq = self._redrive(queue_logical_id) if queue_logical_id else (1, None)
        records = list(event.get("Records", []))
        first: Invocation | None = None
        receive_count = 1
        while records:
            outcome = self.invoke(logical_id, {**event, "Records": records})
            first = first or outcome
            failed_ids = _failed_item_ids(outcome, records)
            records = [r for r in records if r.get("messageId") in failed_ids]
            receive_count += 1
            if records and receive_count > max(max_receive, 1):
                if dlq:
                    sqs: Any = boto3.client("sqs")
                    for record in records:
                        sqs.send_message(
                            QueueUrl=self.stack.queue_url(dlq), MessageBody=record.get("body", "")
                        )
                break
            for record in records:
                attributes = record.setdefault("attributes", {})
                attributes["ApproximateReceiveCount"] = str(receive_count)
            time.sleep(self.retry_delay_seconds)
        return first or Invocation(result={"batchItemFailures": []})

    def drain_queue(
        self,
        logical_id: str,
        *,
        retry_visibility_seconds: int = 1,
        idle_timeout: float = 30.0,
        batch_size: int | None = None,
        environments: ExecutionEnvironments | None = None,
    ) -> int:
        """Poll the function's real queue until it is empty, as the event source mapping would.

        Uses the mapping's BatchSize (or `batch_size`) and ScalingConfig.MaximumConcurrency (parallel
        pollers). Like the real mapping, a batch above 10 messages is gathered from several
        ReceiveMessage calls until it is full or the mapping's MaximumBatchingWindowInSeconds (from
        the first message) has passed; without a window, until the queue has nothing more to give.
        A batch also stops short of Lambda's 6 MB invocation payload, as the real mapping's does.
        Failed items become visible again after `retry_visibility_seconds`; moto's redrive policy
        moves them to the DLQ after maxReceiveCount receives. Returns the number of invocations.

        The pollers stand for Lambda's own fleet, so they reach moto's queue directly rather than
        over HTTP (emulator/mapping_queue.py): concurrently, like the real mapping's, when
        emulator.moto_patches has made moto's queues thread-safe (`Emulator.start` applies it); on
        unpatched moto they take turns, because a concurrent DeleteMessage there can undo another.
        The handler runs on the poller's thread, or in one of `environments` (worker processes,
        emulator/environments.py) when given.
        """
        mapping = self.mapping_for(logical_id)
        queue_logical_id = _referenced_logical_id(mapping.get("EventSourceArn"))
        if queue_logical_id is None:
            raise KeyError(f"cannot resolve the queue of {logical_id}'s event source mapping")
        queue = MappingQueue(self.stack.queue_url(queue_logical_id))
        queue_arn = self.stack.queue_arn(queue_logical_id)
        batch_size = max(1, batch_size or int(_param(self.stack, mapping.get("BatchSize", 10))))
        concurrency = self.mapping_concurrency(logical_id)
        window = float(_param(self.stack, mapping.get("MaximumBatchingWindowInSeconds", 0)) or 0)
        visibility = max(30, self.stack.functions[logical_id].timeout)
        invocations = 0
        lock = threading.Lock()
        deadline = time.monotonic() + idle_timeout

        def poll_once() -> bool:
            nonlocal invocations
            records: list[dict[str, Any]] = []
            gather = window if batch_size > 10 else 0.0  # one receive fills a batch of 10 or fewer
            window_ends: float | None = None
            payload, largest = 0, 0
            while len(records) < batch_size and payload + 10 * largest <= _MAX_PAYLOAD_BYTES:
                received = queue.receive(min(batch_size - len(records), 10), visibility)
                if received:
                    window_ends = window_ends or time.monotonic() + gather
                    for message in received:
                        records.append(_sqs_record(message, queue_arn))
                        size = len(json.dumps(records[-1]))
                        payload, largest = payload + size, max(largest, size)
                elif not gather or not records:
                    break  # nothing (more) to give, and no window to wait out
                else:
                    time.sleep(0.05)
                if gather and window_ends is not None and time.monotonic() >= window_ends:
                    break
            if not records:
                return False
            event = {"Records": records}
            outcome = environments.invoke(event) if environments else self.invoke(logical_id, event)
            with lock:
                invocations += 1
            failed_ids = _failed_item_ids(outcome, records)
            queue.delete([r["receiptHandle"] for r in records if r["messageId"] not in failed_ids])
            for record in records:
                if record["messageId"] in failed_ids:
                    queue.change_visibility(record["receiptHandle"], retry_visibility_seconds)
            return True

        def worker() -> None:
            while time.monotonic() < deadline:
                if not poll_once():
                    if queue.is_empty():
                        return
                    time.sleep(0.05)

        with ThreadPoolExecutor(max_workers=max(concurrency, 1)) as pool:
            for future in [pool.submit(worker) for _ in range(max(concurrency, 1))]:
                future.result()
        return invocations


# Lambda's synchronous invocation payload limit, less the event's envelope
_MAX_PAYLOAD_BYTES = 6 * 1024 * 1024 - 1024


def _param(stack: Stack, value: Any) -> Any:
    if isinstance(value, dict) and "Ref" in value:
        return stack.parameters.get(str(value["Ref"]), 0)
    return value


def _failed_item_ids(outcome: Invocation, records: list[dict[str, Any]]) -> set[str]:
    """Which records Lambda would return to the queue after this invocation."""
    if outcome.error is not None or not isinstance(outcome.result, dict):
        return {str(r.get("messageId")) for r in records}
    return {str(f.get("itemIdentifier")) for f in outcome.result.get("batchItemFailures", [])}


def _sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }
