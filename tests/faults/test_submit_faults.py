"""SubmitJob under a throttling storm and answering 5xx: every object / tick ends as exactly one job."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from batch_dispatch.aws import clients
from emulator.core import Emulator, s3_notification
from emulator.environments import ExecutionEnvironments
from emulator.throttle import SubmitJobThrottle
from tests.faults.conftest import FirstCallsFail, batch_server_error, dlq_of, s3_keys

TICKS = [f"2026-11-23T{hour:02d}:00:00Z" for hour in range(0, 24, 3)]


def test_a_throttling_storm_on_the_s3_path_ends_with_one_job_per_object(local: Emulator):
    # Given SubmitJob allows 5 calls/s (one token saved up) and 12 uploads arrive at once
    throttle = SubmitJobThrottle(rate_per_second=5, burst=1)
    throttle.install(clients.client("batch"))  # the function's own client
    keys = [f"incoming/storm/{n:02d}.csv" for n in range(12)]
    for key in keys:
        local.upload(key)

    # When the pollers drain the intake queue
    local.drain(retry_visibility_seconds=0)

    # Then the storm was real, and every object became exactly one job, none parked
    assert throttle.stats.throttled > 0
    assert s3_keys(local) == sorted(keys)
    assert local.dlq_messages()["IntakeDLQ"] == []


def test_a_throttling_storm_on_the_schedule_path_ends_with_one_job_per_tick(local: Emulator):
    # Given SubmitJob allows 3 calls/s (one token saved up)
    throttle = SubmitJobThrottle(rate_per_second=3, burst=1)
    throttle.install(clients.client("batch"))  # the function's own client

    # When Scheduler fires eight schedules' ticks at once, then EventBridge delivers each one again
    with ThreadPoolExecutor(max_workers=len(TICKS)) as pool:
        outcomes = list(pool.map(local.tick, TICKS))
        again = list(pool.map(local.tick, TICKS))

    # Then every tick is one job, every delivery succeeded, nothing is in the schedule DLQ
    assert throttle.stats.throttled > 0
    assert [o.error for o in outcomes + again] == [None] * 2 * len(TICKS)
    assert [o.result["duplicate"] for o in again] == [True] * len(TICKS)
    scheduled = sorted(job["parameters"]["scheduledTime"] for job in local.jobs_submitted())
    assert scheduled == sorted(TICKS)
    assert dlq_of(local, "ScheduleSubmitFunction") == []


@pytest.mark.parametrize("failures", [1, 5])
def test_batch_5xx_on_submit_is_retried_into_one_job_per_tick(local: Emulator, failures: int):
    # Given Batch answers HTTP 500 ServerException to the first SubmitJob calls
    fault = FirstCallsFail(failures, batch_server_error).install(
        clients.client("batch"), "before-send.batch.SubmitJob"
    )

    # When a tick is delivered (twice, EventBridge being at-least-once)
    first = local.tick("2026-11-23T12:00:00Z")
    again = local.tick("2026-11-23T12:00:00Z")

    # Then the 5xx were retried (by botocore, then by the submit's own backoff) into one job
    (job,) = local.jobs_submitted()
    assert fault.injected == failures
    assert first.error is None
    assert first.attempts == 1
    assert first.result["jobId"] == again.result["jobId"] == job["jobId"]
    assert dlq_of(local, "ScheduleSubmitFunction") == []


def test_batch_5xx_on_submit_is_retried_into_one_job_per_upload(local: Emulator):
    # Given Batch answers HTTP 500 ServerException to the first 7 SubmitJob calls
    fault = FirstCallsFail(7, batch_server_error).install(
        clients.client("batch"), "before-send.batch.SubmitJob"
    )
    keys = [f"incoming/5xx/{n}.csv" for n in range(4)]
    for key in keys:
        local.upload(key)

    # When the intake queue is drained
    local.drain(retry_visibility_seconds=0)

    # Then each upload is one job and the queue is clean
    assert fault.injected == 7
    assert s3_keys(local) == sorted(keys)
    assert local.dlq_messages()["IntakeDLQ"] == []


def test_the_throttle_in_front_of_moto_answers_429_too_many_requests_like_batch(local: Emulator):
    batch = boto3.client("batch", config=Config(retries={"max_attempts": 1, "mode": "standard"}))
    queue = local.stack.physical_ids["JobQueue"]
    definition = local.stack.physical_ids["JobDefinition"]
    throttle = SubmitJobThrottle(rate_per_second=0.01, burst=1)  # one call, then none for 100 s

    with throttle.in_front_of_moto(local.server):
        batch.submit_job(jobName="first", jobQueue=queue, jobDefinition=definition)
        with pytest.raises(ClientError) as refused:
            batch.submit_job(jobName="second", jobQueue=queue, jobDefinition=definition)

    assert refused.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert [job["jobName"] for job in local.jobs_submitted()] == ["first"]
    batch.submit_job(jobName="third", jobQueue=queue, jobDefinition=definition)  # uninstalled again


def test_invocations_in_their_own_processes_through_a_throttle_in_moto_submit_each_upload_once(
    local: Emulator,
):
    # Given 16 uploads' notifications, two of them delivered twice, SubmitJob at 8 calls/s in moto
    # itself, and the function in two warm execution environments (processes) sharing nothing with us
    keys = [f"incoming/processes/{n:02d}.csv" for n in range(16)]
    bodies = [s3_notification(local.bucket(), key, n) for n, key in enumerate(keys)]
    sqs: Any = boto3.client("sqs")
    for body in bodies + bodies[:2]:
        sqs.send_message(QueueUrl=local.stack.queue_url("IntakeQueue"), MessageBody=body)
    throttle = SubmitJobThrottle(rate_per_second=8, burst=1)

    # When the pollers drain the intake queue into those environments
    environments = ExecutionEnvironments(local.stack, "S3SubmitFunction", 2)
    with environments, throttle.in_front_of_moto(local.server):
        assert len(set(environments.pids)) == 2
        local.drain(retry_visibility_seconds=0, environments=environments)

    # Then the throttle answered 429s to the workers, and every object became exactly one job
    assert throttle.stats.throttled > 0
    assert s3_keys(local) == sorted(keys)
    assert local.dlq_messages()["IntakeDLQ"] == []
