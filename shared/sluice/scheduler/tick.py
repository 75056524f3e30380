"""The scheduler tick: every minute, claim what is due and announce it.

It reads only the sparse, sharded indexes (`schedule`, `timers`), so a tick costs what is due, never
what exists:
- due syncs: each connection is claimed with a conditional write that moves `next_sync_at` to the
  next grid point (a lost race is harmless), then `Sync Requested` is emitted. A connection that is
  syncing at its grid point skips that point (never two runs queued);
- due scheduled re-syncs (ours): claimed in the same write as the sync (the index key is the earlier
  of the two), then announced as a historical `Sync Requested`;
- due re-tests of broken connections: `Setup Tests Requested`, again daily until fixed;
- data that turned late: `Data Delayed`, once per episode (a success ends the episode);
- accounts whose trial ended: their connections with `pause_after_trial` are paused and announced;
- deleted connections whose snapshots and run records a DELETE left: deleted, a budget at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from sluice.connections.model import Connection
from sluice.connections.setup_tests import RETEST_BROKEN_AFTER, SETUP_TESTS_REQUESTED
from sluice.errors import ConnectionNotFound
from sluice.events import publish
from sluice.observability import logger
from sluice.scheduler.grid import next_resync_at, next_scheduled_at
from sluice.storage.schedule_index import Due, ResyncClaim, ScheduleIndex
from sluice.storage.store import Store
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
    purged: list[str] = field(default_factory=list)  # deleted connections whose children are all gone
    failed: list[str] = field(default_factory=list)
    # How late the latest-served sync was requested after its due time (0: nothing was due).
    lag_seconds: float = 0.0


class Scheduler:
    def __init__(self, store: Store, shards: int) -> None:
        self.index = ScheduleIndex(store)
        self.store = store
        self.shards = shards

    def tick(self, now: datetime) -> TickReport:
        report = TickReport()
        work: list[tuple[str, Iterator[Due], Callable[[Due, datetime, TickReport], None]]] = []
        for shard in range(self.shards):
            work += [
                (f"syncs {shard}", self.index.due_syncs(shard, now), self._claim_sync),
                (f"retests {shard}", self.index.due_retests(shard, now), self._claim_retest),
                (f"delays {shard}", self.index.due_delays(shard, now), self._announce_delay),
            ]
        work.append(("trials", self.index.due_trials(now), self._end_trial))
        work.append(("purges", self.index.due_purges(now), self._purge))
        for partition, entries, handle in work:
            for due in entries:
                try:
                    handle(due, now, report)
                except Exception:
                    # One item must not cost every other item its turn; what failed stays due.
                    logger.exception("tick item failed", extra={"partition": partition, "id": due.id})
                    report.failed.append(due.id)
        return report

    # ---- syncs -----------------------------------------------------------------------------------

    def _claim_sync(self, due: Due, now: datetime, report: TickReport) -> None:
        extra = self.index.schedules(due)
        due_sync = parse_timestamp(due.next_sync_at or due.due_at)
        resync_schedule = extra.get("resync_schedule")
        due_resync: datetime | None = extra.get("next_resync_at") if resync_schedule else None
        resync: ResyncClaim | None = None
        if due_resync is not None and due_resync <= now:
            resync = ResyncClaim(
                due_at=due_resync,
                following=next_resync_at(resync_schedule, now),
                whole_connection=not (resync_schedule or {}).get("scope"),
            )
        following = due_sync
        if due_sync is not None and due_sync <= now:
            following = next_scheduled_at(
                due.id, due.sync_frequency, due.daily_sync_time, extra.get("schedule"), now
            )
            if following is None:
                return  # MANUAL: the connection is manual, and its next write takes it off the index
        elif resync is None:
            return  # not due after all (the index entry is older than the item)
        assert following is not None
        if self.index.claim_sync(due, following, now, next_resync=due_resync, resync=resync) is None:
            # Another tick won, the connection changed, or it is syncing. Only in the last case is
            # there anything to do: move past this grid point without queueing a run (a due re-sync
            # stays due, and runs once the sync has ended).
            if resync is None and self.index.skip_while_syncing(due, following, now, due_resync) is not None:
                report.skipped_while_syncing.append(due.id)
            return
        request = SyncRequest(due.account_id, due.id, reason="schedule")
        if resync is not None:
            scope = (resync_schedule or {}).get("scope") or None
            request = SyncRequest(
                due.account_id, due.id, reason="scheduled_resync", historical=True, scope=scope
            )
        try:
            request_sync(request)
        except Exception:
            self.index.unclaim_sync(due, following, resync)
            raise
        if resync is not None:
            report.resyncs_requested.append(due.id)
        else:
            report.syncs_requested.append(due.id)
        due_at = resync.due_at if resync is not None else due_sync
        if due_at is not None:
            report.lag_seconds = max(report.lag_seconds, (now - due_at).total_seconds())

    # ---- re-tests of broken connections ------------------------------------------------------------

    def _claim_retest(self, due: Due, now: datetime, report: TickReport) -> None:
        following = now + RETEST_BROKEN_AFTER
        if self.index.claim_retest(due, following) is None:
            return
        try:
            publish(SETUP_TESTS_REQUESTED, {"account_id": due.account_id, "connection_id": due.id})
        except Exception:
            self.index.unclaim_retest(due, following)
            raise
        report.retests_requested.append(due.id)

    # ---- data delay ------------------------------------------------------------------------------

    def _announce_delay(self, due: Due, now: datetime, report: TickReport) -> None:
        connection = self.index.mark_delay_announced(due)
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
                "delayed_since": due.due_at,
            },
        )
        report.delays_announced.append(connection.id)

    # ---- deleted connections ---------------------------------------------------------------------

    def _purge(self, due: Due, now: datetime, report: TickReport) -> None:
        if self.index.purge(due):
            report.purged.append(due.id)

    # ---- trials ----------------------------------------------------------------------------------

    def _end_trial(self, due: Due, now: datetime, report: TickReport) -> None:
        account_id = due.id
        for listed in self.index.account_connections(account_id):
            # The index's copy may lag a change made a moment ago (pause_after_trial just set), so
            # it only says which connections exist; _pause_for_trial decides on a consistent read.
            self._pause_for_trial(listed.id, now, report)
        self.index.mark_trial_processed(account_id, now)

    def _pause_for_trial(self, connection_id: str, now: datetime, report: TickReport) -> None:

        def pause(connection: Connection) -> Connection | None:
            if connection.paused or not connection.pause_after_trial:
                return None
            return connection.model_copy(update={"paused": True, "next_sync_at": None})

        try:
            _, saved = self.store.modify_connection(None, connection_id, pause)
        except ConnectionNotFound:
            return  # deleted since the index listed it
        if saved is None:
            return
        publish(
            "Connection Paused After Trial",
            {"account_id": saved.account_id, "connection_id": saved.id, "group_id": saved.group_id},
        )
        report.paused_after_trial.append(connection_id)
