"""`make dlq` / `make redrive` (scripts/dlq.py) against the stack deployed in moto."""

from __future__ import annotations

import json

import boto3
import pytest

from emulator.core import Emulator
from scripts import dlq
from tests.conftest import load_event

pytestmark = pytest.mark.integration


def park_in_intake_dlq(local: Emulator) -> str:
    event = load_event("s3/sqs-malformed.json")
    local.invoke("S3SubmitFunction", event)
    (body,) = local.dlq_messages()["IntakeDLQ"]
    return body


def test_show_prints_the_parked_messages_without_consuming_them(local: Emulator, capsys):
    body = park_in_intake_dlq(local)

    dlq.show(local.stack.name, ["IntakeDLQ"], 10, boto3.Session())

    out = capsys.readouterr().out
    assert "== IntakeDLQ: ~1 message(s)" in out
    assert body in out
    assert local.dlq_messages()["IntakeDLQ"] == [body]  # still there for the alarm and a redrive


def test_a_dry_run_redrive_of_the_intake_dlq_names_the_move_and_changes_nothing(local: Emulator, capsys):
    # moto has no StartMessageMoveTask (the API the real redrive uses), so only the dry run runs here.
    body = park_in_intake_dlq(local)

    dlq.redrive(local.stack.name, "IntakeDLQ", dry_run=True, session=boto3.Session())

    assert "move IntakeDLQ -> IntakeQueue (dry run)" in capsys.readouterr().out
    assert local.dlq_messages()["IntakeDLQ"] == [body]


def test_a_dry_run_redrive_of_a_function_dlq_changes_nothing(local: Emulator, capsys):
    event = load_event("schedule/malformed.json")
    local.invoke("ScheduleSubmitFunction", event)

    dlq.redrive(local.stack.name, "ScheduleDLQ", dry_run=True, session=boto3.Session())

    assert "re-invoke ScheduleSubmitFunction" in capsys.readouterr().out
    assert [json.loads(b) for b in local.dlq_messages()["ScheduleDLQ"]] == [event]
