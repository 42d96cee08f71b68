"""How long and how often a Slack post may be retried (a light module: settings import it at cold start)."""

from __future__ import annotations

from typing import NamedTuple


class DeliveryPolicy(NamedTuple):
    """Timeouts and retries. Worst case ~ budget_seconds (plus one timeout), whatever Slack does."""

    timeout_seconds: int = 5
    max_retries: int = 2
    backoff_seconds: float = 0.5
    max_retry_after_seconds: int = 10
    budget_seconds: float = 20.0
    secret_max_age_seconds: int = 300
    safety_margin_seconds: float = 3.0  # kept free of the Lambda's remaining time for logging/idempotency
