"""Routes Fivetran clients call that were missing: users and account, group PATCH/DELETE, destination
PATCH/DELETE/test, the legacy metadata routes and go-fivetran's single-table resync, on moto."""

from __future__ import annotations

import boto3
import pytest

from tests.support.api_events import Account, call, connection_path, make_connection, make_group

OTHER = Account(account_id="acct_other", user_id="user_other")


# ---- users and account -----------------------------------------------------------------------------


def test_users_list_holds_the_callers_user(aws) -> None:
    reply = call("get_users", path="/v1/users")
    assert reply.status == 200, reply.body
    items = reply.data["items"]
    assert [u["id"] for u in items] == ["user_example"] and reply.data["next_cursor"] is None
    # Fivetran's required keys are all there.
    assert {"id", "email", "verified", "role", "active", "created_at", "logged_in_at"} <= set(items[0])


def test_get_user_is_the_callers_user_and_404_for_any_other(aws) -> None:
    assert call("get_users", path="/v1/users/user_example").data["id"] == "user_example"
    other = call("get_users", path="/v1/users/user_other")
    assert other.status == 404 and other.body["code"] == "NotFound_User"


def test_account_info_is_the_keys_account(aws) -> None:
    reply = call("get_account_info", path="/v1/account/info", account=OTHER)
    assert reply.status == 200
    assert reply.data["account_id"] == "acct_other" and reply.data["user_id"] == "user_other"


# ---- groups ----------------------------------------------------------------------------------------


def test_patch_group_renames_it(aws) -> None:
    group_id = make_group("before")
    reply = call("update_group", path=f"/v1/groups/{group_id}", body={"name": "after"})
    assert reply.status == 200, reply.body
    assert reply.data["name"] == "after" and reply.data["id"] == group_id
    assert call("get_group", path=f"/v1/groups/{group_id}").data["name"] == "after"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": "has space"}, "Invalid value for field 'name'"),
        ({"nam": "x"}, "Field 'nam' is not supported"),
    ],
)
def test_patch_group_checks_the_name(aws, body: dict, message: str) -> None:
    group_id = make_group()
    reply = call("update_group", path=f"/v1/groups/{group_id}", body=body)
    assert reply.status == 400 and reply.body["message"].startswith(message)


def test_patch_and_delete_of_another_accounts_group_are_404(aws) -> None:
    group_id = make_group()
    for op, body in (("update_group", {"name": "stolen"}), ("delete_group", None)):
        kwargs = {"body": body} if body else {}
        reply = call(op, path=f"/v1/groups/{group_id}", account=OTHER, **kwargs)
        assert reply.status == 404 and reply.body["code"] == "NotFound_Group"
    assert call("get_group", path=f"/v1/groups/{group_id}").data["name"] == "analytics"


def test_delete_group_is_409_while_it_holds_connections_then_deletes_it_and_its_destination(aws) -> None:
    group_id = make_group()
    call(
        "create_destination", body={"group_id": group_id, "service": "duckdb", "config": {"path": "a.duckdb"}}
    )
    connection = make_connection(group_id)
    refused = call("delete_group", path=f"/v1/groups/{group_id}")
    assert refused.status == 409 and refused.body["code"] == "Conflict"
    assert "still holds connections" in refused.body["message"]
    call("delete_connection", path=connection_path(connection["id"]))
    reply = call("delete_group", path=f"/v1/groups/{group_id}")
    assert reply.status == 200 and group_id in reply.body["message"] and "data" not in reply.body
    assert call("get_group", path=f"/v1/groups/{group_id}").status == 404
    assert call("get_destination", path=f"/v1/destinations/{group_id}").status == 404
    # Nothing of the group is left in the table.
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    left = ddb.query(
        TableName=aws.env["TABLE_NAME"],
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": f"GROUP#{group_id}"}},
    )
    assert left["Items"] == []
    # Its duckdb file is released too.
    again = {"group_id": make_group(), "service": "duckdb", "config": {"path": "a.duckdb"}}
    assert call("create_destination", body=again).status == 201


# ---- destinations ----------------------------------------------------------------------------------


def make_destination(service: str = "duckdb", config: dict | None = None) -> str:
    group_id = make_group()
    body = {"group_id": group_id, "service": service, "config": config or {"path": "lake/a.duckdb"}}
    assert call("create_destination", body=body).status == 201
    return group_id


def test_patch_destination_merges_config_and_sets_region_and_time_zone(aws) -> None:
    destination_id = make_destination("s3", {"bucket": "lake-bucket", "prefix": "raw/"})
    body = {"config": {"prefix": "curated/"}, "region": "AWS_EU_WEST_1", "time_zone_offset": "+2"}
    reply = call("update_destination", path=f"/v1/destinations/{destination_id}", body=body)
    assert reply.status == 200, reply.body
    assert reply.data["config"]["bucket"] == "lake-bucket" and reply.data["config"]["prefix"] == "curated/"
    assert reply.data["config"]["external_id"] == "acct_example"  # still set by Sluice
    assert (reply.data["region"], reply.data["time_zone_offset"]) == ("AWS_EU_WEST_1", "+2")
    assert call("get_destination", path=f"/v1/destinations/{destination_id}").data == reply.data


def test_patch_destination_refuses_a_bad_config_and_the_service(aws) -> None:
    destination_id = make_destination("s3", {"bucket": "lake-bucket"})
    path = f"/v1/destinations/{destination_id}"
    bad = call("update_destination", path=path, body={"config": {"bucket": "No_Such"}})
    assert bad.status == 400 and bad.body["message"].startswith("Invalid value for field 'config.bucket'")
    service = call("update_destination", path=path, body={"service": "duckdb"})
    assert service.status == 400 and service.body["message"] == "Field 'service' is not supported"
    assert call("get_destination", path=path).data["config"]["bucket"] == "lake-bucket"
    path_change = call(
        "update_destination", path=f"/v1/destinations/{make_destination()}", body={"config": {"path": "b"}}
    )
    assert path_change.status == 400 and path_change.body["message"] == "Field 'config.path' can't be changed"


def test_unknown_destination_is_404_on_patch_delete_and_test(aws) -> None:
    paths = {"update_destination": "", "delete_destination": "", "test_destination": "/test"}
    for op, tail in paths.items():
        reply = call(op, path="/v1/destinations/nope" + tail, body={})
        assert reply.status == 404 and reply.body["code"] == "NotFound_Destination", op


def test_delete_destination_is_409_while_connections_use_it(aws) -> None:
    destination_id = make_destination()
    connection = make_connection(destination_id)
    path = f"/v1/destinations/{destination_id}"
    assert call("delete_destination", path=path).status == 409
    call("delete_connection", path=connection_path(connection["id"]))
    reply = call("delete_destination", path=path)
    assert reply.status == 200 and "data" not in reply.body
    assert call("get_destination", path=path).status == 404
    assert call("get_group", path=f"/v1/groups/{destination_id}").status == 200  # the group stays
    # Its duckdb file is released: another group may write to it now.
    other = {"group_id": make_group(), "service": "duckdb", "config": {"path": "lake/a.duckdb"}}
    assert call("create_destination", body=other).status == 201


def test_destination_test_passes_for_a_writable_duckdb_folder(aws, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SLUICE_DATA_DIR", str(tmp_path))
    from sluice.settings import get_settings

    get_settings.cache_clear()
    destination_id = make_destination()
    reply = call("test_destination", path=f"/v1/destinations/{destination_id}/test", raw_body=None)
    assert reply.status == 200, reply.body
    assert [t["status"] for t in reply.data["setup_tests"]] == ["PASSED"]
    assert reply.data["setup_status"] == "connected"


def test_destination_test_of_a_missing_bucket_fails_and_breaks_it(aws) -> None:
    destination_id = make_destination("s3", {"bucket": "not-created-bucket"})
    reply = call("test_destination", path=f"/v1/destinations/{destination_id}/test", body={})
    assert reply.status == 200, reply.body
    [test] = reply.data["setup_tests"]
    assert test["status"] == "FAILED" and "not-created-bucket" in test["message"]
    assert reply.data["setup_status"] == "broken"
    assert call("get_destination", path=f"/v1/destinations/{destination_id}").data["setup_status"] == "broken"
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="not-created-bucket")
    again = call("test_destination", path=f"/v1/destinations/{destination_id}/test", body={})
    assert again.data["setup_status"] == "connected"


# ---- legacy metadata and single-table resync ------------------------------------------------------


def test_legacy_metadata_tables_and_columns_link_by_parent_id(aws) -> None:
    connection = make_connection(make_group())
    tables = call("get_connection_metadata", path=f"/v1/metadata/connectors/{connection['id']}/tables")
    assert tables.status == 200, tables.body
    [orders] = tables.data["items"]
    assert (orders["name_in_source"], orders["name_in_destination"]) == ("orders", "orders")
    assert set(orders) == {"id", "parent_id", "name_in_source", "name_in_destination"}
    columns = call("get_connection_metadata", path=f"/v1/metadata/connectors/{connection['id']}/columns")
    assert columns.status == 200
    [key] = columns.data["items"]
    assert (
        key["parent_id"] == orders["id"] and key["name_in_source"] == "id" and key["is_primary_key"] is True
    )


def test_legacy_metadata_of_an_unknown_connection_is_404(aws) -> None:
    reply = call("get_connection_metadata", path="/v1/metadata/connectors/nope/tables")
    assert reply.status == 404


def test_single_table_resync_path_of_go_fivetran(aws, bus) -> None:
    connection = make_connection(make_group())
    path = connection_path(connection["id"]) + "/schemas/shop/tables/orders/resync"
    reply = call("resync_connection", path=path, raw_body=None)
    assert reply.status == 200, reply.body
    assert reply.body == {"code": "Success", "message": "Re-sync has been triggered successfully"}
    [event] = [e for e in bus.drain() if e["detail-type"] == "Sync Requested"]
    assert event["detail"]["scope"] == {"shop": ["orders"]} and event["detail"]["historical"] is True
    unknown = call(
        "resync_connection", path=connection_path(connection["id"]) + "/schemas/shop/tables/nope/resync"
    )
    assert unknown.status == 400
    assert unknown.body == {"code": "InvalidInput", "message": "Unknown table 'nope' in schema 'shop'"}
    aliased = call(
        "resync_connection", path=connection_path("missing", alias=True) + "/schemas/s/tables/t/resync"
    )
    assert aliased.status == 404 and aliased.body["code"] == "NotFound_Connector"


def test_destination_test_of_an_unreachable_postgres_fails_with_the_reason(aws, table) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    group_id = make_group()
    config = {"host": "127.0.0.1", "port": port, "database": "d", "user": "u", "password": "p"}
    table.create_destination(
        group_id,
        "acct_example",
        {
            "service": "postgres",
            "region": "AWS_US_EAST_1",
            "time_zone_offset": "0",
            "setup_status": "connected",
            "config": config,
        },
    )
    reply = call("test_destination", path=f"/v1/destinations/{group_id}/test", body={})
    assert reply.status == 200, reply.body
    [test] = reply.data["setup_tests"]
    assert test["status"] == "FAILED" and "Cannot connect to PostgreSQL" in test["message"]
    assert reply.data["setup_status"] == "broken"
