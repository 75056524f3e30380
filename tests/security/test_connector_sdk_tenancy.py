"""Tenancy of Connector SDK packages: a connection may only run a package of its own account, and
another account's package is not found on any package route (moto, the real handlers and worker)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb
import pytest

from sluice.storage.store import connection_key, get_store
from tests.support.api_events import Account, call
from tests.support.connector_sdk import make_sdk_connection, upload, use_sdk_python, zip_connector
from tests.support.syncing import duckdb_file, make_group_with_duckdb, run_worker, sync_event

OWNER = Account(account_id="acct_owner", user_id="user_owner")


@pytest.fixture
def lake(aws) -> Path:
    return duckdb_file("lake.duckdb")


@pytest.fixture
def group(aws, lake, monkeypatch) -> str:
    """A group of the default account (the one that tries to use OWNER's package) with DuckDB."""
    use_sdk_python(monkeypatch)
    return make_group_with_duckdb(lake.name)


@pytest.fixture
def foreign_package(group) -> str:
    reply = upload(zip_connector("every_operation"), account=OWNER)
    assert reply.status == 201, reply.body
    return str(reply.data["id"])


def _own_package() -> str:
    reply = upload(zip_connector("every_operation"))
    assert reply.status == 201, reply.body
    return str(reply.data["id"])


def _assert_package_not_found(reply, package_id: str) -> None:
    assert reply.status == 404, reply.body
    assert reply.body["code"] == "NotFound_Package"
    assert package_id in reply.body["message"]


def _tables_in(lake: Path) -> list[str]:
    if not lake.exists():
        return []
    with duckdb.connect(str(lake), read_only=True) as db:
        return [row[0] for row in db.execute("SELECT table_name FROM information_schema.tables").fetchall()]


def _name_package(connection_id: str, package_id: str) -> None:
    """Make a stored connection name `package_id`, as one stored before the check existed would."""
    from sluice.aws import client
    from sluice.settings import get_settings

    key = connection_key(connection_id)
    item = get_store().get(key)
    assert item is not None
    config = json.dumps({**json.loads(item["config"]), "package_id": package_id})
    client("dynamodb").update_item(
        TableName=get_settings().table_name,
        Key={name: {"S": value} for name, value in key.items()},
        UpdateExpression="SET #config = :config",
        ExpressionAttributeNames={"#config": "config"},
        ExpressionAttributeValues={":config": {"S": config}},
    )


@pytest.mark.parametrize("run_setup_tests", [True, False])
def test_a_connection_cannot_be_created_on_another_accounts_package(
    group, foreign_package, run_setup_tests
) -> None:
    reply = call(
        "create_connection",
        body={
            "group_id": group,
            "service": "connector_sdk",
            "config": {"schema": "shop", "package_id": foreign_package},
            "run_setup_tests": run_setup_tests,
        },
    )
    _assert_package_not_found(reply, foreign_package)
    assert call("list_connections", query={}).data["items"] == []


def test_a_connection_cannot_be_updated_to_another_accounts_package(group, foreign_package) -> None:
    own = _own_package()
    connection = make_sdk_connection(group, own)
    reply = call(
        "update_connection",
        path=f"/v1/connections/{connection['id']}",
        body={"config": {"package_id": foreign_package}},
    )
    _assert_package_not_found(reply, foreign_package)
    got = call("get_connection", path=f"/v1/connections/{connection['id']}")
    assert got.data["config"]["package_id"] == own


def test_a_stored_connection_naming_another_accounts_package_never_runs_it(
    group, lake, foreign_package
) -> None:
    connection = make_sdk_connection(group, _own_package(), {"rows": "3", "page": "1"})
    _name_package(connection["id"], foreign_package)
    path = f"/v1/connections/{connection['id']}"

    _assert_package_not_found(call("test_connection", path=f"{path}/test", body={}), foreign_package)
    _assert_package_not_found(call("get_connection_schemas", path=f"{path}/schemas"), foreign_package)
    call("update_connection", path=path, body={"paused": False})
    _assert_package_not_found(call("sync_connection", path=f"{path}/sync", body={}), foreign_package)

    result = run_worker(sync_event(connection["id"]))
    assert result["status"] == "FAILURE_WITH_TASK", result
    assert foreign_package in result["message"] and "doesn't exist" in result["message"]
    assert _tables_in(lake) == []


def test_package_routes_do_not_find_another_accounts_package(group, foreign_package) -> None:
    path = f"/v1/connector-sdk/packages/{foreign_package}"
    _assert_package_not_found(call("get_package", path=path), foreign_package)
    _assert_package_not_found(
        upload(zip_connector("generator_style"), op="update_package", path=path), foreign_package
    )
    _assert_package_not_found(call("delete_package", path=path), foreign_package)
    assert call("list_packages").data["items"] == []

    kept = call("get_package", path=path, account=OWNER)
    assert kept.status == 200, kept.body
    assert kept.data["file_sha256_hash"] == hashlib.sha256(zip_connector("every_operation")).hexdigest()
