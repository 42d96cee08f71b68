"""Opt-in speedups of moto 5.2.5 for `bench/burst.py --fast-moto`: SQS and DynamoDB at burst depth.

The emulator, the tests and the demo run on moto as released. A burst of 10,000 objects is another
matter: moto models AWS for tests of a few dozen items, and some of its costs grow with the depth of
a queue or the size of a table where AWS's do not (whole-queue scans per SQS call, a deep copy of the
whole table per item of a DynamoDB transaction), so a figure measured on top of it would be a
measurement of moto. Each patch below keeps moto's own data (the same Queue, Message and Table
objects, the same checks and error answers) and changes only how it is found or computed; what our
code can observe through the API stays the same: at-least-once delivery, visibility timeouts,
receive counts and the redrive to the DLQ after maxReceiveCount, DelaySeconds, deletion by any
receipt handle a message has had, the approximate counts, conditional writes and all-or-nothing
transactions. What they drop is moto's incidental ordering of a standard queue (real SQS gives none)
and its quadratic time. tests/unit/test_moto_speedups.py pins those answers.

Thread safety is not theirs to give: the emulator's server answers one request at a time
(emulator/moto_server.py).

    with installed():   # undone at the end of the block (tests)
        ...
    apply()             # for the life of the process (the benchmark)
"""

from __future__ import annotations

import base64
import copy
import random
import string
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["SPEEDUPS", "DirectQueue", "apply", "installed", "installed_speedups"]

_MISSING = object()
_sending = threading.local()  # set while SendMessage runs (fast_moto_sqs)


class _Patches:
    """Attributes set on moto's modules and classes, each with the value it replaced."""

    def __init__(self) -> None:
        self.active: dict[str, list[tuple[Any, str, Any]]] = {}
        self._lock = threading.Lock()

    def install(self, name: str, speedup: Callable[[Callable[[Any, str, Any], None]], None]) -> None:
        with self._lock:
            if name in self.active:
                return
            replaced: list[tuple[Any, str, Any]] = []

            def set_attribute(owner: Any, attribute: str, value: Any) -> None:
                replaced.append((owner, attribute, owner.__dict__.get(attribute, _MISSING)))
                setattr(owner, attribute, value)

            speedup(set_attribute)
            self.active[name] = replaced

    def uninstall(self, name: str) -> None:
        with self._lock:
            for owner, attribute, value in reversed(self.active.pop(name, [])):
                if value is _MISSING:
                    delattr(owner, attribute)
                else:
                    setattr(owner, attribute, value)


_patches = _Patches()
Setter = Callable[[Any, str, Any], None]


def installed_speedups() -> list[str]:
    """The names of the speedups installed right now (empty: moto as released)."""
    return sorted(_patches.active)


def apply() -> None:
    """Install every speedup for the life of the process (idempotent)."""
    for name, speedup in SPEEDUPS.items():
        _patches.install(name, speedup)


@contextmanager
def installed(*names: str) -> Iterator[None]:
    """Every speedup (or those named) installed while the block runs, then moto as it was.

    Objects moto creates inside the block belong to it: end moto's mock (or server) first.
    """
    chosen = names or tuple(SPEEDUPS)
    for name in chosen:
        _patches.install(name, SPEEDUPS[name])
    try:
        yield
    finally:
        for name in reversed(chosen):
            _patches.uninstall(name)


# -- the server's request routing -----------------------------------------------------------------


def fast_moto_server(patch: Setter) -> None:
    """Route each request to its service without listing moto's package directory every time.

    moto 5.2.5's server finds the service of every request under one process-wide lock, and on the
    way lists and stats moto's ~150 package directories (`list_of_moto_modules`, os.listdir + isdir)
    and matches the host against every service's URL patterns: a few ms per request, serialised,
    so with several threads calling it most of the time is spent waiting for that lock. The directory
    listing is read once and the host -> service answer is remembered per host; both are fixed for
    the life of the process, so every request goes to the same service as before.
    """
    from moto import backends
    from moto.moto_server import werkzeug_app

    dispatcher = werkzeug_app.DomainDispatcherApplication
    modules = tuple(backends.list_of_moto_modules())
    patch(backends, "list_of_moto_modules", lambda: modules)
    original = dispatcher.get_backend_for_host
    answers: dict[str | None, Any] = {}

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        if host not in answers:
            answers[host] = original(self, host)
        return answers[host]

    patch(dispatcher, "get_backend_for_host", get_backend_for_host)


# -- SQS ---------------------------------------------------------------------------------------------


class _MessageList:
    """A moto Queue's `_messages`, kept as an insertion-ordered dict instead of a list.

    It answers the list operations moto uses (append, remove, iteration, len, truth, `in`) with the
    same results, but remove and membership are O(1) instead of O(N), and a received message can be
    moved to the back in O(1). Iteration walks a snapshot, so code iterating it (moto's
    `Queue.messages`) never sees the dict change under it.
    """

    __slots__ = ("_items",)

    def __init__(self, messages: Iterable[Any] = ()) -> None:
        self._items: dict[Any, None] = dict.fromkeys(messages)

    def append(self, message: Any) -> None:
        self._items[message] = None

    def remove(self, message: Any) -> None:
        try:
            del self._items[message]
        except KeyError:
            raise ValueError("message not in queue") from None

    def move_to_end(self, message: Any) -> None:
        self._items.pop(message, None)
        self._items[message] = None

    def __contains__(self, message: object) -> bool:
        return message in self._items

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int) -> Any:
        return list(self._items)[index]


def _messages_of(queue: Any) -> _MessageList:
    state = queue.__dict__
    messages = state.get("_fast_messages")
    if messages is None:  # a queue created before the patch: adopt its list
        _set_messages(queue, state.pop("_messages", []))
        messages = state["_fast_messages"]
    return messages


def _set_messages(queue: Any, value: Iterable[Any]) -> None:
    """`queue._messages = ...` (moto's __init__, purge and own delete assign lists): wrap and reindex."""
    messages = value if isinstance(value, _MessageList) else _MessageList(value)
    queue.__dict__["_fast_messages"] = messages
    queue.__dict__["_fast_handles"] = {
        handle: message for message in messages for handle in message.all_receipt_handles if handle
    }


def _handles_of(queue: Any) -> dict[str, Any]:
    _messages_of(queue)
    return queue.__dict__["_fast_handles"]


def _find(queue: Any, receipt_handle: str) -> Any:
    """The message of `queue` that has (or once had) this receipt handle, or None (moto's search)."""
    messages = _messages_of(queue)
    message = _handles_of(queue).get(receipt_handle)
    if message is not None and message in messages:
        return message
    # Not indexed (received through moto's own FIFO path): moto's linear search, same answer.
    return next((m for m in messages if m.had_receipt_handle(receipt_handle)), None)


def fast_moto_sqs(patch: Setter) -> None:
    """O(1) SQS receive, delete and visibility change on deep queues.

    What moto 5.2.5 does, per call, with N messages on the queue (in flight or not):
    - ReceiveMessage builds the list of all visible messages (two datetime clock reads per message),
      copies the set of in-flight message groups, and per message it returns checks the retention
      period through GetQueueAttributes, which counts the queue three times: O(N) per receive, ~0.8 s
      per call.
    - DeleteMessage scans the queue twice, building each message's list of receipt handles, and
      rebuilds the list; ChangeMessageVisibility scans it.
    - GetQueueAttributes with named attributes recomputes every attribute (three counts) per name.
    - SendMessage builds Queue.attributes (three counts of the whole queue) to read one flag.

    The replacements:
    - `Queue._messages` becomes an insertion-ordered dict (`_MessageList`) plus an index from every
      receipt handle a message has had to the message, kept up to date on receive and delete and
      rebuilt whenever moto assigns the list (init, purge).
    - ReceiveMessage on a standard queue walks the queue from the front and stops after `count`
      messages, with moto's own checks in moto's order (visible and not delayed, release from
      pending, maxReceiveCount -> moved to the DLQ, mark_received with the visibility timeout,
      retention), then moves the received messages to the back: in-flight messages no longer sit in
      front of visible ones, so a receive costs O(count + messages skipped), not O(N). The returned
      copy is shallow (moto deep-copies; the copy only has its attributes filtered, by reassignment).
      FIFO queues keep moto's receive (group ordering). Long polling waits and retries, as moto's
      does.
    - Delete and ChangeMessageVisibility find the message through the index (moto's linear search if
      the handle is not indexed), with moto's answers: an already deleted handle is fine, an unknown
      one is ReceiptHandleIsInvalid, the 12-hour visibility limit is checked.
    - Retention and visibility read the clock once (time.time(), the same clock moto reads through
      datetime), the retention period from the queue object rather than through GetQueueAttributes.
    - SendMessage skips the counts while it reads that flag.
    """
    from moto.sqs import models
    from moto.sqs.exceptions import InvalidAttributeName, InvalidParameterValue, ReceiptHandleIsInvalid

    backend = models.SQSBackend
    queue_class = models.Queue
    message_class = models.Message

    patch(queue_class, "_messages", property(_messages_of, _set_messages))
    patch(message_class, "visible", property(lambda self: time.time() * 1000 > self.visible_at))
    patch(message_class, "delayed", property(lambda self: time.time() * 1000 < self.delayed_until))

    def is_valid(self: Any, queue_name: str, message: Any) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention + message.sent_timestamp / 1000 > time.time())

    def count(visible: bool | None, delayed: bool | None) -> Any:
        def counted(self: Any) -> int:
            if getattr(_sending, "active", False):
                return 0  # SendMessage reads Queue.attributes for ContentBasedDeduplication only
            now = time.time() * 1000
            return sum(
                1
                for m in list(_messages_of(self)._items)
                if (visible is None or (now > m.visible_at) == visible)
                and (delayed is None or (now < m.delayed_until) == delayed)
            )

        return property(counted)

    # GetQueueAttributes' three counts: one clock read per count instead of two per message
    patch(queue_class, "approximate_number_of_messages_delayed", count(None, True))
    patch(queue_class, "approximate_number_of_messages_not_visible", count(False, None))
    patch(queue_class, "approximate_number_of_messages", count(True, False))

    patch(backend, "is_message_valid_based_on_retention_period", is_valid)

    # moto draws each of a receipt handle's 185 letters with its own random.choice call (~0.1 ms a
    # handle, once per message received); one random.choices call draws the same kind of string.
    def generate_receipt_handle() -> str:
        return "".join(random.choices(string.ascii_lowercase, k=185))  # as moto, not a secret

    patch(models, "generate_receipt_handle", generate_receipt_handle)

    def receive_standard(
        self: Any, queue: Any, count: int, visibility_timeout: int, names: list[str]
    ) -> list[Any]:
        messages = _messages_of(queue)
        handles = _handles_of(queue)
        pending = queue.pending_messages
        max_receive = None
        if queue.dead_letter_queue is not None and queue.redrive_policy:
            max_receive = queue.redrive_policy["maxReceiveCount"]
        now_ms = time.time() * 1000
        retain_until_ms = now_ms - int(queue.message_retention_period) * 1000
        result: list[Any] = []
        received: list[Any] = []
        to_dlq: list[Any] = []
        for message in messages._items:  # one request at a time: nothing else changes it
            if not (now_ms > message.visible_at and now_ms >= message.delayed_until):
                continue
            pending.discard(message)  # visible again: its consumer timed out
            if max_receive is not None and message.approximate_receive_count >= max_receive:
                to_dlq.append(message)
                continue
            pending.add(message)
            message.mark_received(visibility_timeout=visibility_timeout)
            received.append(message)
            if message.sent_timestamp <= retain_until_ms:
                break  # moto's answer to an expired message: stop here
            returned = copy.copy(message)
            models._filter_message_attributes(returned, names)
            result.append(returned)
            if len(result) >= count:
                break
        for message in received:
            messages.move_to_end(message)
            handles[message.receipt_handle] = message
        for message in to_dlq:
            messages.remove(message)
            for handle in message.all_receipt_handles:
                handles.pop(handle, None)
            queue.dead_letter_queue.add_message(message)
        return result

    original_receive = backend.receive_message

    def receive_message(
        self: Any,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> list[Any]:
        names = message_attribute_names or []
        polling_end = time.time() + (wait_seconds_timeout or 0)
        while True:
            queue = self.get_queue(queue_name)
            if queue.fifo_queue:
                result: list[Any] = original_receive(self, queue_name, count, 0, visibility_timeout, names)
            else:
                result = receive_standard(self, queue, count, visibility_timeout, names)
            remaining = polling_end - time.time()
            if result or not wait_seconds_timeout or remaining <= 0:
                return result
            queue.wait_for_messages(min(1.0, remaining))

    patch(backend, "receive_message", receive_message)

    def delete_message(self: Any, receipt_handle: str) -> None:
        if receipt_handle in self.deleted_messages:
            return  # already deleted: moto (and SQS) accept it again
        message = _find(self, receipt_handle)
        if message is None:
            raise ReceiptHandleIsInvalid()
        _messages_of(self).remove(message)
        self.pending_messages.discard(message)
        self.deleted_messages.update(message.all_receipt_handles)
        handles = _handles_of(self)
        for handle in message.all_receipt_handles:
            handles.pop(handle, None)

    patch(queue_class, "delete_message", delete_message)

    def change_message_visibility(
        self: Any, queue_name: str, receipt_handle: str, visibility_timeout: int
    ) -> None:
        queue = self.get_queue(queue_name)
        message = _find(queue, receipt_handle)
        if message is None:
            raise ReceiptHandleIsInvalid
        given = time.time() * 1000 + int(visibility_timeout) * 1000
        if given - message.sent_timestamp > 43200 * 1000:
            raise InvalidParameterValue(
                f"Value {visibility_timeout} for parameter VisibilityTimeout is invalid. Reason: Total "
                "VisibilityTimeout for the message is beyond the limit [43200 seconds]"
            )
        message.change_visibility(visibility_timeout)
        if message.visible:
            queue.pending_messages.discard(message)

    patch(backend, "change_message_visibility", change_message_visibility)

    original_attributes = backend.get_queue_attributes

    def get_queue_attributes(self: Any, queue_name: str, attribute_names: list[str]) -> dict[str, Any]:
        if not attribute_names or "All" in attribute_names:
            return original_attributes(self, queue_name, attribute_names)
        # moto recomputes every attribute (three counts of the queue) once or twice per name
        queue = self.get_queue(queue_name)
        valid = ["All", *queue.BASE_ATTRIBUTES, *queue.FIFO_ATTRIBUTES, *queue.KMS_ATTRIBUTES]
        invalid = next((name for name in attribute_names if name not in valid), None)
        if invalid is not None:
            raise InvalidAttributeName(invalid)
        everything = queue.attributes
        return {name: everything[name] for name in attribute_names if everything.get(name) is not None}

    patch(backend, "get_queue_attributes", get_queue_attributes)

    # SendMessage builds Queue.attributes (three counts of the whole queue) to read one flag: O(N) per
    # message. The counts are skipped inside it.
    send_message = backend.send_message

    def send_without_counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        _sending.active = True
        try:
            return send_message(self, *args, **kwargs)
        finally:
            _sending.active = False

    patch(backend, "send_message", send_without_counting)


# -- DynamoDB ----------------------------------------------------------------------------------------


def fast_moto_transactions(patch: Setter) -> None:
    """Make moto 5.2.5's TransactWriteItems cost what it costs in DynamoDB.

    To roll back, moto deep-copies the whole table once per item of the transaction (O(items x table),
    seconds per 100-item call on a table of thousands; DynamoDB: milliseconds), and a rollback puts
    that copy back. The replacement keeps moto's own checks and writes, snapshots only the items the
    transaction touches and restores only them. What our code can observe is unchanged: the same
    condition checks, the same TransactionCanceledException with its cancellation reasons,
    all-or-nothing writes.
    """
    from types import SimpleNamespace

    from moto.dynamodb import models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    backend = models.DynamoDBBackend

    def deepcopy(value: Any, memo: Any = None) -> Any:
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    patch(models, "copy", SimpleNamespace(deepcopy=deepcopy))
    original = backend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved: list[tuple[Any, Any, Any]] = []
        for entry in transact_items:
            for op in entry.values():
                table = self.tables.get(op.get("TableName"))
                key = op.get("Item") or op.get("Key") or {}
                if table is None or table.hash_key_attr not in key:
                    continue  # moto's own validation answers
                hash_value = DynamoType(key[table.hash_key_attr])
                saved.append((table, hash_value, copy.deepcopy(table.items.get(hash_value))))
        try:
            original(self, transact_items)
        except Exception:
            for table, hash_value, before in reversed(saved):
                if before is None:
                    table.items.pop(hash_value, None)
                else:
                    table.items[hash_value] = before
            raise

    patch(backend, "transact_write_items", transact_write_items)


def fast_moto_conditions(patch: Setter) -> None:
    """Parse each DynamoDB condition expression once, not twice per item of every request.

    moto 5.2.5 lexes and parses a ConditionExpression from scratch every time it checks one, twice per
    item of a TransactWriteItems (once to validate the names, once to evaluate): most of the time of a
    100-claim transaction, where DynamoDB takes milliseconds for the whole call. A
    parse depends only on the expression and its attribute names and values, and the tree it returns
    is only read (`Op.expr(item)`), so the parser of an identical (expression, names, values) is
    reused: the same tree, the same names found, the same errors (a failed parse is not kept).
    """
    from moto.dynamodb import comparisons, responses

    original = comparisons.create_condition_expression_parser

    class _ParsedOnce:
        def __init__(self, parser: Any) -> None:
            self._parser = parser
            self._tree: Any = None
            self._lock = threading.Lock()

        def parse(self) -> Any:
            with self._lock:
                if self._tree is None:
                    self._tree = self._parser.parse()
                return self._tree

        def __getattr__(self, name: str) -> Any:  # expr_attr_names_found, ...
            return getattr(self._parser, name)

    parsers: dict[tuple[str, str, str], _ParsedOnce] = {}

    def create_condition_expression_parser(expression: Any, names: Any, values: Any) -> Any:
        if not expression:
            return original(expression, names, values)
        # repr: equal reprs are equal dicts (same parse); a different key order only misses the cache
        key = (expression, repr(names), repr(values))
        parser = parsers.get(key)
        if parser is None:
            if len(parsers) >= 512:
                parsers.clear()
            parser = parsers[key] = _ParsedOnce(original(expression, names, values))
        return parser

    patch(comparisons, "create_condition_expression_parser", create_condition_expression_parser)
    patch(responses, "create_condition_expression_parser", create_condition_expression_parser)


def fast_moto_json_requests(patch: Setter) -> None:
    """Parse JSON request members by the keys a request has, not by every member its model declares.

    moto 5.2.5 parses every JSON-protocol request (DynamoDB, Batch, ...) against the botocore model,
    visiting each member of each structure, present or not: a DynamoDB AttributeValue declares ten
    members (S, N, B, ...) and has one, so parsing a 100-Put TransactWriteItems costs as much as
    moto's whole transaction. This parses the members present, each with moto's own member
    parser, and returns the same dict in the model's member order (same keys, same values, None and
    unknown keys dropped as before). The map from wire name to member is kept on the shape.
    """
    from moto.core import parse

    parser_class = parse.BaseJSONParser

    def members_by_wire_name(shape: Any) -> dict[str, tuple[int, str, Any]]:
        index = shape.__dict__.get("_fast_wire_names")
        if index is None:
            index = {
                member.serialization.get("name", name): (position, name, member)
                for position, (name, member) in enumerate(shape.members.items())
            }
            shape.__dict__["_fast_wire_names"] = index
        return index

    def _parse_structure(self: Any, shape: Any, value: Any) -> Any:
        if shape.is_document_type:
            return value
        if value is None:
            return None  # "null" on the wire stays None (moto's answer)
        index = members_by_wire_name(shape)
        present = [(index[wire], raw) for wire, raw in value.items() if wire in index and raw is not None]
        if len(present) > 1:
            present.sort(key=lambda entry: entry[0][0])
        parsed = self.MAP_TYPE()
        for (_position, name, member), raw in present:
            parsed[name] = self._parse_shape(member, raw)
        return parsed

    patch(parser_class, "_parse_structure", _parse_structure)


SPEEDUPS: dict[str, Callable[[Setter], None]] = {
    "server": fast_moto_server,
    "sqs": fast_moto_sqs,
    "transactions": fast_moto_transactions,
    "conditions": fast_moto_conditions,
    "json_requests": fast_moto_json_requests,
}


# -- the event source mapping's pollers ------------------------------------------------------------

# What ReceiveMessage with MessageSystemAttributeNames=["All"] returns (moto's responses.receive_message).
_SYSTEM_ATTRIBUTES = (
    ("SenderId", "sender_id"),
    ("SentTimestamp", "sent_timestamp"),
    ("ApproximateReceiveCount", "approximate_receive_count"),
    ("ApproximateFirstReceiveTimestamp", "approximate_first_receive_timestamp"),
    ("MessageDeduplicationId", "deduplication_id"),
    ("MessageGroupId", "group_id"),
    ("SequenceNumber", "sequence_number"),
)


class DirectQueue:
    """The pollers' queue (emulator/mapping_queue.py `PollerQueue`) through moto's SQS backend in-process.

    In AWS the event source mapping's pollers are Lambda's own fleet and cost the function nothing.
    In the emulator, a 10,000-object burst means ~2,200 ReceiveMessage and DeleteMessageBatch round
    trips over loopback HTTP (botocore, werkzeug, moto's routing), each taking the server's lock:
    more time than the function's own work. This calls the SQS backend's public methods (the same
    receive, with the queue's visibility timeout, receive count and redrive; the same delete and
    visibility change the HTTP API runs), holding the server's lock so each call stays atomic.
    Opt-in with the speedups: `bench/burst.py --fast-moto`.
    """

    def __init__(self, queue_url: str, lock: Any, account_id: str, region: str) -> None:
        from moto.sqs.models import sqs_backends

        self.queue_name = queue_url.rstrip("/").rsplit("/", 1)[-1]
        self._backend = sqs_backends[account_id][region]
        self._lock = lock

    @classmethod
    def factory(cls, lock: Any, account_id: str, region: str) -> Callable[[str, int], DirectQueue]:
        return lambda queue_url, _pollers: cls(queue_url, lock, account_id, region)

    def receive(self, max_messages: int) -> list[dict[str, Any]]:
        with self._lock:
            queue: Any = self._backend.get_queue(self.queue_name)  # its attributes are set dynamically
            visibility = int(queue.visibility_timeout)
            received = self._backend.receive_message(self.queue_name, max_messages, 0, visibility, ["All"])
            return [_as_response(message) for message in received]

    def delete(self, receipt_handles: list[str]) -> None:
        with self._lock:
            for handle in receipt_handles:
                self._backend.delete_message(self.queue_name, handle)

    def change_visibility(self, receipt_handle: str, visibility_timeout: int) -> None:
        with self._lock:
            self._backend.change_message_visibility(self.queue_name, receipt_handle, visibility_timeout)

    def is_empty(self) -> bool:
        """Nothing visible and nothing in flight (GetQueueAttributes' two counts)."""
        with self._lock:
            queue = self._backend.get_queue(self.queue_name)
            return (
                queue.approximate_number_of_messages + queue.approximate_number_of_messages_not_visible == 0
            )


def _as_response(message: Any) -> dict[str, Any]:
    """A moto message as ReceiveMessage's response (and boto3) shows it."""
    attributes = {}
    for name, attribute in _SYSTEM_ATTRIBUTES:
        value = getattr(message, attribute, None)
        if value is not None:
            attributes[name] = str(value)
    response: dict[str, Any] = {
        "MessageId": message.id,
        "ReceiptHandle": message.receipt_handle,
        "MD5OfBody": message.body_md5,
        "Body": message.body,
        "Attributes": attributes,
    }
    if message.message_attributes:
        response["MessageAttributes"] = {
            name: {**value, "BinaryValue": base64.b64decode(value["BinaryValue"])}
            if isinstance(value.get("BinaryValue"), str)
            else dict(value)
            for name, value in message.message_attributes.items()
        }
        response["MD5OfMessageAttributes"] = message.attribute_md5
    return response
