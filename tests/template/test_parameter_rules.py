"""The template's Rules refuse exactly the parameter combinations AWS would refuse.

AWS's own tables are written out here, independently of the template, from the documentation:
- Fargate vCPU/memory pairs and EC2 whole vCPUs:
  https://docs.aws.amazon.com/batch/latest/APIReference/API_ResourceRequirement.html
- SQS event source mappings, BatchSize above 10 needs MaximumBatchingWindowInSeconds >= 1:
  https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html
- A managed compute environment needs subnets and security groups:
  https://docs.aws.amazon.com/batch/latest/APIReference/API_ComputeResource.html
The Rules are evaluated over the raw template (tests/template/cfn.py `rules_refusing`), as CloudFormation
does before it creates anything. That every accepted combination really deploys is checked in the
emulator by tests/integration/test_parameter_matrix.py. job-types/job-type.yaml carries its own copy of
the vCPU/memory Rules (a nested stack cannot use its parent's): it must refuse exactly what
template.yaml and AWS refuse.
"""

from __future__ import annotations

from itertools import product

import pytest

from tests.template.cfn import (
    COMPUTE_TYPES,
    VPC_MODES,
    combination,
    job_type_template,
    rules_refusing,
    rules_refusing_in,
    sam_template,
)


def _steps(first: int, last: int, step: int) -> set[int]:
    return set(range(first, last + 1, step))


# Fargate: memory (MiB) allowed for each vCPU value (the API reference's "type=VCPU" list).
FARGATE_MEMORY = {
    "0.25": {512, 1024, 2048},
    "0.5": _steps(1024, 4096, 1024),
    "1": _steps(2048, 8192, 1024),
    "2": _steps(4096, 16384, 1024),
    "4": _steps(8192, 30720, 1024),
    "8": _steps(16384, 61440, 4096),
    "16": _steps(32768, 122880, 8192),
}
# Every memory size the JobMemory parameter allows that is a whole multiple of 512 MiB, plus odd ones.
MEMORY_SAMPLE = sorted(_steps(512, 122880, 512) | {600, 2000, 30000, 122879})
BATCHING_SAMPLE = [(1, 0), (10, 0), (11, 0), (10000, 0), (11, 1), (100, 5), (10000, 60)]


def aws_accepts(compute_type: str, vcpu: str, memory: int, batch_size: int, window: int) -> bool:
    """What AWS documents for these values (the network is tested separately)."""
    if compute_type == "FARGATE":
        job_fits = memory in FARGATE_MEMORY[vcpu]
    else:  # EC2 and SPOT: at least one whole vCPU, at least 4 MiB
        job_fits = float(vcpu) >= 1 and float(vcpu).is_integer() and memory >= 4
    mapping_accepted = batch_size <= 10 or window >= 1
    return job_fits and mapping_accepted


def test_the_aws_tables_cover_every_vcpu_value_the_parameter_offers():
    # Given the JobVcpu parameter
    offered = sam_template()["Parameters"]["JobVcpu"]["AllowedValues"]

    # Then the oracle knows each value, so no combination is silently left out of the matrix
    assert set(offered) == set(FARGATE_MEMORY)


@pytest.mark.parametrize("vpc_mode", VPC_MODES)
@pytest.mark.parametrize("compute_type", COMPUTE_TYPES)
def test_rules_accept_exactly_what_aws_accepts(compute_type, vpc_mode):
    # Given every vCPU value, a dense memory sample and batch/window pairs, for this compute and network
    vcpus = sam_template()["Parameters"]["JobVcpu"]["AllowedValues"]
    disagreements = []
    checked = 0

    for vcpu, memory, (batch_size, window) in product(vcpus, MEMORY_SAMPLE, BATCHING_SAMPLE):
        # When CloudFormation evaluates the Rules for this combination
        refused = rules_refusing(
            **combination(
                compute_type,
                vpc_mode,
                JobVcpu=vcpu,
                JobMemory=str(memory),
                IntakeBatchSize=str(batch_size),
                IntakeBatchingWindowSeconds=str(window),
            )
        )
        checked += 1
        # Then it goes on exactly when AWS would accept the values
        if (refused == []) != aws_accepts(compute_type, vcpu, memory, batch_size, window):
            disagreements.append((vcpu, memory, batch_size, window, refused))

    assert checked == len(vcpus) * len(MEMORY_SAMPLE) * len(BATCHING_SAMPLE)
    assert disagreements == []


@pytest.mark.parametrize(
    ("vcpu", "memory", "named"),
    [("0.25", "4096", "512, 1024 or 2048"), ("1", "512", "2048 to 8192 in steps of 1024")],
)
def test_a_refused_fargate_pair_names_the_memory_sizes_that_fit(vcpu, memory, named):
    # Given a Fargate job with a memory size its vCPU value does not allow
    refused = rules_refusing(JobVcpu=vcpu, JobMemory=memory)

    # Then the deploy stops with a message naming the sizes that would work
    assert refused == [f"On FARGATE, JobVcpu {vcpu} needs JobMemory (MiB) of {named}."]


def test_a_large_intake_batch_without_a_window_is_refused_with_the_fix():
    refused = rules_refusing(IntakeBatchSize="100", IntakeBatchingWindowSeconds="0")

    assert len(refused) == 1
    assert "IntakeBatchingWindowSeconds of 1 or more" in refused[0]


@pytest.mark.parametrize("compute_type", COMPUTE_TYPES)
def test_choosing_only_a_compute_type_gives_a_stack_aws_accepts(compute_type):
    # Given a user who sets nothing but ComputeType
    # When CloudFormation evaluates the Rules with every other parameter at its default
    refused = rules_refusing(ComputeType=compute_type)

    # Then nothing is refused, and AWS accepts the default job size and batching too
    defaults = {name: str(spec["Default"]) for name, spec in sam_template()["Parameters"].items()}
    assert refused == []
    assert aws_accepts(
        compute_type,
        defaults["JobVcpu"],
        int(defaults["JobMemory"]),
        int(defaults["IntakeBatchSize"]),
        int(defaults["IntakeBatchingWindowSeconds"]),
    )


@pytest.mark.parametrize("missing", ["SubnetIds", "SecurityGroupIds"])
def test_an_existing_vpc_without_subnets_or_security_groups_is_refused(missing):
    chosen = combination("FARGATE", "Existing")
    chosen[missing] = ""

    assert rules_refusing(**chosen) == [f"VpcMode=Existing needs {missing}."]


def test_a_job_type_offers_the_stacks_vcpu_values_and_memory_range():
    # Given the job type's Vcpu/Memory parameters and the stack's JobVcpu/JobMemory
    job_type = job_type_template()["Parameters"]
    stack = sam_template()["Parameters"]

    # Then both offer the same values, all of which the AWS table knows
    assert job_type["Vcpu"]["AllowedValues"] == stack["JobVcpu"]["AllowedValues"]
    assert set(job_type["Vcpu"]["AllowedValues"]) == set(FARGATE_MEMORY)
    for bound in ("MinValue", "MaxValue"):
        assert job_type["Memory"][bound] == stack["JobMemory"][bound]


@pytest.mark.parametrize("compute_type", COMPUTE_TYPES)
def test_a_job_types_rules_accept_exactly_the_pairs_the_stack_and_aws_accept(compute_type):
    # Given every vCPU value and a dense memory sample on this compute type
    vcpus = job_type_template()["Parameters"]["Vcpu"]["AllowedValues"]
    disagreements = []

    for vcpu, memory in product(vcpus, MEMORY_SAMPLE):
        # When CloudFormation evaluates the job type's Rules, and the stack's for its own job
        job_type_refused = rules_refusing_in(
            job_type_template(), ComputeType=compute_type, Vcpu=vcpu, Memory=str(memory)
        )
        stack_refused = rules_refusing(ComputeType=compute_type, JobVcpu=vcpu, JobMemory=str(memory))
        accepted = (
            job_type_refused == [],
            stack_refused == [],
            aws_accepts(compute_type, vcpu, memory, 1, 1),
        )

        # Then the job type, the stack and AWS all agree on the pair (the copies cannot drift apart)
        if len(set(accepted)) != 1:
            disagreements.append((vcpu, memory, accepted, job_type_refused))

    assert disagreements == []
