"""The failure alert's content: what a tired on-call reads, for every Batch event layout we know."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from batch_dispatch.alerts.failed_job import build_message, default_log_group, skip_reason, summarize
from batch_dispatch.alerts.job_state import parse_event
from batch_dispatch.aws.console_links import console_encode, log_stream_url
from batch_dispatch.settings import ConfigurationError, FailureNotifySettings, from_environment
from batch_dispatch.slack.blocks import (
    MAX_BLOCKS,
    MAX_FALLBACK_TEXT,
    MAX_HEADER_TEXT,
    MAX_SECTION_TEXT,
    cap_blocks,
    escape,
    truncate,
)
from tests.conftest import load_event

FAILED_EVENTS = [
    "batch/job-failed-container.json",
    "batch/job-failed-task-properties.json",
    "batch/job-failed-multinode.json",
    "batch/job-failed-array-child.json",
    "batch/job-failed-never-running.json",
    "batch/job-failed-hostile-text.json",
]
# A mention or link survives escaping only as `<!...>`, `<@...>`, `<#...>` or `<http...>`.
LIVE_MARKUP = re.compile(r"<[!@#]|<https?:")


def message_for(name: str, mention: str = "") -> dict[str, Any]:
    return build_message(summarize(parse_event(load_event(name))), mention)


def all_texts(message: dict[str, Any]) -> list[str]:
    """Every string Slack renders from the message (fallback, sections, fields, context, buttons)."""
    texts = [message["text"]]
    for block in message["blocks"]:
        if isinstance(block.get("text"), dict):
            texts.append(block["text"]["text"])
        texts += [f["text"] for f in block.get("fields", [])]
        for element in block.get("elements", []):
            if element.get("type") == "mrkdwn":
                texts.append(element["text"])
            elif element.get("type") == "button":
                texts.append(element["text"]["text"])
    return texts


def rendered(message: dict[str, Any]) -> str:
    return "\n".join(all_texts(message))


def button_urls(message: dict[str, Any]) -> dict[str, str]:
    return {
        e["text"]["text"]: e["url"]
        for b in message["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    }


# --- every sample event -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FAILED_EVENTS)
def test_every_failed_event_gives_a_message_within_slack_limits(name):
    # Given a FAILED state-change event in any of the layouts Batch sends
    # When the alert is built
    message = message_for(name, mention="<!here>")

    # Then it has a fallback text and Block Kit blocks Slack would accept
    assert message["text"].startswith("<!here> Batch job FAILED: ")
    assert 0 < len(message["text"]) <= MAX_FALLBACK_TEXT
    assert 0 < len(message["blocks"]) <= MAX_BLOCKS
    header = message["blocks"][0]
    assert header["type"] == "header"
    assert len(header["text"]["text"]) <= MAX_HEADER_TEXT
    for block in message["blocks"]:
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= MAX_SECTION_TEXT
        for item in block.get("fields", []):
            assert len(item["text"]) <= 2000
        assert len(block.get("fields", [])) <= 10
    assert "Open job in Batch console" in button_urls(message)
    json.dumps(message)  # serialisable as is


def test_classic_container_job_reports_the_last_attempt_not_the_first():
    # Given a job that failed three times: OOM (137), then 2, then exit 1 with a KeyError
    message = message_for("batch/job-failed-container.json")
    text = rendered(message)

    # Then the alert shows the last attempt's exit code and reason, and all the job's coordinates
    assert "*Exit code (last attempt)*\n1" in text
    assert "KeyError 'region'" in text
    assert "OutOfMemoryError" not in text
    assert "137" not in text
    assert "*Attempts*\n3" in text
    assert (
        "batch-dispatch-nightly-report-20261120T030000Z-4f1e2d3c4b5a" in message["blocks"][0]["text"]["text"]
    )
    assert "`8f2c1d4e-3b6a-4f0e-9c7d-2a5b8e1f4d36`" in text
    assert "*Queue*\nbatch-dispatch-dev-queue" in text
    assert "*Job definition*\nbatch-dispatch-dev-job:4" in text
    assert "*Status reason:* Essential container in task exited" in text
    # 03:26:00 -> 03:37:41 of the last attempt
    assert "*Ran for*\n11m 41s (last attempt)" in text
    assert "`mode`: full" in text
    assert "`scheduleName`: batch-dispatch-dev-nightly" in text


def test_log_link_uses_the_job_definitions_log_group_and_the_last_attempts_stream():
    # Given the job definition sends logs to /aws/batch/batch-dispatch-dev (awslogs-group)
    urls = button_urls(message_for("batch/job-failed-container.json"))

    # Then the link opens that group and the LAST attempt's stream, double-encoded like the console
    assert urls["View log stream"] == (
        "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1"
        "#logsV2:log-groups/log-group/$252Faws$252Fbatch$252Fbatch-dispatch-dev"
        "/log-events/batch-dispatch$252Fdefault$252Fc3d4e5f60718293a4b5c6d7e8f90a1b2"
    )
    assert urls["Open job in Batch console"] == (
        "https://us-east-1.console.aws.amazon.com/batch/home?region=us-east-1"
        "#jobs/detail/8f2c1d4e-3b6a-4f0e-9c7d-2a5b8e1f4d36"
    )


def test_task_properties_layout_picks_the_essential_container_that_failed():
    # Given an ECS-properties job: a non-essential log router exited 143, the essential app exited 42
    summary = summarize(parse_event(load_event("batch/job-failed-task-properties.json")))

    # Then the alert is about the app container, its log group (from ecsProperties) and its stream
    assert summary.container_name == "app"
    assert summary.exit_code == 42
    assert summary.attempt_reason == "ValueError: schema mismatch in orders.csv"
    assert summary.attempt_count == 2
    assert summary.log_group == "/batch-dispatch/dev/multi"
    assert summary.log_stream == "batch-dispatch-dev-multi/app/7c6b5a4d3e2f"
    assert summary.duration_seconds == pytest.approx(125.5)
    assert "*Container*\napp" in rendered(build_message(summary))


def test_task_properties_without_exit_codes_falls_back_to_the_container_with_a_reason():
    # Given the last attempt's containers have no exit codes, and only the sidecar says why it stopped
    event = load_event("batch/job-failed-task-properties.json")
    containers = event["detail"]["attempts"][-1]["taskProperties"][0]["containers"]
    for container in containers:
        container.pop("exitCode", None)
    containers[1].pop("reason")  # app: no reason
    event["detail"].pop("ecsProperties")  # and the definition's essential flags are unknown

    summary = summarize(parse_event(event))

    # Then the container that carries a reason is reported
    assert summary.container_name == "log-router"
    assert summary.exit_code is None
    assert "stopped by ECS" in (summary.attempt_reason or "")


def test_multinode_child_shows_node_index_and_its_log_group():
    summary = summarize(parse_event(load_event("batch/job-failed-multinode.json")))
    text = rendered(build_message(summary))

    assert summary.node_index == 2
    assert "*Node index*\n2 of 4" in text
    assert summary.exit_code == 255
    assert summary.log_group == "/aws/batch/mnp-train"
    assert "`c4d5e6f7-8091-4a2b-b3c4-d5e6f7081920#2`" in text
    # `#` inside the fragment must not start a second fragment
    assert button_urls(build_message(summary))["Open job in Batch console"].endswith(
        "#jobs/detail/c4d5e6f7-8091-4a2b-b3c4-d5e6f7081920%232"
    )


def test_array_child_shows_its_index_and_the_default_log_group():
    summary = summarize(parse_event(load_event("batch/job-failed-array-child.json")))
    text = rendered(build_message(summary))

    assert "*Array index*\n7" in text
    assert summary.log_group == "/aws/batch/job"
    assert "$252Faws$252Fbatch$252Fjob" in (summary.log_url or "")
    assert "*Ran for*\n5s (last attempt)" in text
    assert button_urls(build_message(summary))["Open job in Batch console"].endswith(
        "#jobs/detail/5e6f7081-92a3-4b4c-8d5e-6f708192a3b4:7"
    )


def test_job_that_never_reached_running_has_no_log_link_but_says_why():
    # Given a job whose image could not be pulled: no exit code, no log stream, no startedAt
    message = message_for("batch/job-failed-never-running.json")
    text = rendered(message)

    # Then there is no log button, a note saying why, the pull error, and the time since creation
    assert "View log stream" not in button_urls(message)
    assert "never reached RUNNING" in text
    assert "CannotPullContainerError" in text
    assert "*Exit code (last attempt)*\nnone" in text
    assert "*Ran for*\n1m 30s (since created)" in text


def test_hostile_text_cannot_mention_link_or_break_out_of_code():
    # Given a reason and parameters full of <!channel>, <https://evil|click>, &, backticks and 10 KB strings
    message = message_for("batch/job-failed-hostile-text.json")
    texts = all_texts(message)

    # Then nothing renders as a live mention or link, `&` is escaped, backticks are neutralised
    for text in texts:
        assert not LIVE_MARKUP.search(text), text[:200]
        assert "`rm -rf" not in text
    joined = "\n".join(texts)
    assert "&lt;!channel&gt;" in joined
    assert "&lt;https://evil.example/phish|click here to fix&gt;" in joined
    assert "&lt;!everyone&gt;" in joined  # a parameter *name* is user text too
    assert "&amp; more" in joined
    assert re.search(r"&(?!amp;|lt;|gt;)", joined) is None  # every & is an escape we wrote
    assert "\u02cbrm -rf /\u02cb" in joined
    # and the 10 KB strings were cut, with the limits still respected
    assert len(json.dumps(message)) < 15_000
    assert all(len(t) <= MAX_SECTION_TEXT for t in texts)


def test_mention_leads_the_fallback_and_the_first_section_only_when_configured():
    with_mention = message_for("batch/job-failed-container.json", mention="<!subteam^S0123ABC>")
    without = message_for("batch/job-failed-container.json")

    assert with_mention["text"].startswith("<!subteam^S0123ABC> ")
    assert with_mention["blocks"][1]["text"]["text"].startswith("<!subteam^S0123ABC> ")
    assert "<!" not in without["text"]
    assert "<!" not in without["blocks"][1]["text"]["text"]


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        ("@here", "<!here>"),
        ("<!channel>", "<!channel>"),
        ("<!subteam^S0ON|@oncall>", "<!subteam^S0ON|@oncall>"),
    ],
)
def test_mention_shorthands_are_normalised(configured, expected):
    assert message_for("batch/job-failed-array-child.json", configured)["text"].startswith(expected + " ")


def test_a_mention_that_is_not_a_slack_token_is_ignored_not_printed():
    message = message_for("batch/job-failed-array-child.json", mention="ops team <script>")

    assert message["text"].startswith("Batch job FAILED")
    assert "ops team" not in rendered(message)


# --- limits -------------------------------------------------------------------------------------------


def test_a_thousand_huge_parameters_stay_within_slack_limits():
    # Given a job with 1,000 parameters of 1 KB each
    event = load_event("batch/job-failed-container.json")
    event["detail"]["parameters"] = {f"p{i:04d}": "v" * 1024 for i in range(1000)}

    message = build_message(summarize(parse_event(event)))

    # Then the list is cut (with a note), every section fits, and the block count is bounded
    assert len(message["blocks"]) <= MAX_BLOCKS
    assert all(len(t) <= MAX_SECTION_TEXT for t in all_texts(message))
    assert "975 more parameters" in rendered(message)
    assert "`p0000`" in rendered(message)
    assert "`p0999`" not in rendered(message)


def test_header_is_cut_to_150_characters():
    event = load_event("batch/job-failed-container.json")
    event["detail"]["jobName"] = "j" * 128 + "&" * 40

    header = build_message(summarize(parse_event(event)))["blocks"][0]["text"]["text"]

    assert len(header) <= MAX_HEADER_TEXT
    assert header.endswith("…")
    assert re.search(r"&(?!amp;)", header) is None  # no half entity left at the cut


def test_cap_blocks_keeps_the_links_and_notes_the_overflow():
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": str(i)}} for i in range(80)]
    blocks.append({"type": "actions", "elements": []})

    capped = cap_blocks(blocks)

    assert len(capped) == MAX_BLOCKS
    assert capped[-1]["type"] == "actions"
    assert "32 more blocks left out" in capped[-2]["elements"][0]["text"]


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [("short", 10, "short"), ("abcdefghij", 5, "abcd…"), ("ab&amp;cd", 5, "ab…")],
)
def test_truncate_never_splits_an_entity(text, limit, expected):
    assert truncate(text, limit) == expected


def test_escape_handles_the_three_control_characters():
    assert escape("a & <b> c") == "a &amp; &lt;b&gt; c"


def test_console_encoding_is_the_double_encoding_the_cloudwatch_console_uses():
    assert console_encode("/aws/batch/job") == "$252Faws$252Fbatch$252Fjob"
    assert console_encode("my job/default/a b") == "my$2520job$252Fdefault$252Fa$2520b"
    assert log_stream_url("eu-west-1", "/g", "s/1").startswith(
        "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups/"
    )


def test_links_use_the_events_region_and_the_right_partition():
    event = load_event("batch/job-failed-array-child.json")
    event["region"] = "cn-north-1"

    summary = summarize(parse_event(event))

    assert summary.console_url.startswith(
        "https://cn-north-1.console.amazonaws.cn/batch/home?region=cn-north-1"
    )


# --- robustness ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mutate",
    [
        lambda e: e["detail"].clear(),
        lambda e: e.pop("detail"),
        lambda e: e["detail"].update(attempts=None, parameters=None, container=None),
        lambda e: e["detail"].update(attempts=[{"container": "not an object"}, 42]),
        lambda e: e["detail"]["attempts"][-1]["container"].update(exitCode="one", logStreamName=7),
        lambda e: e["detail"].update(createdAt="yesterday", stoppedAt=None, jobQueue=None),
        lambda e: e["detail"].update(arrayProperties=[], nodeDetails={"nodeIndex": "x"}),
        lambda e: e["detail"].update(parameters={"nested": {"a": [1, 2]}, "n": None}),
        lambda e: e.update(region="not a region", time=None),
    ],
)
def test_missing_or_malformed_fields_never_crash(mutate):
    # Given a FAILED event with fields missing or of the wrong type
    event = copy.deepcopy(load_event("batch/job-failed-container.json"))
    mutate(event)
    if isinstance(event.get("detail"), dict):
        event["detail"]["status"] = "FAILED"

    # When it is parsed and rendered, Then a message still comes out
    parsed = parse_event(event)
    message = build_message(summarize(parsed))
    assert message["blocks"]
    assert message["text"]


@pytest.mark.parametrize("event", [None, [], "text", 42, {}])
def test_non_object_events_are_skipped_not_crashed(event):
    assert skip_reason(parse_event(event)) == "status missing"


@pytest.mark.parametrize(
    ("name", "reason"),
    [("batch/job-succeeded.json", "status SUCCEEDED"), ("batch/job-running.json", "status RUNNING")],
)
def test_non_failed_events_are_skipped(name, reason):
    assert skip_reason(parse_event(load_event(name))) == reason


def test_other_detail_types_are_skipped():
    event = load_event("batch/job-failed-container.json")
    event["detail-type"] = "Batch Job Queue Blocked"

    assert skip_reason(parse_event(event)) == "detail-type Batch Job Queue Blocked"


def test_unknown_fields_are_kept_not_rejected():
    event = load_event("batch/job-failed-container.json")
    event["detail"]["someNewField"] = {"x": 1}

    assert parse_event(event).detail.raw_event["someNewField"] == {"x": 1}
    assert (
        summarize(parse_event(event)).job_id
        == summarize(parse_event(load_event("batch/job-failed-container.json"))).job_id
    )


# --- settings -----------------------------------------------------------------------------------------


def test_settings_fail_fast_without_the_webhook_secret(monkeypatch):
    monkeypatch.delenv("SLACK_WEBHOOK_SECRET_NAME", raising=False)
    monkeypatch.setenv("IDEMPOTENCY_TABLE_NAME", "t")

    with pytest.raises(ConfigurationError, match="SLACK_WEBHOOK_SECRET_NAME"):
        from_environment(FailureNotifySettings)


def test_settings_defaults_bound_the_delivery_time(monkeypatch):
    monkeypatch.setenv("SLACK_WEBHOOK_SECRET_NAME", "batch-dispatch/slack-webhook")
    monkeypatch.setenv("IDEMPOTENCY_TABLE_NAME", "t")

    policy = from_environment(FailureNotifySettings).delivery_policy()

    assert policy.timeout_seconds == 5
    assert policy.max_retries == 2
    assert policy.budget_seconds <= 20


def test_our_jobs_link_to_the_stacks_log_group_when_the_event_does_not_name_one():
    definitions = "arn:aws:batch:us-east-1:123456789012:job-definition"
    settings = from_environment(
        FailureNotifySettings,
        {
            "SLACK_WEBHOOK_SECRET_NAME": "s",
            "IDEMPOTENCY_TABLE_NAME": "t",
            "JOB_DEFINITION_ARN": f"{definitions}/stack-JobDefinition-X:4",
            "JOB_LOG_GROUP_NAME": "/aws/batch/stack",
        },
    )

    ours = default_log_group(
        settings, "arn:aws:batch:us-east-1:123456789012:job-definition/stack-JobDefinition-X:3"
    )
    theirs = default_log_group(settings, "arn:aws:batch:us-east-1:123456789012:job-definition/other:1")

    assert ours == "/aws/batch/stack"
    assert theirs == "/aws/batch/job"
