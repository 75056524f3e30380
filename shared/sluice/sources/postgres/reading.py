"""Reading the source: historical sync by keyset pages, then changes by logical replication or XMIN.

State (one JSON object, committed by the engine with each checkpoint):

    {"method": "WAL_PGOUTPUT",
     "lsn": "<the slot position the destination holds every change up to>",
     "tables": {"<table>": {"done": true} | {"after": ["<key value as text>", ...]}}}

    {"method": "XMIN",
     "xmin": <the transaction id horizon of the last complete pass, or absent>,
     "covered": ["<table>", ...],          # tables that horizon covers
     "run": {"horizon": <xid>, "tables": {"<table>": {"done": true} | {"after": [...]}}}}

Historical sync. Each table not yet `done` is read in primary key order, `PAGE_ROWS` rows per page
(`WHERE (key) > (last key) ORDER BY key LIMIT n`); every page is an `Upserts` followed by a
`Checkpoint` holding the last key, so a crash or a continuation resumes after the last committed
page. A table without a primary key is read in one pass (its rows keyed by `_fivetran_id` in the
destination) and checkpointed when it is done.

Logical replication (`WAL_PGOUTPUT`). The first sync records the slot's position before reading any
table; changes after it are replayed after the tables are read, so every change made during the
historical sync lands too (replayed rows converge on the source's latest values). Each later read:
  1. advances the slot to the state's `lsn` (`pg_replication_slot_advance`): the state was only
     committed after the destination held those changes, so this is the first moment it is safe;
  2. peeks every change up to the current WAL position (`pg_logical_slot_peek_binary_changes`
     with `pgoutput` and the publication: the slot does not move), decodes Relation, Insert,
     Update, Delete and Commit messages, and folds them per key in commit order (the last change
     of a key wins: an upsert or a delete);
  3. yields them at a transaction boundary every `WINDOW_CHANGES` changes, each window followed by
     a Checkpoint whose `lsn` is the end of the last transaction in it.
A crash anywhere replays from the last committed `lsn`: the destination's keyed writes make the
replay harmless, and the slot still holds every change after it.

XMIN. Each pass reads the rows whose `xmin` (the transaction that last wrote them) is at or after
the horizon of the previous pass, in the same keyset pages; the new horizon is the oldest
transaction still running when the pass started. Deletes are not seen by this method.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sluice.contract import Checkpoint, Deletes, Operation, Upserts
from sluice.sources.base import SourceError
from sluice.sources.postgres import pgoutput
from sluice.sources.postgres.client import SourceTable, connected, discover, ident, sql, value_loader

if TYPE_CHECKING:
    import psycopg

    from sluice.sources.postgres import PostgresConfig

PAGE_ROWS = 10_000
WINDOW_CHANGES = 10_000
_FETCH_ROWS = 2_000


def extract(config: PostgresConfig, state: dict[str, Any], deadline: float) -> Iterator[Operation]:
    del deadline  # the engine stops at a checkpoint; every checkpoint here is a safe place to stop
    with connected(config) as connection:
        tables = discover(connection, config)
        if state.get("method") != config.update_method:
            state = {}  # a new method starts over with a historical sync
        if config.update_method == "WAL_PGOUTPUT":
            yield from _wal_sync(connection, config, tables, state)
        else:
            yield from _xmin_sync(connection, tables, state)


# ---- keyset pages ----------------------------------------------------------------------------------------


def _pages(
    connection: psycopg.Connection[Any],
    table: SourceTable,
    after: list[str] | None,
    since_xmin: int | None,
) -> Iterator[tuple[list[dict[str, Any]], list[str] | None]]:
    """The table's rows in key order, a page at a time, each with the key (as text) of its last row."""
    columns = ", ".join(ident(c) for c in table.columns)
    where: list[str] = []
    params: list[Any] = []
    if since_xmin is not None:
        where.append("age(xmin) <= age(%s::text::xid)")
        params.append(str(since_xmin))
    if not table.primary_key:
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        with connection.transaction():
            cursor = connection.cursor(name="sluice_keyless")
            cursor.itersize = _FETCH_ROWS
            cursor.execute(sql(f"SELECT {columns} FROM {table.qualified}{clause}"), params)
            names = list(table.columns)
            while batch := cursor.fetchmany(PAGE_ROWS):
                yield [dict(zip(names, row, strict=True)) for row in batch], None
        return
    # Qualified by the alias: output names (the key's text form repeats them) are never meant.
    key = ", ".join(f"t.{ident(c)}" for c in table.primary_key)
    key_text = ", ".join(f"t.{ident(c)}::text" for c in table.primary_key)
    cast = ", ".join(f"%s::{table.types[c]}" for c in table.primary_key)
    names = list(table.columns)
    width = len(names)

    def page(after: list[str] | None) -> tuple[list[dict[str, Any]], list[str] | None, bool]:
        conditions = list(where)
        page_params = list(params)
        if after is not None:
            conditions.append(f"({key}) > ({cast})")
            page_params.extend(after)
        clause = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        query = (
            f"SELECT {columns}, {key_text} FROM {table.qualified} AS t{clause} "
            f"ORDER BY {key} LIMIT {PAGE_ROWS}"
        )
        found = connection.execute(sql(query), page_params).fetchall()
        if not found:
            return [], after, False
        last = [str(v) for v in found[-1][width:]]
        return [dict(zip(names, row[:width], strict=True)) for row in found], last, len(found) == PAGE_ROWS

    # The next page is read (one thread, the only user of `connection` meanwhile) while the caller
    # writes this one: the source's query and the destination's merge overlap, as a COPY pipe would.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sluice-pg-page") as reader:
        pending: Future[tuple[list[dict[str, Any]], list[str] | None, bool]] | None = reader.submit(
            page, after
        )
        while pending is not None:
            rows, after, more = pending.result()
            if not rows:
                return
            pending = reader.submit(page, after) if more else None
            yield rows, after


def _read_tables(
    connection: psycopg.Connection[Any],
    tables: list[SourceTable],
    progress: dict[str, Any],
    since_xmin: Callable[[SourceTable], int | None],
    snapshot: Callable[[], dict[str, Any]],
) -> Iterator[Operation]:
    """Every table not yet done, page by page; `progress` is updated in place before each checkpoint."""
    for table in tables:
        position = progress.get(table.name) or {}
        if position.get("done"):
            continue
        after = position.get("after")
        for rows, last in _pages(connection, table, after, since_xmin(table)):
            yield Upserts(table.name, rows)
            if last is not None:
                progress[table.name] = {"after": last}
                yield Checkpoint(snapshot())
        progress[table.name] = {"done": True}
        yield Checkpoint(snapshot())


# ---- logical replication ---------------------------------------------------------------------------------


def _slot(connection: psycopg.Connection[Any], config: PostgresConfig) -> str:
    """The slot's confirmed position; a clear error when the slot or publication is missing or wrong."""
    slot, publication = config.replication_slot or "", config.publication_name or ""
    row = connection.execute(
        "SELECT plugin, database, confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
        [slot],
    ).fetchone()
    if row is None:
        raise SourceError(
            f"The replication slot '{slot}' does not exist: create it with "
            f"SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')"
        )
    plugin, database, confirmed = row
    if plugin != "pgoutput" or database != config.database:
        raise SourceError(
            f"The replication slot '{slot}' uses plugin '{plugin}' in database '{database}': "
            f"Sluice needs a 'pgoutput' slot in '{config.database}'"
        )
    if (
        connection.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", [publication]).fetchone()
        is None
    ):
        raise SourceError(
            f"The publication '{publication}' does not exist: create it with "
            f"CREATE PUBLICATION {ident(publication)} FOR TABLE <the tables to sync>"
        )
    return str(confirmed)


def _wal_sync(
    connection: psycopg.Connection[Any],
    config: PostgresConfig,
    tables: list[SourceTable],
    state: dict[str, Any],
) -> Iterator[Operation]:
    confirmed = _slot(connection, config)
    lsn = str(state.get("lsn") or confirmed)
    progress: dict[str, Any] = dict(state.get("tables") or {})
    if pgoutput.parse_lsn(confirmed) < pgoutput.parse_lsn(lsn):
        # The destination holds everything up to `lsn` and the checkpoint saying so committed: the
        # first moment the slot may let go of those changes is the start of the next read.
        connection.execute(
            "SELECT pg_replication_slot_advance(%s, %s::pg_lsn)", [config.replication_slot, lsn]
        )

    def snapshot() -> dict[str, Any]:
        return {"method": "WAL_PGOUTPUT", "lsn": lsn, "tables": dict(progress)}

    yield from _read_tables(connection, tables, progress, lambda _t: None, snapshot)
    selected = {(t.schema, t.name): t for t in tables}
    for operations, end_lsn in _changes(connection, config, selected):
        yield from operations
        lsn = pgoutput.format_lsn(end_lsn)
        yield Checkpoint(snapshot())
    yield Checkpoint(snapshot())


class _Decoded:
    """A replicated relation with what turns its tuples into rows."""

    def __init__(self, connection: psycopg.Connection[Any], relation: pgoutput.Relation, table: SourceTable):
        self.table = table
        self.names = [c.name for c in relation.columns]
        self.loaders = [value_loader(connection, c.type_oid) for c in relation.columns]

    def row(self, values: pgoutput.TupleValues) -> tuple[dict[str, Any], list[str]]:
        """The row, and the columns whose (unchanged, TOASTed) values the message left out."""
        row: dict[str, Any] = {}
        unchanged: list[str] = []
        for name, load, value in zip(self.names, self.loaders, values, strict=True):
            if value is pgoutput.UNCHANGED:
                unchanged.append(name)
            else:
                row[name] = None if value is None else load(value)  # type: ignore[arg-type]
        return row, unchanged

    def key_of(self, row: dict[str, Any]) -> tuple[Any, ...]:
        if self.table.primary_key:
            return ("k", *(_hashable(row.get(c)) for c in self.table.primary_key))
        from sluice.destinations import fivetran_id

        return ("h", fivetran_id(row))

    def key_row(self, row: dict[str, Any]) -> dict[str, Any]:
        if self.table.primary_key:
            return {c: row.get(c) for c in self.table.primary_key}
        return row  # the destination keys it by the row's hash


def _hashable(value: Any) -> Any:
    if isinstance(value, dict | list):
        return repr(value)
    return value


def _changes(
    connection: psycopg.Connection[Any],
    config: PostgresConfig,
    selected: dict[tuple[str, str], SourceTable],
) -> Iterator[tuple[list[Operation], int]]:
    """Windows of folded changes, each with the end LSN of its last transaction."""
    relations: dict[int, _Decoded | None] = {}
    # table -> key -> (row to upsert | None for a delete, key row, unchanged columns)
    window: dict[str, dict[tuple[Any, ...], tuple[dict[str, Any] | None, dict[str, Any], list[str]]]] = {}
    changes = 0
    last_end: int | None = None
    yielded_end: int | None = None
    publication = '"' + (config.publication_name or "").replace('"', '""') + '"'
    # Bounded by what is flushed now (decoding reads no further): the read ends by itself.
    upto = connection.execute("SELECT pg_current_wal_flush_lsn()::text").fetchone()
    with connection.transaction():
        cursor = connection.cursor(name="sluice_wal")
        cursor.itersize = _FETCH_ROWS
        cursor.execute(
            "SELECT data FROM pg_logical_slot_peek_binary_changes(%s, %s::pg_lsn, NULL, "
            "'proto_version', '1', 'publication_names', %s)",
            [config.replication_slot, upto[0] if upto else None, publication],
        )
        for (data,) in cursor:
            message = pgoutput.decode(data)
            if isinstance(message, pgoutput.Relation):
                table = selected.get((message.schema, message.name))
                relations[message.oid] = _Decoded(connection, message, table) if table else None
            elif isinstance(message, pgoutput.Insert | pgoutput.Update | pgoutput.Delete):
                decoded = relations.get(message.relation_oid)
                if decoded is None:
                    continue  # a published table this connection does not sync
                _fold(decoded, message, window.setdefault(decoded.table.name, {}))
                changes += 1
            elif isinstance(message, pgoutput.Commit):
                last_end = message.end_lsn
                if changes >= WINDOW_CHANGES:
                    yield _operations(connection, selected, window), last_end
                    window, changes, yielded_end = {}, 0, last_end
        if last_end is not None and last_end != yielded_end:
            # The changes after the last full window (or only transactions this connection skips:
            # the position still moves past them).
            yield _operations(connection, selected, window), last_end


def _fold(
    decoded: _Decoded,
    message: pgoutput.Insert | pgoutput.Update | pgoutput.Delete,
    entries: dict[tuple[Any, ...], tuple[dict[str, Any] | None, dict[str, Any], list[str]]],
) -> None:
    """Record one change: the last change of a key wins (a row to upsert, or None for a delete)."""
    if isinstance(message, pgoutput.Delete):
        old, _ = decoded.row(message.old)
        entries[decoded.key_of(old)] = (None, decoded.key_row(old), [])
        return
    new, unchanged = decoded.row(message.new)
    if isinstance(message, pgoutput.Update) and message.old is not None:
        old, _ = decoded.row(message.old)
        if message.old_kind == "O":  # the whole old row: it has the values the new one left out
            new.update({c: old[c] for c in unchanged if c in old})
            unchanged = [c for c in unchanged if c not in old]
        old_key = decoded.key_of(old)
        if old_key != decoded.key_of(new):  # the key changed (or, without a key, the row's hash)
            entries[old_key] = (None, decoded.key_row(old), [])
    entries[decoded.key_of(new)] = (new, decoded.key_row(new), unchanged)


def _operations(
    connection: psycopg.Connection[Any],
    selected: dict[tuple[str, str], SourceTable],
    window: dict[str, dict[tuple[Any, ...], tuple[dict[str, Any] | None, dict[str, Any], list[str]]]],
) -> list[Operation]:
    by_name = {t.name: t for t in selected.values()}
    operations: list[Operation] = []
    for name, entries in window.items():
        upserts: list[dict[str, Any]] = []
        deletes: list[dict[str, Any]] = []
        for row, key_row, unchanged in entries.values():
            if row is None:
                deletes.append(key_row)
            elif unchanged:
                filled = _fill_unchanged(connection, by_name[name], row, unchanged)
                if filled is not None:
                    upserts.append(filled)
            else:
                upserts.append(row)
        if upserts:
            operations.append(Upserts(name, upserts))
        if deletes:
            operations.append(Deletes(name, deletes))
    return operations


def _fill_unchanged(
    connection: psycopg.Connection[Any], table: SourceTable, row: dict[str, Any], unchanged: list[str]
) -> dict[str, Any] | None:
    """An update's row with the TOASTed values it did not change, read from the table now.

    None when the row is gone: its delete comes later in the stream."""
    if not table.primary_key:
        return None  # cannot be found again without a key; REPLICA IDENTITY FULL sends whole rows
    columns = ", ".join(ident(c) for c in unchanged)
    match = " AND ".join(f"{ident(c)} = %s::{table.types[c]}" for c in table.primary_key)
    found = connection.execute(
        sql(f"SELECT {columns} FROM {table.qualified} WHERE {match}"),
        [_as_text(row[c]) for c in table.primary_key],
    ).fetchone()
    if found is None:
        return None
    return {**row, **dict(zip(unchanged, found, strict=True))}


def _as_text(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    return value


# ---- XMIN ------------------------------------------------------------------------------------------------


def _xmin_sync(
    connection: psycopg.Connection[Any], tables: list[SourceTable], state: dict[str, Any]
) -> Iterator[Operation]:
    since = state.get("xmin")
    covered = set(state.get("covered") or [])
    run = dict(state.get("run") or {})
    if "horizon" not in run:
        found = connection.execute(
            "SELECT (pg_snapshot_xmin(pg_current_snapshot())::text::bigint % 4294967296)"
        ).fetchone()
        run = {"horizon": int(found[0]) if found else 0, "tables": {}}
    progress: dict[str, Any] = dict(run.get("tables") or {})

    def snapshot() -> dict[str, Any]:
        saved: dict[str, Any] = {"method": "XMIN", "covered": sorted(covered)}
        if since is not None:
            saved["xmin"] = since
        return {**saved, "run": {"horizon": run["horizon"], "tables": dict(progress)}}

    def since_for(table: SourceTable) -> int | None:
        return int(since) if since is not None and table.name in covered else None

    yield from _read_tables(connection, tables, progress, since_for, snapshot)
    yield Checkpoint({"method": "XMIN", "xmin": run["horizon"], "covered": sorted(t.name for t in tables)})
