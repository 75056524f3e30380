"""The postgres destination on a real server: COPY and one merge, soft deletes, evolution, replays."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from sluice.contract import TableSpec
from sluice.destinations import DestinationError, PostgresDestinationConfig, open_destination
from sluice.destinations.postgres import PostgresDestination, setup_tests, widen
from tests.support.loopback import loopback_allowed, set_loopback
from tests.support.postgres import SUPERUSER, SUPERUSER_PASSWORD, PostgresServer

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
USERS = TableSpec("users", ("id",))


@pytest.fixture(autouse=True)
def _loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from loopback_allowed(monkeypatch)


def config_for(server: PostgresServer, database: str, **extra: Any) -> dict[str, Any]:
    return {
        "host": server.host,
        "port": server.port,
        "database": database,
        "user": SUPERUSER,
        "password": SUPERUSER_PASSWORD,
        **extra,
    }


@pytest.fixture
def dest(pg_server: PostgresServer, pg_database: str) -> Iterator[PostgresDestination]:
    destination = open_destination("postgres", config_for(pg_server, pg_database), "acct_example")
    assert isinstance(destination, PostgresDestination)
    yield destination
    destination.close()


def rows_of(
    dest: PostgresDestination, table: str, schema: str = "crm", order: str = "1"
) -> list[dict[str, Any]]:
    cursor = dest._connection().execute(f'SELECT * FROM "{schema}"."{table}" ORDER BY {order}')  # type: ignore[arg-type]
    names = [column.name for column in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def types_of(dest: PostgresDestination, table: str, schema: str = "crm") -> dict[str, str]:
    found = (
        dest._connection()
        .execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped",
            [f'"{schema}"."{table}"'],
        )
        .fetchall()
    )
    return dict(found)


def test_new_table_gets_types_from_the_values_and_system_columns(dest: PostgresDestination) -> None:
    rows = [
        {
            "id": 1,
            "name": "Ada",
            "score": 1.5,
            "active": True,
            "joined": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
            "born": date(1990, 1, 1),
            "meta": {"a": 1},
            "price": Decimal("12.50"),
            "uid": UUID("12345678-1234-5678-1234-567812345678"),
            "blob": b"\x00\x01",
            "tags": ["x", "y"],
        },
        {"id": 2, "name": "Bo", "score": 2.0, "active": False, "joined": None, "meta": [1, 2]},
    ]

    assert dest.upsert("crm", USERS, rows, T0, "b1") == 2

    assert types_of(dest, "users") == {
        "id": "bigint",
        "name": "text",
        "score": "double precision",
        "active": "boolean",
        "joined": "timestamp with time zone",
        "born": "date",
        "meta": "jsonb",
        "price": "numeric",
        "uid": "uuid",
        "blob": "bytea",
        "tags": "jsonb",
        "_fivetran_synced": "timestamp with time zone",
        "_fivetran_deleted": "boolean",
    }
    first, second = rows_of(dest, "users")
    assert first["price"] == Decimal("12.50") and first["tags"] == ["x", "y"] and first["blob"] == b"\x00\x01"
    assert first["_fivetran_synced"] == T0 and first["_fivetran_deleted"] is False
    assert second["meta"] == [1, 2] and second["price"] is None
    key = dest._connection().execute(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'crm.users'::regclass AND contype = 'p'"
    )
    assert key.fetchone() == ("PRIMARY KEY (id)",)


def test_second_upsert_of_a_key_replaces_the_whole_row(dest: PostgresDestination) -> None:
    dest.upsert("crm", USERS, [{"id": 1, "name": "Ada", "city": "Paris"}], T0, "b1")
    dest.upsert("crm", USERS, [{"id": 1, "name": "Ada L."}], T1, "b2")
    (row,) = rows_of(dest, "users")
    assert row["name"] == "Ada L." and row["city"] is None and row["_fivetran_synced"] == T1


def test_replayed_batch_changes_nothing_not_even_synced(dest: PostgresDestination) -> None:
    batch = [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Bo"}]
    dest.upsert("crm", USERS, batch, T0, "b1")
    before = dest._connection().execute("SELECT xmin::text, * FROM crm.users ORDER BY id").fetchall()
    dest.upsert("crm", USERS, batch, T1, "b1")
    after = dest._connection().execute("SELECT xmin::text, * FROM crm.users ORDER BY id").fetchall()
    assert after == before  # same tuples: the merge did not rewrite them


def test_replayed_delete_changes_nothing(dest: PostgresDestination) -> None:
    dest.upsert("crm", USERS, [{"id": 1, "name": "Ada"}], T0, "b1")
    assert dest.delete("crm", USERS, [{"id": 1}], T1, "b2") == 1
    assert dest.delete("crm", USERS, [{"id": 1}], T1 + timedelta(hours=1), "b2") == 0
    (row,) = rows_of(dest, "users")
    assert row["_fivetran_deleted"] is True and row["_fivetran_synced"] == T1


def test_last_row_of_a_key_in_one_batch_wins(dest: PostgresDestination) -> None:
    dest.upsert("crm", USERS, [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}, {"id": 1, "v": "c"}], T0, "b1")
    assert [(r["id"], r["v"]) for r in rows_of(dest, "users")] == [(1, "c"), (2, "b")]


def test_new_column_in_a_later_batch_is_added(dest: PostgresDestination) -> None:
    dest.upsert("crm", USERS, [{"id": 1, "name": "Ada"}], T0, "b1")
    dest.upsert("crm", USERS, [{"id": 2, "name": "Bo", "age": 30}], T1, "b2")
    assert types_of(dest, "users")["age"] == "bigint"
    assert [(r["id"], r["age"]) for r in rows_of(dest, "users")] == [(1, None), (2, 30)]


def test_float_into_integer_column_widens_to_double(dest: PostgresDestination) -> None:
    dest.upsert("crm", USERS, [{"id": 1, "n": 3}], T0, "b1")
    dest.upsert("crm", USERS, [{"id": 2, "n": 2.5}], T1, "b2")
    assert types_of(dest, "users")["n"] == "double precision"
    assert [r["n"] for r in rows_of(dest, "users")] == [3.0, 2.5]


def test_aware_and_naive_timestamps_in_one_batch_land_with_time_zone(dest: PostgresDestination) -> None:
    naive = datetime(2024, 1, 1, 12, 0)
    dest.upsert("crm", USERS, [{"id": 1, "at": naive}, {"id": 2, "at": T0}], T0, "b1")
    assert types_of(dest, "users")["at"] == "timestamp with time zone"
    assert [r["at"] for r in rows_of(dest, "users")] == [naive.replace(tzinfo=UTC), T0]


def test_huge_integer_widens_to_numeric(dest: PostgresDestination) -> None:
    dest.upsert("crm", USERS, [{"id": 1, "n": 3}], T0, "b1")
    dest.upsert("crm", USERS, [{"id": 2, "n": 2**70}], T1, "b2")
    assert types_of(dest, "users")["n"] == "numeric"
    assert [r["n"] for r in rows_of(dest, "users")] == [3, 2**70]


def test_type_conflict_widens_to_text(dest: PostgresDestination) -> None:
    dest.upsert("crm", USERS, [{"id": 1, "flag": True}], T0, "b1")
    dest.upsert("crm", USERS, [{"id": 2, "flag": "maybe"}], T1, "b2")
    assert types_of(dest, "users")["flag"] == "text"
    assert [r["flag"] for r in rows_of(dest, "users")] == ["true", "maybe"]


def test_mixed_values_in_one_batch_of_a_text_column_are_written_as_text(dest: PostgresDestination) -> None:
    # Text columns skip the conversion only for batches whose values are all str.
    dest.upsert("crm", USERS, [{"id": 1, "note": "plain"}], T0, "b1")
    dest.upsert(
        "crm", USERS, [{"id": 2, "note": True}, {"id": 3, "note": "x"}, {"id": 4, "note": {"a": 1}}], T1, "b2"
    )
    assert types_of(dest, "users")["note"] == "text"
    assert [r["note"] for r in rows_of(dest, "users")] == ["plain", "true", "x", '{"a":1}']


def test_values_of_every_binary_copied_type_land_as_they_are(dest: PostgresDestination) -> None:
    # Each column holds one Python type that matches its column type: the batch is copied in binary.
    row = {
        "id": 1,
        "price": 2.5,
        "ok": True,
        "at": T0,
        "local": datetime(2024, 5, 1, 9, 30),
        "day": date(2024, 5, 1),
        "ref": UUID("12345678-1234-5678-1234-567812345678"),
        "blob": b"\x00\xff",
        "name": "Zoë",
        "doc": {"a": [1, 2]},
        "empty": None,
    }
    dest.upsert("crm", USERS, [row], T0, "b1")
    # Then values that need the text path into the same columns (an int into double precision, a
    # date into a timestamp column that widens, a naive timestamp into the aware one).
    later = {**row, "id": 2, "price": 3, "local": date(2024, 5, 2), "at": datetime(2024, 5, 1, 12, 0)}
    dest.upsert("crm", USERS, [later], T1, "b2")
    got = rows_of(dest, "users")
    assert {k: got[0][k] for k in row} == {**row, "blob": b"\x00\xff"}
    assert got[1]["price"] == 3.0 and got[1]["local"] == datetime(2024, 5, 2) and got[1]["at"] == T0


def test_object_into_scalar_column_widens_to_jsonb(dest: PostgresDestination) -> None:
    dest.upsert("crm", USERS, [{"id": 1, "x": 5}], T0, "b1")
    dest.upsert("crm", USERS, [{"id": 2, "x": {"a": [1]}}], T1, "b2")
    assert types_of(dest, "users")["x"] == "jsonb"
    assert [r["x"] for r in rows_of(dest, "users")] == [5, {"a": [1]}]


def test_key_column_type_widens_in_place(dest: PostgresDestination) -> None:
    dest.upsert("crm", USERS, [{"id": 1, "v": "a"}], T0, "b1")
    dest.upsert("crm", USERS, [{"id": "x-2", "v": "b"}], T1, "b2")
    assert types_of(dest, "users")["id"] == "text"
    assert [r["id"] for r in rows_of(dest, "users")] == ["1", "x-2"]


def test_a_column_seen_only_as_null_takes_the_type_of_its_first_values_in_a_later_run(
    dest: PostgresDestination, pg_server: PostgresServer, pg_database: str
) -> None:
    dest.upsert("crm", USERS, [{"id": 1, "later": None}], T0, "b1")
    assert types_of(dest, "users")["later"] == "text"
    dest.close()
    with PostgresDestination(PostgresDestinationConfig(**config_for(pg_server, pg_database))) as again:
        again.upsert("crm", USERS, [{"id": 2, "later": 7}], T1, "b2")
        assert types_of(again, "users")["later"] == "bigint"


def test_soft_delete_keeps_the_row_and_upsert_revives_it(dest: PostgresDestination) -> None:
    dest.upsert("crm", USERS, [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Bo"}], T0, "b1")
    assert dest.delete("crm", USERS, [{"id": 2}, {"id": 99}], T1, "b2") == 1
    assert [(r["id"], r["_fivetran_deleted"]) for r in rows_of(dest, "users")] == [(1, False), (2, True)]
    dest.upsert("crm", USERS, [{"id": 2, "name": "Bo"}], T1, "b3")
    assert rows_of(dest, "users")[1]["_fivetran_deleted"] is False


def test_delete_before_the_table_exists_is_a_no_op(dest: PostgresDestination) -> None:
    assert dest.delete("crm", USERS, [{"id": 1}], T0, "b1") == 0


def test_composite_primary_key(dest: PostgresDestination) -> None:
    lines = TableSpec("lines", ("order_id", "line"))
    dest.upsert(
        "crm", lines, [{"order_id": 1, "line": 1, "q": 1}, {"order_id": 1, "line": 2, "q": 2}], T0, "b1"
    )
    dest.upsert("crm", lines, [{"order_id": 1, "line": 2, "q": 5}], T1, "b2")
    assert dest.delete("crm", lines, [{"order_id": 1, "line": 1}], T1, "b3") == 1
    got = [(r["line"], r["q"], r["_fivetran_deleted"]) for r in rows_of(dest, "lines", order="2")]
    assert got == [(1, 1, True), (2, 5, False)]


def test_table_without_primary_key_is_keyed_by_a_row_hash(dest: PostgresDestination) -> None:
    events = TableSpec("events", ())
    dest.upsert(
        "crm", events, [{"kind": "a", "n": 1}, {"kind": "a", "n": 1}, {"kind": "b", "n": 2}], T0, "b1"
    )
    dest.upsert("crm", events, [{"kind": "a", "n": 1}], T1, "b2")
    assert len(rows_of(dest, "events")) == 2
    assert types_of(dest, "events")["_fivetran_id"] == "text"
    assert dest.delete("crm", events, [{"kind": "b", "n": 2}], T1, "b3") == 1
    assert sorted(r["_fivetran_deleted"] for r in rows_of(dest, "events")) == [False, True]


def test_any_column_name_works(dest: PostgresDestination) -> None:
    odd = TableSpec('we"ird table', ("Key Column",))
    dest.upsert("crm", odd, [{"Key Column": 1, "a'b": "x", "select": 1, "Mixed": 2}], T0, "b1")
    (row,) = rows_of(dest, 'we""ird table')
    assert row["a'b"] == "x" and row["select"] == 1 and row["Mixed"] == 2


def test_rows_without_a_primary_key_value_are_refused(dest: PostgresDestination) -> None:
    with pytest.raises(DestinationError, match="primary key"):
        dest.upsert("crm", USERS, [{"id": None, "name": "x"}], T0, "b1")
    with pytest.raises(DestinationError):
        dest.flush()  # the failure is remembered: no checkpoint may follow it


def test_a_failed_batch_leaves_nothing_half_written(dest: PostgresDestination) -> None:
    dest.upsert("crm", USERS, [{"id": 1, "d": date(2024, 1, 1)}], T0, "b1")
    # A new column and a value the existing column cannot take: the whole batch rolls back.
    dest._connection().execute("ALTER TABLE crm.users ADD CONSTRAINT positive CHECK (id > 0)")
    with pytest.raises(DestinationError, match="users"):
        dest.upsert("crm", USERS, [{"id": -1, "d": date(2024, 1, 2), "extra": 1}], T1, "b2")
    assert "extra" not in types_of(dest, "users")
    assert [r["id"] for r in rows_of(dest, "users")] == [1]


def test_schema_prefix_names_the_schema(pg_server: PostgresServer, pg_database: str) -> None:
    with open_destination(
        "postgres", config_for(pg_server, pg_database, schema_prefix="lake"), "acct_example"
    ) as dest:
        assert isinstance(dest, PostgresDestination)
        dest.upsert("crm", USERS, [{"id": 1}], T0, "b1")
        assert rows_of(dest, "users", schema="lake_crm")[0]["id"] == 1


def test_loopback_is_refused_unless_allowed(
    pg_server: PostgresServer, pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_loopback(monkeypatch, False)
    with pytest.raises(Exception, match="loopback"):
        open_destination("postgres", config_for(pg_server, pg_database), "acct_example")


def test_wrong_password_is_a_clear_destination_error(pg_server: PostgresServer, pg_database: str) -> None:
    with pytest.raises(DestinationError, match="password authentication failed"):
        open_destination("postgres", config_for(pg_server, pg_database, password="wrong"), "acct_example")


def test_writes_after_close_are_refused(dest: PostgresDestination) -> None:
    dest.close()
    dest.close()
    with pytest.raises(DestinationError, match="closed"):
        dest.upsert("crm", USERS, [{"id": 1}], T0, "b1")


def test_setup_tests_pass_and_leave_nothing_behind(
    dest: PostgresDestination, pg_server: PostgresServer, pg_database: str
) -> None:
    results = setup_tests(PostgresDestinationConfig(**config_for(pg_server, pg_database)))
    assert [r.status for r in results] == ["PASSED", "PASSED", "PASSED"], results
    left = dest._connection().execute(
        "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'sluice_setup_test_%'"
    )
    assert left.fetchone() == (0,)


def test_setup_tests_say_which_step_failed(pg_server: PostgresServer, pg_database: str) -> None:
    bad = setup_tests(PostgresDestinationConfig(**config_for(pg_server, pg_database, password="nope")))
    assert [r.status for r in bad] == ["FAILED", "SKIPPED", "SKIPPED"]
    assert "password authentication failed" in bad[0].message
    reader = f"reader_{pg_database}"  # roles belong to the whole server: one per test
    pg_server.create_role(pg_database, reader, "reader-pw")
    weak = setup_tests(
        PostgresDestinationConfig(**config_for(pg_server, pg_database, user=reader, password="reader-pw"))
    )
    assert [r.status for r in weak] == ["PASSED", "FAILED", "SKIPPED"]
    assert "cannot create schemas" in weak[1].message and "GRANT CREATE ON DATABASE" in weak[1].message


@pytest.mark.parametrize(
    ("existing", "incoming", "wanted"),
    [
        ("bigint", "bigint", "bigint"),
        ("integer", "bigint", "bigint"),
        ("bigint", "double precision", "double precision"),
        ("bigint", "numeric", "numeric"),
        ("double precision", "numeric", "numeric"),
        ("date", "timestamp with time zone", "timestamp with time zone"),
        ("timestamp with time zone", "date", "timestamp with time zone"),
        ("boolean", "bigint", "text"),
        ("text", "jsonb", "text"),
        ("character varying(20)", "bigint", "character varying(20)"),
        ("jsonb", "text", "jsonb"),
        ("uuid", "jsonb", "jsonb"),
        ("uuid", "text", "text"),
    ],
)
def test_widen(existing: str, incoming: str, wanted: str) -> None:
    assert widen(existing, incoming) == wanted
