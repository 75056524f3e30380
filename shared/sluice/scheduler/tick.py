"""The scheduler tick: every minute, claim what is due and announce it.

It reads only the sparse, sharded indexes (`schedule`, `timers`), so a tick costs what is due, never
what exists:
- due syncs: each connection is claimed with a conditional write that moves `next_sync_at` to the
  next grid point (a lost race is harmless), then `Sync Requested` is emitted. A connection that is
  syncing at its grid point skips that point (never two runs queued);
- due re-tests of broken connections: `Setup Tests Requested`, again daily until fixed;
- data that turned late: `Data Delayed`, once per episode (a success ends the episode);
- accounts whose trial ended: their connections with `pause_after_trial` are paused and announced.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sluice.accounts.trials import mark_trial_processed
from sluice.connections.model import Connection
from sluice.connections.setup_tests import RETEST_BROKEN_AFTER, SETUP_TESTS_REQUESTED
from sluice.events import publish
from sluice.observability import logger
from sluice.scheduler.grid import next_resync_at, next_scheduled_at
from sluice.storage.store import (
    TRIAL_PARTITION,
    Store,
    account_connections_partition,
    delay_partition,
    retest_partition,
    schedule_partition,
    to_dynamo,
)
from sluice.sync.events import SyncRequest, request_sync
from sluice.timestamps import format_timestamp, parse_timestamp


@dataclass
class TickReport:
    syncs_requested: list[str] = field(default_factory=list)
    resyncs_requested: list[str] = field(default_factory=list)  # ours: scheduled re-syncs
    skipped_while_syncing: list[str] = field(default_factory=list)
    retests_requested: list[str] = field(default_factory=list)
    delays_announced: list[str] = field(default_factory=list)
    paused_after_trial: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


_MOVE_NEXT_SYNC = "SET next_sync_at = :next, sched_sk = :sk, version = version + :one"


class Scheduler:
    def __init__(self, store: Store, shards: int) -> None:
        self.store = store
        self.shards = shards

    def tick(self, now: datetime) -> TickReport:
        report = TickReport()
        work: list[tuple[str, str, str, str, Callable[[dict[str, Any], datetime, TickReport], None]]] = []
        for shard in range(self.shards):
            work += [
                ("schedule", "sched_pk", "sched_sk", schedule_partition(shard), self._claim_sync),
                ("schedule", "sched_pk", "sched_sk", retest_partition(shard), self._claim_retest),
                ("timers", "timer_pk", "timer_sk", delay_partition(shard), self._announce_delay),
            ]
        work.append(("timers", "timer_pk", "timer_sk", TRIAL_PARTITION, self._end_trial))
        for index, pk, sk, partition, handle in work:
            for item in self._due(index, pk, sk, partition, now):
                try:
                    handle(item, now, report)
                except Exception:
                    # One item must not cost every other item its turn; what failed stays due.
                    logger.exception("tick item failed", extra={"partition": partition, "id": item.get("id")})
                    report.failed.append(str(item.get("id")))
        return report

    def _due(self, index: str, pk: str, sk: str, partition: str, now: datetime) -> Iterator[dict[str, Any]]:
        """Items of one index partition whose time (the sort key's prefix) is not after `now`."""
        return self.store.query_all(
            {
                "IndexName": index,
                "KeyConditionExpression": f"{pk} = :p AND {sk} <= :now",
                # "#" sorts after every timestamp character, so "<now>#" covers ids due exactly now.
                "ExpressionAttributeValues": to_dynamo(
                    {":p": partition, ":now": f"{format_timestamp(now)}#\uffff"}
                ),
            }
        )

    # ---- syncs -----------------------------------------------------------------------------------

    def _claim_sync(self, item: dict[str, Any], now: datetime, report: TickReport) -> None:
        connection_id = str(item["id"])
        # What the index does not project: one GetItem per due connection (still O(due)).
        extra = self.store.connection_schedules(connection_id)
        due_sync = parse_timestamp(str(item["next_sync_at"]))
        resync_schedule = extra.get("resync_schedule")
        due_resync: datetime | None = extra.get("next_resync_at") if resync_schedule else None
        resync_due = due_resync is not None and due_resync <= now
        following = due_sync
        if due_sync is not None and due_sync <= now:
            following = next_scheduled_at(
                connection_id,
                int(item["sync_frequency"]),
                item.get("daily_sync_time"),
                extra.get("schedule"),
                now,
            )
            if following is None:
                return  # MANUAL: the connection is manual, and its next write takes it off the index
        elif not resync_due:
            return  # not due after all (the index entry is older than the item)
        next_resync = next_resync_at(resync_schedule, now) if resync_due else due_resync
        assert following is not None
        moved = {
            ":expected": item["next_sync_at"],
            ":next": format_timestamp(following),
            ":sk": f"{format_timestamp(min(following, next_resync or following))}#{connection_id}",
            ":now": format_timestamp(now),
            ":one": 1,
        }
        update, condition = _MOVE_NEXT_SYNC, "next_sync_at = :expected"
        if resync_due:
            # A scheduled re-sync (ours) is claimed in the same write; it also serves a sync due now.
            moved[":resync"] = format_timestamp(next_resync)
            moved[":expected_resync"] = format_timestamp(due_resync)
            update += ", next_resync_at = :resync"
            condition += " AND next_resync_at = :expected_resync"
            if not (resync_schedule or {}).get("scope"):
                update += ", is_historical_sync = :true"
                moved[":true"] = True
        claimed = self.store.update_connection_if(
            connection_id,
            update,
            condition + " AND paused = :false AND schedule_type = :auto AND setup_state = :connected "
            "AND (attribute_not_exists(active_sync_id) OR lease_expires_at < :now)",
            {**moved, ":false": False, ":auto": "auto", ":connected": "connected"},
        )
        if claimed is None:
            # Another tick won, the connection changed, or it is syncing. Only in the last case is
            # there anything to do: move past this grid point without queueing a run (a due re-sync
            # stays due, and runs once the sync has ended).
            if resync_due:
                return
            skipped = self.store.update_connection_if(
                connection_id,
                _MOVE_NEXT_SYNC,
                "next_sync_at = :expected AND lease_expires_at >= :now",
                {k: moved[k] for k in (":expected", ":next", ":sk", ":now", ":one")},
            )
            if skipped is not None:
                report.skipped_while_syncing.append(connection_id)
            return
        request = SyncRequest(str(item["account_id"]), connection_id, reason="schedule")
        if resync_due:
            scope = (resync_schedule or {}).get("scope") or None
            request = SyncRequest(
                str(item["account_id"]),
                connection_id,
                reason="scheduled_resync",
                historical=True,
                scope=scope,
            )
        try:
            request_sync(request)
        except Exception:
            self._unclaim_sync(connection_id, claimed, item, due_resync if resync_due else None)
            raise
        if resync_due:
            report.resyncs_requested.append(connection_id)
        else:
            report.syncs_requested.append(connection_id)

    def _unclaim_sync(
        self, connection_id: str, claimed: Connection, item: dict[str, Any], resync: datetime | None
    ) -> None:
        """Put claimed times back when the announcement failed, so the next tick claims them again."""
        previous = str(item["next_sync_at"])
        sk = min(previous, format_timestamp(resync) or previous)
        update = "SET next_sync_at = :previous, sched_sk = :sk"
        values: dict[str, Any] = {
            ":previous": previous,
            ":sk": f"{sk}#{connection_id}",
            ":claimed": format_timestamp(claimed.next_sync_at),
        }
        if resync is not None:
            update += ", next_resync_at = :resync"
            values[":resync"] = format_timestamp(resync)
        self.store.update_connection_if(connection_id, update, "next_sync_at = :claimed", values)

    def _unclaim(self, connection_id: str, attribute: str, claimed: str, previous: str) -> None:
        """Put a claimed time back when the announcement failed, so the next tick claims it again."""
        self.store.update_connection_if(
            connection_id,
            f"SET {attribute} = :previous, sched_sk = :sk",
            f"{attribute} = :claimed",
            {":previous": previous, ":sk": f"{previous}#{connection_id}", ":claimed": claimed},
        )

    # ---- re-tests of broken connections ------------------------------------------------------------

    def _claim_retest(self, item: dict[str, Any], now: datetime, report: TickReport) -> None:
        connection_id = str(item["id"])
        following = format_timestamp(now + RETEST_BROKEN_AFTER) or ""
        claimed = self.store.update_connection_if(
            connection_id,
            "SET retest_at = :next, sched_sk = :sk, version = version + :one",
            "retest_at = :expected",
            {
                ":expected": item["retest_at"],
                ":next": following,
                ":sk": f"{following}#{connection_id}",
                ":one": 1,
            },
        )
        if claimed is None:
            return
        try:
            publish(SETUP_TESTS_REQUESTED, {"account_id": item["account_id"], "connection_id": connection_id})
        except Exception:
            self._unclaim(connection_id, "retest_at", following, item["retest_at"])
            raise
        report.retests_requested.append(connection_id)

    # ---- data delay ------------------------------------------------------------------------------

    def _announce_delay(self, item: dict[str, Any], now: datetime, report: TickReport) -> None:
        connection = self.store.update_connection_if(
            str(item["id"]),
            "SET delay_announced = :true, version = version + :one REMOVE timer_pk, timer_sk",
            "timer_sk = :expected",
            {":true": True, ":one": 1, ":expected": item["timer_sk"]},
        )
        if connection is None:
            return
        publish(
            "Data Delayed",
            {
                "account_id": connection.account_id,
                "connection_id": connection.id,
                "group_id": connection.group_id,
                "data_delay_sensitivity": connection.data_delay_sensitivity,
                "last_success": format_timestamp(connection.succeeded_at),
                "delayed_since": str(item["timer_sk"]).split("#")[0],
            },
        )
        report.delays_announced.append(connection.id)

    # ---- trials ----------------------------------------------------------------------------------

    def _end_trial(self, item: dict[str, Any], now: datetime, report: TickReport) -> None:
        account_id = str(item["id"])
        for connection_item in self.store.query_index_partition(account_connections_partition(account_id)):
            if not connection_item.get("pause_after_trial") or connection_item.get("paused"):
                continue
            self._pause_for_trial(str(connection_item["id"]), now, report)
        mark_trial_processed(self.store, account_id, now)

    def _pause_for_trial(self, connection_id: str, now: datetime, report: TickReport) -> None:

        def pause(connection: Connection) -> Connection | None:
            if connection.paused or not connection.pause_after_trial:
                return None
            return connection.model_copy(update={"paused": True, "next_sync_at": None})

        _, saved = self.store.modify_connection(None, connection_id, pause)
        if saved is None:
            return
        publish(
            "Connection Paused After Trial",
            {"account_id": saved.account_id, "connection_id": saved.id, "group_id": saved.group_id},
        )
        report.paused_after_trial.append(connection_id)
