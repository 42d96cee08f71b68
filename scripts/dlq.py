"""Look into and redrive the stack's dead-letter queues (boto3 only; needs AWS credentials for the stack).

    python scripts/dlq.py show   --stack-name batch-dispatch-dev [--dlq FailureNotifyDLQ] [--max 10]
    python scripts/dlq.py redrive --stack-name batch-dispatch-dev --dlq FailureNotifyDLQ [--dry-run]

`show` never consumes a message: it receives with a short visibility timeout and makes each message
visible again at once (VisibilityTimeout=0), so the DLQ alarms and a later redrive still see them.

`redrive` depends on what the DLQ holds:
- IntakeDLQ (an SQS source queue's redrive target): SQS moves the messages back to IntakeQueue
  (StartMessageMoveTask), the S3 notifications are processed again, idempotently.
- ScheduleDLQ, FailureNotifyDLQ (async-invocation / EventBridge-target DLQs): each message body is the
  event the function failed on; it is re-invoked asynchronously (InvocationType=Event) with that event,
  then deleted. Idempotency makes a replay safe: a job already submitted or an alert already posted is
  not repeated. Messages EventBridge itself dead-lettered carry the event as their body too.
- StormDLQ: the window-close messages go back to StormQueue (StartMessageMoveTask); closing is idempotent.
Fix the cause first (see the alarm and the function's logs: `make logs FN=...`).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import boto3

# DLQ logical id -> (kind, target logical id): "queue" moves messages back to the source queue,
# "function" re-invokes the function with each stored event.
DLQS: dict[str, tuple[str, str]] = {
    "IntakeDLQ": ("queue", "IntakeQueue"),
    "StormDLQ": ("queue", "StormQueue"),
    "ScheduleDLQ": ("function", "ScheduleSubmitFunction"),
    "FailureNotifyDLQ": ("function", "FailureNotifyFunction"),
}


def physical_ids(stack_name: str, cloudformation: Any) -> dict[str, str]:
    ids: dict[str, str] = {}
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_name):
        for resource in page["StackResourceSummaries"]:
            ids[resource["LogicalResourceId"]] = resource["PhysicalResourceId"]
    return ids


def queue_arn(sqs: Any, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def peek(sqs: Any, url: str, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` messages, left in the queue (visible again immediately)."""
    seen: dict[str, dict[str, Any]] = {}
    for _ in range(max(1, limit // 10 + 2)):
        batch = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(10, limit),
            VisibilityTimeout=20,
            WaitTimeSeconds=1,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        for message in batch:
            seen.setdefault(message["MessageId"], message)
            sqs.change_message_visibility(
                QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        if not batch or len(seen) >= limit:
            break
    return list(seen.values())[:limit]


def show(stack_name: str, names: list[str], limit: int, session: Any) -> int:
    sqs, ids = session.client("sqs"), physical_ids(stack_name, session.client("cloudformation"))
    for name in names:
        url = ids[name]
        depth = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        count = int(depth["Attributes"]["ApproximateNumberOfMessages"])
        print(f"== {name}: ~{count} message(s)  {url}")
        for message in peek(sqs, url, limit) if count else []:
            attributes = message.get("MessageAttributes", {})
            error = {
                k: v.get("StringValue") for k, v in attributes.items() if k in ("ErrorCode", "ErrorMessage")
            }
            received = message["Attributes"].get("ApproximateReceiveCount")
            print(f"-- {message['MessageId']}  received {received}x {error}")
            print(message["Body"][:2000])
    return 0


def redrive(stack_name: str, name: str, dry_run: bool, session: Any) -> int:
    kind, target = DLQS[name]
    sqs, ids = session.client("sqs"), physical_ids(stack_name, session.client("cloudformation"))
    url = ids[name]
    if kind == "queue":
        source, destination = queue_arn(sqs, url), queue_arn(sqs, ids[target])
        print(f"move {name} -> {target}" + (" (dry run)" if dry_run else ""))
        if not dry_run:
            task = sqs.start_message_move_task(SourceArn=source, DestinationArn=destination)
            print(f"started move task {task['TaskHandle']} (SQS ListMessageMoveTasks shows its progress)")
        return 0
    lambda_client = session.client("lambda")
    function = ids[target]
    moved = 0
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60).get(
        "Messages", []
    ):
        for message in messages:
            try:
                event = json.loads(message["Body"])
            except ValueError:
                print(f"skip {message['MessageId']}: body is not JSON", file=sys.stderr)
                continue
            print(f"re-invoke {target} with {message['MessageId']}" + (" (dry run)" if dry_run else ""))
            if dry_run:
                sqs.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
                continue
            lambda_client.invoke(
                FunctionName=function, InvocationType="Event", Payload=json.dumps(event).encode()
            )
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
        if dry_run:
            break
    print(f"{moved} event(s) re-invoked on {function}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/dlq.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["show", "redrive"])
    parser.add_argument("--stack-name", required=True)
    parser.add_argument("--dlq", choices=sorted(DLQS), help="one DLQ (show: default all; redrive: required)")
    parser.add_argument("--max", type=int, default=10, help="show: messages per DLQ")
    parser.add_argument("--dry-run", action="store_true", help="redrive: say what would happen")
    parser.add_argument("--region", default=None)
    args = parser.parse_args(argv)
    session = boto3.Session(region_name=args.region)
    if args.command == "show":
        return show(args.stack_name, [args.dlq] if args.dlq else sorted(DLQS), args.max, session)
    if not args.dlq:
        parser.error("redrive needs --dlq")
    return redrive(args.stack_name, args.dlq, args.dry_run, session)


if __name__ == "__main__":
    sys.exit(main())
