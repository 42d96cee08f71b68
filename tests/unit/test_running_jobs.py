"""Jobs the emulator keeps RUNNING: ListJobs and DescribeJobs answers rewritten as Batch gives them
while those jobs run (moto's no-Docker Batch finishes every job when it is submitted).

Scope: emulator.running_jobs on answers shaped as moto gives them, and the moto server's rewriter hook
on the wire.
"""

from __future__ import annotations

import json

import boto3

from emulator.moto_server import MotoServer
from emulator.running_jobs import RunningJobs

QUEUE = "arn:aws:batch:us-east-1:123456789012:job-queue/jobs"
FINISHED = {
    "jobId": "j-1",
    "jobName": "slow",
    "status": "SUCCEEDED",
    "createdAt": 1000,
    "startedAt": 1001,
    "stoppedAt": 2000,
    "container": {"exitCode": 0},
    "jobDefinition": "arn:aws:batch:us-east-1:123456789012:job-definition/stack_default:1",
}
OTHER = {**FINISHED, "jobId": "j-2", "jobName": "quick"}


def held() -> RunningJobs:
    running = RunningJobs()
    running.hold(QUEUE, FINISHED)
    return running


def test_a_held_job_is_listed_as_running_and_not_as_finished():
    running = held()
    moto_succeeded = {"jobSummaryList": [FINISHED, OTHER]}

    as_running = running.list_jobs({"jobQueue": QUEUE, "jobStatus": "RUNNING"}, {"jobSummaryList": []})
    as_succeeded = running.list_jobs({"jobQueue": QUEUE, "jobStatus": "SUCCEEDED"}, moto_succeeded)

    (job,) = as_running["jobSummaryList"]
    assert job["status"] == "RUNNING"
    assert job["startedAt"] == 1001
    assert "stoppedAt" not in job
    assert "container" not in job
    assert [j["jobId"] for j in as_succeeded["jobSummaryList"]] == ["j-2"]
    # another queue's running jobs do not include it
    other_queue = running.list_jobs({"jobQueue": "other", "jobStatus": "RUNNING"}, {"jobSummaryList": []})
    assert other_queue["jobSummaryList"] == []


def test_with_a_filter_every_status_is_listed_and_the_held_job_is_running():
    listed = held().list_jobs(
        {"jobQueue": QUEUE, "filters": [{"name": "JOB_NAME", "values": ["*"]}]},
        {"jobSummaryList": [FINISHED, OTHER]},
    )

    assert {(j["jobId"], j["status"]) for j in listed["jobSummaryList"]} == {
        ("j-1", "RUNNING"),
        ("j-2", "SUCCEEDED"),
    }


def test_a_held_job_is_described_as_running_with_no_finished_attempt():
    described = held().describe_jobs(
        {"jobs": [{**FINISHED, "attempts": [{"stoppedAt": 2000}], "statusReason": "Essential container..."}]}
    )

    (job,) = described["jobs"]
    assert (job["status"], job["attempts"], job["startedAt"]) == ("RUNNING", [], 1001)
    assert "stoppedAt" not in job
    assert "statusReason" not in job


def test_the_servers_rewriter_changes_what_a_client_is_answered():
    # Given the moto server with a rewriter that marks every DescribeJobQueues answer
    with MotoServer() as server:

        def mark(request, status, body):
            if not request.path.endswith("/v1/describejobqueues"):
                return None
            return json.dumps({**json.loads(body), "nextToken": "rewritten"}).encode()

        server.app.rewriters.append(mark)

        # Then a client gets the rewritten answer (a valid one: its length was fixed)
        answer = boto3.client("batch").describe_job_queues()

    assert answer.get("nextToken") == "rewritten"
