"""The contract between sources, the sync engine and destinations.

A source yields operations (mirroring the Fivetran Connector SDK's `update(configuration, state)`);
the engine hands each table's rows to the group's destination. Neither side imports the other:
both import this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# System columns every destination table carries (Fivetran's names).
SYNCED_COLUMN = "_fivetran_synced"
DELETED_COLUMN = "_fivetran_deleted"
# The key of a table whose source has no primary key: a hash of the row (see `fivetran_id`).
ID_COLUMN = "_fivetran_id"
# A HISTORY table's version columns: when a version began and ended, and whether it is the current one.
START_COLUMN = "_fivetran_start"
END_COLUMN = "_fivetran_end"
ACTIVE_COLUMN = "_fivetran_active"


@dataclass(frozen=True)
class TableSpec:
    """A source table as the destination needs it."""

    name: str
    primary_key: tuple[str, ...]
    # From the schema config: SOFT_DELETE (deletes flagged), LIVE (deleted rows removed) or HISTORY
    # (every version kept). The engine sets it; a destination that lacks a mode fails the sync.
    sync_mode: str = "SOFT_DELETE"


@dataclass(frozen=True)
class Upserts:
    """Rows to insert or replace (by primary key) in one table: one page or file chunk."""

    table: str
    rows: list[dict[str, Any]]


@dataclass(frozen=True)
class Deletes:
    """Rows deleted at the source, by primary key (written with `_fivetran_deleted = true`)."""

    table: str
    keys: list[dict[str, Any]]


@dataclass(frozen=True)
class Checkpoint:
    """The whole state to resume from; it covers every operation yielded before it, and no later one."""

    state: dict[str, Any]


Operation = Upserts | Deletes | Checkpoint
