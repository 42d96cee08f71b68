"""Links into the AWS console for jobs and log streams, in any partition."""

from __future__ import annotations

from urllib.parse import quote


def console_domain(region: str) -> str:
    if region.startswith("cn-"):
        return f"{region}.console.amazonaws.cn"
    if region.startswith("us-gov-"):
        return f"{region}.console.amazonaws-us-gov.com"
    return f"{region}.console.aws.amazon.com"


def batch_job_url(region: str, job_id: str) -> str:
    return (
        f"https://{console_domain(region)}/batch/home?region={region}#jobs/detail/{quote(job_id, safe=':')}"
    )


def batch_queue_url(region: str, queue_name: str) -> str:
    return f"https://{console_domain(region)}/batch/home?region={region}#queues/detail/{quote(queue_name)}"


def batch_compute_environments_url(region: str) -> str:
    """The compute environments list (a Queue Blocked event does not say which of the queue's it was)."""
    return f"https://{console_domain(region)}/batch/home?region={region}#compute-environments"


def console_encode(text: str) -> str:
    """CloudWatch console fragment encoding: URL-encode, then `%` -> `$25` (`/` -> `$252F`)."""
    return quote(text, safe="").replace("%", "$25")


def log_stream_url(region: str, log_group: str, log_stream: str) -> str:
    return (
        f"https://{console_domain(region)}/cloudwatch/home?region={region}"
        f"#logsV2:log-groups/log-group/{console_encode(log_group)}/log-events/{console_encode(log_stream)}"
    )
