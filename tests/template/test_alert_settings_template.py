"""The alert settings a stack and each job type choose: template parameters, the notifier's environment
(its own queues among them) and the job type's registry entry, checked offline.

Scope: template.yaml and job-types/job-type.yaml as written, and what CloudFormation would create from
template.yaml for a parameter choice (tests/template/cfn.py). The settings' effect on the alerts is
tested in tests/unit/test_channels.py and tests/integration/test_job_catalog.py.
"""

from __future__ import annotations

import re

import pytest

from batch_dispatch.settings import FailureNotifySettings
from emulator.sam import read_template
from tests.template.cfn import REPO_ROOT, deploy, props
from tests.template.cfn import sam_template as _sam_template

JOB_TYPE_TEMPLATE = REPO_ROOT / "job-types" / "job-type.yaml"


def notifier_environment(**parameters: str) -> dict[str, object]:
    variables: dict[str, object] = props(deploy(**parameters), "FailureNotifyFunction")["Environment"][
        "Variables"
    ]
    return variables


def test_the_stacks_log_tail_lines_is_a_parameter_within_what_the_notifier_accepts():
    # Given the stack's parameter and the notifier's own bounds
    parameter = _sam_template()["Parameters"]["LogTailLines"]
    field = FailureNotifySettings.fields()["log_tail_lines"]

    # Then the parameter offers exactly what the notifier accepts, 20 by default, and reaches it
    assert (parameter["Type"], parameter["Default"]) == ("Number", 20)
    assert (parameter["MinValue"], parameter["MaxValue"]) == (field.ge, field.le) == (0, 100)
    assert notifier_environment()["LOG_TAIL_LINES"] == {"Fn::Sub": "${LogTailLines}"}


@pytest.mark.parametrize("value", ["true", "false"])
def test_the_stacks_mention_on_cancel_is_a_parameter_the_notifier_gets(value):
    parameter = _sam_template()["Parameters"]["MentionOnCancel"]

    assert parameter["Default"] == "false"
    assert parameter["AllowedValues"] == ["true", "false"]
    assert notifier_environment(MentionOnCancel=value)["MENTION_ON_CANCEL"] == value


def test_both_are_shown_with_the_other_alert_parameters():
    groups = _sam_template()["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    (alerts,) = [group for group in groups if group["Label"]["default"] == "Alerts"]

    assert {"LogTailLines", "MentionOnCancel"} <= set(alerts["Parameters"])


def job_type_parameter(name: str) -> dict[str, object]:
    parameter: dict[str, object] = read_template(JOB_TYPE_TEMPLATE)["Parameters"][name]
    return parameter


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        *[(value, True) for value in ("", "0", "7", "20", "100")],
        *[(value, False) for value in ("101", "-1", "07", "1.5", "all", " 5")],
    ],
)
def test_a_job_types_log_tail_lines_is_empty_for_the_stacks_or_0_to_100(value, accepted):
    parameter = job_type_parameter("LogTailLines")

    assert parameter["Default"] == ""
    assert bool(re.fullmatch(str(parameter["AllowedPattern"]), value)) is accepted


def test_a_job_types_mention_on_cancel_is_empty_for_the_stacks_true_or_false():
    parameter = job_type_parameter("MentionOnCancel")

    assert parameter["Default"] == ""
    assert parameter["AllowedValues"] == ["", "true", "false"]


def test_a_job_types_registry_entry_carries_both():
    entry = read_template(JOB_TYPE_TEMPLATE)["Resources"]["RegistryEntry"]["Properties"]["Value"]
    text = entry["Fn::Sub"][0]

    assert '"logTailLines": "${LogTailLines}"' in text
    assert '"mentionOnCancel": "${MentionOnCancel}"' in text


def test_the_notifier_knows_the_stacks_three_queues_as_its_own():
    assert notifier_environment()["STACK_JOB_QUEUE_ARNS"] == {
        "Fn::Sub": "${JobQueue},${HighPriorityJobQueue},${LowPriorityJobQueue}"
    }
