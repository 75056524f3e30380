"""The Connection aggregate: every attribute, its defaults, and how it reads on the wire."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from sluice.timestamps import format_timestamp

SYNC_FREQUENCIES = (1, 5, 15, 30, 60, 120, 180, 360, 480, 720, 1440)
DAILY = 1440

ScheduleType = Literal["auto", "manual"]
DataDelaySensitivity = Literal["LOW", "NORMAL", "HIGH", "SYNC_FREQUENCY", "CUSTOM"]
NetworkingMethodIn = Literal["Directly", "SshTunnel", "ProxyAgent", "PrivateLink"]
NetworkingMethod = Literal[
    "Directly", "SshTunnel", "ProxyAgent", "PrivateLink", "UnmanagedProxyAgent", "Unknown"
]
SetupState = Literal["incomplete", "connected", "broken"]
# What the sync engine records; `paused` is derived from the `paused` flag on the way out.
EngineSyncState = Literal["scheduled", "syncing", "rescheduled"]
UpdateState = Literal["on_schedule", "delayed"]
DestinationSchemaNames = Literal["FIVETRAN_NAMING", "SOURCE_NAMING"]
SchemaStatus = Literal["blocked_on_capture", "ready"]
SetupTestStatus = Literal["PASSED", "SKIPPED", "WARNING", "FAILED", "JOB_FAILED"]


class SetupTestResult(BaseModel):
    title: str
    status: SetupTestStatus
    message: str = ""
    details: Any = None


class Alert(BaseModel):
    """An item of `status.tasks` (what the user must do) or `status.warnings` (Fivetran's Alert)."""

    code: str  # machine-readable, e.g. destination_locked
    message: str  # a short human label, e.g. "Destination Locked"
    details: str = ""  # the reason, in the user's terms, with what to do about it


class Connection(BaseModel):
    """A connection as the domain sees it; storage keys live elsewhere."""

    id: str
    account_id: str
    group_id: str
    service: str
    service_version: int = 1
    schema_: str = Field(alias="schema")
    connected_by: str
    created_at: datetime
    succeeded_at: datetime | None = None
    failed_at: datetime | None = None
    paused: bool = False
    pause_after_trial: bool = False
    sync_frequency: int = 360
    schedule_type: ScheduleType = "auto"
    daily_sync_time: str | None = None
    # The flexible schedule (INTERVAL | TIME_OF_DAY | CRON | MANUAL); None: the sync_frequency grid.
    schedule: dict[str, Any] | None = None
    # Ours: periodic historical re-syncs {"cron", "scope"}, and when the next one is due.
    resync_schedule: dict[str, Any] | None = None
    next_resync_at: datetime | None = None
    data_delay_sensitivity: DataDelaySensitivity = "NORMAL"
    data_delay_threshold: int = 0
    networking_method: NetworkingMethod = "Directly"
    private_link_id: str | None = None
    proxy_agent_id: str | None = None
    hybrid_deployment_agent_id: str | None = None
    destination_schema_names: DestinationSchemaNames = "FIVETRAN_NAMING"
    # Accepted and stored as Fivetran does; nothing in Sluice acts on them.
    destination_configuration: dict[str, Any] | None = None
    external_secrets_manager_id: str | None = None
    external_secrets_keys_config: dict[str, Any] | None = None  # stored, never returned (as Fivetran)
    schema_status: SchemaStatus = "ready"
    # The service config with every secret replaced by "******"; naming keys included.
    config: dict[str, Any] = Field(default_factory=dict)
    # KMS ciphertexts (base64) keyed by JSON pointer into config ("auth/token"), plus "$auth".
    secrets: dict[str, str] = Field(default_factory=dict)
    setup_state: SetupState = "incomplete"
    sync_state: EngineSyncState = "scheduled"
    is_historical_sync: bool = True
    rescheduled_for: datetime | None = None
    setup_tests: list[SetupTestResult] | None = None
    # Why the last sync or setup tests failed, and what to do (see connections.alerts).
    tasks: list[Alert] = Field(default_factory=list)
    warnings: list[Alert] = Field(default_factory=list)
    version: int = 0
    # Internal bookkeeping, never on the wire.
    active_sync_id: str | None = None  # the sync holding the lease
    lease_expires_at: datetime | None = None
    heartbeat_at: datetime | None = None  # the lease holder's latest sign of life
    state_seq: int = 0  # sequence number of the latest STATE# snapshot (0: none yet)
    resync_pending: bool = False  # a resync asked for while paused waits for unpause
    next_sync_at: datetime | None = None  # the scheduler's sparse index key (None: not scheduled)
    connected_since: datetime | None = None
    consecutive_failures: int = 0
    delay_announced: bool = False  # a Data Delayed event was sent for the current episode
    retest_at: datetime | None = None  # broken connections: when the scheduler re-runs their setup tests
    last_sync_started_at: datetime | None = None  # a sync request made before this is already served
    # Columns seen by syncs as older versions kept them; now in their own items (SyncStore.columns_seen).
    table_columns: dict[str, list[str]] = Field(default_factory=dict)

    model_config = {"populate_by_name": True}

    @property
    def schema_name(self) -> str:
        return self.schema_


def sync_in_progress(connection: Connection, now: datetime) -> bool:
    """A sync holds the connection: a lease that has not expired (a dead worker's lease runs out)."""
    lease = connection.lease_expires_at
    return connection.active_sync_id is not None and lease is not None and lease > now


def wire_sync_state(connection: Connection, now: datetime) -> str:
    if sync_in_progress(connection, now):
        return "syncing"
    if connection.paused:
        return "paused"
    return "scheduled" if connection.sync_state == "syncing" else connection.sync_state


def response_data(
    connection: Connection,
    naming_keys: tuple[str, ...],
    update_state: UpdateState,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The `data` object of get, create, update, test and list items: every key, always.
    `update_state` is computed by the caller at read time (it depends on the clock)."""
    c = connection
    config = {k: v for k, v in c.config.items() if k not in naming_keys}
    body: dict[str, Any] = {
        "id": c.id,
        "group_id": c.group_id,
        "service": c.service,
        "service_version": c.service_version,
        "schema": c.schema_,
        "connected_by": c.connected_by,
        "created_at": format_timestamp(c.created_at),
        "succeeded_at": format_timestamp(c.succeeded_at),
        "failed_at": format_timestamp(c.failed_at),
        "paused": c.paused,
        "pause_after_trial": c.pause_after_trial,
        "sync_frequency": c.sync_frequency,
        "schedule_type": c.schedule_type,
        "daily_sync_time": c.daily_sync_time if c.sync_frequency == DAILY else None,
        "schedule": c.schedule,
        "resync_schedule": c.resync_schedule,
        "data_delay_sensitivity": c.data_delay_sensitivity,
        "data_delay_threshold": c.data_delay_threshold,
        "networking_method": c.networking_method,
        "private_link_id": c.private_link_id,
        "proxy_agent_id": c.proxy_agent_id,
        "hybrid_deployment_agent_id": c.hybrid_deployment_agent_id,
        "destination_schema_names": c.destination_schema_names,
        "destination_configuration": c.destination_configuration,
        "external_secrets_manager_id": c.external_secrets_manager_id,
        "source_sync_details": None,
        "config": config,
        "status": {
            "setup_state": c.setup_state,
            "sync_state": wire_sync_state(c, now or datetime.now(UTC)),
            "update_state": update_state,
            "is_historical_sync": c.is_historical_sync,
            "rescheduled_for": format_timestamp(c.rescheduled_for) if c.sync_state == "rescheduled" else None,
            "schema_status": c.schema_status,
            "tasks": [a.model_dump() for a in c.tasks],
            "warnings": [a.model_dump() for a in c.warnings],
        },
    }
    if c.setup_tests is not None:
        body["setup_tests"] = [t.model_dump(mode="json") for t in c.setup_tests]
    return body
