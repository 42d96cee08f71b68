"""The emulator's in-process functions share os.environ: overlapping invocations must leave it as found."""

from __future__ import annotations

import os

import pytest

from emulator.process_environment import ProcessEnvironment


def test_overlapping_invocations_leaving_out_of_order_leave_the_environment_as_found(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.delenv("STORM_QUEUE_URL", raising=False)
    monkeypatch.setenv("ENVIRONMENT", "test")
    environment = ProcessEnvironment()
    first = environment.entered({"STORM_QUEUE_URL": "http://queue-a", "ENVIRONMENT": "dev"})
    second = environment.entered({"STORM_QUEUE_URL": "http://queue-b", "ENVIRONMENT": "dev"})

    first.__enter__()
    second.__enter__()
    assert os.environ["STORM_QUEUE_URL"] == "http://queue-b"
    first.__exit__(None, None, None)
    assert os.environ["STORM_QUEUE_URL"] == "http://queue-b"  # the second still runs
    second.__exit__(None, None, None)

    assert "STORM_QUEUE_URL" not in os.environ
    assert os.environ["ENVIRONMENT"] == "test"
