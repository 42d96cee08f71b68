"""`make demo`: the whole batch-dispatch story on loopback, told so a person can follow it."""

from __future__ import annotations

import json
import time
from typing import Any, TextIO

from emulator.core import Emulator
from emulator.handlers import Invocation
from emulator.sam import REPO_ROOT

# The demo's catalog: four job types added to template.yaml the way docs/job-types.md shows.
DEMO_JOB_TYPES = REPO_ROOT / "job-types" / "examples.yaml"
# A bucket created outside the stack (another team's), attached by name; partner-orders' route is there.
PARTNER_BUCKET = "partner-orders-example"
# The Rerun button is on (a Slack app with Interactivity), and the on-call may click it.
ONCALL = "U0ONCALL"
DEMO_PARAMETERS = {
    "EnableRerunButton": "true",
    "RerunAllowedSlackUsers": ONCALL,
    "AttachedBuckets": PARTNER_BUCKET,
}
DEMO_FILES = [
    "incoming/csv/daily report 2026-11-23.csv",
    "images/café/résumé.png",
    "incoming/sales+returns/q4 (final).parquet",
]


class Story:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.started = time.monotonic()

    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def step(self, number: int, title: str, how: str) -> None:
        self.say()
        self.say(f"{number}. {title}")
        self.say(f"   {how}")

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def _job_line(job: dict[str, Any], *keys: str) -> str:
    shown = ", ".join(f"{k}={job['parameters'].get(k)!r}" for k in keys if k in job["parameters"])
    return f"{job['jobName']}  [{job['status']}]  {shown}"


def _queue(job: dict[str, Any]) -> str:
    """`...:job-queue/<stack>-HighPriorityJobQueue-XYZ` -> `HighPriorityJobQueue`."""
    return str(job["jobQueue"].rsplit("/", 1)[-1].split("-")[-2])


def _outcome(invocation: Invocation | None) -> str:
    if invocation is None:
        return "not fired: the schedule is DISABLED"
    if invocation.error:
        error = invocation.error
        return f"failed after {invocation.attempts} attempt(s): {error['type']}: {error['message']}"
    return json.dumps(invocation.result, default=str)


def _slack_text(message: dict[str, Any]) -> list[str]:
    """What a person sees in Slack: the header, section texts and fields, link targets shortened."""
    lines: list[str] = []
    for block in message.get("blocks", []):
        if block.get("type") == "header":
            lines.append(f"*{block['text']['text']}*")
        if block.get("type") == "header":
            continue
        text = block.get("text")
        if isinstance(text, dict):
            lines.extend(text.get("text", "").splitlines())
        fields = [
            f.get("text", "").replace("\n", " ") for f in block.get("fields", []) if isinstance(f, dict)
        ]
        lines.extend("   ".join(fields[i : i + 2]) for i in range(0, len(fields), 2))
        for element in block.get("elements", []):
            if isinstance(element, dict) and "text" in element:
                label = (
                    element["text"].get("text", "") if isinstance(element["text"], dict) else element["text"]
                )
                lines.append(f"[{label}] {element.get('url', '')}".rstrip())
    return lines or [message.get("text", "")]


def _show(story: Story, message: dict[str, Any]) -> None:
    channel = message.get("webhook_secret")
    story.say(f"   Slack message (webhook secret {channel}):" if channel else "   Slack message:")
    story.say("   +" + "-" * 76)
    for line in _slack_text(message):
        story.say(f"   | {line}")
    story.say("   +" + "-" * 76)


def _operator_status(stack_name: str) -> str:
    """`batch-dispatch status` against the local stack, run in this process (its AWS clients reach the
    moto server like every other client here) with its output captured for the story."""
    from click.testing import CliRunner

    from batch_dispatch_cli.app import cli

    runner = CliRunner(mix_stderr=False)
    result = runner.invoke(
        cli,
        ["--stack", stack_name, "status"],
        env={"COLUMNS": "160", "NO_COLOR": "1"},
        catch_exceptions=False,
    )
    # Exit code 1 means "needs attention" (the demo's failures), which is what the story shows.
    return result.stdout if result.exit_code in (0, 1) else result.stderr


def run_demo(out: TextIO) -> int:
    story = Story(out)
    story.say(
        "batch-dispatch local demo: template.yaml with four example job types, deployed into moto on "
        "127.0.0.1 (no AWS account, no Docker)"
    )
    with Emulator(DEMO_PARAMETERS, job_types=DEMO_JOB_TYPES, outside_buckets=[PARTNER_BUCKET]) as local:
        stack = local.stack
        story.say(
            f"   stack '{stack.name}': {len(stack.physical_ids)} resources, functions "
            f"{', '.join(stack.functions)}; Slack stand-in at {local.slack.url.split('/services')[0]}"
        )

        # 1. The catalog ---------------------------------------------------------------------------
        entries = local.job_type_entries()
        story.step(
            1,
            f"The job catalog: {len(entries)} job types added to template.yaml, plus the stack's default",
            f"{DEMO_JOB_TYPES.relative_to(REPO_ROOT)}: one nested application each; the registry in SSM",
        )
        for name, entry in entries.items():
            route = " + ".join(
                f"{part} {entry[key]!r}"
                for part, key in (("prefix", "routePrefix"), ("suffix", "routeSuffix"))
                if entry[key]
            )
            story.say(
                f"   {name:<15} schedule {entry['scheduleExpression'] or '-':<20} "
                f"route {route or '-':<38} {entry['priority']} priority"
                + (f", in s3://{entry['bucket']}" if entry.get("bucket") else "")
                + (f", alerts to {entry['webhookSecretName']}" if entry["webhookSecretName"] else "")
            )

        # 2. Schedule ------------------------------------------------------------------------------
        schedule = local.schedule_of("nightly-report")
        story.step(
            2,
            "A scheduled tick",
            f"nightly-report's '{schedule.expression}' ({schedule.timezone}) -> ScheduleSubmitFunction",
        )
        tick_time = "2026-11-23T01:00:00Z"
        first = local.tick(tick_time, schedule=schedule)
        story.say(f"   tick {tick_time}: {_outcome(first)}")
        again = local.tick(tick_time, schedule=schedule)
        duplicate = bool(again and again.result and again.result.get("duplicate"))
        story.say(f"   the same tick delivered again (at-least-once): duplicate={duplicate}")
        scheduled = [j for j in local.jobs_submitted() if "scheduledTime" in j["parameters"]]
        for job in scheduled:
            story.say(f"   job in Batch: {_job_line(job, 'scheduledTime', 'report')}")
        story.say(f"   -> {len(scheduled)} job for 2 deliveries, in {_queue(scheduled[0])}")

        # 3. S3 drops ------------------------------------------------------------------------------
        story.step(
            3,
            "Files land in S3",
            f"s3://{local.bucket()} -> IntakeQueue (SQS) -> S3SubmitFunction -> the job type of the route",
        )
        for key in DEMO_FILES:
            local.upload(key)
            story.say(f"   uploaded {key!r}")
        # nothing else is on its way: skip the rest of the template's batching window
        invocations = local.drain(wait_out_window=False)
        uploads = [j for j in local.jobs_submitted() if "key" in j["parameters"]]
        story.say(f"   S3SubmitFunction ran {invocations} time(s); jobs in Batch:")
        for job in uploads:
            story.say(f"     {job['job_type']:<11} {_job_line(job, 'key')}  ({_queue(job)})")
        local.upload(DEMO_FILES[0])  # a re-upload is a new object version: a new job, by design
        local.drain(wait_out_window=False)
        story.say(
            f"   re-uploading {DEMO_FILES[0]!r} makes a new version -> "
            f"{len([j for j in local.jobs_submitted() if 'key' in j['parameters']])} jobs"
        )

        # 4. A bucket outside the stack ------------------------------------------------------------
        story.step(
            4,
            "A file lands in a bucket created outside the stack",
            f"s3://{PARTNER_BUCKET} (its owner turned on EventBridge) -> AttachedBucketsRule -> "
            "IntakeQueue -> S3SubmitFunction",
        )
        order = "orders/2026-11-23/order 4711.json"
        local.upload_to(PARTNER_BUCKET, order)
        local.drain(wait_out_window=False)
        for job in local.jobs_submitted():
            if job["parameters"].get("bucket") == PARTNER_BUCKET:
                story.say(f"     {job['job_type']:<11} {_job_line(job, 'bucket', 'key')}")
        before = len(local.jobs_submitted())
        local.upload_to(PARTNER_BUCKET, "orders/loaded/order 4711.json")  # what the job writes back
        local.drain(wait_out_window=False)
        story.say(
            "   its result, written under the job type's OutputPrefix 'orders/loaded/', starts "
            f"{len(local.jobs_submitted()) - before} jobs (no loop)"
        )

        # 5. A failing job -------------------------------------------------------------------------
        story.step(
            5,
            "A thumbnails job runs out of memory, and the on-call reruns it",
            "Batch 'Job State Change' FAILED -> rule -> FailureNotifyFunction -> the job type's channel",
        )
        with local.jobs_fail(
            exit_code=137,
            reason="OutOfMemoryError: Container killed due to memory usage",
            log_lines=[
                "loading images/2026/panorama.png (48000x32000)",
                "decoding 1.5 gigapixels into RGBA",
                "MemoryError: cannot allocate 6.1 GiB for the decoded image",
            ],
        ):
            local.upload("images/2026/panorama.png")
            local.drain(wait_out_window=False)
        notified = local.publish_batch_events()
        story.say(f"   state-change events delivered to FailureNotifyFunction: {len(notified)}")
        local.publish_batch_events()  # nothing new: no second alert
        (alert,) = local.slack_posts()
        _show(story, alert)
        clicked = local.click(alert, user_id=ONCALL)
        (rerun,) = [j for j in local.jobs_submitted() if "-rerun-" in j["jobName"]]
        story.say(
            f"   <@{ONCALL}> clicks Rerun -> function URL -> SlackActionsFunction "
            f"(HTTP {clicked.result['statusCode']}); job in Batch: {rerun['jobName']}"
        )
        (update,) = local.slack.responses
        (rerun_line,) = [line.strip("[]") for line in _slack_text(update) if "Rerun by" in line]
        story.say(f"   the alert now says: {rerun_line}")

        # 6. A blocked queue ------------------------------------------------------------------------
        story.step(
            6,
            "The queue is blocked",
            "Batch 'Job Queue Blocked' -> same rule -> FailureNotifyFunction -> one message per queue+reason",
        )
        reason = (
            "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - Service cannot fulfill the capacity requested for "
            "instance type m6i.2xlarge"
        )
        before = len(local.slack_posts())
        blocked = local.publish_queue_blocked(reason) + local.publish_queue_blocked(reason)
        story.say(f"   the same blocked reason reported twice: {[i.result for i in blocked]}")
        for message in local.slack_posts()[before:]:
            _show(story, message)

        # 7. A failure storm -----------------------------------------------------------------------
        story.step(
            7,
            "A bad image fails an array job of 40 children",
            "children -> one digest per window (StormQueue delay fast-forwarded) -> StormDigestFunction",
        )
        before = len(local.slack_posts())
        with local.jobs_fail(exit_code=1):
            parent = local.submit_array_job("demo-fanout", size=40)
        storm = local.publish_batch_events()
        story.say(f"   {len(storm)} FAILED events delivered (parent + 40 children)")
        local.close_storm_windows()
        for message in local.slack_posts()[before:]:
            if parent in message.get("text", "") and "digest" not in message.get("text", "").lower():
                story.say(f"   Slack: {message['text'][:110]}")
        for message in local.slack_posts()[before:]:
            if message.get("text", "").startswith("Failure digest"):
                _show(story, message)

        # 8. The operator's view -------------------------------------------------------------------
        story.step(
            8,
            "One command for operators",
            f"batch-dispatch --stack {stack.name} status (the same command runs against AWS)",
        )
        for line in _operator_status(stack.name).splitlines():
            story.say(f"   {line}")

        # Summary ----------------------------------------------------------------------------------
        dlqs = local.dlq_messages()
        story.say()
        story.say(
            f"Summary: {len(local.jobs_submitted())} jobs submitted, "
            f"{len(local.slack_posts())} Slack message(s), "
            f"DLQs: {', '.join(f'{k}={len(v)}' for k, v in dlqs.items()) or 'none'}; "
            f"{story.elapsed():.1f} s"
        )
        story.say("Next: `make test` runs the checks; README.md says how to deploy to AWS.")
    return 0
