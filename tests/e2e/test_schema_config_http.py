"""The schema config over real HTTP against the local stack: Terraform's reload-then-PATCH with the bodies
go-fivetran builds, and a connection created paused, configured, then unpaused."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import requests

from local.sample_api import SampleApi, config_for
from tests.support.local_stack import LocalStackProcess, wait_for_sync


@pytest.fixture(scope="module")
def api() -> Iterator[SampleApi]:
    with SampleApi(rows=60, ties=4, token="e2e-token") as server:
        yield server


def table(stack: LocalStackProcess, name: str) -> list[dict]:
    import duckdb

    with duckdb.connect(str(stack.default_duckdb), read_only=True) as db:
        cursor = db.execute(f"SELECT * FROM {name} ORDER BY id")
        columns = [c[0] for c in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def create(http: requests.Session, stack: LocalStackProcess, api: SampleApi, **body) -> tuple[str, str]:
    schema = "tf_" + uuid.uuid4().hex[:6]
    config = config_for(api.url, "next_link", {"type": "bearer", "token": "e2e-token"}, schema, 25)
    created = http.post(
        f"{stack.url}/v1/connections",
        json={"group_id": stack.group_id, "service": "rest_api", "config": config, **body},
    )
    assert created.status_code == 201, created.text
    return created.json()["data"]["id"], schema


def test_terraform_reload_then_patch_with_go_fivetran_bodies(
    stack: LocalStackProcess, api: SampleApi
) -> None:
    http = stack.session()
    connection_id, schema = create(http, stack, api)
    url = f"{stack.url}/v1/connections/{connection_id}"
    assert http.post(f"{url}/sync", json={}).status_code == 200
    first = wait_for_sync(http, url, None)
    assert first["failed_at"] is None, first

    # fivetran_connector_schema_config: read, reload (go-fivetran always sends exclude_mode), PATCH, read.
    tf = f"{stack.url}/v1/connectors/{connection_id}/schemas"
    assert http.get(tf).status_code == 200
    reloaded = http.post(f"{tf}/reload", json={"exclude_mode": "PRESERVE"})
    assert reloaded.status_code == 200, reloaded.text
    columns = reloaded.json()["data"]["schemas"][schema]["tables"]["items"]["columns"]
    assert {"id", "name", "category", "price"} <= set(columns)
    # go-fivetran's ConnectionSchemaConfigUpdateService body: omitempty fields left out, is_primary_key null.
    body = {
        "schema_change_handling": "BLOCK_ALL",
        "schemas": {
            schema: {
                "enabled": True,
                "tables": {
                    "items": {
                        "enabled": True,
                        "sync_mode": "SOFT_DELETE",
                        "columns": {
                            "category": {"enabled": False, "is_primary_key": None},
                            "name": {"enabled": True, "hashed": True, "is_primary_key": None},
                        },
                    }
                },
            }
        },
    }
    patched = http.patch(tf, json=body, headers={"Content-Type": "application/json"})
    assert patched.status_code == 200, patched.text
    assert "A re-sync of table(s) '" + schema + ".items' has been triggered" in patched.json()["message"]
    got = http.get(tf).json()["data"]
    assert got["schema_change_handling"] == "BLOCK_ALL"
    items = got["schemas"][schema]["tables"]["items"]
    assert items["columns"]["name"]["hashed"] is True and items["columns"]["category"]["enabled"] is False

    # The PATCH asked for the table's re-sync: every row comes again, name hashed, category no longer updated.
    second = wait_for_sync(http, url, first["succeeded_at"])
    assert second["failed_at"] is None or second["failed_at"] < second["succeeded_at"], second
    rows = table(stack, f"{schema}.items")
    assert len(rows) == 60
    names = {r["name"] for r in rows}
    assert all(len(n) == 64 and int(n, 16) >= 0 for n in names)
    assert not names & {f"Item {i}" for i in range(1, 61)}
    assert all(r["category"] is None for r in rows)  # rewritten rows: the blocked column holds no value

    log = http.get(f"{stack.url}/v1/groups/{stack.group_id}").text + patched.text + repr(got)
    assert "hash_salt" not in log


def test_created_paused_configured_then_unpaused_syncs_only_what_was_chosen(
    stack: LocalStackProcess, api: SampleApi
) -> None:
    http = stack.session()
    connection_id, schema = create(http, stack, api, paused=True)
    url = f"{stack.url}/v1/connections/{connection_id}"
    setup = http.post(
        f"{url}/schemas",
        json={
            "schema_change_handling": "ALLOW_COLUMNS",
            "schemas": {
                schema: {
                    "enabled": True,
                    "tables": {"items": {"enabled": True, "columns": {"price": {"enabled": False}}}},
                }
            },
        },
    )
    assert (
        setup.status_code == 200
        and setup.json()["message"] == "Schema configuration pre-created successfully"
    )
    assert http.patch(url, json={"paused": False}).status_code == 200
    assert http.post(f"{url}/sync", json={}).status_code == 200
    done = wait_for_sync(http, url, None)
    assert done["failed_at"] is None, done
    rows = table(stack, f"{schema}.items")
    assert len(rows) == 60 and "price" not in rows[0]
    assert rows[0]["name"] == "Item 1"


def test_a_patch_while_a_sync_runs_says_so_and_applies_from_the_next_sync(stack: LocalStackProcess) -> None:
    from tests.support.gated_source import GatedSource

    http = stack.session()
    with GatedSource(rows=3, closed=False) as source:
        schema = "gate_" + uuid.uuid4().hex[:6]
        created = http.post(
            f"{stack.url}/v1/connections",
            json={
                "group_id": stack.group_id,
                "service": "rest_api",
                "run_setup_tests": False,
                "config": config_for(source.url, "next_link", None, schema, 25),
            },
        )
        assert created.status_code == 201, created.text
        url = f"{stack.url}/v1/connections/{created.json()['data']['id']}"
        assert http.post(f"{url}/sync", json={}).status_code == 200
        first = wait_for_sync(http, url, None)
        assert first["failed_at"] is None and len(table(stack, f"{schema}.items")) == 3, first

        source.opened.clear()  # the next sync hangs at the source: it is running while we PATCH
        assert http.post(f"{url}/sync", json={}).status_code == 200
        assert source.entered.wait(60), "the sync never reached the source"
        patched = http.patch(f"{url}/schemas/{schema}/tables/items", json={"enabled": False})
        assert patched.status_code == 200, patched.text
        assert patched.json()["message"] == (
            "Table configuration has been modified. "
            "A sync is running: the changes take effect from the next sync"
        )
        source.open()  # the held request is dropped, as a source that went away would: that sync fails
        held = wait_for_sync(http, url, first["succeeded_at"])

        source.rows.append({"id": 99, "name": "late", "updated_at": "2026-11-02T00:00:00Z"})
        assert http.post(f"{url}/sync", json={}).status_code == 200
        third = wait_for_sync(http, url, max(filter(None, [held["succeeded_at"], held["failed_at"]])))
        assert third["succeeded_at"] and (third["failed_at"] or "") < third["succeeded_at"], third
    assert {r["id"] for r in table(stack, f"{schema}.items")} == {0, 1, 2}  # the disabled table got no row
