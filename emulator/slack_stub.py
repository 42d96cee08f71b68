"""A local stand-in for Slack: incoming webhooks, interactions' response URLs, button clicks signed and
sent the way Slack sends them, and the Web API's `usergroups.users.list` (standard library only, loopback
only).

    with SlackStandIn() as slack:
        url = slack.url                      # http://127.0.0.1:PORT/services/T000/B000/XXXX
        slack.script("rate_limited", "ok")   # the next two posts: 429 (Retry-After: 1), then 200
        ...
        slack.messages                       # every accepted JSON payload, in order
        slack.requests                       # every request, with the status it was answered and
                                             # when it arrived (received_at: rates per webhook)
        event = slack.click(message, "rerun", user_id="U0ONCALL", signing_secret=secret)
        slack.responses                      # what was posted to the clicks' response URLs
        slack.add_user_group("S0ONCALL", ["U0ALICE"])   # members usergroups.users.list answers
        slack.api_url                        # http://127.0.0.1:PORT/api/ (SlackApiUrl)

Replies follow Slack's: 200 `ok`; 400 `invalid_payload` / `no_text` / `invalid_blocks`; 403
`action_prohibited`; 404 `no_service` / `channel_not_found`; 410 `channel_is_archived`; 429 `rate_limited`
with Retry-After; 500 `internal_error`. Accepted payloads are validated like Slack does (text or blocks,
at most 50 blocks, section text <= 3000, header <= 150), so a malformed message fails here too.

The Web API (`<api_url>usergroups.users.list`, form or query `usergroup`) checks the Bearer token
against the stand-in app's bot token and its scopes, and answers as Slack does, HTTP 200 with
`{"ok": true, "users": [...]}` or `{"ok": false, "error": ...}`: `not_authed` (no token), `invalid_auth`
(another token), `missing_scope` (with `needed` and `provided`), `no_such_subteam`; `fail_api(...)` makes
the next calls answer an error of choice (`ratelimited` is HTTP 429 with Retry-After, as Slack sends it)
and `delay_api(seconds)` makes them slow.

`SlackStandInProcess` serves one from a process of its own, for benchmarks that time arrivals.
`python -m emulator.slack_stub` runs one in the foreground and prints each message it receives.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import multiprocessing
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlencode

MAX_HANG_SECONDS = 30.0
WEBHOOK_PATH = "/services/T000/B000/XXXX"
RESPONSE_PATH = "/actions/T000/"  # response URLs Slack hands out with each interaction
# The stand-in Slack app's signing secret: the emulator stores it under the stack's signing secret name,
# as a user stores their app's (docs/alerts.md).
APP_SIGNING_SECRET = "emulator-signing-secret-0123456789abcdef"  # noqa: S105 - a local stand-in
# The stand-in app's bot token: stored under SlackBotTokenSecretName when the stack names one.
APP_BOT_TOKEN = "xoxb-000-000-emulatorbottoken"  # noqa: S105 - a local stand-in
API_PATH = "/api/"
APP_BOT_SCOPES = frozenset({"incoming-webhook", "usergroups:read"})


@dataclass(frozen=True)
class Reply:
    """How the stand-in answers one post. `hang` waits `delay` seconds, then answers 503 (not recorded)."""

    kind: str
    status: int
    body: str
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0

    @classmethod
    def ok(cls) -> Reply:
        return cls("ok", 200, "ok")

    @classmethod
    def rate_limited(cls, retry_after: int = 1) -> Reply:
        return cls("rate_limited", 429, "rate_limited", (("Retry-After", str(retry_after)),))

    @classmethod
    def server_error(cls, status: int = 500) -> Reply:
        return cls("server_error", status, "internal_error")

    @classmethod
    def no_service(cls) -> Reply:
        return cls("no_service", 404, "no_service")

    @classmethod
    def invalid_payload(cls) -> Reply:
        return cls("invalid_payload", 400, "invalid_payload")

    @classmethod
    def channel_not_found(cls) -> Reply:
        return cls("channel_not_found", 404, "channel_not_found")

    @classmethod
    def channel_is_archived(cls) -> Reply:
        return cls("channel_is_archived", 410, "channel_is_archived")

    @classmethod
    def action_prohibited(cls) -> Reply:
        return cls("action_prohibited", 403, "action_prohibited")

    @classmethod
    def hang(cls, seconds: float = 10.0) -> Reply:
        return cls("hang", 503, "service_unavailable", delay=min(max(seconds, 0.0), MAX_HANG_SECONDS))

    @classmethod
    def of(cls, spec: str | Reply, **options: Any) -> Reply:
        """A Reply from its name (`"rate_limited"`, `"hang"`...) plus that constructor's options."""
        if isinstance(spec, Reply):
            return spec
        factory = getattr(cls, spec, None)
        if spec.startswith("_") or spec == "of" or not callable(factory):
            raise ValueError(f"unknown Slack stand-in reply {spec!r}")
        reply = factory(**options)
        assert isinstance(reply, Reply)
        return reply


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    status: int
    reply: str  # the Reply kind, or the validation error answered
    body: str
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    received_at: float = 0.0  # time.time() when the request arrived (before any hang), for rates


def validation_error(payload: Any) -> str | None:
    """The error code Slack would answer for `payload`, or None if it would post it."""
    if not isinstance(payload, dict):
        return "invalid_payload"
    blocks = payload.get("blocks")
    text = payload.get("text")
    if not (isinstance(text, str) and text.strip()) and not blocks:
        return "no_text"
    if blocks is None:
        return None
    if not isinstance(blocks, list) or len(blocks) > 50:
        return "invalid_blocks"
    for block in blocks:
        if not isinstance(block, dict) or "type" not in block:
            return "invalid_blocks"
        text_obj = block.get("text")
        limit = 150 if block["type"] == "header" else 3000
        if isinstance(text_obj, dict) and len(str(text_obj.get("text", ""))) > limit:
            return "invalid_blocks"
        for item in block.get("fields") or []:
            if isinstance(item, dict) and len(str(item.get("text", ""))) > 2000:
                return "invalid_blocks"
        if len(block.get("fields") or []) > 10:
            return "invalid_blocks"
    return None


class Served:
    """Started on entering a `with` block, stopped on leaving it."""

    def start(self) -> str:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class SlackStandIn(Served):
    """A threaded HTTP server on 127.0.0.1 (random free port) answering like a Slack incoming webhook."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, path: str = WEBHOOK_PATH) -> None:
        self._host, self._port, self.path = host, port, path
        self._lock = threading.Lock()
        self._script: deque[Reply] = deque()
        self._default = Reply.ok()
        self._messages: list[Any] = []
        self._responses: list[Any] = []
        self._requests: list[RecordedRequest] = []
        self._user_groups: dict[str, list[str]] = {}
        self.bot_scopes: set[str] = set(APP_BOT_SCOPES)
        self._api_errors: deque[str] = deque()
        self._api_delay = 0.0
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> str:
        """Start serving (idempotent) and return the webhook URL."""
        if self._server is None:
            self._stopping.clear()
            self._server = ThreadingHTTPServer((self._host, self._port), self._handler_class())
            self._server.daemon_threads = True
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="slack-stand-in",
                daemon=True,
            )
            self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving; requests still hanging are released at once."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server, self._thread = None, None

    @property
    def url(self) -> str:
        host, port = self._server_address()
        return f"http://{host}:{port}{self.path}"

    @property
    def api_url(self) -> str:
        """The Web API's base URL, as https://slack.com/api/ is Slack's."""
        host, port = self._server_address()
        return f"http://{host}:{port}{API_PATH}"

    def _server_address(self) -> tuple[str, int]:
        if self._server is None:
            raise RuntimeError("SlackStandIn is not running: call start() first")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    # behaviour -------------------------------------------------------------------------------------------

    def script(self, *replies: str | Reply) -> None:
        """Answer the next posts with `replies`, in order (names or Reply objects), then the default mode."""
        with self._lock:
            self._script.extend(Reply.of(r) for r in replies)

    def set_mode(self, mode: str | Reply, **options: Any) -> None:
        """Answer every post (after any scripted replies) this way, e.g. `set_mode("hang", seconds=3)`."""
        with self._lock:
            self._default = Reply.of(mode, **options)

    def reset(self) -> None:
        """Forget recorded traffic, scripted replies and user groups; back to answering `ok`."""
        with self._lock:
            self._script.clear()
            self._default = Reply.ok()
            self._messages.clear()
            self._responses.clear()
            self._requests.clear()
            self._user_groups.clear()
            self.bot_scopes = set(APP_BOT_SCOPES)
            self._api_errors.clear()
            self._api_delay = 0.0

    def add_user_group(self, group_id: str, members: list[str]) -> None:
        """A user group of the workspace (usergroups.users.list answers its members)."""
        with self._lock:
            self._user_groups[group_id] = list(members)

    def fail_api(self, *errors: str) -> None:
        """The next Web API calls answer these Slack error codes, in order (`ratelimited`: HTTP 429)."""
        with self._lock:
            self._api_errors.extend(errors)

    def delay_api(self, seconds: float) -> None:
        """Every Web API call waits this long before answering (0: at once)."""
        with self._lock:
            self._api_delay = min(max(seconds, 0.0), MAX_HANG_SECONDS)

    @property
    def api_calls(self) -> list[RecordedRequest]:
        """Every Web API request received, with the status answered (a copy)."""
        return [r for r in self.requests if r.path.startswith(API_PATH)]

    @property
    def messages(self) -> list[Any]:
        """Every payload Slack would have posted, in arrival order (a copy)."""
        with self._lock:
            return list(self._messages)

    @property
    def responses(self) -> list[Any]:
        """Every payload posted to an interaction's response URL, in arrival order (a copy)."""
        with self._lock:
            return list(self._responses)

    def response_url(self) -> str:
        """A fresh response URL, like the one Slack puts in each interaction payload."""
        host, port = self._server_address()
        return f"http://{host}:{port}{RESPONSE_PATH}{uuid.uuid4().int % 10**12}/{uuid.uuid4().hex[:24]}"

    def click(
        self,
        message: dict[str, Any],
        action_id: str,
        *,
        user_id: str,
        signing_secret: str,
        timestamp: int | None = None,
    ) -> dict[str, Any]:
        """What reaches a function URL when `user_id` clicks the button `action_id` of `message` (as
        posted): Slack's block_actions payload, form-encoded, signed, delivered by Lambda."""
        (button,) = [
            element
            for block in message.get("blocks", [])
            if block.get("type") == "actions"
            for element in block.get("elements", [])
            if element.get("action_id") == action_id
        ]
        payload = block_actions_payload(message, button, user_id=user_id, response_url=self.response_url())
        return signed_function_url_event(payload, signing_secret, timestamp=timestamp)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received, accepted or not, with the status answered (a copy)."""
        with self._lock:
            return list(self._requests)

    def wait_for_messages(self, count: int, timeout: float = 5.0) -> list[Any]:
        """Block until at least `count` messages arrived (or `timeout`), then return them."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.messages

    # internals -------------------------------------------------------------------------------------------

    def _next_reply(self) -> Reply:
        with self._lock:
            return self._script.popleft() if self._script else self._default

    def _api_answer(self, method: str, token: str, fields: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """Slack's Web API answer (HTTP status, JSON body) to `method` called with `token`."""
        with self._lock:
            scripted = self._api_errors.popleft() if self._api_errors else None
            groups = {k: list(v) for k, v in self._user_groups.items()}
            scopes = set(self.bot_scopes)
        if scripted == "ratelimited":
            return 429, {"ok": False, "error": "ratelimited"}
        if scripted:
            return 200, {"ok": False, "error": scripted}
        if method != "usergroups.users.list":
            return 200, {"ok": False, "error": "unknown_method"}
        if not token:
            return 200, {"ok": False, "error": "not_authed"}
        if not hmac.compare_digest(token, APP_BOT_TOKEN):
            return 200, {"ok": False, "error": "invalid_auth"}
        if "usergroups:read" not in scopes:
            provided = ",".join(sorted(scopes))
            return 200, {
                "ok": False,
                "error": "missing_scope",
                "needed": "usergroups:read",
                "provided": provided,
            }
        group_id = fields.get("usergroup", "")
        if not group_id:
            return 200, {"ok": False, "error": "invalid_arguments"}
        if group_id not in groups:
            return 200, {"ok": False, "error": "no_such_subteam"}
        return 200, {"ok": True, "users": groups[group_id]}

    def _record(self, request: RecordedRequest, accepted: bool) -> None:
        with self._lock:
            self._requests.append(request)
            if accepted and request.path.startswith(RESPONSE_PATH):
                self._responses.append(request.payload)
            elif accepted:
                self._messages.append(request.payload)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            received_at = 0.0  # time.time() when the request being answered arrived

            def log_message(self, format: str, *args: Any) -> None:  # silence stderr access logs
                return

            def do_GET(self) -> None:
                self.received_at = time.time()
                if self.path.startswith(API_PATH):
                    self._web_api("")
                    return
                self._answer(405, "invalid_method", kind="invalid_method")

            def do_POST(self) -> None:
                self.received_at = time.time()
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(min(length, 5_000_000)).decode("utf-8", "replace")
                if self.path.startswith(API_PATH):
                    self._web_api(raw)
                    return
                try:
                    payload: Any = json.loads(raw) if raw else None
                except ValueError:
                    payload = None
                headers = {k: v for k, v in self.headers.items()}

                if self.path.startswith(RESPONSE_PATH):  # an answer to an interaction: never scripted
                    problem = validation_error(payload)
                    status, body = (400, problem) if problem else (200, "ok")
                    self._answer(status, body, body, raw, payload, headers, accepted=problem is None)
                    return
                if not self.path.startswith("/services/"):
                    self._answer(
                        404, "no_service", kind="no_service", raw=raw, payload=payload, headers=headers
                    )
                    return
                reply = stand_in._next_reply()
                if reply.delay and stand_in._stopping.wait(reply.delay):
                    return  # stopping: drop the connection
                if reply.status != 200:
                    self._answer(
                        reply.status,
                        reply.body,
                        reply.kind,
                        raw,
                        payload,
                        headers,
                        extra_headers=reply.headers,
                    )
                    return
                problem = validation_error(payload)
                if problem is not None:
                    self._answer(400, problem, kind=problem, raw=raw, payload=payload, headers=headers)
                    return
                self._answer(200, "ok", kind="ok", raw=raw, payload=payload, headers=headers, accepted=True)

            def _web_api(self, raw: str) -> None:
                """A Web API call: arguments in the query or the form body, the token as a Bearer header."""
                path, _, query = self.path.partition("?")
                fields = {k: v[-1] for k, v in parse_qs(query).items()}
                if raw:
                    fields |= {k: v[-1] for k, v in parse_qs(raw).items()}
                authorization = self.headers.get("Authorization") or ""
                token = authorization[7:].strip() if authorization.startswith("Bearer ") else ""
                token = token or fields.get("token", "")
                with stand_in._lock:
                    delay = stand_in._api_delay
                if delay and stand_in._stopping.wait(delay):
                    return  # stopping: drop the connection
                status, answer = stand_in._api_answer(path[len(API_PATH) :], token, fields)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "authorization"}
                self._answer(
                    status,
                    json.dumps(answer),
                    str(answer.get("error") or "ok"),
                    raw,
                    {k: v for k, v in fields.items() if k != "token"},
                    headers,
                    extra_headers=(("Retry-After", "30"),) if status == 429 else (),
                    content_type="application/json; charset=utf-8",
                )

            def _answer(
                self,
                status: int,
                body: str,
                kind: str,
                raw: str = "",
                payload: Any = None,
                headers: dict[str, str] | None = None,
                extra_headers: tuple[tuple[str, str], ...] = (),
                accepted: bool = False,
                content_type: str = "text/html",
            ) -> None:
                stand_in._record(
                    RecordedRequest(
                        self.command, self.path, status, kind, raw, payload, headers or {}, self.received_at
                    ),
                    accepted,
                )
                data = body.encode("utf-8")
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in extra_headers:
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): like Slack, we answered anyway

        return Handler


# --------------------------------------------------------------------------------------------------------
# Interactions: what Slack sends an app's Interactivity Request URL when someone clicks a button


def slack_signature(signing_secret: str, timestamp: int, body: bytes) -> str:
    """X-Slack-Signature as Slack computes it ("Verifying requests from Slack")."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


def block_actions_payload(
    message: dict[str, Any], button: dict[str, Any], *, user_id: str, response_url: str
) -> dict[str, Any]:
    """A block_actions interaction for a click on `button` of `message`, with the fields Slack sends."""
    now = f"{time.time():.6f}"
    return {
        "type": "block_actions",
        "user": {
            "id": user_id,
            "username": f"user-{user_id.lower()}",
            "name": f"user-{user_id.lower()}",
            "team_id": "T000",
        },
        "api_app_id": "A000",
        "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": now, "channel_id": "C000", "is_ephemeral": False},
        "trigger_id": f"{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:16]}",
        "team": {"id": "T000", "domain": "local"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": "C000", "name": "alerts"},
        "message": {"type": "message", "subtype": "bot_message", "ts": now, "bot_id": "B000", **message},
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {
                "action_id": button.get("action_id"),
                "block_id": "actions",
                "text": button.get("text"),
                "value": button.get("value"),
                "type": "button",
                "action_ts": now,
            }
        ],
    }


def signed_function_url_event(
    payload: dict[str, Any], signing_secret: str, *, timestamp: int | None = None
) -> dict[str, Any]:
    """Slack's POST of `payload` (form-encoded, signed at `timestamp`, default now) as a Lambda function URL
    delivers it: payload format 2.0, lower-case headers, the form body base64-encoded."""
    sent_at = int(time.time()) if timestamp is None else timestamp
    body = urlencode({"payload": json.dumps(payload, separators=(",", ":"))}).encode()
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": str(sent_at),
        "x-slack-signature": slack_signature(signing_secret, sent_at, body),
    }
    return function_url_event(body, headers)


def function_url_event(body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """An HTTP POST as Lambda hands it to a function behind a function URL (payload format 2.0)."""
    host = "abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws"
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": {
            "host": host,
            "user-agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "accept": "application/json,*/*",
            "content-length": str(len(body)),
            "x-amzn-trace-id": f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}",
            "x-forwarded-for": "127.0.0.1",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https",
            **headers,
        },
        "requestContext": {
            "accountId": "anonymous",
            "apiId": host.split(".", 1)[0],
            "domainName": host,
            "domainPrefix": host.split(".", 1)[0],
            "http": {
                "method": "POST",
                "path": "/",
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "timeEpoch": int(time.time() * 1000),
        },
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }


# -- in a process of its own ----------------------------------------------------------------------


def _serve_in_this_process(connection: Any) -> None:
    """The stand-in process: serve, answer `requests` / `messages` with a copy, end on `stop`."""
    with SlackStandIn() as slack:
        connection.send(slack.url)
        while (command := connection.recv()) != "stop":
            connection.send(getattr(slack, command))


class SlackStandInProcess(Served):
    """A SlackStandIn served by a process of its own (spawned): when the emulator's process is busy
    (many threads sharing one interpreter lock), its threads would note a post's arrival late, and a
    benchmark measuring Slack's rate per webhook would measure that instead. Offers what the emulator
    reads: `url`, `api_url`, `requests`, `messages`, `start()`, `stop()`."""

    def __init__(self) -> None:
        self._connection: Any = None
        self._process: Any = None
        self._url = ""
        self._lock = threading.Lock()

    def start(self) -> str:
        if self._process is None:
            context = multiprocessing.get_context("spawn")
            self._connection, child = context.Pipe()
            self._process = context.Process(
                target=_serve_in_this_process, args=(child,), name="slack-stand-in", daemon=True
            )
            self._process.start()
            self._url = str(self._connection.recv())
        return self._url

    def stop(self) -> None:
        if self._process is not None:
            with self._lock:
                self._connection.send("stop")
            self._process.join(timeout=10)
            self._process, self._connection = None, None

    @property
    def url(self) -> str:
        if self._process is None:
            raise RuntimeError("SlackStandInProcess is not running: call start() first")
        return self._url

    @property
    def api_url(self) -> str:
        """The Web API's base URL (the emulator passes it as SlackApiUrl)."""
        return self.url.split("/services/", 1)[0] + API_PATH

    @property
    def requests(self) -> list[RecordedRequest]:
        return list(self._ask("requests"))

    @property
    def messages(self) -> list[Any]:
        return list(self._ask("messages"))

    def _ask(self, command: str) -> Any:
        with self._lock:
            if self._connection is None:
                raise RuntimeError("SlackStandInProcess is not running: call start() first")
            self._connection.send(command)
            return self._connection.recv()


def main() -> None:
    """Serve until Ctrl-C, printing each accepted message's fallback text to stdout."""
    with SlackStandIn() as slack:
        print(f"Slack stand-in listening: {slack.url}", file=sys.stderr, flush=True)
        seen = 0
        try:
            while True:
                messages = slack.wait_for_messages(seen + 1, timeout=1.0)
                for message in messages[seen:]:
                    print(json.dumps(message, indent=2), flush=True)
                seen = len(messages)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
