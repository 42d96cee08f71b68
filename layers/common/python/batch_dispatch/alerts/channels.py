"""Which Slack channel (webhook secret) and mention a job's alerts go to: its job type's, or the stack's;
and the job type's own alert settings (log tail lines, mention on cancel), where it has them.

A job's type is found from its job definition. Catalog job definitions are named `<stack>_<job type>`,
so only such a job makes the notifier read the job catalog's registry; the stack's own job type, and
jobs of other stacks' queues (AdditionalAlertQueueArns), go to the stack's channel without it.
"""

from __future__ import annotations

from typing import NamedTuple

from batch_dispatch.job_types import DEFAULT, JobType, catalog_for, definition_family
from batch_dispatch.settings import FailureNotifySettings


class Channel(NamedTuple):
    secret_name: str  # the webhook secret; "" = the stack's (SLACK_WEBHOOK_SECRET_NAME)
    mention: str
    job_type: str  # the job type's name; "" for a job this stack did not define
    notify_succeeded: bool = False
    log_tail_lines: int | None = None  # the job type's LogTailLines; None = the stack's
    mention_on_cancel: bool | None = None  # the job type's MentionOnCancel; None = the stack's
    rerun_button: bool = True  # False: the job type allows nobody to rerun it from Slack


def channel_for(job_definition_arn: str | None, settings: FailureNotifySettings) -> Channel:
    stack_channel = Channel("", settings.slack_mention, "")
    family = definition_family(job_definition_arn)
    ours = f"{settings.job_name_prefix}_"
    if not family.startswith(ours):
        return stack_channel
    if family == f"{ours}{DEFAULT}" or family == definition_family(settings.job_definition_arn):
        return stack_channel._replace(job_type=DEFAULT)
    job_type = catalog_for(settings).for_definition(job_definition_arn)
    if job_type is None:
        return stack_channel
    return channel_of(job_type, settings.slack_mention)


def channel_of(job_type: JobType, stack_mention: str) -> Channel:
    """A job type's own channel and mention, falling back to the stack's (the default job type's)."""
    return Channel(
        secret_name=job_type.webhook_secret_name,
        mention=job_type.mention or stack_mention,
        job_type=job_type.name,
        notify_succeeded=job_type.notify_succeeded,
        log_tail_lines=job_type.log_tail_lines,
        mention_on_cancel=job_type.mention_on_cancel,
        rerun_button=job_type.rerun_allowed is None or not job_type.rerun_allowed.nobody,
    )
