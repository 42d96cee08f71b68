"""A token-bucket SubmitJob throttle in front of moto, answering like AWS Batch over its limit.

Real Batch allows about 50 SubmitJob calls/s per account (all callers together) and answers the rest
with HTTP 429 `TooManyRequestsException`. moto never throttles, so the emulator puts a bucket on the
batch client's `before-send` event: a call without a token gets a 429 *HTTP response* instead of
reaching moto, and botocore parses it (and its standard retry mode retries it) exactly as it would
parse the real service's answer.

    throttle = SubmitJobThrottle(rate_per_second=50)
    client = throttle.install(boto3.client("batch"))   # or throttle.throttled_client()
    clients.use_client("batch", client)

Or in the emulator's server itself, for every caller in any process (emulator/environments.py workers):

    with throttle.in_front_of_moto(local.server):
        ...
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse, HTTPHeaders

from emulator.moto_server import MotoServer, WireAnswer, WireRequest

THROTTLED_OPERATION = "SubmitJob"
SUBMIT_JOB_PATH = "/v1/submitjob"  # Batch's REST path for SubmitJob
ERROR_CODE = "TooManyRequestsException"


class ResponseBody:
    """The `raw` of an AWSResponse: botocore reads it through `stream()`."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_kwargs: Any) -> Iterator[bytes]:
        yield self._data


@dataclass
class TokenBucket:
    """`rate` tokens per second, at most `capacity` saved up (the burst a quiet account may spend)."""

    rate: float
    capacity: float
    clock: Callable[[], float] = time.monotonic
    _tokens: float = field(init=False)
    _updated: float = field(init=False)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.capacity < 1:
            raise ValueError("a token bucket needs rate > 0 and capacity >= 1")
        self._tokens = self.capacity
        self._updated = self.clock()

    def take(self) -> bool:
        """Spend one token if there is one (never waits)."""
        with self._lock:
            now = self.clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False


@dataclass
class ThrottleStats:
    allowed: int = 0
    throttled: int = 0
    first_allowed: float | None = None
    last_allowed: float | None = None


class SubmitJobThrottle:
    """Throttles SubmitJob on every client it is installed on, with one bucket (one account)."""

    def __init__(self, rate_per_second: float = 50.0, burst: float | None = None) -> None:
        self.rate_per_second = rate_per_second
        self.bucket = TokenBucket(rate=rate_per_second, capacity=burst or rate_per_second)
        self.stats = ThrottleStats()
        self._lock = threading.Lock()
        self.enabled = True

    def install(self, client: Any) -> Any:
        """Register the bucket on `client` (a boto3 batch client) and return it."""
        client.meta.events.register(f"before-send.batch.{THROTTLED_OPERATION}", self._before_send)
        return client

    def throttled_client(self, **kwargs: Any) -> Any:
        """A new batch client with the throttle installed (kwargs go to boto3.client)."""
        return self.install(boto3.client("batch", **kwargs))

    @contextmanager
    def in_front_of_moto(self, server: MotoServer) -> Iterator[SubmitJobThrottle]:
        """Throttle SubmitJob in the emulator's moto server: one bucket for every caller, in any process.

        A call without a token is answered, before moto sees it, with the HTTP 429
        TooManyRequestsException the real service returns, so any client parses and retries it.
        """

        def answer(request: WireRequest) -> WireAnswer | None:
            if request.method != "POST" or request.path.rstrip("/") != SUBMIT_JOB_PATH or self._admit():
                return None
            return WireAnswer.aws_json_error(429, ERROR_CODE, "Too Many Requests")

        with server.intercepting(answer):
            yield self

    def _admit(self) -> bool:
        """Take a token (always, when disabled) and count the answer."""
        allowed = not self.enabled or self.bucket.take()
        with self._lock:
            if allowed:
                self.stats.allowed += 1
                now = time.monotonic()
                self.stats.first_allowed = self.stats.first_allowed or now
                self.stats.last_allowed = now
            else:
                self.stats.throttled += 1
        return allowed

    def _before_send(self, request: Any, **_kwargs: Any) -> AWSResponse | None:
        if self._admit():
            return None  # let the request through to moto
        return too_many_requests(request.url)


def too_many_requests(url: str) -> AWSResponse:
    """What Batch answers over its rate limit (rest-json error: code in x-amzn-ErrorType)."""
    body = json.dumps({"__type": ERROR_CODE, "message": "Too Many Requests"}).encode()
    headers = HTTPHeaders()
    headers["Content-Type"] = "application/json"
    headers["x-amzn-ErrorType"] = f"{ERROR_CODE}:http://internal.amazon.com/coral/com.amazonaws.batch/"
    headers["x-amzn-RequestId"] = "00000000-0000-0000-0000-000000000429"
    headers["Content-Length"] = str(len(body))
    return AWSResponse(url, 429, headers, ResponseBody(body))
