"""The failed attempt's last log lines in the alert: read from moto CloudWatch Logs, redacted, bounded.

Scope: batch_dispatch.alerts.log_tail and redaction against moto Logs (mock_aws), and FailureNotifyFunction's
handler end to end (moto DynamoDB and Secrets Manager, the Slack stand-in on loopback). A slow or failing
CloudWatch Logs is a real HTTP server on loopback that the Logs client is pointed at
(AWS_ENDPOINT_URL_CLOUDWATCH_LOGS), so botocore's own timeouts are what cut the call short.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from moto import mock_aws

from batch_dispatch import execution_environment
from batch_dispatch.alerts import log_tail
from batch_dispatch.alerts.failed_job import build_message, summarize
from batch_dispatch.alerts.job_state import parse_event
from batch_dispatch.alerts.log_tail import LogTail, read_budget, read_tail
from batch_dispatch.alerts.redaction import REDACTED, Redactor, compile_patterns
from batch_dispatch.aws import clients
from batch_dispatch.settings import ConfigurationError, FailureNotifySettings, from_environment
from batch_dispatch.slack.blocks import MAX_SECTION_TEXT
from emulator.slack_stub import SlackStandIn
from functions.failure_notify import app
from tests.conftest import FakeLambdaContext, create_id_table, load_event

OOM_EVENT = "batch/job-failed-out-of-memory.json"
GROUP = "/aws/batch/batch-dispatch-dev"
STREAM = "batch-dispatch/default/6c2a097f4261465392ff63aea14928cc"  # the OOM event's last attempt
SECRET_NAME = "batch-dispatch/test/slack-webhook"
TABLE = "batch-dispatch-idempotency"


def put_lines(lines: list[str], group: str = GROUP, stream: str = STREAM) -> None:
    logs = boto3.client("logs")
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": now + n, "message": line} for n, line in enumerate(lines)],
    )


def tail(max_lines: int = 20, stream: str | None = STREAM, redactor: Redactor | None = None) -> LogTail:
    return read_tail(GROUP, stream, max_lines=max_lines, budget_seconds=3.0, redactor=redactor or Redactor())


def tail_section(message: dict[str, Any]) -> str:
    (text,) = [
        b["text"]["text"]
        for b in message["blocks"]
        if b["type"] == "section" and b.get("text", {}).get("text", "").startswith("*Last ")
    ]
    return str(text)


def notes(message: dict[str, Any]) -> list[str]:
    return [e["text"] for b in message["blocks"] if b["type"] == "context" for e in b["elements"]]


@pytest.fixture
def logs() -> Iterator[None]:
    with mock_aws():
        execution_environment.reset()
        yield
        execution_environment.reset()


# --- reading the tail -----------------------------------------------------------------------------------


def test_the_last_lines_come_from_the_end_of_the_stream_oldest_first(logs):
    # Given an attempt that logged 30 lines
    put_lines([f"step {n}" for n in range(30)])

    # When the alert reads its tail of 20
    found = tail(20)

    # Then it has the last 20 lines, in the order they were written
    assert found.status == log_tail.OK
    assert list(found.lines) == [f"step {n}" for n in range(10, 30)]


def test_the_tail_is_in_the_message_under_the_lead(logs):
    put_lines(["loading orders-eu.csv", "allocating 3.1 GiB", "Killed"])
    summary = summarize(parse_event(load_event(OOM_EVENT)))

    message = build_message(summary, tail=tail())

    section = tail_section(message)
    assert section.startswith("*Last 3 log lines of attempt 1*\n```")
    assert "allocating 3.1 GiB\nKilled```" in section


def test_a_multi_line_event_counts_each_line(logs):
    put_lines(['Traceback (most recent call last):\n  File "job.py", line 3\nMemoryError\n'])

    found = tail(2)

    assert list(found.lines) == ['  File "job.py", line 3', "MemoryError"]


def test_a_missing_stream_says_so_and_the_message_still_builds(logs):
    put_lines(["other attempt"], stream="batch-dispatch/default/another")

    found = tail()
    message = build_message(summarize(parse_event(load_event(OOM_EVENT))), tail=found)

    assert found.status == log_tail.MISSING
    assert "the log stream does not exist" in " ".join(notes(message))
    assert "View log stream" in json.dumps(message)  # the link is still there


def test_a_missing_log_group_reads_as_a_missing_stream(logs):
    assert tail().status == log_tail.MISSING


def test_an_attempt_that_never_ran_has_no_stream_and_no_call(logs, monkeypatch):
    # Given the pull failure event: the attempt never reached RUNNING, so no logStreamName
    summary = summarize(parse_event(load_event("batch/job-failed-never-running.json")))
    monkeypatch.setattr(clients, "quick_client", lambda *a, **k: pytest.fail("no call expected"))

    found = read_tail(
        summary.log_group, summary.log_stream, max_lines=20, budget_seconds=3, redactor=Redactor()
    )
    message = build_message(summary, tail=found)

    assert found.status == log_tail.NEVER_RAN
    assert "the attempt never reached RUNNING" in " ".join(notes(message))


def test_an_empty_stream_says_it_has_no_lines(logs):
    boto3.client("logs").create_log_group(logGroupName=GROUP)
    boto3.client("logs").create_log_stream(logGroupName=GROUP, logStreamName=STREAM)

    assert tail().status == log_tail.EMPTY


def test_zero_lines_configured_reads_nothing(logs, monkeypatch):
    monkeypatch.setattr(clients, "quick_client", lambda *a, **k: pytest.fail("no call expected"))

    found = read_tail(GROUP, STREAM, max_lines=0, budget_seconds=3, redactor=Redactor())

    assert found.status == log_tail.OFF
    assert found.note == ""


# --- redaction ------------------------------------------------------------------------------------------

SECRETS = [
    ("aws access key id", "using key AKIAIOSFODNN7EXAMPLE for s3", "AKIAIOSFODNN7EXAMPLE"),
    ("aws temporary key id", "AWS_ACCESS_KEY_ID=ASIAY34FZKBOKMUTVV7A", "ASIAY34FZKBOKMUTVV7A"),
    (
        "aws secret key, named",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    (
        "aws secret key, bare",
        "credentials: AKID... je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY here",
        "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
    ),
    (
        "bearer token",
        "GET /api Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbg",
        "eyJhbGci",
    ),
    ("bearer token in prose", "retrying with bearer abc123DEF456ghi789", "abc123DEF456ghi789"),
    ("basic auth header", "authorization: Basic dXNlcjpodW50ZXIy", "dXNlcjpodW50ZXIy"),
    ("password in a url", "connecting to postgres://etl:hunter2@db.internal:5432/orders", "hunter2"),
    ("password assignment", "config loaded: user=etl password=Tr0ub4dor&3 host=db", "Tr0ub4dor"),
    (
        "slack webhook url",
        "posting to https://hooks.slack.com/services/T0123ABCD/B0456EFGH/abcdefghijklmnop1234QRST",
        "T0123ABCD/B0456EFGH",
    ),
    ("slack bot token", "slack client token=xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx", "xoxb-12"),
    ("slack user token", "using xoxp-1111-2222-3333-abcdef0123456789abcdef", "xoxp-1111"),
]


@pytest.mark.parametrize(("kind", "line", "secret"), SECRETS, ids=[s[0] for s in SECRETS])
def test_each_secret_kind_is_redacted_before_the_line_leaves_aws(logs, kind, line, secret):
    # Given a job that printed a secret
    put_lines(["starting", line, "done"])

    # When the alert reads the tail and renders it
    found = tail()
    message = json.dumps(build_message(summarize(parse_event(load_event(OOM_EVENT))), tail=found))

    # Then the secret is gone, the rest of the line is still there
    assert secret not in message
    assert REDACTED in found.lines[1]
    assert found.lines[0] == "starting"
    assert found.lines[2] == "done"


# (kind, what stays readable before the secret, the secret, what follows it): every kind redaction.py
# knows, as it would sit in a long log line.
LONG_LINE_SECRETS = [
    (
        "slack webhook url",
        "posting to ",
        "https://hooks.slack.com/services/T0123ABCD/B0456EFGH/abcd1234QRST",
        "",
    ),
    ("slack bot token", "token ", "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx", " ok"),
    ("slack app token", "socket mode ", "xapp-1-A0123BCDE-1234567890123-abcdef0123456789", " ok"),
    ("aws access key id", "using key ", "AKIAIOSFODNN7EXAMPLE", " for s3"),
    ("aws temporary key id", "AWS_ACCESS_KEY_ID=", "ASIAY34FZKBOKMUTVV7A", " set"),
    ("aws secret key, named", "aws_secret_access_key = ", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", " ok"),
    ("aws secret key, bare", "credentials: ", "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY", " here"),
    ("authorization header", "authorization: Basic ", "dXNlcjpodW50ZXIyaHVudGVyMg", " sent"),
    ("bearer token", "retrying with Bearer ", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbg", " now"),
    ("password in a url", "connecting to postgres://etl:", "hunter2Tr0ub4dor", "@db.internal:5432/orders"),
    ("password assignment", "config loaded: password=", "Tr0ub4dor-and-3-more", " host=db"),
    (
        "private key block",
        '{"key": "',
        # A JSON log line: the key's line breaks are written as \n (two characters)
        "-----BEGIN RSA PRIVATE KEY-----\\nMIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi\\n"
        "-----END RSA PRIVATE KEY-----",
        '"}',
    ),
    ("the user's own pattern", "tenant ", "tenant-4711-customer-acme-ltd-eu", " loaded"),
]


@pytest.mark.parametrize(
    ("kind", "before", "secret", "after"), LONG_LINE_SECRETS, ids=[s[0] for s in LONG_LINE_SECRETS]
)
def test_a_secret_where_a_long_line_is_cut_is_redacted_whole(logs, kind, before, secret, after):
    # Given a long line whose secret straddles the point where the tail cuts long lines
    cut = log_tail.MAX_LINE_CHARS - 1  # characters kept before the "…"
    starts_at = cut - len(secret) // 2
    filler = "." * (starts_at - len(before) - 1) + " "
    line = filler + before + secret + after
    assert line.index(secret) < cut < line.index(secret) + len(secret)
    put_lines(["starting", line, "done"])

    # When the alert reads the tail and renders it
    found = tail(redactor=Redactor(compile_patterns(r"tenant-\d+-customer-[a-z-]+")))
    message = json.dumps(build_message(summarize(parse_event(load_event(OOM_EVENT))), tail=found))

    # Then not even the part of the secret before the cut is shown: it was redacted, then cut
    shown = secret[: cut - starts_at]
    assert found.lines[1].startswith(filler + before + REDACTED[:2])
    assert shown not in found.lines[1]
    assert shown not in message
    assert len(found.lines[1]) <= log_tail.MAX_LINE_CHARS


def test_a_private_key_block_is_redacted_across_its_lines(logs):
    put_lines(
        [
            "writing key",
            "-----BEGIN RSA PRIVATE KEY-----",
            "MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi",
            "Z1BjP5CE/Wm/Rr500P/wIDAQABAoIBAEVH2pd",
            "-----END RSA PRIVATE KEY-----",
            "key written",
        ]
    )

    found = tail()

    assert not any("MIIEpAIBAAKCAQEA" in line or "Z1BjP5CE" in line for line in found.lines)
    assert found.lines[0] == "writing key"
    assert found.lines[-1] == "key written"


def test_a_private_key_cut_off_by_the_tail_is_redacted_too(logs):
    # Given the tail starts in the middle of a key, and ends in the middle of another
    put_lines(
        [
            "-----BEGIN OPENSSH PRIVATE KEY-----",
            "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9u",
            "-----END OPENSSH PRIVATE KEY-----",
            "between keys",
            "-----BEGIN EC PRIVATE KEY-----",
            "MHcCAQEEIIrYSSNQFaA2Hwf1duRSxKtLYX5CB04f",
        ]
    )

    found = tail(max_lines=5)  # the first BEGIN line is not in the tail

    assert list(found.lines)[1] == "between keys"
    assert not any("b3BlbnNzaC1rZXkt" in line or "MHcCAQEEIIrY" in line for line in found.lines)


def test_the_users_own_patterns_are_redacted(logs):
    put_lines(["customer=ACME-00912 order-5512 shipped"])
    redactor = Redactor(compile_patterns(r"customer=\S+;;order-\d+"))

    found = tail(redactor=redactor)

    assert found.lines == (f"{REDACTED} {REDACTED} shipped",)


def test_user_patterns_may_be_separated_by_newlines(monkeypatch):
    monkeypatch.setenv("SLACK_WEBHOOK_SECRET_NAME", "s")
    monkeypatch.setenv("IDEMPOTENCY_TABLE_NAME", "t")
    monkeypatch.setenv("LOG_REDACT_PATTERNS", "tenant-[0-9]+\n  \nsecret-\\w+")

    settings = from_environment(FailureNotifySettings)

    assert [p.pattern for p in compile_patterns(settings.log_redact_patterns)] == [
        "tenant-[0-9]+",
        r"secret-\w+",
    ]


def test_a_bad_redaction_regex_is_a_configuration_error(monkeypatch):
    monkeypatch.setenv("SLACK_WEBHOOK_SECRET_NAME", "s")
    monkeypatch.setenv("IDEMPOTENCY_TABLE_NAME", "t")
    monkeypatch.setenv("LOG_REDACT_PATTERNS", "ok-[0-9]+;;broken[")

    with pytest.raises(
        ConfigurationError, match=r"LOG_REDACT_PATTERNS: not a valid regular expression: 'broken\['"
    ):
        from_environment(FailureNotifySettings)


def test_reasons_and_parameters_are_redacted_too():
    event = load_event(OOM_EVENT)
    event["detail"]["attempts"][-1]["container"]["reason"] = "OutOfMemoryError: token xoxb-1-2-secretvalue"
    event["detail"]["parameters"]["key"] = "s3://AKIAIOSFODNN7EXAMPLE:abc@bucket/key.csv"

    message = json.dumps(build_message(summarize(parse_event(event))))

    assert "xoxb-1-2-secretvalue" not in message
    assert "AKIAIOSFODNN7EXAMPLE" not in message
    assert "OutOfMemoryError" in message


# --- Slack's limits -------------------------------------------------------------------------------------


def test_a_long_tail_is_cut_to_one_section_keeping_the_newest_lines(logs):
    # Given 100 lines of 1,000 characters, with characters that escaping makes longer
    put_lines([f"{n:03d} " + "<&>" * 333 for n in range(100)])

    found = tail(max_lines=100)
    message = build_message(summarize(parse_event(load_event(OOM_EVENT))), tail=found)
    section = tail_section(message)

    # Then the section fits Slack, each line was cut, and the newest line is the last one shown
    assert len(section) <= MAX_SECTION_TEXT
    assert all(len(line) <= log_tail.MAX_LINE_CHARS for line in found.lines)
    assert "099 &lt;&amp;&gt;" in section
    assert "000 &lt;" not in section
    assert "earlier lines left out to fit Slack" in section
    assert section.endswith("```")


def test_backticks_in_log_lines_cannot_close_the_code_block(logs):
    put_lines(["``` <!channel> `rm -rf /`"])

    section = tail_section(build_message(summarize(parse_event(load_event(OOM_EVENT))), tail=tail()))

    assert section.count("```") == 2
    assert "<!channel>" not in section


# --- a slow or failing CloudWatch Logs ------------------------------------------------------------------


class FakeLogsEndpoint:
    """CloudWatch Logs' JSON API on loopback that hangs or fails on purpose (bounded: at most 10 s)."""

    def __init__(self, delay: float = 0.0, status: int = 200, error: str = "") -> None:
        self.delay, self.status, self.error = min(delay, 10.0), status, error
        self.calls = 0
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                endpoint.calls += 1
                time.sleep(endpoint.delay)
                body = (
                    json.dumps({"__type": endpoint.error, "message": "refused"})
                    if endpoint.error
                    else json.dumps({"events": [], "nextBackwardToken": "b/1", "nextForwardToken": "f/1"})
                ).encode()
                try:
                    self.send_response(endpoint.status)
                    self.send_header("Content-Type", "application/x-amz-json-1.1")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up first
                    pass

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeLogsEndpoint:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def logs_endpoint(logs, monkeypatch) -> Iterator[Any]:
    """Point the Logs client (and only it) at a FakeLogsEndpoint."""

    def start(**behaviour: Any) -> FakeLogsEndpoint:
        endpoint = FakeLogsEndpoint(**behaviour).__enter__()
        started.append(endpoint)
        monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", endpoint.url)
        clients.reset_clients()
        return endpoint

    started: list[FakeLogsEndpoint] = []
    yield start
    for endpoint in started:
        endpoint.__exit__()


def test_a_slow_logs_call_is_cut_at_the_budget(logs_endpoint):
    logs_endpoint(delay=8)

    began = time.monotonic()
    found = read_tail(GROUP, STREAM, max_lines=20, budget_seconds=1.0, redactor=Redactor())

    assert found.status == log_tail.TIMED_OUT
    # Cut at the budget, long before the endpoint's 8 s (the margin is for a busy machine)
    assert time.monotonic() - began < 4.0
    assert "did not answer within 1.0 s" in found.note


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (500, "ServiceUnavailableException", log_tail.FAILED),
        (400, "AccessDeniedException", log_tail.DENIED),
        (400, "ThrottlingException", log_tail.FAILED),
    ],
)
def test_a_failing_logs_call_becomes_a_note(logs_endpoint, status, error, expected):
    logs_endpoint(status=status, error=error)

    found = read_tail(GROUP, STREAM, max_lines=20, budget_seconds=2.0, redactor=Redactor())

    assert found.status == expected
    assert found.note.startswith("No log lines:")


def test_the_budget_leaves_the_slack_post_its_time():
    assert read_budget(None, 10) == log_tail.MAX_READ_SECONDS
    assert read_budget(60, 10) == log_tail.MAX_READ_SECONDS
    assert read_budget(11.5, 10) == pytest.approx(1.5)
    assert read_budget(9, 10) == 0.0


# --- the handler: the alert posts whatever the Logs call does --------------------------------------------


@dataclass
class Alerting:
    slack: SlackStandIn

    def invoke(self, event: Any, timeout_seconds: float = 60) -> tuple[Any, float]:
        began = time.monotonic()
        result = app.lambda_handler(event, FakeLambdaContext(timeout_seconds=timeout_seconds))
        return result, time.monotonic() - began


@pytest.fixture
def alerting(logs, monkeypatch) -> Iterator[Alerting]:
    with SlackStandIn() as slack:
        boto3.client("secretsmanager").create_secret(Name=SECRET_NAME, SecretString=slack.url)
        create_id_table(TABLE)
        for name, value in {
            "SLACK_WEBHOOK_SECRET_NAME": SECRET_NAME,
            "IDEMPOTENCY_TABLE_NAME": TABLE,
            "SLACK_TIMEOUT_SECONDS": "1",
            "SLACK_BUDGET_SECONDS": "5",
            "ENVIRONMENT": "prod",
            "LOG_REDACT_PATTERNS": r"customer=\S+",
        }.items():
            monkeypatch.setenv(name, value)
        execution_environment.reset()
        yield Alerting(slack)


def test_the_posted_alert_carries_the_redacted_tail(alerting):
    put_lines(["customer=ACME-1 loading", "token xoxb-9-9-abcdefabcdef", "MemoryError"])

    result, _ = alerting.invoke(load_event(OOM_EVENT))

    assert result["notified"] is True
    (message,) = alerting.slack.messages
    section = tail_section(message)
    assert "MemoryError" in section
    assert "ACME-1" not in section
    assert "xoxb-9-9" not in section
    assert message["blocks"][0]["text"]["text"].startswith(
        "[prod · 123456789012 · us-east-1] Batch job FAILED"
    )


def test_a_hanging_logs_call_still_posts_within_the_budget(alerting, logs_endpoint):
    endpoint = logs_endpoint(delay=10)

    result, elapsed = alerting.invoke(load_event(OOM_EVENT))

    assert result["notified"] is True
    assert endpoint.calls == 1
    assert elapsed < log_tail.MAX_READ_SECONDS + 2
    (message,) = alerting.slack.messages
    assert any("did not answer within 3.0 s" in note for note in notes(message))


def test_a_failing_logs_call_still_posts(alerting, logs_endpoint):
    logs_endpoint(status=500, error="InternalFailure")

    result, _ = alerting.invoke(load_event(OOM_EVENT))

    assert result["notified"] is True
    (message,) = alerting.slack.messages
    assert any("reading the log failed (InternalFailure)" in note for note in notes(message))


def test_with_little_time_left_the_tail_is_skipped_not_attempted(alerting, logs_endpoint):
    # Given an invocation with 7 s left: the Slack post needs about 6 s (timeout 1 s + margins)
    endpoint = logs_endpoint(delay=10)

    result, elapsed = alerting.invoke(load_event(OOM_EVENT), timeout_seconds=6.2)

    assert result["notified"] is True
    assert endpoint.calls == 0
    assert elapsed < 2
    (message,) = alerting.slack.messages
    assert any("too little time was left" in note for note in notes(message))
