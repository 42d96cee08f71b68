"""Why a Batch job failed, in classes an on-call can act on: what each means and what to do, in plain words.

The table below is the one place that knows Batch's failure texts. The rules run in order and the first
that matches names the class; each class explains itself with the facts of the failure (the memory the
job had, the timeout and how long it ran, the exit code). Where Batch puts each text (checked against
captured events; samples in events/batch/): the job's `statusReason` says "Essential container in task
exited" for most container failures, the container's `reason` says why (OutOfMemoryError...), the attempt's
`statusReason` says "Task failed to start", "Host EC2 (instance i-...) terminated." or "Job attempt
duration exceeded timeout", and CancelJob/TerminateJob put the caller's own reason in `statusReason`.

Advice names the setting to change where the job's settings are (JobSettingNames): the stack's template
parameters (JobMemory, JobTimeoutSeconds...) for the default job type, the job type's own block in
template.yaml (Memory, TimeoutSeconds...) for a catalog job type, and the job definition itself for a job
of another stack (AdditionalAlertQueueArns).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from batch_dispatch.alerts.blocked_reasons import describe


class JobSettingNames(NamedTuple):
    """Where the failed job's memory, timeout and image are set, in the words the advice uses."""

    memory: str
    vcpu: str  # what the memory must fit on Fargate ("" = not ours to say)
    timeout: str
    image: str
    stack_platform: bool  # ran on this stack's compute environment and queues: its parameters
    # InstanceTypes, ComputeType and RunnableTimeLimitSeconds apply


# A job of another stack's queue (AdditionalAlertQueueArns): its own job definition.
JOB_DEFINITION_SETTINGS = JobSettingNames(
    memory="the MEMORY in the job definition's resourceRequirements (or a submit-time override)",
    vcpu="",
    timeout="the job definition's timeout",
    image="the job definition's image",
    stack_platform=False,
)
# The stack's own (default) job type: the template parameters.
STACK_PARAMETER_SETTINGS = JobSettingNames(
    memory="the template parameter `JobMemory`",
    vcpu="`JobVcpu`",
    timeout="the template parameter `JobTimeoutSeconds`",
    image="`JobImage`",
    stack_platform=True,
)


def job_type_settings(name: str) -> JobSettingNames:
    """A catalog job type's settings: the parameters of its block in template.yaml (job-type.yaml)."""
    block = f"the `{name}` job type's block in template.yaml"
    return JobSettingNames(
        memory=f"`Memory` in {block}",
        vcpu="its `Vcpu`",
        timeout=f"`TimeoutSeconds` in {block}",
        image=f"`Image` in {block}",
        stack_platform=True,
    )


class Facts(NamedTuple):
    """What the classification reads from a FAILED event (the last attempt's, for attempt fields)."""

    status_reason: str | None = None  # the job's
    attempt_reason: str | None = None  # the last attempt's statusReason
    container_reason: str | None = None
    exit_code: int | None = None
    memory_mib: int | None = None
    timeout_seconds: int | None = None
    ran_seconds: float | None = None
    array_size: int | None = None  # set for an array PARENT only
    array_failed: int | None = None
    depends_on: tuple[str, ...] = ()
    queue_cancel_code: str | None = None  # set when the queue's JobStateTimeLimitActions cancelled it
    setting_names: JobSettingNames = JOB_DEFINITION_SETTINGS  # where advice says to change the job


class FailureClass(NamedTuple):
    key: str  # stored in storm records; stable
    title: str  # plain words, also used to count a digest ("31 out of memory")
    cancelled: bool = False  # posted as CANCELLED, counted apart from failures
    mention: bool = True  # False: posted without the mention unless MENTION_ON_CANCEL says otherwise


class Diagnosis(NamedTuple):
    failure_class: FailureClass
    meaning: str
    next_step: str

    @property
    def key(self) -> str:
        return self.failure_class.key

    @property
    def title(self) -> str:
        return self.failure_class.title


OUT_OF_MEMORY = FailureClass("out_of_memory", "out of memory")
TIMED_OUT = FailureClass("timed_out", "timed out")
KILLED_BY_SIGNAL = FailureClass("killed_by_signal", "killed by signal")
HOST_RECLAIMED = FailureClass("host_reclaimed", "Spot/host reclaimed")
IMAGE_PULL_FAILED = FailureClass("image_pull_failed", "image pull failed")
FARGATE_RESOURCE_INIT = FailureClass("fargate_resource_init", "Fargate resource initialisation failed")
CANCELLED = FailureClass("cancelled", "cancelled", cancelled=True, mention=False)
QUEUE_TIME_LIMIT = FailureClass("queue_time_limit", "cancelled by the queue time limit", cancelled=True)
DEPENDENCY_FAILED = FailureClass("dependency_failed", "dependency failed")
PROGRAM_EXIT = FailureClass("program_exit", "non-zero exit")
ARRAY_CHILDREN_FAILED = FailureClass("array_children_failed", "array children failed")
UNKNOWN = FailureClass("unknown", "unknown cause")

# Matching is on lower-cased text with plain string tests, not regular expressions: compiling a dozen
# case-insensitive patterns costs every cold start a few milliseconds (bench/cold_start.py).
# Texts Batch itself writes that say only THAT something stopped, not why.
_GENERIC = (
    "essential container in task exited",
    "task failed to start",
    "array child job failed",
    "container stopped by ecs after essential container exited",
    "task is running",
)
_GENERIC_EXIT_CODE = "task failed due to container exit code "
# Texts Batch or ECS write themselves: never an operator's reason, even when they say "terminated".
_SYSTEM = (
    "host ec2",
    "job attempt duration exceeded timeout",
    "dependent job failed",
    "canceled by jobstatetimelimit",
    "cancelled by jobstatetimelimit",
    "terminated by jobstatetimelimit",
    "cannotpullcontainererror",
    "cannotstartcontainererror",
    "cannotinspectcontainererror",
    "cannotcreatecontainererror",
    "resourceinitializationerror",
    "outofmemoryerror",
    "dockertimeouterror",
    "timeout waiting for",
    "your spot task was interrupted",
    "task stopped",
    "capacity:",
    "misconfiguration:",
    "resource:",
)
_OPERATOR_WORDS = (
    "cancel",
    "terminat",
    "kill",
    "abort",
    "stop",
    "shutdown",
    "shut down",
    "operator",
    "manual",
    "by user",
    "by the user",
    "on request",
)
_OOM = ("outofmemory", "oomkilled", "out of memory")
_TIMEOUT = ("attempt duration exceeded timeout",)
_PULL = ("cannotpullcontainererror", "pull access denied", "errimagepull", "imagepullbackoff")
_RESOURCE_INIT = ("resourceinitializationerror",)
_SIGNALS = {137: "SIGKILL", 143: "SIGTERM", 139: "SIGSEGV (segmentation fault)", 134: "SIGABRT"}


def is_generic(text: str | None) -> bool:
    """True for Batch texts that say only that the container stopped (not why)."""
    lowered = str(text or "").strip().rstrip(".").lower()
    if lowered.startswith(_GENERIC_EXIT_CODE):
        return lowered[len(_GENERIC_EXIT_CODE) :].lstrip("-").isdigit()
    return lowered in _GENERIC


def cause_line(facts: Facts) -> str:
    """The cause in Batch's own words, most telling first: the job's status reason unless it is generic
    ("Essential container in task exited"), then the container's reason, then the attempt's; with the exit
    code (and its signal) when the text does not give it."""
    if facts.array_size is not None:
        failed = facts.array_failed if facts.array_failed is not None else "Some"
        return f"{failed} of {facts.array_size} children failed"
    candidates = (facts.status_reason, facts.container_reason, facts.attempt_reason)
    text = next((t.strip() for t in candidates if t and t.strip() and not is_generic(t)), "")
    code = facts.exit_code
    if code is None:
        return text or next((t.strip() for t in candidates if t and t.strip()), "") or "No reason given"
    signal = _SIGNALS[code].split(" ")[0] if code in _SIGNALS else None
    if not text:
        return f"Exit code {code}" + (f" ({signal})" if signal else "")
    if "exit code" in text.lower():
        return text
    return f"{text} (exit code {code}" + (f", {signal}" if signal else "") + ")"


def _texts(facts: Facts) -> list[str]:
    return [t for t in (facts.container_reason, facts.attempt_reason, facts.status_reason) if t]


def _any(needles: tuple[str, ...], facts: Facts) -> bool:
    """Some text of the failure contains one of `needles` (lower case)."""
    return any(needle in text.lower() for text in _texts(facts) for needle in needles)


def _host_lost(facts: Facts) -> bool:
    for text in (t.strip().lower() for t in _texts(facts)):
        if (text.startswith("host ec2") and "terminated" in text) or "your spot task was interrupted" in text:
            return True
    return False


def is_operator_cancel(facts: Facts) -> bool:
    """CancelJob/TerminateJob: the caller's own reason, worded like one, that Batch never writes itself.

    The reason is free text, so a reason that does not say cancel/terminate/kill/stop/abort/operator
    reads as "unknown" (and keeps its mention) rather than risk hiding a real failure as a cancel."""
    reason = (facts.status_reason or "").strip().lower()
    if not reason or reason.startswith(_SYSTEM) or is_generic(reason):
        return False
    return any(word in reason for word in _OPERATOR_WORDS)


# --- what each class means and what to do -----------------------------------------------------------


def _mib(value: int | None) -> str:
    return f"{value} MiB" if value else "the memory it was given"


def format_duration(seconds: float | None) -> str:
    """`11m 41s`, `1h 0m 5s`, `250 ms`; "unknown" for None."""
    if seconds is None:
        return "unknown"
    if seconds < 1:
        return f"{int(seconds * 1000)} ms"
    total = round(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    while parts and parts[0][0] == 0:
        parts.pop(0)
    return " ".join(f"{n}{unit}" for n, unit in parts) or "0s"


def _duration(seconds: float | None) -> str:
    return "an unknown time" if seconds is None else format_duration(seconds)


def _out_of_memory(f: Facts) -> tuple[str, str]:
    meaning = f"The container needed more than the {_mib(f.memory_mib)} it had, and the kernel killed it" + (
        f" (exit code {f.exit_code})." if f.exit_code is not None else "."
    )
    where = f.setting_names.memory
    if f.setting_names.vcpu:
        now = f"now {f.memory_mib} MiB; " if f.memory_mib else ""
        where += f" ({now}on Fargate it must fit {f.setting_names.vcpu})"
    return meaning, f"Raise {where}, or make the job use less memory; the log tail shows what it was doing."


def _timed_out(f: Facts) -> tuple[str, str]:
    limit = f"{_duration(f.timeout_seconds)} ({f.timeout_seconds} s)" if f.timeout_seconds else "its timeout"
    meaning = (
        f"The attempt ran {_duration(f.ran_seconds)} and hit the job's limit of {limit} "
        "(timeout.attemptDurationSeconds): Batch stopped it with SIGTERM, then SIGKILL 30 s later. "
        "A timed-out job is not retried."
    )
    return meaning, (
        f"If the work really takes longer, raise {f.setting_names.timeout}; if not, find where it hangs "
        "(the log tail shows the last thing it did)."
    )


def _killed_by_signal(f: Facts) -> tuple[str, str]:
    code = f.exit_code
    if code == 139:
        return (
            "The program crashed with a segmentation fault (SIGSEGV, exit code 139): a bug in native code, "
            "a library that does not match the image, or a corrupt input.",
            "Look at the log tail and the input it was reading; a recent image or library change is the "
            "usual suspect.",
        )
    if code == 134:
        return (
            "The program aborted itself (SIGABRT, exit code 134): a failed assertion or a fatal error in "
            "native code.",
            "The log tail shows the assertion or error message; fix that, then resubmit.",
        )
    if code == 143:
        return (
            "The container was asked to stop (SIGTERM, exit code 143) and did: a terminate, an instance "
            "shutting down or scaling in, or a stop it sent itself.",
            "Check the earlier attempts and the Batch console for what stopped it; resubmit if it was not "
            "on purpose.",
        )
    return (
        "The container was killed with SIGKILL (exit code 137) without an out-of-memory reason: a process "
        "inside it was killed by the kernel for memory, or it was stopped from outside and did not exit "
        "within the grace period.",
        "Check the log tail for the last thing it did; if memory was growing, raise "
        f"{f.setting_names.memory}.",
    )


def _host_reclaimed(f: Facts) -> tuple[str, str]:
    meaning = (
        "The EC2 instance running the job was terminated under it (a Spot reclaim, or the instance was "
        "lost), so the attempt was lost: the program did not fail on its own."
    )
    if f.setting_names.stack_platform:
        return meaning, (
            "Batch retries this (the job definition retries `Host EC2*`); every attempt was lost here, so "
            "allow more instance types (`InstanceTypes`) or run urgent work with `ComputeType=EC2`, then "
            "resubmit."
        )
    return meaning, (
        "Resubmit; if it keeps happening, retry on `Host EC2*` in the job definition's retry strategy and "
        "allow more instance types, or use On-Demand capacity for urgent work."
    )


def _image_pull_failed(f: Facts) -> tuple[str, str]:
    text = " ".join(_texts(f)).lower()
    if any(word in text for word in ("denied", "unauthorized", "not authorized", "403", "no basic auth")):
        likely = "Most likely permissions (or a repository that does not exist): the registry refused it."
    elif any(word in text for word in ("not found", "manifest unknown", "does not exist")):
        likely = "Most likely the tag: the image or tag does not exist in the registry."
    elif any(word in text for word in ("timeout", "i/o", "dial tcp", "deadline")):
        likely = "Most likely the network: the registry could not be reached."
    else:
        likely = "Batch did not say which of the three below it was."
    return (
        f"The container image could not be pulled, so the job never started. {likely}",
        f"Check, in order: the tag exists ({f.setting_names.image}; pushed, no typo); the execution role "
        "may pull it (ECR permissions, or registry credentials); the subnets reach the registry (NAT "
        "gateway or VPC endpoints for ECR API, ECR DKR and S3).",
    )


def _fargate_resource_init(f: Facts) -> tuple[str, str]:
    return (
        "Fargate could not prepare the task (registry credentials, secrets or the network interface), so "
        "the job never started.",
        "Check that the subnets reach ECR, Secrets Manager or SSM and CloudWatch Logs (NAT gateway, a "
        "public IP in a public subnet, or VPC endpoints), and that the execution role may read the "
        "secret the job uses (docs/network.md).",
    )


def _cancelled(f: Facts) -> tuple[str, str]:
    ran = "before it ran" if f.ran_seconds is None else f"after running {_duration(f.ran_seconds)}"
    return (
        f"Someone or something cancelled or terminated the job (CancelJob/TerminateJob) {ran}, with the "
        "reason shown; it did not fail on its own.",
        "Nothing to fix if this was intended; otherwise resubmit it.",
    )


def _queue_time_limit(f: Facts) -> tuple[str, str]:
    why = describe(f.queue_cancel_code or "").title
    limit = "`RunnableTimeLimitSeconds`" if f.setting_names.stack_platform else "its job state time limit"
    return (
        f"The job waited in RUNNABLE longer than the queue allows ({limit}) because: {why}. The queue "
        "cancelled it so the jobs behind it can run; it never started.",
        "Fix the reason (the blocked-queue message says what to check), then resubmit the job.",
    )


def _dependency_failed(f: Facts) -> tuple[str, str]:
    which = ", ".join(f.depends_on[:5]) if f.depends_on else "see dependsOn in the console"
    return (
        "A job this one depends on failed, so Batch failed this one without running it.",
        f"Fix and rerun the job it depends on ({which}), then resubmit this one with it.",
    )


def _program_exit(f: Facts) -> tuple[str, str]:
    return (
        f"The program exited with code {f.exit_code}: Batch and the container worked, the program "
        "reported an error.",
        f"Read the log tail (and what exit code {f.exit_code} means for this program), fix the code or "
        "the input, then resubmit.",
    )


def _array_children_failed(f: Facts) -> tuple[str, str]:
    failed = (
        f"{f.array_failed} of {f.array_size}" if f.array_failed is not None else f"Some of {f.array_size}"
    )
    return (
        f"{failed} children of this array job failed; the array job fails when any child fails.",
        "Each failed child is posted on its own or counted in the array job's digest with its cause: "
        "fix that, then resubmit the failed indexes.",
    )


def _unknown(f: Facts) -> tuple[str, str]:
    return (
        "Batch gave no reason this alert recognises.",
        "Read the status reason and the log tail; the Batch console shows every attempt.",
    )


class Rule(NamedTuple):
    failure_class: FailureClass
    matches: Callable[[Facts], bool]
    explain: Callable[[Facts], tuple[str, str]]


# THE table: first match wins.
RULES: tuple[Rule, ...] = (
    Rule(ARRAY_CHILDREN_FAILED, lambda f: f.array_size is not None, _array_children_failed),
    Rule(QUEUE_TIME_LIMIT, lambda f: f.queue_cancel_code is not None, _queue_time_limit),
    Rule(CANCELLED, is_operator_cancel, _cancelled),
    Rule(
        DEPENDENCY_FAILED,
        lambda f: (f.status_reason or "").strip().lower().startswith("dependent job failed"),
        _dependency_failed,
    ),
    Rule(OUT_OF_MEMORY, lambda f: _any(_OOM, f), _out_of_memory),
    Rule(TIMED_OUT, lambda f: _any(_TIMEOUT, f), _timed_out),
    Rule(HOST_RECLAIMED, _host_lost, _host_reclaimed),
    Rule(IMAGE_PULL_FAILED, lambda f: _any(_PULL, f), _image_pull_failed),
    Rule(FARGATE_RESOURCE_INIT, lambda f: _any(_RESOURCE_INIT, f), _fargate_resource_init),
    Rule(KILLED_BY_SIGNAL, lambda f: f.exit_code in _SIGNALS, _killed_by_signal),
    Rule(PROGRAM_EXIT, lambda f: f.exit_code not in (None, 0), _program_exit),
)
CLASSES: tuple[FailureClass, ...] = (*(rule.failure_class for rule in RULES), UNKNOWN)
_BY_KEY = {c.key: c for c in CLASSES}


def classify(facts: Facts) -> FailureClass:
    return next((rule.failure_class for rule in RULES if rule.matches(facts)), UNKNOWN)


def diagnose(facts: Facts) -> Diagnosis:
    """The class, what it means and what to do, with this failure's figures."""
    rule = next((rule for rule in RULES if rule.matches(facts)), None)
    meaning, next_step = rule.explain(facts) if rule else _unknown(facts)
    return Diagnosis(rule.failure_class if rule else UNKNOWN, meaning, next_step)


def class_for(key: str) -> FailureClass:
    """The class stored under `key`; a key this version does not know (older records) stands for itself."""
    return _BY_KEY.get(key) or FailureClass(key, key)


def signal_name(exit_code: int | None) -> str | None:
    return _SIGNALS.get(exit_code) if exit_code is not None else None
