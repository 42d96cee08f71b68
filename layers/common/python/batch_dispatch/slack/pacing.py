"""One Slack post per webhook per second, however many functions and execution environments post.

Slack takes about one message per second per incoming webhook (short bursts, then HTTP 429). The alert
functions post independently of each other: a storm window's digest (StormDigestFunction), the first
failure of the next window and an array job's own alert (FailureNotifyFunction) can fall in the same
second. So before a post, the poster claims the webhook's next free slot in the alert-state table (one
conditional UpdateItem on `slack#<webhook secret>`: the slot after it becomes the next free one), then
sleeps until its slot. Claims are ordered by DynamoDB, so concurrent posters get slots a second apart.
A poster takes no slot further ahead than it may wait: it posts now instead, so a burst of posts (or of
retries while Slack is down) never pushes the next free slot minutes ahead, which would make every
later post wait its longest for nothing. Pacing is best effort: then, without a table, or if the table
fails, the post goes now (Slack's 429 and Retry-After, which webhook.py honours, remain the backstop).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from batch_dispatch.aws import clients
from batch_dispatch.observability import logger

RECORD_TTL_SECONDS = 24 * 3600
MAX_CLAIM_ATTEMPTS = 10  # each failed attempt means another poster claimed a slot meanwhile


class SlackPacer:
    def __init__(
        self,
        table_name: str,
        seconds_between_posts: float = 1.0,
        client: Any = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.table = table_name
        self.interval_ms = int(seconds_between_posts * 1000)
        self.client = client or clients.client("dynamodb")
        self.clock = clock
        self.sleep = sleep

    def claim(self, webhook: str, max_wait_seconds: float = math.inf) -> float | None:
        """Reserve the webhook's next free slot; the seconds from now until it (0: post now). None, and
        nothing reserved, when that slot is more than `max_wait_seconds` away."""
        key = {"pk": {"S": f"slack#{webhook}"}, "sk": {"S": "next-post"}}
        seen: int | None = None  # the next free slot another poster left, once known
        for _ in range(MAX_CLAIM_ATTEMPTS):
            now = int(self.clock() * 1000)
            slot = now if seen is None else max(now, seen)
            if slot - now > max_wait_seconds * 1000:
                return None
            values: dict[str, Any] = {
                ":next": {"N": str(slot + self.interval_ms)},
                ":exp": {"N": str(now // 1000 + RECORD_TTL_SECONDS)},
            }
            if seen is None:
                condition = "attribute_not_exists(next_ms) OR next_ms <= :slot"
                values[":slot"] = {"N": str(slot)}
            else:
                condition = "next_ms = :seen"
                values[":seen"] = {"N": str(seen)}
            try:
                self.client.update_item(
                    TableName=self.table,
                    Key=key,
                    UpdateExpression="SET next_ms = :next, expiration = :exp",
                    ConditionExpression=condition,
                    ExpressionAttributeValues=values,
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
                answer: dict[str, Any] = dict(error.response)
                taken = (answer.get("Item") or {}).get("next_ms", {}).get("N")
                seen = int(taken) if taken is not None else None
                continue
            return (slot - now) / 1000
        raise RuntimeError(f"no Slack post slot claimed for {webhook} in {MAX_CLAIM_ATTEMPTS} attempts")

    def wait_for_turn(self, webhook: str, max_wait_seconds: float) -> float:
        """Claim a slot at most `max_wait_seconds` away and sleep until it; the seconds slept (0 when no
        slot is that close). Never raises: a table that fails costs the pacing, not the post."""
        try:
            wait = self.claim(webhook, max(max_wait_seconds, 0.0))
        except (ClientError, BotoCoreError, RuntimeError) as error:
            logger.warning(
                "Slack post pacing unavailable, posting now",
                extra={"secret_name": webhook, "reason": type(error).__name__},
            )
            return 0.0
        if wait is None:
            logger.info(
                "Slack post slots taken beyond the wait allowed, posting now",
                extra={"secret_name": webhook, "max_wait_seconds": round(max_wait_seconds, 3)},
            )
            return 0.0
        if wait > 0:
            logger.debug("Waiting for the webhook's next post slot", extra={"wait_seconds": round(wait, 3)})
            self.sleep(wait)
        return wait
