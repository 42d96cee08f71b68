"""Run the functions in-process the way Lambda would: sync, async (retries then DLQ) and SQS polling."""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from emulator import aws_clients
from emulator.environments import ExecutionEnvironments
from emulator.handlers import (
    Invocation,
    LocalContext,
    environment_values,
    handler_error,
    layer_python_dirs,
    load_handler,
)
from emulator.mapping_queue import MappingQueue, PollerQueueFactory
from emulator.moto_server import REGION
from emulator.process_environment import ProcessEnvironment
from emulator.shim import SqsEventSource
from emulator.stack import FunctionInfo, Stack

_process_environment = ProcessEnvironment()


class ConcurrentExecutions:
    """Invocations of each function running at once, and the most there ever were (what Lambda's
    ConcurrentExecutions metric shows, and what a reserved concurrency caps)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, int] = {}
        self._peak: dict[str, int] = {}

    @contextmanager
    def running(self, logical_id: str) -> Iterator[None]:
        with self._lock:
            now = self._running[logical_id] = self._running.get(logical_id, 0) + 1
            self._peak[logical_id] = max(self._peak.get(logical_id, 0), now)
        try:
            yield
        finally:
            with self._lock:
                self._running[logical_id] -= 1

    def now(self, logical_id: str) -> int:
        with self._lock:
            return self._running.get(logical_id, 0)

    def peak(self, logical_id: str) -> int:
        with self._lock:
            return self._peak.get(logical_id, 0)


class LambdaRuntime:
    """Loads each function's handler from its CodeUri and invokes it with the deployed environment.

    `event_sources` are the template's SQS event source mappings (by function logical id) and
    `redrive` answers (maxReceiveCount, DLQ logical id) for a queue, both read from the template.
    `concurrency` counts each function's invocations running at once (and the peak).
    """

    def __init__(
        self,
        stack: Stack,
        event_sources: dict[str, SqsEventSource] | None = None,
        redrive: Callable[[str], tuple[int, str | None]] | None = None,
        *,
        retry_delay_seconds: float = 0.0,
    ) -> None:
        self.stack = stack
        self.event_sources = event_sources or {}
        self._redrive = redrive or (lambda _queue: (0, None))
        self.retry_delay_seconds = retry_delay_seconds
        self.concurrency = ConcurrentExecutions()
        self._handlers: dict[str, Callable[[Any, Any], Any]] = {}
        for layer_dir in layer_python_dirs(stack):
            if layer_dir not in sys.path:
                sys.path.insert(0, layer_dir)

    # -- plain invoke ----------------------------------------------------------------------------
    def handler(self, logical_id: str) -> Callable[[Any, Any], Any]:
        if logical_id not in self._handlers:
            info = self.stack.functions[logical_id]
            with self.environment(info):
                self._handlers[logical_id] = load_handler(logical_id, info.code_dir, info.handler)
        return self._handlers[logical_id]

    @contextmanager
    def environment(self, info: FunctionInfo) -> Iterator[None]:
        """The function's deployed environment variables, as Lambda would set them.

        Invocations on the pollers' threads overlap: the process's own values are saved by the first
        to enter and put back by the last to leave (restoring per invocation, out of order, would leave
        one invocation's values behind for whatever runs next in this process).
        """
        with _process_environment.entered(environment_values(info)):
            yield

    def invoke(self, logical_id: str, event: Any) -> Invocation:
        """One synchronous invocation (what `sam local invoke` does)."""
        info = self.stack.functions[logical_id]
        handler = self.handler(logical_id)
        context = LocalContext(function_name=info.physical_name, timeout_seconds=info.timeout)
        with self.concurrency.running(logical_id), self.environment(info):
            try:
                return Invocation(result=handler(json.loads(json.dumps(event)), context))
            except Exception as exc:  # the emulator reports every handler failure, as Lambda does
                return Invocation(error=handler_error(logical_id, exc))

    def invoke_in(
        self, environments: ExecutionEnvironments | None, logical_id: str, event: Any
    ) -> Invocation:
        """One invocation in one of `environments` (worker processes), or on this thread without them;
        counted in `concurrency` either way."""
        if environments is None:
            return self.invoke(logical_id, event)
        with self.concurrency.running(logical_id):
            return environments.invoke(event)

    # -- asynchronous invoke (EventBridge rules, Scheduler) ----------------------------------------
    def invoke_async(
        self,
        logical_id: str,
        event: Any,
        max_retries: int = 2,
        *,
        environments: ExecutionEnvironments | None = None,
    ) -> Invocation:
        """Lambda's async semantics: retry up to `max_retries` times, then the function's DLQ. The
        handler runs on the caller's thread, or in one of `environments` (worker processes) when given."""
        outcome = Invocation()
        for attempt in range(max_retries + 1):
            outcome = self.invoke_in(environments, logical_id, event)
            outcome.attempts = attempt + 1
            if outcome.error is None:
                return outcome
            time.sleep(self.retry_delay_seconds)
        dlq = self.stack.functions[logical_id].dead_letter_queue
        if dlq:
            # What Lambda attaches to a failed asynchronous event it parks (the error cut to 1 KB)
            error = outcome.error or {}
            attributes = {
                "RequestID": {"DataType": "String", "StringValue": str(uuid.uuid4())},
                "ErrorCode": {"DataType": "Number", "StringValue": "200"},
                "ErrorMessage": {
                    "DataType": "String",
                    "StringValue": str(error.get("message") or "-")[:1024],
                },
            }
            sqs: Any = aws_clients.client("sqs")
            sqs.send_message(
                QueueUrl=self.stack.queue_url(dlq),
                MessageBody=json.dumps(event),
                MessageAttributes=attributes,
            )
        return outcome

    # -- SQS event source mappings ---------------------------------------------------------------
    def event_source(self, logical_id: str) -> SqsEventSource:
        try:
            return self.event_sources[logical_id]
        except KeyError:
            raise KeyError(f"{logical_id} has no SQS event source mapping in the template") from None

    def invoke_sqs_event(self, logical_id: str, event: dict[str, Any]) -> Invocation:
        """Feed an SQS event; failed items are redelivered like SQS would, then parked in the DLQ.

        The records do not come from the queue, so redelivery is immediate (after
        `retry_delay_seconds`) rather than after the queue's visibility timeout.
        """
        source = self.event_source(logical_id)
        max_receive, dlq = self._redrive(source.queue)
        records = list(event.get("Records", []))
        first: Invocation | None = None
        receive_count = 1
        while records:
            outcome = self.invoke(logical_id, {**event, "Records": records})
            first = first or outcome
            failed_ids = failed_message_ids(outcome, records, source.report_batch_item_failures)
            records = [r for r in records if r.get("messageId") in failed_ids]
            receive_count += 1
            if records and receive_count > max(max_receive, 1):
                if dlq:
                    sqs: Any = aws_clients.client("sqs")
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
        retry_visibility_seconds: int | None = None,
        idle_timeout: float = 30.0,
        environments: ExecutionEnvironments | None = None,
        queue_factory: PollerQueueFactory = MappingQueue,
        wait_out_window: bool = True,
    ) -> int:
        """Poll the function's real queue until it is empty, as its event source mapping would.

        Every setting is the mapping's (emulator/shim.py `SqsEventSource`): up to MaximumConcurrency
        pollers, each gathering a batch of up to BatchSize messages from ReceiveMessage calls until it
        is full or MaximumBatchingWindowInSeconds (from the first message) has passed (without a
        window, until the queue has nothing more to give), and short of Lambda's 6 MB invocation
        payload. Messages are received with the queue's own VisibilityTimeout. After the invocation,
        successful messages are deleted; with ReportBatchItemFailures the ones named in
        batchItemFailures stay, without it a returned answer counts as success for the whole batch;
        an error keeps them all. What stays comes back when the queue's visibility timeout ends, and
        the queue's redrive policy parks it after maxReceiveCount receives.

        `retry_visibility_seconds` fast-forwards that wait: the pollers set the visibility of what
        failed to this many seconds instead (tests that redeliver failures on a 420 s queue use 0).
        `wait_out_window=False` fast-forwards the batching window: a batch is invoked as soon as the
        queue has nothing more to give (the demo, where nothing else is on its way).
        Stops when the queue has nothing visible or in flight, or after `idle_timeout` seconds.
        Returns the number of invocations. The handler runs on the poller's thread, or in one of
        `environments` (worker processes, emulator/environments.py) when given. The pollers reach the
        queue through `queue_factory(queue URL, pollers)`: SQS over HTTP unless told otherwise.
        """
        source = self.event_source(logical_id)
        if not source.enabled:
            return 0
        queue = queue_factory(self.stack.queue_url(source.queue), source.max_concurrency)
        queue_arn = self.stack.queue_arn(source.queue)
        batch_size = max(1, source.batch_size)
        window = source.batching_window_seconds
        invocations = 0
        lock = threading.Lock()
        deadline = time.monotonic() + idle_timeout

        def poll_once() -> bool:
            nonlocal invocations
            records: list[dict[str, Any]] = []
            window_ends: float | None = None
            payload, largest = 0, 0
            while len(records) < batch_size and payload + 10 * largest <= _MAX_PAYLOAD_BYTES:
                received = queue.receive(min(batch_size - len(records), 10))
                if received:
                    window_ends = window_ends or time.monotonic() + window
                    for message in received:
                        records.append(sqs_record(message, queue_arn))
                        size = len(json.dumps(records[-1]))
                        payload, largest = payload + size, max(largest, size)
                elif not window or not records or not wait_out_window:
                    break  # nothing (more) to give, and no window to wait out
                else:
                    time.sleep(0.05)
                if window and window_ends is not None and time.monotonic() >= window_ends:
                    break
            if not records:
                return False
            event = {"Records": records}
            outcome = self.invoke_in(environments, logical_id, event)
            with lock:
                invocations += 1
            failed_ids = failed_message_ids(outcome, records, source.report_batch_item_failures)
            queue.delete([r["receiptHandle"] for r in records if r["messageId"] not in failed_ids])
            if retry_visibility_seconds is not None:
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

        pollers = max(1, source.max_concurrency)
        with ThreadPoolExecutor(max_workers=pollers) as pool:
            for future in [pool.submit(worker) for _ in range(pollers)]:
                future.result()
        return invocations


# Lambda's synchronous invocation payload limit, less the event's envelope
_MAX_PAYLOAD_BYTES = 6 * 1024 * 1024 - 1024


def failed_message_ids(
    outcome: Invocation, records: list[dict[str, Any]], report_item_failures: bool
) -> set[str]:
    """Which records Lambda leaves on the queue after this invocation (AWS's partial batch rules).

    An error fails the batch. Without ReportBatchItemFailures the answer is ignored: success. With it,
    no answer or an empty list is success; an answer that is not an object, or an itemIdentifier that
    is missing or not a message of the batch, fails the whole batch.
    """
    every = {str(r.get("messageId")) for r in records}
    if outcome.error is not None:
        return every
    if not report_item_failures or outcome.result is None:
        return set()
    if not isinstance(outcome.result, dict):
        return every
    failures = outcome.result.get("batchItemFailures") or []
    named = {f.get("itemIdentifier") if isinstance(f, dict) else None for f in failures}
    if not named <= every:
        return every
    return {str(n) for n in named}


def sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """A ReceiveMessage message as a record of the SQS event Lambda sends."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: _record_attribute(value) for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def _record_attribute(value: dict[str, Any]) -> dict[str, Any]:
    """A message attribute as Lambda's SQS event spells it (camelCase, list fields present)."""
    record: dict[str, Any] = {
        "dataType": value.get("DataType"),
        "stringListValues": [],
        "binaryListValues": [],
    }
    if "StringValue" in value:
        record["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        record["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    return record
