"""Sync history (ours, a Sluice extension): a connection's syncs from their run records, newest
first, with live progress while one runs; and cancelling a running sync."""

from __future__ import annotations

from typing import Any

from sluice.api.caller import Caller
from sluice.errors import Conflict, NotFound
from sluice.storage.store import Store
from sluice.storage.sync_store import RUN_CANCELLED, RUN_RUNNING, RunProgress, SyncStore
from sluice.sync.events import announce_end
from sluice.timestamps import parse_timestamp, utc_now

CANCELLED_MESSAGE = "Cancelled through the API"
# Sync ids are EventBridge event ids (36 characters); a longer one names no sync (and could not be a key).
MAX_SYNC_ID_LENGTH = 128


class SyncNotFound(NotFound):
    code = "NotFound_Sync"

    def __init__(self, sync_id: str) -> None:
        super().__init__(f"Sync with id '{sync_id}' doesn't exist")


def sync_out(record: dict[str, Any]) -> dict[str, Any]:
    """A run record on the wire. While the sync runs, the rows are those of its latest checkpoint."""
    progress = RunProgress.of(record)
    started, finished = record.get("started_at"), record.get("finished_at")
    status = str(record.get("status") or RUN_RUNNING)
    start, end = parse_timestamp(started), parse_timestamp(finished)
    duration = round((end - start).total_seconds(), 6) if start and end else None
    return {
        "id": record["sync_id"],
        "connection_id": record.get("connection_id") or str(record["pk"]).removeprefix("CONN#"),
        "status": "RUNNING" if status == RUN_RUNNING else status,
        "trigger": record.get("reason"),
        "started_at": started,
        "finished_at": finished or None,
        "duration_seconds": duration,
        "last_checkpoint_at": record.get("checkpoint_at") or None,
        "rows_upserted": progress.rows_upserted,
        "rows_deleted": progress.rows_deleted,
        "tables": progress.tables,
        "continuations": progress.continuations,
        "reason": record.get("message") or None,
        "reason_code": record.get("reason_code") or None,
    }


def list_syncs(
    caller: Caller, connection_id: str, cursor: str | None, limit: int, store: Store
) -> dict[str, Any]:
    connection = store.get_connection(caller.account_id, connection_id)
    page = SyncStore(store).list_runs(connection.id, cursor, limit)
    return {
        "items": [sync_out(i) for i in page.items],
        "next_cursor": page.next_cursor,
        "nextCursor": page.next_cursor,
    }


def _run_record(sync_store: SyncStore, connection_id: str, sync_id: str) -> dict[str, Any]:
    record = sync_store.run(connection_id, sync_id) if len(sync_id) <= MAX_SYNC_ID_LENGTH else None
    if record is None:
        raise SyncNotFound(sync_id[:MAX_SYNC_ID_LENGTH])
    return record


def get_sync(caller: Caller, connection_id: str, sync_id: str, store: Store) -> dict[str, Any]:
    connection = store.get_connection(caller.account_id, connection_id)
    return sync_out(_run_record(SyncStore(store), connection.id, sync_id))


def cancel_sync(caller: Caller, connection_id: str, sync_id: str, store: Store) -> dict[str, Any]:
    """Cancel a running sync: it ends now as CANCELLED (the connection back to `scheduled`, `failed_at`
    moved forward); its worker finds its lease gone at its next batch and stops, so everything up to
    its last checkpoint is kept and nothing after it is committed."""
    from sluice.sync.engine import strictly_after

    connection = store.get_connection(caller.account_id, connection_id)
    sync_store = SyncStore(store)
    record = _run_record(sync_store, connection.id, sync_id)
    if record.get("status") != RUN_RUNNING or connection.active_sync_id != sync_id:
        raise Conflict(f"Sync with id '{sync_id}' is not running")
    now = utc_now()
    failed_at = strictly_after(now, connection.succeeded_at, connection.failed_at)
    if not sync_store.cancel(connection.id, sync_id, CANCELLED_MESSAGE, now, failed_at):
        raise Conflict(f"Sync with id '{sync_id}' is not running")
    ended = sync_store.run(connection.id, sync_id) or record
    announce_end(connection, sync_id, RUN_CANCELLED, ended)
    return sync_out(ended)


def cancel_running_sync(caller: Caller, connection_id: str, store: Store) -> dict[str, Any]:
    """Cancel whichever sync is running on the connection (for callers that hold no sync id)."""
    connection = store.get_connection(caller.account_id, connection_id)
    if connection.active_sync_id is None:
        raise Conflict(f"No sync is running for connection with id '{connection_id}'")
    return cancel_sync(caller, connection_id, connection.active_sync_id, store)
