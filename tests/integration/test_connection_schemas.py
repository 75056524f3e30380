"""The Connection Schema routes (get_connection_schemas, update_connection_schemas), both DynamoDBs."""

from __future__ import annotations

import pytest

from tests.support.api_events import call, connection_path, make_connection, make_group
from tests.support.syncing import make_group_with_duckdb

pytestmark = pytest.mark.backends("moto", "dynamodb_local")

SCHEMAS = "update_connection_schemas"


def two_tables(schema: str = "shop") -> dict:
    return {
        "schema": schema,
        "base_url": "https://api.example.com",
        "auth": {"type": "bearer", "token": "tok-secret-1"},
        "tables": [
            {"name": "orders", "path": "/v1/orders", "primary_key": ["id"]},
            {"name": "refunds", "path": "/v1/refunds", "primary_key": ["id"]},
        ],
    }


@pytest.fixture
def connection(aws) -> dict:
    return make_connection(make_group_with_duckdb("schemas.duckdb"), config=two_tables())


def see_columns(connection_id: str, table: str, *names: str) -> None:
    """What a sync records when it sees columns (the schema routes list them)."""
    from sluice.storage.store import get_store
    from sluice.storage.sync_store import SyncStore

    SyncStore(get_store()).add_columns(connection_id, {table: set(names)})


def schemas_path(connection: dict, tail: str = "", alias: bool = False) -> str:
    return connection_path(connection["id"], alias) + "/schemas" + tail


def test_get_returns_fivetrans_shape_for_every_table_and_column(connection) -> None:
    see_columns(connection["id"], "orders", "id", "email", "total")
    reply = call("get_connection_schemas", path=schemas_path(connection))
    assert reply.status == 200 and reply.body["message"] == "Schema configuration retrieved successfully"
    data = reply.data
    assert data["schema_change_handling"] == "ALLOW_ALL" and data["enable_new_by_default"] is True
    shop = data["schemas"]["shop"]
    assert shop["name_in_destination"] == "shop" and shop["enabled"] is True
    orders = shop["tables"]["orders"]
    assert orders == {
        "name_in_destination": "orders",
        "enabled": True,
        "sync_mode": "SOFT_DELETE",
        "enabled_patch_settings": {"allowed": True},
        "supports_columns_config": True,
        "supports_history_mode": True,  # duckdb keeps history
        "columns": orders["columns"],
    }
    assert orders["columns"]["id"] == {
        "name_in_destination": "id",
        "enabled": True,
        "hashed": False,
        "is_primary_key": True,
        "enabled_patch_settings": {
            "allowed": False,
            "reason_code": "SYSTEM_COLUMN",
            "reason": "The column does not support exclusion as it is a Primary Key",
        },
    }
    assert orders["columns"]["email"]["enabled_patch_settings"] == {"allowed": True}
    assert set(shop["tables"]) == {"orders", "refunds"}


def test_patch_disables_a_table_and_hashes_a_column_and_get_shows_it(connection) -> None:
    see_columns(connection["id"], "orders", "id", "email")
    body = {
        "schema_change_handling": "ALLOW_COLUMNS",
        "schemas": {
            "shop": {
                "enabled": True,
                "tables": {
                    "refunds": {"enabled": False},
                    "orders": {
                        "columns": {"email": {"enabled": True, "hashed": True, "is_primary_key": None}}
                    },
                },
            }
        },
    }
    reply = call(SCHEMAS, path=schemas_path(connection), method="PATCH", body=body)
    assert reply.status == 200, reply.body
    assert reply.body["message"].startswith("Schema configuration has been modified")
    got = call("get_connection_schemas", path=schemas_path(connection, alias=True)).data
    assert got["schema_change_handling"] == "ALLOW_COLUMNS" and got["enable_new_by_default"] is False
    assert got["schemas"]["shop"]["tables"]["refunds"]["enabled"] is False
    assert got["schemas"]["shop"]["tables"]["orders"]["columns"]["email"]["hashed"] is True


def test_hashing_a_column_gives_the_group_a_sealed_salt_that_no_response_shows(connection, store) -> None:
    from sluice.storage.schema_store import SchemaConfigStore

    see_columns(connection["id"], "orders", "id", "email")
    path = schemas_path(connection, "/shop/tables/orders/columns/email")
    reply = call(SCHEMAS, path=path, method="PATCH", body={"hashed": True})
    assert reply.status == 200, reply.body
    sealed = SchemaConfigStore(store).group_salt(connection["group_id"])
    assert sealed is not None
    group = call("get_group", path=f"/v1/groups/{connection['group_id']}")
    assert sealed not in group.body.__repr__() and "hash_salt" not in repr(group.body)
    again = call(SCHEMAS, path=path, method="PATCH", body={"hashed": False})
    assert again.status == 200
    assert SchemaConfigStore(store).group_salt(connection["group_id"]) == sealed  # never changes


@pytest.mark.parametrize(
    ("tail", "body", "code"),
    [
        ("/nope", {"enabled": False}, "NotFound_Schema"),
        ("/shop/tables/nope", {"enabled": False}, "NotFound_Table"),
        ("/shop/tables/orders/columns/nope", {"enabled": False}, "NotFound_Column"),
    ],
)
def test_unknown_schema_table_or_column_is_a_404_with_its_code(connection, tail, body, code) -> None:
    reply = call(SCHEMAS, path=schemas_path(connection, tail), method="PATCH", body=body)
    assert reply.status == 404 and reply.body["code"] == code, reply.body


def test_unknown_names_inside_a_patch_body_are_404_and_nothing_is_written(connection) -> None:
    body = {"schemas": {"shop": {"tables": {"refunds": {"enabled": False}, "ghost": {"enabled": False}}}}}
    reply = call(SCHEMAS, path=schemas_path(connection), method="PATCH", body=body)
    assert reply.status == 404 and reply.body["code"] == "NotFound_Table"
    got = call("get_connection_schemas", path=schemas_path(connection)).data
    assert got["schemas"]["shop"]["tables"]["refunds"]["enabled"] is True


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"enabled": False}, "The column does not support exclusion as it is a Primary Key"),
        ({"hashed": True}, "The column does not support hashing as it is a Primary Key"),
    ],
)
def test_disabling_or_hashing_a_primary_key_is_a_400_with_the_reason(connection, body, reason) -> None:
    reply = call(
        SCHEMAS, path=schemas_path(connection, "/shop/tables/orders/columns/id"), method="PATCH", body=body
    )
    assert reply.status == 400 and reply.body == {"code": "InvalidInput", "message": reason}


def test_bad_enums_are_400(connection) -> None:
    bad = call(
        SCHEMAS, path=schemas_path(connection), method="PATCH", body={"schema_change_handling": "SOME"}
    )
    assert bad.status == 400 and bad.body["code"] == "InvalidInput"
    mode = call(
        SCHEMAS, path=schemas_path(connection, "/shop/tables/orders"), method="PATCH", body={"sync_mode": "X"}
    )
    assert mode.status == 400 and mode.body["code"] == "InvalidInput"


def test_a_sync_mode_the_destination_cannot_keep_is_a_400(aws) -> None:
    group = make_group("bucketed")
    assert (
        call(
            "create_destination",
            body={
                "group_id": group,
                "service": "s3",
                "config": {"bucket": "lake-bucket"},
                "run_setup_tests": False,
            },
        ).status
        == 201
    )
    conn = make_connection(group, config=two_tables())
    reply = call(
        SCHEMAS, path=schemas_path(conn, "/shop/tables/orders"), method="PATCH", body={"sync_mode": "HISTORY"}
    )
    assert reply.status == 400 and "HISTORY is not supported" in reply.body["message"]
    tables = call("get_connection_schemas", path=schemas_path(conn)).data["schemas"]["shop"]["tables"]
    assert tables["orders"]["supports_history_mode"] is False


def test_precreate_then_conflict_then_patch(connection) -> None:
    body = {
        "schema_change_handling": "BLOCK_ALL",
        "schemas": {"shop": {"enabled": True, "tables": {"orders": {"enabled": True}}}},
    }
    first = call(SCHEMAS, path=schemas_path(connection), method="POST", body=body)
    assert first.status == 200 and first.body["message"] == "Schema configuration pre-created successfully"
    assert set(first.data["schemas"]["shop"]["tables"]) == {"orders"}  # exactly what was sent
    # The first capture applies it: under BLOCK_ALL the table it did not name arrives disabled.
    got = call("get_connection_schemas", path=schemas_path(connection)).data["schemas"]["shop"]["tables"]
    assert got["orders"]["enabled"] is True and got["refunds"]["enabled"] is False
    again = call(SCHEMAS, path=schemas_path(connection), method="POST", body=body)
    assert again.status == 409 and again.body["code"] == "Conflict"


def test_reload_exclude_disables_every_schema_and_table(connection) -> None:
    reply = call(
        SCHEMAS, path=schemas_path(connection, "/reload"), method="POST", body={"exclude_mode": "EXCLUDE"}
    )
    assert reply.status == 200 and reply.body["message"].startswith("Schema configuration has been reloaded")
    shop = reply.data["schemas"]["shop"]
    assert shop["enabled"] is False and {t["enabled"] for t in shop["tables"].values()} == {False}
    preserve = call(SCHEMAS, path=schemas_path(connection, "/reload", alias=True), method="POST", body={})
    assert preserve.status == 200 and preserve.data["schemas"]["shop"]["enabled"] is False


def test_reload_announces_each_new_table_once(connection, bus) -> None:
    assert call(SCHEMAS, path=schemas_path(connection, "/reload"), method="POST", raw_body=None).status == 200
    bus.drain()
    config = two_tables()
    config["tables"].append({"name": "payouts", "path": "/v1/payouts", "primary_key": ["id"]})
    patched = call("update_connection", path=connection_path(connection["id"]), body={"config": config})
    assert patched.status == 200, patched.body
    reply = call(
        SCHEMAS, path=schemas_path(connection, "/reload"), method="POST", body={"exclude_mode": "PRESERVE"}
    )
    assert reply.data["schemas"]["shop"]["tables"]["payouts"]["enabled"] is True
    assert call(SCHEMAS, path=schemas_path(connection, "/reload"), method="POST", raw_body=None).status == 200
    changed = [e["detail"] for e in bus.drain() if e["detail-type"] == "Schema Changed"]
    assert changed == [
        {
            "account_id": connection_account(connection),
            "connection_id": connection["id"],
            "group_id": connection["group_id"],
            "created": changed[0]["created"],
            "change": "table_added",
            "schema": "shop",
            "table": "payouts",
            "column": None,
            "enabled": True,
        }
    ]


def connection_account(connection: dict) -> str:
    from tests.support.api_events import DEFAULT

    return DEFAULT.account_id


def test_get_columns_lists_a_tables_columns(connection) -> None:
    see_columns(connection["id"], "orders", "id", "email")
    reply = call("get_connection_schemas", path=schemas_path(connection, "/shop/tables/orders/columns"))
    assert reply.status == 200 and reply.body["message"] == "Column configuration retrieved successfully"
    assert set(reply.data["columns"]) == {"id", "email"}
    missing = call("get_connection_schemas", path=schemas_path(connection, "/shop/tables/nope/columns"))
    assert missing.status == 404 and missing.body["code"] == "NotFound_Table"


def test_only_a_blocked_column_can_be_dropped(connection) -> None:
    see_columns(connection["id"], "orders", "id", "email", "phone")
    column = schemas_path(connection, "/shop/tables/orders/columns/email")
    live = call(SCHEMAS, path=column, method="DELETE")
    assert live.status == 409 and live.body["code"] == "Conflict"
    assert call(SCHEMAS, path=column, method="PATCH", body={"enabled": False}).status == 200
    dropped = call(SCHEMAS, path=column, method="DELETE")
    assert dropped.status == 200 and dropped.body == {
        "code": "Success",
        "message": "Column successfully marked for deletion",
    }
    body = {"schemas": {"shop": {"tables": {"orders": {"columns": ["phone"]}}}}}
    refused = call(SCHEMAS, path=schemas_path(connection, "/drop-columns"), method="POST", body=body)
    assert refused.status == 409
    assert (
        call(
            SCHEMAS,
            path=schemas_path(connection, "/shop/tables/orders/columns/phone"),
            method="PATCH",
            body={"enabled": False},
        ).status
        == 200
    )
    many = call(SCHEMAS, path=schemas_path(connection, "/drop-columns", alias=True), method="POST", body=body)
    assert many.status == 200 and many.body["message"] == "Column(s) successfully marked for deletion"
    unknown = {"schemas": {"shop": {"tables": {"orders": {"columns": ["ghost"]}}}}}
    assert (
        call(SCHEMAS, path=schemas_path(connection, "/drop-columns"), method="POST", body=unknown).status
        == 404
    )


def test_another_accounts_connection_is_not_found(connection) -> None:
    from tests.support.api_events import Account

    other = Account(account_id="acct_other", user_id="user_other")
    reply = call(SCHEMAS, path=schemas_path(connection), method="PATCH", body={}, account=other)
    assert reply.status == 404 and reply.body["code"] == "NotFound_Connection"
    alias = call("get_connection_schemas", path=schemas_path(connection, alias=True), account=other)
    assert alias.status == 404 and alias.body["code"] == "NotFound_Connector"


def test_a_column_is_new_to_exactly_one_writer(connection, store) -> None:
    from sluice.storage.sync_store import SyncStore

    columns = SyncStore(store)
    assert columns.add_columns_reporting_new(connection["id"], "orders", {"id", "email"}) == {"id", "email"}
    assert columns.add_columns_reporting_new(connection["id"], "orders", {"id", "email"}) == set()
    assert columns.add_columns_reporting_new(connection["id"], "orders", {"email", "phone"}) == {"phone"}
