"""The postgres source on a real PostgreSQL 15 server: discovery, keyset pages, pgoutput, XMIN, setup."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from sluice.contract import Checkpoint, Deletes, Operation, TableSpec, Upserts
from sluice.sources import get_service
from sluice.sources.base import SetupTestOptions, SourceAuthError, SourceError
from sluice.sources.postgres import pgoutput
from sluice.sources.postgres import reading as extract_module
from tests.support.loopback import loopback_allowed, set_loopback
from tests.support.postgres import SUPERUSER, SUPERUSER_PASSWORD, PostgresServer, postgres_server

SERVICE = get_service("postgres")


@pytest.fixture(autouse=True)
def _loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from loopback_allowed(monkeypatch)


def config_for(server: PostgresServer, database: str, **extra: Any) -> dict[str, Any]:
    return {
        "schema": "shop",
        "host": server.host,
        "port": server.port,
        "database": database,
        "user": SUPERUSER,
        "password": SUPERUSER_PASSWORD,
        "update_method": "WAL_PGOUTPUT",
        "replication_slot": "sluice_slot",
        "publication_name": "sluice_pub",
        **extra,
    }


@pytest.fixture
def db(pg_server: PostgresServer, pg_database: str) -> str:
    pg_server.execute(
        pg_database,
        "CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(10,2))",
        "INSERT INTO items SELECT g, 'item ' || g, g * 1.25 FROM generate_series(1, 25) g",
        "CREATE PUBLICATION sluice_pub FOR ALL TABLES",
        "SELECT pg_create_logical_replication_slot('sluice_slot', 'pgoutput')",
    )
    return pg_database


class Run:
    """One extract run applied to a plain model of a destination (key -> row, with a deleted flag)."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[Any, dict[str, Any]]] = {}
        self.deleted: dict[str, set[Any]] = {}
        self.checkpoints: list[dict[str, Any]] = []
        self.operations: list[Operation] = []

    def key(self, table: str, row: dict[str, Any]) -> Any:
        return row.get("id") if "id" in row else tuple(sorted(row.items()))

    def apply(self, operations: Iterator[Operation], stop_after_checkpoints: int | None = None) -> Run:
        for operation in operations:
            self.operations.append(operation)
            if isinstance(operation, Checkpoint):
                self.checkpoints.append(operation.state)
                if stop_after_checkpoints is not None and len(self.checkpoints) >= stop_after_checkpoints:
                    break
            elif isinstance(operation, Upserts):
                for row in operation.rows:
                    self.tables.setdefault(operation.table, {})[self.key(operation.table, row)] = row
                    self.deleted.setdefault(operation.table, set()).discard(self.key(operation.table, row))
            elif isinstance(operation, Deletes):
                for key in operation.keys:
                    self.deleted.setdefault(operation.table, set()).add(self.key(operation.table, key))
        return self

    @property
    def state(self) -> dict[str, Any]:
        return self.checkpoints[-1]

    def live(self, table: str = "items") -> dict[Any, dict[str, Any]]:
        deleted = self.deleted.get(table, set())
        return {k: v for k, v in self.tables.get(table, {}).items() if k not in deleted}


def run(config: dict[str, Any], state: dict[str, Any], into: Run | None = None, **kwargs: Any) -> Run:
    return (into or Run()).apply(SERVICE.extract(config, state, time.monotonic() + 600), **kwargs)


def historical_rows(result: Run, table: str) -> list[dict[str, Any]]:
    """The rows of `table`'s historical read (what came before the checkpoint that marks it done);
    rows written after the slot was created come again from the replication that follows."""
    rows: list[dict[str, Any]] = []
    for operation in result.operations:
        if isinstance(operation, Checkpoint) and operation.state.get("tables", {}).get(table) == {
            "done": True
        }:
            return rows
        if isinstance(operation, Upserts) and operation.table == table:
            rows.extend(operation.rows)
    raise AssertionError(f"{table} was not read to its end")


def source_rows(server: PostgresServer, database: str, table: str = "items") -> dict[Any, dict[str, Any]]:
    with server.connect(database) as con:
        cursor = con.execute(f"SELECT * FROM {table} ORDER BY 1")  # type: ignore[arg-type]
        names = [c.name for c in cursor.description or []]
        return {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


def slot_position(server: PostgresServer, database: str) -> str:
    with server.connect(database) as con:
        row = con.execute("SELECT confirmed_flush_lsn::text FROM pg_replication_slots").fetchone()
        assert row is not None
        return str(row[0])


# ---- config and discovery ---------------------------------------------------------------------------------


def test_config_uses_fivetran_field_names_and_marks_the_password_secret() -> None:
    fields = set(SERVICE.config_model.model_json_schema(by_alias=True)["properties"])
    assert {"host", "port", "database", "user", "password", "update_method"} <= fields
    assert {"replication_slot", "publication_name"} <= fields
    assert SERVICE.secret_paths == frozenset({("password",)})
    with pytest.raises(SourceError, match="replication_slot"):
        SERVICE.tables({"schema": "s", "host": "h", "database": "d", "user": "u", "password": "p"})


def test_tables_are_discovered_with_their_primary_keys(pg_server: PostgresServer, db: str) -> None:
    pg_server.execute(
        db,
        "CREATE TABLE lines (order_id int, line int, PRIMARY KEY (order_id, line))",
        "CREATE TABLE log (at timestamptz, message text)",
        "CREATE SCHEMA other",
        "CREATE TABLE other.hidden (id int PRIMARY KEY)",
    )
    assert SERVICE.tables(config_for(pg_server, db)) == [
        TableSpec("items", ("id",)),
        TableSpec("lines", ("order_id", "line")),
        TableSpec("log", ()),
    ]
    assert SERVICE.tables(config_for(pg_server, db, tables=["log"])) == [TableSpec("log", ())]
    assert SERVICE.tables(config_for(pg_server, db, source_schema="other")) == [TableSpec("hidden", ("id",))]
    with pytest.raises(SourceError, match="no table 'nope'"):
        SERVICE.tables(config_for(pg_server, db, tables=["nope"]))


def test_the_host_is_checked_by_the_outbound_guard(
    pg_server: PostgresServer, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_loopback(monkeypatch, False)
    with pytest.raises(SourceError, match="loopback"):
        SERVICE.tables(config_for(pg_server, db))


def test_wrong_password_is_an_auth_error(pg_server: PostgresServer, db: str) -> None:
    with pytest.raises(SourceAuthError, match="password authentication failed"):
        SERVICE.tables(config_for(pg_server, db, password="wrong"))


# ---- historical sync --------------------------------------------------------------------------------------


def test_historical_sync_reads_every_row_in_checkpointed_pages(
    pg_server: PostgresServer, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(extract_module, "PAGE_ROWS", 10)
    result = run(config_for(pg_server, db), {})
    pages = [op for op in result.operations if isinstance(op, Upserts)]
    assert [len(p.rows) for p in pages] == [10, 10, 5]
    assert result.live() == source_rows(pg_server, db)
    afters = [c["tables"]["items"].get("after") for c in result.checkpoints[:2]]
    assert afters == [["10"], ["20"]]
    assert result.state["tables"]["items"] == {"done": True}


def test_historical_sync_resumes_mid_table_after_the_last_committed_page(
    pg_server: PostgresServer, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(extract_module, "PAGE_ROWS", 10)
    config = config_for(pg_server, db)
    first = run(config, {}, stop_after_checkpoints=1)  # a crash after the first page's checkpoint
    resumed = run(config, first.state)
    read_again = [row["id"] for op in resumed.operations if isinstance(op, Upserts) for row in op.rows]
    assert read_again == list(range(11, 26))  # the committed page is not read again
    assert {**first.live(), **resumed.live()} == source_rows(pg_server, db)


def test_composite_and_text_keys_page_in_key_order(
    pg_server: PostgresServer, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(extract_module, "PAGE_ROWS", 3)
    pg_server.execute(
        db,
        "CREATE TABLE lines (region text, n int, v int, PRIMARY KEY (region, n))",
        "INSERT INTO lines SELECT r, g, g "
        "FROM unnest(ARRAY['eu', 'us', 'o''brien']) r, generate_series(1, 3) g",
    )
    result = run(config_for(pg_server, db, tables=["lines"]), {})
    keys = [(row["region"], row["n"]) for row in historical_rows(result, "lines")]
    assert len(keys) == 9 and len(set(keys)) == 9
    assert keys == sorted(keys)


def test_table_without_a_primary_key_is_read_whole(pg_server: PostgresServer, db: str) -> None:
    pg_server.execute(
        db, "CREATE TABLE log (n int, message text)", "INSERT INTO log VALUES (1, 'a'), (1, 'a'), (2, 'b')"
    )
    result = run(config_for(pg_server, db, tables=["log"]), {})
    # Both copies of the duplicate row are read; the destination collapses them by _fivetran_id.
    assert sorted(r["n"] for r in historical_rows(result, "log")) == [1, 1, 2]
    assert result.state["tables"]["log"] == {"done": True}


TYPED = (
    "CREATE TABLE typed (id bigint PRIMARY KEY, small smallint, big numeric, flag boolean, born date, "
    "seen timestamp, at timestamptz, doc json, docb jsonb, uid uuid, tags text[], nums int[], raw bytea, "
    "span interval, note varchar(20), forever date, cash money)"
)
TYPED_ROW = (
    "INSERT INTO typed VALUES (1, 7, 12345678901234567890.123, true, '2024-02-29', '2024-01-02 03:04:05', "
    "'2024-01-02 03:04:05+02', '{\"a\": [1, 2]}', '{\"b\": {\"c\": null}}', "
    "'12345678-1234-5678-1234-567812345678', ARRAY['x', 'y'], ARRAY[1, 2], '\\x00ff', '1 day 2 hours', 'hi', "
    "'infinity', 12.5)"
)
EXPECTED = {
    "id": 1,
    "small": 7,
    "big": Decimal("12345678901234567890.123"),
    "flag": True,
    "born": date(2024, 2, 29),
    "seen": datetime(2024, 1, 2, 3, 4, 5),
    "at": datetime(2024, 1, 2, 1, 4, 5, tzinfo=UTC),
    "doc": {"a": [1, 2]},
    "docb": {"b": {"c": None}},
    "uid": UUID("12345678-1234-5678-1234-567812345678"),
    "tags": ["x", "y"],
    "nums": [1, 2],
    "raw": b"\x00\xff",
    "span": "1 day 02:00:00",
    "note": "hi",
    "forever": "infinity",
    "cash": "$12.50",
}


def test_common_types_map_to_the_same_values_in_historical_and_replicated_reads(
    pg_server: PostgresServer, db: str
) -> None:
    pg_server.execute(db, TYPED, TYPED_ROW)
    config = config_for(pg_server, db, tables=["typed"])
    historical = run(config, {})
    assert historical.live("typed")[1] == EXPECTED
    pg_server.execute(db, "UPDATE typed SET id = 2", "UPDATE typed SET id = 1")
    replicated = run(config, historical.state)
    assert replicated.live("typed")[1] == EXPECTED


# ---- logical replication ----------------------------------------------------------------------------------


def test_changes_arrive_as_upserts_and_deletes_and_the_slot_waits_for_the_checkpoint(
    pg_server: PostgresServer, db: str
) -> None:
    config = config_for(pg_server, db)
    historical = run(config, {})
    pg_server.execute(
        db,
        "UPDATE items SET name = 'changed' WHERE id = 2",
        "DELETE FROM items WHERE id = 3",
        "INSERT INTO items VALUES (100, 'new', 1)",
        "UPDATE items SET id = 200 WHERE id = 1",
        "INSERT INTO items VALUES (300, 'short-lived', 1)",
        "DELETE FROM items WHERE id = 300",
    )
    before = slot_position(pg_server, db)
    incremental = run(config, historical.state)
    upserted = {row["id"] for op in incremental.operations if isinstance(op, Upserts) for row in op.rows}
    deleted = {key["id"] for op in incremental.operations if isinstance(op, Deletes) for key in op.keys}
    assert upserted == {2, 100, 200}
    assert deleted == {1, 3, 300}
    assert slot_position(pg_server, db) == before  # peeked, not consumed
    assert pgoutput.parse_lsn(incremental.state["lsn"]) > pgoutput.parse_lsn(before)

    replay = run(config, historical.state)  # the checkpoint never committed: the same changes again
    assert replay.operations == incremental.operations

    after = run(config, incremental.state)  # committed: the slot moves to it, nothing is read twice
    assert [op for op in after.operations if not isinstance(op, Checkpoint)] == []
    assert slot_position(pg_server, db) == incremental.state["lsn"]


def test_changes_during_the_historical_sync_are_replayed_after_it(
    pg_server: PostgresServer, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(extract_module, "PAGE_ROWS", 10)
    config = config_for(pg_server, db)
    model = Run()
    first = run(config, {}, into=model, stop_after_checkpoints=1)
    # Between two pages: a row already read changes, a row not yet read is deleted.
    pg_server.execute(db, "UPDATE items SET name = 'edited' WHERE id = 5", "DELETE FROM items WHERE id = 15")
    state = first.state
    model.checkpoints.clear()
    run(config, state, into=model)
    assert model.live() == source_rows(pg_server, db)
    assert model.live()[5]["name"] == "edited" and 15 not in model.live()


def test_windows_end_at_transaction_boundaries_with_their_own_lsn(
    pg_server: PostgresServer, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = config_for(pg_server, db)
    historical = run(config, {})
    monkeypatch.setattr(extract_module, "WINDOW_CHANGES", 3)
    for n in range(4):
        pg_server.execute(
            db, f"UPDATE items SET name = 'pass {n}' WHERE id <= 2"
        )  # 2 changes per transaction
    incremental = run(config, historical.state)
    lsns = [pgoutput.parse_lsn(c["lsn"]) for c in incremental.checkpoints]
    assert lsns == sorted(lsns) and len(set(lsns)) == 2  # two windows: 4 changes, then 4
    # Resuming from the first window's checkpoint reads only the second window's changes.
    middle = next(c for c in incremental.checkpoints if c["lsn"] != historical.state["lsn"])
    rest = run(config, middle)
    assert [len(op.rows) for op in rest.operations if isinstance(op, Upserts)] == [2]
    assert rest.live()[1]["name"] == "pass 3"


def test_keyless_table_with_full_replica_identity_replicates_updates_and_deletes(
    pg_server: PostgresServer, db: str
) -> None:
    pg_server.execute(
        db,
        "CREATE TABLE log (n int, message text)",
        "ALTER TABLE log REPLICA IDENTITY FULL",
        "INSERT INTO log VALUES (1, 'a'), (2, 'b')",
    )
    config = config_for(pg_server, db, tables=["log"])
    historical = run(config, {})
    pg_server.execute(db, "UPDATE log SET message = 'B' WHERE n = 2", "DELETE FROM log WHERE n = 1")
    incremental = run(config, historical.state)
    upserts = [row for op in incremental.operations if isinstance(op, Upserts) for row in op.rows]
    deletes = [key for op in incremental.operations if isinstance(op, Deletes) for key in op.keys]
    assert upserts == [{"n": 2, "message": "B"}]
    assert sorted(deletes, key=lambda k: k["n"]) == [{"n": 1, "message": "a"}, {"n": 2, "message": "b"}]


def test_an_update_that_leaves_a_toasted_value_alone_keeps_it(pg_server: PostgresServer, db: str) -> None:
    pg_server.execute(
        db,
        "CREATE TABLE docs (id int PRIMARY KEY, body text, views int)",
        "ALTER TABLE docs ALTER body SET STORAGE EXTERNAL",  # stored out of line, never compressed inline
        "INSERT INTO docs VALUES (1, repeat('x', 100000), 0)",
    )
    config = config_for(pg_server, db, tables=["docs"])
    historical = run(config, {})
    pg_server.execute(db, "UPDATE docs SET views = 1")
    incremental = run(config, historical.state)
    (row,) = [row for op in incremental.operations if isinstance(op, Upserts) for row in op.rows]
    assert row == {"id": 1, "body": "x" * 100000, "views": 1}


def test_tables_outside_the_selection_are_ignored(pg_server: PostgresServer, db: str) -> None:
    pg_server.execute(db, "CREATE TABLE other (id int PRIMARY KEY)")
    config = config_for(pg_server, db, tables=["items"])
    historical = run(config, {})
    pg_server.execute(db, "INSERT INTO other VALUES (1)", "UPDATE items SET name = 'x' WHERE id = 1")
    incremental = run(config, historical.state)
    assert {op.table for op in incremental.operations if isinstance(op, Upserts)} == {"items"}


def test_missing_slot_or_publication_says_how_to_create_it(pg_server: PostgresServer, db: str) -> None:
    with pytest.raises(SourceError, match=r"pg_create_logical_replication_slot\('nope', 'pgoutput'\)"):
        run(config_for(pg_server, db, replication_slot="nope"), {})
    with pytest.raises(SourceError, match="CREATE PUBLICATION"):
        run(config_for(pg_server, db, publication_name="nope"), {})


# ---- XMIN -------------------------------------------------------------------------------------------------


def test_xmin_reads_only_rows_changed_since_the_last_pass_and_no_deletes(
    pg_server: PostgresServer, db: str
) -> None:
    config = config_for(pg_server, db, update_method="XMIN", replication_slot=None, publication_name=None)
    historical = run(config, {})
    assert len(historical.live()) == 25 and "xmin" in historical.state
    pg_server.execute(
        db,
        "UPDATE items SET name = 'changed' WHERE id = 2",
        "INSERT INTO items VALUES (100, 'new', 1)",
        "DELETE FROM items WHERE id = 3",
    )
    incremental = run(config, historical.state)
    assert [row["id"] for op in incremental.operations if isinstance(op, Upserts) for row in op.rows] == [
        2,
        100,
    ]
    assert not [op for op in incremental.operations if isinstance(op, Deletes)]
    quiet = run(config, incremental.state)
    assert [op for op in quiet.operations if isinstance(op, Upserts)] == []


def test_switching_the_method_starts_over(pg_server: PostgresServer, db: str) -> None:
    wal = run(config_for(pg_server, db), {})
    xmin = run(config_for(pg_server, db, update_method="XMIN"), wal.state)
    assert len(xmin.live()) == 25


# ---- setup tests ------------------------------------------------------------------------------------------


def statuses(results: list[Any]) -> list[str]:
    return [r.status for r in results]


def test_setup_tests_pass_on_a_ready_database(pg_server: PostgresServer, db: str) -> None:
    results = SERVICE.setup_tests(config_for(pg_server, db), SetupTestOptions())
    assert statuses(results) == ["PASSED"] * 6, results


def test_setup_tests_name_the_failing_step(pg_server: PostgresServer, db: str) -> None:
    unreachable = SERVICE.setup_tests(config_for(pg_server, db, port=1), SetupTestOptions())
    assert statuses(unreachable) == ["FAILED"] + ["SKIPPED"] * 5
    assert "Cannot reach 127.0.0.1:1" in unreachable[0].message

    bad_password = SERVICE.setup_tests(config_for(pg_server, db, password="nope"), SetupTestOptions())
    assert statuses(bad_password) == ["PASSED", "FAILED"] + ["SKIPPED"] * 4
    assert "password authentication failed" in bad_password[1].message

    no_database = SERVICE.setup_tests({**config_for(pg_server, db), "database": "nope"}, SetupTestOptions())
    assert no_database[1].status == "FAILED" and "no database 'nope'" in no_database[1].message

    missing = SERVICE.setup_tests(
        config_for(pg_server, db, replication_slot="other_slot", publication_name="other_pub"),
        SetupTestOptions(),
    )
    assert statuses(missing) == ["PASSED", "PASSED", "PASSED", "PASSED", "FAILED", "FAILED"]
    assert "pg_create_logical_replication_slot('other_slot', 'pgoutput')" in missing[4].message
    assert 'CREATE PUBLICATION "other_pub"' in missing[5].message


def test_setup_tests_list_unreadable_tables_and_missing_replication_rights(
    pg_server: PostgresServer, db: str
) -> None:
    reader = f"reader_{db}"
    pg_server.create_role(db, reader, "reader-pw")
    pg_server.execute(db, "CREATE TABLE secret (id int PRIMARY KEY)", f"GRANT SELECT ON items TO {reader}")
    pg_server.execute(db, "CREATE PUBLICATION only_items FOR TABLE items")
    config = config_for(pg_server, db, user=reader, password="reader-pw")
    results = SERVICE.setup_tests(config, SetupTestOptions())
    assert results[2].status == "FAILED"
    assert f'GRANT SELECT ON "public"."secret" TO "{reader}"' in results[2].message
    assert (
        results[4].status == "FAILED"
        and "ALTER ROLE" in results[4].message
        and "REPLICATION" in results[4].message
    )

    narrow = SERVICE.setup_tests(config_for(pg_server, db, publication_name="only_items"), SetupTestOptions())
    assert narrow[5].status == "FAILED"
    assert 'ALTER PUBLICATION "only_items" ADD TABLE "public"."secret"' in narrow[5].message


def test_xmin_setup_skips_the_replication_checks(pg_server: PostgresServer, db: str) -> None:
    results = SERVICE.setup_tests(config_for(pg_server, db, update_method="XMIN"), SetupTestOptions())
    assert statuses(results) == ["PASSED", "PASSED", "PASSED", "SKIPPED", "SKIPPED", "SKIPPED"]


def test_setup_tests_report_a_wal_level_below_logical() -> None:
    with postgres_server(wal_level="replica") as server:
        database = server.create_database()
        config = config_for(server, database)
        results = SERVICE.setup_tests(config, SetupTestOptions())
        assert results[3].status == "FAILED"
        assert "wal_level is 'replica'" in results[3].message and "wal_level = logical" in results[3].message


def test_setup_tests_create_the_slot_and_publication_when_asked(pg_server: PostgresServer, db: str) -> None:
    config = config_for(
        pg_server,
        db,
        replication_slot="made_slot",
        publication_name="made_pub",
        create_slot_and_publication=True,
    )
    results = SERVICE.setup_tests(config, SetupTestOptions())
    assert statuses(results) == ["PASSED"] * 6, results
    assert "Created the replication slot 'made_slot'" in results[4].message
    assert "Created the publication 'made_pub'" in results[5].message
    with pg_server.connect(db) as con:
        assert con.execute(
            "SELECT plugin FROM pg_replication_slots WHERE slot_name = 'made_slot'"
        ).fetchone() == ("pgoutput",)
        published = con.execute("SELECT tablename FROM pg_publication_tables WHERE pubname = 'made_pub'")
        assert published.fetchall() == [("items",)]
    # A table added later is added to the publication by the next setup tests.
    pg_server.execute(db, "CREATE TABLE extra (id int PRIMARY KEY)")
    again = SERVICE.setup_tests(config, SetupTestOptions())
    assert again[4].status == "PASSED" and "is a pgoutput slot" in again[4].message
    assert again[5].status == "PASSED" and "Added 1 table(s)" in again[5].message


def test_setup_tests_say_what_an_administrator_must_run_when_creation_is_refused(
    pg_server: PostgresServer, db: str
) -> None:
    owner = f"owner_{db}"
    pg_server.create_role(db, owner, "owner-pw", "REPLICATION")
    pg_server.execute(db, f"GRANT SELECT ON items TO {owner}", f'GRANT CREATE ON DATABASE "{db}" TO {owner}')
    config = config_for(
        pg_server,
        db,
        user=owner,
        password="owner-pw",
        replication_slot="their_slot",
        publication_name="their_pub",
        create_slot_and_publication=True,
    )
    results = SERVICE.setup_tests(config, SetupTestOptions())
    assert results[4].status == "PASSED"  # REPLICATION lets it create the slot
    assert results[5].status == "FAILED"
    assert "Could not create the publication 'their_pub' (must be owner of table items)" in results[5].message
    assert (
        'the tables\' owner can run CREATE PUBLICATION "their_pub" FOR TABLE "public"."items"'
        in results[5].message
    )
