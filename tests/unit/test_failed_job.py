"""The failure alert's content: what a tired on-call reads, for every Batch event layout we know."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from batch_dispatch.alerts.failed_job import (
    MessageOptions,
    build_message,
    default_log_group,
    skip_reason,
    summarize,
    summarize_for,
)
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
from tests.conftest import EVENTS_DIR, load_event

FAILED_EVENTS = sorted(
    f"batch/{path.name}"
    for path in (EVENTS_DIR / "batch").glob("*.json")
    if json.loads(path.read_text(encoding="utf-8")).get("detail", {}).get("status") == "FAILED"
    and "#" not in json.loads(path.read_text(encoding="utf-8"))["detail"]["jobId"]  # multi-node nodes
)
OUR_DEFINITION = "arn:aws:batch:us-east-1:123456789012:job-definition/batch-dispatch-dev-job:4"
# A mention or link survives escaping only as `<!...>`, `<@...>`, `<#...>` or `<http...>`.
LIVE_MARKUP = re.compile(r"<[!@#]|<https?:")


def message_for(name: str, mention: str = "") -> dict[str, Any]:
    return build_message(summarize(parse_event(load_event(name))), mention)


def our_settings(**environment: str) -> FailureNotifySettings:
    return from_environment(
        FailureNotifySettings,
        {
            "SLACK_WEBHOOK_SECRET_NAME": "s",
            "IDEMPOTENCY_TABLE_NAME": "t",
            "JOB_DEFINITION_ARN": OUR_DEFINITION,
            "JOB_LOG_GROUP_NAME": "/aws/batch/batch-dispatch-dev",
            "ENVIRONMENT": "dev",
            **environment,
        },
    )


def plain_lines(message: dict[str, Any]) -> list[str]:
    """The message as a person reads it, top to bottom: the header, then each section's lines."""
    lines: list[str] = []
    for block in message["blocks"]:
        if block["type"] in ("header", "section") and "text" in block:
            lines += block["text"]["text"].split("\n")
    return lines


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
    assert re.match(
        r"^(<!here> )?\[123456789012 · us-east-1\] Batch (array )?job (FAILED|CANCELLED): ", message["text"]
    )
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


# (event file, line 1 after the "[dev · 123456789012 · us-east-1] " prefix, line 2, class, next step says)
LEADS: dict[str, tuple[str, str, str, str]] = {
    "batch/array-parent-failed-storm.json": (
        "Batch array job FAILED: batch-dispatch-s3-orders-fanout-9a8b7c6d5e4f",
        "<!here> :x: *412 of 1000 children failed*",
        "array_children_failed",
        "resubmit the failed indexes",
    ),
    "batch/job-cancelled-time-limit.json": (
        "Batch job CANCELLED: batch-dispatch-nightly-report-20261120T060000Z-0a9b8c7d6e5f",
        "<!here> :no_entry_sign: *Canceled by JobStateTimeLimit action due to reason: "
        "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY*",
        "queue_time_limit",
        "Fix the reason (the blocked-queue message says what to check)",
    ),
    "batch/job-failed-array-child.json": (
        "Batch job FAILED: batch-dispatch-s3-orders-fanout-9a8b7c6d5e4f",
        "<!here> :x: *shard 7: checksum mismatch (exit code 3)*",
        "program_exit",
        "fix the code or the input, then resubmit",
    ),
    "batch/job-failed-container.json": (
        "Batch job FAILED: batch-dispatch-nightly-report-20261120T030000Z-4f1e2d3c4b5a",
        "<!here> :x: *Job step 'transform' failed: KeyError 'region' (exit code 1)*",
        "program_exit",
        "what exit code 1 means for this program",
    ),
    "batch/job-failed-dependency.json": (
        "Batch job FAILED: batch-dispatch-dev-report-after-ingest",
        "<!here> :x: *Dependent Job failed*",
        "dependency_failed",
        "Fix and rerun the job it depends on (7b3e9d1f-5a2c-4e8b-a6d4-2c0e8f6a4b2d)",
    ),
    "batch/job-failed-fargate-resource-init.json": (
        "Batch job FAILED: batch-dispatch-dev-s3-orders-apac-5c1d",
        "<!here> :x: *ResourceInitializationError: unable to pull secrets or registry auth: execution "
        "resource retrieval failed: unable to retrieve ecr registry auth: service call has been retried "
        "3 time(s): RequestError: send request failed caused by: "
        'Post "https://api.ecr.us-east-1.amazonaws.com/": dial tcp 52.46.152.71:443: i/o timeout. '
        "Please check your task network configuration.*",
        "fargate_resource_init",
        "Check that the subnets reach ECR, Secrets Manager or SSM and CloudWatch Logs",
    ),
    "batch/job-failed-hostile-text.json": (
        "Batch job FAILED: batch-dispatch-s3-hostile-5d4c3b2a1f0e",
        "<!here> :x: *&lt;!here&gt; Essential container in task exited &amp; &lt;@U0ADMIN&gt; was &gt; than "
        "&lt;!subteam^S999&gt; (exit code 1)*",
        "program_exit",
        "fix the code or the input, then resubmit",
    ),
    "batch/job-failed-image-pull-denied.json": (
        "Batch job FAILED: batch-dispatch-dev-schedule-20261120T0600Z",
        "<!here> :x: *CannotPullContainerError: Error response from daemon: pull access denied for "
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/batch-dispatch-job, repository does not exist or may "
        "require 'docker login': denied: User: arn:aws:sts::123456789012:assumed-role/"
        "batch-dispatch-dev-EcsInstanceRole-9Z8Y7X6W5V4U/i-0d1c2b3a495867f70 is not authorized to perform: "
        "ecr:BatchGetImage on resource: arn:aws:ecr:us-east-1:123456789012:repository/batch-dispatch-job "
        "because no identity-based policy allows the ecr:BatchGetImage action*",
        "image_pull_failed",
        "the execution role may pull it",
    ),
    "batch/job-failed-multinode-parent.json": (
        "Batch job FAILED: batch-dispatch-mnp-train",
        "<!here> :x: *Exit code 1*",
        "program_exit",
        "fix the code or the input, then resubmit",
    ),
    "batch/job-failed-never-running.json": (
        "Batch job FAILED: batch-dispatch-nightly-report-20261120T060000Z-0a9b8c7d6e5f",
        "<!here> :x: *CannotPullContainerError: pull image manifest has been retried 7 time(s): failed to "
        "resolve ref 123456789012.dkr.ecr.us-east-1.amazonaws.com/batch-dispatch-job:1.4.3: not found*",
        "image_pull_failed",
        "the tag exists (`JobImage`; pushed, no typo)",
    ),
    "batch/job-failed-operator-cancelled.json": (
        "Batch job CANCELLED: batch-dispatch-dev-s3-orders-us-2b8e4d6f",
        ":no_entry_sign: *Cancelling job.*",
        "cancelled",
        "Nothing to fix if this was intended; otherwise resubmit it.",
    ),
    "batch/job-failed-operator-terminated.json": (
        "Batch job CANCELLED: batch-dispatch-dev-schedule-20261120T0400Z",
        ":no_entry_sign: *Terminating job.*",
        "cancelled",
        "Nothing to fix if this was intended; otherwise resubmit it.",
    ),
    "batch/job-failed-out-of-memory.json": (
        "Batch job FAILED: batch-dispatch-dev-s3-orders-eu-7f3a9c1e",
        "<!here> :x: *OutOfMemoryError: Container killed due to memory usage (exit code 137, SIGKILL)*",
        "out_of_memory",
        "Raise the template parameter `JobMemory` (now 2048 MiB; on Fargate it must fit `JobVcpu`)",
    ),
    "batch/job-failed-spot-reclaimed.json": (
        "Batch job FAILED: batch-dispatch-dev-s3-video-2025-11-09-a91f",
        "<!here> :x: *Host EC2 (instance i-08784105ffff56b4f) terminated.*",
        "host_reclaimed",
        "allow more instance types (`InstanceTypes`) or run urgent work with `ComputeType=EC2`",
    ),
    "batch/job-failed-task-properties.json": (
        "Batch job FAILED: batch-dispatch-ingest-sidecar",
        "<!here> :x: *ValueError: schema mismatch in orders.csv (exit code 42)*",
        "program_exit",
        "what exit code 42 means for this program",
    ),
    "batch/job-failed-timeout.json": (
        "Batch job FAILED: batch-dispatch-dev-schedule-20261120T0300Z",
        "<!here> :x: *Job attempt duration exceeded timeout (exit code 137, SIGKILL)*",
        "timed_out",
        "raise the template parameter `JobTimeoutSeconds`",
    ),
    "batch/job-failed-two-attempts.json": (
        "Batch job FAILED: batch-dispatch-dev-schedule-20261120T0500Z",
        "<!here> :x: *Exit code 1*",
        "program_exit",
        "what exit code 1 means for this program",
    ),
}


def test_every_failed_event_shape_has_its_expected_lead():
    assert sorted(LEADS) == FAILED_EVENTS


@pytest.mark.parametrize("name", sorted(LEADS))
def test_the_first_two_lines_say_what_failed_and_why_then_the_class_and_the_next_step(name):
    # Given a FAILED event as Batch sends it, alerted by this stack (environment dev, our job definition)
    header, cause, key, next_step = LEADS[name]
    settings = our_settings(SLACK_MENTION="<!here>")
    summary = summarize_for(parse_event(load_event(name)), settings)

    # When its alert is built
    message = build_message(summary, options=MessageOptions("<!here>", settings.environment))
    lines = plain_lines(message)

    # Then line 1 names the stack's environment, account, region and the job; line 2 leads with the cause
    assert lines[0] == f"[dev · 123456789012 · us-east-1] {header}"
    assert lines[1] == cause
    # And the class is named, with what it means and the next step right below
    assert summary.diagnosis.key == key
    title = summary.diagnosis.title
    assert lines[2].startswith(f"*{title[:1].upper() + title[1:]}:* ")
    assert lines[3].startswith("*Next step:* ")
    assert next_step in lines[3]


def test_a_cancel_is_posted_without_the_mention_unless_configured():
    event = parse_event(load_event("batch/job-failed-operator-terminated.json"))
    summary = summarize_for(event, our_settings())

    quiet = build_message(summary, options=MessageOptions("<!here>", "dev"))
    loud = build_message(summary, options=MessageOptions("<!here>", "dev", mention_on_cancel=True))

    assert "<!here>" not in json.dumps(quiet)
    assert quiet["text"].startswith("[dev · 123456789012 · us-east-1] Batch job CANCELLED:")
    assert loud["text"].startswith("<!here> [dev")
    assert plain_lines(loud)[1].startswith("<!here> :no_entry_sign:")


STACK = "batch-dispatch-dev"
DEFINITIONS = "arn:aws:batch:us-east-1:123456789012:job-definition"


@pytest.mark.parametrize(
    ("job_definition", "next_step"),
    [
        (f"{STACK}_default:7", "Raise the template parameter `JobMemory` (now 2048 MiB"),
        (f"{STACK}_thumbnails:3", "Raise `Memory` in the `thumbnails` job type's block in template.yaml"),
        ("other-stack_thumbnails:3", "Raise the MEMORY in the job definition's resourceRequirements"),
        ("etl-nightly:12", "Raise the MEMORY in the job definition's resourceRequirements"),
    ],
    ids=["default job type", "catalog job type", "another stack's job type", "another stack's job"],
)
def test_the_alert_names_the_memory_setting_of_the_job_type_that_failed(job_definition, next_step):
    # Given an out-of-memory failure of a job definition, alerted by the stack batch-dispatch-dev
    event = load_event("batch/job-failed-out-of-memory.json")
    event["detail"]["jobDefinition"] = f"{DEFINITIONS}/{job_definition}"
    settings = our_settings(JOB_NAME_PREFIX=STACK, JOB_DEFINITION_ARN=f"{DEFINITIONS}/{STACK}_default:7")

    # When its alert is built
    lines = plain_lines(build_message(summarize_for(parse_event(event), settings)))

    # Then the next step names the setting that job's memory comes from
    assert lines[3].startswith(f"*Next step:* {next_step}")


def test_mention_on_cancel_is_a_boolean_setting(monkeypatch):
    assert our_settings().mention_on_cancel is False
    assert our_settings(MENTION_ON_CANCEL="true").mention_on_cancel is True
    with pytest.raises(ConfigurationError, match="MENTION_ON_CANCEL: must be true or false"):
        our_settings(MENTION_ON_CANCEL="sometimes")


def test_placeholder_parameters_are_hidden():
    # Given an upload job: the schedule's and manifest's parameters are the definition's default "none"
    event = load_event("batch/job-failed-out-of-memory.json")

    text = rendered(build_message(summarize(parse_event(event))))

    assert "`key`: incoming/2026/11/20/orders-eu.csv" in text
    for placeholder in ("scheduledTime", "scheduleName", "manifestBucket", "manifestKey", "objectCount"):
        assert f"`{placeholder}`" not in text
    assert ": none" not in text


def test_an_array_parent_says_one_thing_clearly():
    # Given the parent of an array job whose children failed (its own container shows a child's exit code)
    message = message_for("batch/array-parent-failed-storm.json")
    text = rendered(message)

    # Then it speaks of children only: no attempts, exit code, log or "never reached RUNNING"
    assert plain_lines(message)[1] == ":x: *412 of 1000 children failed*"
    assert "*Children failed*\n412 of 1000" in text
    for contradiction in ("Attempts", "attempt", "Exit code", "exit code 3", "RUNNING", "View log stream"):
        assert contradiction not in text
    assert "*Ended*\n1m 15s after it was created" in text


def test_two_attempts_show_the_earlier_one_on_its_own_line():
    message = message_for("batch/job-failed-two-attempts.json")

    lines = plain_lines(message)

    earlier = lines.index("*Earlier attempts*")
    assert (
        lines[earlier + 1] == "• attempt 1: Host EC2 (instance i-0a1b2c3d4e5f60718) terminated. · ran 14m 2s"
    )
    assert lines[earlier + 2 :][0] != "• attempt 2"  # the last attempt is the lead, not repeated here


def test_the_header_carries_environment_account_and_region_within_slacks_limit():
    event = load_event("batch/job-failed-out-of-memory.json")
    event["detail"]["jobName"] = "j" * 128
    summary = summarize_for(parse_event(event), our_settings(ENVIRONMENT="production-eu"))

    header = build_message(summary, options=MessageOptions("", "production-eu"))["blocks"][0]["text"]["text"]

    assert header.startswith("[production-eu · 123456789012 · us-east-1] Batch job FAILED: jjj")
    assert len(header) <= MAX_HEADER_TEXT


def test_classic_container_job_reports_the_last_attempt_not_the_first():
    # Given a job that failed three times: OOM (137), then 2, then exit 1 with a KeyError
    message = message_for("batch/job-failed-container.json")
    text = rendered(message)

    # Then the alert leads with the last attempt's exit code and reason, and has the job's coordinates
    assert "*Exit code (last attempt)*\n1" in text
    assert plain_lines(message)[1] == ":x: *Job step 'transform' failed: KeyError 'region' (exit code 1)*"
    assert "*Attempts*\n3" in text
    assert (
        "batch-dispatch-nightly-report-20261120T030000Z-4f1e2d3c4b5a" in message["blocks"][0]["text"]["text"]
    )
    assert "`8f2c1d4e-3b6a-4f0e-9c7d-2a5b8e1f4d36`" in text
    assert "*Queue*\nbatch-dispatch-dev-queue" in text
    assert "*Job definition*\nbatch-dispatch-dev-job:4" in text
    # 03:26:00 -> 03:37:41 of the last attempt
    assert "*Ran for*\n11m 41s (last attempt)" in text
    assert "`mode`: full" in text
    assert "`scheduleName`: batch-dispatch-dev-nightly" in text
    # And the earlier attempts are one line each, the OOM among them
    assert (
        "• attempt 1: OutOfMemoryError: Container killed due to memory usage (exit code 137, SIGKILL)" in text
    )
    assert "• attempt 2: Exit code 2 · ran 2m 0s" in text


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
    assert summary.earlier_attempts[0].cause == "first attempt reason (exit code 3)"
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


def test_a_multinode_node_posts_nothing_its_parent_tells_the_failure():
    # Given the FAILED event of node 2 of a 4-node job, and the parent job's own FAILED event
    node = parse_event(load_event("batch/job-failed-multinode.json"))
    parent = parse_event(load_event("batch/job-failed-multinode-parent.json"))

    # Then the node is skipped, and the parent's alert carries the main node's result and log
    assert skip_reason(node) == "node of a multi-node job (its parent job's alert tells the failure)"
    assert skip_reason(parent) is None
    summary = summarize(parent)
    text = rendered(build_message(summary))
    assert summary.job_id == "c4d5e6f7-8091-4a2b-b3c4-d5e6f7081920"
    assert summary.exit_code == 1
    assert summary.log_group == "/aws/batch/mnp-train"
    assert summary.log_stream == "batch-dispatch-dev-mnp/default/0a9b8c7d6e5f40a1b2c3d4e5f6a7b8c9"
    assert "*Nodes*\n4 (result of the main node)" in text


def test_a_node_summary_still_shows_its_index_and_log_group():
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


def test_job_that_never_reached_running_has_no_log_link_and_says_it_never_started():
    # Given a job whose image could not be pulled: no exit code, no log stream, no startedAt
    message = message_for("batch/job-failed-never-running.json")
    text = rendered(message)

    # Then there is no log button, no exit code, the pull error first, and how long until it ended
    assert "View log stream" not in button_urls(message)
    assert plain_lines(message)[1].startswith(":x: *CannotPullContainerError: pull image manifest")
    assert "Exit code" not in text
    assert "*Ran for*\nnever started (ended 1m 30s after it was created)" in text


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

    assert message["text"].startswith("[123456789012 · us-east-1] Batch job FAILED")
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
