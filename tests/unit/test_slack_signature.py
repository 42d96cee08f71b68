"""Slack's request signature (slack/signature.py), checked against Slack's own published example.

The example is the walk-through of Slack's "Verifying requests from Slack"
(https://api.slack.com/authentication/verifying-requests-from-slack): signing secret, timestamp and a
slash-command body, and the X-Slack-Signature Slack sent with them. Reproducing Slack's digest from Slack's
inputs is what shows the base string is built as Slack builds it (a test against our own signer would
agree with any mistake it shares). The emulator's Slack stand-in signs clicks with its own code; it must
reproduce the example too.
"""

from __future__ import annotations

import pytest

from batch_dispatch.slack.signature import MAX_AGE_SECONDS, SignatureError, signature, verify
from emulator.slack_stub import slack_signature

SLACK_EXAMPLE_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_EXAMPLE_TIMESTAMP = "1531420618"
SLACK_EXAMPLE_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
SLACK_EXAMPLE_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
SENT_AT = int(SLACK_EXAMPLE_TIMESTAMP)


def check(**changes: object) -> None:
    request: dict = {
        "timestamp": SLACK_EXAMPLE_TIMESTAMP,
        "received_signature": SLACK_EXAMPLE_SIGNATURE,
        "body": SLACK_EXAMPLE_BODY,
        "now": SENT_AT + 30,
    }
    request.update(changes)
    verify(SLACK_EXAMPLE_SECRET, **request)


def test_the_signature_is_slacks_for_slacks_published_example():
    assert (
        signature(SLACK_EXAMPLE_SECRET, SLACK_EXAMPLE_TIMESTAMP, SLACK_EXAMPLE_BODY)
        == SLACK_EXAMPLE_SIGNATURE
    )


def test_the_stand_in_signs_as_slack_does():
    assert slack_signature(SLACK_EXAMPLE_SECRET, SENT_AT, SLACK_EXAMPLE_BODY) == SLACK_EXAMPLE_SIGNATURE


def test_slacks_example_request_is_accepted_within_five_minutes():
    check()
    check(now=SENT_AT + MAX_AGE_SECONDS)
    check(now=SENT_AT - MAX_AGE_SECONDS)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"received_signature": SLACK_EXAMPLE_SIGNATURE[:-1] + "4"}, "bad_signature"),
        ({"body": SLACK_EXAMPLE_BODY.replace(b"roadrunner", b"coyote")}, "bad_signature"),
        ({"timestamp": str(SENT_AT + 1)}, "bad_signature"),  # the timestamp is signed too
        (
            {"received_signature": "a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"},
            "bad_signature",
        ),
        ({"received_signature": None}, "unsigned"),
        ({"timestamp": ""}, "unsigned"),
        ({"timestamp": "yesterday"}, "malformed"),
    ],
    ids=[
        "one-digit-off",
        "body-changed",
        "timestamp-changed",
        "no-v0-prefix",
        "no-signature",
        "no-timestamp",
        "nan",
    ],
)
def test_anything_slack_did_not_sign_is_refused(changes, reason):
    with pytest.raises(SignatureError) as refused:
        check(**changes)

    assert refused.value.reason == reason


def test_another_signing_secret_is_refused():
    with pytest.raises(SignatureError, match="does not match") as refused:
        verify(
            "another-apps-secret",
            timestamp=SLACK_EXAMPLE_TIMESTAMP,
            received_signature=SLACK_EXAMPLE_SIGNATURE,
            body=SLACK_EXAMPLE_BODY,
            now=SENT_AT,
        )

    assert refused.value.reason == "bad_signature"


def test_a_replay_after_five_minutes_is_refused_though_its_signature_is_good():
    with pytest.raises(SignatureError, match="signed 301 s ago") as refused:
        check(now=SENT_AT + MAX_AGE_SECONDS + 1)

    assert refused.value.reason == "stale"


def test_a_request_dated_in_the_future_is_refused():
    with pytest.raises(SignatureError, match="301 s in the future") as refused:
        check(now=SENT_AT - MAX_AGE_SECONDS - 1)

    assert refused.value.reason == "future"


def test_the_clock_is_read_when_no_time_is_given():
    # Slack's example is from 2018: against the real clock it is a replay
    with pytest.raises(SignatureError) as refused:
        check(now=None)

    assert refused.value.reason == "stale"
