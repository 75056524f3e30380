"""The end of a sync that did not end by itself: forced out, its connection deleted, or its worker
gone silent. Whoever notices ends the run record (conditionally, so it ends exactly once) and sends
its one `Sync Completed`, with the totals of every invocation that ran."""

from __future__ import annotations

from datetime import datetime, timedelta

from sluice.connections.model import Connection
from sluice.storage.sync_store import SyncStore
from sluice.sync.events import announce_end

STOPPED_STATUS = "FAILURE_WITH_TASK"  # API.md's sync_end statuses: a sync that was stopped did not succeed
FORCED_OUT = "Stopped: a forced sync took over the connection"
DELETED = "Stopped: the connection was deleted"
WORKER_SILENT = "Stopped: the sync's worker stopped responding"
# How often a running sync records a heartbeat, and how long a silence means its worker is gone
# (a crash, a timeout): then POST /sync starts a new sync instead of answering "already running".
HEARTBEAT_EVERY = timedelta(seconds=30)
SILENT_AFTER = timedelta(minutes=3)


def worker_silent(connection: Connection, now: datetime) -> bool:
    last_sign = connection.heartbeat_at or connection.last_sync_started_at
    return last_sign is None or now - last_sign > SILENT_AFTER


def end_stopped_run(
    sync_store: SyncStore,
    connection: Connection,
    sync_id: str,
    message: str,
    now: datetime,
) -> bool:
    """End `sync_id`'s run if it is still running, with the totals of its last checkpoint; True when
    this call ended it (and announced it)."""
    ended = sync_store.end_run(connection.id, sync_id, STOPPED_STATUS, message, now)
    if ended is None:
        return False
    announce_end(connection, sync_id, STOPPED_STATUS, ended)
    return True
