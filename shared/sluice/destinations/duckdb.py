"""The `duckdb` destination: a DuckDB file, a schema per connection, a table per source table, merged by key.

Each batch is serialized to JSON once and parsed by DuckDB's own JSON reader; no row passes through
Python one at a time on the DuckDB side. Column types come from the table once it exists: a batch
whose values all fit the current types (the fast path) is appended to a staging table of the run
(a temporary table without an index, `INSERT ... SELECT ... FROM read_json(...)`), and the staged
rows are merged into the table by key in one statement (`INSERT OR REPLACE`, the last staged row of
a key winning) when the engine flushes before a checkpoint, when the staged batches pass
STAGED_BYTES_LIMIT of JSON (memory stays flat however large the sync), and before anything else
touches the table (a delete, a schema change). Merging page by page into an indexed table costs
about three times as much as one merge of the same rows. A batch
with new columns or values that do not fit (a float in a BIGINT column, text in a TIMESTAMP
column) takes the evolving path: DuckDB infers the batch's types, new columns are added, and
conflicting columns are widened (numbers to DOUBLE, dates to timestamps, otherwise VARCHAR or
JSON), all in one transaction.

`duckdb` is a dev/local-stack dependency, not part of the Lambda layer: it is imported lazily.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from types import NoneType
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sluice.contract import (
    ACTIVE_COLUMN,
    DELETED_COLUMN,
    END_COLUMN,
    ID_COLUMN,
    START_COLUMN,
    SYNCED_COLUMN,
)
from sluice.destinations import DestinationError, DestinationLocked, DuckDbConfig, fivetran_id, json_default
from sluice.settings import get_settings

if TYPE_CHECKING:
    import duckdb

    from sluice.contract import TableSpec

SYSTEM_COLUMNS = frozenset({SYNCED_COLUMN, DELETED_COLUMN, START_COLUMN, END_COLUMN, ACTIVE_COLUMN})
# The `_fivetran_end` of a current version (Fivetran's), and how long before the next version's start
# an old version ends.
_OPEN_END = "TIMESTAMP WITH TIME ZONE '9999-12-31 23:59:59.999+00'"
_VERSION_GAP = "INTERVAL 1 MILLISECOND"
# Staged batches of one table are merged once their JSON passes this size (or at the next flush).
STAGED_BYTES_LIMIT = 16 * 2**20
# DuckDB's own memory (its cache of the file's blocks, the key index, the staging tables): by default
# it would grow to 80% of the machine as the tables grow; with this cap a sync's memory is bounded
# whatever the size of the table or of the sync (DuckDB spills to its temporary folder beyond it).
MEMORY_LIMIT_MIB = 128
# The staging table's own column: the order batches were staged in (the last row of a key wins).
_STAGED_ORDER = "__sluice_staged_order"

_INTEGERS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT")
_UNSIGNED = ("UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT")
_FLOATS = ("FLOAT", "DOUBLE")
_TIMESTAMP_TZ = "TIMESTAMP WITH TIME ZONE"
_TEMPORALS = ("DATE", "TIMESTAMP", _TIMESTAMP_TZ)  # in widening order
# A column seen only with nulls is VARCHAR with this comment until its first value gives it a type.
# The comment (not memory) marks it, so the next run knows too.
_UNTYPED = "sluice:untyped"
_ONLY_NULL: frozenset[type] = frozenset({NoneType})

# The Python value types that a column of each type takes from the JSON reader without loss. A batch
# with any other value goes through inference and widening instead (a float into BIGINT would round).
# None means "anything": VARCHAR and JSON columns keep any JSON value as text.
_FITS: dict[str, frozenset[type] | None] = {
    **{t: frozenset({int, NoneType}) for t in _INTEGERS + _UNSIGNED},
    **{t: frozenset({int, float, NoneType}) for t in _FLOATS},
    "BOOLEAN": frozenset({bool, NoneType}),
    # Strings that do not parse make DuckDB raise; the batch then takes the evolving path.
    "DATE": frozenset({str, date, NoneType}),
    "TIMESTAMP": frozenset({str, datetime, NoneType}),
    _TIMESTAMP_TZ: frozenset({str, datetime, NoneType}),
    "TIME": frozenset({str, time, NoneType}),
    "UUID": frozenset({str, UUID, NoneType}),  # DuckDB 1.1 infers UUID from hex strings
    "VARCHAR": None,
    "JSON": None,
}


# ---- where the file lives ----------------------------------------------------------------------------------


def data_dir() -> Path:
    """The folder that holds every account's DuckDB files (the local stack's `SLUICE_DATA_DIR`)."""
    return Path(get_settings().data_dir or ".")


_ACCOUNT_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


def account_dir(account_id: str) -> Path:
    """The folder of one account's DuckDB files: `<data folder>/<account id>/`."""
    if not _ACCOUNT_ID.fullmatch(account_id):
        raise DestinationError("The account id can't name a data folder")
    return data_dir().resolve() / account_id


def resolve_path(path: str, account_id: str) -> str:
    """The database file of a config `path`: always inside the account's folder.

    The config model already refuses absolute paths and `..`; this checks again after following
    symlinks, so that no link (made by anyone with access to the folder, the account's folder
    itself included) leads a tenant outside it.
    """
    base = account_dir(account_id)
    resolved = (base / path).resolve()
    if not resolved.is_relative_to(base) or resolved == base:
        raise DestinationError(f"DuckDB path '{path}' leaves the account's data folder")
    resolved.parent.mkdir(parents=True, exist_ok=True)
    return str(resolved)


def _open_failure(path: str, exc: Exception) -> DestinationError:
    """Why a file could not be opened, in the user's terms (DuckDB's own text names server paths)."""
    import re

    text = str(exc)
    if "Conflicting lock" in text or "Could not set lock" in text:
        pid = re.search(r"\(PID (\d+)\)", text)
        holder = f"another process (PID {pid.group(1)})" if pid else "another process"
        return DestinationLocked(
            f"DuckDB database '{path}' is open in {holder}, which holds its lock: close it there "
            "(a DuckDB shell or notebook, say), then sync again"
        )
    return DestinationError(f"Cannot open DuckDB database '{path}': {text.split(': ', 1)[-1]}")


# ---- types -------------------------------------------------------------------------------------------------


def _normalize(duckdb_type: str) -> str | None:
    """A column type as this writer keeps it: nested values are JSON, an all-null column has no type yet."""
    upper = duckdb_type.upper()
    if upper in ('"NULL"', "NULL"):
        return None
    if upper.endswith("]") or upper.startswith(("STRUCT", "MAP", "UNION")):
        return "JSON"
    if upper == "TIMESTAMPTZ":
        return _TIMESTAMP_TZ
    return upper


def widen(existing: str, incoming: str) -> str:
    """The type a column takes so that both its values and the batch's fit without loss."""
    if existing == incoming or existing in ("VARCHAR", "JSON"):
        return existing  # text and JSON columns take any value as it is: never rewritten
    if incoming == "JSON":
        return "JSON"
    numbers = _INTEGERS + _UNSIGNED
    if existing in numbers and incoming in numbers:
        if existing in _INTEGERS and incoming in _INTEGERS:
            return max(existing, incoming, key=_INTEGERS.index)
        return "HUGEINT"  # mixed signedness: HUGEINT holds both
    if existing in numbers + _FLOATS and incoming in numbers + _FLOATS:
        return "DOUBLE"
    if existing in _TEMPORALS and incoming in _TEMPORALS:
        return max(existing, incoming, key=_TEMPORALS.index)
    return "VARCHAR"


# ---- SQL text ----------------------------------------------------------------------------------------------


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _columns_arg(columns: dict[str, str]) -> str:
    """read_json's `columns` argument: JSON key -> type."""
    return "{" + ", ".join(f"{_literal(name)}: {_literal(kind)}" for name, kind in columns.items()) + "}"


@dataclass
class _Table:
    """What this run knows of one destination table (read from the catalog once, then kept current)."""

    catalog: str
    schema: str
    name: str
    key: tuple[str, ...]
    columns: dict[str, str]  # data columns (not the system ones) -> normalized type, in table order
    untyped: set[str]  # columns that have only ever held nulls
    merge_sql: str = ""  # the fast-path statement, built on first use
    staging: str = ""  # the run's staging table for it, while it holds rows (see _stage)
    staged_bytes: int = 0
    staged_batches: int = 0
    # A HISTORY table: one row per version, keyed by (key, _fivetran_start), no _fivetran_deleted.
    history: bool = False

    @property
    def qualified(self) -> str:
        # Fully qualified: a schema named like the database file would otherwise be ambiguous.
        return f"{_ident(self.catalog)}.{_ident(self.schema)}.{_ident(self.name)}"

    def refresh(self) -> None:
        # The columns changed: build the statement and (once what it holds is merged) the staging
        # table again.
        assert not self.staged_batches, "staged rows are merged before the table changes"
        self.merge_sql = ""
        self.staging = ""

    def fits(self, rows: list[dict[str, Any]], names: set[str]) -> bool:
        """Whether every value of the batch takes the current column types as it is (the fast path)."""
        if not names <= self.columns.keys():
            return False
        for name in names:
            allowed = _ONLY_NULL if name in self.untyped else _FITS.get(self.columns[name], frozenset())
            if allowed is not None and not {type(row.get(name)) for row in rows} <= allowed:
                return False
        return True


class DuckDbDestination:
    """A DuckDB database file; one connection for the whole sync run. See `Destination`."""

    def __init__(self, config: DuckDbConfig, account_id: str) -> None:
        import duckdb  # deferred: not in the Lambda layer

        self._duckdb = duckdb
        self.path = resolve_path(config.path, account_id)
        try:
            self._con: duckdb.DuckDBPyConnection | None = duckdb.connect(self.path)
            self._con.execute("SET TimeZone = 'UTC'")
            self._con.execute(f"SET memory_limit = '{MEMORY_LIMIT_MIB}MB'")
            found = self._con.execute("SELECT current_database()").fetchone()
        except duckdb.IOException as exc:
            raise _open_failure(config.path, exc) from exc
        except duckdb.Error as exc:
            raise DestinationError(f"Cannot open DuckDB database '{config.path}': {exc}") from exc
        self._catalog = str(found[0]) if found else "memory"
        self._tables: dict[tuple[str, str], _Table | None] = {}
        self._staging_names: list[str] = []
        # One batch file for the run, rewritten in place: truncating to zero and rewriting would make
        # ext4 flush it on every close (auto_da_alloc), which costs milliseconds per batch.
        fd, self._batch_path = tempfile.mkstemp(prefix="sluice-batch-", suffix=".json")
        self._batch_fd: int | None = fd
        self._batch_literal = _literal(self._batch_path)

    # -- the Destination protocol ----------------------------------------------------------------------------

    def upsert(
        self, schema: str, table: TableSpec, rows: list[dict[str, Any]], synced_at: datetime, batch_id: str
    ) -> int:
        if not rows:
            return 0
        key = table.primary_key or (ID_COLUMN,)
        if not table.primary_key:
            rows = [{**row, ID_COLUMN: fivetran_id(row)} for row in rows]
        target = self._shaped(schema, table, key)
        rows = _names_apart(rows, table.name, key, target)
        rows = _last_per_key(rows, key, table.name)
        names = set().union(*rows) - SYSTEM_COLUMNS
        size = self._write_batch(rows)
        if table.sync_mode == "HISTORY":
            return self._add_versions(schema, table.name, key, target, rows, synced_at)
        if target is not None and target.fits(rows, names):
            try:
                self._stage(target, size, synced_at)
                return len(rows)
            except (self._duckdb.ConversionException, self._duckdb.InvalidInputException):
                pass  # a value that the types could not take after all (a malformed timestamp): evolve
            except self._duckdb.Error as exc:
                raise DestinationError(f"Writing to '{schema}.{table.name}' failed: {exc}") from exc
        if target is not None:
            self._merge_staged(target)  # the evolving path changes the table: what is staged goes first
        self._evolve_and_merge(schema, table.name, key, target, rows, synced_at)
        return len(rows)

    def delete(
        self, schema: str, table: TableSpec, keys: list[dict[str, Any]], synced_at: datetime, batch_id: str
    ) -> int:
        if not keys:
            return 0
        target = self._shaped(schema, table, table.primary_key or (ID_COLUMN,))
        if target is None:
            return 0  # nothing was ever written: nothing to delete
        self._merge_staged(target)  # upserts staged before this delete land before it
        if not table.primary_key:
            keys = [{ID_COLUMN: row.get(ID_COLUMN) or fivetran_id(row)} for row in keys]
        missing = [name for name in target.key if any(row.get(name) is None for row in keys)]
        if missing:
            raise DestinationError(f"Deletes for table '{table.name}' lack key column '{missing[0]}'")
        self._write_batch(keys)
        # Keys are read as text (or as JSON/text when the column is) and cast to the key's type:
        # a key that cannot have that type matches nothing instead of failing.
        read: dict[str, str] = {}
        match: list[str] = []
        for name in target.key:
            kind = target.columns[name]
            read[name] = kind if kind in ("VARCHAR", "JSON") else "VARCHAR"
            value = f"k.{_ident(name)}" if read[name] == kind else f"TRY_CAST(k.{_ident(name)} AS {kind})"
            match.append(f"t.{_ident(name)} = {value}")
        matched = (
            f"FROM (SELECT DISTINCT * FROM read_json({self._batch_literal}, format = 'array', "
            f"columns = {_columns_arg(read)})) AS k WHERE {' AND '.join(match)}"
        )
        if table.sync_mode == "HISTORY":
            # The current version ends; a replay finds none current and changes nothing.
            sql = (
                f"UPDATE {target.qualified} AS t SET {_ident(ACTIVE_COLUMN)} = false, "
                f"{_ident(END_COLUMN)} = $1, {_ident(SYNCED_COLUMN)} = $1 {matched} "
                f"AND t.{_ident(ACTIVE_COLUMN)}"
            )
        elif table.sync_mode == "LIVE":
            sql = f"DELETE FROM {target.qualified} AS t USING " + matched.removeprefix("FROM ")
        else:
            sql = (
                f"UPDATE {target.qualified} AS t "
                f"SET {_ident(DELETED_COLUMN)} = true, {_ident(SYNCED_COLUMN)} = $1 {matched}"
            )
        try:
            params = [] if table.sync_mode == "LIVE" else [_utc(synced_at)]
            result = self._connection().execute(sql, params).fetchone()
        except self._duckdb.Error as exc:
            raise DestinationError(f"Deleting from '{schema}.{table.name}' failed: {exc}") from exc
        return int(result[0]) if result else 0

    def drop_columns(self, schema: str, table: str, columns: list[str]) -> None:
        target = self._table(schema, table)
        if target is None:
            return
        self._merge_staged(target)  # the table changes: what is staged lands first
        con = self._connection()
        for column in columns:
            if column in target.columns and column not in target.key:
                try:
                    con.execute(f"ALTER TABLE {target.qualified} DROP COLUMN {_ident(column)}")
                except self._duckdb.Error as exc:
                    raise DestinationError(f"Dropping '{schema}.{table}.{column}' failed: {exc}") from exc
                target.columns.pop(column)
                target.untyped.discard(column)
        target.refresh()

    def flush(self) -> None:
        # Staged rows are merged (each merge its own committed transaction, and DuckDB syncs its WAL
        # on commit); every other write was committed when it was made: all is then durable.
        self._connection()
        for target in list(self._tables.values()):
            if target is not None:
                self._merge_staged(target)

    def close(self) -> None:
        # Rows still staged were never flushed, so no checkpoint covers them: a replay brings them again.
        if self._con is not None:
            self._con.close()
            self._con = None
        if self._batch_fd is not None:
            os.close(self._batch_fd)
            self._batch_fd = None
            Path(self._batch_path).unlink(missing_ok=True)

    def __enter__(self) -> DuckDbDestination:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------------------------

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            raise DestinationError("The DuckDB destination is closed")
        return self._con

    def _write_batch(self, rows: list[dict[str, Any]]) -> int:
        """Writes the batch file the next statement reads; returns its size in bytes."""
        if self._batch_fd is None:
            raise DestinationError("The DuckDB destination is closed")
        data = json.dumps(rows, separators=(",", ":"), default=json_default).encode()
        written = os.pwrite(self._batch_fd, data, 0)
        os.ftruncate(self._batch_fd, written)
        return written

    def _stage(self, target: _Table, size: int, synced_at: datetime) -> None:
        """Append the batch file's rows to the table's staging table (made on first use)."""
        con = self._connection()
        if not target.staging:
            staging = _ident(f"sluice_staged_{len(self._staging_names)}")
            self._staging_names.append(staging)
            definitions = [f"{_ident(column)} {kind}" for column, kind in target.columns.items()]
            definitions += [f"{_ident(SYNCED_COLUMN)} {_TIMESTAMP_TZ}", f"{_ident(_STAGED_ORDER)} INTEGER"]
            con.execute(f"CREATE OR REPLACE TEMP TABLE {staging} ({', '.join(definitions)})")
            target.staging = staging
        names = ", ".join(_ident(name) for name in target.columns)
        con.execute(
            f"INSERT INTO {target.staging} SELECT {names}, $1, $2 FROM read_json({self._batch_literal}, "
            f"format = 'array', columns = {_columns_arg(target.columns)})",
            [_utc(synced_at), target.staged_batches],
        )
        target.staged_batches += 1
        target.staged_bytes += size
        if target.staged_bytes >= STAGED_BYTES_LIMIT:
            self._merge_staged(target)

    def _merge_staged(self, target: _Table) -> None:
        """Merge what is staged for the table into it, in one statement, and empty the staging table."""
        if not target.staged_batches:
            return
        con = self._connection()
        names = ", ".join(_ident(name) for name in target.columns)
        latest = (
            f"QUALIFY row_number() OVER (PARTITION BY {', '.join(_ident(k) for k in target.key)} "
            f"ORDER BY {_ident(_STAGED_ORDER)} DESC) = 1"
            if target.staged_batches > 1
            else ""
        )
        staged = f"SELECT {names}, {_ident(SYNCED_COLUMN)} FROM {target.staging} {latest}"
        try:
            try:
                con.execute(
                    f"INSERT OR REPLACE INTO {target.qualified} ({names}, {_ident(SYNCED_COLUMN)}, "
                    f"{_ident(DELETED_COLUMN)}) SELECT * EXCLUDE ({_ident(SYNCED_COLUMN)}), "
                    f"{_ident(SYNCED_COLUMN)}, false FROM ({staged})"
                )
            except (self._duckdb.BinderException, self._duckdb.CatalogException):
                # The table changed under this run (another connection altered it): look again, and
                # take the staged rows the evolving way.
                self._remerge(target, con.execute(staged))
            con.execute(f"DELETE FROM {target.staging}")
        except self._duckdb.Error as exc:
            raise DestinationError(f"Writing to '{target.schema}.{target.name}' failed: {exc}") from exc
        finally:
            target.staged_batches = target.staged_bytes = 0

    def _remerge(self, stale: _Table, staged: duckdb.DuckDBPyConnection) -> None:
        names = [column[0] for column in staged.description or ()]
        rows = [dict(zip(names, values, strict=True)) for values in staged.fetchall()]
        synced_at = max(row.pop(SYNCED_COLUMN) for row in rows)
        stale.staged_batches = 0
        self._tables.pop((stale.schema, stale.name), None)
        fresh = self._table(stale.schema, stale.name)
        self._write_batch(rows)
        self._evolve_and_merge(stale.schema, stale.name, stale.key, fresh, rows, synced_at)

    def _merge_sql(self, target: _Table) -> str:
        if not target.merge_sql:
            names = ", ".join(_ident(name) for name in target.columns)
            target.merge_sql = (
                f"INSERT OR REPLACE INTO {target.qualified} ({names}, {_ident(SYNCED_COLUMN)}, "
                f"{_ident(DELETED_COLUMN)}) SELECT {names}, $1, false FROM read_json({self._batch_literal}, "
                f"format = 'array', columns = {_columns_arg(target.columns)})"
            )
        return target.merge_sql

    def _table(self, schema: str, name: str) -> _Table | None:
        """The table as it is in the database, or None if it does not exist yet (cached for the run)."""
        if (schema, name) in self._tables:
            return self._tables[(schema, name)]
        con = self._connection()
        # DuckDB matches identifiers case-insensitively: so does this lookup.
        found = con.execute(
            "SELECT schema_name, table_name, column_name, data_type, comment FROM duckdb_columns() "
            "WHERE database_name = current_database() AND lower(schema_name) = lower($1) "
            "AND lower(table_name) = lower($2) ORDER BY column_index",
            [schema, name],
        ).fetchall()
        target: _Table | None = None
        if found:
            real_schema, real_name = found[0][0], found[0][1]
            key_row = con.execute(
                "SELECT constraint_column_names FROM duckdb_constraints() "
                "WHERE database_name = current_database() AND schema_name = $1 AND table_name = $2 "
                "AND constraint_type = 'PRIMARY KEY'",
                [real_schema, real_name],
            ).fetchone()
            columns = {
                column: _normalize(kind) or "VARCHAR"
                for _, _, column, kind, _ in found
                if column not in SYSTEM_COLUMNS
            }
            untyped = {column for _, _, column, _, comment in found if comment == _UNTYPED}
            history = any(column == START_COLUMN for _, _, column, _, _ in found)
            key = tuple(c for c in (key_row[0] if key_row else ()) if c != START_COLUMN)
            target = _Table(self._catalog, real_schema, real_name, key, columns, untyped, history=history)
        self._tables[(schema, name)] = target
        return target

    # -- sync modes: HISTORY keeps every version, the others one row per key ---------------------------------

    def _shaped(self, schema: str, table: TableSpec, key: tuple[str, ...]) -> _Table | None:
        """The table, rebuilt first if it has the other shape (one row per key vs one per version): the
        schema config changed the table's sync mode."""
        target = self._table(schema, table.name)
        wants_history = table.sync_mode == "HISTORY"
        if target is None or target.history == wants_history:
            return target
        self._merge_staged(target)  # the table is rebuilt: what is staged lands first
        con = self._connection()
        con.execute("BEGIN TRANSACTION")
        try:
            self._reshape(target, wants_history)
            con.execute("COMMIT")
        except Exception as exc:
            con.execute("ROLLBACK")
            self._tables.pop((schema, table.name), None)
            if isinstance(exc, self._duckdb.Error):
                raise DestinationError(
                    f"Changing the sync mode of '{schema}.{table.name}' failed: {exc}"
                ) from exc
            raise
        self._tables.pop((schema, table.name), None)
        return self._table(schema, table.name)

    def _reshape(self, target: _Table, history: bool) -> None:
        con = self._connection()
        data = [f"{_ident(c)} {kind}" for c, kind in target.columns.items()]
        names = ", ".join(_ident(c) for c in target.columns)
        keys = ", ".join(_ident(c) for c in target.key)
        staging = f"{_ident(target.catalog)}.{_ident(target.schema)}.{_ident(target.name + '__sluice_mode')}"
        synced = _ident(SYNCED_COLUMN)
        if history:
            # Each row becomes its first version: current unless it was deleted.
            deleted = f"coalesce({_ident(DELETED_COLUMN)}, false)"
            columns = [*data, *_history_columns(), f"PRIMARY KEY ({keys}, {_ident(START_COLUMN)})"]
            select = (
                f"SELECT {names}, {synced}, coalesce({synced}, now()), "
                f"CASE WHEN {deleted} THEN {synced} ELSE {_OPEN_END} END, NOT {deleted} "
                f"FROM {target.qualified}"
            )
        else:
            # The last version of each key stays, deleted unless it is current.
            columns = [
                *data,
                f"{synced} {_TIMESTAMP_TZ}",
                f"{_ident(DELETED_COLUMN)} BOOLEAN",
                f"PRIMARY KEY ({keys})",
            ]
            select = (
                f"SELECT {names}, {synced}, NOT {_ident(ACTIVE_COLUMN)} FROM {target.qualified} "
                f"QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY {_ident(START_COLUMN)} DESC) = 1"
            )
        con.execute(f"CREATE TABLE {staging} ({', '.join(columns)})")
        con.execute(f"INSERT INTO {staging} {select}")
        con.execute(f"DROP TABLE {target.qualified}")
        con.execute(f"ALTER TABLE {staging} RENAME TO {_ident(target.name)}")
        for column in target.untyped:
            self._mark_untyped(target, column, untyped=True)

    def _add_versions(
        self,
        schema: str,
        name: str,
        key: tuple[str, ...],
        target: _Table | None,
        rows: list[dict[str, Any]],
        synced_at: datetime,
    ) -> int:
        """HISTORY: a row that differs from its key's current version (or has none) becomes the new
        current version, and the old one ends just before it. A row equal to the current version adds
        nothing, so a replayed batch leaves exactly one version per change."""
        con = self._connection()
        inferred = self._batch_columns(schema, name, key, target, rows)
        con.execute("BEGIN TRANSACTION")
        try:
            if target is None:
                target = self._create(schema, name, key, inferred, history=True)
            else:
                if any(
                    kind and c in target.key and widen(target.columns[c], kind) != target.columns[c]
                    for c, kind in inferred.items()
                ):  # DuckDB can't retype a key column in place (and history tables are not rebuilt)
                    raise DestinationError(
                        f"A key column of history table '{schema}.{name}' changed its type"
                    )
                self._evolve(target, inferred)
            names = ", ".join(_ident(c) for c in target.columns)
            same_key = " AND ".join(f"t.{_ident(c)} = s.{_ident(c)}" for c in key)
            same_values = " AND ".join(
                f"t.{_ident(c)} IS NOT DISTINCT FROM s.{_ident(c)}" for c in target.columns
            )
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE sluice_versions AS SELECT {names} FROM read_json("
                f"{self._batch_literal}, format = 'array', columns = {_columns_arg(target.columns)}) AS s "
                f"WHERE NOT EXISTS (SELECT 1 FROM {target.qualified} AS t WHERE t.{_ident(ACTIVE_COLUMN)} "
                f"AND {same_values})"
            )
            con.execute(
                f"UPDATE {target.qualified} AS t SET {_ident(ACTIVE_COLUMN)} = false, "
                f"{_ident(END_COLUMN)} = $1 - {_VERSION_GAP} FROM sluice_versions AS s "
                f"WHERE t.{_ident(ACTIVE_COLUMN)} AND {same_key}",
                [_utc(synced_at)],
            )
            found = con.execute(
                f"INSERT INTO {target.qualified} ({names}, {_ident(SYNCED_COLUMN)}, {_ident(START_COLUMN)}, "
                f"{_ident(END_COLUMN)}, {_ident(ACTIVE_COLUMN)}) SELECT {names}, $1, $1, {_OPEN_END}, true "
                f"FROM sluice_versions",
                [_utc(synced_at)],
            ).fetchone()
            con.execute("DROP TABLE sluice_versions")
            con.execute("COMMIT")
        except Exception as exc:
            con.execute("ROLLBACK")
            self._tables.pop((schema, name), None)
            if isinstance(exc, self._duckdb.Error):
                raise DestinationError(f"Writing to '{schema}.{name}' failed: {exc}") from exc
            raise
        return int(found[0]) if found else 0

    def _infer(self, rows: list[dict[str, Any]], key: tuple[str, ...]) -> dict[str, str | None]:
        """The batch's columns and the types DuckDB infers for them from all its rows (None: only nulls)."""
        described = (
            self._connection()
            .execute(
                f"DESCRIBE SELECT * FROM read_json({self._batch_literal}, format = 'array', sample_size = -1)"
            )
            .fetchall()
        )
        inferred = {row[0]: _normalize(row[1]) for row in described if row[0] not in SYSTEM_COLUMNS}
        for column, kind in inferred.items():
            # DuckDB versions differ on all-null columns ("NULL" or JSON): decide here, alike for all.
            if kind is not None and all(row.get(column) is None for row in rows):
                inferred[column] = None
        if key == (ID_COLUMN,):
            inferred[ID_COLUMN] = "VARCHAR"  # ours, a hex digest: text (DuckDB 1.1 would infer UUID)
        return inferred

    def _evolve_and_merge(
        self,
        schema: str,
        name: str,
        key: tuple[str, ...],
        target: _Table | None,
        rows: list[dict[str, Any]],
        synced_at: datetime,
    ) -> None:
        """Create the table or add and widen its columns for this batch, then merge it: one transaction."""
        con = self._connection()
        inferred = self._batch_columns(schema, name, key, target, rows)
        con.execute("BEGIN TRANSACTION")
        try:
            if target is None:
                target = self._create(schema, name, key, inferred)
            else:
                self._evolve(target, inferred)
            con.execute(self._merge_sql(target), [_utc(synced_at)])
            con.execute("COMMIT")
        except Exception as exc:
            con.execute("ROLLBACK")
            self._tables.pop((schema, name), None)  # re-read the catalog next time
            if isinstance(exc, self._duckdb.Error):
                raise DestinationError(f"Writing to '{schema}.{name}' failed: {exc}") from exc
            raise

    def _batch_columns(
        self, schema: str, name: str, key: tuple[str, ...], target: _Table | None, rows: list[dict[str, Any]]
    ) -> dict[str, str | None]:
        """The batch's inferred column types, for a table that is new or has the same primary key."""
        try:
            inferred = self._infer(rows, key)
        except self._duckdb.Error as exc:
            raise DestinationError(f"Reading a batch for '{schema}.{name}' failed: {exc}") from exc
        if target is not None and target.key != key:
            raise DestinationError(
                f"Table '{schema}.{name}' has primary key {list(target.key)}, the source now has "
                f"{list(key)}: a historical resync into a fresh table is needed"
            )
        return inferred

    def _create(
        self,
        schema: str,
        name: str,
        key: tuple[str, ...],
        inferred: dict[str, str | None],
        history: bool = False,
    ) -> _Table:
        missing = [column for column in key if column not in inferred]
        if missing:
            raise DestinationError(f"Rows for table '{name}' lack primary key column '{missing[0]}'")
        columns = {column: kind or "VARCHAR" for column, kind in inferred.items()}
        definitions = [f"{_ident(column)} {kind}" for column, kind in columns.items()]
        keys = ", ".join(_ident(column) for column in key)
        if history:
            definitions += [*_history_columns(), f"PRIMARY KEY ({keys}, {_ident(START_COLUMN)})"]
        else:
            definitions += [f"{_ident(SYNCED_COLUMN)} {_TIMESTAMP_TZ}", f"{_ident(DELETED_COLUMN)} BOOLEAN"]
            definitions.append(f"PRIMARY KEY ({keys})")
        con = self._connection()
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(self._catalog)}.{_ident(schema)}")
        target = _Table(self._catalog, schema, name, key, columns, set(), history=history)
        con.execute(f"CREATE TABLE {target.qualified} ({', '.join(definitions)})")
        for column, kind in inferred.items():
            if kind is None:
                self._mark_untyped(target, column, untyped=True)
        self._tables[(schema, name)] = target
        return target

    def _evolve(self, target: _Table, inferred: dict[str, str | None]) -> None:
        con = self._connection()
        by_lower = {column.lower(): column for column in target.columns}
        changed: dict[str, str] = {}
        for column, incoming in inferred.items():
            existing_name = by_lower.get(column.lower())
            if existing_name is None:
                kind = incoming or "VARCHAR"
                con.execute(f"ALTER TABLE {target.qualified} ADD COLUMN {_ident(column)} {kind}")
                target.columns[column] = kind
                by_lower[column.lower()] = column
                if incoming is None:
                    self._mark_untyped(target, column, untyped=True)
                continue
            if existing_name != column:
                # The same column spelt in another case: DuckDB treats them as one.
                raise DestinationError(
                    f"Column '{column}' of table '{target.name}' clashes with "
                    f"existing column '{existing_name}'"
                )
            existing = target.columns[column]
            if incoming is None or incoming == existing:
                continue
            if column in target.untyped:
                changed[column] = incoming  # its first values: they give it its type
            elif (wanted := widen(existing, incoming)) != existing:
                changed[column] = wanted
        if not changed:
            target.refresh()
            return
        if any(column in target.key for column in changed):
            self._rebuild(target, changed)  # DuckDB cannot alter the type of a key column
        else:
            for column, kind in changed.items():
                con.execute(
                    f"ALTER TABLE {target.qualified} ALTER {_ident(column)} SET DATA TYPE {kind} "
                    f"USING {_convert(column, kind)}"
                )
        target.columns.update(changed)
        for column in changed.keys() & target.untyped:
            self._mark_untyped(target, column, untyped=False)
        target.refresh()

    def _mark_untyped(self, target: _Table, column: str, *, untyped: bool) -> None:
        comment = _literal(_UNTYPED) if untyped else "NULL"
        self._connection().execute(f"COMMENT ON COLUMN {target.qualified}.{_ident(column)} IS {comment}")
        if untyped:
            target.untyped.add(column)
        else:
            target.untyped.discard(column)

    def _rebuild(self, target: _Table, changed: dict[str, str]) -> None:
        """Copy the table into one with the new column types (inside the caller's transaction)."""
        con = self._connection()
        kinds = {**target.columns, **changed}
        columns = (
            [f"{_ident(column)} {kind}" for column, kind in kinds.items()]
            + [f"{_ident(SYNCED_COLUMN)} {_TIMESTAMP_TZ}", f"{_ident(DELETED_COLUMN)} BOOLEAN"]
            + [f"PRIMARY KEY ({', '.join(_ident(column) for column in target.key)})"]
        )
        staging = (
            f"{_ident(target.catalog)}.{_ident(target.schema)}.{_ident(target.name + '__sluice_rebuild')}"
        )
        values = [
            _convert(column, changed[column]) if column in changed else _ident(column) for column in kinds
        ]
        con.execute(f"CREATE TABLE {staging} ({', '.join(columns)})")
        con.execute(
            f"INSERT INTO {staging} SELECT {', '.join(values)}, "
            f"{_ident(SYNCED_COLUMN)}, {_ident(DELETED_COLUMN)} FROM {target.qualified}"
        )
        con.execute(f"DROP TABLE {target.qualified}")
        con.execute(f"ALTER TABLE {staging} RENAME TO {_ident(target.name)}")
        for column in target.untyped - changed.keys():
            self._mark_untyped(target, column, untyped=True)  # comments stay with the old table


def _history_columns() -> list[str]:
    return [
        f"{_ident(SYNCED_COLUMN)} {_TIMESTAMP_TZ}",
        f"{_ident(START_COLUMN)} {_TIMESTAMP_TZ} NOT NULL",
        f"{_ident(END_COLUMN)} {_TIMESTAMP_TZ}",
        f"{_ident(ACTIVE_COLUMN)} BOOLEAN",
    ]


def _convert(column: str, kind: str) -> str:
    """The expression that turns a column's current values into `kind`."""
    if kind == "JSON":
        return f"to_json({_ident(column)})"
    return f"CAST({_ident(column)} AS {kind})"


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def case_apart_name(key: str) -> str:
    """The column of a source key that differs only by letter case from another: `<key>__<6 hex digits>`,
    the digits from the key's MD5, so that each spelling always gets the same column."""
    return f"{key}__{hashlib.md5(key.encode(), usedforsecurity=False).hexdigest()[:6]}"


def _names_apart(
    rows: list[dict[str, Any]], table: str, key: tuple[str, ...], target: _Table | None
) -> list[dict[str, Any]]:
    """The rows with every key a column of its own.

    DuckDB matches column names without regard to letter case, JSON keys with it: `Name` and `name`
    would share one column and one value would be lost. Of the spellings of one name (in the batch and
    among the table's columns) one keeps it: the table's existing column, else the primary key's,
    else the first by code point (`NAME` < `Name` < `name`). Every other becomes `case_apart_name(key)`.
    An empty key can't name a column: the batch fails.
    """
    names: set[str] = set().union(*rows)
    if "" in names:
        raise DestinationError(
            f"A row of table '{table}' has a value under an empty key; every column needs a name"
        )
    existing = {column.lower(): column for column in (target.columns if target else ())}
    existing.update((column.lower(), column) for column in SYSTEM_COLUMNS)
    spellings: dict[str, set[str]] = {}
    for name in names:
        spellings.setdefault(name.lower(), set()).add(name)
    renamed: dict[str, str] = {}
    for lowered, found in spellings.items():
        keeper = existing.get(lowered)
        if keeper is None and len(found) == 1:
            continue
        if keeper is None:
            keeper = next((column for column in key if column in found), None) or min(found)
        renamed.update((name, case_apart_name(name)) for name in found if name != keeper)
    if not renamed:
        return rows
    return [{renamed.get(name, name): value for name, value in row.items()} for row in rows]


def _last_per_key(rows: list[dict[str, Any]], key: tuple[str, ...], table: str) -> list[dict[str, Any]]:
    """The rows with one row per key, the last one of each (DuckDB refuses or ignores a repeated key)."""
    try:
        if len(key) == 1:
            (column,) = key
            values = [row.get(column) for row in rows]
            distinct = set(values)
            if None in distinct:
                raise DestinationError(f"A row of table '{table}' has no value for primary key '{column}'")
            if len(distinct) == len(rows):
                return rows
            return list(dict(zip(values, rows, strict=True)).values())
        tuples = [tuple(row.get(column) for column in key) for row in rows]
        if any(None in values for values in tuples):
            raise DestinationError(f"A row of table '{table}' lacks a value of its primary key {list(key)}")
        by_key = dict(zip(tuples, rows, strict=True))
        return rows if len(by_key) == len(rows) else list(by_key.values())
    except TypeError as exc:  # an unhashable key value: a list or an object
        raise DestinationError(f"Primary key values of table '{table}' must be scalars") from exc
