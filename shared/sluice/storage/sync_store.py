"""Sync bookkeeping in DynamoDB: the lease, state snapshots (checkpoints), sync runs.

Every write a sync worker makes is conditional on still holding the lease (`active_sync_id`), so a
stale or duplicate worker fails harmlessly with LeaseLost.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sluice.connections.model import Connection
from sluice.errors import Conflict, InvalidInput, SluiceError
from sluice.storage.dynamo import ConditionFailed, send
from sluice.storage.items import connection_from_item, connection_to_item, from_dynamo, to_dynamo
from sluice.storage.keys import (
    COLUMNS_PREFIX,
    columns_key,
    connection_key,
    connection_syncs_partition,
    run_key,
    state_key,
    state_part_key,
    state_part_prefix,
)
from sluice.storage.store import Page, Store
from sluice.timestamps import format_timestamp


class LeaseLost(SluiceError):
    """Another sync holds the connection now (forced sync, expired lease): stop without writing."""

    def __init__(self, sync_id: str) -> None:
        super().__init__(f"Sync {sync_id} no longer holds the connection")


class LeaseBusy(Conflict):
    def __init__(self) -> None:
        super().__init__("A sync is already running for this connection")


@dataclass(frozen=True)
class Snapshot:
    seq: int
    state: dict[str, Any]
    sync_id: str
    created_at: str


@dataclass
class RunProgress:
    """What a sync has written so far, over all its invocations: rows per table and in total, and how
    many continuations it asked for. Its run record holds it as of the latest checkpoint."""

    rows_upserted: int = 0
    rows_deleted: int = 0
    tables: dict[str, dict[str, int]] = field(default_factory=dict)
    continuations: int = 0

    def add(self, table: str, upserted: int = 0, deleted: int = 0) -> None:
        counts = self.tables.setdefault(table, {"rows_upserted": 0, "rows_deleted": 0})
        counts["rows_upserted"] += upserted
        counts["rows_deleted"] += deleted
        self.rows_upserted += upserted
        self.rows_deleted += deleted

    @classmethod
    def of(cls, record: dict[str, Any] | None) -> RunProgress:
        record = record or {}
        tables = record.get("tables") or {}
        return cls(
            rows_upserted=int(record.get("rows_upserted") or 0),
            rows_deleted=int(record.get("rows_deleted") or 0),
            tables={
                str(t): {"rows_upserted": int(c["rows_upserted"]), "rows_deleted": int(c["rows_deleted"])}
                for t, c in tables.items()
            },
            continuations=int(record.get("continuations") or 0),
        )

    def update(self) -> tuple[str, dict[str, str], dict[str, Any]]:
        """The SET clause that records it on a run record, with its names and values."""
        return (
            "rows_upserted = :u, rows_deleted = :d, #tables = :tables, continuations = :c",
            {"#tables": "tables"},
            {
                ":u": self.rows_upserted,
                ":d": self.rows_deleted,
                ":tables": self.tables,
                ":c": self.continuations,
            },
        )


RUN_RUNNING = "running"
RUN_CANCELLED = "CANCELLED"
RUN_RECORDS_KEPT = timedelta(days=90)
COLUMN_BUCKETS = 16  # items per table holding its column names (each under 400 KB)
STATE_PART_BYTES = 300_000  # a snapshot's share of one item (DynamoDB's limit is 400 KB per item)
# A snapshot and the connection update commit in one transaction (at most 4 MB): what a state may be.
MAX_STATE_BYTES = 3_000_000


class StateTooLarge(InvalidInput):
    def __init__(self, size: int) -> None:
        super().__init__(
            f"The connection state is {size} bytes as JSON; the limit is {MAX_STATE_BYTES} bytes"
        )


class SyncStore:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.client = store.client
        self._name = store.name

    # ---- the lease ---------------------------------------------------------------------------------

    def acquire(
        self,
        connection_id: str,
        sync_id: str,
        now: datetime,
        lease: timedelta,
        requested_at: datetime | None = None,
    ) -> Connection:
        """Take the connection for `sync_id` (again, for a retry or continuation of the same sync).

        With `requested_at`, only if no other sync started since then (it already served the request).
        """
        free = (
            "attribute_exists(pk) AND (attribute_not_exists(active_sync_id) "
            "OR active_sync_id = :sid OR lease_expires_at < :now)"
        )
        values: dict[str, Any] = {
            ":sid": sync_id,
            ":until": format_timestamp(now + lease),
            ":now": format_timestamp(now),
            ":syncing": "syncing",
            ":one": 1,
        }
        if requested_at is not None:
            free += (
                " AND (attribute_not_exists(last_sync_started_at) OR last_sync_started_at < :asked"
                " OR active_sync_id = :sid)"
            )
            values[":asked"] = format_timestamp(requested_at)
        try:
            response = send(
                self.client.update_item,
                TableName=self._name,
                Key=to_dynamo(connection_key(connection_id)),
                UpdateExpression=(
                    "SET active_sync_id = :sid, lease_expires_at = :until, sync_state = :syncing, "
                    "last_sync_started_at = :now, heartbeat_at = :now, version = version + :one"
                ),
                ConditionExpression=free,
                ExpressionAttributeValues=to_dynamo(values),
                ReturnValues="ALL_NEW",
            )
        except ConditionFailed:
            raise LeaseBusy() from None
        return connection_from_item(from_dynamo(response["Attributes"]))

    def release_for_force(self, connection_id: str) -> str | None:
        """Take the lease away from a running sync (forced sync). Returns the sync it belonged to."""
        try:
            response = send(
                self.client.update_item,
                TableName=self._name,
                Key=to_dynamo(connection_key(connection_id)),
                UpdateExpression="REMOVE active_sync_id, lease_expires_at SET version = version + :one",
                ConditionExpression="attribute_exists(active_sync_id)",
                ExpressionAttributeValues=to_dynamo({":one": 1}),
                ReturnValues="ALL_OLD",  # the item as it was (UPDATED_OLD omits an unchanged set)
            )
        except ConditionFailed:
            return None
        old = response.get("Attributes", {}).get("active_sync_id", {})
        return str(old.get("S")) if old else None

    # ---- checkpoints -------------------------------------------------------------------------------

    def latest_snapshot(self, connection_id: str) -> Snapshot | None:
        response = send(
            self.client.query,
            TableName=self._name,
            KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
            ExpressionAttributeValues=to_dynamo({":p": connection_key(connection_id)["pk"], ":s": "STATE#"}),
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
        items = response.get("Items", [])
        if not items:
            return None
        item = from_dynamo(items[0])
        text = str(item["state"])
        if int(item.get("parts") or 1) > 1:
            parts = self.store.query_partition(
                connection_key(connection_id)["pk"], state_part_prefix(int(item["seq"]))
            )
            text += "".join(str(p["state"]) for p in parts)
        return Snapshot(
            seq=int(item["seq"]),
            state=json.loads(text),
            sync_id=str(item.get("sync_id", "")),
            created_at=str(item["created_at"]),
        )

    def commit_checkpoint(
        self,
        connection_id: str,
        sync_id: str,
        seq: int,
        state: dict[str, Any],
        now: datetime,
        lease: timedelta,
        progress: RunProgress | None = None,
    ) -> None:
        """Store `state` as snapshot `seq` and move the connection to it, in one transaction, with the
        run record's `progress` (the rows the state covers) while the run is still running.
        Call only after everything the state covers is durable in the destination."""
        puts = self._snapshot_puts(connection_id, seq, state, sync_id, now)
        if progress is not None:
            clause, names, values = progress.update()
            puts.append(
                {
                    "Update": {
                        "TableName": self._name,
                        "Key": to_dynamo(run_key(connection_id, sync_id)),
                        "UpdateExpression": f"SET {clause}, checkpoint_at = :now",
                        "ConditionExpression": "#status = :running",
                        "ExpressionAttributeNames": {**names, "#status": "status"},
                        "ExpressionAttributeValues": to_dynamo(
                            {**values, ":now": format_timestamp(now), ":running": RUN_RUNNING}
                        ),
                    }
                }
            )
        try:
            send(
                self.client.transact_write_items,
                TransactItems=[
                    *puts,
                    {
                        "Update": {
                            "TableName": self._name,
                            "Key": to_dynamo(connection_key(connection_id)),
                            "UpdateExpression": (
                                "SET state_seq = :seq, lease_expires_at = :until, heartbeat_at = :now, "
                                "version = version + :one"
                            ),
                            "ConditionExpression": "active_sync_id = :sid",
                            "ExpressionAttributeValues": to_dynamo(
                                {
                                    ":seq": seq,
                                    ":until": format_timestamp(now + lease),
                                    ":now": format_timestamp(now),
                                    ":one": 1,
                                    ":sid": sync_id,
                                }
                            ),
                        }
                    },
                ],
            )
        except ConditionFailed:
            # Only a failed condition means another sync holds the connection (the lease moved), the
            # run was ended (cancelled) or a duplicate of this one committed this checkpoint first;
            # conflicts were retried.
            raise LeaseLost(sync_id) from None

    def _snapshot_puts(
        self, connection_id: str, seq: int, state: dict[str, Any], sync_id: str, now: datetime
    ) -> list[dict[str, Any]]:
        """The Puts that store snapshot `seq`: its first STATE_PART_BYTES in the STATE# item, the rest in
        STATEPART# items, so that a state is bounded by MAX_STATE_BYTES and not by DynamoDB's 400 KB."""
        # ASCII JSON (ensure_ascii), so a character is a byte and parts cut anywhere.
        text = json.dumps(state, separators=(",", ":"), default=str)
        if len(text) > MAX_STATE_BYTES:
            raise StateTooLarge(len(text))
        chunks = [text[i : i + STATE_PART_BYTES] for i in range(0, len(text), STATE_PART_BYTES)] or [""]
        head = {
            **state_key(connection_id, seq),
            "type": "state",
            "seq": seq,
            "state": chunks[0],
            "parts": len(chunks),
            "sync_id": sync_id,
            "created_at": format_timestamp(now),
        }
        items = [head] + [
            {**state_part_key(connection_id, seq, n), "type": "state_part", "state": chunk}
            for n, chunk in enumerate(chunks[1:], start=1)
        ]
        return [
            {
                "Put": {
                    "TableName": self._name,
                    "Item": to_dynamo(i),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
            for i in items
        ]

    def _next_seq(self, connection_id: str) -> int:
        latest = self.latest_snapshot(connection_id)
        return (latest.seq if latest else 0) + 1

    def replace_state(self, connection: Connection, state: dict[str, Any], now: datetime) -> None:
        """PATCH /state: a new snapshot, only while the connection is unchanged and no sync holds it."""
        seq = self._next_seq(connection.id)
        puts = self._snapshot_puts(connection.id, seq, state, "api", now)
        try:
            send(
                self.client.transact_write_items,
                TransactItems=[
                    *puts,
                    {
                        "Update": {
                            "TableName": self._name,
                            "Key": to_dynamo(connection_key(connection.id)),
                            # The next sync starts from this state, so it is not a historical one.
                            "UpdateExpression": (
                                "SET state_seq = :seq, is_historical_sync = :false, version = version + :one"
                            ),
                            "ConditionExpression": (
                                "version = :v AND "
                                "(attribute_not_exists(active_sync_id) OR lease_expires_at < :now)"
                            ),
                            "ExpressionAttributeValues": to_dynamo(
                                {
                                    ":seq": seq,
                                    ":one": 1,
                                    ":v": connection.version,
                                    ":false": False,
                                    ":now": format_timestamp(now),
                                }
                            ),
                        }
                    },
                ],
            )
        except ConditionFailed:
            raise Conflict("The connection changed or a sync started; retry") from None

    # ---- finishing ---------------------------------------------------------------------------------

    def finish(self, finished: Connection, sync_id: str) -> Connection:
        """Write the connection's end-of-sync fields and drop the lease, if this sync still holds it."""
        saved = finished.model_copy(
            update={"active_sync_id": None, "lease_expires_at": None, "version": finished.version + 1}
        )
        try:
            send(
                self.client.put_item,
                TableName=self._name,
                Item=to_dynamo(connection_to_item(saved)),
                ConditionExpression="active_sync_id = :sid AND version = :v",
                ExpressionAttributeValues=to_dynamo({":sid": sync_id, ":v": finished.version}),
            )
        except ConditionFailed:
            current = self.store.get_connection(None, finished.id)
            if current.active_sync_id != sync_id:
                raise LeaseLost(sync_id) from None
            raise Conflict("The connection changed while finishing; retry") from None
        return saved

    # ---- columns seen ------------------------------------------------------------------------------

    def add_columns(self, connection_id: str, seen: dict[str, set[str]]) -> None:
        """Remember the columns a sync saw, per table. They grow with every column ever seen, so they
        live outside the connection item, spread over COLUMN_BUCKETS string-set items per table (each
        ADD is an atomic union: concurrent syncs lose nothing). Only names not stored yet are written:
        one read of what is stored, instead of a write per bucket and table on every sync."""
        import zlib

        if not any(seen.values()):
            return
        stored: dict[str, set[str]] = {}
        for item in self.store.query_partition(connection_key(connection_id)["pk"], COLUMNS_PREFIX):
            stored.setdefault(str(item["table"]), set()).update(str(n) for n in item.get("names") or ())
        for table, names in seen.items():
            buckets: dict[int, set[str]] = {}
            for name in names - stored.get(table, set()):
                buckets.setdefault(zlib.crc32(name.encode()) % COLUMN_BUCKETS, set()).add(name)
            for bucket, part in sorted(buckets.items()):
                send(
                    self.client.update_item,
                    TableName=self._name,
                    Key=to_dynamo(columns_key(connection_id, table, bucket)),
                    UpdateExpression="SET #t = :t, #type = :type ADD #names :names",
                    ExpressionAttributeNames={"#t": "table", "#type": "type", "#names": "names"},
                    ExpressionAttributeValues=to_dynamo({":t": table, ":type": "columns", ":names": part}),
                )

    def add_columns_reporting_new(self, connection_id: str, table: str, names: set[str]) -> set[str]:
        """Like `add_columns` for one table, and which of `names` no writer had added before: the
        atomic ADD returns each bucket's old set, so a column is new to exactly one caller (a replayed
        or concurrent sync finds it known)."""
        import zlib

        buckets: dict[int, set[str]] = {}
        for name in names:
            buckets.setdefault(zlib.crc32(name.encode()) % COLUMN_BUCKETS, set()).add(name)
        new: set[str] = set()
        for bucket, part in sorted(buckets.items()):
            response = send(
                self.client.update_item,
                TableName=self._name,
                Key=to_dynamo(columns_key(connection_id, table, bucket)),
                UpdateExpression="SET #t = :t, #type = :type ADD #names :names",
                ExpressionAttributeNames={"#t": "table", "#type": "type", "#names": "names"},
                ExpressionAttributeValues=to_dynamo({":t": table, ":type": "columns", ":names": part}),
                ReturnValues="ALL_OLD",  # the item as it was (UPDATED_OLD omits an unchanged set)
            )
            old = from_dynamo(response.get("Attributes") or {}).get("names") or set()
            new |= part - {str(n) for n in old}
        return new

    def columns_seen(self, connection: Connection) -> dict[str, list[str]]:
        """Columns seen per table, sorted (with what older versions kept on the connection item)."""
        seen: dict[str, set[str]] = {t: set(names) for t, names in connection.table_columns.items()}
        for item in self.store.query_partition(connection_key(connection.id)["pk"], COLUMNS_PREFIX):
            seen.setdefault(str(item["table"]), set()).update(str(n) for n in item.get("names") or ())
        return {t: sorted(names) for t, names in seen.items()}

    # ---- runs --------------------------------------------------------------------------------------

    def start_run(self, connection_id: str, sync_id: str, started_at: datetime, reason: str) -> bool:
        """Open the run record of a sync; False when it exists already (a replay of this sync id)."""
        item = {
            **run_key(connection_id, sync_id),
            "gsi1pk": connection_syncs_partition(connection_id),
            "gsi1sk": f"{format_timestamp(started_at)}#{sync_id}",
            "type": "sync_run",
            "connection_id": connection_id,
            "sync_id": sync_id,
            "started_at": format_timestamp(started_at),
            "reason": reason,
            "status": RUN_RUNNING,
            "rows_upserted": 0,
            "rows_deleted": 0,
            # The table's TTL removes run records after this (epoch seconds).
            "expires_at": int((started_at + RUN_RECORDS_KEPT).timestamp()),
        }
        try:
            send(
                self.client.put_item,
                TableName=self._name,
                Item=to_dynamo(item),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ConditionFailed:
            return False
        return True

    def end_run(
        self,
        connection_id: str,
        sync_id: str,
        status: str,
        message: str,
        now: datetime,
        progress: RunProgress | None = None,
        reason_code: str = "",
    ) -> dict[str, Any] | None:
        """End a run that is still running: the ended record, or None when it had ended already or does
        not exist. Conditional, so each run ends exactly once whoever ends it (its worker, a forced sync,
        a cancel, a DELETE). `message` is why it did not succeed, `reason_code` the code of the task it
        left; `progress` (its worker's, over all its invocations) replaces the totals of its last
        checkpoint, which are kept when another party ends it."""
        clause, names, values = progress.update() if progress is not None else ("", {}, {})
        try:
            response = send(
                self.client.update_item,
                TableName=self._name,
                Key=to_dynamo(run_key(connection_id, sync_id)),
                UpdateExpression=(
                    "SET #status = :status, finished_at = :now, message = :message, reason_code = :code"
                    + (f", {clause}" if clause else "")
                ),
                ConditionExpression="#status = :running",
                ExpressionAttributeNames={**names, "#status": "status"},
                ExpressionAttributeValues=to_dynamo(
                    {
                        **values,
                        ":status": status,
                        ":now": format_timestamp(now),
                        ":message": message,
                        ":code": reason_code,
                        ":running": RUN_RUNNING,
                    }
                ),
                ReturnValues="ALL_NEW",
            )
        except ConditionFailed:
            return None
        return from_dynamo(response["Attributes"])

    def cancel(
        self, connection_id: str, sync_id: str, message: str, now: datetime, failed_at: datetime
    ) -> bool:
        """Stop `sync_id` for good: in one transaction the connection drops its lease, returns to
        `scheduled` and sets `failed_at` (orchestrators poll for it to move), and the run ends as
        CANCELLED. False when that sync no longer holds the connection or has ended."""
        try:
            send(
                self.client.transact_write_items,
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self._name,
                            "Key": to_dynamo(connection_key(connection_id)),
                            "UpdateExpression": (
                                "REMOVE active_sync_id, lease_expires_at "
                                "SET sync_state = :scheduled, failed_at = :failed, version = version + :one"
                            ),
                            "ConditionExpression": "active_sync_id = :sid",
                            "ExpressionAttributeValues": to_dynamo(
                                {
                                    ":scheduled": "scheduled",
                                    ":failed": format_timestamp(failed_at),
                                    ":one": 1,
                                    ":sid": sync_id,
                                }
                            ),
                        }
                    },
                    {
                        "Update": {
                            "TableName": self._name,
                            "Key": to_dynamo(run_key(connection_id, sync_id)),
                            "UpdateExpression": (
                                "SET #status = :cancelled, finished_at = :now, message = :message, "
                                "reason_code = :code"
                            ),
                            "ConditionExpression": "#status = :running",
                            "ExpressionAttributeNames": {"#status": "status"},
                            "ExpressionAttributeValues": to_dynamo(
                                {
                                    ":cancelled": RUN_CANCELLED,
                                    ":now": format_timestamp(now),
                                    ":message": message,
                                    ":code": "",
                                    ":running": RUN_RUNNING,
                                }
                            ),
                        }
                    },
                ],
            )
        except ConditionFailed:
            return False
        return True

    def list_runs(self, connection_id: str, cursor: str | None, limit: int) -> Page:
        """One page of a connection's run records, the latest started first (gsi1, like every list)."""
        return self.store.query_page(
            connection_syncs_partition(connection_id), limit, cursor, newest_first=True
        )

    def heartbeat(self, connection_id: str, sync_id: str, now: datetime) -> bool:
        """Record that the lease holder is alive; False when it no longer holds the lease."""
        try:
            send(
                self.client.update_item,
                TableName=self._name,
                Key=to_dynamo(connection_key(connection_id)),
                UpdateExpression="SET heartbeat_at = :now",
                ConditionExpression="active_sync_id = :sid",
                ExpressionAttributeValues=to_dynamo({":now": format_timestamp(now), ":sid": sync_id}),
            )
        except ConditionFailed:
            return False
        return True

    def run(self, connection_id: str, sync_id: str) -> dict[str, Any] | None:
        return self.store.get(run_key(connection_id, sync_id))

    def holds_lease(self, connection_id: str, sync_id: str) -> bool:
        response = send(
            self.client.get_item,
            TableName=self._name,
            Key=to_dynamo(connection_key(connection_id)),
            ConsistentRead=True,
            ProjectionExpression="active_sync_id",
        )
        return bool(response.get("Item", {}).get("active_sync_id", {}).get("S") == sync_id)

    def prune_snapshots(self, connection_id: str, keep_from_seq: int) -> int:
        """Drop the snapshots (and their parts) before `keep_from_seq`, after a sync succeeded from a
        later one, every page of them. Returns how many items were deleted."""
        pk = connection_key(connection_id)["pk"]
        doomed: list[dict[str, str]] = []
        for first, last in (
            (state_key(connection_id, 0)["sk"], state_key(connection_id, keep_from_seq - 1)["sk"]),
            (state_part_prefix(0), state_part_prefix(keep_from_seq - 1) + "\uffff"),
        ):
            doomed += [
                {"pk": str(i["pk"]), "sk": str(i["sk"])}
                for i in self.store.query_all(
                    {
                        "KeyConditionExpression": "pk = :p AND sk BETWEEN :first AND :last",
                        "ExpressionAttributeValues": to_dynamo({":p": pk, ":first": first, ":last": last}),
                        "ProjectionExpression": "pk, sk",
                        "ConsistentRead": True,
                    }
                )
            ]
        return self.store.delete_many(doomed)
