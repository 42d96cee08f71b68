"""Who may click Rerun (alerts/rerun_access.py): listed users at once, members of listed user groups as
Slack's `usergroups.users.list` says, read with the app's bot token and kept a short while.

Against the Slack stand-in on loopback (a real HTTP call, Slack's answer shapes and error codes) and moto
Secrets Manager for the bot token.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from batch_dispatch import execution_environment
from batch_dispatch.alerts import rerun_access
from batch_dispatch.job_types import RerunAllowed
from batch_dispatch.settings import ConfigurationError, SlackActionsSettings, from_environment
from emulator.slack_stub import APP_BOT_TOKEN, SlackStandIn

TOKEN_SECRET = "batch-dispatch-slack-bot-token"
ONCALL_GROUP, LEADS_GROUP = "S0ONCALL", "S0LEADS"
ALICE, BOB, LEAD, INTERN = "U0ALICE", "U0BOB", "W0LEAD", "U0INTERN"


@dataclass
class Slack:
    stand_in: SlackStandIn

    def lookups(self) -> list[str]:
        """The groups usergroups.users.list was asked about, in order."""
        return [str(call.payload.get("usergroup")) for call in self.stand_in.api_calls]


@pytest.fixture
def slack() -> Iterator[Slack]:
    """The stand-in's workspace: group S0ONCALL holds Alice and Bob; the bot token is in Secrets Manager."""
    with SlackStandIn() as stand_in, mock_aws():
        execution_environment.reset()
        boto3.client("secretsmanager").create_secret(Name=TOKEN_SECRET, SecretString=APP_BOT_TOKEN)
        stand_in.add_user_group(ONCALL_GROUP, [ALICE, BOB])
        yield Slack(stand_in)
        execution_environment.reset()


def settings_for(slack: Slack, **values: Any) -> SlackActionsSettings:
    chosen: dict[str, Any] = {
        "slack_signing_secret_name": "signing",
        "allowed_slack_users": LEAD,
        "allowed_slack_groups": ONCALL_GROUP,
        "slack_bot_token_secret_name": TOKEN_SECRET,
        "slack_api_url": slack.stand_in.api_url,
        "idempotency_table_name": "idempotency",
        "stack_name": "batch-dispatch-test",
        **values,
    }
    return SlackActionsSettings(**chosen)


def check(
    user_id: str, settings: SlackActionsSettings, seconds: float = 10.0, allowed: RerunAllowed | None = None
) -> rerun_access.Verdict:
    return rerun_access.check(user_id, settings, seconds=seconds, allowed=allowed)


# --------------------------------------------------------------------------------------------------------
# Allowed, or not


def test_a_member_of_an_allowed_group_may_rerun(slack):
    # Given Alice, not listed herself, in the allowed group S0ONCALL
    # When she clicks
    verdict = check(ALICE, settings_for(slack))

    # Then she is allowed through that group, which Slack was asked about with the bot token
    assert verdict == rerun_access.Verdict(allowed=True, via=ONCALL_GROUP)
    assert slack.lookups() == [ONCALL_GROUP]
    assert [call.status for call in slack.stand_in.api_calls] == [200]


def test_someone_in_no_allowed_group_may_not_rerun(slack):
    verdict = check(INTERN, settings_for(slack))

    assert verdict == rerun_access.Verdict(allowed=False)
    assert slack.lookups() == [ONCALL_GROUP]


def test_a_listed_user_is_allowed_without_reading_the_token_or_calling_slack(slack):
    # Given a stack whose bot token secret is gone
    boto3.client("secretsmanager").delete_secret(SecretId=TOKEN_SECRET, ForceDeleteWithoutRecovery=True)

    # When the listed lead clicks
    verdict = check(LEAD, settings_for(slack))

    # Then they are allowed, and Slack's API was not called
    assert verdict == rerun_access.Verdict(allowed=True, via="user")
    assert slack.stand_in.api_calls == []


def test_groups_are_asked_in_order_until_one_holds_the_clicker(slack):
    # Given two allowed groups, the lead's second
    slack.stand_in.add_user_group(LEADS_GROUP, [LEAD, "U0CTO"])
    settings = settings_for(
        slack, allowed_slack_users="", allowed_slack_groups=f"{ONCALL_GROUP},{LEADS_GROUP}"
    )

    # Then the lead is allowed by the second, and Alice by the first without asking about the second
    assert check(LEAD, settings).via == LEADS_GROUP
    assert check(ALICE, settings).via == ONCALL_GROUP
    assert slack.lookups() == [ONCALL_GROUP, LEADS_GROUP]


def test_without_groups_nobody_else_is_allowed_and_slack_is_not_called(slack):
    verdict = check(ALICE, settings_for(slack, allowed_slack_groups=""))

    assert verdict == rerun_access.Verdict(allowed=False)
    assert slack.stand_in.api_calls == []


# --------------------------------------------------------------------------------------------------------
# Cached member lists


def test_a_groups_members_are_kept_for_the_max_age_then_asked_again(slack):
    # Given Alice allowed by the group, its members kept for 1 s
    settings = settings_for(slack, slack_group_members_max_age_seconds=1)
    assert check(ALICE, settings).allowed

    # When she leaves the group, then clicks again at once
    slack.stand_in.add_user_group(ONCALL_GROUP, [BOB])
    within = check(ALICE, settings)
    # And once more after the max age
    time.sleep(1.1)
    after = check(ALICE, settings)

    # Then the second click is answered from the kept list (one call), the third from Slack again
    assert within.allowed
    assert not after.allowed
    assert slack.lookups() == [ONCALL_GROUP, ONCALL_GROUP]


def test_a_new_execution_environment_asks_again(slack):
    settings = settings_for(slack)
    check(ALICE, settings)

    execution_environment.reset()
    check(ALICE, settings)

    assert slack.lookups() == [ONCALL_GROUP, ONCALL_GROUP]


def test_a_failed_lookup_is_not_kept(slack):
    # Given a lookup Slack refused (rate limited)
    slack.stand_in.fail_api("ratelimited")
    assert check(ALICE, settings_for(slack)).failure is not None

    # Then the next click asks again, and is allowed
    assert check(ALICE, settings_for(slack)).allowed
    assert slack.lookups() == [ONCALL_GROUP, ONCALL_GROUP]


# --------------------------------------------------------------------------------------------------------
# Slack's errors and silence: refused, with what to check


def _revoke_token(slack: Slack) -> None:
    boto3.client("secretsmanager").put_secret_value(SecretId=TOKEN_SECRET, SecretString="xoxb-revoked")


@pytest.mark.parametrize(
    ("break_it", "reason", "says"),
    [
        (_revoke_token, "invalid_auth", "store the app's current Bot User OAuth Token"),
        (
            lambda slack: slack.stand_in.bot_scopes.discard("usergroups:read"),
            "missing_scope",
            "usergroups:read",
        ),
        (lambda slack: slack.stand_in.fail_api("ratelimited"), "ratelimited", "click again in a minute"),
        (lambda slack: slack.stand_in.fail_api("fatal_error"), "fatal_error", "Slack answered fatal_error"),
    ],
    ids=["invalid-auth", "missing-scope", "rate-limited", "other-error"],
)
def test_a_group_slack_will_not_list_refuses_the_click_saying_what_to_check(slack, break_it, reason, says):
    # Given a Slack that answers the lookup with an error
    break_it(slack)

    # When a member of the group clicks
    verdict = check(ALICE, settings_for(slack))

    # Then the click is refused, with Slack's reason and what to do about it
    assert not verdict.allowed
    assert verdict.failure is not None
    assert (verdict.failure.reason, verdict.failure.group_id) == (reason, ONCALL_GROUP)
    assert says in str(verdict.failure)
    assert APP_BOT_TOKEN not in str(verdict.failure)


def test_an_unknown_group_id_is_named(slack):
    verdict = check(ALICE, settings_for(slack, allowed_slack_groups="S0GONE"))

    assert verdict.failure is not None
    assert verdict.failure.reason == "no_such_subteam"
    assert "Slack has no user group S0GONE: check its ID" in str(verdict.failure)


def test_a_slow_slack_refuses_the_click_within_the_time_given(slack):
    # Given a Slack that takes 2 s to answer, and 0.3 s for the lookups
    slack.stand_in.delay_api(2.0)
    settings = settings_for(slack)
    rerun_access.bot_token(settings)  # read (and kept) before the clock starts, as on a warm function

    started = time.monotonic()
    verdict = check(ALICE, settings, seconds=0.3)
    elapsed = time.monotonic() - started

    # Then the click is refused as a timeout, well inside Slack's 3 seconds
    assert verdict.failure is not None
    assert verdict.failure.reason == "timeout"
    assert verdict.failure.transient
    assert elapsed < 1.0
    assert "did not answer within 0.3 s" in str(verdict.failure)


def test_the_time_is_shared_by_all_the_groups(slack):
    # Given two groups and a Slack slower than the time given for both
    slack.stand_in.add_user_group(LEADS_GROUP, [LEAD])
    slack.stand_in.delay_api(2.0)
    settings = settings_for(
        slack, allowed_slack_users="", allowed_slack_groups=f"{ONCALL_GROUP},{LEADS_GROUP}"
    )

    rerun_access.bot_token(settings)

    started = time.monotonic()
    verdict = check(LEAD, settings, seconds=0.4)

    # Then both lookups together stay inside it
    assert verdict.failure is not None
    assert time.monotonic() - started < 1.0


def test_a_failing_group_does_not_refuse_someone_another_group_allows(slack):
    # Given a first group Slack does not know, and a second that holds the lead
    slack.stand_in.add_user_group(LEADS_GROUP, [LEAD])
    settings = settings_for(slack, allowed_slack_users="", allowed_slack_groups=f"S0GONE,{LEADS_GROUP}")

    assert check(LEAD, settings) == rerun_access.Verdict(allowed=True, via=LEADS_GROUP)


def test_an_unreadable_bot_token_refuses_the_click_naming_the_secret(slack):
    boto3.client("secretsmanager").delete_secret(SecretId=TOKEN_SECRET, ForceDeleteWithoutRecovery=True)

    verdict = check(ALICE, settings_for(slack))

    assert verdict.failure is not None
    assert verdict.failure.reason == "bot_token_unavailable"
    assert f"Cannot read the Slack bot token secret {TOKEN_SECRET}" in str(verdict.failure)
    assert slack.stand_in.api_calls == []


def test_an_unreachable_api_url_is_a_connection_error(slack):
    # Given an API URL nothing listens on
    verdict = check(ALICE, settings_for(slack, slack_api_url="http://127.0.0.1:9/api/"))

    assert verdict.failure is not None
    assert verdict.failure.reason == "connection_error"
    assert "check SlackApiUrl" in str(verdict.failure)


# --------------------------------------------------------------------------------------------------------
# A job type's own lists


STACK = "batch-dispatch-test"
REGISTRY = f"/batch-dispatch/{STACK}/job-types"
MEDIA_GROUP = "S0MEDIA"


def definition(job_type: str, stack: str = STACK) -> str:
    return f"arn:aws:batch:us-east-1:123456789012:job-definition/{stack}_{job_type}:3"


def register(name: str, **lists: str) -> None:
    """A job type's registry entry, as job-types/job-type.yaml writes it."""
    entry = {"jobDefinition": definition(name).rsplit(":", 1)[0] + ":1", "jobQueue": "q", **lists}
    boto3.client("ssm").put_parameter(Name=f"{REGISTRY}/{name}", Type="String", Value=json.dumps(entry))


def test_a_job_types_users_replace_the_stacks(slack):
    # Given a job type that lets Alice rerun its jobs, in a stack that lets the lead and S0ONCALL
    thumbnails = RerunAllowed(users=frozenset({ALICE}), job_type="thumbnails")
    settings = settings_for(slack, allowed_slack_groups=ONCALL_GROUP)

    # Then Alice may, and the stack's lead and group members may not (no group lookup at all)
    assert check(ALICE, settings, allowed=thumbnails) == rerun_access.Verdict(allowed=True, via="user")
    assert check(LEAD, settings, allowed=thumbnails) == rerun_access.Verdict(allowed=False)
    assert check(BOB, settings, allowed=thumbnails) == rerun_access.Verdict(allowed=False)
    assert slack.stand_in.api_calls == []


def test_a_job_types_group_is_read_with_the_stacks_bot_token(slack):
    # Given a job type allowing S0MEDIA, a group the stack does not list
    slack.stand_in.add_user_group(MEDIA_GROUP, [INTERN])
    media = RerunAllowed(groups=(MEDIA_GROUP,), job_type="thumbnails")
    settings = settings_for(slack, allowed_slack_groups="")

    # Then its member may rerun the type's jobs, after one lookup of that group
    assert check(INTERN, settings, allowed=media) == rerun_access.Verdict(allowed=True, via=MEDIA_GROUP)
    assert slack.lookups() == [MEDIA_GROUP]


def test_a_job_types_group_without_the_stacks_bot_token_refuses_the_click_saying_so(slack):
    # Given a stack with no bot token, and a job type allowing a group
    settings = settings_for(slack, allowed_slack_groups="", slack_bot_token_secret_name="")
    media = RerunAllowed(groups=(MEDIA_GROUP,), job_type="thumbnails")

    verdict = check(INTERN, settings, allowed=media)

    # Then the click is refused with what to set, naming the job type, and Slack is not called
    assert not verdict.allowed
    assert verdict.failure is not None
    assert verdict.failure.reason == "no_bot_token"
    assert "Job type thumbnails's RerunAllowedSlackGroups needs the stack's SlackBotTokenSecretName" in str(
        verdict.failure
    )
    assert slack.stand_in.api_calls == []


def test_the_lists_of_the_job_type_whose_definition_ran_the_job_apply(slack):
    # Given a catalog with a job type naming its own users, and one naming none
    register("thumbnails", rerunAllowedSlackUsers=ALICE, rerunAllowedSlackGroups=MEDIA_GROUP)
    register("reports", rerunAllowedSlackUsers="", rerunAllowedSlackGroups="")
    settings = settings_for(slack, job_types_path=REGISTRY)
    stack_lists = RerunAllowed(users=frozenset({LEAD}), groups=(ONCALL_GROUP,))

    # Then a thumbnails job (any revision of its definition) takes the job type's lists
    assert rerun_access.allowed_for(definition("thumbnails"), settings) == RerunAllowed(
        users=frozenset({ALICE}), groups=(MEDIA_GROUP,), job_type="thumbnails"
    )
    # And the stack's apply to the job type without lists, the stack's own job type, a job type no longer
    # in the catalog, another stack's job and a job Batch no longer has
    for job_definition in (
        definition("reports"),
        definition("default"),
        definition("removed"),
        definition("thumbnails", stack="other-stack"),
        None,
    ):
        assert rerun_access.allowed_for(job_definition, settings) == stack_lists, job_definition


def test_without_a_catalog_path_every_job_takes_the_stacks_lists(slack):
    register("thumbnails", rerunAllowedSlackUsers=ALICE)

    allowed = rerun_access.allowed_for(definition("thumbnails"), settings_for(slack, job_types_path=""))

    assert allowed == RerunAllowed(users=frozenset({LEAD}), groups=(ONCALL_GROUP,))


# --------------------------------------------------------------------------------------------------------
# Settings


ENVIRONMENT = {"SLACK_SIGNING_SECRET_NAME": "s", "IDEMPOTENCY_TABLE_NAME": "t", "JOB_NAME_PREFIX": "stack"}


def test_groups_without_a_bot_token_are_a_configuration_error():
    with pytest.raises(ConfigurationError, match="ALLOWED_SLACK_GROUPS needs SLACK_BOT_TOKEN_SECRET_NAME"):
        from_environment(SlackActionsSettings, {**ENVIRONMENT, "ALLOWED_SLACK_GROUPS": ONCALL_GROUP})


def test_groups_with_a_bot_token_are_read_in_order_and_the_api_defaults_to_slack_com():
    settings = from_environment(
        SlackActionsSettings,
        {
            **ENVIRONMENT,
            "ALLOWED_SLACK_GROUPS": f"{LEADS_GROUP}, {ONCALL_GROUP}",
            "SLACK_BOT_TOKEN_SECRET_NAME": TOKEN_SECRET,
        },
    )

    assert settings.allowed_groups == (LEADS_GROUP, ONCALL_GROUP)
    assert settings.api_url == "https://slack.com/api/"


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("ALLOWED_SLACK_GROUPS", "S0ONCALL,U0ALICE", "not Slack user group ids: U0ALICE"),
        ("SLACK_API_URL", "http://slack.com/api/", "must be an https:// base URL"),
        ("SLACK_API_URL", "slack.com/api/", "must be an https:// base URL"),
    ],
)
def test_malformed_group_settings_are_refused_saying_why(variable, value, says):
    environment = {**ENVIRONMENT, "SLACK_BOT_TOKEN_SECRET_NAME": TOKEN_SECRET, variable: value}

    with pytest.raises(ConfigurationError, match=f"{variable}: ") as refused:
        from_environment(SlackActionsSettings, environment)

    assert says in str(refused.value)


@pytest.mark.parametrize(
    ("value", "api_url"),
    [
        ("https://slack-gov.com/api/", "https://slack-gov.com/api/"),
        ("https://slack.com/api", "https://slack.com/api/"),
        ("http://127.0.0.1:8123/api/", "http://127.0.0.1:8123/api/"),
    ],
)
def test_the_api_url_may_be_govslack_or_the_local_stand_in(value, api_url):
    settings = from_environment(SlackActionsSettings, {**ENVIRONMENT, "SLACK_API_URL": value})

    assert settings.api_url == api_url
