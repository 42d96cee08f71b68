"""What a click on a Rerun button gets back in Slack.

A rerun replaces the alert (through the click's response_url) with the same message, its Rerun buttons
taken away and a line saying who reran it and which job(s) it became. Everything else is an ephemeral
text only the clicker sees: the alert stays as it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from batch_dispatch.alerts.rerun_button import ACTION_IDS
from batch_dispatch.slack.blocks import MAX_BLOCKS, cap_blocks, code_safe, context, slack_text
from batch_dispatch.slack.response_url import ephemeral
from batch_dispatch.submit.rerun import RerunOutcome

MAX_JOBS_NAMED = 5
MAX_INDICES_NAMED = 20
_USER_ID = re.compile(r"^[UW][A-Z0-9]+$")


def who(user_id: str) -> str:
    """`<@U123>` (a mention Slack renders as the name) for a user id, else the id as plain text."""
    return f"<@{user_id}>" if _USER_ID.match(user_id) else slack_text(user_id or "someone", 50)


def jobs_text(outcome: RerunOutcome) -> str:
    """`new job `name` (`id`)`, or the first few of several, plus which children they rerun."""
    named = [
        f"`{code_safe(slack_text(j.job_name, 150))}` (`{code_safe(slack_text(j.job_id, 80))}`)"
        for j in outcome.jobs[:MAX_JOBS_NAMED]
    ]
    more = len(outcome.jobs) - len(named)
    text = (
        f"new job {named[0]}"
        if len(outcome.jobs) == 1
        else f"{len(outcome.jobs)} new jobs: {', '.join(named)}"
    )
    if more > 0:
        text += f" and {more} more"
    if outcome.children:
        shown = ", ".join(str(i) for i in outcome.children[:MAX_INDICES_NAMED])
        extra = len(outcome.children) - MAX_INDICES_NAMED
        children = "child" if len(outcome.children) == 1 else "children"
        text += f", for failed {children} {shown}" + (f" and {extra} more" if extra > 0 else "")
    return text


def rerun_done(message: Mapping[str, Any] | None, outcome: RerunOutcome, user_id: str) -> dict[str, Any]:
    """The alert with its Rerun buttons removed and who reran it into what (or, without the original
    message, that line alone, posted in the channel)."""
    line = f":arrows_counterclockwise: Rerun by {who(user_id)} → {jobs_text(outcome)}"
    if not message or not isinstance(message.get("blocks"), list):
        return {"response_type": "in_channel", "replace_original": False, "text": line}
    blocks = [kept for block in message["blocks"] if (kept := _without_rerun_buttons(block)) is not None]
    at = len(blocks) - 1 if blocks and blocks[-1].get("type") == "actions" else len(blocks)
    blocks.insert(at, context(line))
    return {
        "replace_original": True,
        "text": str(message.get("text") or line),
        "blocks": cap_blocks(blocks, MAX_BLOCKS),
    }


def _without_rerun_buttons(block: Any) -> dict[str, Any] | None:
    if not isinstance(block, dict):
        return None
    if block.get("type") != "actions":
        return block
    elements = [e for e in block.get("elements") or [] if e.get("action_id") not in ACTION_IDS]
    return {**block, "elements": elements} if elements else None


def already_rerun(outcome: RerunOutcome) -> dict[str, Any]:
    return ephemeral(
        f"{slack_text(outcome.original_job_name, 150)} was already rerun as {jobs_text(outcome)}. "
        "A job is rerun once per alert; submit it again from the Batch console if you need another run."
    )


def refused(reason: str) -> dict[str, Any]:
    """The refusal's own text (it names the job and what to do)."""
    return ephemeral(f":no_entry_sign: Not rerun. {slack_text(reason, 1500)}")


def not_allowed(user_id: str, job_type: str = "", *, nobody: bool = False) -> dict[str, Any]:
    """The clicker is in none of the lists: the job type's (`job_type`), or the stack's (""). `nobody`:
    the job type's lists allow no one (its RerunAllowedSlackUsers is none, and it lists no group)."""
    if job_type and nobody:
        name = code_safe(slack_text(job_type, 40))
        return ephemeral(
            f":no_entry_sign: Not rerun: nobody may rerun jobs of job type `{name}` from Slack (its "
            "RerunAllowedSlackUsers is none and it lists no user group). Someone with AWS access can "
            "rerun it with `batch-dispatch rerun` if it must run again."
        )
    if job_type:
        name = code_safe(slack_text(job_type, 40))
        return ephemeral(
            f":no_entry_sign: Not rerun: {who(user_id)} may not rerun jobs of job type `{name}`. Ask the "
            f"stack's owner to add your Slack member ID to job type `{name}`'s RerunAllowedSlackUsers, or "
            "you to a user group in its RerunAllowedSlackGroups."
        )
    return ephemeral(
        f":no_entry_sign: Not rerun: {who(user_id)} may not rerun jobs here. Ask the stack's owner to add "
        "your Slack member ID to RerunAllowedSlackUsers, or you to a user group in RerunAllowedSlackGroups."
    )


def lookup_failed(what_to_check: str) -> dict[str, Any]:
    """The clicker is not listed, and a user group that may hold them could not be read."""
    return ephemeral(
        ":warning: Not rerun: could not check whether you are in a user group allowed to rerun jobs "
        f"here. {slack_text(what_to_check, 1500)}."
    )


def failed(request_id: str) -> dict[str, Any]:
    return ephemeral(
        ":warning: The rerun failed on our side (the function's logs have the error: request id "
        f"{slack_text(request_id, 80)}). Clicking again is safe: a job it did submit is found by its "
        "name, not submitted twice."
    )
