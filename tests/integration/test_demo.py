"""`make demo` (python -m emulator demo) tells the whole story and ends well."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration


def test_the_demo_runs_the_whole_story_and_says_what_happened():
    completed = subprocess.run(
        [sys.executable, "-m", "emulator", "demo"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr[-3000:]
    story = completed.stdout
    for expected in (
        "The job catalog: 4 job types",
        "A file lands in a bucket created outside the stack",
        "partner-orders partner-orders-orders-2026-11-23-order-4711-json",
        "bucket='partner-orders-example'",
        "starts 0 jobs (no loop)",
        "duplicate=True",  # the tick delivered twice made one job
        "-> 1 job for 2 deliveries, in LowPriorityJobQueue",
        "csv-ingest  csv-ingest-incoming-csv-daily-report",
        "(HighPriorityJobQueue)",
        "Slack message (webhook secret batch-dispatch/slack-thumbnails)",
        "MemoryError: cannot allocate 6.1 GiB",  # the log tail in the alert
        "clicks Rerun -> function URL -> SlackActionsFunction (HTTP 200); job in Batch: thumbnails-",
        "the alert now says: :arrows_counterclockwise: Rerun by <@U0ONCALL>",
        "Failure digest: 40 children",
        "FailureNotifyDLQ=0",
        "batch-dispatch --stack batch-dispatch-local status",
        "thumbnails: 1 failed in the last 24 h",  # the operator command saw the failure
    ):
        assert expected in story, f"{expected!r} missing from the demo's story:\n{story[-3000:]}"
