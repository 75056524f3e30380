"""The sync engine: runs a connection's source into its group's destination, checkpoint by checkpoint.

Order of every step, which is what makes a crash harmless:
1. take the lease (a conditional write of `active_sync_id`);
2. run the source's extract from the last committed state and write each batch to the destination
   (upsert by primary key / deterministic object keys, so a replay overwrites itself);
3. only after the destination is durable, commit the checkpoint: a `STATE#<seq>` snapshot and the
   connection update in one transaction, conditional on still holding the lease;
4. before the Lambda deadline, stop at a checkpoint and ask for a continuation;
5. finish: `succeeded_at` or `failed_at` moves strictly forward in the same write that takes
   `sync_state` out of `syncing` and drops the lease.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from traceback import format_exception
from typing import Any

from sluice.config_secrets import AUTH_POINTER, Scrubber, reveal
from sluice.connections.alerts import after_sync, rate_limited_warning, sync_task
from sluice.connections.model import Alert, Connection
from sluice.connections.trust import network_path_for
from sluice.contract import Checkpoint, Deletes, Operation, TableSpec, Upserts
from sluice.destinations import Destination, open_destination
from sluice.errors import Conflict, ConnectionNotFound
from sluice.network_path import within
from sluice.observability import logger
from sluice.scheduler.grid import connection_next_sync_at
from sluice.schema_config.policy import SchemaPolicy
from sluice.sources import get_service
from sluice.sources.base import SourceAuthError, SourceRateLimited
from sluice.storage.store import Store
from sluice.storage.sync_store import LeaseBusy, LeaseLost, RunProgress, SyncStore
from sluice.sync.events import SyncRequest, announce_end, announce_start, request_sync
from sluice.sync.runs import DELETED, FORCED_OUT, HEARTBEAT_EVERY, end_stopped_run
from sluice.timestamps import parse_timestamp, utc_now

LEASE = timedelta(minutes=16)  # longer than the worker's 15-minute Lambda timeout
STOP_BEFORE_DEADLINE_SECONDS = 60.0  # stop at a checkpoint when less than this is left
LEASE_CHECK_SECONDS = 1.0  # how stale a worker's belief that it still holds the lease may get
FAILING_AFTER = 3  # consecutive failed syncs before `Connection Failing`
_FINISH_RETRIES = 5


@dataclass
class SyncResult:
    status: str  # SUCCESSFUL | FAILURE_WITH_TASK | RESCHEDULED | CONTINUED | SKIPPED
    rows_upserted: int = 0
    rows_deleted: int = 0
    message: str = ""
    # Why it did not succeed, as the task (or, rescheduled, the warning) it leaves on the connection.
    alert: Alert | None = field(default=None, repr=False)
    # Columns seen per table (the schemas and columns endpoints report them).
    columns: dict[str, set[str]] = field(default_factory=dict, repr=False)
    # Rows per table over every invocation of this sync (rows_* above are this invocation's): each
    # checkpoint records it on the run record, in the checkpoint's own transaction.
    progress: RunProgress = field(default_factory=RunProgress, repr=False)

    def add(self, table: str, upserted: int = 0, deleted: int = 0) -> None:
        self.rows_upserted += upserted
        self.rows_deleted += deleted
        self.progress.add(table, upserted, deleted)


def strictly_after(now: datetime, *previous: datetime | None) -> datetime:
    """`now`, or a microsecond after the latest previous stamp: orchestrators poll for a change."""
    latest = max((p for p in previous if p is not None), default=None)
    if latest is not None and now <= latest:
        return latest + timedelta(microseconds=1)
    return now


class SyncEngine:
    def __init__(
        self,
        store: Store,
        decrypt: Callable[[str, dict[str, str]], dict[str, str]],
        commit_every: float | None = None,
        stop_before_deadline: float = STOP_BEFORE_DEADLINE_SECONDS,
    ) -> None:
        from sluice.settings import get_settings

        self.store = store
        self.sync_store = SyncStore(store)
        self.decrypt = decrypt
        self.commit_every = get_settings().sync_commit_every_seconds if commit_every is None else commit_every
        self.stop_before_deadline = stop_before_deadline

    # ---- entry point -------------------------------------------------------------------------------

    def run(self, request: SyncRequest, sync_id: str, remaining_seconds: Callable[[], float]) -> SyncResult:
        sync_id = request.sync_id or sync_id
        try:
            current = self.store.get_connection(request.account_id, request.connection_id)
        except ConnectionNotFound:
            # Deleted since the request was made: nothing to do, and nothing to retry.
            return SyncResult("SKIPPED", message="deleted")
        if current.paused and request.reason != "continuation":
            if request.historical:
                self._mark_resync_pending(current)
            logger.info("connection is paused; sync skipped", extra={"connection_id": current.id})
            return SyncResult("SKIPPED", message="paused")
        existing = self.sync_store.run(current.id, sync_id)
        if existing is not None and existing.get("status") != "running":
            # A replay of a sync that has ended (a redelivered event, a late continuation): it ended once.
            logger.info("this sync has ended already", extra={"sync_id": sync_id})
            return SyncResult("SKIPPED", message="ended")
        served_after = None if request.reason == "continuation" else parse_timestamp(request.requested_at)
        try:
            connection = self.sync_store.acquire(current.id, sync_id, utc_now(), LEASE, served_after)
        except LeaseBusy:
            logger.info(
                "a sync is running or already served this request", extra={"connection_id": current.id}
            )
            return SyncResult("SKIPPED", message="busy")
        # A continuation (or a replay after a crash) carries on from the totals of its last checkpoint.
        result = SyncResult("SUCCESSFUL", progress=RunProgress.of(existing))
        try:
            return self._run_locked(connection, request, sync_id, remaining_seconds, result)
        except LeaseLost:
            logger.info("lease lost; this sync stops without writing", extra={"sync_id": sync_id})
            # Still this sync's lease: a duplicate delivery of it committed first and runs on; its run is
            # that worker's to end.
            if not self.sync_store.holds_lease(connection.id, sync_id):
                self._end_stopped(connection, sync_id, FORCED_OUT, result)
            return SyncResult("SKIPPED", message="lease lost")
        except ConnectionNotFound:
            logger.info("the connection was deleted; this sync stops", extra={"sync_id": sync_id})
            self._end_stopped(connection, sync_id, DELETED, result)
            return SyncResult("SKIPPED", message="deleted")

    def _end_stopped(self, connection: Connection, sync_id: str, message: str, result: SyncResult) -> None:
        """End this sync's run if nobody did (the forcing or cancelling API call or the DELETE usually
        has); its totals stay those of its last checkpoint."""
        end_stopped_run(self.sync_store, connection, sync_id, message, utc_now())

    # ---- the work ----------------------------------------------------------------------------------

    def _run_locked(
        self,
        connection: Connection,
        request: SyncRequest,
        sync_id: str,
        remaining_seconds: Callable[[], float],
        result: SyncResult,
    ) -> SyncResult:
        destination: Destination | None = None
        # Takes the connection's secrets out of column names, messages, run records and log lines.
        scrubber = Scrubber()
        try:
            # A replay of this sync id (after a crash) finds its run record: no second Sync Started.
            if request.reason != "continuation" and self.sync_store.start_run(
                connection.id, sync_id, utc_now(), request.reason
            ):
                announce_start(connection, sync_id)
            service = get_service(connection.service)
            secrets = {k: v for k, v in connection.secrets.items() if k != AUTH_POINTER}
            config = reveal(connection.config, self.decrypt(connection.id, secrets))
            scrubber = service.scrubber(config)
            service.check_references(self.store, connection.account_id, config)
            tables = {t.name: t for t in service.tables(config)}
            schema = str(config["schema"])
            # The schema config, applied here once for every destination (see SchemaPolicy).
            policy = SchemaPolicy.prepare(self.store, connection, schema, tables, self.decrypt)
            enabled = {name for name in tables if policy.table_enabled(name)}
            destination = self._open_destination(connection)
            self._check_sync_modes(connection, policy, enabled)
            self._drop_blocked_columns(destination, schema, policy)
            resyncs = {t: n for t, n in policy.resync_requests().items() if t in enabled}
            state, resumed = self._starting_state(connection, request, sync_id, tables, set(resyncs))
            # Only the invocation that started these tables over clears their requests (after it commits).
            serving = {} if resumed else resyncs
            deadline = time.monotonic() + max(0.0, remaining_seconds() - self.stop_before_deadline)
            seq = connection.state_seq
            batch = 0
            last_commit = last_lease_check = last_heartbeat = time.monotonic()
            pending: dict[str, Any] | None = None
            # Every declared table disabled: nothing to read. (A source that declares none, or yields
            # tables it did not declare, is read; the policy takes those tables as new ones.)
            # On the connection's network path: its approved certificates pinned, through its proxy agent.
            path = network_path_for(connection, self.store)
            operations: Iterator[Operation] = within(
                path,
                service.extract(service.select_tables(config, enabled), state, deadline)
                if enabled or not tables
                else iter(()),
            )
            for operation in operations:
                if isinstance(operation, Checkpoint):
                    pending = operation.state
                    out_of_time = time.monotonic() >= deadline
                    if out_of_time and _exhausted(operations):
                        break  # that was the last checkpoint: finish instead of continuing
                    if out_of_time or time.monotonic() - last_commit >= self.commit_every:
                        destination.flush()
                        seq += 1
                        if out_of_time:
                            result.progress.continuations += 1
                        self.sync_store.commit_checkpoint(
                            connection.id, sync_id, seq, pending, utc_now(), LEASE, result.progress
                        )
                        policy.served_resyncs(serving)
                        serving = {}
                        pending, batch, last_commit = None, 0, time.monotonic()
                        if out_of_time:
                            self.sync_store.add_columns(connection.id, result.columns)
                            request_sync(
                                replace(request, reason="continuation", sync_id=sync_id, force=False)
                            )
                            result.status = "CONTINUED"
                            return result
                    continue
                if time.monotonic() - last_lease_check >= LEASE_CHECK_SECONDS:
                    # A forced sync may have taken the connection: stop writing soon, not at the next commit.
                    if time.monotonic() - last_heartbeat >= HEARTBEAT_EVERY.total_seconds():
                        alive = self.sync_store.heartbeat(connection.id, sync_id, utc_now())
                        last_heartbeat = time.monotonic()
                    else:
                        alive = self.sync_store.holds_lease(connection.id, sync_id)
                    if not alive:
                        raise LeaseLost(sync_id)
                    last_lease_check = time.monotonic()
                # Deterministic for a replay of this sync (same id), distinct from any other sync's.
                batch_id = f"{seq:012d}-{sync_id}-{batch:06d}"
                batch += 1
                if not policy.table_enabled(operation.table):
                    continue  # a disabled table (of a source that can't skip it): nothing lands
                spec = policy.spec(tables.get(operation.table) or TableSpec(operation.table, ()))
                if isinstance(operation, Upserts):
                    names: set[str] = set().union(*operation.rows)
                    rows = scrubber.row_keys(operation.rows, names)
                    landed = set(map(scrubber.text, names)) if scrubber else names
                    rows = policy.rows(operation.table, rows, landed)
                    result.columns.setdefault(operation.table, set()).update(landed)
                    upserted = destination.upsert(schema, spec, rows, utc_now(), batch_id)
                    result.add(operation.table, upserted=upserted)
                elif isinstance(operation, Deletes):
                    keys = policy.rows(operation.table, operation.keys)
                    deleted = destination.delete(schema, spec, keys, utc_now(), batch_id)
                    result.add(operation.table, deleted=deleted)
            destination.flush()
            if pending is not None:
                seq += 1
                self.sync_store.commit_checkpoint(
                    connection.id, sync_id, seq, pending, utc_now(), LEASE, result.progress
                )
                policy.served_resyncs(serving)
        except LeaseLost:
            raise
        except SourceRateLimited as exc:
            result = _ended_by(result, "RESCHEDULED", rate_limited_warning(scrubber.text(str(exc))))
            self._finish(connection.id, sync_id, result, rescheduled_for=exc.retry_at)
            return result
        except SourceAuthError as exc:
            result = _ended_by(result, "FAILURE_WITH_TASK", sync_task(exc, scrubber.text(str(exc))))
            self._finish(connection.id, sync_id, result, broken=True)
            return result
        except Exception as exc:
            logger.error(
                "sync failed",
                extra={
                    "connection_id": connection.id,
                    "sync_id": sync_id,
                    "error": scrubber.text("".join(format_exception(exc))),
                },
            )
            result = _ended_by(result, "FAILURE_WITH_TASK", sync_task(exc, scrubber.text(_safe_message(exc))))
            self._finish(connection.id, sync_id, result)
            return result
        finally:
            if destination is not None:
                destination.close()
        self._finish(connection.id, sync_id, result)
        return result

    def _open_destination(self, connection: Connection) -> Destination:
        item = self.store.get_destination(None, connection.group_id)
        if item is None:
            from sluice.destinations import DestinationError

            raise DestinationError(f"Group '{connection.group_id}' has no destination")
        from sluice.destinations.stored import revealed_config

        return open_destination(
            str(item["service"]), revealed_config(item, self.decrypt), str(item["account_id"])
        )

    def _starting_state(
        self,
        connection: Connection,
        request: SyncRequest,
        sync_id: str,
        tables: dict[str, TableSpec],
        resync: set[str],
    ) -> tuple[dict[str, Any], bool]:
        """The state to extract from, and whether it is this sync's own (a continuation or a replay).
        Tables in `resync` (the schema config asks for them) start over unless it is."""
        snapshot = self.sync_store.latest_snapshot(connection.id)
        mine = snapshot is not None and snapshot.sync_id == sync_id
        if mine and snapshot is not None:
            return snapshot.state, True
        if connection.is_historical_sync or request.historical:
            if request.scope and snapshot is not None:
                scoped = _scoped_tables(request.scope, tables) | resync
                return _without_tables(snapshot.state, scoped), False
            # A historical sync starts from nothing; its own checkpoints carry a continuation forward.
            return {}, False
        state = snapshot.state if snapshot else {}
        return (_without_tables(state, resync) if resync and state else state), False

    def _check_sync_modes(self, connection: Connection, policy: SchemaPolicy, enabled: set[str]) -> None:
        """A table whose sync mode the destination can't keep fails the sync before anything lands (the
        API refuses such a mode; this catches a destination changed since)."""
        from sluice.destinations import DestinationError, sync_modes_of

        item = self.store.get_destination(None, connection.group_id)
        service = str(item["service"]) if item else ""
        modes = sync_modes_of(service)
        for table in sorted(enabled):
            mode = policy.spec(TableSpec(table, ())).sync_mode
            if mode not in modes:
                raise DestinationError(
                    f"Table '{policy.schema}.{table}' is in {mode} mode, which the '{service}' "
                    "destination can't keep; change its sync_mode"
                )

    def _drop_blocked_columns(self, destination: Destination, schema: str, policy: SchemaPolicy) -> None:
        """Columns marked for deletion (DELETE .../columns/{column}) leave the destination, then the mark."""
        marked = policy.columns_to_drop()
        for table, columns in marked.items():
            destination.drop_columns(schema, table, columns)
        policy.dropped(marked)

    # ---- finishing ---------------------------------------------------------------------------------

    def _finish(
        self,
        connection_id: str,
        sync_id: str,
        result: SyncResult,
        rescheduled_for: datetime | None = None,
        broken: bool = False,
    ) -> None:
        self.sync_store.add_columns(connection_id, result.columns)
        for _ in range(_FINISH_RETRIES):
            current = self.store.get_connection(None, connection_id)
            if current.active_sync_id != sync_id:
                raise LeaseLost(sync_id)
            finished = self._finished(current, result, rescheduled_for, broken)
            try:
                saved = self.sync_store.finish(finished, sync_id)
                break
            except Conflict:
                continue  # the API changed the connection meanwhile: re-read and finish again
        else:
            raise Conflict("Could not record the end of the sync")
        if result.status == "SUCCESSFUL" and saved.state_seq > 1:
            self.sync_store.prune_snapshots(connection_id, keep_from_seq=saved.state_seq)
        ended = self.sync_store.end_run(
            connection_id,
            sync_id,
            result.status,
            result.message,
            utc_now(),
            progress=result.progress,
            reason_code=result.alert.code if result.alert else "",
        )
        if ended is not None:  # ended exactly once, with the totals of every invocation
            announce_end(saved, sync_id, result.status, ended, result.alert)
        if result.status == "FAILURE_WITH_TASK" and saved.consecutive_failures == FAILING_AFTER:
            from sluice.events import publish

            publish(
                "Connection Failing",
                {
                    "account_id": saved.account_id,
                    "connection_id": saved.id,
                    "group_id": saved.group_id,
                    "consecutive_failures": saved.consecutive_failures,
                    "message": result.message,
                },
            )

    def _finished(
        self, current: Connection, result: SyncResult, rescheduled_for: datetime | None, broken: bool
    ) -> Connection:
        now = utc_now()
        # Columns seen are not here: they grow with use and live in their own items (add_columns).
        changes: dict[str, Any] = {
            "rescheduled_for": None,
            "sync_state": "scheduled",
            **after_sync(current, result.status, result.alert),
        }
        if result.status == "SUCCESSFUL":
            changes.update(
                succeeded_at=strictly_after(now, current.succeeded_at, current.failed_at),
                is_historical_sync=False,
                setup_state="connected",
                connected_since=current.connected_since or now,
                consecutive_failures=0,
                delay_announced=False,
                retest_at=None,
            )
        elif result.status == "RESCHEDULED":
            changes.update(sync_state="rescheduled", rescheduled_for=rescheduled_for)
        else:
            changes.update(
                failed_at=strictly_after(now, current.succeeded_at, current.failed_at),
                consecutive_failures=current.consecutive_failures + 1,
            )
            if broken:
                from sluice.connections.setup_tests import RETEST_BROKEN_AFTER

                changes.update(setup_state="broken", retest_at=now + RETEST_BROKEN_AFTER)
        finished = current.model_copy(update=changes)
        planned = connection_next_sync_at(finished, now)
        keep = (
            current.next_sync_at is not None and current.next_sync_at > now and result.status != "RESCHEDULED"
        )
        return finished.model_copy(
            update={"next_sync_at": current.next_sync_at if keep and planned else planned}
        )

    def _mark_resync_pending(self, current: Connection) -> None:
        try:
            self.store.replace_connection(
                current.model_copy(update={"resync_pending": True, "is_historical_sync": True}),
                current.version,
            )
        except Conflict:
            logger.info(
                "connection changed; resync pending not recorded", extra={"connection_id": current.id}
            )


def _ended_by(result: SyncResult, status: str, alert: Alert) -> SyncResult:
    """The result of a sync that did not succeed: its reason is the alert it leaves on the connection."""
    return replace(result, status=status, message=alert.details, alert=alert)


def _exhausted(operations: Iterator[Operation]) -> bool:
    """Whether the source has nothing after this point. What it yields next is dropped: a continuation
    reads it again from the committed checkpoint."""
    return next(operations, None) is None


def _scoped_tables(scope: dict[str, list[str]], tables: dict[str, TableSpec]) -> set[str]:
    names: set[str] = set()
    for _schema, table_names in scope.items():
        names.update(t for t in table_names if t in tables)
    return names


def _without_tables(state: dict[str, Any], names: set[str]) -> dict[str, Any]:
    """The state with the named tables' positions dropped, so only they start over."""
    tables = state.get("tables")
    if not isinstance(tables, dict):
        return {}
    return {**state, "tables": {k: v for k, v in tables.items() if k not in names}}


def _safe_message(exc: Exception) -> str:
    from sluice.errors import SluiceError
    from sluice.sources.base import SourceError

    if isinstance(exc, SourceError | SluiceError):
        return str(exc)
    return f"Internal error during sync ({type(exc).__name__})"
