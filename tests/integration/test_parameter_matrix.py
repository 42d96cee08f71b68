"""Every parameter combination the template's Rules accept deploys, and a scheduled job then runs.

tests/template/test_parameter_rules.py proves the Rules accept exactly what AWS accepts (AWS's tables
written out there). Here a sample of the accepted combinations, every ComputeType x VpcMode with three
vCPU/memory and batching choices each, is deployed into the emulator and used: the compute
environment, the job definition and the functions' settings are read back from moto, and one
scheduled tick must submit one job.
"""

from __future__ import annotations

from itertools import cycle

import boto3
import pytest

from emulator.core import Emulator
from tests.conftest import fresh_account
from tests.template.cfn import COMPUTE_TYPES, VPC_MODES, combination, rules_refusing

pytestmark = pytest.mark.integration

JOB_SIZES = {
    "FARGATE": [("0.25", "512"), ("4", "30720"), ("16", "122880")],
    "EC2": [("1", "2048"), ("2", "3000"), ("16", "65536")],
    "SPOT": [("1", "2048"), ("4", "8192"), ("8", "16384")],
}
BATCHING = [("10", "0"), ("10000", "60"), ("11", "1")]


def _sample() -> list[dict[str, str]]:
    batching = cycle(BATCHING)
    chosen = []
    for compute_type in COMPUTE_TYPES:
        for vpc_mode in VPC_MODES:
            for vcpu, memory in JOB_SIZES[compute_type]:
                batch_size, window = next(batching)
                chosen.append(
                    {
                        "ComputeType": compute_type,
                        "VpcMode": vpc_mode,
                        "JobVcpu": vcpu,
                        "JobMemory": memory,
                        "IntakeBatchSize": batch_size,
                        "IntakeBatchingWindowSeconds": window,
                    }
                )
    return chosen


SAMPLE = _sample()


def _existing_network() -> dict[str, str]:
    """A VPC of the user's: two subnets and a security group, created in the fresh moto account."""
    ec2 = boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.7.{i}.0/24")["Subnet"]["SubnetId"] for i in range(2)
    ]
    group = ec2.create_security_group(GroupName="jobs", Description="jobs", VpcId=vpc)["GroupId"]
    return {"SubnetIds": ",".join(subnets), "SecurityGroupIds": group}


def deployed(local: Emulator, chosen: dict[str, str]) -> Emulator:
    fresh_account(local)
    network = _existing_network() if chosen["VpcMode"] == "Existing" else {}
    local.parameter_overrides = {**chosen, **network}
    local.deploy()
    return local


@pytest.mark.parametrize(
    "chosen",
    SAMPLE,
    ids=lambda c: f"{c['ComputeType']}-{c['VpcMode']}-{c['JobVcpu']}vcpu-{c['IntakeBatchSize']}",
)
def test_an_accepted_combination_deploys_and_runs_a_job(module_emulator, chosen):
    # Given a combination the Rules accept
    assert rules_refusing(**combination(chosen["ComputeType"], chosen["VpcMode"], **chosen)) == []

    # When it is deployed into the emulator
    local = deployed(module_emulator, chosen)
    batch = boto3.client("batch")

    # Then the compute environment, job definition and intake mapping are the ones chosen
    (environment,) = batch.describe_compute_environments()["computeEnvironments"]
    resources = environment["computeResources"]
    assert resources["type"] == chosen["ComputeType"]
    if chosen["ComputeType"] == "SPOT":
        assert resources["allocationStrategy"] == "SPOT_PRICE_CAPACITY_OPTIMIZED"
    definition = batch.describe_job_definitions(jobDefinitions=[local.stack.outputs["JobDefinitionArn"]])
    requirements = {  # moto returns MEMORY as a number
        r["type"]: str(r["value"])
        for r in definition["jobDefinitions"][0]["containerProperties"]["resourceRequirements"]
    }
    assert requirements == {"VCPU": chosen["JobVcpu"], "MEMORY": chosen["JobMemory"]}
    intake = local.runtime.event_source("S3SubmitFunction")
    assert intake.batch_size == int(chosen["IntakeBatchSize"])
    assert intake.batching_window_seconds == float(chosen["IntakeBatchingWindowSeconds"])
    concurrency = boto3.client("lambda").get_function_concurrency(
        FunctionName=local.stack.physical_ids["FailureNotifyFunction"]
    )
    assert concurrency["ReservedConcurrentExecutions"] == 5

    # And a scheduled tick submits its job to the queue
    tick = local.tick("2026-01-15T06:00:00Z")
    assert tick.error is None
    assert len(local.jobs_submitted()) == 1


def test_the_longest_accepted_alert_queue_list_deploys(module_emulator):
    # Given as many extra alert queues as AdditionalAlertQueueArns accepts
    arns, index = [], 0
    while len(",".join(arns)) < 950 - 60:
        arns.append(f"arn:aws:batch:us-east-1:123456789012:job-queue/other-{index}")
        index += 1
    chosen = {"ComputeType": "FARGATE", "VpcMode": "CreatePublic", "AdditionalAlertQueueArns": ",".join(arns)}
    assert rules_refusing(**chosen) == []

    # When it is deployed
    local = deployed(module_emulator, chosen)

    # Then the notifier's rule watches our three queues and every one of them
    (rule,) = local.shim.rules()
    watched = rule.pattern["detail"]["jobQueue"]
    assert set(watched[:3]) == set(local.job_queue_arns())
    assert watched[3:] == arns
