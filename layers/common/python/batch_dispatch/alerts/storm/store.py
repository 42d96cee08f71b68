"""Failure storms, the state: windows, counters and job decisions in the alert-state DynamoDB table.

Items: group#<g>/state (current window, storm bookkeeping), window#<g>#<start>/counter (rank counter,
sealed and scheduled flags), window#<g>#<start>/job#<id> (a job counted in the window), job#<id>/job (the
job's decision, so a redelivery reuses it). Every item expires (TTL attribute `expiration`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from batch_dispatch.alerts.storm.model import FailedJob, StormDecision
from batch_dispatch.aws import clients

RECORD_TTL_SECONDS = 7 * 24 * 3600


class StormStore:
    def __init__(self, table_name: str, client: Any = None, clock: Callable[[], float] = time.time) -> None:
        self.table = table_name
        self.client = client or clients.client("dynamodb")
        self.clock = clock

    def _expiration(self) -> dict[str, str]:
        return {"N": str(int(self.clock()) + RECORD_TTL_SECONDS)}

    @staticmethod
    def window_pk(group: str, window: int) -> str:
        return f"window#{group}#{window}"

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        item = self.client.get_item(
            TableName=self.table, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
        ).get("Item")
        return item or None

    def job_record(self, job_id: str) -> dict[str, Any] | None:
        return self.get(f"job#{job_id}", "job")

    def group_state(self, group: str) -> dict[str, Any] | None:
        return self.get(f"group#{group}", "state")

    def job_and_group(self, job_id: str, group: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The job's decision record and its group's state, in one consistent read."""
        wanted = {("job#" + job_id, "job"): "job", (f"group#{group}", "state"): "group"}
        request: dict[str, Any] = {
            self.table: {
                "Keys": [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in wanted],
                "ConsistentRead": True,
            }
        }
        found: dict[str, dict[str, Any]] = {}
        for attempt in range(8):
            answer = self.client.batch_get_item(RequestItems=request)
            for item in answer.get("Responses", {}).get(self.table, []):
                found[wanted[(item["pk"]["S"], item["sk"]["S"])]] = item
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                return found.get("job"), found.get("group")
            time.sleep(0.05 * 2**attempt)
        raise RuntimeError("DynamoDB kept returning UnprocessedKeys")

    def open_window(self, group: str, new_window: int, previous: int | None) -> bool:
        """Make `new_window` the group's current window, unless another writer changed it first."""
        condition = "attribute_not_exists(#cur)" if previous is None else "#cur = :prev"
        values: dict[str, Any] = {":w": {"N": str(new_window)}, ":exp": self._expiration()}
        if previous is not None:
            values[":prev"] = {"N": str(previous)}
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"pk": {"S": f"group#{group}"}, "sk": {"S": "state"}},
                UpdateExpression="SET #cur = :w, expiration = :exp",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#cur": "current"},
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if _code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def take_rank(self, group: str, window: int) -> dict[str, Any] | None:
        """Atomically count one more job in the window; None if the window is sealed."""
        try:
            return dict(
                self.client.update_item(
                    TableName=self.table,
                    Key={"pk": {"S": self.window_pk(group, window)}, "sk": {"S": "counter"}},
                    UpdateExpression="ADD n :one SET expiration = :exp",
                    ConditionExpression="attribute_not_exists(sealed)",
                    ExpressionAttributeValues={":one": {"N": "1"}, ":exp": self._expiration()},
                    ReturnValues="ALL_NEW",
                )["Attributes"]
            )
        except ClientError as error:
            if _code(error) == "ConditionalCheckFailedException":
                return None
            raise

    def _job_puts(self, job: FailedJob, decision: StormDecision) -> list[dict[str, Any]]:
        """The job's decision record and its entry in the window, each written only if absent."""
        common = {
            "decision": {"S": decision.decision},
            "rank": {"N": str(decision.rank)},
            "expiration": self._expiration(),
        }
        decided = {
            "pk": {"S": f"job#{job.job_id}"},
            "sk": {"S": "job"},
            "group": {"S": decision.group},
            "window": {"N": str(decision.window)},
            **common,
        }
        entry = {
            "pk": {"S": self.window_pk(decision.group, decision.window)},
            "sk": {"S": f"job#{job.job_id}"},
            "job_name": {"S": job.job_name[:200] or "-"},
            "cause": {"S": job.cause[:120] or "-"},
            "queue": {"S": job.queue_arn or "-"},
            **({"log_url": {"S": job.log_url}} if job.log_url else {}),
            **({"channel": {"S": job.channel}} if job.channel else {}),
            **common,
        }
        return [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
            for item in (decided, entry)
        ]

    def record(self, job: FailedJob, decision: StormDecision) -> str:
        """Write the job's decision and window entry together. Returns "ok", "sealed" or "exists"."""
        pk = self.window_pk(decision.group, decision.window)
        still_open = {
            "ConditionCheck": {
                "TableName": self.table,
                "Key": {"pk": {"S": pk}, "sk": {"S": "counter"}},
                "ConditionExpression": "attribute_not_exists(sealed)",
            }
        }
        reasons = self._transact([still_open, *self._job_puts(job, decision)])
        if reasons is None:
            return "ok"
        if reasons[0] == "ConditionalCheckFailed":
            return "sealed"
        if "ConditionalCheckFailed" in reasons:
            return "exists"
        raise RuntimeError(f"storm record transaction cancelled: {reasons}")

    def open_window_with(self, job: FailedJob, decision: StormDecision, previous: int | None) -> str:
        """Open `decision.window` with `job` as its first failure (rank 1, its close already sent), in one
        transaction. Returns "ok", "raced" (another writer changed the group's window first: look
        again) or "taken" (this window id exists already, e.g. sealed: open a later one)."""
        group, window = decision.group, decision.window
        condition = "attribute_not_exists(#cur)" if previous is None else "#cur = :prev"
        values: dict[str, Any] = {":w": {"N": str(window)}, ":exp": self._expiration()}
        if previous is not None:
            values[":prev"] = {"N": str(previous)}
        set_current = {
            "Update": {
                "TableName": self.table,
                "Key": {"pk": {"S": f"group#{group}"}, "sk": {"S": "state"}},
                "UpdateExpression": "SET #cur = :w, expiration = :exp",
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {"#cur": "current"},
                "ExpressionAttributeValues": values,
            }
        }
        counter = {
            "Put": {
                "TableName": self.table,
                "Item": {
                    "pk": {"S": self.window_pk(group, window)},
                    "sk": {"S": "counter"},
                    "n": {"N": "1"},
                    "scheduled": {"BOOL": True},
                    "expiration": self._expiration(),
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        reasons = self._transact([set_current, counter, *self._job_puts(job, decision)])
        if reasons is None:
            return "ok"
        return "taken" if reasons[1] == "ConditionalCheckFailed" else "raced"

    def _transact(self, items: list[dict[str, Any]]) -> list[str] | None:
        """One TransactWriteItems: None if it committed, else the per-item cancellation codes."""
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as error:
            if _code(error) != "TransactionCanceledException":
                raise
            reasons = [str(r.get("Code")) for r in error.response.get("CancellationReasons", [])]
            return reasons if len(reasons) == len(items) else ["TransactionConflict"] * len(items)
        return None

    def mark_scheduled(self, group: str, window: int) -> None:
        self.client.update_item(
            TableName=self.table,
            Key={"pk": {"S": self.window_pk(group, window)}, "sk": {"S": "counter"}},
            UpdateExpression="SET scheduled = :t, expiration = :exp",
            ExpressionAttributeValues={":t": {"BOOL": True}, ":exp": self._expiration()},
        )

    def seal(self, group: str, window: int) -> bool:
        """Refuse every later write to the window. False if it never opened (nothing can ever be in it)."""
        before = self.client.update_item(
            TableName=self.table,
            Key={"pk": {"S": self.window_pk(group, window)}, "sk": {"S": "counter"}},
            UpdateExpression="SET sealed = :t, expiration = :exp",
            ExpressionAttributeValues={":t": {"BOOL": True}, ":exp": self._expiration()},
            ReturnValues="ALL_OLD",
        ).get("Attributes")
        return bool(before)

    def window_jobs(self, group: str, window: int) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :job)",
            "ExpressionAttributeValues": {
                ":pk": {"S": self.window_pk(group, window)},
                ":job": {"S": "job#"},
            },
            "ConsistentRead": True,
        }
        while True:
            page = self.client.query(**kwargs)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def mark_storm_window(self, group: str, window: int, digested: int) -> None:
        """Remember that `window` had a digest (once per window, whatever the retries)."""
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"pk": {"S": f"group#{group}"}, "sk": {"S": "state"}},
                UpdateExpression=(
                    "SET storm_since = if_not_exists(storm_since, :w), expiration = :exp "
                    "ADD storm_total :n, storm_windows :ws"
                ),
                ConditionExpression="attribute_not_exists(storm_windows) OR NOT contains(storm_windows, :w)",
                ExpressionAttributeValues={
                    ":w": {"N": str(window)},
                    ":n": {"N": str(digested)},
                    ":ws": {"NS": [str(window)]},
                    ":exp": self._expiration(),
                },
            )
        except ClientError as error:
            if _code(error) != "ConditionalCheckFailedException":
                raise

    def end_storm(self, group: str, since: int) -> None:
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"pk": {"S": f"group#{group}"}, "sk": {"S": "state"}},
                UpdateExpression="REMOVE storm_since, storm_total, storm_windows",
                ConditionExpression="storm_since = :since",
                ExpressionAttributeValues={":since": {"N": str(since)}},
            )
        except ClientError as error:
            if _code(error) != "ConditionalCheckFailedException":
                raise


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def number_attr(item: dict[str, Any] | None, name: str) -> int | None:
    if not item or name not in item:
        return None
    return int(item[name]["N"])
