"""The stored schema config and its rules: one place decides what is enabled, hashed and how a table syncs."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

SchemaChangeHandling = Literal["ALLOW_ALL", "ALLOW_COLUMNS", "BLOCK_ALL"]
SyncMode = Literal["SOFT_DELETE", "HISTORY", "LIVE"]
SYNC_MODES: tuple[SyncMode, ...] = ("SOFT_DELETE", "HISTORY", "LIVE")

# Fivetran's wording for what can't be excluded or hashed.
PRIMARY_KEY_REASON_CODE = "SYSTEM_COLUMN"
PRIMARY_KEY_REASON = "The column does not support exclusion as it is a Primary Key"
PRIMARY_KEY_HASH_REASON = "The column does not support hashing as it is a Primary Key"


class ColumnSetting(BaseModel):
    enabled: bool = True
    hashed: bool = False


class TableSetting(BaseModel):
    enabled: bool = True
    sync_mode: SyncMode = "SOFT_DELETE"
    # As the source last reported it (kept so that the API can show it without asking the source).
    primary_key: list[str] = Field(default_factory=list)
    # Columns whose settings were set by a user or by BLOCK_ALL (others follow the table: enabled).
    columns: dict[str, ColumnSetting] = Field(default_factory=dict)
    # Columns marked for deletion from the destination (DELETE .../columns/{column}, drop-columns):
    # the next sync drops them.
    drop_columns: list[str] = Field(default_factory=list)
    # A re-sync this table owes (after enabling or hashing changes); the number tells one request
    # from the next, so a sync clears only what it served.
    resync_requested: int = 0


class SchemaSetting(BaseModel):
    enabled: bool = True
    tables: dict[str, TableSetting] = Field(default_factory=dict)


class SchemaConfig(BaseModel):
    schema_change_handling: SchemaChangeHandling = "ALLOW_ALL"
    schemas: dict[str, SchemaSetting] = Field(default_factory=dict)
    # False until the source's tables were captured (by a sync or POST .../schemas/reload): a config
    # pre-created with POST .../schemas names tables the first capture applies.
    captured: bool = False

    def table(self, schema: str, table: str) -> TableSetting | None:
        found = self.schemas.get(schema)
        return found.tables.get(table) if found else None

    def table_enabled(self, schema: str, table: str) -> bool:
        found = self.schemas.get(schema)
        setting = found.tables.get(table) if found else None
        return bool(found and found.enabled and setting and setting.enabled)

    def new_tables_enabled(self) -> bool:
        return self.schema_change_handling == "ALLOW_ALL"

    def new_columns_enabled(self) -> bool:
        return self.schema_change_handling != "BLOCK_ALL"
