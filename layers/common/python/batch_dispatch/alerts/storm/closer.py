"""Failure storms, closing (StormDigestFunction): seal a window, read its jobs, post the digest once.

Sealing the window before reading it, and the ConditionCheck every job write carries (tracker.py), make
the read exact: a job is in the digest iff its write committed before the seal; a later one is refused
and re-recorded in a newer window, which gets its own close. So each failure is posted on its own or
counted in exactly one digest. A window with a digest marks its queue group "in storm" and schedules an
end check; the storm ends, with a follow-up message, when a later window closes with no digest or the
end check finds no newer window. Posts go through Powertools idempotency (post_once).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_dispatch.alerts.storm.close_schedule import WindowState
from batch_dispatch.alerts.storm.messages import SlackRenderer
from batch_dispatch.alerts.storm.model import DIGEST, CloseOutcome, StormConfig, WindowReport
from batch_dispatch.alerts.storm.store import number_attr
from batch_dispatch.aws.sqs_batch import process_messages
from batch_dispatch.observability import MetricUnit, logger, metrics
from batch_dispatch.settings import StormDigestSettings
from batch_dispatch.slack.post_once import post_once

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

# (idempotency key, message, channel: a webhook secret name or "") -> posted now (False: duplicate)
Poster = Callable[[str, dict[str, Any], str], bool]


class StormCloser(WindowState):
    def handle(self, message: dict[str, Any], post: Poster, render: Renderer) -> CloseOutcome | None:
        kind = message.get("kind")
        group, window = str(message["group"]), int(message["window"])
        queue_arn = str(message.get("queue") or "")
        if kind == "close":
            return self.close(group, window, queue_arn, post, render)
        if kind == "end-check":
            self.end_check(group, window, queue_arn, post, render)
            return None
        raise ValueError(f"unknown storm message kind {kind!r}")

    def close(self, group: str, window: int, queue_arn: str, post: Poster, render: Renderer) -> CloseOutcome:
        if not self.store.seal(group, window):
            # Its opener sent the close, then lost the race to open it: nothing was ever recorded there.
            logger.info("Closed a storm window that never opened", extra={"group": group, "window": window})
            return CloseOutcome(
                report=WindowReport(group=group, window=window, queue_arn=queue_arn), posted=[]
            )
        jobs = [
            {
                "job_id": item["sk"]["S"].removeprefix("job#"),
                "job_name": item.get("job_name", {}).get("S", "-"),
                "cause": item.get("cause", {}).get("S", "-"),
                "log_url": item.get("log_url", {}).get("S", ""),
                "channel": item.get("channel", {}).get("S", ""),
                "queue": item.get("queue", {}).get("S", ""),
                "decision": item.get("decision", {}).get("S", DIGEST),
            }
            for item in self.store.window_jobs(group, window)
        ]
        if not queue_arn:
            queue_arn = next((j["queue"] for j in jobs if j["queue"] not in ("", "-")), "")
        report = WindowReport(
            group=group,
            window=window,
            queue_arn=queue_arn,
            jobs=tuple(sorted(jobs, key=lambda j: j["job_id"])),
        )
        posted: list[str] = []
        if report.digested:
            if post(f"digest#{group}#{window}", render.digest(report, self.config), report.channel):
                posted.append("digest")
            if not group.startswith("array:"):
                self.store.mark_storm_window(group, window, len(report.digested))
                self.scheduler.send(
                    {"kind": "end-check", "group": group, "window": window, "queue": queue_arn},
                    not_before=self.clock() + self.config.window_seconds,
                )
        elif not group.startswith("array:"):
            state = self.store.group_state(group) or {}
            since = number_attr(state, "storm_since")
            storm_windows = [int(w) for w in state.get("storm_windows", {}).get("NS", [])]
            if since is not None and storm_windows and max(storm_windows) < window:
                total = number_attr(state, "storm_total") or 0
                last = max(storm_windows)
                message = render.storm_ended(group, queue_arn, since, last, total, report, self.config)
                if post(f"storm-ended#{group}#{since}", message, ""):
                    posted.append("storm-ended")
                self.store.end_storm(group, since)
        logger.info(
            "Storm window closed",
            extra={"group": group, "window": window, "digested": len(report.digested), "posted": posted},
        )
        return CloseOutcome(report=report, posted=posted)

    def end_check(self, group: str, window: int, queue_arn: str, post: Poster, render: Renderer) -> bool:
        """After a stormy window: if no failure opened a newer window since, the storm is over."""
        state = self.store.group_state(group) or {}
        since = number_attr(state, "storm_since")
        current = number_attr(state, "current")
        if since is None or (current is not None and current > window):
            return False  # already ended, or a newer window's close decides
        total = number_attr(state, "storm_total") or 0
        quiet = WindowReport(group=group, window=window, queue_arn=queue_arn)
        message = render.storm_ended(group, queue_arn, since, window, total, quiet, self.config)
        post(f"storm-ended#{group}#{since}", message, "")
        self.store.end_storm(group, since)
        return True


class Renderer(Protocol):
    """Builds the Slack messages (kept apart so the state machine can be tested with plain fakes)."""

    def digest(self, report: WindowReport, config: StormConfig) -> dict[str, Any]: ...

    def storm_ended(
        self,
        group: str,
        queue_arn: str,
        since: int,
        last_window: int,
        total: int,
        report: WindowReport,
        config: StormConfig,
    ) -> dict[str, Any]: ...


def close_window(
    body: str, settings: StormDigestSettings, lambda_context: LambdaContext | None = None
) -> dict[str, Any]:
    """One StormQueue message: close the window (or check the storm's end) and post what it calls for."""
    request = json.loads(body)

    def post(key: str, slack_message: dict[str, Any], channel: str = "") -> bool:
        posted = post_once("storm", key, slack_message, settings, lambda_context, secret_name=channel or None)
        if posted:
            metrics.add_metric(name="StormDigestPosted", unit=MetricUnit.Count, value=1)
        return posted

    closer = StormCloser(StormConfig.from_settings(settings))
    outcome = closer.handle(request, post, SlackRenderer(settings))
    if outcome is None:
        return {"kind": request.get("kind"), "group": request.get("group")}
    return {
        "kind": "close",
        "group": outcome.report.group,
        "digested": len(outcome.report.digested),
        "individual": outcome.report.individual,
        "posted": outcome.posted,
    }


def handle(
    event: dict[str, Any], settings: StormDigestSettings, lambda_context: LambdaContext | None = None
) -> PartialItemFailureResponse:
    """StormDigestFunction's one call. A failing message (Slack down, DynamoDB error) fails alone: SQS
    redelivers it, then parks it in StormDLQ."""
    return process_messages(event, lambda message: close_window(message.body, settings, lambda_context))
