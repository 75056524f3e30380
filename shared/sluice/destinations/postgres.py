"""The `postgres` destination: a schema per connection, a table per source table, merged by key.

Each batch is one transaction: the batch's rows are loaded with `COPY` (binary when every column's
values fit its binary dumper, else text) into a temporary staging table with the target's column
types (dropped on commit), then one `INSERT ... SELECT ... ON
CONFLICT (key) DO UPDATE` merges them. The last row of a key within a batch wins (the batch is
reduced to one row per key before the copy). The merge rewrites a row only when something in it
differs (or it was soft-deleted), so a replayed batch changes nothing, not even
`_fivetran_synced`. Deletes are soft: the same staging and one `UPDATE` set `_fivetran_deleted`
on the rows that are not deleted yet (a replay matches nothing new).

Column types come from the Python values of the batch (see `type_of` and the table in
docs/sources-and-destinations.md). A batch with a new column adds it; a batch whose values do not
fit a column's type widens it (integers to numeric or double precision, dates to timestamps,
anything to jsonb when an object arrives, otherwise text), in the batch's transaction. A column
seen only with nulls is `text` with the comment `sluice:untyped` until its first value types it.
A table without a primary key is keyed by `_fivetran_id`, a hash of the row.

Every connection goes to the address that the outbound guard resolved and checked
(`sluice.outbound.resolve`: public addresses, or loopback where the setting allows it).
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import partial
from operator import itemgetter
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sluice.contract import ACTIVE_COLUMN, DELETED_COLUMN, END_COLUMN, ID_COLUMN, START_COLUMN, SYNCED_COLUMN
from sluice.destinations import DestinationError, PostgresDestinationConfig, fivetran_id, json_default

if TYPE_CHECKING:
    import psycopg

    from sluice.connections.model import SetupTestResult
    from sluice.contract import TableSpec

SYSTEM_COLUMNS = frozenset({SYNCED_COLUMN, DELETED_COLUMN, START_COLUMN, END_COLUMN, ACTIVE_COLUMN})
# A current version's `_fivetran_end` (Fivetran's), and how long before the next start an old one ends.
_OPEN_END = "'9999-12-31 23:59:59.999+00'::timestamptz"
_VERSION_GAP = "interval '1 millisecond'"
CONNECT_TIMEOUT_SECONDS = 10
_UNTYPED = "sluice:untyped"
_MAX_IDENTIFIER_BYTES = 63

# ---- types -------------------------------------------------------------------------------------------------

_INTEGERS = ("smallint", "integer", "bigint", "numeric")  # in widening order
_FLOATS = ("real", "double precision")
_TEMPORALS = ("date", "timestamp without time zone", "timestamp with time zone")
_TEXTS = ("text", "character varying", "character")
_JSONS = ("jsonb", "json")
_BIGINT_RANGE = range(-(2**63), 2**63)


def type_of(value: Any) -> str:
    """The column type a Python value lands in."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint" if value in _BIGINT_RANGE else "numeric"
    if isinstance(value, float):
        return "double precision"
    if isinstance(value, Decimal):
        return "numeric"
    if isinstance(value, str):
        return "text"
    if isinstance(value, datetime):
        return "timestamp with time zone" if value.tzinfo is not None else "timestamp without time zone"
    if isinstance(value, date):
        return "date"
    if isinstance(value, time):
        return "time without time zone"
    if isinstance(value, UUID):
        return "uuid"
    if isinstance(value, bytes | bytearray | memoryview):
        return "bytea"
    if isinstance(value, dict | list | tuple):
        return "jsonb"
    if isinstance(value, timedelta):
        return "interval"
    return "text"


def _base(kind: str) -> str:
    """A type without its modifiers: `numeric(10,2)` -> `numeric`, `character varying(20)` -> ..."""
    return kind.split("(", 1)[0].strip()


def widen(existing: str, incoming: str) -> str:
    """The type a column takes so that both its values and the batch's fit without loss."""
    current = _base(existing)
    if current == incoming or current in _TEXTS or current in _JSONS:
        return existing  # text and JSON columns take any value as it is
    if incoming == "jsonb":
        return "jsonb"
    numbers = _INTEGERS + _FLOATS
    if current in numbers and incoming in numbers:
        if "numeric" in (current, incoming):
            return "numeric"
        if current in _INTEGERS and incoming in _INTEGERS:
            return max(current, incoming, key=_INTEGERS.index)
        return "double precision"
    if current in _TEMPORALS and incoming in _TEMPORALS:
        return max(current, incoming, key=_TEMPORALS.index)
    return "text"


def _as_text(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, separators=(",", ":"), default=json_default)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    return str(value)


def _converter(kind: str) -> Callable[[Any], Any] | None:
    """What a value goes through before COPY into a column of `kind` (None: as it is)."""
    base = _base(kind)
    if base in _TEXTS:
        return _as_text
    if base in _JSONS:
        from psycopg.types.json import Jsonb

        dumps = partial(json.dumps, separators=(",", ":"), default=json_default)
        return lambda value: None if value is None else Jsonb(value, dumps)
    return None


# ---- SQL text ----------------------------------------------------------------------------------------------


def _ident(name: str) -> str:
    if len(name.encode()) > _MAX_IDENTIFIER_BYTES:
        raise DestinationError(f"The name '{name[:80]}' is longer than PostgreSQL's 63 bytes")
    if "\x00" in name:
        raise DestinationError("Names may not contain NUL characters")
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _sql(text: str) -> Any:
    """Text built here from quoted identifiers and literals only (psycopg types it as a query)."""
    return text.encode()


@dataclass
class _Table:
    """What this run knows of one destination table (read from the catalog once, then kept current)."""

    schema: str
    name: str
    key: tuple[str, ...]
    columns: dict[str, str]  # data columns (not the system ones) -> type, in table order
    untyped: set[str] = field(default_factory=set)
    # A HISTORY table: one row per version, keyed by (key, _fivetran_start), no _fivetran_deleted.
    history: bool = False

    @property
    def qualified(self) -> str:
        return f"{_ident(self.schema)}.{_ident(self.name)}"


# ---- connecting --------------------------------------------------------------------------------------------


def connect(config: PostgresDestinationConfig) -> psycopg.Connection[Any]:
    """A connection to the address the outbound guard checked (autocommit; each write opens a transaction)."""
    import psycopg

    from sluice.outbound import resolve

    address = resolve(config.host, config.port)
    try:
        connection = psycopg.connect(
            host=config.host,
            hostaddr=address,
            port=config.port,
            dbname=config.database,
            user=config.user,
            password=config.password,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            application_name="sluice",
            autocommit=True,
        )
    except psycopg.Error as exc:
        raise DestinationError(
            f"Cannot connect to PostgreSQL at {config.host}:{config.port}: {_first_line(exc)}"
        ) from None
    connection.execute("SET TimeZone = 'UTC'")
    return connection


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# ---- the writer --------------------------------------------------------------------------------------------


class PostgresDestination:
    """A PostgreSQL database; one connection for the whole sync run. See `Destination`."""

    def __init__(self, config: PostgresDestinationConfig) -> None:
        import psycopg

        self._psycopg = psycopg
        self.config = config
        self._con: psycopg.Connection[Any] | None = connect(config)
        self._tables: dict[tuple[str, str], _Table | None] = {}
        self._failed: str | None = None

    def schema_for(self, schema: str) -> str:
        return f"{self.config.schema_prefix}_{schema}" if self.config.schema_prefix else schema

    def upsert(
        self, schema: str, table: TableSpec, rows: list[dict[str, Any]], synced_at: datetime, batch_id: str
    ) -> int:
        del batch_id  # every write is keyed: a replay merges onto itself
        if not rows:
            return 0
        schema = self.schema_for(schema)
        key = table.primary_key or (ID_COLUMN,)
        if not table.primary_key:
            rows = [{**row, ID_COLUMN: fivetran_id(row)} for row in rows]
        try:
            rows = _last_per_key(rows, key, table.name)
        except DestinationError as exc:
            raise self._failure(str(exc)) from None
        plain: dict[str, type] = {}
        incoming = _batch_types(rows, plain)
        history = table.sync_mode == "HISTORY"
        try:
            with self._connection().transaction():
                target = self._prepare(schema, table.name, key, incoming, history)
                self._copy_into_staging(target, target.columns, rows, incoming, plain)
                if history:
                    stamp = _utc(synced_at)
                    self._connection().execute(self._versions_sql(target), [stamp, stamp, stamp])
                else:
                    self._connection().execute(self._merge_sql(target), [_utc(synced_at)])
        except self._psycopg.Error as exc:
            self._tables.pop((schema, table.name), None)  # re-read the catalog next time
            raise self._failure(f"Writing to '{schema}.{table.name}' failed: {_first_line(exc)}") from None
        except DestinationError as exc:
            self._tables.pop((schema, table.name), None)
            raise self._failure(str(exc)) from None
        return len(rows)

    def delete(
        self, schema: str, table: TableSpec, keys: list[dict[str, Any]], synced_at: datetime, batch_id: str
    ) -> int:
        del batch_id
        if not keys:
            return 0
        schema = self.schema_for(schema)
        target = self._table(schema, table.name)
        if target is None:
            return 0  # nothing was ever written: nothing to delete
        if not table.primary_key:
            keys = [{ID_COLUMN: row.get(ID_COLUMN) or fivetran_id(row)} for row in keys]
        missing = [name for name in target.key if any(row.get(name) is None for row in keys)]
        if missing:
            raise self._failure(f"Deletes for table '{table.name}' lack key column '{missing[0]}'")
        history = table.sync_mode == "HISTORY"
        if target.history != history:
            try:
                with self._connection().transaction():
                    self._reshape(target, history)
            except self._psycopg.Error as exc:
                self._tables.pop((schema, table.name), None)
                raise self._failure(
                    f"Changing the sync mode of '{schema}.{table.name}' failed: {_first_line(exc)}"
                ) from None
        key_columns = {name: target.columns[name] for name in target.key}
        match = " AND ".join(f"t.{_ident(name)} = k.{_ident(name)}" for name in target.key)
        names = ", ".join(_ident(name) for name in target.key)
        if history:
            # The current version ends; a replay finds none current and changes nothing.
            sql = (
                f"UPDATE {target.qualified} AS t SET {_ident(ACTIVE_COLUMN)} = false, "
                f"{_ident(END_COLUMN)} = %s, {_ident(SYNCED_COLUMN)} = %s "
                f"FROM (SELECT DISTINCT {names} FROM sluice_stage) AS k "
                f"WHERE {match} AND t.{_ident(ACTIVE_COLUMN)}"
            )
            params: list[Any] = [_utc(synced_at), _utc(synced_at)]
        elif table.sync_mode == "LIVE":
            sql = (
                f"DELETE FROM {target.qualified} AS t USING (SELECT DISTINCT {names} FROM sluice_stage) "
                f"AS k WHERE {match}"
            )
            params = []
        else:
            sql = (
                f"UPDATE {target.qualified} AS t SET {_ident(DELETED_COLUMN)} = true, "
                f"{_ident(SYNCED_COLUMN)} = %s FROM (SELECT DISTINCT {names} FROM sluice_stage) AS k "
                f"WHERE {match} AND t.{_ident(DELETED_COLUMN)} IS NOT TRUE"
            )
            params = [_utc(synced_at)]
        try:
            with self._connection().transaction():
                self._copy_into_staging(target, key_columns, keys)
                cursor = self._connection().execute(_sql(sql), params)
                return max(0, cursor.rowcount)
        except self._psycopg.Error as exc:
            self._tables.pop((schema, table.name), None)
            raise self._failure(f"Deleting from '{schema}.{table.name}' failed: {_first_line(exc)}") from None

    def drop_columns(self, schema: str, table: str, columns: list[str]) -> None:
        schema = self.schema_for(schema)
        target = self._table(schema, table)
        if target is None:
            return
        dropped = [c for c in columns if c in target.columns and c not in target.key]
        if not dropped:
            return
        sql = f"ALTER TABLE {target.qualified} " + ", ".join(
            f"DROP COLUMN IF EXISTS {_ident(c)}" for c in dropped
        )
        try:
            with self._connection().transaction():
                self._connection().execute(_sql(sql))
        except self._psycopg.Error as exc:
            raise self._failure(
                f"Dropping columns of '{schema}.{table}' failed: {_first_line(exc)}"
            ) from None
        finally:
            self._tables.pop((schema, table), None)

    def flush(self) -> None:
        # Every upsert and delete is its own committed transaction: what is written is durable.
        if self._failed is not None:
            raise DestinationError(self._failed)
        self._connection()

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def __enter__(self) -> PostgresDestination:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------------------------

    def _failure(self, message: str) -> DestinationError:
        self._failed = message
        return DestinationError(message)

    def _connection(self) -> psycopg.Connection[Any]:
        if self._con is None:
            raise DestinationError("The PostgreSQL destination is closed")
        return self._con

    def _table(self, schema: str, name: str) -> _Table | None:
        """The table as it is in the database, or None if it does not exist yet (cached for the run)."""
        if (schema, name) in self._tables:
            return self._tables[(schema, name)]
        con = self._connection()
        qualified = f"{_ident(schema)}.{_ident(name)}"
        found = con.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), col_description(a.attrelid, a.attnum) "
            "FROM pg_attribute a WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 "
            "AND NOT a.attisdropped ORDER BY a.attnum",
            [qualified],
        ).fetchall()
        target: _Table | None = None
        if found:
            key_rows = con.execute(
                "SELECT a.attname FROM pg_index i "
                "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, position) "
                "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
                "WHERE i.indrelid = to_regclass(%s) AND i.indisprimary ORDER BY k.position",
                [qualified],
            ).fetchall()
            columns = {column: kind for column, kind, _ in found if column not in SYSTEM_COLUMNS}
            untyped = {column for column, _, comment in found if comment == _UNTYPED}
            history = any(column == START_COLUMN for column, _, _ in found)
            key = tuple(row[0] for row in key_rows if row[0] != START_COLUMN)
            target = _Table(schema, name, key, columns, untyped, history)
        self._tables[(schema, name)] = target
        return target

    def _prepare(
        self,
        schema: str,
        name: str,
        key: tuple[str, ...],
        incoming: dict[str, str | None],
        history: bool = False,
    ) -> _Table:
        """The target table, created or evolved (new columns added, types widened) for this batch, in
        the shape its sync mode needs (one row per key, or one per version)."""
        target = self._table(schema, name)
        if target is None:
            return self._create(schema, name, key, incoming, history)
        if target.key != key:
            raise DestinationError(
                f"Table '{schema}.{name}' has primary key {list(target.key)}, the source now has "
                f"{list(key)}: a historical resync into a fresh table is needed"
            )
        if target.history != history:
            self._reshape(target, history)
        con = self._connection()
        for column, kind in incoming.items():
            if column not in target.columns:
                con.execute(
                    _sql(f"ALTER TABLE {target.qualified} ADD COLUMN {_ident(column)} {kind or 'text'}")
                )
                target.columns[column] = kind or "text"
                if kind is None:
                    self._mark_untyped(target, column, untyped=True)
                continue
            if kind is None:
                continue
            existing = target.columns[column]
            wanted = kind if column in target.untyped else widen(existing, kind)
            if wanted != existing:
                con.execute(
                    _sql(
                        f"ALTER TABLE {target.qualified} ALTER COLUMN {_ident(column)} TYPE {wanted} "
                        f"USING {_convert(column, existing, wanted)}"
                    )
                )
                target.columns[column] = wanted
            if column in target.untyped:
                self._mark_untyped(target, column, untyped=False)
        return target

    def _create(
        self,
        schema: str,
        name: str,
        key: tuple[str, ...],
        incoming: dict[str, str | None],
        history: bool = False,
    ) -> _Table:
        missing = [column for column in key if column not in incoming]
        if missing:
            raise DestinationError(f"Rows for table '{name}' lack primary key column '{missing[0]}'")
        columns = {column: kind or "text" for column, kind in incoming.items()}
        target = _Table(schema, name, key, columns, history=history)
        definitions = [f"{_ident(column)} {kind}" for column, kind in columns.items()]
        keys = ", ".join(_ident(column) for column in key)
        if history:
            definitions += [
                f"{_ident(SYNCED_COLUMN)} timestamp with time zone NOT NULL",
                f"{_ident(START_COLUMN)} timestamp with time zone NOT NULL",
                f"{_ident(END_COLUMN)} timestamp with time zone NOT NULL",
                f"{_ident(ACTIVE_COLUMN)} boolean NOT NULL",
                f"PRIMARY KEY ({keys}, {_ident(START_COLUMN)})",
            ]
        else:
            definitions += [
                f"{_ident(SYNCED_COLUMN)} timestamp with time zone NOT NULL",
                f"{_ident(DELETED_COLUMN)} boolean NOT NULL DEFAULT false",
                f"PRIMARY KEY ({keys})",
            ]
        con = self._connection()
        con.execute(_sql(f"CREATE SCHEMA IF NOT EXISTS {_ident(schema)}"))
        con.execute(_sql(f"CREATE TABLE {target.qualified} ({', '.join(definitions)})"))
        for column, kind in incoming.items():
            if kind is None:
                self._mark_untyped(target, column, untyped=True)
        self._tables[(schema, name)] = target
        return target

    def _reshape(self, target: _Table, history: bool) -> None:
        """Turn a table into the other shape, in the caller's transaction: each row becomes its first
        version, or (back from history) each key's last version stays, deleted unless current."""
        con = self._connection()
        found = con.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(%s) AND contype = 'p'",
            [target.qualified],
        ).fetchone()
        drop_key = f"DROP CONSTRAINT {_ident(str(found[0]))}, " if found else ""
        keys = ", ".join(_ident(c) for c in target.key)
        t, synced, deleted = target.qualified, _ident(SYNCED_COLUMN), _ident(DELETED_COLUMN)
        start, end, active = _ident(START_COLUMN), _ident(END_COLUMN), _ident(ACTIVE_COLUMN)
        if history:
            con.execute(
                _sql(
                    f"ALTER TABLE {t} ADD COLUMN {start} timestamp with time zone, "
                    f"ADD COLUMN {end} timestamp with time zone, ADD COLUMN {active} boolean"
                )
            )
            con.execute(
                _sql(
                    f"UPDATE {t} SET {start} = {synced}, {active} = NOT {deleted}, "
                    f"{end} = CASE WHEN {deleted} THEN {synced} ELSE {_OPEN_END} END"
                )
            )
            con.execute(
                _sql(
                    f"ALTER TABLE {t} ALTER COLUMN {start} SET NOT NULL, ALTER COLUMN {end} SET NOT NULL, "
                    f"ALTER COLUMN {active} SET NOT NULL, {drop_key}ADD PRIMARY KEY ({keys}, {start}), "
                    f"DROP COLUMN {deleted}"
                )
            )
        else:
            match = " AND ".join(f"n.{_ident(c)} = o.{_ident(c)}" for c in target.key)
            con.execute(_sql(f"DELETE FROM {t} AS o USING {t} AS n WHERE {match} AND n.{start} > o.{start}"))
            con.execute(_sql(f"ALTER TABLE {t} ADD COLUMN {deleted} boolean NOT NULL DEFAULT false"))
            con.execute(_sql(f"UPDATE {t} SET {deleted} = NOT {active}"))
            con.execute(
                _sql(
                    f"ALTER TABLE {t} {drop_key}ADD PRIMARY KEY ({keys}), DROP COLUMN {start}, "
                    f"DROP COLUMN {end}, DROP COLUMN {active}"
                )
            )
        target.history = history

    def _versions_sql(self, target: _Table) -> Any:
        """HISTORY: staged rows that differ from their key's current version (or have none) become the
        current version; the old one ends just before. A row equal to its current version adds
        nothing, so a replayed batch leaves exactly one version per change. Parameters: synced_at x3."""
        names = list(target.columns)
        quoted = ", ".join(_ident(name) for name in names)
        t = target.qualified
        active, end = _ident(ACTIVE_COLUMN), _ident(END_COLUMN)
        mine = ", ".join(_comparable(f"t.{_ident(n)}", target.columns[n]) for n in names)
        theirs = ", ".join(_comparable(f"s.{_ident(n)}", target.columns[n]) for n in names)
        same_key = " AND ".join(f"t.{_ident(c)} = c.{_ident(c)}" for c in target.key)
        return _sql(
            f"WITH changed AS (SELECT {quoted} FROM sluice_stage AS s WHERE NOT EXISTS ("
            f"SELECT 1 FROM {t} AS t WHERE t.{active} AND ROW({mine}) IS NOT DISTINCT FROM ROW({theirs}))), "
            f"ended AS (UPDATE {t} AS t SET {active} = false, {end} = %s - {_VERSION_GAP} "
            f"FROM changed AS c WHERE t.{active} AND {same_key}) "
            f"INSERT INTO {t} ({quoted}, {_ident(SYNCED_COLUMN)}, {_ident(START_COLUMN)}, {end}, {active}) "
            f"SELECT {quoted}, %s, %s, {_OPEN_END}, true FROM changed"
        )

    def _mark_untyped(self, target: _Table, column: str, *, untyped: bool) -> None:
        comment = _literal(_UNTYPED) if untyped else "NULL"
        self._connection().execute(
            _sql(f"COMMENT ON COLUMN {target.qualified}.{_ident(column)} IS {comment}")
        )
        if untyped:
            target.untyped.add(column)
        else:
            target.untyped.discard(column)

    def _copy_into_staging(
        self,
        target: _Table,
        columns: dict[str, str],
        rows: list[dict[str, Any]],
        incoming: dict[str, str | None] | None = None,
        plain: dict[str, type] | None = None,
    ) -> None:
        """A temporary table with the target's `columns` (dropped at commit), holding `rows` (by COPY).

        `incoming` and `plain`: the batch's types (`_batch_types`) and its columns whose values are
        all of one Python type. A text column needs no conversion for `str` values, and when every
        column's values are what psycopg's binary dumper for the column's type takes, the copy is in
        PostgreSQL's binary format (several times cheaper to write and to parse than text)."""
        con = self._connection()
        names = list(columns)
        quoted = ", ".join(_ident(name) for name in names)
        # The target's column types, none of its constraints (keys are checked before the copy).
        con.execute(
            _sql(
                f"CREATE TEMPORARY TABLE sluice_stage ON COMMIT DROP AS "
                f"SELECT {quoted} FROM {target.qualified} WITH NO DATA"
            )
        )
        pure = plain or {}
        converters = [
            (index, convert)
            for index, name in enumerate(names)
            if (convert := _converter(columns[name])) and not (convert is _as_text and pure.get(name) is str)
        ]
        binary = _binary_types(columns, incoming, pure) if incoming is not None else None
        copy_sql = f"COPY sluice_stage ({quoted}) FROM STDIN" + (" (FORMAT BINARY)" if binary else "")
        whole = itemgetter(*names) if len(names) > 1 else (lambda row: (row[names[0]],))
        with con.cursor().copy(_sql(copy_sql)) as copy:
            if binary:
                copy.set_types(binary)
            for row in rows:
                try:
                    values = whole(row)
                except KeyError:  # a row without some columns: they are null
                    values = tuple(row.get(name) for name in names)
                if converters:
                    values = list(values)
                    for index, convert in converters:
                        values[index] = convert(values[index])
                copy.write_row(values)

    def _merge_sql(self, target: _Table) -> Any:
        names = list(target.columns)
        quoted = ", ".join(_ident(name) for name in names)
        keys = ", ".join(_ident(name) for name in target.key)
        others = [name for name in names if name not in target.key]
        assignments = [f"{_ident(name)} = EXCLUDED.{_ident(name)}" for name in others]
        assignments += [
            f"{_ident(SYNCED_COLUMN)} = EXCLUDED.{_ident(SYNCED_COLUMN)}",
            f"{_ident(DELETED_COLUMN)} = false",
        ]
        changed = f"t.{_ident(DELETED_COLUMN)}"
        if others:
            mine = ", ".join(_comparable(f"t.{_ident(name)}", target.columns[name]) for name in others)
            theirs = ", ".join(
                _comparable(f"EXCLUDED.{_ident(name)}", target.columns[name]) for name in others
            )
            changed += f" OR ROW({mine}) IS DISTINCT FROM ROW({theirs})"
        return _sql(
            f"INSERT INTO {target.qualified} AS t "
            f"({quoted}, {_ident(SYNCED_COLUMN)}, {_ident(DELETED_COLUMN)}) "
            f"SELECT {quoted}, %s, false FROM sluice_stage "
            f"ON CONFLICT ({keys}) DO UPDATE SET {', '.join(assignments)} WHERE {changed}"
        )


def _comparable(expression: str, kind: str) -> str:
    # json has no equality operator; its jsonb form does.
    return f"{expression}::jsonb" if _base(kind) == "json" else expression


def _convert(column: str, existing: str, wanted: str) -> str:
    """The expression that turns a column's current values into `wanted`."""
    if wanted == "jsonb":
        return f"to_jsonb({_ident(column)})"
    if _base(existing) == "bytea" and wanted == "text":
        return f"encode({_ident(column)}, 'base64')"  # as text values of bytes are written
    return f"{_ident(column)}::{wanted}"


# Column type -> (psycopg's name for its binary dumper, the one Python type of values it takes as they
# are; None: any, because the column's converter turns every value into what the dumper takes).
_BINARY: dict[str, tuple[str, type | None]] = {
    "bigint": ("int8", int),
    "double precision": ("float8", float),
    "boolean": ("bool", bool),
    "timestamp with time zone": ("timestamptz", datetime),
    "timestamp without time zone": ("timestamp", datetime),
    "date": ("date", date),
    "uuid": ("uuid", UUID),
    "bytea": ("bytea", bytes),
    "text": ("text", None),  # through _as_text
    "jsonb": ("jsonb", None),  # through Jsonb
}


def _binary_types(
    columns: dict[str, str], incoming: dict[str, str | None], plain: dict[str, type]
) -> list[str] | None:
    """The type names for a binary COPY of a batch into `columns`, or None when some column's values
    are not exactly what the binary dumper of its type takes (then the copy is in text)."""
    names: list[str] = []
    for column, kind in columns.items():
        entry = _BINARY.get(kind)
        if entry is None:
            return None
        dumper, python_type = entry
        names.append(dumper)
        batch_kind = incoming.get(column)
        if python_type is None or batch_kind is None:
            continue  # converted on the way, or only nulls
        # The batch's type must be the column's (naive vs aware timestamps, bigint range) and its
        # values of the one Python type (no ints in a double precision column, no dates in a timestamp).
        if batch_kind != kind or plain.get(column) is not python_type:
            return None
    return names


def _batch_types(rows: list[dict[str, Any]], plain: dict[str, type] | None = None) -> dict[str, str | None]:
    """Each column of the batch with the one type all its values fit (None: only nulls); the columns
    whose values (besides nulls) are all of one Python type go into `plain` with it, when given."""
    names = dict.fromkeys(rows[0])
    everything = set().union(*rows)
    if len(everything) != len(names):
        names.update(dict.fromkeys(name for row in rows for name in row))
    result: dict[str, str | None] = {}
    for name in names:
        if name in SYSTEM_COLUMNS:
            continue
        try:
            values = list(map(itemgetter(name), rows))
        except KeyError:  # some rows lack the column: null there
            values = [row.get(name) for row in rows]
        seen = set(map(type, values))
        seen.discard(type(None))
        if not seen:
            result[name] = None
            continue
        if plain is not None and len(seen) == 1:
            plain[name] = next(iter(seen))
        types: set[str] = set()
        for python_type in seen:
            if python_type is int:
                ints = [v for v in values if type(v) is int]
                fits = min(ints) in _BIGINT_RANGE and max(ints) in _BIGINT_RANGE
                types.add("bigint" if fits else "numeric")
            elif issubclass(python_type, datetime):
                # Aware and naive timestamps differ in type: look at each of them.
                zones = {v.tzinfo is None for v in values if type(v) is python_type}
                types.update(
                    "timestamp without time zone" if naive else "timestamp with time zone" for naive in zones
                )
            else:
                types.add(type_of(next(v for v in values if type(v) is python_type)))
        ordered = sorted(types)
        if plain is not None and len(ordered) > 1:
            plain.pop(name, None)  # one Python type, two column types (aware and naive timestamps)
        kind = ordered[0]
        for other in ordered[1:]:
            kind = widen(kind, other)
        result[name] = kind
    if ID_COLUMN in result:
        result[ID_COLUMN] = "text"
    return result


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _last_per_key(rows: list[dict[str, Any]], key: tuple[str, ...], table: str) -> list[dict[str, Any]]:
    """The batch with one row per key, the last one of each."""
    try:
        if len(key) == 1:
            (column,) = key
            try:
                values: list[Any] = list(map(itemgetter(column), rows))
            except KeyError:
                values = [row.get(column) for row in rows]
            lacking = None in values
        else:
            values = [tuple(row.get(column) for column in key) for row in rows]
            lacking = any(None in v for v in values)
        if lacking:
            raise DestinationError(f"A row of table '{table}' lacks a value of its primary key {list(key)}")
        by_key = dict(zip(values, rows, strict=True))
    except TypeError as exc:  # an unhashable key value: a list or an object
        raise DestinationError(f"Primary key values of table '{table}' must be scalars") from exc
    return rows if len(by_key) == len(rows) else list(by_key.values())


# ---- setup tests -------------------------------------------------------------------------------------------


def setup_tests(config: PostgresDestinationConfig) -> list[SetupTestResult]:
    """Connect, create a schema, write and drop a probe table; each result says exactly what failed."""
    from sluice.connections.model import SetupTestResult

    titles = ["Connecting to the database", "Creating a schema", "Writing a probe table"]
    results: list[SetupTestResult] = []

    def add(status: Any, message: str) -> None:
        results.append(SetupTestResult(title=titles[len(results)], status=status, message=message))

    def skip_rest(reason: str) -> list[SetupTestResult]:
        while len(results) < len(titles):
            add("SKIPPED", reason)
        return results

    from sluice.sources.base import SourceError

    try:
        con = connect(config)
    except (DestinationError, SourceError) as exc:
        add("FAILED", str(exc))
        return skip_rest("Skipped because 'Connecting to the database' failed")
    import psycopg

    probe_schema = f"sluice_setup_test_{secrets.token_hex(4)}"
    try:
        with con:
            add(
                "PASSED",
                f"Connected to '{config.database}' at {config.host}:{config.port} as '{config.user}'",
            )
            try:
                con.execute(_sql(f"CREATE SCHEMA {_ident(probe_schema)}"))
            except psycopg.Error as exc:
                add(
                    "FAILED",
                    f"User '{config.user}' cannot create schemas in '{config.database}' "
                    f"({_first_line(exc)}): "
                    f"GRANT CREATE ON DATABASE {_ident(config.database)} TO {_ident(config.user)}",
                )
                return skip_rest("Skipped because 'Creating a schema' failed")
            add("PASSED", f"User '{config.user}' can create schemas")
            try:
                with con.transaction():
                    probe = f"{_ident(probe_schema)}.probe"
                    con.execute(_sql(f"CREATE TABLE {probe} (id bigint PRIMARY KEY, note text)"))
                    with con.cursor().copy(_sql(f"COPY {probe} (id, note) FROM STDIN")) as copy:
                        copy.write_row([1, "sluice"])
                    row = con.execute(_sql(f"SELECT note FROM {probe} WHERE id = 1")).fetchone()
                    if row is None or row[0] != "sluice":
                        raise DestinationError("the probe row did not read back")
                    con.execute(_sql(f"DROP TABLE {probe}"))
                add("PASSED", "Wrote, read and dropped a probe table")
            except (psycopg.Error, DestinationError) as exc:
                add("FAILED", f"Writing a probe table failed: {_first_line(exc)}")
            finally:
                con.execute(_sql(f"DROP SCHEMA IF EXISTS {_ident(probe_schema)} CASCADE"))
    except psycopg.Error as exc:
        add("FAILED", f"The connection failed during the tests: {_first_line(exc)}")
    return skip_rest("Skipped")
