"""Priorities in the template: three job queues over one compute environment, and each job type's
Priority choosing its queue through the platform list the parent passes it.

Scope: template.yaml as CloudFormation would create it (deploy()) and job-types/job-type.yaml with its
Conditions evaluated for each Priority value, offline. The emulator test of the same mapping is in
tests/integration/test_job_catalog.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.template.cfn import Resolver, deploy, job_type_template, props

# What docs/job-types.md#priority promises: Batch places jobs of a higher-priority queue first.
QUEUE_PRIORITIES = {"HighPriorityJobQueue": 100, "JobQueue": 50, "LowPriorityJobQueue": 10}
QUEUE_OF_PRIORITY = {"high": "HighPriorityJobQueue", "normal": "JobQueue", "low": "LowPriorityJobQueue"}


def platform_list() -> list[Any]:
    """JobTypePlatform's entries, in the order job-type.yaml selects them by index."""
    entries: list[Any] = props(deploy(), "JobTypePlatform")["Value"]["Fn::Join"][1]
    return entries


def queue_of_job_type(priority: str) -> Any:
    """The parent's entry a job type with this Priority puts in its registry entry as its jobQueue."""
    template = job_type_template()
    placeholders = [f"platform-{i}" for i in range(len(platform_list()))]
    resolver = Resolver(template, {"Platform": ",".join(placeholders), "Priority": priority})
    value = resolver.resolve(template["Resources"]["RegistryEntry"]["Properties"]["Value"])
    index, selected_from = value["Fn::Sub"][1]["Queue"]["Fn::Select"]
    assert selected_from == placeholders
    return platform_list()[index]


def test_three_queues_of_falling_priority_share_the_one_compute_environment():
    stack = deploy()

    for queue, priority in QUEUE_PRIORITIES.items():
        properties = props(stack, queue)
        assert properties["Priority"] == priority, queue
        assert properties["ComputeEnvironmentOrder"] == [
            {"Order": 1, "ComputeEnvironment": {"Ref": "ComputeEnvironment"}}
        ], queue


@pytest.mark.parametrize(("priority", "queue"), QUEUE_OF_PRIORITY.items())
def test_a_job_types_priority_selects_its_queue(priority, queue):
    # Given a job type with this Priority
    # When CloudFormation evaluates its registry entry's queue
    selected = queue_of_job_type(priority)

    # Then it is the parent's queue of that priority
    assert selected == {"Ref": queue}


def test_a_job_type_takes_normal_priority_unless_told_otherwise():
    priority = job_type_template()["Parameters"]["Priority"]

    assert priority["Default"] == "normal"
    assert priority["AllowedValues"] == list(QUEUE_OF_PRIORITY)
