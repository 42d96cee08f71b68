"""A moto server on loopback that every boto3 client in this process talks to.

moto as released, behind a WSGI wrapper of our own:
- One lock around every request. moto's models are not thread-safe (a concurrent SQS delete can undo
  another, a failed TransactWriteItems restores a copy of the whole table over other writes), while
  the werkzeug server answers each request on its own thread. One request at a time makes every API
  call atomic, as it is in AWS; moto's Python work holds the interpreter lock anyway, so little is
  lost. A long poll (ReceiveMessage with WaitTimeSeconds) holds the server while it waits: the
  emulator's pollers never long-poll.
- Interceptors may answer a request before moto sees it (emulator/throttle.py answers SubmitJob over
  the rate limit with 429, as Batch does) or watch it; rewriters may change moto's answer into what AWS
  would say of a state moto cannot reach (emulator/running_jobs.py: a job still RUNNING); listeners see
  each request with the answer (`DelayedMessages` keeps every message sent with a delay, so the emulator
  can deliver it early; `RequestCounts` counts the requests of each operation, so a benchmark can count
  a function's calls).
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import os
import socket
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from emulator.process_environment import restore_environment

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"

_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    # Never read the developer's real ~/.aws profile or credentials.
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the wire --------------------------------------------------------------------------------------


class WireRequest:
    """One HTTP request to the server, as an interceptor or listener sees it."""

    def __init__(self, environ: dict[str, Any]) -> None:
        self.environ = environ
        self.method = str(environ.get("REQUEST_METHOD", ""))
        self.path = str(environ.get("PATH_INFO", ""))
        # JSON-protocol services (SQS, DynamoDB, ...) name the operation here; REST ones (Batch) use the path
        self.target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        self._body: bytes | None = None

    def body(self) -> bytes:
        """The request body, read once and put back for moto to read (call it before moto reads)."""
        if self._body is None:
            length = int(self.environ.get("CONTENT_LENGTH") or 0)
            self._body = self.environ["wsgi.input"].read(length) if length else b""
            self.environ["wsgi.input"] = io.BytesIO(self._body)
        return self._body

    def json(self) -> Any:
        return json.loads(self.body() or b"{}")


@dataclass(frozen=True)
class WireAnswer:
    """An HTTP answer given instead of moto's."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    @classmethod
    def aws_json_error(cls, status: int, code: str, message: str) -> WireAnswer:
        """An AWS error as rest-json services send it (code in the body and in x-amzn-ErrorType)."""
        body = json.dumps({"__type": code, "message": message}).encode()
        return cls(
            status,
            (
                ("Content-Type", "application/json"),
                ("x-amzn-ErrorType", code),
                ("x-amzn-RequestId", "00000000-0000-0000-0000-000000000000"),
                ("Content-Length", str(len(body))),
            ),
            body,
        )


Interceptor = Callable[[WireRequest], WireAnswer | None]
Rewriter = Callable[[WireRequest, int, bytes], bytes | None]  # a new body for moto's answer, or None
Listener = Callable[[WireRequest, int, bytes], None]

_REASONS = {200: "OK", 400: "Bad Request", 429: "Too Many Requests", 500: "Internal Server Error"}


class OneRequestAtATime:
    """moto's WSGI application behind one lock, with our interceptors in front, and rewriters and
    listeners after it."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.interceptors: list[Interceptor] = []
        self.rewriters: list[Rewriter] = []
        self.listeners: list[Listener] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = WireRequest(environ)
        # Read the body off the socket before taking the lock (a slow sender must not hold moto), and
        # so listeners can read it after moto has.
        request.body()
        for interceptor in list(self.interceptors):
            answer = interceptor(request)
            if answer is not None:
                reason = _REASONS.get(answer.status, "Error")
                start_response(f"{answer.status} {reason}", list(answer.headers))
                return [answer.body]
        answered: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answered[:] = [status, headers, exc_info]
            return lambda _data: None  # moto returns its body; it never writes through this

        with self.lock:
            chunks = self.app(environ, capture)
            try:
                body = b"".join(chunks)
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
        status, headers, exc_info = answered
        code = int(status.split(" ", 1)[0])
        for rewriter in list(self.rewriters):
            rewritten = rewriter(request, code, body)
            if rewritten is not None:
                body = rewritten
                headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
                headers.append(("Content-Length", str(len(body))))
        for listener in list(self.listeners):
            listener(request, code, body)
        start_response(status, headers, exc_info)
        return [body]


# -- SQS messages sent with a delay ----------------------------------------------------------------


@dataclass
class DelayedMessage:
    queue_name: str
    body: str
    attributes: dict[str, Any]  # MessageAttributes as sent (JSON protocol: BinaryValue in base64)
    due: float  # time.time() when SQS makes it visible
    released: bool = False

    def send_parameters(self) -> dict[str, Any]:
        """SendMessage parameters (boto3) for the same message without a delay."""
        attributes = {}
        for name, value in self.attributes.items():
            value = dict(value)
            if "BinaryValue" in value:
                value["BinaryValue"] = base64.b64decode(value["BinaryValue"])
            attributes[name] = value
        parameters: dict[str, Any] = {"MessageBody": self.body}
        if attributes:
            parameters["MessageAttributes"] = attributes
        return parameters


@dataclass
class DelayedMessages:
    """Every SQS message sent with DelaySeconds > 0 that moto accepted, noted from the wire.

    moto offers no API to make a delayed message visible early, and a client cannot see it until its
    delay ends. The emulator fast-forwards a delay by sending the same message again without one
    (`Emulator.release_delayed`); the original still arrives when its delay ends, as the duplicate
    SQS's at-least-once delivery allows (and the code must already tolerate).
    """

    messages: list[DelayedMessage] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    _SEND = "AmazonSQS.SendMessage"
    _SEND_BATCH = "AmazonSQS.SendMessageBatch"

    def __call__(self, request: WireRequest, status: int, body: bytes) -> None:
        if request.target not in (self._SEND, self._SEND_BATCH) or status != 200:
            return
        sent = request.json()
        queue_name = str(sent.get("QueueUrl", "")).rstrip("/").rsplit("/", 1)[-1]
        if request.target == self._SEND:
            entries = [sent]
        else:
            accepted = {entry.get("Id") for entry in json.loads(body or b"{}").get("Successful", [])}
            entries = [entry for entry in sent.get("Entries", []) if entry.get("Id") in accepted]
        now = time.time()
        with self._lock:
            for entry in entries:
                delay = int(entry.get("DelaySeconds") or 0)
                if delay > 0:
                    self.messages.append(
                        DelayedMessage(
                            queue_name,
                            str(entry.get("MessageBody", "")),
                            dict(entry.get("MessageAttributes") or {}),
                            now + delay,
                        )
                    )

    def take_pending(self, queue_name: str) -> list[DelayedMessage]:
        """The messages of `queue_name` whose delay has not ended and that were not taken before."""
        now = time.time()
        with self._lock:
            pending = [
                m for m in self.messages if m.queue_name == queue_name and not m.released and m.due > now
            ]
            for message in pending:
                message.released = True
        return pending

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()


# -- requests answered, by operation ---------------------------------------------------------------


class RequestCounts:
    """How many requests moto answered, by operation, noted from the wire.

    The operation is the X-Amz-Target of JSON-protocol services (`AmazonSSM.GetParametersByPath`,
    `AmazonSQS.SendMessage`...), else `METHOD path` (REST services: `POST /v1/submitjob`). A paginated
    call's later pages carry a NextToken: `calls()` counts first pages only (whole calls, e.g. one read
    of an SSM path however many pages it takes), `requests()` every page.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._later_pages: Counter[str] = Counter()

    def __call__(self, request: WireRequest, _status: int, _body: bytes) -> None:
        operation = request.target or f"{request.method} {request.path}"
        later_page = b'"NextToken"' in request.body() and bool(_next_token(request))
        with self._lock:
            self._requests[operation] += 1
            if later_page:
                self._later_pages[operation] += 1

    def requests(self, operation: str) -> int:
        """Every request of `operation` moto answered (each page of a paginated call)."""
        with self._lock:
            return self._requests[operation]

    def calls(self, operation: str) -> int:
        """The requests of `operation` that started a call (no NextToken: its first page)."""
        with self._lock:
            return self._requests[operation] - self._later_pages[operation]

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._later_pages.clear()


def _next_token(request: WireRequest) -> str:
    try:
        sent = request.json()
    except ValueError:
        return ""
    return str(sent.get("NextToken") or "") if isinstance(sent, dict) else ""


# -- the server ------------------------------------------------------------------------------------


class MotoServer:
    """moto's server on 127.0.0.1 (one request at a time), with Batch in no-Docker mode."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.app = OneRequestAtATime(DomainDispatcherApplication(create_backend_app))
        self.delayed_messages = DelayedMessages()
        self.request_counts = RequestCounts()
        self.app.listeners.extend([self.delayed_messages, self.request_counts])
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._saved_env: dict[str, str | None] = {}

    def start(self) -> MotoServer:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = make_server(
            "127.0.0.1", self.port, self.app, threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="moto-server", daemon=True
        )
        self._thread.start()
        self._set_env({**_AWS_ENV, "AWS_ENDPOINT_URL": self.endpoint})
        self._post("/moto-api/config", {"batch": {"use_docker": False}})
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None
        restore_environment(self._saved_env)
        self._saved_env.clear()

    def reset(self) -> None:
        """Drop every resource in the server (a fresh account) but keep it running."""
        self._post("/moto-api/reset", {})
        self._post("/moto-api/config", {"batch": {"use_docker": False}})
        self.delayed_messages.clear()
        self.request_counts.clear()

    @contextmanager
    def intercepting(self, interceptor: Interceptor) -> Iterator[None]:
        """Let `interceptor` see (and maybe answer) every request while the block runs."""
        self.app.interceptors.append(interceptor)
        try:
            yield
        finally:
            with contextlib.suppress(ValueError):
                self.app.interceptors.remove(interceptor)

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _set_env(self, values: dict[str, str]) -> None:
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    def _post(self, path: str, payload: dict[str, Any]) -> None:
        request = urllib.request.Request(  # noqa: S310 - loopback URL we built ourselves
            self.endpoint + path, data=json.dumps(payload).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310
            pass


@contextmanager
def failing_batch_jobs() -> Iterator[None]:
    """Jobs submitted inside this block FAIL in moto's no-Docker Batch (it reads this variable per job)."""
    previous = os.environ.get("MOTO_SIMPLE_BATCH_FAIL_AFTER")
    os.environ["MOTO_SIMPLE_BATCH_FAIL_AFTER"] = "0"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("MOTO_SIMPLE_BATCH_FAIL_AFTER", None)
        else:
            os.environ["MOTO_SIMPLE_BATCH_FAIL_AFTER"] = previous
