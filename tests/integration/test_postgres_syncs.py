"""Syncs through the sync worker on moto with a real PostgreSQL server: Postgres -> DuckDB,
REST -> Postgres and Postgres -> Postgres, with changes between syncs and crashes that replay."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.sample_api import SampleApi
from sluice.sources.postgres import reading
from sluice.storage.sync_store import SyncStore
from tests.support.api_events import call, make_group
from tests.support.postgres import SUPERUSER, SUPERUSER_PASSWORD, PostgresServer
from tests.support.syncing import (
    duckdb_file,
    duckdb_rows,
    get_connection,
    make_group_with_duckdb,
    make_rest_connection,
    run_worker,
    sample_api_config,
    sync_event,
)


class Crash(BaseException):
    """Stands for the process dying: nothing in the engine catches it."""


@pytest.fixture
def source_db(pg_server: PostgresServer, pg_database: str) -> str:
    pg_server.execute(
        pg_database,
        "CREATE TABLE items (id int PRIMARY KEY, name text, qty int)",
        "INSERT INTO items SELECT g, 'item ' || g, g FROM generate_series(1, 45) g",
        "CREATE PUBLICATION sluice_pub FOR ALL TABLES",
        "SELECT pg_create_logical_replication_slot('sluice_slot', 'pgoutput')",
    )
    return pg_database


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of 10 rows, and a checkpoint committed at every Checkpoint the source yields."""
    from sluice.settings import get_settings

    monkeypatch.setattr(reading, "PAGE_ROWS", 10)
    monkeypatch.setenv("SYNC_COMMIT_EVERY_SECONDS", "0")
    get_settings.cache_clear()


def postgres_source_config(server: PostgresServer, database: str, **extra: Any) -> dict[str, Any]:
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


def make_postgres_connection(group_id: str, config: dict[str, Any]) -> dict[str, Any]:
    reply = call(
        "create_connection",
        body={"group_id": group_id, "service": "postgres", "config": config, "run_setup_tests": False},
    )
    assert reply.status == 201, reply.body
    assert reply.data["config"]["password"] == "******"
    return dict(reply.data)


def make_group_with_postgres(server: PostgresServer, database: str) -> str:
    """A group whose destination is `database`, created through the API: its password is sealed, and
    the sync worker writes with it unsealed."""
    group_id = make_group()
    config = {
        "host": server.host,
        "port": server.port,
        "database": database,
        "user": SUPERUSER,
        "password": SUPERUSER_PASSWORD,
    }
    reply = call(
        "create_destination",
        body={"group_id": group_id, "service": "postgres", "config": config, "run_setup_tests": False},
    )
    assert reply.status == 201, reply.body
    assert reply.data["config"]["password"] == "******"
    return group_id


def crash_on_commit(monkeypatch: pytest.MonkeyPatch, number: int) -> None:
    original = SyncStore.commit_checkpoint
    calls = {"n": 0}

    def crashing(self: SyncStore, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == number:
            raise Crash()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SyncStore, "commit_checkpoint", crashing)


def sync(connection_id: str) -> dict[str, Any]:
    result = run_worker(sync_event(connection_id))
    assert result["status"] == "SUCCESSFUL", result
    return result


def table_rows(server: PostgresServer, database: str, table: str) -> dict[Any, dict[str, Any]]:
    with server.connect(database) as con:
        cursor = con.execute(f"SELECT * FROM {table}")  # type: ignore[arg-type]
        names = [c.name for c in cursor.description or []]
        return {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


def change_source(server: PostgresServer, database: str, step: int) -> None:
    """Inserts, updates and deletes (one of them a key change) between two syncs."""
    server.execute(
        database,
        f"INSERT INTO items SELECT g, 'new ' || g, 0 "
        f"FROM generate_series({1000 * step}, {1000 * step + 4}) g",
        f"UPDATE items SET qty = qty + 100, name = name || ' v{step}' WHERE id % 7 = {step % 7}",
        f"DELETE FROM items WHERE id IN (SELECT id FROM items WHERE id % 11 = {step % 11} LIMIT 2)",
        "UPDATE items SET id = id + 500 "
        f"WHERE id = (SELECT min(id) FROM items WHERE id < 100 AND id % 2 = {step % 2})",
    )


def assert_same_rows(source: dict[Any, dict[str, Any]], landed: dict[Any, dict[str, Any]]) -> None:
    live = {key: row for key, row in landed.items() if not row["_fivetran_deleted"]}
    assert set(live) == set(source)
    for key, row in source.items():
        assert {column: live[key][column] for column in row} == row, key
    assert all(row["_fivetran_synced"] is not None for row in landed.values())


# ---- Postgres -> DuckDB ------------------------------------------------------------------------------------


@pytest.fixture
def lake(aws: Any) -> Path:
    return duckdb_file("lake.duckdb")


def test_postgres_to_duckdb_with_changes_between_syncs_and_a_crash_in_each(
    aws: Any,
    pg_server: PostgresServer,
    source_db: str,
    lake: Path,
    small_pages: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connection = make_postgres_connection(
        make_group_with_duckdb(lake.name), postgres_source_config(pg_server, source_db)
    )
    # Historical: the worker dies after the second page's checkpoint; Lambda retries the event.
    crash_on_commit(monkeypatch, 3)
    event = sync_event(connection["id"])
    with pytest.raises(Crash):
        run_worker(event)
    assert run_worker(event)["status"] == "SUCCESSFUL"
    assert_same_rows(table_rows(pg_server, source_db, "items"), duckdb_rows(lake))

    for step in (1, 2, 3):
        change_source(pg_server, source_db, step)
        # The worker writes the changes to the destination, then dies before their checkpoint.
        crash_on_commit(monkeypatch, 1)
        event = sync_event(connection["id"])
        with pytest.raises(Crash):
            run_worker(event)
        result = run_worker(event)
        assert result["status"] == "SUCCESSFUL"
        assert result["rows_deleted"] >= 2
        assert_same_rows(table_rows(pg_server, source_db, "items"), duckdb_rows(lake))
    assert get_connection(connection["id"])["status"]["sync_state"] == "scheduled"


def test_reload_asks_postgres_for_its_tables_and_a_live_table_loses_deleted_rows(
    aws: Any, pg_server: PostgresServer, source_db: str, lake: Path
) -> None:
    connection = make_postgres_connection(
        make_group_with_duckdb(lake.name), postgres_source_config(pg_server, source_db)
    )
    path = f"/v1/connections/{connection['id']}/schemas"
    before = call("get_connection_schemas", path=path)
    assert before.status == 200 and before.data["schemas"]["shop"]["tables"] == {}  # the API can't ask
    reloaded = call("update_connection_schemas", path=f"{path}/reload", method="POST", body={})
    assert reloaded.status == 200, reloaded.body
    items = reloaded.data["schemas"]["shop"]["tables"]["items"]
    assert items["columns"]["id"]["is_primary_key"] is True
    table = call(
        "update_connection_schemas",
        path=f"{path}/shop/tables/items",
        method="PATCH",
        body={"sync_mode": "LIVE"},
    )
    assert table.status == 200, table.body
    sync(connection["id"])
    change_source(pg_server, source_db, 1)
    assert sync(connection["id"])["rows_deleted"] >= 2
    landed = duckdb_rows(lake)
    assert set(landed) == set(table_rows(pg_server, source_db, "items"))  # deleted rows are gone
    assert not any(row["_fivetran_deleted"] for row in landed.values())


def test_xmin_connection_to_duckdb_moves_changed_rows(
    aws: Any, pg_server: PostgresServer, source_db: str, lake: Path
) -> None:
    config = postgres_source_config(pg_server, source_db, update_method="XMIN")
    del config["replication_slot"], config["publication_name"]
    connection = make_postgres_connection(make_group_with_duckdb(lake.name), config)
    sync(connection["id"])
    pg_server.execute(
        source_db, "UPDATE items SET qty = -1 WHERE id = 3", "INSERT INTO items VALUES (99, 'n', 9)"
    )
    result = sync(connection["id"])
    assert result["rows_upserted"] == 2
    landed = duckdb_rows(lake)
    assert landed[3]["qty"] == -1 and landed[99]["name"] == "n"


# ---- REST -> Postgres --------------------------------------------------------------------------------------


@pytest.fixture
def api() -> Iterator[SampleApi]:
    with SampleApi(rows=137, ties=7) as server:
        yield server


def test_rest_api_to_postgres_with_changes_between_syncs_and_a_crash(
    aws: Any, pg_server: PostgresServer, pg_database: str, api: SampleApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sluice.settings import get_settings

    monkeypatch.setenv("SYNC_COMMIT_EVERY_SECONDS", "0")
    get_settings.cache_clear()
    group_id = make_group_with_postgres(pg_server, pg_database)
    connection = make_rest_connection(group_id, sample_api_config(api.url, page_size=20))
    crash_on_commit(monkeypatch, 3)
    event = sync_event(connection["id"])
    with pytest.raises(Crash):
        run_worker(event)
    assert run_worker(event)["status"] == "SUCCESSFUL"
    source = {row["id"]: row for row in api.data.all_rows()}
    assert_same_rows(source, table_rows(pg_server, pg_database, "shop.items"))

    api.update([3, 50, 99])
    api.add(6)
    crash_on_commit(monkeypatch, 1)
    event = sync_event(connection["id"])
    with pytest.raises(Crash):
        run_worker(event)
    assert run_worker(event)["status"] == "SUCCESSFUL"
    source = {row["id"]: row for row in api.data.all_rows()}
    assert_same_rows(source, table_rows(pg_server, pg_database, "shop.items"))


# ---- Postgres -> Postgres ----------------------------------------------------------------------------------


def test_postgres_to_postgres_keeps_types_and_soft_deletes(
    aws: Any, pg_server: PostgresServer, source_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = pg_server.create_database()
    try:
        pg_server.execute(
            source_db,
            "CREATE TABLE docs (id uuid PRIMARY KEY, body jsonb, at timestamptz, price numeric, tags text[])",
            "INSERT INTO docs VALUES ('12345678-1234-5678-1234-567812345678', '{\"a\": 1}', "
            "'2024-01-02 03:04:05+00', 9.99, ARRAY['x'])",
        )
        group_id = make_group_with_postgres(pg_server, warehouse)
        connection = make_postgres_connection(group_id, postgres_source_config(pg_server, source_db))
        sync(connection["id"])
        change_source(pg_server, source_db, 1)
        pg_server.execute(source_db, "UPDATE docs SET body = '{\"a\": 2}'")
        result = sync(connection["id"])
        assert result["rows_deleted"] >= 2
        assert_same_rows(
            table_rows(pg_server, source_db, "items"), table_rows(pg_server, warehouse, "shop.items")
        )
        assert_same_rows(
            table_rows(pg_server, source_db, "docs"), table_rows(pg_server, warehouse, "shop.docs")
        )
        with pg_server.connect(warehouse) as con:
            kinds = dict(
                con.execute(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = 'shop' AND table_name = 'docs'"
                ).fetchall()
            )
        assert kinds["id"] == "uuid" and kinds["body"] == "jsonb" and kinds["price"] == "numeric"
        assert kinds["at"] == "timestamp with time zone"
    finally:
        pg_server.drop_database(warehouse)


# ---- S3 -> Postgres ----------------------------------------------------------------------------------------


def test_s3_csv_files_to_postgres_with_a_rewritten_row_and_a_crash(
    aws: Any, pg_server: PostgresServer, pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    from sluice.settings import get_settings

    monkeypatch.setenv("SYNC_COMMIT_EVERY_SECONDS", "0")
    get_settings.cache_clear()
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="drops")
    s3.put_object(Bucket="drops", Key="in/1.csv", Body=b"id,city\n1,Oslo\n2,Lima\n")
    reply = call(
        "create_connection",
        body={
            "group_id": make_group_with_postgres(pg_server, pg_database),
            "service": "s3",
            "config": {
                "schema": "files",
                "table": "cities",
                "bucket": "drops",
                "prefix": "in/",
                "primary_key": ["id"],
            },
            "run_setup_tests": False,
        },
    )
    assert reply.status == 201, reply.body
    connection_id = reply.data["id"]
    sync(connection_id)
    s3.put_object(Bucket="drops", Key="in/2.csv", Body=b"id,city\n2,Lisbon\n3,Accra\n")
    crash_on_commit(monkeypatch, 1)
    event = sync_event(connection_id)
    with pytest.raises(Crash):
        run_worker(event)
    assert run_worker(event)["status"] == "SUCCESSFUL"
    landed = table_rows(pg_server, pg_database, "files.cities")
    assert {key: row["city"] for key, row in landed.items()} == {"1": "Oslo", "2": "Lisbon", "3": "Accra"}
    assert not any(row["_fivetran_deleted"] for row in landed.values())
