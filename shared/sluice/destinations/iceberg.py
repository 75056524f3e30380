"""The `iceberg` destination: Apache Iceberg tables in the user's bucket, registered in AWS Glue.

One Iceberg table per source table, `<database>.<schema>__<table>` in Glue, its files under
`s3://<bucket>/<prefix>/<schema>/<table>/`. Every table holds the source columns plus
`_fivetran_synced` and `_fivetran_deleted` (and `_fivetran_id` for a table without a primary key).

How a batch lands (copy-on-write merge by key, one Iceberg commit):
- The writer buffers the batches of each table in memory, folded by key (the last row of a key
  wins, a delete marks the buffered row deleted), and commits them at `flush()` (the engine calls
  it before every checkpoint) or when a table's buffer reaches `BUFFER_ROWS`. A commit holds one or
  more consecutive batches of one table; a batch is never split across commits.
- The commit reads only the data files whose key range (the Parquet statistics in the manifests)
  can hold a buffered key, drops the replaced rows, marks the soft-deleted ones, adds the new rows,
  and writes the result sorted by key. Files replaced and files added go into ONE snapshot of
  operation `overwrite` (a plain `append` when no file is touched), committed with the schema
  changes it needs in the same catalog commit: a reader sees the batch whole or not at all, and
  always one row per key.
- Each snapshot's summary records `sluice.batch-id` (the last batch it holds) and
  `sluice.first-batch-id`. Batch ids are `<seq>-<sync id>-<n>` (see the sync engine): a batch whose
  `<seq>-<sync id>` segment already has a committed batch numbered the same or later is a replay,
  and is skipped (the batches of a segment are applied in order, so the later one implies it).
- Types come from the values: integers `long`, numbers `double`, `boolean`, ISO dates `date`, ISO
  timestamps and datetimes `timestamptz`, everything else (text, objects, lists as JSON) `string`.
  A column seen only with nulls is not created until it has a value. New columns are added; a
  column whose values no longer fit its type is widened (`long` to `double`, `date` to
  `timestamptz`, anything to `string`) and, since Iceberg promotes none of these in place, its data
  files are rewritten in the same commit.
- Small files: every commit also rewrites the table's small files (under `SMALL_FILE_BYTES`)
  once there are `COMPACT_AFTER_FILES` of them, so their number stays bounded; snapshots older than
  `SNAPSHOT_RETENTION` (keeping the last `KEEP_SNAPSHOTS`) are expired, with the files only they
  referenced, by the commit that finds `EXPIRE_AFTER` of them due (see docs/sources-and-destinations.md).

`pyiceberg` and `pyarrow` live in the sync worker's own layer (layers/iceberg): imported lazily.
"""

from __future__ import annotations

import bisect
import json
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sluice.contract import DELETED_COLUMN, ID_COLUMN, SYNCED_COLUMN
from sluice.destinations import DestinationError, IcebergDestinationConfig, fivetran_id, json_default
from sluice.observability import logger
from sluice.settings import get_settings

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table, Transaction
    from pyiceberg.table.metadata import TableMetadata

    from sluice.contract import TableSpec

BATCH_PROPERTY = "sluice.batch-id"
FIRST_BATCH_PROPERTY = "sluice.first-batch-id"
KEY_PROPERTY = "sluice.primary-key"
BUFFER_ROWS = 100_000  # commit a table early when this many rows wait (bounds memory)
SMALL_FILE_BYTES = 16 * 1024 * 1024
COMPACT_AFTER_FILES = 16
SNAPSHOT_RETENTION = timedelta(days=1)
KEEP_SNAPSHOTS = 10
EXPIRE_AFTER = 50  # expire once this many snapshots are due: one manifest walk per 50 commits, not each
TABLE_PROPERTIES = {
    "format-version": "2",
    "write.parquet.compression-codec": "zstd",
    "write.target-file-size-bytes": str(256 * 1024 * 1024),
}
SYSTEM_COLUMNS = (SYNCED_COLUMN, DELETED_COLUMN)

# The column types this writer creates, in the vocabulary of `_kind`.
BOOLEAN, LONG, DOUBLE, DATE, TIMESTAMP, STRING = "boolean", "long", "double", "date", "timestamptz", "string"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?$")
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1


def table_name(schema: str, table: str) -> str:
    """The Glue table of a source table: lower case (Glue's rule), `__` between schema and table."""
    return re.sub(r"[^a-z0-9_]", "_", f"{schema}__{table}".lower())


def table_location(config: IcebergDestinationConfig, schema: str, table: str) -> str:
    path = "/".join(part for part in (config.prefix.strip("/"), schema, table) if part)
    return f"s3://{config.bucket}/{path}"


# ---- types -------------------------------------------------------------------------------------------------


def _value_kind(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int):
        return LONG if _LONG_MIN <= value <= _LONG_MAX else STRING
    if isinstance(value, float):
        return DOUBLE
    if isinstance(value, datetime):
        return TIMESTAMP
    if isinstance(value, date):
        return DATE
    if isinstance(value, str):
        if _DATE.match(value):
            return DATE if _parses(date.fromisoformat, value) else STRING
        if _TIMESTAMP.match(value):
            return TIMESTAMP if _parses(_parse_timestamp, value) else STRING
    return STRING


_SIMPLE_KINDS = {
    frozenset({bool}): BOOLEAN,
    frozenset({float}): DOUBLE,
    frozenset({int, float}): DOUBLE,
    frozenset({datetime}): TIMESTAMP,
    frozenset({date}): DATE,
    frozenset({date, datetime}): TIMESTAMP,
}


def _columns(rows: list[dict[str, Any]], names: list[str]) -> tuple[dict[str, Any], dict[str, str | None]]:
    """Each column's values (a pyarrow array, or a list where pyarrow cannot take them as they are) and kind.

    pyarrow reads the rows in one pass when their values have one type per column (the usual case);
    otherwise, and for nested values (kept as JSON text), the column goes through Python.
    """
    import pyarrow as pa

    arrays: dict[str, Any] = {}
    try:
        batch = pa.Table.from_struct_array(pa.array(rows))
        arrays = {name: batch.column(name).combine_chunks() for name in batch.column_names}
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        pass
    values: dict[str, Any] = {}
    kinds: dict[str, str | None] = {}
    for name in names:
        column = arrays.get(name)
        kind = _arrow_kind(column) if column is not None else None
        if kind is None and column is not None and pa.types.is_null(column.type):
            values[name], kinds[name] = column, None
        elif kind is not None:
            values[name], kinds[name] = column, kind
        else:
            values[name] = [row.get(name) for row in rows]
            kinds[name] = _column_kind(values[name])
    return values, kinds


def _arrow_kind(column: Any) -> str | None:
    """The kind of a column pyarrow read, or None when it must go through Python (nested, others)."""
    import pyarrow as pa

    kind = column.type
    if pa.types.is_boolean(kind):
        return BOOLEAN
    if pa.types.is_int64(kind):
        return LONG
    if pa.types.is_float64(kind):
        return DOUBLE
    if pa.types.is_timestamp(kind):
        return TIMESTAMP
    if pa.types.is_date32(kind):
        return DATE
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _text_kind(column)
    return None


def _text_kind(values: Any) -> str:
    """The kind of a column of strings, decided by pyarrow over the whole column at once."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = (
        values.cast(pa.large_string())
        if isinstance(values, pa.Array)
        else pa.array(values, pa.large_string())
    )
    for kind, pattern in ((DATE, _DATE), (TIMESTAMP, _TIMESTAMP)):
        if pc.all(pc.match_substring_regex(text, pattern.pattern)).as_py():
            try:
                text.cast(_arrow_type(kind))
                return kind
            except pa.ArrowInvalid:
                # Invalid dates stay text; timestamps without an offset parse in Python (read as UTC).
                strings = text.to_pylist()
                if kind == TIMESTAMP and all(v is None or _parses(_parse_timestamp, v) for v in strings):
                    return TIMESTAMP
            return STRING
    return STRING


def _parses(parse: Any, value: str) -> bool:
    try:
        parse(value)
    except ValueError:
        return False
    return True


def widen(existing: str | None, incoming: str | None) -> str | None:
    """The type a column takes so that both its values and the batch's fit without loss."""
    if existing is None or existing == incoming:
        return incoming if existing is None else existing
    if incoming is None:
        return existing
    if {existing, incoming} == {LONG, DOUBLE}:
        return DOUBLE
    if {existing, incoming} == {DATE, TIMESTAMP}:
        return TIMESTAMP
    return STRING


def _column_kind(values: list[Any]) -> str | None:
    present = {type(value) for value in values}
    present.discard(type(None))
    if not present:
        return None
    if present == {str}:
        return _text_kind(values)
    if present == {int}:
        numbers = [v for v in values if v is not None]
        return LONG if min(numbers) >= _LONG_MIN and max(numbers) <= _LONG_MAX else STRING
    simple = _SIMPLE_KINDS.get(frozenset(present))
    if simple is not None:
        return simple
    kind: str | None = None
    seen: set[type] = set()
    for value in values:
        # Values of a type already seen take the same kind, except strings, which may parse or not.
        if type(value) in seen and not isinstance(value, str):
            continue
        seen.add(type(value))
        kind = widen(kind, _value_kind(value))
        if kind == STRING:
            return STRING
    return kind


def _parse_timestamp(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return json.dumps(value, separators=(",", ":"), default=json_default)


def _as_timestamp(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return _parse_timestamp(value)


def _as_date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(value)


def _arrow_type(kind: str) -> pa.DataType:
    import pyarrow as pa

    return {
        BOOLEAN: pa.bool_(),
        LONG: pa.int64(),
        DOUBLE: pa.float64(),
        DATE: pa.date32(),
        TIMESTAMP: pa.timestamp("us", tz="UTC"),
        STRING: pa.large_string(),
    }[kind]


def _iceberg_type(kind: str) -> Any:
    from pyiceberg import types

    return {
        BOOLEAN: types.BooleanType(),
        LONG: types.LongType(),
        DOUBLE: types.DoubleType(),
        DATE: types.DateType(),
        TIMESTAMP: types.TimestamptzType(),
        STRING: types.StringType(),
    }[kind]


def _kind(iceberg_type: Any) -> str:
    """An Iceberg column type in this writer's vocabulary (types it never creates read as the nearest)."""
    from pyiceberg import types

    if isinstance(iceberg_type, types.BooleanType):
        return BOOLEAN
    if isinstance(iceberg_type, types.IntegerType | types.LongType):
        return LONG
    if isinstance(iceberg_type, types.FloatType | types.DoubleType):
        return DOUBLE
    if isinstance(iceberg_type, types.DateType):
        return DATE
    if isinstance(iceberg_type, types.TimestamptzType | types.TimestampType):
        return TIMESTAMP
    return STRING


def _array(values: Any, kind: str) -> pa.Array:
    import pyarrow as pa

    if isinstance(values, pa.Array):  # read by pyarrow: convert in one go where it can
        target = _arrow_type(kind)
        if values.type == target:
            return values
        try:
            if kind == STRING and (pa.types.is_boolean(values.type) or pa.types.is_timestamp(values.type)):
                return _cast_column(pa.chunked_array([values]), kind).combine_chunks()
            if not (kind == STRING and pa.types.is_floating(values.type)):  # floats as Python writes them
                return values.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            pass
        values = values.to_pylist()
    if kind in (STRING, LONG, DOUBLE, BOOLEAN):
        try:  # the common case: the values already are of the column's Python type
            return pa.array(values, type=_arrow_type(kind))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
    if kind in (TIMESTAMP, DATE):
        try:  # datetimes (aware; naive ones read as UTC) or dates as they are
            return pa.array(values, type=_arrow_type(kind))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
        try:  # ISO text with an offset (or dates): parsed by pyarrow in one go
            return pa.array(values, type=pa.large_string()).cast(_arrow_type(kind))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
    if kind == STRING:
        values = [_as_text(v) for v in values]
    elif kind == TIMESTAMP:
        values = [_as_timestamp(v) for v in values]
    elif kind == DATE:
        values = [_as_date(v) for v in values]
    elif kind == DOUBLE:
        values = [None if v is None else float(v) for v in values]
    elif kind == LONG:  # a key given as text (deletes from some sources)
        values = [int(v) if isinstance(v, str) else v for v in values]
    return pa.array(values, type=_arrow_type(kind))


def _cast_column(column: pa.ChunkedArray, kind: str) -> pa.ChunkedArray:
    """Existing values converted to a widened type (text as `_as_text` writes it)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    target = _arrow_type(kind)
    if column.type == target:
        return column
    if kind == STRING and pa.types.is_boolean(column.type):
        return pc.if_else(column, "true", "false").cast(target)
    if kind == STRING and pa.types.is_timestamp(column.type):
        return pc.strftime(column, format="%Y-%m-%dT%H:%M:%S.%f+00:00").cast(target)
    return column.cast(target)


# ---- what this run knows of one table ----------------------------------------------------------------------


@dataclass
class _Pending:
    """Buffered rows of one table, folded by key: what the next commit writes."""

    # key -> the source row, and its `_fivetran_synced`: two dicts updated together keep one order, and
    # storing into them allocates nothing per row (a container per row costs the garbage collector).
    rows: dict[Any, dict[str, Any]] = field(default_factory=dict)
    synced: dict[Any, datetime] = field(default_factory=dict)
    deleted: set[Any] = field(default_factory=set)  # buffered rows deleted since
    deletes: dict[Any, datetime] = field(default_factory=dict)  # keys not buffered: soft-delete in the table
    first_batch: str = ""
    last_batch: str = ""

    def __len__(self) -> int:
        return len(self.rows) + len(self.deletes)


@dataclass
class _Lake:
    schema: str
    name: str  # the source table's name
    key: tuple[str, ...]
    table: Table | None  # None until the first commit creates it
    committed: dict[str, int] = field(default_factory=dict)  # batch segment -> last committed number
    pending: _Pending = field(default_factory=_Pending)
    live: bool = False  # LIVE sync mode: deleted rows leave the table instead of being flagged


def _segment(batch_id: str) -> tuple[str, int | None]:
    """`<seq>-<sync id>-<n>` as (`<seq>-<sync id>`, n); an id of another shape is its own segment."""
    head, _, tail = batch_id.rpartition("-")
    return (head, int(tail)) if head and tail.isdigit() else (batch_id, None)


def _committed_batches(table: Table) -> dict[str, int]:
    committed: dict[str, int] = {}
    for snapshot in table.metadata.snapshots:
        last = snapshot.summary[BATCH_PROPERTY] if snapshot.summary is not None else None
        if last:
            segment, number = _segment(str(last))
            committed[segment] = max(committed.get(segment, -1), -1 if number is None else number)
    return committed


def _row_key(row: dict[str, Any], key: tuple[str, ...], table: str) -> Any:
    values = tuple(row.get(column) for column in key)
    if any(value is None for value in values):
        raise DestinationError(f"A row of table '{table}' lacks a value of its primary key {list(key)}")
    try:
        hash(values)
    except TypeError as exc:
        raise DestinationError(f"Primary key values of table '{table}' must be scalars") from exc
    return values[0] if len(values) == 1 else values


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class IcebergDestination:
    """Iceberg tables in S3 with a Glue catalog, buffered per table, committed at flush. See `Destination`."""

    def __init__(self, config: IcebergDestinationConfig, catalog: Catalog | None = None) -> None:
        self.config = config
        self._catalog = catalog
        self._lakes: dict[tuple[str, str], _Lake] = {}
        self._namespace_ready = False
        self._failure: DestinationError | None = None
        self._closed = False

    # -- the Destination protocol ----------------------------------------------------------------------------

    def upsert(
        self, schema: str, table: TableSpec, rows: list[dict[str, Any]], synced_at: datetime, batch_id: str
    ) -> int:
        if not rows:
            return 0
        lake = self._lake(schema, table)
        if self._is_replay(lake, batch_id):
            return len(rows)
        synced = _utc(synced_at)
        pending = lake.pending
        buffered, stamps, deleted, deletes = pending.rows, pending.synced, pending.deleted, pending.deletes
        if len(table.primary_key) == 1:
            (column,) = table.primary_key
            try:  # the common case, once per row: kept to a lookup and a store
                for row in rows:
                    key = row.get(column)
                    if key is None:
                        _row_key(row, lake.key, table.name)  # raises the error that says why
                    buffered[key] = row
                    stamps[key] = synced
                    if deletes or deleted:
                        deletes.pop(key, None)
                        deleted.discard(key)
            except TypeError as exc:
                raise DestinationError(f"Primary key values of table '{table.name}' must be scalars") from exc
        else:
            for row in rows:
                if not table.primary_key:
                    row = {**row, ID_COLUMN: fivetran_id(row)}
                key = _row_key(row, lake.key, table.name)
                deletes.pop(key, None)
                deleted.discard(key)
                buffered[key] = row
                stamps[key] = synced
        self._note_batch(lake, batch_id)
        return len(rows)

    def delete(
        self, schema: str, table: TableSpec, keys: list[dict[str, Any]], synced_at: datetime, batch_id: str
    ) -> int:
        if not keys:
            return 0
        lake = self._lake(schema, table)
        if self._is_replay(lake, batch_id):
            return len(keys)
        synced = _utc(synced_at)
        pending = lake.pending
        for given in keys:
            row = given if table.primary_key else {ID_COLUMN: given.get(ID_COLUMN) or fivetran_id(given)}
            try:
                key = _row_key(row, lake.key, table.name)
            except DestinationError:
                missing = next(column for column in lake.key if row.get(column) is None)
                raise DestinationError(
                    f"Deletes for table '{table.name}' lack key column '{missing}'"
                ) from None
            if key in pending.rows:
                pending.synced[key] = synced
                pending.deleted.add(key)
            else:
                pending.deletes[key] = synced
        self._note_batch(lake, batch_id)
        return len(keys)

    def drop_columns(self, schema: str, table: str, columns: list[str]) -> None:
        """An Iceberg schema change: the columns leave the table's schema (older data files keep their
        bytes, which readers no longer project). A key column is never dropped."""
        from pyiceberg.exceptions import NoSuchTableError

        self._open()
        identifier = (self.config.database, table_name(schema, table))
        try:
            existing = self._catalog_client().load_table(identifier)
        except NoSuchTableError:
            return
        key = json.loads(existing.metadata.properties.get(KEY_PROPERTY) or "[]")
        present = {f.name for f in existing.metadata.schema().fields}
        gone = [c for c in columns if c in present and c not in key and c not in SYSTEM_COLUMNS]
        if not gone:
            return
        try:
            with existing.update_schema() as update:
                for column in gone:
                    update.delete_column(column)
        except Exception as exc:
            raise DestinationError(f"Dropping columns of '{schema}.{table}' failed: {exc}") from exc
        self._lakes.pop((schema, table), None)  # read the table again at its next write

    def flush(self) -> None:
        self._open()
        for lake in self._lakes.values():
            if len(lake.pending):
                self._commit(lake)

    def close(self) -> None:
        # Buffered, uncommitted batches are dropped: the engine replays them from the last checkpoint.
        self._closed = True
        self._lakes.clear()

    def __enter__(self) -> IcebergDestination:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- maintenance -----------------------------------------------------------------------------------------

    def expire_snapshots(self, schema: str, table: str, now: datetime | None = None) -> int:
        """Expire snapshots older than `SNAPSHOT_RETENTION`, keeping the newest `KEEP_SNAPSHOTS`.

        Removes the files only they referenced (data, manifests, manifest lists). Returns the number
        of snapshots expired. Replays only reach back to the last checkpoint, minutes old, so the
        batch ids of expired snapshots are never needed again. Commits call it by themselves once
        `EXPIRE_AFTER` snapshots are due (see `_commit`).
        """
        identifier = (self.config.database, table_name(schema, table))
        return _expire(self._catalog_client().load_table(identifier), now or datetime.now(UTC))

    # -- internals -------------------------------------------------------------------------------------------

    def _open(self) -> None:
        if self._closed:
            raise DestinationError("The Iceberg destination is closed")
        if self._failure is not None:
            raise self._failure

    def _catalog_client(self) -> Catalog:
        if self._catalog is None:
            self._catalog = glue_catalog(self.config)
        return self._catalog

    def _lake(self, schema: str, spec: TableSpec) -> _Lake:
        self._open()
        found = self._lakes.get((schema, spec.name))
        if found is not None:
            found.live = spec.sync_mode == "LIVE"
            return found
        from pyiceberg.exceptions import NoSuchTableError

        key = spec.primary_key or (ID_COLUMN,)
        identifier = (self.config.database, table_name(schema, spec.name))
        try:
            existing: Table | None = self._catalog_client().load_table(identifier)
        except NoSuchTableError:
            existing = None
        except Exception as exc:
            raise DestinationError(f"Reading the catalog for '{schema}.{spec.name}' failed: {exc}") from exc
        if existing is not None:
            recorded = existing.metadata.properties.get(KEY_PROPERTY)
            if recorded is not None and tuple(json.loads(recorded)) != key:
                raise DestinationError(
                    f"Table '{schema}.{spec.name}' has primary key {json.loads(recorded)}, the source now "
                    f"has {list(key)}: a historical resync into a fresh table is needed"
                )
        lake = _Lake(schema, spec.name, key, existing, _committed_batches(existing) if existing else {})
        lake.live = spec.sync_mode == "LIVE"
        self._lakes[(schema, spec.name)] = lake
        return lake

    def _is_replay(self, lake: _Lake, batch_id: str) -> bool:
        if not batch_id:
            raise DestinationError("Invalid batch id ''")
        segment, number = _segment(batch_id)
        last = lake.committed.get(segment)
        return last is not None and (number is None or number <= last)

    def _note_batch(self, lake: _Lake, batch_id: str) -> None:
        pending = lake.pending
        pending.first_batch = pending.first_batch or batch_id
        pending.last_batch = batch_id
        if len(pending) >= BUFFER_ROWS:
            self._commit(lake)

    def _commit(self, lake: _Lake) -> None:
        from pyiceberg.exceptions import CommitFailedException, ValidationException

        try:
            try:
                self._merge(lake)
            except (CommitFailedException, ValidationException):
                if lake.table is None:
                    raise
                # Another writer (a compaction, Athena's OPTIMIZE) committed first: merge again on top.
                identifier = (self.config.database, table_name(lake.schema, lake.name))
                lake.table = self._catalog_client().load_table(identifier)
                lake.committed = _committed_batches(lake.table)
                if not self._is_replay(lake, lake.pending.last_batch):
                    self._merge(lake)
        except DestinationError as exc:
            self._failure = exc
            raise
        except Exception as exc:
            failure = DestinationError(f"Writing to '{lake.schema}.{lake.name}' failed: {exc}")
            failure.__cause__ = exc
            self._failure = failure
            raise failure from exc
        segment, number = _segment(lake.pending.last_batch)
        lake.committed[segment] = max(lake.committed.get(segment, -1), -1 if number is None else number)
        lake.pending = _Pending()
        if lake.table is not None and len(_expirable(lake.table, datetime.now(UTC))) >= EXPIRE_AFTER:
            try:
                _expire(lake.table, datetime.now(UTC))
                lake.table = self._catalog_client().load_table(lake.table.name())
            except Exception:  # the data is committed; expiry is retried at the next commit
                logger.warning("expiring snapshots failed", extra={"table": f"{lake.schema}.{lake.name}"})

    def _merge(self, lake: _Lake) -> None:
        import pyarrow as pa
        from pyiceberg.schema import Schema
        from pyiceberg.table.sorting import SortField, SortOrder
        from pyiceberg.transforms import IdentityTransform
        from pyiceberg.types import BooleanType, NestedField, TimestamptzType

        pending = lake.pending
        rows = list(pending.rows.values())
        # Column kinds of the buffered rows, in first-seen order.
        names: dict[str, None] = {}
        for shape in dict.fromkeys(tuple(row) for row in rows):
            names.update(dict.fromkeys(shape))
        values, incoming = _columns(rows, [name for name in names if name not in SYSTEM_COLUMNS])
        properties = {
            BATCH_PROPERTY: pending.last_batch,
            FIRST_BATCH_PROPERTY: pending.first_batch,
        }
        tx: Transaction
        if lake.table is None:
            if not rows:
                return  # deletes for a table never written: nothing to delete
            missing = [column for column in lake.key if incoming.get(column) is None]
            if missing:
                raise DestinationError(f"Rows for table '{lake.name}' lack primary key column '{missing[0]}'")
            columns = {name: kind for name, kind in incoming.items() if kind is not None}
            fields = [
                NestedField(i + 1, name, _iceberg_type(kind), required=False)
                for i, (name, kind) in enumerate(columns.items())
            ]
            fields.append(NestedField(len(fields) + 1, SYNCED_COLUMN, TimestamptzType(), required=False))
            fields.append(NestedField(len(fields) + 1, DELETED_COLUMN, BooleanType(), required=False))
            schema = Schema(*fields)
            order = SortOrder(
                *[
                    SortField(source_id=schema.find_field(c).field_id, transform=IdentityTransform())
                    for c in lake.key
                ]
            )
            self._ensure_namespace()
            tx = self._catalog_client().create_table_transaction(
                (self.config.database, table_name(lake.schema, lake.name)),
                schema=schema,
                location=table_location(self.config, lake.schema, lake.name),
                sort_order=order,
                properties={**TABLE_PROPERTIES, KEY_PROPERTY: json.dumps(list(lake.key))},
            )
            old_metadata = None
            widened: dict[str, str] = {}
        else:
            tx = lake.table.transaction()
            old_metadata = lake.table.metadata
            current = {f.name: _kind(f.field_type) for f in old_metadata.schema().fields}
            widened = {}
            added = {}
            for name, kind in incoming.items():
                if kind is None:
                    continue
                if name not in current:
                    clash = next((c for c in current if c.lower() == name.lower()), None)
                    if clash is not None:
                        raise DestinationError(
                            f"Column '{name}' of table '{lake.name}' clashes with existing column '{clash}'"
                        )
                    added[name] = kind
                elif (wanted := widen(current[name], kind) or kind) != current[name]:
                    widened[name] = wanted
            if added or widened:
                with tx.update_schema(allow_incompatible_changes=bool(widened)) as update:
                    for name, kind in added.items():
                        update.add_column(name, _iceberg_type(kind))
                    for name, kind in widened.items():
                        update.update_column(name, _iceberg_type(kind))
        metadata = tx.table_metadata
        kinds = {f.name: _kind(f.field_type) for f in metadata.schema().fields}
        target = _arrow_schema(metadata)
        values[SYNCED_COLUMN] = list(pending.synced.values())
        values[DELETED_COLUMN] = (
            [key in pending.deleted for key in pending.rows] if pending.deleted else [False] * len(rows)
        )
        new_rows = _to_arrow(len(rows), values, kinds, target)
        if lake.live and pending.deleted:
            # Buffered rows deleted since: in LIVE mode they are not written at all.
            new_rows = new_rows.filter(pa.array([key not in pending.deleted for key in pending.rows]))
        if new_rows.num_rows and any(new_rows.column(c).null_count for c in lake.key):
            raise DestinationError(
                f"A row of table '{lake.name}' lacks a value of its primary key {list(lake.key)}"
            )

        # The files to rewrite: those whose key range can hold a buffered key, all files holding a
        # widened column, and the small files once there are enough of them.
        tasks = _plan(old_metadata, lake.table) if old_metadata is not None and lake.table else []
        if widened:
            touched = tasks
        else:
            firsts = [k if len(lake.key) == 1 else k[0] for k in (*pending.rows, *pending.deletes)]
            touched = _touched(tasks, metadata, lake.key[0], firsts)
            small = [t for t in tasks if t.file.file_size_in_bytes < SMALL_FILE_BYTES]
            if len(small) >= COMPACT_AFTER_FILES:
                chosen = {t.file.file_path for t in touched}
                touched = touched + [t for t in small if t.file.file_path not in chosen]
        parts = []
        if touched:
            assert old_metadata is not None
            existing = _read(old_metadata, lake.table, touched)
            existing = _conform(existing, target, widened)
            all_keys = _keys_table(list(pending.rows) + list(pending.deletes), lake.key, target)
            kept = (
                existing.join(all_keys, keys=list(lake.key), join_type="left anti")
                if all_keys.num_rows
                else existing
            )
            parts.append(kept.select(target.names).cast(target))
            if pending.deletes and not lake.live:  # LIVE: the deleted rows stay out of the rewrite
                deleted_keys = _keys_table(list(pending.deletes), lake.key, target)
                synced_values = pa.array(list(pending.deletes.values()), type=pa.timestamp("us", tz="UTC"))
                deleted_keys = deleted_keys.append_column("__synced", synced_values)
                hit = existing.drop_columns([SYNCED_COLUMN]).join(
                    deleted_keys, keys=list(lake.key), join_type="inner"
                )
                hit = hit.rename_columns([SYNCED_COLUMN if n == "__synced" else n for n in hit.column_names])
                hit = hit.set_column(
                    hit.column_names.index(DELETED_COLUMN),
                    DELETED_COLUMN,
                    pa.array([True] * hit.num_rows, type=pa.bool_()),
                )
                parts.append(hit.select(target.names).cast(target))
        if new_rows.num_rows:
            parts.append(new_rows)
        if not touched and not new_rows.num_rows:
            return  # only deletes, of keys the table does not hold: nothing changes
        result = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
        result = result.sort_by([(column, "ascending") for column in lake.key])
        _write(tx, result, [t.file for t in touched], properties)
        committed = tx.commit_transaction()
        # A created table comes back staged (it cannot refresh, which a later commit's retry needs).
        lake.table = (
            committed if old_metadata is not None else self._catalog_client().load_table(committed.name())
        )

    def _ensure_namespace(self) -> None:
        if not self._namespace_ready:
            self._catalog_client().create_namespace_if_not_exists(self.config.database)
            self._namespace_ready = True


def _arrow_schema(metadata: TableMetadata) -> pa.Schema:
    import pyarrow as pa

    return pa.schema([pa.field(f.name, _arrow_type(_kind(f.field_type))) for f in metadata.schema().fields])


def _to_arrow(count: int, values: dict[str, list[Any]], kinds: dict[str, str], target: pa.Schema) -> pa.Table:
    """The table of the buffered rows: `values` holds each column's values (a column not there is null)."""
    import pyarrow as pa

    try:
        arrays = [
            _array(values[name], kinds[name])
            if name in values
            else pa.nulls(count, type=_arrow_type(kinds[name]))
            for name in target.names
        ]
    except (ValueError, TypeError, pa.ArrowException) as exc:
        raise DestinationError(f"A value does not fit its column: {exc}") from exc
    return pa.Table.from_arrays(arrays, schema=target)


def _keys_table(keys: list[Any], key: tuple[str, ...], target: pa.Schema) -> pa.Table:
    """The keys as a table with the key columns' types; a key that cannot have that type matches nothing."""
    import pyarrow as pa

    columns = list(zip(*keys, strict=True)) if len(key) > 1 else [keys]
    arrays = []
    keep = [True] * len(keys)
    for name, values in zip(key, columns, strict=True):
        kind = _kind_of(target.field(name).type)
        converted = []
        for i, value in enumerate(values):
            try:
                converted.append(_array([value], kind)[0].as_py())
            except (ValueError, TypeError, pa.ArrowException):
                converted.append(None)
                keep[i] = False
        arrays.append(pa.array(converted, type=target.field(name).type))
    table = pa.Table.from_arrays(arrays, names=list(key))
    return table.filter(pa.array(keep)) if not all(keep) else table


def _kind_of(arrow_type: pa.DataType) -> str:
    import pyarrow as pa

    if pa.types.is_boolean(arrow_type):
        return BOOLEAN
    if pa.types.is_integer(arrow_type):
        return LONG
    if pa.types.is_floating(arrow_type):
        return DOUBLE
    if pa.types.is_date(arrow_type):
        return DATE
    if pa.types.is_timestamp(arrow_type):
        return TIMESTAMP
    return STRING


def _plan(metadata: TableMetadata, table: Table) -> list[Any]:
    from pyiceberg.table import DataScan

    if metadata.current_snapshot() is None:
        return []
    return list(DataScan(table_metadata=metadata, io=table.io).plan_files())


def _touched(tasks: list[Any], metadata: TableMetadata, column: str, values: list[Any]) -> list[Any]:
    """The scan tasks whose file's bounds for `column` can hold one of `values` (all, without bounds)."""
    from pyiceberg.conversions import from_bytes
    from pyiceberg.types import PrimitiveType

    field_ = metadata.schema().find_field(column)
    if not isinstance(field_.field_type, PrimitiveType):
        return list(tasks)
    try:
        ordered = sorted(values)
    except TypeError:
        return list(tasks)
    touched = []
    for task in tasks:
        lower = (task.file.lower_bounds or {}).get(field_.field_id)
        upper = (task.file.upper_bounds or {}).get(field_.field_id)
        if lower is None or upper is None:
            touched.append(task)
            continue
        try:
            low = from_bytes(field_.field_type, lower)
            high = from_bytes(field_.field_type, upper)
            first = bisect.bisect_left(ordered, low)
        except (TypeError, ValueError):
            touched.append(task)
            continue
        if first < len(ordered) and ordered[first] <= high:
            touched.append(task)
    return touched


def _read(metadata: TableMetadata, table: Table | None, tasks: list[Any]) -> pa.Table:
    from pyiceberg.expressions import AlwaysTrue
    from pyiceberg.io.pyarrow import ArrowScan

    assert table is not None
    return ArrowScan(
        table_metadata=metadata, io=table.io, projected_schema=metadata.schema(), row_filter=AlwaysTrue()
    ).to_table(tasks)


def _conform(existing: pa.Table, target: pa.Schema, widened: dict[str, str]) -> pa.Table:
    """Rows read with the old schema, in the new one: widened columns converted, added ones null."""
    import pyarrow as pa

    columns = []
    for target_field in target:
        if target_field.name in existing.column_names:
            column = existing.column(target_field.name)
            if target_field.name in widened:
                column = _cast_column(column, widened[target_field.name])
            columns.append(column.cast(target_field.type))
        else:
            columns.append(pa.nulls(existing.num_rows, type=target_field.type))
    return pa.Table.from_arrays(columns, schema=target)


def _write(tx: Transaction, result: pa.Table, replaced: list[Any], properties: dict[str, str]) -> None:
    from pyiceberg.io.pyarrow import _dataframe_to_data_files

    update = tx.update_snapshot(snapshot_properties=properties)
    producer: Any = update.overwrite() if replaced else update.fast_append()
    with producer as snapshot:
        for data_file in replaced:
            snapshot.delete_data_file(data_file)
        for data_file in _dataframe_to_data_files(
            table_metadata=tx.table_metadata, df=result, io=tx._table.io, write_uuid=snapshot.commit_uuid
        ):
            snapshot.append_data_file(data_file)


def _expirable(table: Table, now: datetime) -> list[int]:
    """Snapshots older than the retention, except the newest `KEEP_SNAPSHOTS` and the current one."""
    cutoff_ms = (now - SNAPSHOT_RETENTION).timestamp() * 1000
    snapshots = sorted(table.metadata.snapshots, key=lambda s: s.timestamp_ms)
    keep = {s.snapshot_id for s in snapshots[-KEEP_SNAPSHOTS:]} | {table.metadata.current_snapshot_id}
    return [s.snapshot_id for s in snapshots if s.snapshot_id not in keep and s.timestamp_ms < cutoff_ms]


def _expire(table: Table, now: datetime) -> int:
    expired = _expirable(table, now)
    if not expired:
        return 0
    before = _referenced_files(table)
    table.maintenance.expire_snapshots().by_ids(expired).commit()
    after = _referenced_files(table.refresh())
    for path in sorted(before - after):
        table.io.delete(path)
    return len(expired)


def _referenced_files(table: Table) -> set[str]:
    files: set[str] = set()
    for snapshot in table.metadata.snapshots:
        files.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(table.io):
            files.add(manifest.manifest_path)
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
                files.add(entry.data_file.file_path)
    return files


def glue_catalog(config: IcebergDestinationConfig) -> Catalog:
    """The Glue catalog of the config's region; S3 through pyarrow, at `AWS_ENDPOINT_URL[_S3]` if set."""
    import boto3
    from pyiceberg.catalog.glue import GlueCatalog

    region = config.region or get_settings().region
    properties = {"s3.region": region, "glue.region": region}
    s3_endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if s3_endpoint:
        properties["s3.endpoint"] = s3_endpoint
    glue = boto3.session.Session().client("glue", region_name=region)
    return GlueCatalog("sluice", client=glue, **properties)
