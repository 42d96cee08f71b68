"""The watchdog's memory in AlertStateTable: what it has seen and said, written with conditional writes so
that however often (or concurrently) the check runs, each finding is posted once.

Items (every one expires, TTL attribute `expiration`):
- `watch#<job type>` / `lateness`: `watch_since` (the first check that watched the type), the last success
  seen (`last_success_at`, `last_success_job`: Batch forgets jobs after about a week, this does not), and
  the open lateness episode (`episode`, `episode_since`, `episode_alerted`).
- `watch#<job type>` / `running#<job id>`: a long-running job already alerted.
- `missed#<schedule name>` / `<scheduled time>`: a parked tick already alerted.

A finding is first recorded, then posted, then marked alerted. A run that dies between the post and the
mark leaves it unmarked; the next run posts again through `post_once` (idempotency keyed on the finding),
which finds the earlier post and stays quiet.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple

from botocore.exceptions import ClientError

from batch_dispatch.aws import clients

CONDITION_FAILED = "ConditionalCheckFailedException"


class LatenessState(NamedTuple):
    watch_since: datetime
    last_success_at: datetime | None = None
    last_success_job: str = ""
    episode: str = ""  # "" = on time
    episode_since: datetime | None = None
    episode_alerted: bool = False

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> LatenessState:
        return cls(
            watch_since=_time(item.get("watch_since")) or datetime.fromtimestamp(0, UTC),
            last_success_at=_time(item.get("last_success_at")),
            last_success_job=str(item.get("last_success_job", {}).get("S", "")),
            episode=str(item.get("episode", {}).get("S", "")),
            episode_since=_time(item.get("episode_since")),
            episode_alerted=bool(item.get("episode_alerted", {}).get("BOOL", False)),
        )


def _time(attribute: dict[str, str] | None) -> datetime | None:
    return datetime.fromtimestamp(int(attribute["N"]), UTC) if attribute and "N" in attribute else None


def _epoch(moment: datetime) -> dict[str, str]:
    return {"N": str(int(moment.timestamp()))}


class WatchStore:
    def __init__(self, table_name: str, client: Any = None) -> None:
        self.table = table_name
        self.client = client or clients.client("dynamodb")

    @staticmethod
    def _key(pk: str, sk: str) -> dict[str, Any]:
        return {"pk": {"S": pk}, "sk": {"S": sk}}

    def _update(self, pk: str, sk: str, condition: str | None = None, **kwargs: Any) -> dict[str, Any] | None:
        """One UpdateItem; None when its condition did not hold (another run got there first)."""
        request: dict[str, Any] = {"TableName": self.table, "Key": self._key(pk, sk), **kwargs}
        if condition:
            request["ConditionExpression"] = condition
        try:
            return dict(self.client.update_item(**request).get("Attributes", {}))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == CONDITION_FAILED:
                return None
            raise

    # -- lateness, one item per job type -----------------------------------------------------------
    @staticmethod
    def lateness_key(job_type: str) -> tuple[str, str]:
        return f"watch#{job_type}", "lateness"

    def watch(self, job_type: str, now: datetime, expires: datetime) -> LatenessState:
        """The job type's state, its watch starting now if this is the first check that sees it."""
        pk, sk = self.lateness_key(job_type)
        item = self._update(
            pk,
            sk,
            UpdateExpression="SET watch_since = if_not_exists(watch_since, :now), expiration = :exp",
            ExpressionAttributeValues={":now": _epoch(now), ":exp": _epoch(expires)},
            ReturnValues="ALL_NEW",
        )
        return LatenessState.from_item(item or {})

    def note_success(self, job_type: str, at: datetime, job_id: str) -> bool:
        """Remember a success newer than the one remembered. False if it was not newer."""
        pk, sk = self.lateness_key(job_type)
        return (
            self._update(
                pk,
                sk,
                "attribute_not_exists(last_success_at) OR last_success_at < :at",
                UpdateExpression="SET last_success_at = :at, last_success_job = :job",
                ExpressionAttributeValues={":at": _epoch(at), ":job": {"S": job_id or "-"}},
            )
            is not None
        )

    def open_episode(self, job_type: str, episode: str, since: datetime) -> bool:
        """Start a lateness episode; False if one is open already (its own alert covers it)."""
        pk, sk = self.lateness_key(job_type)
        return (
            self._update(
                pk,
                sk,
                "attribute_not_exists(episode)",
                UpdateExpression="SET episode = :e, episode_since = :since, episode_alerted = :no",
                ExpressionAttributeValues={
                    ":e": {"S": episode},
                    ":since": _epoch(since),
                    ":no": {"BOOL": False},
                },
            )
            is not None
        )

    def mark_episode_alerted(self, job_type: str, episode: str) -> None:
        pk, sk = self.lateness_key(job_type)
        self._update(
            pk,
            sk,
            "episode = :e",
            UpdateExpression="SET episode_alerted = :yes",
            ExpressionAttributeValues={":e": {"S": episode}, ":yes": {"BOOL": True}},
        )

    def close_episode(self, job_type: str, episode: str) -> bool:
        """End the episode; False if it was not (or no longer) the open one."""
        pk, sk = self.lateness_key(job_type)
        return (
            self._update(
                pk,
                sk,
                "episode = :e",
                UpdateExpression="REMOVE episode, episode_since, episode_alerted",
                ExpressionAttributeValues={":e": {"S": episode}},
            )
            is not None
        )

    # -- one-off findings: a long-running job, a parked tick ---------------------------------------
    def record(self, pk: str, sk: str, expires: datetime, **attributes: str) -> bool:
        """Record a finding; True if it still has to be posted (new, or recorded but never marked)."""
        item = {**self._key(pk, sk), "alerted": {"BOOL": False}, "expiration": _epoch(expires)}
        item.update({name: {"S": value} for name, value in attributes.items()})
        try:
            self.client.put_item(
                TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(pk)"
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != CONDITION_FAILED:
                raise
            existing = self.client.get_item(TableName=self.table, Key=self._key(pk, sk), ConsistentRead=True)
            return not existing.get("Item", {}).get("alerted", {}).get("BOOL", False)
        return True

    def mark_alerted(self, pk: str, sk: str) -> None:
        self._update(
            pk, sk, UpdateExpression="SET alerted = :yes", ExpressionAttributeValues={":yes": {"BOOL": True}}
        )

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        item = self.client.get_item(TableName=self.table, Key=self._key(pk, sk), ConsistentRead=True).get(
            "Item"
        )
        return dict(item) if item else None
