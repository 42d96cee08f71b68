"""`batch-dispatch dlq [show|redrive]`: what the stack's dead-letter queues hold, and replaying it.

`show` never consumes a message: it receives with a short visibility timeout and makes each message
visible again at once (VisibilityTimeout=0), so the DLQ alarms and a later redrive still see them.

`redrive` depends on what the DLQ holds:
- IntakeDLQ, StormDLQ (an SQS source queue's redrive target): SQS moves the messages back to the source
  queue (StartMessageMoveTask), where they are processed again, idempotently.
- ScheduleDLQ, FailureNotifyDLQ (async-invocation / EventBridge-target DLQs): each body is the event the
  function failed on; it is re-invoked asynchronously (InvocationType=Event) with that event, then
  deleted, so each message is replayed once. Idempotency makes a replay safe: a job already submitted
  or an alert already posted is not repeated.
Fix the cause first (the alarm and the function's logs say what it was).
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import click

from batch_dispatch_cli.context import Operator, operator_command
from batch_dispatch_cli.errors import OperatorError
from batch_dispatch_cli.output import Output
from batch_dispatch_cli.stack import DeployedStack
from batch_dispatch_cli.status import queue_depth

SHOWN_CHARS = 2000


class Redrive(NamedTuple):
    kind: str  # "queue": moved back to a source queue; "function": re-invoked on a function
    target_output: str  # the stack output naming the target


REDRIVES: dict[str, Redrive] = {
    "IntakeDLQ": Redrive("queue", "IntakeQueueUrl"),
    "StormDLQ": Redrive("queue", "StormQueueUrl"),
    "ScheduleDLQ": Redrive("function", "ScheduleSubmitFunctionName"),
    "FailureNotifyDLQ": Redrive("function", "FailureNotifyFunctionName"),
}


def chosen_queues(stack: DeployedStack, queue: str | None) -> dict[str, str]:
    queues = stack.dead_letter_queues
    if queue is None:
        return queues
    if queue not in queues:
        raise OperatorError(
            f"stack {stack.name} has no DLQ {queue!r}; --queue takes one of: {', '.join(queues)}"
        )
    return {queue: queues[queue]}


def peek(sqs: Any, url: str, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` messages, left in the queue (visible again immediately)."""
    seen: dict[str, dict[str, Any]] = {}
    for _ in range(max(1, limit // 10 + 2)):
        batch = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=max(1, min(10, limit)),
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


def described(message: dict[str, Any]) -> dict[str, Any]:
    attributes = message.get("MessageAttributes", {})
    return {
        "messageId": message["MessageId"],
        "receiveCount": int(message.get("Attributes", {}).get("ApproximateReceiveCount", 0)),
        "errorCode": attributes.get("ErrorCode", {}).get("StringValue"),
        "errorMessage": attributes.get("ErrorMessage", {}).get("StringValue"),
        "body": message["Body"],
    }


@click.command()
@click.argument("action", type=click.Choice(["show", "redrive"]), default="show")
@click.option("--queue", default=None, metavar="NAME", help="One DLQ, e.g. IntakeDLQ (show: default all).")
@click.option(
    "--max",
    "limit",
    default=10,
    show_default=True,
    type=click.IntRange(min=1),
    help="show: messages per DLQ.",
)
@click.option("--dry-run", is_flag=True, help="redrive: say what would happen, change nothing.")
@operator_command
def dlq(operator: Operator, action: str, queue: str | None, limit: int, dry_run: bool) -> int:
    """Show what the DLQs hold (without consuming it), or redrive one after fixing the cause."""
    stack = operator.stack
    if action == "show":
        return show(operator, chosen_queues(stack, queue), limit)
    if queue is None:
        raise OperatorError(f"redrive needs --queue, one of: {', '.join(stack.dead_letter_queues)}")
    ((name, url),) = chosen_queues(stack, queue).items()
    if name not in REDRIVES:
        raise OperatorError(f"{name} has no redrive target this command knows; move its messages by hand")
    return redrive(operator, name, url, dry_run)


def show(operator: Operator, queues: dict[str, str], limit: int) -> int:
    sqs, out = operator.aws.client("sqs"), operator.output
    report = []
    for name, url in queues.items():
        depth = queue_depth(sqs, url)
        messages = [described(m) for m in peek(sqs, url, limit)] if depth else []
        report.append({"name": name, "url": url, "messages": depth, "shown": messages})
        out.line(f"== {name}: ~{depth} message(s)  {url}", style="bold" if depth else None)
        for message in messages:
            out.line(f"-- {message['messageId']}  received {message['receiveCount']}x")
            if message["errorCode"] or message["errorMessage"]:  # why it was parked (the loop guard says)
                why = ": ".join(filter(None, (message["errorCode"], message["errorMessage"])))
                out.line(f"   parked: {why}")
            out.line(message["body"][:SHOWN_CHARS])
    out.document({"queues": report})
    return 0


def redrive(operator: Operator, name: str, url: str, dry_run: bool) -> int:
    stack, out = operator.stack, operator.output
    target = REDRIVES[name]
    sqs = operator.aws.client("sqs")
    document: dict[str, Any] = {"queue": name, "kind": target.kind, "dryRun": dry_run}
    if target.kind == "queue":
        source_url = stack.output(target.target_output)
        target_name = target.target_output.removesuffix("Url")
        document.update(target=target_name, messages=queue_depth(sqs, url))
        out.line(f"move {name} -> {target_name}" + (" (dry run)" if dry_run else ""))
        if not dry_run:
            task = sqs.start_message_move_task(
                SourceArn=_queue_arn(sqs, url), DestinationArn=_queue_arn(sqs, source_url)
            )
            document["taskHandle"] = task["TaskHandle"]
            out.line(f"started move task {task['TaskHandle']} (SQS ListMessageMoveTasks shows its progress)")
        out.document(document)
        return 0
    function = stack.output(target.target_output)
    document["target"] = function
    if dry_run:
        events = [described(m) for m in peek(sqs, url, queue_depth(sqs, url) or 1)]
        for message in events:
            out.line(f"re-invoke {function} with {message['messageId']} (dry run)")
        document.update(reinvoked=0, wouldReinvoke=[m["messageId"] for m in events])
        out.document(document)
        return 0
    reinvoked, skipped = reinvoke_all(operator.aws.client("lambda"), sqs, url, function, out)
    document.update(reinvoked=len(reinvoked), messageIds=reinvoked, skipped=skipped)
    out.document(document)
    out.line(f"{len(reinvoked)} event(s) re-invoked on {function}")
    if skipped:
        out.note(f"{len(skipped)} message(s) left in {name}: their bodies are not JSON events")
    return 0


def reinvoke_all(
    lambda_client: Any, sqs: Any, url: str, function: str, out: Output
) -> tuple[list[str], list[str]]:
    """Each message's event re-invoked once, then the message deleted. A body that is not JSON is left in
    the queue (invisible for a minute, so this pass does not see it again)."""
    reinvoked: list[str] = []
    skipped: list[str] = []
    with out.progress(f"Re-invoking {function}", queue_depth(sqs, url)) as advance:
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60).get(
            "Messages", []
        ):
            for message in messages:
                try:
                    event = json.loads(message["Body"])
                except ValueError:
                    skipped.append(message["MessageId"])
                    continue
                lambda_client.invoke(
                    FunctionName=function, InvocationType="Event", Payload=json.dumps(event).encode()
                )
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                reinvoked.append(message["MessageId"])
                out.line(f"re-invoked {function} with {message['MessageId']}")
                advance(1)
    return reinvoked, skipped


def _queue_arn(sqs: Any, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])
