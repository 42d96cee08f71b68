"""S3 intake: SQS batches of S3 notifications -> exactly one Batch job per uploaded object.

Moto plays Batch (a real queue and job definition, no-Docker mode) and DynamoDB (the idempotency
table), so names, ARNs and conditional writes are checked by the service model. Throttling, crashes
and a shrinking time budget come from a thin wrapper around the moto Batch client.
The fixtures are the files in events/s3/ (the same ones `sam local invoke -e` uses).
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import quote_plus

import boto3
import pytest
from botocore.exceptions import ClientError

from batch_dispatch import settings as settings_module
from batch_dispatch.aws import batch_jobs, clients
from batch_dispatch.aws.batch_jobs import RetryPolicy
from batch_dispatch.job_types import JobType, default_job_type
from batch_dispatch.observability import metrics
from batch_dispatch.settings import S3SubmitSettings
from batch_dispatch.submit.per_object import handle as handle_batch
from batch_dispatch.submit.s3_events import MalformedNotificationError, S3Upload, Skip, parse_body
from batch_dispatch.submit.upload_job import idempotency_key, upload_job_spec
from functions.s3_submit import app
from tests.conftest import FakeLambdaContext, MotoBatch, emitted_metrics, load_event

BUCKET = "batch-dispatch-intake-example"
PREFIX = "bd-test"
JOB_NAME_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")


# --- fixtures and helpers ------------------------------------------------------------------------


def job_type(prefix: str = PREFIX) -> JobType:
    """The default job type, its jobs named with `prefix` (what the function builds from its settings)."""
    return default_job_type(
        job_definition_arn="arn:aws:batch:us-east-1:123456789012:job-definition/job:1",
        job_queue_arn="arn:aws:batch:us-east-1:123456789012:job-queue/jobs-queue",
        job_name_prefix=prefix,
    )


def rewrite_body(event: dict[str, Any], index: int, change: Callable[[dict[str, Any]], None]) -> dict:
    """A copy of `event` whose message `index` has its (S3 notification) body changed by `change`."""
    event = copy.deepcopy(event)
    message = event["Records"][index]
    body = json.loads(message["body"])
    change(body)
    message["body"] = json.dumps(body)
    return event


def redelivered(event: dict[str, Any], count: int = 2, only: set[str] | None = None) -> dict:
    """The same messages as SQS redelivers them (ApproximateReceiveCount bumped)."""
    event = copy.deepcopy(event)
    event["Records"] = [r for r in event["Records"] if only is None or r["messageId"] in only]
    for message in event["Records"]:
        message["attributes"]["ApproximateReceiveCount"] = str(count)
    return event


def failed_ids(response: dict[str, Any]) -> set[str]:
    return {item["itemIdentifier"] for item in response["batchItemFailures"]}


def message_ids(event: dict[str, Any]) -> list[str]:
    return [message["messageId"] for message in event["Records"]]


class FlakyBatch:
    """The moto Batch client, with injected TooManyRequestsException, hooks and call counts."""

    def __init__(self, real: Any, *, throttles: float = 0) -> None:
        self.real = real
        self.throttles = throttles
        self.calls: Counter[str] = Counter()
        self.before_submit: Callable[[], None] | None = None
        self.after_submit: Callable[[], None] | None = None

    def submit_job(self, **request: Any) -> dict[str, Any]:
        self.calls["submit_job"] += 1
        if self.before_submit:
            self.before_submit()
        if self.throttles > 0:
            self.throttles -= 1
            raise ClientError(
                {
                    "Error": {"Code": "TooManyRequestsException", "Message": "Too Many Requests"},
                    "ResponseMetadata": {"HTTPStatusCode": 429},
                },
                "SubmitJob",
            )
        response = self.real.submit_job(**request)
        if self.after_submit:
            self.after_submit()
        return response

    def list_jobs(self, **request: Any) -> dict[str, Any]:
        self.calls["list_jobs"] += 1
        return self.real.list_jobs(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class LambdaCrash(BaseException):
    """The execution environment dies (timeout, OOM): nothing after it runs, no except Exception."""


@dataclass
class Aws:
    batch: Any  # the moto client
    dynamodb: Any
    queue_arn: str
    table: str

    def jobs(self) -> list[dict[str, Any]]:
        """Every job of our queue, described (jobName, parameters, tags...)."""
        listed = self.batch.list_jobs(
            jobQueue=self.queue_arn, filters=[{"name": "JOB_NAME", "values": [f"{PREFIX}*"]}]
        )["jobSummaryList"]
        if not listed:
            return []
        return self.batch.describe_jobs(jobs=[job["jobId"] for job in listed])["jobs"]

    def submitted_keys(self) -> list[str]:
        return sorted(job["parameters"]["key"] for job in self.jobs())

    def flaky_batch(self, throttles: float = 0) -> FlakyBatch:
        fake = FlakyBatch(self.batch, throttles=throttles)
        clients.use_client("batch", fake)
        return fake


@pytest.fixture
def aws(moto_batch: MotoBatch, monkeypatch: pytest.MonkeyPatch) -> Aws:
    """The shared moto Batch + idempotency table (tests/conftest.py), with this module's job prefix."""
    monkeypatch.setenv("JOB_NAME_PREFIX", PREFIX)
    settings_module.reset()
    # The shared Metrics was built at import, maybe before these variables existed.
    monkeypatch.setattr(metrics.provider, "namespace", "BatchDispatch")
    monkeypatch.setattr(metrics.provider, "service", "batch-dispatch")
    metrics.clear_metrics()
    # Fast, still jittered backoff: throttling tests count retries, not seconds.
    monkeypatch.setattr(
        batch_jobs, "RetryPolicy", partial(RetryPolicy, base_seconds=0.001, max_wait_seconds=0.005)
    )
    batch, dynamodb = boto3.client("batch"), boto3.client("dynamodb")
    clients.use_client("batch", batch)
    clients.use_client("dynamodb", dynamodb)
    return Aws(
        batch=batch, dynamodb=dynamodb, queue_arn=moto_batch.job_queue_arn, table=moto_batch.table_name
    )


@dataclass
class Invocation:
    response: dict[str, Any]
    metrics: Counter[str]


@pytest.fixture
def invoke(aws: Aws, capsys: pytest.CaptureFixture[str]) -> Callable[..., Invocation]:
    """Call the real handler (decorators included); metrics are read back from its EMF output."""

    def _invoke(event: dict[str, Any], context: FakeLambdaContext | None = None) -> Invocation:
        capsys.readouterr()
        response = app.lambda_handler(event, context or FakeLambdaContext(remaining_ms=60_000))
        return Invocation(response=response, metrics=emitted_metrics(capsys.readouterr().out))

    return _invoke


# --- uploads become jobs -------------------------------------------------------------------------


def test_an_upload_becomes_one_job_with_its_bucket_key_and_object_details(aws, invoke):
    # Given one ObjectCreated:Put notification from a versioned bucket
    event = load_event("s3/sqs-object-created.json")

    # When the function handles it
    result = invoke(event)

    # Then exactly one job runs for that object, with its details as string parameters
    assert result.response == {"batchItemFailures": []}
    (job,) = aws.jobs()
    assert job["parameters"] == {
        "bucket": BUCKET,
        "key": "incoming/2026/01/15/orders-0001.csv",
        "versionId": "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
        "size": "48213",
        "etag": "0f343b0931126a20f133d67c2b018a3b",
        "eventTime": "2026-01-15T10:30:00.123Z",
    }
    assert job["jobQueue"] == aws.queue_arn
    assert job["jobName"].startswith(f"{PREFIX}-incoming-2026-01-15-orders-0001-csv-")
    assert job["tags"]["batch-dispatch:trigger"] == "s3"
    assert result.metrics["JobSubmitted"] == 1


def test_odd_keys_reach_the_job_exactly_as_stored_in_s3(aws, invoke):
    # Given notifications for keys with spaces, '+', '%', unicode and deep paths (two in one body)
    event = load_event("s3/sqs-object-created-odd-keys.json")

    # When the function handles the batch
    result = invoke(event)

    # Then every record of every body became a job carrying the decoded key
    assert result.response == {"batchItemFailures": []}
    assert aws.submitted_keys() == sorted(
        [
            "incoming/my report 2026.csv",
            "incoming/a+b.csv",
            "incoming/100%.csv",
            "café/résumé.pdf",
            "data/2026/01/15/region=us-east-1/team=finance/part-00001-7c1f.snappy.parquet",
            "data/2026/01/15/region=us-east-1/team=finance/Q1 (final) v2.xlsx",
        ]
    )
    assert all(JOB_NAME_RULE.match(job["jobName"]) for job in aws.jobs())
    assert result.metrics["JobSubmitted"] == 6


def test_a_1024_byte_key_is_submitted_whole(aws, invoke):
    # Given an upload whose key is S3's maximum: 1,024 bytes of UTF-8, deep and non-ASCII
    head = ("données/" * 200).encode("utf-8")[:1000].decode("utf-8", errors="ignore")
    key = head + "x" * (1024 - len(head.encode("utf-8")))
    assert len(key.encode("utf-8")) == 1024

    def long_key(body: dict[str, Any]) -> None:
        body["Records"][0]["s3"]["object"]["key"] = quote_plus(key, safe="/")

    event = rewrite_body(load_event("s3/sqs-object-created.json"), 0, long_key)

    # When it is handled
    result = invoke(event)

    # Then the job has the whole key and a valid (shortened) name
    assert result.response == {"batchItemFailures": []}
    (job,) = aws.jobs()
    assert job["parameters"]["key"] == key
    assert JOB_NAME_RULE.match(job["jobName"])


def test_an_sns_wrapped_notification_is_unwrapped(aws, invoke):
    # Given S3 -> SNS -> SQS: the body is an SNS envelope whose Message is the S3 notification
    event = load_event("s3/sqs-sns-wrapped.json")

    # When it is handled
    result = invoke(event)

    # Then the wrapped upload became a job
    assert result.response == {"batchItemFailures": []}
    (job,) = aws.jobs()
    assert job["parameters"]["key"] == "incoming/via-sns/invoice-7781.pdf"
    assert job["parameters"]["size"] == "18874368"


# --- valid messages that ask for nothing ---------------------------------------------------------


def test_the_s3_test_event_submits_nothing_and_is_not_a_failure(aws, invoke):
    # Given the s3:TestEvent S3 sends when the notification is configured
    event = load_event("s3/sqs-test-event.json")

    # When it is handled
    result = invoke(event)

    # Then no job, no failure (the message is deleted)
    assert result.response == {"batchItemFailures": []}
    assert aws.jobs() == []
    assert result.metrics["ObjectSkipped"] == 1


@pytest.mark.parametrize(
    "event_name",
    [
        None,  # the fixture as captured: ObjectRemoved:Delete and ObjectRemoved:DeleteMarkerCreated
        "ObjectRestore:Completed",
        "ObjectRestore:Post",
        "LifecycleExpiration:Delete",
        "LifecycleTransition",
        "Replication:OperationFailedReplication",
        "ObjectTagging:Put",
    ],
)
def test_events_other_than_uploads_submit_nothing(aws, invoke, event_name):
    # Given notifications that are not uploads
    event = load_event("s3/sqs-object-removed.json")
    if event_name:

        def rename(body: dict[str, Any]) -> None:
            body["Records"][0]["eventName"] = event_name

        event = rewrite_body(rewrite_body(event, 0, rename), 1, rename)

    # When they are handled
    result = invoke(event)

    # Then nothing is submitted and nothing fails
    assert result.response == {"batchItemFailures": []}
    assert aws.jobs() == []
    assert result.metrics["ObjectSkipped"] == 2


def test_a_folder_marker_submits_nothing(aws, invoke):
    # Given the zero-byte "incoming/2026/01/16/" object the console creates for a folder
    event = load_event("s3/sqs-folder-marker.json")

    # When it is handled
    result = invoke(event)

    # Then no job and no failure
    assert result.response == {"batchItemFailures": []}
    assert aws.jobs() == []


# --- malformed messages --------------------------------------------------------------------------


def test_a_malformed_body_fails_alone_and_the_good_one_still_runs(aws, invoke):
    # Given a batch with a good notification and a body that is not JSON
    event = load_event("s3/sqs-malformed.json")
    bad_id = message_ids(event)[1]

    # When the batch is handled
    result = invoke(event)

    # Then only the bad message is reported (SQS redrive parks it in the DLQ) and the good job exists
    assert failed_ids(result.response) == {bad_id}
    assert aws.submitted_keys() == ["incoming/2026/01/15/orders-0003.csv"]
    assert result.metrics["RecordRejected"] == 1
    assert result.metrics["JobSubmitted"] == 1


def test_a_batch_of_only_malformed_bodies_reports_each_as_a_failed_item(aws, invoke):
    # Given a batch whose every body is garbage
    event = load_event("s3/sqs-malformed.json")
    event["Records"] = event["Records"][1:]

    # When it is handled
    result = invoke(event)

    # Then the handler still returns normally, listing the message (no Lambda error)
    assert failed_ids(result.response) == set(message_ids(event))


SECRET_LOOKING = "sk_live_do_not_log_me"


@pytest.mark.parametrize(
    ("body", "reason_part"),
    [
        (f"not json {SECRET_LOOKING}", "body is not JSON"),
        (json.dumps([SECRET_LOOKING]), "expected a JSON object"),
        (json.dumps({"hello": SECRET_LOOKING}), "no Records"),
        (json.dumps({"Records": []}), "Records"),
        (
            json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"object": {"key": "a"}}}]}),
            "s3.bucket",
        ),
        (
            json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}}}]}),
            "s3.object",
        ),
        (
            json.dumps(
                {
                    "Records": [
                        {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}, "object": {}}}
                    ]
                }
            ),
            "s3.object.key",
        ),
        (json.dumps({"Type": "Notification", "Message": SECRET_LOOKING}), "SNS Message is not JSON"),
        (json.dumps({"Type": "SubscriptionConfirmation", "Message": "{}"}), "Type"),
        (
            json.dumps(
                {
                    "Records": [
                        {
                            "eventName": "ObjectCreated:Put",
                            "eventTime": "2026-01-15T10:30:00.000Z",
                            "s3": {"bucket": {"name": "b"}, "object": {"key": "bad%FFkey"}},
                        }
                    ]
                }
            ),
            "percent-encoded UTF-8",
        ),
        (
            json.dumps(
                {
                    "Records": [
                        {
                            "eventName": "ObjectCreated:Put",
                            "s3": {"bucket": {"name": "b"}, "object": {"key": "k"}},
                        }
                    ]
                }
            ),
            "no versionId, sequencer or eventTime",
        ),
    ],
    ids=[
        "not-json",
        "json-list",
        "other-object",
        "no-records",
        "no-bucket",
        "no-object",
        "no-key",
        "sns-message-not-json",
        "sns-subscription-confirmation",
        "key-not-utf8",
        "nothing-to-tell-uploads-apart",
    ],
)
def test_bodies_of_another_shape_are_rejected_with_a_reason_that_never_quotes_them(body, reason_part):
    # Given a body that is not an S3 notification, an SNS-wrapped one or a test event
    # When it is parsed
    with pytest.raises(MalformedNotificationError) as caught:
        parse_body(body)

    # Then the reason says what is wrong, without repeating the content
    assert reason_part in caught.value.reason
    assert SECRET_LOOKING not in caught.value.reason


# --- exactly once --------------------------------------------------------------------------------


def test_the_same_notification_twice_in_one_batch_submits_one_job(aws, invoke):
    # Given S3 delivered one notification twice (two SQS messages, same body)
    event = load_event("s3/sqs-duplicate.json")

    # When the batch is handled
    result = invoke(event)

    # Then one job, both messages done
    assert result.response == {"batchItemFailures": []}
    assert len(aws.jobs()) == 1
    assert result.metrics["JobSubmitted"] == 1
    assert result.metrics["DuplicateSkipped"] == 1


def test_the_same_notification_in_two_invocations_submits_one_job(aws, invoke):
    # Given a notification already handled once
    event = load_event("s3/sqs-object-created.json")
    invoke(event)

    # When it arrives again in another invocation (a new SQS message)
    again = copy.deepcopy(event)
    again["Records"][0]["messageId"] = "another-delivery"
    result = invoke(again)

    # Then it is a duplicate, not a second job
    assert result.response == {"batchItemFailures": []}
    assert len(aws.jobs()) == 1
    assert result.metrics["DuplicateSkipped"] == 1


def test_two_uploads_of_the_same_key_are_two_jobs(aws, invoke):
    # Given the same key uploaded twice (each upload has its own sequencer)
    event = load_event("s3/sqs-duplicate.json")

    def second_upload(body: dict[str, Any]) -> None:
        body["Records"][0]["s3"]["object"]["sequencer"] = "0065A5C3D2E1F0AE99"

    event = rewrite_body(event, 1, second_upload)

    # When both are handled
    result = invoke(event)

    # Then each upload has its job
    assert result.response == {"batchItemFailures": []}
    assert aws.submitted_keys() == ["incoming/2026/01/15/orders-0004.csv"] * 2


def test_a_concurrent_delivery_fails_and_its_redelivery_is_a_duplicate(aws, invoke):
    # Given another invocation receives the same notification while this one is submitting it
    event = load_event("s3/sqs-object-created.json")
    concurrent = copy.deepcopy(event)
    concurrent["Records"][0]["messageId"] = "concurrent-delivery"
    fake = aws.flaky_batch()
    seen: dict[str, Any] = {}

    def other_invocation() -> None:
        if not seen:
            seen["response"] = handle_batch(
                concurrent, settings_module.load(S3SubmitSettings), FakeLambdaContext(remaining_ms=60_000)
            )

    fake.before_submit = other_invocation

    # When both run
    first = invoke(event)

    # Then the concurrent message fails (SQS redelivers it) and only one job exists
    assert first.response == {"batchItemFailures": []}
    assert failed_ids(seen["response"]) == {"concurrent-delivery"}
    assert len(aws.jobs()) == 1

    # And when SQS redelivers it, it is a duplicate
    retry = invoke(redelivered(concurrent))
    assert retry.response == {"batchItemFailures": []}
    assert retry.metrics["DuplicateSkipped"] == 1
    assert len(aws.jobs()) == 1


def test_a_failed_record_of_a_multi_record_body_is_retried_without_resubmitting_the_others(aws, invoke):
    # Given a body with two uploads, where Batch throttles the second until the time budget runs out
    event = load_event("s3/sqs-object-created-odd-keys.json")
    event["Records"] = event["Records"][-1:]
    context = FakeLambdaContext(remaining_ms=60_000)
    fake = aws.flaky_batch()

    def throttle_from_now_on() -> None:
        fake.throttles = math.inf
        context.remaining_ms = 8_000

    fake.after_submit = throttle_from_now_on

    # When it is handled, the message fails as a whole
    first = invoke(event, context)
    assert failed_ids(first.response) == set(message_ids(event))
    assert len(aws.jobs()) == 1

    # And when SQS redelivers it with Batch healthy again
    fake.throttles, fake.after_submit = 0, None
    retry = invoke(redelivered(event))

    # Then the second upload is submitted and the first is not submitted again
    assert retry.response == {"batchItemFailures": []}
    assert retry.metrics["DuplicateSkipped"] == 1
    assert retry.metrics["JobSubmitted"] == 1
    assert len(aws.jobs()) == 2


# --- throttling, time budget, crashes ------------------------------------------------------------


def test_throttled_submits_back_off_and_succeed_once(aws, invoke):
    # Given Batch answers TooManyRequestsException three times before accepting
    fake = aws.flaky_batch(throttles=3)

    # When an upload is handled
    result = invoke(load_event("s3/sqs-object-created.json"))

    # Then it is submitted once, after three throttled attempts that are counted
    assert result.response == {"batchItemFailures": []}
    assert fake.calls["submit_job"] == 4
    assert len(aws.jobs()) == 1
    assert result.metrics["SubmitThrottled"] == 3
    assert result.metrics["JobSubmitted"] == 1


def test_throttling_past_the_time_budget_fails_the_record_and_a_redelivery_submits_it(aws, invoke):
    # Given Batch throttles every call and each call uses a second of an 8-second budget
    fake = aws.flaky_batch(throttles=math.inf)
    context = FakeLambdaContext(remaining_ms=8_000)

    def one_second_passes() -> None:
        context.remaining_ms -= 1_000

    fake.before_submit = one_second_passes
    event = load_event("s3/sqs-object-created.json")

    # When the upload is handled
    first = invoke(event, context)

    # Then the function gives up before its timeout and reports the message failed
    assert failed_ids(first.response) == set(message_ids(event))
    assert aws.jobs() == []
    assert first.metrics["SubmitThrottled"] == fake.calls["submit_job"] > 1
    assert context.remaining_ms >= 1_000

    # And the idempotency record was released: the redelivery submits the job, once
    fake.throttles, fake.before_submit = 0, None
    retry = invoke(redelivered(event))
    assert retry.response == {"batchItemFailures": []}
    assert len(aws.jobs()) == 1
    assert retry.metrics["JobSubmitted"] == 1


def test_no_record_is_started_when_the_time_budget_is_nearly_spent(aws, invoke):
    # Given an invocation with one second left
    fake = aws.flaky_batch()
    event = load_event("s3/sqs-object-created-odd-keys.json")

    # When the batch is handled
    result = invoke(event, FakeLambdaContext(remaining_ms=1_000))

    # Then every message is reported failed at once, without calling Batch
    assert failed_ids(result.response) == set(message_ids(event))
    assert fake.calls["submit_job"] == 0
    assert result.metrics["RecordDeferred"] == 5
    assert aws.jobs() == []

    # And nothing is lost: the redelivery submits each upload once
    retry = invoke(redelivered(event))
    assert retry.response == {"batchItemFailures": []}
    assert len(aws.jobs()) == 6


def test_records_after_the_budget_runs_out_mid_batch_fail_fast(aws, invoke):
    # Given a batch of three uploads where the first submit uses up the time budget
    event = load_event("s3/sqs-object-created-odd-keys.json")
    event["Records"] = event["Records"][:3]
    later_ids = message_ids(event)[1:]
    context = FakeLambdaContext(remaining_ms=60_000)
    fake = aws.flaky_batch()

    def budget_gone() -> None:
        context.remaining_ms = 3_000

    fake.after_submit = budget_gone

    # When the batch is handled
    result = invoke(event, context)

    # Then the first is submitted, the others fail without a Batch call
    assert failed_ids(result.response) == set(later_ids)
    assert fake.calls["submit_job"] == 1
    assert len(aws.jobs()) == 1

    # And the redelivered ones are submitted later, once each
    fake.after_submit = None
    retry = invoke(redelivered(event, only=set(later_ids)))
    assert retry.response == {"batchItemFailures": []}
    assert len(aws.jobs()) == 3


def test_a_redelivery_adopts_the_job_a_crashed_attempt_submitted(aws, invoke):
    # Given a job for this upload is already in Batch (an earlier attempt crashed before saving it)
    event = load_event("s3/sqs-object-created.json")
    upload = parse_body(event["Records"][0]["body"])[0]
    assert isinstance(upload, S3Upload)
    settings = settings_module.load(S3SubmitSettings)
    spec = upload_job_spec(upload, job_type(PREFIX))
    aws.batch.submit_job(
        jobName=spec.job_name,
        jobQueue=settings.job_queue_arn,
        jobDefinition=settings.job_definition_arn,
        parameters=dict(spec.parameters),
    )

    # When SQS redelivers the message (ApproximateReceiveCount 2)
    result = invoke(redelivered(event))

    # Then the existing job is adopted, not duplicated
    assert result.response == {"batchItemFailures": []}
    assert len(aws.jobs()) == 1
    assert result.metrics["DuplicateSkipped"] == 1


def test_a_first_delivery_does_not_look_for_earlier_jobs(aws, invoke):
    # Given a first delivery (ApproximateReceiveCount 1)
    fake = aws.flaky_batch()

    # When it is handled
    invoke(load_event("s3/sqs-object-created.json"))

    # Then the hot path is one SubmitJob and no ListJobs
    assert fake.calls == Counter({"submit_job": 1})


@pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
def test_a_crash_between_submit_and_save_is_recovered_by_the_redelivery(aws, invoke):
    # Given the execution environment died right after SubmitJob (the record stays INPROGRESS)
    event = load_event("s3/sqs-object-created.json")
    fake = aws.flaky_batch()

    def die() -> None:
        raise LambdaCrash

    fake.after_submit = die
    with pytest.raises(LambdaCrash):
        invoke(event)
    (item,) = aws.dynamodb.scan(TableName=aws.table)["Items"]
    assert item["status"]["S"] == "INPROGRESS"

    # And the in-progress lock has expired (the function timeout has passed)
    aws.dynamodb.update_item(
        TableName=aws.table,
        Key={"id": item["id"]},
        UpdateExpression="SET in_progress_expiration = :past",
        ExpressionAttributeValues={":past": {"N": "1"}},
    )

    # When SQS redelivers the message
    fake.after_submit = None
    result = invoke(redelivered(event))

    # Then the job submitted before the crash is adopted: still one job
    assert result.response == {"batchItemFailures": []}
    assert len(aws.jobs()) == 1
    assert fake.calls["submit_job"] == 1


# --- job names and keys (pure) -------------------------------------------------------------------


def _upload(key: str, **fields: Any) -> S3Upload:
    values: dict[str, Any] = {"sequencer": "0065A5C3D2E1F0A9B8", "event_time": "2026-01-15T10:30:00.123Z"}
    values.update(fields)
    return S3Upload(bucket=BUCKET, key=key, event_name="ObjectCreated:Put", **values)


ODD_KEYS = [
    "report.csv",
    "my report 2026.csv",
    "a+b.csv",
    "100%.csv",
    "café/résumé.pdf",
    "日本語/ファイル.txt",
    "%%%",
    "-leading-dash",
    "a/" * 300 + "tail.bin",
    ("données/" * 120)[:1000],
]


@pytest.mark.parametrize("prefix", ["batch-dispatch", "x" * 80, "_under", "prod.env"])
@pytest.mark.parametrize("key", ODD_KEYS, ids=range(len(ODD_KEYS)))
def test_job_names_follow_batch_rules(prefix, key):
    # Given any key and prefix, When a job name is derived, Then Batch accepts it
    assert JOB_NAME_RULE.match(upload_job_spec(_upload(key), job_type(prefix)).job_name)


def test_distinct_uploads_get_distinct_job_names():
    # Given distinct keys, and the same key uploaded twice
    uploads = [_upload(key) for key in ODD_KEYS] + [
        _upload("report.csv", sequencer="0065A5C3D2E1F0A9B9"),
        _upload("a/" * 300 + "tail.bin", sequencer="0065A5C3D2E1F0A9B9"),
    ]

    # When their job names are derived
    names = [upload_job_spec(upload, job_type("batch-dispatch")).job_name for upload in uploads]

    # Then no two share a name, and the name still shows the end of the key
    assert len(set(names)) == len(names)
    assert names[0].startswith("batch-dispatch-report-csv-")
    assert names[4].startswith("batch-dispatch-cafe-resume-pdf-")


def test_the_idempotency_key_prefers_version_then_sequencer_then_event_time():
    # Given the identities S3 can send
    versioned = _upload("k", version_id="v1")
    suspended = _upload("k", version_id="null")  # versioning suspended: "null" is not unique
    unversioned_moto = _upload("k", sequencer=None, etag="abc")

    # Then each is keyed on what tells one upload from the next
    assert idempotency_key(versioned, job_type()) == {"bucket": BUCKET, "key": "k", "versionId": "v1"}
    assert idempotency_key(suspended, job_type()) == {
        "bucket": BUCKET,
        "key": "k",
        "sequencer": "0065A5C3D2E1F0A9B8",
    }
    assert idempotency_key(unversioned_moto, job_type()) == {
        "bucket": BUCKET,
        "key": "k",
        "eventTime": "2026-01-15T10:30:00.123Z",
        "etag": "abc",
    }


def test_a_body_with_mixed_records_yields_uploads_and_skips_in_order():
    # Given one body carrying an upload, a delete and a folder marker
    records = json.loads(load_event("s3/sqs-object-created.json")["Records"][0]["body"])["Records"]
    removed = json.loads(load_event("s3/sqs-object-removed.json")["Records"][0]["body"])["Records"]
    marker = json.loads(load_event("s3/sqs-folder-marker.json")["Records"][0]["body"])["Records"]
    body = json.dumps({"Records": records + removed + marker})

    # When it is parsed
    items = parse_body(body)

    # Then each record is classified, in order
    assert [type(item).__name__ for item in items] == ["S3Upload", "Skip", "Skip"]
    assert [item.reason for item in items if isinstance(item, Skip)] == ["not-an-upload", "folder-marker"]


def test_an_sns_wrapped_test_event_is_skipped_too():
    # Given S3 -> SNS -> SQS delivering the s3:TestEvent inside an SNS envelope
    envelope = json.loads(load_event("s3/sqs-sns-wrapped.json")["Records"][0]["body"])
    envelope["Message"] = load_event("s3/sqs-test-event.json")["Records"][0]["body"]

    # When it is parsed
    items = parse_body(json.dumps(envelope))

    # Then it is a skip, not a failure
    assert items == [Skip(reason="test-event", bucket=BUCKET)]


def _as_lambda_sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """SQS ReceiveMessage output in the shape Lambda's event source mapping delivers."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {"ApproximateReceiveCount": "1"}),
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            }
            for m in messages
        ]
    }


def test_notifications_as_moto_s3_sends_them_directly_and_through_sns_become_jobs(aws, invoke):
    # Given one bucket notifying the queue directly and another through an SNS topic
    s3, sqs, sns = boto3.client("s3"), boto3.client("sqs"), boto3.client("sns")
    queue_url = sqs.create_queue(QueueName="intake")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    topic_arn = sns.create_topic(Name="uploads")["TopicArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    for bucket, target in [
        (
            "intake-direct",
            {"QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}]},
        ),
        (
            "intake-via-sns",
            {"TopicConfigurations": [{"TopicArn": topic_arn, "Events": ["s3:ObjectCreated:*"]}]},
        ),
    ]:
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=target)
        # And a file with an awkward name is uploaded to each
        s3.put_object(Bucket=bucket, Key="in/my file+x%y/café.txt", Body=b"data")
    messages = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
    )["Messages"]

    # When the queue's messages (two s3:TestEvents, two uploads) are handled
    result = invoke(_as_lambda_sqs_event(messages, queue_arn))

    # Then each upload is one job with its bucket and exact key, and the test events are skipped
    assert len(messages) == 4
    assert result.response == {"batchItemFailures": []}
    assert sorted((job["parameters"]["bucket"], job["parameters"]["key"]) for job in aws.jobs()) == [
        ("intake-direct", "in/my file+x%y/café.txt"),
        ("intake-via-sns", "in/my file+x%y/café.txt"),
    ]
    assert result.metrics["ObjectSkipped"] == 2


# --- EventBridge-shaped S3 events (buckets the stack does not own) ---------------------------------


def test_an_eventbridge_object_created_event_is_one_upload_with_its_key_as_stored():
    # Given an EventBridge "Object Created" event, whose key is NOT URL-encoded
    body = load_event("s3/sqs-eventbridge-object-created.json")["Records"][0]["body"]

    # When it is parsed
    (upload,) = parse_body(body)

    # Then the key is taken as it is: "+" stays "+", "%" stays "%"
    assert isinstance(upload, S3Upload)
    assert upload.key == "landing/daily report+v2 100% café.csv"
    assert upload.bucket == "batch-dispatch-data-landing"
    assert upload.version_id == "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"
    assert upload.event_name == "ObjectCreated:PutObject"


def test_eventbridge_deletes_and_restores_submit_nothing_and_are_not_failures(aws, invoke):
    # Given "Object Deleted" and "Object Restore Completed" events
    event = load_event("s3/sqs-eventbridge-not-uploads.json")

    # When they are handled
    outcome = invoke(event)

    # Then nothing is submitted, nothing fails, and both are counted as skipped
    assert outcome.response == {"batchItemFailures": []}
    assert aws.jobs() == []
    assert outcome.metrics["ObjectSkipped"] == 2


def test_the_same_upload_as_a_notification_and_as_an_eventbridge_event_is_one_job(aws, invoke):
    # Given one upload of a key with a space, "+", "%" and "é", delivered by a bucket with both
    # notifications and EventBridge turned on: once URL-encoded (notification), once as stored
    key = "landing/daily report+v2 100% café.csv"
    eventbridge = load_event("s3/sqs-eventbridge-object-created.json")
    notification = rewrite_body(
        load_event("s3/sqs-object-created.json"),
        0,
        lambda body: body["Records"][0]["s3"].update(
            bucket={"name": "batch-dispatch-data-landing"},
            object={
                "key": quote_plus(key, safe="/"),
                "size": 2048,
                "versionId": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
            },
        ),
    )

    # When both arrive
    first, second = invoke(notification), invoke(eventbridge)

    # Then one job was submitted for it, and the second delivery was a duplicate
    assert first.response == second.response == {"batchItemFailures": []}
    assert [job["parameters"]["key"] for job in aws.jobs()] == [key]
    assert second.metrics["DuplicateSkipped"] == 1
