"""Failure storms, the messages: the "storm started" notice, a window's digest, and "storm over"."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from batch_dispatch.alerts.failure_classes import class_for
from batch_dispatch.alerts.storm.model import StormConfig, WindowReport
from batch_dispatch.aws.console_links import batch_job_url
from batch_dispatch.settings import SlackSettings, StormSettings
from batch_dispatch.slack.blocks import (
    code_safe,
    context,
    header,
    link_buttons,
    mention_lead,
    message,
    section,
    slack_text,
)

DIGEST_SAMPLES = 5


def format_utc(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def summarize_causes(causes: Iterable[tuple[str, int]], limit: int = 8) -> str:
    """`31 out of memory, 8 timed out; 1 cancelled`: failures by class, most frequent first, then the
    cancels apart (a cancel is not a failure to fix)."""
    items = [(class_for(key), count) for key, count in causes]
    failures = [(c, n) for c, n in items if not c.cancelled]
    cancels = [(c, n) for c, n in items if c.cancelled]
    text = ", ".join(f"{count} {failure.title}" for failure, count in failures[:limit])
    if len(failures) > limit:
        text += f", {sum(count for _, count in failures[limit:])} other"
    if cancels:
        text += ("; " if text else "") + ", ".join(f"{count} {c.title}" for c, count in cancels)
    return text


def cancelled_count(causes: Iterable[tuple[str, int]]) -> int:
    return sum(count for key, count in causes if class_for(key).cancelled)


def queue_name(queue_arn: str) -> str:
    return queue_arn.rsplit("/", 1)[-1] if queue_arn else "unknown queue"


def storm_notice(queue_arn: str, window: int, settings: StormSettings, mention: str) -> dict[str, Any]:
    """Posted at once by the first failure past the threshold (the digest only comes at the close)."""
    queue = slack_text(queue_name(queue_arn), 200)
    closes = format_utc(window + (settings.storm_window_seconds + settings.storm_grace_seconds) * 1000)
    text = (
        f"{mention_lead(mention)}:rotating_light: *Failure storm in queue {queue}*: more than "
        f"{settings.storm_threshold} jobs failed within {settings.storm_window_seconds} s. Individual alerts "
        f"are paused for this window; a digest of every further failure follows at about {closes}."
    )
    return message(
        f"Failure storm in queue {queue}: digest follows at {closes}",
        [header(f"Failure storm: {queue_name(queue_arn)}"), section(text)],
    )


class SlackRenderer:
    """The digest and "storm over" messages of the storm closer (closer.Renderer)."""

    def __init__(self, settings: SlackSettings) -> None:
        self.settings = settings

    def digest(self, report: WindowReport, config: StormConfig) -> dict[str, Any]:
        queue = slack_text(queue_name(report.queue_arn), 200)
        total, only_here = report.total, len(report.digested)
        causes = slack_text(summarize_causes(report.causes()), 1500)
        cancelled = cancelled_count(report.causes())
        failed = total - cancelled
        also = f", {cancelled} cancelled" if cancelled else ""
        span = f"{format_utc(report.window)} to {format_utc(report.window + config.window_seconds * 1000)}"
        lead = mention_lead(self.settings.slack_mention)
        split = (
            f"{report.individual} posted on {'its' if report.individual == 1 else 'their'} own above, "
            f"{only_here} counted only here"
        )
        if report.parent_id:
            parent = slack_text(report.parent_id, 200)
            title = f"{failed} children of array job {report.parent_id} failed{also}"
            intro = (
                f"{lead}:package: *{failed} children of array job `{code_safe(parent)}` failed{also}*: "
                f"{causes}.\n_{split}._"
            )
        else:
            title = f"{failed} jobs failed in {queue_name(report.queue_arn)}{also}"
            intro = (
                f"{lead}:rotating_light: *{failed} jobs failed in queue {queue}{also}*: {causes}.\n_{split}._"
            )
        blocks: list[dict[str, Any]] = [
            header(f"Failure digest: {title}"),
            section(f"{intro}\n_Window:_ {span} · queue *{queue}*"),
        ]
        lines = []
        for job in report.digested[:DIGEST_SAMPLES]:
            link = f" · <{job['log_url']}|log>" if job.get("log_url") else ""
            console = batch_job_url(self.settings.aws_region, job["job_id"])
            name, job_id = slack_text(job["job_name"], 120), code_safe(slack_text(job["job_id"], 120))
            cause = slack_text(class_for(job["cause"]).title, 200)
            lines.append(f"• <{console}|{name}> `{job_id}`: {cause}{link}")
        if lines:
            more = only_here - len(lines)
            suffix = f"\n_…and {more} more (all counted above)._" if more > 0 else ""
            blocks.append(section("*Examples*\n" + "\n".join(lines) + suffix))
        if report.parent_id:
            url = batch_job_url(self.settings.aws_region, report.parent_id)
            blocks.append(link_buttons([("Open array job in Batch console", url)]))
        blocks.append(
            context(
                f"Every failure in this window is counted here or in its own message ({report.total} in all)."
            )
        )
        fallback = f"Failure digest: {title}: {summarize_causes(report.causes())} ({split})"
        return message(slack_text(fallback, 3000), blocks)

    def storm_ended(
        self,
        group: str,
        queue_arn: str,
        since: int,
        last_window: int,
        total: int,
        report: WindowReport,
        config: StormConfig,
    ) -> dict[str, Any]:
        queue = slack_text(queue_name(queue_arn), 200)
        after = (
            f"the next window had {report.individual} failure(s), each posted on its own"
            if report.individual
            else f"no job failed in the {config.window_seconds} s after it"
        )
        text = (
            f":white_check_mark: *Failure storm in queue {queue} is over*: it began {format_utc(since)}; "
            f"{total} failures were counted in digests; {after}."
        )
        return message(
            f"Failure storm in queue {queue} is over ({total} failures in digests)",
            [header(f"Failure storm over: {queue_name(queue_arn)}"), section(text)],
        )
