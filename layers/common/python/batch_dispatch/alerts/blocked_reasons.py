"""Why a Batch job is stuck in RUNNABLE: the documented reason codes, in plain words, with what to check.

AWS Batch writes a coded reason into a stuck job's `statusReason` and into the "Batch Job Queue Blocked"
event (https://docs.aws.amazon.com/batch/latest/userguide/job_stuck_in_runnable.html), e.g.
`CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - Service cannot fulfill the capacity requested for instance type x`.
The code before " - " is stable; the text after it varies. Jobs that the queue's JobStateTimeLimitActions
cancel end FAILED with statusReason `Canceled by JobStateTimeLimit action due to reason: <code>`.
"""

from __future__ import annotations

import re
from typing import NamedTuple

QUEUE_BLOCKED_DETAIL_TYPE = "Batch Job Queue Blocked"
STATE_CHANGE_DETAIL_TYPE = "Batch Job State Change"

# Reasons the queue's JobStateTimeLimitActions may act on (the only ones AWS accepts for an action).
TIME_LIMIT_REASONS = (
    "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY",
    "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE",
    "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
)
# statusReason prefixes that mean "blocked" (and not just "waiting for its turn").
BLOCKED_PREFIXES = ("CAPACITY:", "MISCONFIGURATION:", "RESOURCE:", "ACTION_REQUIRED", "UNDETERMINED")

_CANCELLED = re.compile(
    r"^(Canceled|Cancelled|Terminated) by JobStateTimeLimit action due to reason:\s*(\S+)"
)
_CODE_SPLIT = re.compile(r"\s+[-\u2013\u2014]\s+")


class ReasonInfo(NamedTuple):
    title: str  # the reason in plain words
    checks: tuple[str, ...]  # what to check, in order, for THIS stack's queue (may name its parameters)
    checks_elsewhere: tuple[str, ...] = ()  # the same for any other queue: its own compute environment

    def checks_for(self, ours: bool) -> tuple[str, ...]:
        return self.checks if ours or not self.checks_elsewhere else self.checks_elsewhere


_QUOTAS = (
    "Check the account's EC2 vCPU quotas (Service Quotas: Running On-Demand / All Standard Spot "
    "Instance Requests): a quota at its limit looks like missing capacity."
)
REASONS: dict[str, ReasonInfo] = {
    "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY": ReasonInfo(
        "EC2 has no capacity for the instance types the compute environment may launch",
        (
            "Allow more instance types or families (template parameter `InstanceTypes`, e.g. `optimal` or "
            "several families) so Batch can fall back to types that are available.",
            "Spot: capacity for those types is short in the subnets' Availability Zones; add types, add "
            "subnets in more AZs, or use `ComputeType=EC2` for urgent work.",
            _QUOTAS,
        ),
        (
            "Allow more instance types or families in the queue's compute environment (its instanceTypes) "
            "so Batch can fall back to types that are available.",
            "Spot: capacity for those types is short in its subnets' Availability Zones; add types, add "
            "subnets in more AZs, or add an On-Demand compute environment to the queue for urgent work.",
            _QUOTAS,
        ),
    ),
    "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE": ReasonInfo(
        "The job needs more vCPUs than the compute environment may ever run (its maxvCpus)",
        (
            "Raise the template parameter `MaxvCpus` above the job's vCPUs, or lower `JobVcpu`.",
            "A job submitted with container overrides may ask for more than the job definition: check "
            "the job's resourceRequirements.",
        ),
        (
            "Raise the compute environment's maxvCpus above the job's vCPUs, or ask for fewer vCPUs in the "
            "job definition.",
            "A job submitted with container overrides may ask for more than the job definition: check "
            "the job's resourceRequirements.",
        ),
    ),
    "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT": ReasonInfo(
        "No instance type the compute environment may launch is large enough for the job "
        "(vCPU, memory or GPU)",
        (
            "Compare `JobVcpu`/`JobMemory` with the largest allowed instance type (`InstanceTypes`); leave "
            "some memory for the ECS agent (about 5%).",
            "Fargate: the vCPU/memory pair must be a valid Fargate combination (see the JobVcpu table).",
        ),
        (
            "Compare the job's vCPU and memory with the largest instance type its compute environment may "
            "launch (instanceTypes); leave some memory for the ECS agent (about 5%).",
            "Fargate: the vCPU/memory pair must be one Fargate accepts.",
        ),
    ),
    "MISCONFIGURATION:SERVICE_ROLE_PERMISSIONS": ReasonInfo(
        "AWS Batch's service role lacks a permission it needs to launch or manage capacity",
        (
            "This stack uses the service-linked role AWSServiceRoleForBatch: check that it exists "
            "(`aws iam get-role --role-name AWSServiceRoleForBatch`) and was not modified.",
            "If a custom service role is used, attach AWSBatchServiceRole to it.",
        ),
        (
            "Check the compute environment's service role (`aws batch describe-compute-environments`): the "
            "service-linked role AWSServiceRoleForBatch, or a custom role with AWSBatchServiceRole.",
        ),
    ),
    "MISCONFIGURATION:EC2_INSTANCE_CONFIGURATION_UNSUPPORTED": ReasonInfo(
        "The compute environment's EC2 configuration (AMI, instance type, architecture) is not supported",
        (
            "Check the compute environment's Ec2Configuration image type and the instance types: an arm64 "
            "image needs Graviton types (e.g. m7g), an x86 image needs x86 types.",
        ),
    ),
    "ACTION_REQUIRED": ReasonInfo(
        "The compute environment attached to the queue is INVALID or DISABLED",
        (
            "`aws batch describe-compute-environments` shows status INVALID with a statusReason: fix that "
            "(often the service-linked role, a deleted subnet or security group, or an instance profile).",
            "A DISABLED environment takes no jobs: set it to ENABLED (redeploy the stack).",
        ),
        (
            "`aws batch describe-compute-environments` shows status INVALID with a statusReason: fix that "
            "(often the service role, a deleted subnet or security group, or an instance profile).",
            "A DISABLED environment takes no jobs: set it to ENABLED "
            "(`aws batch update-compute-environment --state ENABLED`).",
        ),
    ),
    "UNDETERMINED": ReasonInfo(
        "AWS Batch cannot say why the job is not placed",
        (
            "Network: the job subnets need a route to ECR/the registry, S3 and CloudWatch Logs (a NAT "
            "gateway or VPC endpoints); EC2 instances that cannot reach ECS never join the cluster.",
            "Check the compute environment status, the Auto Scaling group's activity history and the "
            "vCPU quotas.",
        ),
    ),
}
RESOURCE_REASON = ReasonInfo(
    "The job waits for a consumable resource that is not available",
    ("Check the consumable resources the job requires and whether other jobs hold them.",),
)
UNKNOWN_REASON = ReasonInfo(
    "AWS Batch reports the job at the head of the queue as blocked",
    (
        "Read the status reason above and the Batch troubleshooting guide for jobs stuck in RUNNABLE.",
        "Check the compute environment status, subnets (route to ECR, S3, CloudWatch Logs) and vCPU quotas.",
    ),
)
NETWORK_HINT = (
    "If jobs never leave RUNNABLE without a coded reason, the subnets may have no route to the internet "
    "or to ECR: see docs/network.md in the batch-dispatch repository."
)


def reason_code(status_reason: str | None) -> str:
    """`CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - Service cannot...` -> the code before " - "."""
    text = (status_reason or "").strip()
    if not text:
        return "UNKNOWN"
    code = _CODE_SPLIT.split(text, maxsplit=1)[0].strip()
    return code[:100] if code else "UNKNOWN"


def describe(code: str) -> ReasonInfo:
    if code in REASONS:
        return REASONS[code]
    if code.startswith("RESOURCE:"):
        return RESOURCE_REASON
    return UNKNOWN_REASON


def is_blocked_reason(status_reason: str | None) -> bool:
    return bool(status_reason) and str(status_reason).strip().startswith(BLOCKED_PREFIXES)


def cancellation_code(status_reason: str | None) -> str | None:
    """The reason code if the job was cancelled by the queue's JobStateTimeLimitActions, else None."""
    match = _CANCELLED.match((status_reason or "").strip())
    return match.group(2) if match else None
