"""Failure storms, the clock: a window's close (and a storm's end check) is a delayed SQS message."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any

from batch_dispatch.alerts.storm.model import StormConfig
from batch_dispatch.alerts.storm.store import StormStore
from batch_dispatch.aws import clients

MAX_SQS_DELAY_SECONDS = 900


class CloseScheduler:
    def __init__(self, queue_url: str, client: Any = None, clock: Callable[[], float] = time.time) -> None:
        self.queue_url = queue_url
        self.client = client or clients.client("sqs")
        self.clock = clock

    def send(self, message: dict[str, Any], not_before: float) -> None:
        delay = min(max(math.ceil(not_before - self.clock()), 0), MAX_SQS_DELAY_SECONDS)
        self.client.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(message), DelaySeconds=delay)


def close_message(group: str, window: int, queue_arn: str) -> dict[str, Any]:
    return {"kind": "close", "group": group, "window": window, "queue": queue_arn}


class WindowState:
    """What both sides of a storm window use: its settings, the state table, the close scheduler."""

    def __init__(
        self,
        config: StormConfig,
        store: StormStore | None = None,
        scheduler: CloseScheduler | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.clock = clock
        self.store = store or StormStore(config.table_name, clock=clock)
        self.scheduler = scheduler or CloseScheduler(config.queue_url, clock=clock)
