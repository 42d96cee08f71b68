"""What a Lambda execution environment keeps between invocations, and how to forget it all at once.

Settings, boto3 clients, idempotency stores, cached secrets and Slack user groups' members live as long as
the environment. Tests and the emulator (which deploys fresh stacks into one process) call `reset()` to
start as a cold start would.
"""

from __future__ import annotations

from aws_lambda_powertools.utilities import parameters

from batch_dispatch import job_types, settings
from batch_dispatch.aws import clients, idempotency


def reset() -> None:
    """A new execution environment: no settings, clients, stores, cached secrets or group members."""
    # only the functions that alert or answer clicks load the Slack modules
    from batch_dispatch.slack import user_groups, webhook

    settings.reset()
    clients.reset_clients()
    idempotency.reset_persistence()
    webhook.reset_secrets_provider()
    user_groups.reset_cache()
    job_types.reset_registry()
    parameters.clear_caches()
