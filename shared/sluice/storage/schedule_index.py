"""The scheduler's side of the table: what its sparse, sharded indexes say is due, and the
conditional writes that claim each due thing exactly once (a lost race is harmless)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sluice.connections.model import Connection
from sluice.storage.items import connection_from_item, schedule_marker, to_dynamo
from sluice.storage.keys import (
    PURGE_PARTITION,
    TRIAL_PARTITION,
    account_connections_partition,
    delay_partition,
    retest_partition,
    schedule_partition,
)
from sluice.storage.store import Store
from sluice.timestamps import format_timestamp


@dataclass(frozen=True)
class Due:
    """One due entry of an index: a connection (or, for trials, an account) and when it fell due."""

    id: str
    account_id: str
    due_at: str  # the sort key's time; claims are conditional on it
    marker: str  # the whole sort key, "<due_at>#<id>"
    sync_frequency: int = 0
    daily_sync_time: str | None = None
    # The connection's next sync as the index has it; `due_at` is earlier when a scheduled re-sync
    # (ours) falls due first, since the index key is the earlier of the two.
    next_sync_at: str | None = None


@dataclass(frozen=True)
class ResyncClaim:
    """A scheduled re-sync (ours) claimed in the same write as the connection's sync: when it fell due,
    when the next one falls due, and whether it re-syncs the whole connection (a historical sync)
    rather than a scope of tables."""

    due_at: datetime
    following: datetime | None
    whole_connection: bool


_MOVE_NEXT_SYNC = "SET next_sync_at = :next, sched_sk = :sk, version = version + :one"


class ScheduleIndex:
    def __init__(self, store: Store) -> None:
        self.store = store

    # ---- what is due -----------------------------------------------------------------------------

    def due_syncs(self, shard: int, now: datetime) -> Iterator[Due]:
        return self._due("schedule", "sched_pk", "sched_sk", schedule_partition(shard), now)

    def due_retests(self, shard: int, now: datetime) -> Iterator[Due]:
        return self._due("schedule", "sched_pk", "sched_sk", retest_partition(shard), now)

    def due_delays(self, shard: int, now: datetime) -> Iterator[Due]:
        return self._due("timers", "timer_pk", "timer_sk", delay_partition(shard), now)

    def due_trials(self, now: datetime) -> Iterator[Due]:
        return self._due("timers", "timer_pk", "timer_sk", TRIAL_PARTITION, now)

    def due_purges(self, now: datetime) -> Iterator[Due]:
        """Deleted connections whose children are not all deleted yet."""
        return self._due("timers", "timer_pk", "timer_sk", PURGE_PARTITION, now)

    def purge(self, due: Due) -> bool:
        from sluice.storage.store import TICK_PURGE_ITEMS

        return self.store.purge_children(due.id, TICK_PURGE_ITEMS)

    def _due(self, index: str, pk: str, sk: str, partition: str, now: datetime) -> Iterator[Due]:
        """Entries of one index partition whose time (the sort key's prefix) is not after `now`.

        Index reads are eventually consistent, and each claim below is a conditional write on the
        connection item itself, so a stale entry is harmless: an entry that moved is refused by its
        condition, and one that is missing now is read by the next tick.
        """
        items = self.store.query_all(
            {
                "IndexName": index,
                "KeyConditionExpression": f"{pk} = :p AND {sk} <= :now",
                # "#" sorts after every timestamp character, so "<now>#" covers ids due exactly now.
                "ExpressionAttributeValues": to_dynamo(
                    {":p": partition, ":now": f"{format_timestamp(now)}#\uffff"}
                ),
            }
        )
        for item in items:
            marker = str(item[sk])
            yield Due(
                id=str(item["id"]),
                account_id=str(item.get("account_id") or item["id"]),  # an account item is its own
                due_at=marker.split("#")[0],
                marker=marker,
                sync_frequency=int(item.get("sync_frequency") or 0),
                daily_sync_time=item.get("daily_sync_time"),
                next_sync_at=item.get("next_sync_at"),
            )

    # ---- claims ----------------------------------------------------------------------------------

    def schedules(self, due: Due) -> dict[str, Any]:
        """What the index does not project: the connection's `schedule`, `resync_schedule` and
        `next_resync_at` (one GetItem per due connection, so a tick stays O(due))."""
        return self.store.connection_schedules(due.id)

    def claim_sync(
        self,
        due: Due,
        following: datetime,
        now: datetime,
        next_resync: datetime | None = None,
        resync: ResyncClaim | None = None,
    ) -> Connection | None:
        """Move a schedulable, idle connection's next sync from the index's to `following`; with
        `resync`, also move its due scheduled re-sync to the next one in the same write. The index key
        becomes the earlier of the two (`next_resync` when no re-sync is claimed)."""
        values = self._move(due, following, now, resync.following if resync else next_resync)
        update, condition = _MOVE_NEXT_SYNC, "next_sync_at = :expected"
        if resync is not None:
            values[":resync"] = format_timestamp(resync.following)
            values[":expected_resync"] = format_timestamp(resync.due_at)
            update += ", next_resync_at = :resync"
            condition += " AND next_resync_at = :expected_resync"
            if resync.whole_connection:
                update += ", is_historical_sync = :true"
                values[":true"] = True
        return self.store.update_connection_if(
            due.id,
            update,
            condition + " AND paused = :false AND schedule_type = :auto AND setup_state = :connected "
            "AND (attribute_not_exists(active_sync_id) OR lease_expires_at < :now)",
            {**values, ":false": False, ":auto": "auto", ":connected": "connected"},
        )

    def skip_while_syncing(
        self, due: Due, following: datetime, now: datetime, next_resync: datetime | None = None
    ) -> Connection | None:
        """Move past this grid point without a run, if the connection is syncing at it."""
        return self.store.update_connection_if(
            due.id,
            _MOVE_NEXT_SYNC,
            "next_sync_at = :expected AND lease_expires_at >= :now",
            self._move(due, following, now, next_resync),
        )

    @staticmethod
    def _move(due: Due, following: datetime, now: datetime, next_resync: datetime | None) -> dict[str, Any]:
        return {
            ":expected": due.next_sync_at or due.due_at,
            ":next": format_timestamp(following),
            ":sk": schedule_marker(due.id, following, next_resync),
            ":now": format_timestamp(now),
            ":one": 1,
        }

    def claim_retest(self, due: Due, following: datetime) -> Connection | None:
        at = format_timestamp(following) or ""
        return self.store.update_connection_if(
            due.id,
            "SET retest_at = :next, sched_sk = :sk, version = version + :one",
            "retest_at = :expected",
            {":expected": due.due_at, ":next": at, ":sk": f"{at}#{due.id}", ":one": 1},
        )

    def unclaim_sync(self, due: Due, claimed: datetime, resync: ResyncClaim | None = None) -> None:
        """Put the claimed times back when the announcement failed, so the next tick claims them again."""
        update = "SET next_sync_at = :previous, sched_sk = :sk"
        values: dict[str, Any] = {
            ":previous": due.next_sync_at or due.due_at,
            ":sk": due.marker,
            ":claimed": format_timestamp(claimed),
        }
        if resync is not None:
            update += ", next_resync_at = :resync"
            values[":resync"] = format_timestamp(resync.due_at)
        self.store.update_connection_if(due.id, update, "next_sync_at = :claimed", values)

    def unclaim_retest(self, due: Due, claimed: datetime) -> None:
        self._unclaim(due, "retest_at", claimed)

    def _unclaim(self, due: Due, attribute: str, claimed: datetime) -> None:
        self.store.update_connection_if(
            due.id,
            f"SET {attribute} = :previous, sched_sk = :sk",
            f"{attribute} = :claimed",
            {":previous": due.due_at, ":sk": due.marker, ":claimed": format_timestamp(claimed)},
        )

    def mark_delay_announced(self, due: Due) -> Connection | None:
        """Take the connection out of the timers index for this episode, if it is still this episode."""
        return self.store.update_connection_if(
            due.id,
            "SET delay_announced = :true, version = version + :one REMOVE timer_pk, timer_sk",
            "timer_sk = :expected",
            {":true": True, ":one": 1, ":expected": due.marker},
        )

    # ---- trials ----------------------------------------------------------------------------------

    def account_connections(self, account_id: str) -> Iterator[Connection]:
        """Every connection of an account, read from the gsi1 index.

        The index lags the table a little, so a caller that must act on the latest value re-reads
        each connection (strongly consistent) before writing, as the trial's end does.
        """
        for item in self.store.query_all(
            {
                "IndexName": "gsi1",
                "KeyConditionExpression": "gsi1pk = :p",
                "ExpressionAttributeValues": to_dynamo({":p": account_connections_partition(account_id)}),
            }
        ):
            yield connection_from_item(item)

    def mark_trial_processed(self, account_id: str, now: datetime) -> None:
        self.store.mark_trial_processed(account_id, now)
