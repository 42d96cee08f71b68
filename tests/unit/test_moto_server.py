"""The emulator's moto server: one request at a time through moto, interceptors before it, listeners after.

moto as released is not thread-safe where our functions lean on it (a failed TransactWriteItems puts
back a copy of the whole table taken when it started; an SQS delete rebuilds the queue's message list),
so the WSGI wrapper in front of moto must never let two requests into it at once. These tests drive
the wrapper with a stand-in for moto's application.
"""

from __future__ import annotations

import io
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from emulator.moto_server import DelayedMessages, OneRequestAtATime, RequestCounts, WireAnswer, WireRequest


class SlowApp:
    """A WSGI app that takes 20 ms per request and remembers the most requests it ever had at once."""

    def __init__(self) -> None:
        self.inside = 0
        self.most_at_once = 0
        self.bodies: list[bytes] = []
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        with self._lock:
            self.inside += 1
            self.most_at_once = max(self.most_at_once, self.inside)
        self.bodies.append(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
        time.sleep(0.02)
        with self._lock:
            self.inside -= 1
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"Successful": [{"Id": "a"}]}']


def environ(body: dict[str, Any], target: str = "AmazonSQS.SendMessage", path: str = "/") -> dict[str, Any]:
    data = json.dumps(body).encode()
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "HTTP_X_AMZ_TARGET": target,
        "CONTENT_LENGTH": str(len(data)),
        "wsgi.input": io.BytesIO(data),
    }


def call(app: OneRequestAtATime, env: dict[str, Any]) -> tuple[str, bytes]:
    answered: list[str] = []
    body = b"".join(app(env, lambda status, _headers, _exc=None: answered.append(status)))
    return answered[0], body


def test_concurrent_requests_reach_moto_one_at_a_time():
    moto = SlowApp()
    app = OneRequestAtATime(moto)

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda n: call(app, environ({"n": n})), range(16)))

    assert moto.most_at_once == 1
    assert [status for status, _ in answers] == ["200 OK"] * 16


def test_an_interceptor_answers_before_moto_and_a_listener_sees_what_moto_read():
    moto = SlowApp()
    app = OneRequestAtATime(moto)
    seen: list[tuple[Any, int]] = []
    app.interceptors.append(
        lambda request: (
            WireAnswer.aws_json_error(429, "TooManyRequestsException", "slow down")
            if request.path == "/v1/submitjob"
            else None
        )
    )
    app.listeners.append(lambda request, status, _body: seen.append((request.json(), status)))

    refused = call(app, environ({}, target="", path="/v1/submitjob"))
    sent = call(app, environ({"QueueUrl": "http://x/123/q", "MessageBody": "hi"}))
    assert sent[0] == "200 OK"

    assert refused[0].startswith("429")
    assert json.loads(refused[1])["__type"] == "TooManyRequestsException"
    assert len(moto.bodies) == 1  # the refused call never reached moto
    assert json.loads(moto.bodies[0])["MessageBody"] == "hi"  # moto still read the whole body
    assert seen == [({"QueueUrl": "http://x/123/q", "MessageBody": "hi"}, 200)]


def test_messages_sent_with_a_delay_are_noted_once_each_until_released():
    delayed = DelayedMessages()
    queue = "http://127.0.0.1:1/123456789012/storm"
    send = {"QueueUrl": queue, "MessageBody": "close", "DelaySeconds": 300}
    batch = {
        "QueueUrl": queue,
        "Entries": [
            {"Id": "a", "MessageBody": "later", "DelaySeconds": 60},
            {"Id": "b", "MessageBody": "now"},
            {"Id": "c", "MessageBody": "refused", "DelaySeconds": 60},
        ],
    }

    delayed(WireRequest(environ(send)), 200, b"{}")
    delayed(
        WireRequest(environ(batch, target="AmazonSQS.SendMessageBatch")),
        200,
        b'{"Successful": [{"Id": "a"}]}',
    )
    delayed(WireRequest(environ(send)), 400, b"{}")  # moto refused it: nothing to release

    assert [m.body for m in delayed.take_pending("other")] == []
    assert [m.body for m in delayed.take_pending("storm")] == ["close", "later"]
    assert delayed.take_pending("storm") == []


def test_requests_are_counted_per_operation_and_later_pages_apart():
    moto = SlowApp()
    app = OneRequestAtATime(moto)
    counts = RequestCounts()
    app.listeners.append(counts)
    by_path = "AmazonSSM.GetParametersByPath"

    for _read in range(2):  # two reads of a three-page path
        call(app, environ({"Path": "/job-types"}, target=by_path))
        call(app, environ({"Path": "/job-types", "NextToken": "page-2"}, target=by_path))
        call(app, environ({"Path": "/job-types", "NextToken": "page-3"}, target=by_path))
    call(app, environ({"Path": "/job-types", "NextToken": ""}, target=by_path))  # empty: a first page
    call(app, environ({}, target="", path="/v1/submitjob"))
    call(app, environ({"QueueUrl": "http://x/123/q", "MessageBody": "hi"}))

    assert counts.requests(by_path) == 7
    assert counts.calls(by_path) == 3
    assert counts.calls("POST /v1/submitjob") == 1
    assert counts.calls("AmazonSQS.SendMessage") == 1
    assert counts.calls("AmazonSSM.GetParameter") == 0
    counts.clear()
    assert counts.requests(by_path) == 0


def test_a_request_an_interceptor_answers_is_not_counted():
    app = OneRequestAtATime(SlowApp())
    counts = RequestCounts()
    app.listeners.append(counts)
    app.interceptors.append(lambda _request: WireAnswer.aws_json_error(429, "TooManyRequestsException", "no"))

    call(app, environ({}, target="", path="/v1/submitjob"))

    assert counts.requests("POST /v1/submitjob") == 0
