"""The loop guard's Slack message: which lineage stopped, where its uploads went, and what to do."""

from __future__ import annotations

from typing import Any, NamedTuple

from batch_dispatch.slack.blocks import code_safe, context, header, mention_lead, message, section, slack_text


class LoopStopped(NamedTuple):
    """What the message says (all of it comes from the loop guard's counter and the upload)."""

    job_type: str
    lineage: str
    origin: str  # s3://bucket/key of the lineage's first upload in the window
    upload: str  # s3://bucket/key of the upload that was not submitted
    jobs: int  # jobs the lineage started in the window
    window_seconds: int
    window_ends: str  # when the window ends, readable
    output_prefix: str  # the job type's ("" = none)
    environment: str


def build_loop_guard_message(stopped: LoopStopped, mention: str) -> dict[str, Any]:
    title = f"[{stopped.environment}] Loop guard stopped {stopped.job_type} jobs"
    where = (
        f"its OutputPrefix `{code_safe(slack_text(stopped.output_prefix, 300))}`"
        if stopped.output_prefix
        else "an OutputPrefix (the job type has none yet: set one)"
    )
    blocks = [
        header(title),
        section(
            f"{mention_lead(mention)}:octagonal_sign: One input started *{stopped.jobs}* "
            f"`{slack_text(stopped.job_type, 100)}` jobs within {stopped.window_seconds} s: its jobs' "
            f"outputs keep starting new jobs.\n"
            f"*First input:* `{code_safe(slack_text(stopped.origin, 600))}`\n"
            f"*Not submitted:* `{code_safe(slack_text(stopped.upload, 600))}`, parked in the IntakeDLQ, like "
            f"every further upload of this lineage until {stopped.window_ends}."
        ),
        section(
            "*What to do:* make the job write its results under "
            f"{where}, which never starts a job, or outside its upload route. A job that writes into a "
            "route on purpose should copy its env var `BATCH_DISPATCH_LINEAGE` into the metadata "
            "`x-amz-meta-batch-dispatch-lineage` of what it writes, so a loop is stopped here. Then replay "
            "the parked uploads: `make redrive DLQ=IntakeDLQ` (after the window, or with LoopGuardMaxJobs "
            "raised)."
        ),
        context(f"lineage `{code_safe(slack_text(stopped.lineage, 200))}`"),
    ]
    return message(f"{title}: {stopped.jobs} jobs from {stopped.origin}", blocks)
