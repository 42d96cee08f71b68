"""The Rerun button on a failure alert, and the alert after a rerun (alerts/rerun_button, rerun_replies)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from batch_dispatch.alerts.failed_job import MessageOptions, build_message, summarize
from batch_dispatch.alerts.job_state import parse_event
from batch_dispatch.alerts.rerun_button import RERUN, RERUN_FAILED_CHILDREN
from batch_dispatch.alerts.rerun_replies import jobs_text, rerun_done
from batch_dispatch.aws.batch_jobs import SubmittedJob
from batch_dispatch.submit.rerun import RerunOutcome
from emulator.slack_stub import validation_error
from tests.conftest import load_event


def alert(event_file: str, *, rerun_button: bool) -> dict[str, Any]:
    summary = summarize(parse_event(load_event(event_file)))
    return build_message(summary, options=MessageOptions(rerun_button=rerun_button))


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


def test_without_the_option_the_alert_has_only_its_links():
    message = alert("batch/job-failed-container.json", rerun_button=False)

    assert [b.get("action_id") for b in buttons(message)] == [None, None]
    assert all("url" in b for b in buttons(message))


def test_with_the_option_a_failed_job_gets_a_rerun_button_naming_it():
    event = load_event("batch/job-failed-container.json")
    message = alert("batch/job-failed-container.json", rerun_button=True)

    (rerun,) = [b for b in buttons(message) if "action_id" in b]
    assert rerun["action_id"] == RERUN
    assert rerun["value"] == event["detail"]["jobId"]
    assert rerun["text"]["text"] == "Rerun"
    assert rerun["confirm"]["confirm"]["text"] == "Rerun"  # Slack asks before it sends the click
    assert validation_error(message) is None


def test_an_array_jobs_alert_also_offers_its_failed_children():
    event = load_event("batch/array-parent-failed-storm.json")
    message = alert("batch/array-parent-failed-storm.json", rerun_button=True)

    ours = [b for b in buttons(message) if "action_id" in b]
    assert [(b["action_id"], b["value"]) for b in ours] == [
        (RERUN, event["detail"]["jobId"]),
        (RERUN_FAILED_CHILDREN, event["detail"]["jobId"]),
    ]
    assert ours[1]["text"]["text"] == "Rerun failed children"


def test_the_buttons_survive_an_alert_at_slacks_block_limit():
    # Given a failed job with so many parameters that its alert is cut to Slack's 50 blocks
    event = load_event("batch/job-failed-container.json")
    event["detail"]["parameters"] = {f"p{i:03}": "v" * 290 for i in range(400)}
    message = build_message(summarize(parse_event(event)), options=MessageOptions(rerun_button=True))

    # Then the actions block with the Rerun button is still there
    assert len(message["blocks"]) <= 50
    assert RERUN in [b.get("action_id") for b in buttons(message)]


# --------------------------------------------------------------------------------------------------------
# After a rerun


def outcome(jobs: int = 1, children: tuple[int, ...] = ()) -> RerunOutcome:
    return RerunOutcome(
        original_job_id="orig-1",
        original_job_name="nightly",
        jobs=tuple(SubmittedJob(f"id-{i}", f"nightly-rerun-abc-{i}") for i in range(jobs)),
        children=children,
    )


def test_the_rerun_alert_keeps_its_content_and_links_and_loses_the_rerun_buttons():
    original = alert("batch/array-parent-failed-storm.json", rerun_button=True)

    updated = rerun_done(original, outcome(), "U0ONCALL")

    assert updated["replace_original"] is True
    assert updated["text"] == original["text"]
    assert [b.get("action_id") for b in buttons(updated)] == [None]  # the console link
    assert original["blocks"][0] in updated["blocks"]
    assert "Rerun by <@U0ONCALL> → new job `nightly-rerun-abc-0` (`id-0`)" in json.dumps(
        updated["blocks"], ensure_ascii=False
    )
    assert validation_error(updated) is None


def test_without_the_original_message_the_rerun_is_said_in_the_channel():
    updated = rerun_done(None, outcome(), "U0ONCALL")

    assert updated == {
        "response_type": "in_channel",
        "replace_original": False,
        "text": ":arrows_counterclockwise: Rerun by <@U0ONCALL> → new job `nightly-rerun-abc-0` (`id-0`)",
    }


@pytest.mark.parametrize(
    ("jobs", "children", "expected"),
    [
        (1, (4,), "new job `nightly-rerun-abc-0` (`id-0`), for failed child 4"),
        (
            2,
            (1, 3),
            "2 new jobs: `nightly-rerun-abc-0` (`id-0`), `nightly-rerun-abc-1` (`id-1`), "
            "for failed children 1, 3",
        ),
        (7, tuple(range(25)), "and 2 more, for failed children 0, 1, 2,"),
        (1, tuple(range(25)), "18, 19 and 5 more"),
    ],
)
def test_the_rerun_line_names_the_jobs_and_children_within_bounds(jobs, children, expected):
    assert expected in jobs_text(outcome(jobs, children))


def test_a_user_id_that_is_not_one_is_not_turned_into_a_mention():
    updated = rerun_done(None, outcome(), "<!channel>")

    assert "<!channel>" not in updated["text"]
    assert "&lt;!channel&gt;" in updated["text"]
