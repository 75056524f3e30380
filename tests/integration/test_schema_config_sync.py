"""The sync engine obeys the schema config: real sources on loopback, the sync worker, a real DuckDB file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pytest

from local.sample_api import SampleApi
from tests.support.api_events import DEFAULT, call
from tests.support.gated_source import GatedSource
from tests.support.syncing import (
    duckdb_file,
    duckdb_rows,
    make_group_with_duckdb,
    make_rest_connection,
    run_worker,
    sample_api_config,
    sync_event,
)

SCHEMAS = "update_connection_schemas"


class Crash(BaseException):
    """Stands for the process dying: nothing in the engine catches it."""


@pytest.fixture
def api():
    with SampleApi(rows=40, ties=4, token="s3cr3t-token") as server:
        yield server


@pytest.fixture
def lake(aws) -> Path:
    return duckdb_file("lake.duckdb")


def two_table_config(url: str) -> dict:
    config = sample_api_config(url, token="s3cr3t-token", page_size=10)
    copies = {**config["tables"][0], "name": "copies"}
    config["tables"].append(copies)
    return config


def patch(connection_id: str, tail: str, body: dict, method: str = "PATCH"):
    reply = call(SCHEMAS, path=f"/v1/connections/{connection_id}/schemas{tail}", method=method, body=body)
    assert reply.status == 200, reply.body
    return reply


def salt_of(group_id: str) -> bytes:
    from sluice.config_secrets import secret_box
    from sluice.schema_config.operations import SALT_FIELD, SALT_SCOPE
    from sluice.storage.schema_store import SchemaConfigStore
    from sluice.storage.store import get_store

    sealed = SchemaConfigStore(get_store()).group_salt(group_id)
    assert sealed is not None
    return secret_box().decrypt(group_id, {SALT_FIELD: sealed}, SALT_SCOPE)[SALT_FIELD].encode()


def sha(salt: bytes, text: str) -> str:
    return hashlib.sha256(salt + text.encode()).hexdigest()


def columns_of(lake: Path, table: str) -> list[str]:
    with duckdb.connect(str(lake), read_only=True) as db:
        return [c[0] for c in db.execute(f"SELECT * FROM {table} LIMIT 0").description]


def schema_changes(bus) -> list[dict]:
    return [e["detail"] for e in bus.drain() if e["detail-type"] == "Schema Changed"]


def test_a_precreated_config_reads_no_disabled_table_and_lands_no_disabled_column(aws, api, lake) -> None:
    group = make_group_with_duckdb(lake.name)
    connection = make_rest_connection(group, two_table_config(api.url), paused=True)
    body = {
        "schemas": {
            "shop": {
                "enabled": True,
                "tables": {
                    "copies": {"enabled": False},
                    "items": {"columns": {"category": {"enabled": False}, "name": {"hashed": True}}},
                },
            }
        }
    }
    patch(connection["id"], "", body, method="POST")
    call("update_connection", path=f"/v1/connections/{connection['id']}", body={"paused": False})
    result = run_worker(sync_event(connection["id"]))
    assert result["status"] == "SUCCESSFUL", result
    assert api.requests and all(path.startswith("/next_link/items") for path in api.requests)
    assert "category" not in columns_of(lake, "shop.items")
    with duckdb.connect(str(lake), read_only=True) as db:
        tables = {r[0] for r in db.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert tables == {"items"}
    salt = salt_of(group)
    landed = duckdb_rows(lake)
    assert {row_id: row["name"] for row_id, row in landed.items()} == {
        row["id"]: sha(salt, row["name"]) for row in api.data.all_rows()
    }


def test_two_groups_hash_one_value_differently(aws, api) -> None:
    names = {}
    for file in ("one.duckdb", "two.duckdb"):
        group = make_group_with_duckdb(file, name=file.split(".")[0])
        connection = make_rest_connection(group, sample_api_config(api.url, token="s3cr3t-token"))
        patch(
            connection["id"],
            "",
            {"schemas": {"shop": {"tables": {"items": {"columns": {"name": {"hashed": True}}}}}}},
            method="POST",
        )
        assert run_worker(sync_event(connection["id"]))["status"] == "SUCCESSFUL"
        names[file] = duckdb_rows(duckdb_file(file))[1]["name"]
    assert names["one.duckdb"] != names["two.duckdb"]
    assert "Item 1" not in names.values()


def test_a_column_disabled_later_stops_updating_and_keeps_old_values(aws, api, lake) -> None:
    connection = make_rest_connection(
        make_group_with_duckdb(lake.name), sample_api_config(api.url, token="s3cr3t-token")
    )
    assert run_worker(sync_event(connection["id"]))["status"] == "SUCCESSFUL"
    before = duckdb_rows(lake)
    reply = patch(connection["id"], "/shop/tables/items/columns/price", {"enabled": False})
    assert "re-sync" not in reply.body["message"]  # disabling needs no re-sync
    api.update([3])
    assert run_worker(sync_event(connection["id"]))["status"] == "SUCCESSFUL"
    after = duckdb_rows(lake)
    assert after[3]["price"] is None and after[3]["version"] == 2  # updated: the disabled column is null
    assert after[4]["price"] == before[4]["price"]  # untouched rows keep their old values


def test_hashing_a_column_of_a_table_with_data_resyncs_the_table_once(aws, api, lake, bus) -> None:
    group = make_group_with_duckdb(lake.name)
    connection = make_rest_connection(group, sample_api_config(api.url, token="s3cr3t-token"))
    assert run_worker(sync_event(connection["id"]))["rows_upserted"] == 40
    bus.drain()
    reply = patch(connection["id"], "/shop/tables/items/columns/name", {"hashed": True})
    assert reply.body["message"] == (
        "Column configuration has been modified. A re-sync of table(s) 'shop.items' has been triggered"
    )
    requested = [e for e in bus.drain() if e["detail-type"] == "Sync Requested"]
    assert len(requested) == 1
    resync = run_worker({**requested[0]})
    assert resync["status"] == "SUCCESSFUL" and resync["rows_upserted"] == 40  # read again from the start
    salt = salt_of(group)
    assert {r["name"] for r in duckdb_rows(lake).values()} == {
        sha(salt, r["name"]) for r in api.data.all_rows()
    }
    assert run_worker(sync_event(connection["id"]))["rows_upserted"] < 40  # incremental again: served once


def test_a_patch_while_a_sync_runs_says_it_applies_next_sync(aws, api, lake) -> None:
    from datetime import timedelta

    from sluice.storage.store import get_store
    from sluice.storage.sync_store import SyncStore
    from sluice.timestamps import utc_now

    connection = make_rest_connection(
        make_group_with_duckdb(lake.name), sample_api_config(api.url, token="s3cr3t-token")
    )
    assert run_worker(sync_event(connection["id"]))["status"] == "SUCCESSFUL"
    SyncStore(get_store()).acquire(connection["id"], "running", utc_now(), timedelta(minutes=16), None)
    reply = patch(connection["id"], "/shop/tables/items/columns/name", {"hashed": True})
    assert reply.body["message"] == (
        "Column configuration has been modified. A sync is running: the changes take effect from the "
        "next sync. A re-sync of table(s) 'shop.items' will run with the next sync"
    )


def test_block_all_keeps_a_new_column_out_and_announces_it_once(aws, lake, bus) -> None:
    with GatedSource(rows=3, closed=False) as source:
        config = sample_api_config(source.url)
        connection = make_rest_connection(make_group_with_duckdb(lake.name), config)
        assert run_worker(sync_event(connection["id"]))["status"] == "SUCCESSFUL"
        patch(connection["id"], "", {"schema_change_handling": "BLOCK_ALL"})
        bus.drain()
        for row in source.rows:
            row["email"] = f"user{row['id']}@example.com"
        assert run_worker(sync_event(connection["id"]))["status"] == "SUCCESSFUL"
        assert run_worker(sync_event(connection["id"]))["status"] == "SUCCESSFUL"
    assert "email" not in columns_of(lake, "shop.items")
    columns = call(
        "get_connection_schemas", path=f"/v1/connections/{connection['id']}/schemas/shop/tables/items/columns"
    )
    assert columns.data["columns"]["email"]["enabled"] is False
    changes = schema_changes(bus)
    assert [(c["change"], c["table"], c["column"], c["enabled"]) for c in changes] == [
        ("column_added", "items", "email", False)
    ]
    assert changes[0]["account_id"] == DEFAULT.account_id and changes[0]["connection_id"] == connection["id"]


def test_allow_all_takes_a_new_column_and_announces_it(aws, lake, bus) -> None:
    with GatedSource(rows=3, closed=False) as source:
        connection = make_rest_connection(make_group_with_duckdb(lake.name), sample_api_config(source.url))
        assert run_worker(sync_event(connection["id"]))["status"] == "SUCCESSFUL"
        bus.drain()
        for row in source.rows:
            row["email"] = "x@example.com"
        assert run_worker(sync_event(connection["id"]))["status"] == "SUCCESSFUL"
    assert "email" in columns_of(lake, "shop.items")
    assert [(c["column"], c["enabled"]) for c in schema_changes(bus)] == [("email", True)]


def test_allow_columns_brings_a_new_table_in_disabled(aws, api, lake, bus) -> None:
    connection = make_rest_connection(
        make_group_with_duckdb(lake.name), sample_api_config(api.url, token="s3cr3t-token")
    )
    assert run_worker(sync_event(connection["id"]))["status"] == "SUCCESSFUL"
    patch(connection["id"], "", {"schema_change_handling": "ALLOW_COLUMNS"})
    bus.drain()
    update = call(
        "update_connection",
        path=f"/v1/connections/{connection['id']}",
        body={"config": {"tables": two_table_config(api.url)["tables"]}},
    )
    assert update.status == 200, update.body
    api.requests.clear()
    assert run_worker(sync_event(connection["id"]))["status"] == "SUCCESSFUL"
    assert run_worker(sync_event(connection["id"]))["status"] == "SUCCESSFUL"
    tables = call("get_connection_schemas", path=f"/v1/connections/{connection['id']}/schemas").data[
        "schemas"
    ]["shop"]["tables"]
    assert tables["copies"]["enabled"] is False and tables["items"]["enabled"] is True
    assert [(c["change"], c["table"], c["enabled"]) for c in schema_changes(bus)] == [
        ("table_added", "copies", False)
    ]


# ---- sync modes (the Connector SDK test connector `every_operation` updates and deletes) -----------------


@pytest.fixture
def sdk_group(aws, lake, monkeypatch) -> str:
    from tests.support.connector_sdk import use_sdk_python

    use_sdk_python(monkeypatch)
    return make_group_with_duckdb(lake.name)


def sdk_connection(group: str, mode: str) -> dict:
    from tests.support.connector_sdk import deploy, make_sdk_connection

    connection = make_sdk_connection(group, deploy("every_operation"), {"rows": "23", "page": "5"})
    patch(
        connection["id"], "", {"schemas": {"shop": {"tables": {"items": {"sync_mode": mode}}}}}, method="POST"
    )
    return connection


def versions(lake: Path) -> dict[int, list[dict]]:
    with duckdb.connect(str(lake), read_only=True) as db:
        cursor = db.execute("SELECT * FROM shop.items ORDER BY id, _fivetran_start")
        names = [c[0] for c in cursor.description]
        found: dict[int, list[dict]] = {}
        for values in cursor.fetchall():
            row = dict(zip(names, values, strict=True))
            found.setdefault(row["id"], []).append(row)
    return found


def test_live_mode_removes_deleted_rows(sdk_group, lake) -> None:
    connection = sdk_connection(sdk_group, "LIVE")
    assert run_worker(sync_event(connection["id"]))["status"] == "SUCCESSFUL"
    items = duckdb_rows(lake)
    assert 2 not in items and set(items) == set(range(1, 24)) - {2}


def assert_one_version_per_change(lake: Path) -> None:
    found = versions(lake)
    assert set(found) == set(range(1, 24))
    assert [v["name"] for v in found[1]] == ["item 1", "renamed"]
    assert [v["_fivetran_active"] for v in found[1]] == [False, True]
    first, current = found[1]
    assert first["_fivetran_end"] < current["_fivetran_start"]
    assert current["_fivetran_end"].year == 9999
    assert len(found[2]) == 1 and found[2][0]["_fivetran_active"] is False  # deleted: its version ended
    assert len(found[3]) == 2 and found[3][1]["price"] == 9.0
    assert all(len(found[n]) == 1 and found[n][0]["_fivetran_active"] for n in range(4, 24))
    assert "_fivetran_deleted" not in found[1][0]


def test_history_mode_keeps_one_version_per_change(sdk_group, lake) -> None:
    connection = sdk_connection(sdk_group, "HISTORY")
    assert run_worker(sync_event(connection["id"]))["status"] == "SUCCESSFUL"
    assert_one_version_per_change(lake)
    assert run_worker(sync_event(connection["id"]))["status"] == "SUCCESSFUL"  # the same changes again
    assert_one_version_per_change(lake)


@pytest.mark.parametrize("crash_at", [3, 6])
def test_history_mode_after_a_crash_and_replay_has_exactly_one_version_per_change(
    sdk_group, lake, monkeypatch, crash_at
) -> None:
    from sluice.settings import get_settings
    from sluice.storage.sync_store import SyncStore

    monkeypatch.setenv("SYNC_COMMIT_EVERY_SECONDS", "0")
    get_settings.cache_clear()
    original = SyncStore.commit_checkpoint
    calls = {"n": 0}

    def crash_at_commit(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == crash_at:
            raise Crash()  # everything before it is in the destination, its checkpoint is not
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SyncStore, "commit_checkpoint", crash_at_commit)
    connection = sdk_connection(sdk_group, "HISTORY")
    event = sync_event(connection["id"])
    with pytest.raises(Crash):
        run_worker(event)
    result = run_worker(event)  # Lambda retries the same event
    assert result["status"] == "SUCCESSFUL", result
    assert_one_version_per_change(lake)


def test_reload_reads_the_sources_columns_so_they_can_be_set_before_the_first_sync(aws, api, lake) -> None:
    group = make_group_with_duckdb(lake.name)
    connection = make_rest_connection(group, sample_api_config(api.url, token="s3cr3t-token"))
    reloaded = call(
        SCHEMAS, path=f"/v1/connections/{connection['id']}/schemas/reload", method="POST", body={}
    )
    assert reloaded.status == 200, reloaded.body
    columns = reloaded.data["schemas"]["shop"]["tables"]["items"]["columns"]
    assert set(columns) == {"id", "name", "category", "price", "version", "updated_at"}
    assert api.requests == ["/next_link/items?limit=50"] or len(api.requests) == 1  # one page, not the table
    patch(connection["id"], "/shop/tables/items/columns/category", {"enabled": False})
    assert run_worker(sync_event(connection["id"]))["status"] == "SUCCESSFUL"
    assert "category" not in columns_of(lake, "shop.items")


def test_reload_under_block_all_blocks_a_new_column_and_announces_it_once(aws, lake, bus) -> None:
    with GatedSource(rows=2, closed=False) as source:
        connection = make_rest_connection(make_group_with_duckdb(lake.name), sample_api_config(source.url))
        assert run_worker(sync_event(connection["id"]))["status"] == "SUCCESSFUL"
        patch(connection["id"], "", {"schema_change_handling": "BLOCK_ALL"})
        bus.drain()
        for row in source.rows:
            row["phone"] = "555"
        reload_path = f"/v1/connections/{connection['id']}/schemas/reload"
        first = call(SCHEMAS, path=reload_path, method="POST", body={})
        again = call(SCHEMAS, path=reload_path, method="POST", body={})
        assert run_worker(sync_event(connection["id"]))["status"] == "SUCCESSFUL"
    assert first.data["schemas"]["shop"]["tables"]["items"]["columns"]["phone"]["enabled"] is False
    assert again.status == 200
    assert "phone" not in columns_of(lake, "shop.items")
    changes = schema_changes(bus)
    assert [(c["column"], c["enabled"]) for c in changes] == [("phone", False)]


def test_a_reload_that_cant_reach_the_source_still_merges_tables_and_says_why(aws, lake) -> None:
    with GatedSource(rows=1, closed=False) as source:
        url = source.url
    connection = make_rest_connection(
        make_group_with_duckdb(lake.name), sample_api_config(url, token="tok-secret-9")
    )
    reply = call(SCHEMAS, path=f"/v1/connections/{connection['id']}/schemas/reload", method="POST", body={})
    assert reply.status == 200, reply.body
    assert reply.body["message"].startswith(
        "Schema configuration has been reloaded. The source could not be read"
    )
    assert "tok-secret-9" not in reply.body["message"]
    assert set(reply.data["schemas"]["shop"]["tables"]) == {"items"}


def test_a_table_the_source_never_declared_is_taken_by_the_handling_and_announced_once(
    sdk_group, lake, bus
) -> None:
    from tests.support.connector_sdk import deploy, make_sdk_connection

    connection = make_sdk_connection(sdk_group, deploy("never_checkpoints"))  # yields `readings`, undeclared
    patch(connection["id"], "/reload", {}, method="POST")  # the first capture: no table declared
    patch(connection["id"], "", {"schema_change_handling": "ALLOW_COLUMNS"})
    bus.drain()
    assert run_worker(sync_event(connection["id"]))["status"] == "SUCCESSFUL"
    assert run_worker(sync_event(connection["id"]))["status"] == "SUCCESSFUL"
    with duckdb.connect(str(lake), read_only=True) as db:
        tables = {r[0] for r in db.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert "readings" not in tables  # it arrived disabled
    got = call("get_connection_schemas", path=f"/v1/connections/{connection['id']}/schemas")
    assert got.data["schemas"]["shop"]["tables"]["readings"]["enabled"] is False
    assert [(c["change"], c["table"], c["enabled"]) for c in schema_changes(bus)] == [
        ("table_added", "readings", False)
    ]
