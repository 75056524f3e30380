"""Sync operations of the API: trigger, force, resync, state and schemas."""

from __future__ import annotations

from typing import Any

from sluice.api.caller import Caller
from sluice.connections.model import Connection, sync_in_progress
from sluice.errors import Conflict, InvalidInput
from sluice.sources import get_service
from sluice.storage.store import Store
from sluice.storage.sync_store import SyncStore
from sluice.sync.events import SyncRequest, request_sync
from sluice.sync.runs import FORCED_OUT, WORKER_SILENT, end_stopped_run, worker_silent
from sluice.timestamps import utc_now


def sync_running(connection: Connection) -> bool:
    return sync_in_progress(connection, utc_now())


def _check_references(connection: Connection, store: Store) -> None:
    """The config names only the account's own resources (another account's package: not found)."""
    get_service(connection.service).check_references(store, connection.account_id, connection.config)


def trigger_sync(caller: Caller, connection_id: str, force: bool, store: Store) -> str:
    """Ask for a sync; returns the message for the response."""
    connection = store.get_connection(caller.account_id, connection_id)
    _check_references(connection, store)
    if connection.paused:
        raise Conflict(f"Connection with id '{connection_id}' is paused; unpause it to sync")
    now = utc_now()
    if sync_running(connection):
        silent = worker_silent(connection, now)
        if not force and not silent:
            return f"Sync is already running for connection with id '{connection_id}'"
        # Take the lease away: the running worker's next conditional write fails and it stops. Its
        # run ends here, once, so that it has a Sync Completed even if that worker is gone.
        sync_store = SyncStore(store)
        stopped = sync_store.release_for_force(connection_id)
        if stopped is not None:
            end_stopped_run(sync_store, connection, stopped, FORCED_OUT if force else WORKER_SILENT, now)
    request_sync(SyncRequest(caller.account_id, connection_id, reason="api", force=force))
    return f"Sync has been successfully triggered for connection with id '{connection_id}'"


def trigger_resync(
    caller: Caller, connection_id: str, scope: dict[str, list[str]] | None, store: Store
) -> str:
    """A historical re-sync (of everything, or of the tables in `scope`)."""

    def mark_historical(connection: Connection) -> Connection | None:
        if sync_running(connection):
            raise Conflict(f"A sync is running for connection with id '{connection_id}'; retry when it ends")
        _check_references(connection, store)
        if scope:
            _check_scope(connection, scope, store)
        changes: dict[str, Any] = {} if scope else {"is_historical_sync": True}
        if connection.paused:
            changes["resync_pending"] = True  # it waits for unpause
        return connection.model_copy(update=changes) if changes else None

    connection, _ = store.modify_connection(caller.account_id, connection_id, mark_historical)
    if not connection.paused:
        request_sync(
            SyncRequest(caller.account_id, connection_id, reason="resync", historical=True, scope=scope)
        )
    return f"Re-sync has been triggered successfully for connection with id '{connection_id}'"


def _check_scope(connection: Connection, scope: dict[str, list[str]], store: Store) -> None:
    from sluice.schema_config.operations import effective_schemas

    known = {name for _, tables in effective_schemas(connection, store).items() for name in tables["tables"]}
    for schema_name, tables in scope.items():
        if not isinstance(tables, list) or not all(isinstance(t, str) for t in tables):
            raise InvalidInput(f"Field '{schema_name}' must be a list of table names")
        unknown = [t for t in tables if t not in known]
        if unknown:
            raise InvalidInput(f"Unknown table '{unknown[0]}' in schema '{schema_name}'")


def get_state(caller: Caller, connection_id: str, store: Store) -> dict[str, Any]:
    connection = store.get_connection(caller.account_id, connection_id)
    snapshot = SyncStore(store).latest_snapshot(connection.id)
    if snapshot is None:
        raise InvalidInput("The connection state doesn't exist")
    return snapshot.state


def replace_state(caller: Caller, connection_id: str, state: dict[str, Any], store: Store) -> dict[str, Any]:
    connection = store.get_connection(caller.account_id, connection_id)
    if sync_running(connection):
        raise Conflict("The state can't be changed while a sync is running")
    if not connection.paused:
        raise Conflict("Pause the connection before changing its state")
    SyncStore(store).replace_state(connection, state, utc_now())
    return state
