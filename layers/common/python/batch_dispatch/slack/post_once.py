"""Post a Slack message at most once per key, however often the event that caused it is delivered.

EventBridge, SQS and Lambda deliver at least once; every Slack post goes through Powertools idempotency
(key prefix per kind of message), and a failed post releases its record so the retry can post. A post
first waits for its webhook's next free second (pacing.py): Slack takes one message a second.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.idempotency import idempotent_function
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_dispatch.aws.idempotency import IDEMPOTENCY_TTL_SECONDS, idempotency_config, persistence_layer
from batch_dispatch.observability import MetricUnit, logger, metrics
from batch_dispatch.settings import SlackSettings
from batch_dispatch.slack import webhook
from batch_dispatch.slack.delivery_policy import DeliveryPolicy
from batch_dispatch.slack.pacing import SlackPacer


def post_once(
    prefix: str,
    key: str,
    message: dict[str, Any],
    settings: SlackSettings,
    lambda_context: LambdaContext | None = None,
    *,
    secret_name: str | None = None,
    expires_after_seconds: int = IDEMPOTENCY_TTL_SECONDS,
) -> bool:
    """Post `message` unless a post under (prefix, key) succeeded within the expiry. True if posted now.

    `secret_name` picks the webhook (default: the stack's). Raises webhook.SlackDeliveryError when Slack
    does not take the message.
    """
    config = idempotency_config(lambda_context, expires_after_seconds)

    @idempotent_function(
        data_keyword_argument="key",
        persistence_store=persistence_layer(settings.idempotency_table_name, prefix),
        config=config,
        key_prefix=prefix,
    )
    def post(key: Mapping[str, Any]) -> dict[str, Any]:
        channel = secret_name or settings.slack_webhook_secret_name
        policy = settings.delivery_policy()
        remaining = remaining_seconds(lambda_context)
        if settings.alert_state_table_name and settings.slack_seconds_between_posts > 0:
            # The webhook's URL first (then cached): a slow secret read between claiming the slot and
            # posting would let the next poster's slot come before this post arrives.
            webhook.webhook_url(channel)
            pacer = SlackPacer(settings.alert_state_table_name, settings.slack_seconds_between_posts)
            waited = pacer.wait_for_turn(channel, max_wait_seconds=longest_wait(policy, remaining))
            remaining = None if remaining is None else remaining - waited
        webhook.post_message(message, secret_name=channel, policy=policy, remaining_seconds=remaining)
        return {"postedAt": datetime.now(UTC).isoformat(), "duplicate": False}

    try:
        result = post(key={"key": key})
    except webhook.SlackDeliveryError as error:
        metrics.add_metric(name="NotificationFailed", unit=MetricUnit.Count, value=1)
        logger.exception("Slack notification failed", extra={"error_kind": error.kind, "alert": prefix})
        raise
    return not result.get("duplicate")


def longest_wait(policy: DeliveryPolicy, remaining: float | None) -> float:
    """How long a post may wait for its slot: its own budget at most, and only while its whole delivery
    (the budget and one more timeout) still fits in the invocation's time left."""
    if remaining is None:
        return policy.budget_seconds
    whole_delivery = policy.budget_seconds + policy.timeout_seconds + policy.safety_margin_seconds
    return max(0.0, min(policy.budget_seconds, remaining - whole_delivery))


def remaining_seconds(lambda_context: LambdaContext | None) -> float | None:
    """The invocation's time left, if known."""
    if lambda_context is None:
        return None
    try:
        return float(lambda_context.get_remaining_time_in_millis()) / 1000
    except (AttributeError, TypeError, ValueError):
        return None
