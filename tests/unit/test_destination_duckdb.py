"""The duckdb destination: merge by primary key, soft deletes, schema evolution, replays."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from sluice.contract import TableSpec
from sluice.destinations import DestinationError, open_destination
from sluice.destinations.duckdb import DuckDbDestination, widen
from sluice.settings import get_settings

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
USERS = TableSpec("users", ("id",))
ACCOUNT = "acct_unit"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("SLUICE_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


@pytest.fixture
def dest(data_dir: Path) -> Iterator[DuckDbDestination]:
    destination = open_destination("duckdb", {"path": "warehouse.duckdb"}, ACCOUNT)
    assert isinstance(destination, DuckDbDestination)
    yield destination
    destination.close()


def rows_of(
    dest: DuckDbDestination, table: str, schema: str = "crm", order: str = "1"
) -> list[dict[str, Any]]:
    dest.flush()  # what the engine does before a checkpoint: staged rows are merged
    con = dest._connection()
    result = con.execute(f'SELECT * FROM "{dest._catalog}"."{schema}"."{table}" ORDER BY {order}')
    names = [column[0] for column in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def types_of(dest: DuckDbDestination, table: str, schema: str = "crm") -> dict[str, str]:
    found = (
        dest._connection()
        .execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = $1 AND table_name = $2",
            [schema, table],
        )
        .fetchall()
    )
    return dict(found)


def test_new_table_gets_inferred_types_and_system_columns(dest: DuckDbDestination) -> None:
    rows = [
        {
            "id": 1,
            "name": "Ada",
            "score": 1.5,
            "active": True,
            "joined": "2024-01-02T03:04:05Z",
            "meta": {"a": 1},
        },
        {"id": 2, "name": "Bo", "score": 2.0, "active": False, "joined": None, "meta": [1, 2]},
    ]

    assert dest.upsert("crm", USERS, rows, T0, "b1") == 2

    types = types_of(dest, "users")
    assert types.pop("joined") in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMP")  # DuckDB 1.1 drops the zone
    assert types == {
        "id": "BIGINT",
        "name": "VARCHAR",
        "score": "DOUBLE",
        "active": "BOOLEAN",
        "meta": "JSON",
        "_fivetran_synced": "TIMESTAMP WITH TIME ZONE",
        "_fivetran_deleted": "BOOLEAN",
    }
    first = rows_of(dest, "users")[0]
    assert first["joined"] in (datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), datetime(2024, 1, 2, 3, 4, 5))
    assert first["meta"] == '{"a":1}'
    assert first["_fivetran_synced"] == T0
    assert first["_fivetran_deleted"] is False


def test_second_upsert_of_a_key_replaces_the_row(dest: DuckDbDestination) -> None:
    dest.upsert("crm", USERS, [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Bo"}], T0, "b1")

    dest.upsert("crm", USERS, [{"id": 1, "name": "Ada Lovelace"}], T1, "b2")

    assert [(r["id"], r["name"], r["_fivetran_synced"]) for r in rows_of(dest, "users")] == [
        (1, "Ada Lovelace", T1),
        (2, "Bo", T0),
    ]


def landed_without_flush(dest: DuckDbDestination, table: str = "users") -> list[tuple[Any, ...]]:
    """What the table holds now, without the flush `rows_of` does first."""
    return (
        dest._connection().execute(f'SELECT id, name FROM "warehouse"."crm"."{table}" ORDER BY id').fetchall()
    )


def test_staged_batches_merge_at_flush_with_the_last_row_of_a_key_winning(dest: DuckDbDestination) -> None:
    dest.upsert("crm", USERS, [{"id": 1, "name": "Ada"}], T0, "b1")  # creates the table
    T2 = T1 + timedelta(hours=1)
    dest.upsert("crm", USERS, [{"id": 1, "name": "Ada v2"}, {"id": 2, "name": "Bo"}], T1, "b2")
    dest.upsert("crm", USERS, [{"id": 1, "name": "Ada v3"}], T2, "b3")
    assert landed_without_flush(dest) == [(1, "Ada")]  # staged, not merged yet

    dest.flush()

    assert [(r["id"], r["name"], r["_fivetran_synced"]) for r in rows_of(dest, "users")] == [
        (1, "Ada v3", T2),
        (2, "Bo", T1),
    ]


def test_a_delete_lands_after_the_upserts_staged_before_it(dest: DuckDbDestination) -> None:
    dest.upsert("crm", USERS, [{"id": 1, "name": "Ada"}], T0, "b1")
    dest.upsert("crm", USERS, [{"id": 2, "name": "Bo"}], T0, "b2")
    dest.delete("crm", USERS, [{"id": 2}], T1, "b3")
    dest.upsert("crm", USERS, [{"id": 3, "name": "Cy"}], T1, "b4")

    assert [(r["id"], r["_fivetran_deleted"]) for r in rows_of(dest, "users")] == [
        (1, False),
        (2, True),
        (3, False),
    ]


def test_staged_rows_are_merged_once_past_the_size_limit(
    dest: DuckDbDestination, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sluice.destinations.duckdb as module

    dest.upsert("crm", USERS, [{"id": 1, "name": "Ada"}], T0, "b1")
    monkeypatch.setattr(module, "STAGED_BYTES_LIMIT", 60)
    dest.upsert("crm", USERS, [{"id": 2, "name": "Bo"}], T0, "b2")  # about 25 bytes of JSON
    assert landed_without_flush(dest) == [(1, "Ada")]
    dest.upsert("crm", USERS, [{"id": 3, "name": "Cy"}, {"id": 4, "name": "Di"}], T0, "b3")  # past 60
    assert landed_without_flush(dest) == [(1, "Ada"), (2, "Bo"), (3, "Cy"), (4, "Di")]


def test_rows_staged_but_never_flushed_do_not_land(data_dir: Path) -> None:
    with DuckDbDestination(dest_config("warehouse.duckdb"), ACCOUNT) as first:
        first.upsert("crm", USERS, [{"id": 1, "name": "Ada"}], T0, "b1")
        first.upsert("crm", USERS, [{"id": 2, "name": "Bo"}], T0, "b2")
    # No flush, so no checkpoint covers b2: a replay brings it again.
    with DuckDbDestination(dest_config("warehouse.duckdb"), ACCOUNT) as second:
        assert landed_without_flush(second) == [(1, "Ada")]


def test_upsert_replaces_the_whole_row_missing_columns_become_null(dest: DuckDbDestination) -> None:
    dest.upsert("crm", USERS, [{"id": 1, "name": "Ada", "city": "London"}], T0, "b1")

    dest.upsert("crm", USERS, [{"id": 1, "name": "Ada"}], T1, "b2")

    assert rows_of(dest, "users")[0]["city"] is None


def test_replayed_batch_leaves_the_same_rows(dest: DuckDbDestination) -> None:
    batch = [{"id": i, "name": f"user {i}", "score": i * 0.5} for i in range(50)]
    dest.upsert("crm", USERS, batch, T0, "b1")
    dest.upsert("crm", USERS, [{"id": 3, "name": "changed"}], T0, "b2")
    dest.delete("crm", USERS, [{"id": 4}], T0, "b3")
    before = rows_of(dest, "users")

    dest.upsert("crm", USERS, batch, T0, "b1")  # the engine replays since the last checkpoint
    dest.upsert("crm", USERS, [{"id": 3, "name": "changed"}], T0, "b2")
    dest.delete("crm", USERS, [{"id": 4}], T0, "b3")

    assert rows_of(dest, "users") == before
    assert len(before) == 50


def test_last_row_of_a_key_in_one_batch_wins(dest: DuckDbDestination) -> None:
    dest.upsert(
        "crm", USERS, [{"id": 1, "name": "first"}, {"id": 2, "name": "x"}, {"id": 1, "name": "last"}], T0, "b"
    )

    assert [(r["id"], r["name"]) for r in rows_of(dest, "users")] == [(1, "last"), (2, "x")]


def test_new_column_in_a_later_batch_is_added_as_nullable(dest: DuckDbDestination) -> None:
    dest.upsert("crm", USERS, [{"id": 1, "name": "Ada"}], T0, "b1")

    dest.upsert("crm", USERS, [{"id": 2, "name": "Bo", "age": 41, "tags": ["a"]}], T1, "b2")

    assert types_of(dest, "users")["age"] == "BIGINT"
    assert types_of(dest, "users")["tags"] == "JSON"
    assert [(r["id"], r["age"], r["tags"]) for r in rows_of(dest, "users")] == [
        (1, None, None),
        (2, 41, '["a"]'),
    ]


def test_later_batches_take_the_existing_column_types(dest: DuckDbDestination) -> None:
    dest.upsert("crm", USERS, [{"id": 1, "score": 1.5, "code": "A1"}], T0, "b1")

    # Integers into a DOUBLE column, numbers into a VARCHAR column: cast, the types stay.
    dest.upsert("crm", USERS, [{"id": 2, "score": 2, "code": 7}], T1, "b2")

    assert types_of(dest, "users")["score"] == "DOUBLE"
    assert types_of(dest, "users")["code"] == "VARCHAR"
    assert [(r["score"], r["code"]) for r in rows_of(dest, "users")] == [(1.5, "A1"), (2.0, "7")]


def test_float_into_integer_column_widens_to_double_instead_of_rounding(dest: DuckDbDestination) -> None:
    dest.upsert("crm", USERS, [{"id": 1, "amount": 10}], T0, "b1")

    dest.upsert("crm", USERS, [{"id": 2, "amount": 2.75}], T1, "b2")

    assert types_of(dest, "users")["amount"] == "DOUBLE"
    assert [r["amount"] for r in rows_of(dest, "users")] == [10.0, 2.75]


def test_type_conflict_widens_to_varchar_rather_than_failing(dest: DuckDbDestination) -> None:
    dest.upsert("crm", USERS, [{"id": 1, "zip": 12345, "seen": "2024-01-01T00:00:00Z"}], T0, "b1")

    dest.upsert("crm", USERS, [{"id": 2, "zip": "SW1A 1AA", "seen": "yesterday"}], T1, "b2")

    assert types_of(dest, "users")["zip"] == "VARCHAR"
    assert types_of(dest, "users")["seen"] == "VARCHAR"
    found = rows_of(dest, "users")
    assert [r["zip"] for r in found] == ["12345", "SW1A 1AA"]
    assert found[0]["seen"].startswith("2024-01-01 00:00:00")  # the timestamp's text
    assert found[1]["seen"] == "yesterday"


def test_object_into_scalar_column_widens_to_json(dest: DuckDbDestination) -> None:
    dest.upsert("crm", USERS, [{"id": 1, "address": 5}], T0, "b1")

    dest.upsert("crm", USERS, [{"id": 2, "address": {"city": "Oslo"}}], T1, "b2")

    assert types_of(dest, "users")["address"] == "JSON"
    assert [r["address"] for r in rows_of(dest, "users")] == ["5", '{"city":"Oslo"}']


def test_type_conflict_on_a_key_column_rebuilds_the_table(dest: DuckDbDestination) -> None:
    dest.upsert("crm", USERS, [{"id": 1, "name": "Ada"}], T0, "b1")

    dest.upsert("crm", USERS, [{"id": "u-2", "name": "Bo"}], T1, "b2")
    dest.upsert("crm", USERS, [{"id": "1", "name": "Ada again"}], T1, "b3")

    assert types_of(dest, "users")["id"] == "VARCHAR"
    assert [(r["id"], r["name"]) for r in rows_of(dest, "users")] == [("1", "Ada again"), ("u-2", "Bo")]


def test_all_null_column_takes_the_type_of_its_first_values(dest: DuckDbDestination) -> None:
    dest.upsert("crm", USERS, [{"id": 1, "score": None}], T0, "b1")

    dest.upsert("crm", USERS, [{"id": 2, "score": 3}], T1, "b2")

    assert types_of(dest, "users")["score"] == "BIGINT"


def test_a_column_seen_only_as_null_stays_untyped_across_runs(dest: DuckDbDestination) -> None:
    dest.upsert("crm", USERS, [{"id": 1, "deleted_at": None}], T0, "b1")
    dest.upsert("crm", USERS, [{"id": 2, "deleted_at": None}], T0, "b2")
    dest.close()

    with DuckDbDestination(dest_config("warehouse.duckdb"), ACCOUNT) as again:
        again.upsert("crm", USERS, [{"id": 3, "deleted_at": 17}], T1, "b3")
        assert types_of(again, "users")["deleted_at"] == "BIGINT"
        again.upsert("crm", USERS, [{"id": 4, "deleted_at": "soon"}], T1, "b4")  # and now it widens
        assert types_of(again, "users")["deleted_at"] == "VARCHAR"


def test_python_values_beyond_json_are_written(dest: DuckDbDestination) -> None:
    from decimal import Decimal

    row = {
        "id": 1,
        "at": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        "price": Decimal("10.25"),
        "raw": b"\x00",
    }
    dest.upsert("crm", USERS, [row], T0, "b1")

    found = rows_of(dest, "users")[0]
    assert (found["price"], found["raw"]) == ("10.25", "AA==")
    assert str(found["at"]).startswith("2024-01-02")  # a timestamp or its ISO text, by DuckDB version


def test_soft_delete_keeps_the_row_flagged(dest: DuckDbDestination) -> None:
    dest.upsert("crm", USERS, [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Bo"}], T0, "b1")

    assert dest.delete("crm", USERS, [{"id": 2}, {"id": 99}], T1, "b2") == 1

    assert [
        (r["id"], r["name"], r["_fivetran_deleted"], r["_fivetran_synced"]) for r in rows_of(dest, "users")
    ] == [
        (1, "Ada", False, T0),
        (2, "Bo", True, T1),
    ]


def test_upsert_after_delete_revives_the_row(dest: DuckDbDestination) -> None:
    dest.upsert("crm", USERS, [{"id": 1, "name": "Ada"}], T0, "b1")
    dest.delete("crm", USERS, [{"id": 1}], T0, "b2")

    dest.upsert("crm", USERS, [{"id": 1, "name": "Ada"}], T1, "b3")

    assert rows_of(dest, "users")[0]["_fivetran_deleted"] is False


def test_delete_before_the_table_exists_is_a_no_op(dest: DuckDbDestination) -> None:
    assert dest.delete("crm", USERS, [{"id": 1}], T0, "b1") == 0


def test_delete_with_a_key_of_another_type_matches_nothing(dest: DuckDbDestination) -> None:
    dest.upsert("crm", USERS, [{"id": 1}], T0, "b1")

    assert dest.delete("crm", USERS, [{"id": "not-a-number"}, {"id": "1"}], T1, "b2") == 1


def test_composite_primary_key(dest: DuckDbDestination) -> None:
    lines = TableSpec("order_lines", ("order_id", "line"))
    dest.upsert(
        "crm",
        lines,
        [{"order_id": 1, "line": 1, "sku": "a"}, {"order_id": 1, "line": 2, "sku": "b"}],
        T0,
        "1",
    )

    dest.upsert(
        "crm",
        lines,
        [{"order_id": 1, "line": 2, "sku": "B"}, {"order_id": 2, "line": 1, "sku": "c"}],
        T0,
        "2",
    )
    dest.delete("crm", lines, [{"order_id": 1, "line": 1}], T1, "3")

    found = rows_of(dest, "order_lines", order="order_id, line")
    assert [(r["order_id"], r["line"], r["sku"], r["_fivetran_deleted"]) for r in found] == [
        (1, 1, "a", True),
        (1, 2, "B", False),
        (2, 1, "c", False),
    ]


def test_table_without_primary_key_is_keyed_by_a_row_hash(dest: DuckDbDestination) -> None:
    events = TableSpec("events", ())
    rows = [{"kind": "click", "at": 1}, {"kind": "view", "at": 2}, {"kind": "click", "at": 1}]

    assert dest.upsert("crm", events, rows, T0, "b1") == 2  # identical rows collapse, as in Fivetran
    dest.upsert("crm", events, rows[:1], T1, "b2")
    dest.delete("crm", events, [{"kind": "view", "at": 2}], T1, "b3")

    found = rows_of(dest, "events", order='"at"')
    assert [(r["kind"], r["at"], r["_fivetran_deleted"]) for r in found] == [
        ("click", 1, False),
        ("view", 2, True),
    ]
    assert all(len(r["_fivetran_id"]) == 32 for r in found)
    assert types_of(dest, "events")["_fivetran_id"] == "VARCHAR"


def test_any_column_name_works(dest: DuckDbDestination) -> None:
    odd = TableSpec("order", ("select",))
    rows = [{"select": 1, 'say "hi"': "x", "it's": 2, "with space": True}]

    dest.upsert("my schema", odd, rows, T0, "b1")
    dest.upsert("my schema", odd, [{"select": 1, 'say "hi"': "y", "new col": 1.5}], T1, "b2")

    found = rows_of(dest, "order", schema="my schema")
    assert [(r["select"], r['say "hi"'], r["it's"], r["new col"]) for r in found] == [(1, "y", None, 1.5)]


def test_rows_without_a_primary_key_value_are_refused(dest: DuckDbDestination) -> None:
    with pytest.raises(DestinationError, match="primary key"):
        dest.upsert("crm", USERS, [{"id": 1}, {"name": "no id"}], T0, "b1")


def test_schemas_keep_their_tables_apart(dest: DuckDbDestination) -> None:
    dest.upsert("crm", USERS, [{"id": 1, "name": "a"}], T0, "b1")
    dest.upsert("warehouse", USERS, [{"id": 1, "name": "b"}, {"id": 2, "name": "c"}], T0, "b1")

    assert len(rows_of(dest, "users")) == 1
    assert len(rows_of(dest, "users", schema="warehouse")) == 2  # "warehouse" is also the database's name


def test_a_new_run_continues_the_same_tables(dest: DuckDbDestination, data_dir: Path) -> None:
    dest.upsert("crm", USERS, [{"id": 1, "score": 1}], T0, "b1")
    dest.flush()
    dest.close()

    with DuckDbDestination(dest_config("warehouse.duckdb"), ACCOUNT) as again:
        again.upsert("crm", USERS, [{"id": 1, "score": 2}, {"id": 2, "score": 2.5}], T1, "b2")
        assert [(r["id"], r["score"]) for r in rows_of(again, "users")] == [(1, 2.0), (2, 2.5)]


def test_a_table_changed_by_another_connection_is_read_again(dest: DuckDbDestination) -> None:
    dest.upsert("crm", USERS, [{"id": 1, "name": "Ada"}], T0, "b1")
    dest._connection().execute('ALTER TABLE "warehouse"."crm"."users" RENAME COLUMN "name" TO "full_name"')

    dest.upsert("crm", USERS, [{"id": 1, "name": "Ada L"}], T1, "b2")

    assert [(r["full_name"], r["name"]) for r in rows_of(dest, "users")] == [(None, "Ada L")]


def test_relative_path_is_under_the_data_dir(data_dir: Path) -> None:
    with DuckDbDestination(dest_config("nested/local.duckdb"), ACCOUNT) as dest:
        dest.upsert("crm", USERS, [{"id": 1}], T0, "b1")

    con = duckdb.connect(str(data_dir / ACCOUNT / "nested" / "local.duckdb"))
    assert con.execute('SELECT count(*) FROM "local"."crm"."users"').fetchone() == (1,)
    con.close()


def test_relative_path_may_not_leave_the_data_dir(data_dir: Path) -> None:
    with pytest.raises(DestinationError, match="must be a relative path inside the account's data folder"):
        open_destination("duckdb", {"path": "../elsewhere.duckdb"}, ACCOUNT)


def test_unknown_service_and_bad_config_are_destination_errors() -> None:
    with pytest.raises(DestinationError, match="Unknown destination service"):
        open_destination("snowflake", {}, ACCOUNT)
    with pytest.raises(DestinationError, match="Invalid 'duckdb' destination config"):
        open_destination("duckdb", {"path": ""}, ACCOUNT)


def test_writes_after_close_are_refused(dest: DuckDbDestination) -> None:
    dest.close()
    dest.close()  # closing twice is fine
    with pytest.raises(DestinationError, match="closed"):
        dest.upsert("crm", USERS, [{"id": 1}], T0, "b1")


@pytest.mark.parametrize(
    ("existing", "incoming", "wanted"),
    [
        ("BIGINT", "DOUBLE", "DOUBLE"),
        ("DOUBLE", "BIGINT", "DOUBLE"),
        ("BIGINT", "HUGEINT", "HUGEINT"),
        ("DATE", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP WITH TIME ZONE"),
        ("BOOLEAN", "BIGINT", "VARCHAR"),
        ("BIGINT", "JSON", "JSON"),
        ("VARCHAR", "JSON", "VARCHAR"),
        ("JSON", "VARCHAR", "JSON"),
    ],
)
def test_widen(existing: str, incoming: str, wanted: str) -> None:
    assert widen(existing, incoming) == wanted


def test_importing_the_package_does_not_import_duckdb() -> None:
    code = "import sys, sluice.destinations; sys.exit('duckdb' in sys.modules)"
    shared = str(Path(__file__).resolve().parents[2] / "shared")
    assert (
        subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": shared}, check=False).returncode == 0
    )


def dest_config(path: str) -> Any:
    from sluice.destinations import DuckDbConfig

    return DuckDbConfig(path=path)
