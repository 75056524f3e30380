"""Destinations: create_destination and get_destination handlers on moto."""

from __future__ import annotations

import pytest

from tests.support.api_events import Account, call, make_group

# The API and its storage on both DynamoDB backends (see tests/conftest.py).
pytestmark = pytest.mark.backends("moto", "dynamodb_local")


def test_create_and_get_destination(aws) -> None:
    group_id = make_group()
    reply = call(
        "create_destination", body={"group_id": group_id, "service": "duckdb", "config": {"path": "a.duckdb"}}
    )
    assert reply.status == 201, reply.body
    assert reply.data["id"] == group_id
    assert reply.data["service"] == "duckdb"
    assert reply.data["config"] == {"path": "a.duckdb"}
    got = call("get_destination", path=f"/v1/destinations/{group_id}")
    assert got.status == 200
    assert got.data == reply.data


def test_s3_destination_config(aws) -> None:
    group_id = make_group()
    body = {"group_id": group_id, "service": "s3", "config": {"bucket": "lake-bucket", "prefix": "raw/"}}
    assert call("create_destination", body=body).data["config"] == {
        "bucket": "lake-bucket",
        "prefix": "raw/",
        "role_arn": None,
        "external_id": "acct_example",  # set by Sluice: the account id a role_arn is assumed with
    }


def test_a_group_has_at_most_one_destination(aws) -> None:
    group_id = make_group()
    body = {"group_id": group_id, "service": "duckdb", "config": {"path": "a.duckdb"}}
    assert call("create_destination", body=body).status == 201
    assert call("create_destination", body=body).status == 409


def test_bad_destinations(aws) -> None:
    group_id = make_group()
    assert call("create_destination", body={"group_id": group_id, "service": "oracle"}).status == 400
    reply = call("create_destination", body={"group_id": group_id, "service": "duckdb", "config": {}})
    assert reply.body == {"code": "InvalidInput", "message": "Field 'config.path' is required"}
    missing = call(
        "create_destination", body={"group_id": "nope", "service": "duckdb", "config": {"path": "x"}}
    )
    assert missing.status == 404 and missing.body["code"] == "NotFound_Group"


def test_destination_of_another_account_is_404(aws) -> None:
    group_id = make_group()
    call("create_destination", body={"group_id": group_id, "service": "duckdb", "config": {"path": "a"}})
    reply = call("get_destination", path=f"/v1/destinations/{group_id}", account=Account("acct_x", "u"))
    assert reply.status == 404
    assert reply.body["code"] == "NotFound_Destination"
