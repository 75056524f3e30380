"""The sync events on the bus, in Fivetran's webhook shapes where one exists."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sluice.connections.model import Alert, Connection
from sluice.events import publish
from sluice.timestamps import format_timestamp, utc_now

SYNC_REQUESTED = "Sync Requested"


@dataclass(frozen=True)
class SyncRequest:
    """The detail of a `Sync Requested` event."""

    account_id: str
    connection_id: str
    reason: str = "api"  # api | schedule | resync | scheduled_resync | continuation | unpause
    force: bool = False
    historical: bool = False
    # Table-level resync: {"<schema>": ["<table>", ...]}; None means every table.
    scope: dict[str, list[str]] | None = None
    # Set on continuations: the sync this run continues.
    sync_id: str | None = None
    # A request is served by any sync that starts after it was made: two requests that race (the
    # scheduler's and a user's) start one sync.
    requested_at: str | None = field(default_factory=lambda: format_timestamp(utc_now()))

    @classmethod
    def from_detail(cls, detail: dict[str, Any]) -> SyncRequest:
        return cls(**{k: v for k, v in detail.items() if k in cls.__dataclass_fields__})


def request_sync(request: SyncRequest) -> None:
    publish(SYNC_REQUESTED, asdict(request))


def webhook_detail(event: str, connection: Connection, sync_id: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "event": event,
        "created": format_timestamp(utc_now()),
        "connector_type": connection.service,
        "connector_id": connection.id,
        "connector_name": connection.schema_name,
        "sync_id": sync_id,
        "destination_group_id": connection.group_id,
        "account_id": connection.account_id,
        "connection_id": connection.id,
        "data": data,
    }


def announce_start(connection: Connection, sync_id: str) -> None:
    publish("Sync Started", webhook_detail("sync_start", connection, sync_id, {}))


def announce_end(
    connection: Connection, sync_id: str, status: str, run: dict[str, Any], alert: Alert | None = None
) -> None:
    """`Sync Completed` from the ended run record: its totals (over every invocation) and, unless it
    succeeded, its reason (Fivetran's `reason`, and `taskType`: the task it left on the connection)."""
    from sluice.storage.sync_store import RunProgress

    progress = RunProgress.of(run)
    data: dict[str, Any] = {
        "status": status,
        "rows_upserted": progress.rows_upserted,
        "rows_deleted": progress.rows_deleted,
        "tables": progress.tables,  # ours: {"<table>": {"rows_upserted": n, "rows_deleted": n}}
    }
    if status != "SUCCESSFUL":
        data["reason"] = alert.details if alert is not None else str(run.get("message") or "")
        if alert is not None:
            data["taskType"] = alert.code
    publish("Sync Completed", webhook_detail("sync_end", connection, sync_id, data))
    from sluice.metrics import sync_ended

    sync_ended(status, run)
