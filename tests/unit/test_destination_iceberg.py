"""The iceberg destination: Iceberg tables on a moto server's S3, registered in its Glue, read back two ways.

pyiceberg reads each table through the Glue catalog; DuckDB reads the Parquet data files of the current
snapshot directly. Both must see one row per key with the source's values.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
import pytest

from sluice.contract import TableSpec
from sluice.destinations import DestinationError, open_destination
from sluice.destinations import iceberg as iceberg_module
from sluice.destinations.iceberg import BATCH_PROPERTY, IcebergDestination, table_name
from tests.support.lake import (
    REGION,
    glue_catalog,
    iceberg_rows,
    moto_server,
    new_bucket,
    parquet_rows,
    point_at,
    reset,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
T2 = T0 + timedelta(hours=2)
USERS = TableSpec("users", ("id",))
DB = "lake"
TABLE = table_name("crm", "users")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def endpoint(server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    import os

    from sluice.settings import get_settings

    for var in [v for v in os.environ if v.startswith("AWS_ENDPOINT_URL")]:
        monkeypatch.delenv(var)
    point_at(monkeypatch, server)
    get_settings.cache_clear()
    reset(server)  # each test starts with an empty S3 and Glue
    return server


@pytest.fixture
def config(endpoint: str) -> dict[str, Any]:
    return {"bucket": new_bucket(endpoint), "prefix": "raw/", "database": DB}


def open_lake(config: dict[str, Any]) -> IcebergDestination:
    destination = open_destination("iceberg", config, "acct_example")
    assert isinstance(destination, IcebergDestination)
    return destination


@pytest.fixture
def dest(config: dict[str, Any]) -> Iterator[IcebergDestination]:
    destination = open_lake(config)
    yield destination
    destination.close()


def snapshots(endpoint: str, table: str = TABLE) -> list[Any]:
    return list(glue_catalog(endpoint).load_table((DB, table)).metadata.snapshots)


def both_readers(endpoint: str, table: str = TABLE, key: str = "id") -> dict[Any, dict[str, Any]]:
    """The rows by key, asserting that pyiceberg and DuckDB (from the Parquet files) agree on them."""
    by_pyiceberg = iceberg_rows(endpoint, DB, table, key)
    by_duckdb = parquet_rows(endpoint, DB, table, key)
    assert by_duckdb == by_pyiceberg
    return by_pyiceberg


def data(rows: dict[Any, dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    """The rows without the system columns."""
    return {k: {c: v for c, v in row.items() if not c.startswith("_fivetran")} for k, row in rows.items()}


def test_a_historical_sync_lands_one_row_per_key_with_types_from_the_data(
    dest: IcebergDestination, endpoint: str, config: dict[str, Any]
) -> None:
    first = [
        {
            "id": 1,
            "name": "Ada",
            "score": 1.5,
            "active": True,
            "born": "1815-12-10",
            "seen": "2024-04-30T10:00:00Z",
            "tags": ["x", "y"],
        },
        {"id": 2, "name": "Bo", "score": 2, "active": False, "born": None, "seen": None, "tags": None},
        {
            "id": 1,
            "name": "Ada L.",
            "score": 3.25,
            "active": True,
            "born": "1815-12-10",
            "seen": "2024-04-30T11:00:00+02:00",
            "tags": {"k": 1},
        },
    ]
    assert dest.upsert("crm", USERS, first, T0, "000000000001-sync-000000") == 3
    assert dest.upsert("crm", USERS, [{"id": 3, "name": "Cy"}], T0, "000000000001-sync-000001") == 1
    dest.flush()

    rows = both_readers(endpoint)
    assert data(rows) == {
        1: {
            "id": 1,
            "name": "Ada L.",
            "score": 3.25,
            "active": True,
            "born": date(1815, 12, 10),
            "seen": datetime(2024, 4, 30, 9, 0, tzinfo=UTC),
            "tags": '{"k":1}',
        },
        2: {"id": 2, "name": "Bo", "score": 2.0, "active": False, "born": None, "seen": None, "tags": None},
        3: {"id": 3, "name": "Cy", "score": None, "active": None, "born": None, "seen": None, "tags": None},
    }
    assert all(row["_fivetran_deleted"] is False and row["_fivetran_synced"] == T0 for row in rows.values())
    table = glue_catalog(endpoint).load_table((DB, TABLE))
    assert {f.name: str(f.field_type) for f in table.schema().fields} == {
        "id": "long",
        "name": "string",
        "score": "double",
        "active": "boolean",
        "born": "date",
        "seen": "timestamptz",
        "tags": "string",
        "_fivetran_synced": "timestamptz",
        "_fivetran_deleted": "boolean",
    }
    # Both batches in one commit (created with its data): the last batch id is on it.
    assert [s.summary[BATCH_PROPERTY] for s in table.metadata.snapshots] == ["000000000001-sync-000001"]
    assert table.location() == f"s3://{config['bucket']}/raw/crm/users"
    assert [table.schema().find_field(f.source_id).name for f in table.sort_order().fields] == ["id"]
    glue = boto3.client("glue", endpoint_url=endpoint, region_name=REGION)
    assert glue.get_table(DatabaseName=DB, Name=TABLE)["Table"]["Parameters"]["table_type"] == "ICEBERG"


def test_updates_replace_by_key_and_deletes_are_soft(dest: IcebergDestination, endpoint: str) -> None:
    dest.upsert("crm", USERS, [{"id": i, "name": f"u{i}"} for i in range(1, 6)], T0, "000000000001-a-000000")
    dest.flush()
    changed = [{"id": 2, "name": "two"}, {"id": 6, "name": "six"}]
    dest.upsert("crm", USERS, changed, T1, "000000000002-a-000000")
    # A delete of a committed row, of a row buffered in this flush, and of a key never seen.
    assert dest.delete("crm", USERS, [{"id": 3}, {"id": 6}, {"id": 99}], T2, "000000000002-a-000001") == 3
    dest.upsert("crm", USERS, [{"id": 4, "name": "four"}], T2, "000000000002-a-000002")
    dest.flush()

    rows = both_readers(endpoint)
    assert set(rows) == {1, 2, 3, 4, 5, 6}
    assert {k: (r["name"], r["_fivetran_deleted"], r["_fivetran_synced"]) for k, r in rows.items()} == {
        1: ("u1", False, T0),
        2: ("two", False, T1),
        3: ("u3", True, T2),  # soft: the row keeps its values
        4: ("four", False, T2),
        5: ("u5", False, T0),
        6: ("six", True, T2),
    }
    assert [s.summary[BATCH_PROPERTY] for s in snapshots(endpoint)] == [
        "000000000001-a-000000",
        "000000000002-a-000002",
    ]
    # An upsert after a delete revives the row.
    dest.upsert("crm", USERS, [{"id": 3, "name": "back"}], T2, "000000000003-a-000000")
    dest.flush()
    revived = both_readers(endpoint)[3]
    assert (revived["name"], revived["_fivetran_deleted"]) == ("back", False)


def test_deletes_alone_of_unknown_keys_commit_nothing(dest: IcebergDestination, endpoint: str) -> None:
    assert dest.delete("crm", USERS, [{"id": 1}], T0, "000000000001-a-000000") == 1
    dest.flush()
    assert not glue_catalog(endpoint).table_exists((DB, TABLE))
    dest.upsert("crm", USERS, [{"id": 1, "name": "a"}], T0, "000000000001-a-000001")
    dest.flush()
    dest.delete("crm", USERS, [{"id": "7"}, {"id": "1"}], T1, "000000000001-a-000002")  # keys as text
    dest.flush()
    assert both_readers(endpoint)[1]["_fivetran_deleted"] is True
    assert len(snapshots(endpoint)) == 2


def test_new_columns_are_added_and_types_widen(dest: IcebergDestination, endpoint: str) -> None:
    dest.upsert("crm", USERS, [{"id": 1, "n": 1, "code": 7, "day": "2024-01-02", "flag": True}], T0, "1-a-0")
    dest.flush()
    dest.upsert(
        "crm",
        USERS,
        [{"id": 2, "n": 2.5, "code": "A7", "day": "2024-01-03T04:05:06Z", "flag": True, "note": "new"}],
        T1,
        "1-a-1",
    )
    dest.flush()
    third = [{"id": 3, "n": 4, "code": 8, "day": "2024-02-01", "flag": "maybe"}]
    dest.upsert("crm", USERS, third, T1, "1-a-2")
    dest.flush()

    rows = data(both_readers(endpoint))
    assert rows == {
        1: {
            "id": 1,
            "n": 1.0,
            "code": "7",
            "day": datetime(2024, 1, 2, tzinfo=UTC),
            "flag": "true",
            "note": None,
        },
        2: {
            "id": 2,
            "n": 2.5,
            "code": "A7",
            "day": datetime(2024, 1, 3, 4, 5, 6, tzinfo=UTC),
            "flag": "true",
            "note": "new",
        },
        3: {
            "id": 3,
            "n": 4.0,
            "code": "8",
            "day": datetime(2024, 2, 1, tzinfo=UTC),
            "flag": "maybe",
            "note": None,
        },
    }
    table = glue_catalog(endpoint).load_table((DB, TABLE))
    assert {f.name: str(f.field_type) for f in table.schema().fields if not f.name.startswith("_")} == {
        "id": "long",
        "n": "double",
        "code": "string",
        "day": "timestamptz",
        "flag": "string",
        "note": "string",
    }
    assert len(table.metadata.snapshots) == 3  # each change of schema rode in its batch's commit


def test_a_column_with_only_nulls_waits_for_its_first_value(dest: IcebergDestination, endpoint: str) -> None:
    dest.upsert("crm", USERS, [{"id": 1, "later": None}], T0, "1-a-0")
    dest.flush()
    assert "later" not in {f.name for f in glue_catalog(endpoint).load_table((DB, TABLE)).schema().fields}
    dest.upsert("crm", USERS, [{"id": 2, "later": 5}], T0, "1-a-1")
    dest.flush()
    assert {k: r["later"] for k, r in both_readers(endpoint).items()} == {1: None, 2: 5}


# One sync's batches, with the flush (checkpoint) after each: upserts, updates, deletes, a new column.
STEPS: list[tuple[str, str, list[dict[str, Any]]]] = [
    ("upsert", "000000000001-s-000000", [{"id": i, "v": i} for i in range(1, 21)]),
    ("upsert", "000000000002-s-000000", [{"id": 5, "v": 50}, {"id": 21, "v": 21}]),
    ("delete", "000000000002-s-000001", [{"id": 7}, {"id": 21}]),
    ("upsert", "000000000003-s-000000", [{"id": 8, "v": 80, "extra": "x"}]),
    ("upsert", "000000000003-s-000001", [{"id": 7, "v": 70}]),
    ("delete", "000000000004-s-000000", [{"id": 1}]),
]


def run_steps(dest: IcebergDestination, steps: list[tuple[str, str, list[dict[str, Any]]]]) -> None:
    for n, (kind, batch_id, rows) in enumerate(steps):
        at = T0 + timedelta(minutes=n)
        if kind == "upsert":
            dest.upsert("crm", USERS, rows, at, batch_id)
        else:
            dest.delete("crm", USERS, rows, at, batch_id)
        dest.flush()


@pytest.mark.parametrize("crash_after", range(len(STEPS)))
@pytest.mark.parametrize("committed", [True, False], ids=["after-commit", "before-flush"])
def test_a_replay_after_a_crash_at_any_step_leaves_the_table_as_if_synced_once(
    config: dict[str, Any], endpoint: str, crash_after: int, committed: bool
) -> None:
    once = {**config, "database": "once"}
    with open_lake(once) as reference:
        run_steps(reference, STEPS)
    expected = iceberg_rows(endpoint, "once", TABLE)
    expected_snapshots = len(glue_catalog(endpoint).load_table(("once", TABLE)).metadata.snapshots)

    crashed = open_lake(config)
    run_steps(crashed, STEPS[:crash_after])
    kind, batch_id, rows = STEPS[crash_after]
    if kind == "upsert":
        crashed.upsert("crm", USERS, rows, T0 + timedelta(minutes=crash_after), batch_id)
    else:
        crashed.delete("crm", USERS, rows, T0 + timedelta(minutes=crash_after), batch_id)
    if committed:
        crashed.flush()
    crashed.close()  # the process dies here: nothing more of this run

    with open_lake(config) as replay:
        run_steps(replay, STEPS)  # the retried run replays every batch with the same ids

    assert both_readers(endpoint) == expected
    assert len(snapshots(endpoint)) == expected_snapshots  # replayed batches committed nothing new


def test_a_table_without_primary_key_collapses_identical_rows(
    dest: IcebergDestination, endpoint: str
) -> None:
    logs = TableSpec("logs", ())
    rows = [{"msg": "a", "n": 1}, {"msg": "a", "n": 1}, {"msg": "b", "n": 2}]
    dest.upsert("crm", logs, rows, T0, "1-a-0")
    dest.upsert("crm", logs, [{"msg": "a", "n": 1}], T0, "1-a-1")
    dest.flush()
    landed = both_readers(endpoint, table_name("crm", "logs"), key="_fivetran_id")
    assert sorted((r["msg"], r["n"]) for r in landed.values()) == [("a", 1), ("b", 2)]
    dest.delete("crm", logs, [{"msg": "b", "n": 2}], T1, "1-a-2")
    dest.flush()
    landed = both_readers(endpoint, table_name("crm", "logs"), key="_fivetran_id")
    assert sorted((r["msg"], r["_fivetran_deleted"]) for r in landed.values()) == [("a", False), ("b", True)]


def test_a_composite_key_merges_on_all_its_columns(dest: IcebergDestination, endpoint: str) -> None:
    lines = TableSpec("lines", ("order", "line"))
    first = [{"order": o, "line": ln, "q": 1} for o in (1, 2) for ln in (1, 2)]
    dest.upsert("crm", lines, first, T0, "1-a-0")
    dest.flush()
    dest.upsert("crm", lines, [{"order": 1, "line": 2, "q": 9}], T1, "1-a-1")
    dest.delete("crm", lines, [{"order": 2, "line": 1}], T1, "1-a-2")
    dest.flush()
    table = glue_catalog(endpoint).load_table((DB, table_name("crm", "lines"))).scan().to_arrow().to_pylist()
    assert sorted((r["order"], r["line"], r["q"], r["_fivetran_deleted"]) for r in table) == [
        (1, 1, 1, False),
        (1, 2, 9, False),
        (2, 1, 1, True),
        (2, 2, 1, False),
    ]


def test_small_files_are_compacted_as_commits_add_them(
    dest: IcebergDestination, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(iceberg_module, "COMPACT_AFTER_FILES", 4)
    for n in range(12):  # new keys each time: without compaction, one more file per commit
        dest.upsert("crm", USERS, [{"id": n * 10 + i, "v": n} for i in range(10)], T0, f"1-a-{n}")
        dest.flush()
    files = list(glue_catalog(endpoint).load_table((DB, TABLE)).scan().plan_files())
    assert len(files) <= 4
    assert set(both_readers(endpoint)) == set(range(120))


def test_expiring_snapshots_keeps_the_current_rows_and_drops_unreferenced_files(
    dest: IcebergDestination, endpoint: str, config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(iceberg_module, "KEEP_SNAPSHOTS", 2)
    for n in range(5):  # every commit rewrites the one file: old snapshots pin old files
        dest.upsert("crm", USERS, [{"id": 1, "v": n}], T0, f"1-a-{n}")
        dest.flush()
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)

    def objects() -> int:
        return len(s3.list_objects_v2(Bucket=config["bucket"]).get("Contents", []))

    before = objects()
    assert dest.expire_snapshots("crm", "users", now=datetime.now(UTC) + timedelta(days=2)) == 3
    assert len(snapshots(endpoint)) == 2
    assert objects() < before
    assert both_readers(endpoint)[1]["v"] == 4
    # The writer still knows the kept batches: a replay of the last one is skipped.
    with open_lake(config) as again:
        again.upsert("crm", USERS, [{"id": 1, "v": 99}], T0, "1-a-4")
        again.flush()
    assert both_readers(endpoint)[1]["v"] == 4


def test_bad_rows_and_configs_fail_clearly(dest: IcebergDestination, config: dict[str, Any]) -> None:
    with pytest.raises(DestinationError, match="primary key"):
        dest.upsert("crm", USERS, [{"name": "no id"}], T0, "1-a-0")
    with pytest.raises(DestinationError, match="lack key column 'id'"):
        dest.delete("crm", USERS, [{"name": "x"}], T0, "1-a-1")
    with pytest.raises(DestinationError, match="must be scalars"):
        dest.upsert("crm", USERS, [{"id": [1]}], T0, "1-a-2")
    with pytest.raises(DestinationError, match="Invalid 'iceberg' destination config"):
        open_destination("iceberg", {**config, "database": "Not-A-Glue-Name"}, "acct_example")
    with pytest.raises(DestinationError, match="Invalid 'iceberg' destination config"):
        open_destination("iceberg", {"bucket": config["bucket"]}, "acct_example")
    dest.close()
    dest.close()  # twice is fine
    with pytest.raises(DestinationError, match="closed"):
        dest.flush()


def test_a_changed_primary_key_needs_a_resync(dest: IcebergDestination, config: dict[str, Any]) -> None:
    dest.upsert("crm", USERS, [{"id": 1, "email": "a@x"}], T0, "1-a-0")
    dest.flush()
    with open_lake(config) as other, pytest.raises(DestinationError, match="historical resync"):
        other.upsert("crm", TableSpec("users", ("email",)), [{"id": 1, "email": "a@x"}], T0, "2-b-0")


def test_commits_expire_old_snapshots_by_themselves_once_enough_are_due(
    dest: IcebergDestination, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(iceberg_module, "SNAPSHOT_RETENTION", timedelta(0))
    monkeypatch.setattr(iceberg_module, "KEEP_SNAPSHOTS", 2)
    monkeypatch.setattr(iceberg_module, "EXPIRE_AFTER", 3)
    counts = []
    for n in range(8):
        dest.upsert("crm", USERS, [{"id": 1, "v": n}, {"id": 100 + n, "v": n}], T0, f"1-a-{n}")
        dest.flush()
        counts.append(len(snapshots(endpoint)))
    assert max(counts) <= 2 + 3
    assert counts[-1] < 8
    rows = both_readers(endpoint)
    assert rows[1]["v"] == 7 and set(rows) == {1, *range(100, 108)}


def test_a_commit_that_loses_a_race_merges_again_on_top(
    dest: IcebergDestination, endpoint: str, config: dict[str, Any]
) -> None:
    dest.upsert("crm", USERS, [{"id": 1, "v": 1}, {"id": 2, "v": 1}], T0, "1-a-0")
    dest.flush()
    with open_lake(config) as other:  # commits to the same table behind the first writer's back
        other.upsert("crm", USERS, [{"id": 3, "v": 3}], T0, "9-z-0")
        other.flush()
    dest.upsert("crm", USERS, [{"id": 2, "v": 2}], T1, "1-a-1")
    dest.flush()
    assert {k: r["v"] for k, r in both_readers(endpoint).items()} == {1: 1, 2: 2, 3: 3}
    assert [s.summary[BATCH_PROPERTY] for s in snapshots(endpoint)] == ["1-a-0", "9-z-0", "1-a-1"]


def test_live_mode_removes_deleted_rows_from_the_table(dest: IcebergDestination, endpoint: str) -> None:
    from dataclasses import replace

    live = replace(USERS, sync_mode="LIVE")
    rows = [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Bo"}, {"id": 3, "name": "Cy"}]
    dest.upsert("crm", live, rows, T0, "000000000001-sync-000000")
    dest.flush()
    dest.delete("crm", live, [{"id": 2}], T0, "000000000002-sync-000000")  # a committed row
    dest.upsert("crm", live, [{"id": 4, "name": "Di"}], T0, "000000000002-sync-000001")
    dest.delete("crm", live, [{"id": 4}], T0, "000000000002-sync-000002")  # a buffered row
    dest.flush()
    assert set(both_readers(endpoint)) == {1, 3}


def test_a_dropped_column_leaves_the_schema_and_writes_go_on(dest: IcebergDestination, endpoint: str) -> None:
    rows = [{"id": 1, "name": "Ada", "email": "a@example.com"}, {"id": 2, "name": "Bo", "email": None}]
    dest.upsert("crm", USERS, rows, T0, "000000000001-sync-000000")
    dest.flush()
    dest.drop_columns("crm", "users", ["email", "id"])  # the key stays
    dest.drop_columns("crm", "users", ["email"])  # a repeat is harmless
    dest.upsert("crm", USERS, [{"id": 3, "name": "Cy"}], T0, "000000000002-sync-000000")
    dest.flush()
    # An Iceberg reader projects the table's schema; the untouched old data file still holds the bytes
    # (raw Parquet readers see them until a rewrite), as with any Iceberg column drop.
    landed = iceberg_rows(endpoint, DB, TABLE, "id")
    assert set(landed) == {1, 2, 3}
    assert all("email" not in row for row in landed.values())
    schema = glue_catalog(endpoint).load_table((DB, TABLE)).metadata.schema()
    assert "email" not in {f.name for f in schema.fields}
