"""How the schema config changes: the capture of a source's tables, PATCH bodies, and the wire shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sluice.errors import Conflict, InvalidInput, NotFound
from sluice.schema_config.model import (
    PRIMARY_KEY_HASH_REASON,
    PRIMARY_KEY_REASON,
    PRIMARY_KEY_REASON_CODE,
    ColumnSetting,
    SchemaConfig,
    SchemaSetting,
    SyncMode,
    TableSetting,
)


class SchemaConfigNotFound(NotFound):
    code = "NotFound_SchemaConfig"


class SchemaNotFound(NotFound):
    code = "NotFound_Schema"

    def __init__(self, schema: str) -> None:
        super().__init__(f"Schema '{schema}' doesn't exist in this connection's schema config")


class TableNotFound(NotFound):
    code = "NotFound_Table"

    def __init__(self, schema: str, table: str) -> None:
        super().__init__(f"Table '{schema}.{table}' doesn't exist in this connection")


class ColumnNotFound(NotFound):
    code = "NotFound_Column"

    def __init__(self, schema: str, table: str, column: str) -> None:
        super().__init__(f"Column '{column}' doesn't exist in table '{schema}.{table}'")


class ColumnNotBlocked(Conflict):
    """Only a blocked (disabled) column can be dropped from the destination (Fivetran: 409)."""


@dataclass(frozen=True)
class SourceTables:
    """What is known of the source: its tables (name -> primary key) and the columns syncs have seen."""

    schema: str
    primary_keys: dict[str, tuple[str, ...]]
    columns_seen: dict[str, list[str]]

    def columns(self, table: str) -> list[str]:
        pk = self.primary_keys.get(table, ())
        return list(dict.fromkeys([*pk, *self.columns_seen.get(table, [])]))

    def has_data(self, table: str) -> bool:
        return bool(self.columns_seen.get(table))


@dataclass(frozen=True)
class Change:
    """A table or column found in the source that the config did not know (one `Schema Changed` event)."""

    schema: str
    table: str
    column: str | None
    enabled: bool

    def detail(self) -> dict[str, Any]:
        return {
            "change": "column_added" if self.column else "table_added",
            "schema": self.schema,
            "table": self.table,
            "column": self.column,
            "enabled": self.enabled,
        }


# ---- capture: merge the source's tables into the config ---------------------------------------------------


def capture(
    config: SchemaConfig | None, source: SourceTables, exclude: bool = False
) -> tuple[SchemaConfig, list[Change]]:
    """The config with every source table in it. The first capture keeps what a pre-created config set
    and is no change; later, each table it did not know is a change, enabled under ALLOW_ALL only.
    `exclude` (reload's EXCLUDE mode) disables every schema and table."""
    config = config.model_copy(deep=True) if config else SchemaConfig()
    first = not config.captured
    schema = config.schemas.setdefault(source.schema, SchemaSetting())
    changes: list[Change] = []
    for name, key in source.primary_keys.items():
        if name in schema.tables:
            schema.tables[name].primary_key = list(key)
            continue
        enabled = config.new_tables_enabled()
        schema.tables[name] = TableSetting(enabled=enabled, primary_key=list(key))
        if not first:
            changes.append(Change(source.schema, name, None, enabled))
    if exclude:
        schema.enabled = False
        for table in schema.tables.values():
            table.enabled = False
    config.captured = True
    return config, changes


# ---- PATCH bodies --------------------------------------------------------------------------------------


@dataclass
class Effects:
    """What a PATCH changed that a sync must act on."""

    resync: set[str]  # tables with data whose enabled/hashed/history change needs a re-sync

    def __init__(self) -> None:
        self.resync = set()


def _known_schema(config: SchemaConfig, schema: str) -> SchemaSetting:
    found = config.schemas.get(schema)
    if found is None:
        raise SchemaNotFound(schema)
    return found


def _known_table(config: SchemaConfig, schema: str, table: str) -> TableSetting:
    found = _known_schema(config, schema).tables.get(table)
    if found is None:
        raise TableNotFound(schema, table)
    return found


def patch_config(
    config: SchemaConfig, body: dict[str, Any], source: SourceTables, modes: frozenset[str], effects: Effects
) -> None:
    """PATCH .../schemas: `schema_change_handling` and any schemas, tables and columns (all must exist)."""
    if body.get("schema_change_handling") is not None:
        config.schema_change_handling = body["schema_change_handling"]
    for schema, schema_body in (body.get("schemas") or {}).items():
        patch_schema(config, schema, schema_body or {}, source, modes, effects)


def patch_schema(
    config: SchemaConfig,
    schema: str,
    body: dict[str, Any],
    source: SourceTables,
    modes: frozenset[str],
    effects: Effects,
) -> None:
    setting = _known_schema(config, schema)
    if body.get("enabled") is not None and body["enabled"] != setting.enabled:
        setting.enabled = bool(body["enabled"])
        if setting.enabled:
            effects.resync |= {t for t, s in setting.tables.items() if s.enabled and source.has_data(t)}
    for table, table_body in (body.get("tables") or {}).items():
        patch_table(config, schema, table, table_body or {}, source, modes, effects)


def patch_table(
    config: SchemaConfig,
    schema: str,
    table: str,
    body: dict[str, Any],
    source: SourceTables,
    modes: frozenset[str],
    effects: Effects,
) -> None:
    setting = _known_table(config, schema, table)
    has_data = source.has_data(table)
    if body.get("enabled") is not None and body["enabled"] != setting.enabled:
        setting.enabled = bool(body["enabled"])
        if setting.enabled and has_data:
            effects.resync.add(table)  # what changed while it was off is only found by reading it all
    mode: SyncMode | None = body.get("sync_mode")
    if mode is not None and mode != setting.sync_mode:
        if mode not in modes:
            raise InvalidInput(
                f"Field 'sync_mode': {mode} is not supported by this connection's destination "
                f"(supported: {', '.join(sorted(modes))})"
            )
        if mode == "HISTORY" and has_data:
            effects.resync.add(table)  # history starts from a full read of the table
        setting.sync_mode = mode
    for column, column_body in (body.get("columns") or {}).items():
        patch_column(config, schema, table, column, column_body or {}, source, effects)


def patch_column(
    config: SchemaConfig,
    schema: str,
    table: str,
    column: str,
    body: dict[str, Any],
    source: SourceTables,
    effects: Effects,
) -> None:
    setting = _known_table(config, schema, table)
    known = column in setting.columns or column in source.columns(table)
    if not known:
        raise ColumnNotFound(schema, table, column)
    is_key = column in source.primary_keys.get(table, ())
    wanted_key = body.get("is_primary_key")
    if wanted_key is not None and bool(wanted_key) != is_key:
        raise InvalidInput(
            f"Field 'is_primary_key' of column '{column}' can't be changed for this connection"
        )
    current = setting.columns.get(column, ColumnSetting())
    enabled = current.enabled if body.get("enabled") is None else bool(body["enabled"])
    hashed = current.hashed if body.get("hashed") is None else bool(body["hashed"])
    if is_key and not enabled:
        raise InvalidInput(PRIMARY_KEY_REASON)
    if is_key and hashed:
        raise InvalidInput(PRIMARY_KEY_HASH_REASON)
    if (
        source.has_data(table)
        and setting.enabled
        and ((enabled and not current.enabled) or hashed != current.hashed)
    ):
        # Rows already landed hold the old values (or none): only a re-sync brings every row in line.
        effects.resync.add(table)
    updated = ColumnSetting(enabled=enabled, hashed=hashed)
    if enabled:
        setting.drop_columns = [c for c in setting.drop_columns if c != column]
    setting.columns[column] = updated


def mark_columns_dropped(
    config: SchemaConfig, schema: str, table: str, columns: list[str], source: SourceTables
) -> None:
    """DELETE .../columns/{column} and drop-columns: a blocked (disabled) column leaves the destination
    at the next sync."""
    setting = _known_table(config, schema, table)
    for column in columns:
        if column not in setting.columns and column not in source.columns(table):
            raise ColumnNotFound(schema, table, column)
        if setting.columns.get(column, ColumnSetting()).enabled:
            raise ColumnNotBlocked(
                f"Column '{column}' of table '{schema}.{table}' is not blocked; disable it first"
            )
        if column not in setting.drop_columns:
            setting.drop_columns.append(column)


# ---- the wire shape (Fivetran's StandardConfigResponse) ------------------------------------------


def _allowed() -> dict[str, Any]:
    # Fivetran sends reason_code and reason only when the change is not allowed.
    return {"allowed": True}


def render(config: SchemaConfig, source: SourceTables, modes: frozenset[str]) -> dict[str, Any]:
    return {
        "enable_new_by_default": config.schema_change_handling == "ALLOW_ALL",
        "schema_change_handling": config.schema_change_handling,
        "schemas": {
            name: {
                "name_in_destination": name,
                "enabled": schema.enabled,
                "tables": {
                    table: render_table(setting, table, source, modes)
                    for table, setting in schema.tables.items()
                },
            }
            for name, schema in config.schemas.items()
        },
    }


def render_table(
    setting: TableSetting, table: str, source: SourceTables, modes: frozenset[str]
) -> dict[str, Any]:
    return {
        "name_in_destination": table,
        "enabled": setting.enabled,
        "sync_mode": setting.sync_mode,
        "enabled_patch_settings": _allowed(),
        "supports_columns_config": True,
        "supports_history_mode": "HISTORY" in modes,
        "columns": render_columns(setting, table, source),
    }


def render_columns(setting: TableSetting, table: str, source: SourceTables) -> dict[str, Any]:
    keys = source.primary_keys.get(table, ())
    names = list(dict.fromkeys([*source.columns(table), *setting.columns]))
    out: dict[str, Any] = {}
    for name in names:
        column = setting.columns.get(name, ColumnSetting())
        is_key = name in keys
        out[name] = {
            "name_in_destination": name,
            "enabled": column.enabled,
            "hashed": column.hashed,
            "is_primary_key": is_key,
            "enabled_patch_settings": (
                {"allowed": False, "reason_code": PRIMARY_KEY_REASON_CODE, "reason": PRIMARY_KEY_REASON}
                if is_key
                else _allowed()
            ),
        }
    return out
