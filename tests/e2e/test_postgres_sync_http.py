"""Postgres -> DuckDB over real HTTP against the local stack: setup tests on create, a historical
sync, then inserts, updates and deletes replicated through the slot."""

from __future__ import annotations

import uuid

from tests.support.local_stack import LocalStackProcess, wait_for_sync
from tests.support.postgres import SUPERUSER, SUPERUSER_PASSWORD, PostgresServer


def landed(stack: LocalStackProcess, table: str) -> dict:
    import duckdb

    with duckdb.connect(str(stack.default_duckdb), read_only=True) as db:
        rows = db.execute(f"SELECT id, name, _fivetran_deleted FROM {table}").fetchall()
    return {r[0]: r for r in rows}


def test_postgres_sync_with_deletes_over_http(
    stack: LocalStackProcess, pg_server: PostgresServer, pg_database: str
) -> None:
    pg_server.execute(
        pg_database,
        "CREATE TABLE items (id int PRIMARY KEY, name text)",
        "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 300) g",
    )
    http = stack.session()
    schema = "pg_" + uuid.uuid4().hex[:6]
    created = http.post(
        f"{stack.url}/v1/connections",
        json={
            "group_id": stack.group_id,
            "service": "postgres",
            "config": {
                "schema": schema,
                "host": pg_server.host,
                "port": pg_server.port,
                "database": pg_database,
                "user": SUPERUSER,
                "password": SUPERUSER_PASSWORD,
                "update_method": "WAL_PGOUTPUT",
                "replication_slot": "e2e_slot",
                "publication_name": "e2e_pub",
                "create_slot_and_publication": True,
            },
        },
    )
    assert created.status_code == 201, created.text
    connection = created.json()["data"]
    assert connection["config"]["password"] == "******"
    assert connection["status"]["setup_state"] == "connected"  # the setup tests created slot and publication
    url = f"{stack.url}/v1/connections/{connection['id']}"

    assert http.post(f"{url}/sync", json={}).status_code == 200
    first = wait_for_sync(http, url, None)
    assert first["failed_at"] is None, first
    assert len(landed(stack, f"{schema}.items")) == 300

    pg_server.execute(
        pg_database,
        "UPDATE items SET name = 'renamed' WHERE id = 7",
        "DELETE FROM items WHERE id IN (8, 9)",
        "INSERT INTO items VALUES (301, 'new')",
    )
    assert http.post(f"{url}/sync", json={}).status_code == 200
    second = wait_for_sync(http, url, first["succeeded_at"])
    assert second["succeeded_at"] > first["succeeded_at"], second
    rows = landed(stack, f"{schema}.items")
    assert len(rows) == 301
    assert rows[7][1] == "renamed" and rows[301][1] == "new"
    assert {key for key, row in rows.items() if row[2]} == {8, 9}
    # The bus recorder appends events after the API shows the sync's end: wait for the events.
    runs = stack.events_of(connection["id"], "Sync Completed", count=2)
    assert len(runs) == 2
    assert runs[-1]["detail"]["data"]["rows_deleted"] == 2
    assert SUPERUSER_PASSWORD not in (stack.data_dir / "events.jsonl").read_text()
