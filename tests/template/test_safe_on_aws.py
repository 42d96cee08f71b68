"""What a real account needs that the emulator cannot show: concurrency, metadata access, deletion order,
retained resources, Batch's retry matching, EventBridge limits.

Each test names the AWS behaviour it relies on; the links are in the template next to the setting.
"""

from __future__ import annotations

import pytest

from tests.template.cfn import deploy, props, rules_refusing, sam_template


# ------------------------------------------------------------------------------------------------
# A failure storm cannot take the account's concurrency (reserved concurrency)
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("function", "parameter", "default"),
    [
        ("FailureNotifyFunction", "NotifierReservedConcurrency", "5"),
        ("StormDigestFunction", "StormDigestReservedConcurrency", "2"),
    ],
)
def test_alert_functions_reserve_and_cap_their_concurrency(function, parameter, default):
    # Given the default stack and one that opts out of the reservation
    reserved = props(deploy(), function)
    unreserved = props(deploy(**{parameter: "0"}), function)

    # Then by default the function gets (and is capped at) its reservation; 0 leaves it unreserved
    assert str(sam_template()["Parameters"][parameter]["Default"]) == default
    assert reserved["ReservedConcurrentExecutions"] == default
    assert "ReservedConcurrentExecutions" not in unreserved


def test_throttled_failure_events_wait_within_the_notifiers_event_age():
    # Given the notifier's asynchronous invocation settings and its reservation's description
    invoke_config = props(deploy(), "FailureNotifyFunctionEventInvokeConfig")
    description = sam_template()["Parameters"]["NotifierReservedConcurrency"]["Description"]

    # Then events above the cap are retried by Lambda for the documented 6 hours, not dropped
    assert invoke_config["MaximumEventAgeInSeconds"] == 6 * 3600
    assert "retries them for up to 6 hours" in description


@pytest.mark.parametrize(("reserved", "refused"), [("0", False), ("1", True), ("2", False), ("10", False)])
def test_the_digest_reservation_covers_its_two_pollers(reserved, refused):
    # Given a digest queue polled with MaximumConcurrency 2
    mapping = props(deploy(), "StormDigestFunctionWindowClosed")
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 2}

    # Then a reservation of 1 (which would throttle a poller) is refused before deploying
    assert bool(rules_refusing(StormDigestReservedConcurrency=reserved)) is refused
