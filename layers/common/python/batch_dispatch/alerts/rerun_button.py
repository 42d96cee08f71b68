"""The Rerun buttons of a failure alert (EnableRerunButton): what the message carries for a click.

Each button's `value` is the job id, which SlackActionsFunction reruns (alerts/rerun_click.py). An array
job's alert has a second button that reruns only its failed children. Both ask for a confirmation first.
"""

from __future__ import annotations

from typing import Any

from batch_dispatch.slack.blocks import MAX_BUTTON_TEXT

RERUN = "rerun"
RERUN_FAILED_CHILDREN = "rerun_failed_children"
ACTION_IDS = (RERUN, RERUN_FAILED_CHILDREN)
MAX_VALUE = 2000  # Slack's limit on a button's value


def rerun_buttons(job_id: str, *, array_parent: bool) -> list[dict[str, Any]]:
    """The button elements for an actions block: Rerun, and for an array job Rerun failed children."""
    if not job_id or len(job_id) > MAX_VALUE or job_id.startswith("("):  # "(unknown job id)"
        return []
    buttons = [
        _button(
            "Rerun",
            RERUN,
            job_id,
            "Rerun this job?",
            "It is submitted again with the same job definition, queue, parameters and overrides. "
            "A job is rerun once, however often the button is clicked.",
        )
    ]
    if array_parent:
        buttons.append(
            _button(
                "Rerun failed children",
                RERUN_FAILED_CHILDREN,
                job_id,
                "Rerun the failed children?",
                "Only the children that failed are submitted again, by index. A job is rerun once, "
                "however often a button is clicked.",
            )
        )
    return buttons


def _button(label: str, action_id: str, value: str, title: str, text: str) -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": label[:MAX_BUTTON_TEXT]},
        "action_id": action_id,
        "value": value,
        "confirm": {
            "title": {"type": "plain_text", "text": title[:100]},
            "text": {"type": "plain_text", "text": text[:300]},
            "confirm": {"type": "plain_text", "text": "Rerun"},
            "deny": {"type": "plain_text", "text": "Cancel"},
        },
    }
