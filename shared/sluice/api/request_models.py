"""Request bodies of the API: field types, enums and required fields. Cross-field rules live in the
logic modules (`connections`), where create and update share them."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from sluice.connections.model import (
    SYNC_FREQUENCIES,
    DataDelaySensitivity,
    DestinationSchemaNames,
    NetworkingMethodIn,
    ScheduleType,
)


def _sync_frequency(value: int) -> int:
    if value not in SYNC_FREQUENCIES:
        raise ValueError(f"must be one of {', '.join(map(str, SYNC_FREQUENCIES))}")
    return value


def _daily_sync_time(value: str) -> str:
    if not re.fullmatch(r"(?:[01]\d|2[0-3]):00", value):
        raise ValueError("must be a whole hour from 00:00 to 23:00, as HH:00")
    return value


# CUSTOM data delay thresholds, in minutes: up to a year (a bound keeps every date computed from it
# representable, and every stored number within DynamoDB's).
MAX_DATA_DELAY_THRESHOLD = 525_600

SyncFrequency = Annotated[int, AfterValidator(_sync_frequency)]
DailySyncTime = Annotated[str, AfterValidator(_daily_sync_time)]
Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]


class Body(BaseModel):
    # Unknown fields are refused: a misspelt field silently ignored is worse than a 400.
    model_config = ConfigDict(extra="forbid")


class ConnectCardConfig(Body):
    redirect_uri: str | None = None
    hide_setup_guide: bool | None = None
    # Show the optional fields on the hosted page too (Fivetran: fields hidden by default).
    all_fields: bool | None = None


class DestinationConfiguration(Body):
    virtual_warehouse: str | None = None


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


SchemaStatus = Annotated[Literal["blocked_on_capture", "ready"], BeforeValidator(_lower)]


Weekday = Literal["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]


class Schedule(Body):
    """The flexible schedule of go-fivetran and Terraform; the rules between its fields live in
    sluice.scheduler.grid.schedule_problem."""

    schedule_type: Literal["INTERVAL", "TIME_OF_DAY", "CRON", "MANUAL"]
    interval: Annotated[int, Field(ge=1, le=1440)] | None = None  # minutes
    time_of_day: DailySyncTime | None = None
    days_of_week: list[Weekday] | None = None
    cron: Annotated[str, Field(min_length=1, max_length=200)] | None = None


class ResyncSchedule(Body):
    """Ours (a Sluice extension): a periodic historical re-sync of the connection, or of the tables in
    `scope`, at the fire times of `cron` (five fields, UTC). `{}` removes it."""

    cron: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    scope: dict[str, list[str]] | None = None


class ConnectionSettings(Body):
    """Fields that create and update share; None means "not set"."""

    paused: bool | None = None
    pause_after_trial: bool | None = None
    sync_frequency: SyncFrequency | None = None
    schedule_type: ScheduleType | None = None
    daily_sync_time: DailySyncTime | None = None
    schedule: Schedule | None = None
    resync_schedule: ResyncSchedule | None = None
    data_delay_sensitivity: DataDelaySensitivity | None = None
    data_delay_threshold: Annotated[int, Field(ge=0, le=MAX_DATA_DELAY_THRESHOLD)] | None = None
    networking_method: NetworkingMethodIn | None = None
    private_link_id: str | None = None
    proxy_agent_id: str | None = None
    hybrid_deployment_agent_id: str | None = None
    destination_schema_names: DestinationSchemaNames | None = None
    run_setup_tests: bool | None = None
    trust_certificates: bool | None = None
    trust_fingerprints: bool | None = None
    config: dict[str, Any] | None = None
    auth: dict[str, Any] | None = None
    # Fields Fivetran accepts that Sluice stores (and echoes where Fivetran does) but does not act on.
    destination_configuration: DestinationConfiguration | None = None
    external_secrets_manager_id: str | None = None
    external_secrets_keys_config: dict[str, Any] | None = None
    schema_status: SchemaStatus | None = None


class CreateConnectionRequest(ConnectionSettings):
    group_id: Id
    service: Annotated[str, Field(min_length=1)]
    connect_card_config: ConnectCardConfig | None = None


class UpdateConnectionRequest(ConnectionSettings):
    is_historical_sync: bool | None = None


class CreateGroupRequest(Body):
    name: Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class UpdateGroupRequest(Body):
    name: Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = (
        None
    )


class UpdateDestinationRequest(Body):
    """PATCH /v1/destinations/{id}: the service can't change; `config` keys merge into the stored ones."""

    config: dict[str, Any] | None = None
    region: str | None = None
    time_zone_offset: str | None = None
    run_setup_tests: bool | None = None
    trust_certificates: bool | None = None
    trust_fingerprints: bool | None = None


class CreateDestinationRequest(Body):
    group_id: Id
    service: Literal["duckdb", "s3", "postgres", "iceberg"]
    config: dict[str, Any] | None = None
    region: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    # Whole hours from UTC, as Fivetran writes them: "-12" to "+14".
    time_zone_offset: Annotated[str, Field(pattern=r"^(?:[+-]?(?:[0-9]|1[0-2])|\+?1[34])$")] | None = None
    run_setup_tests: bool | None = None
    trust_certificates: bool | None = None
    trust_fingerprints: bool | None = None


class SyncBody(Body):
    force: bool | None = None


class ResyncBody(Body):
    scope: dict[str, list[str]] | None = None


class StateBody(Body):
    state: dict[str, Any]


class SetupTestsBody(Body):
    trust_certificates: bool | None = None
    trust_fingerprints: bool | None = None


class ApproveCertificateRequest(Body):
    hash: Annotated[str, Field(min_length=1, max_length=200)]
    encoded_cert: Annotated[str, Field(min_length=1, max_length=32768)]


class ApproveFingerprintRequest(Body):
    hash: Annotated[str, Field(min_length=1, max_length=200)]
    public_key: Annotated[str, Field(min_length=1, max_length=16384)]


class CreateProxyAgentRequest(Body):
    display_name: Annotated[str, Field(min_length=1, max_length=255)]
    group_region: str | None = None
    # Ours: where the HTTP CONNECT proxy listens (http://host:port); Fivetran's agent dials out instead.
    proxy_url: Annotated[str, Field(max_length=2048)] | None = None


# ---- the Connection Schema config (go-fivetran's request bodies; `null` means "leave as it is") ----------

SchemaChangeHandlingIn = Literal["ALLOW_ALL", "ALLOW_COLUMNS", "BLOCK_ALL"]


class ColumnUpdate(Body):
    enabled: bool | None = None
    hashed: bool | None = None
    # go-fivetran always sends it, usually as null; a value must match the source's key.
    is_primary_key: bool | None = None


class TableUpdate(Body):
    enabled: bool | None = None
    sync_mode: Literal["SOFT_DELETE", "HISTORY", "LIVE"] | None = None
    columns: dict[str, ColumnUpdate] | None = None


class SchemaUpdate(Body):
    enabled: bool | None = None
    tables: dict[str, TableUpdate] | None = None


class SchemaConfigUpdate(Body):
    schema_change_handling: SchemaChangeHandlingIn | None = None
    schemas: dict[str, SchemaUpdate] | None = None
    # Accepted for Fivetran's clients; Sluice's destinations always follow the source's types.
    is_type_locked: bool | None = None


class ReloadBody(Body):
    exclude_mode: Literal["PRESERVE", "EXCLUDE"] | None = None


class DropColumnsTable(Body):
    columns: list[str]


class DropColumnsSchema(Body):
    tables: dict[str, DropColumnsTable]


class DropColumnsBody(Body):
    schemas: dict[str, DropColumnsSchema]


WebhookUrl = Annotated[str, Field(min_length=1, max_length=2048)]
WebhookEvents = Annotated[list[Annotated[str, Field(max_length=64)]], Field(min_length=1, max_length=64)]


class CreateWebhookRequest(Body):
    """POST /v1/webhooks/account and /v1/webhooks/group/{group_id} (Fivetran's WebhookRequest)."""

    url: WebhookUrl
    events: WebhookEvents
    active: bool = True
    secret: Annotated[str, Field(min_length=1, max_length=1024)] | None = None


class UpdateWebhookRequest(Body):
    """PATCH /v1/webhooks/{id}: what is given changes; `run_tests` (go-fivetran) tests the result."""

    url: WebhookUrl | None = None
    events: WebhookEvents | None = None
    active: bool | None = None
    secret: Annotated[str, Field(min_length=1, max_length=1024)] | None = None
    run_tests: bool | None = None


class TestWebhookRequest(Body):
    event: Annotated[str, Field(max_length=64)] = "sync_start"
