"""DELETE /v1/connections/{id} through the delete_connection handler on moto."""

from __future__ import annotations

import pytest

from tests.support.api_events import Account, call, connection_path, make_connection, make_group

# The API and its storage on both DynamoDB backends (see tests/conftest.py).
pytestmark = pytest.mark.backends("moto", "dynamodb_local")


def test_delete_returns_200_with_code_and_message_naming_the_id(aws) -> None:
    created = make_connection(make_group())
    reply = call("delete_connection", path=connection_path(created["id"]))
    assert reply.status == 200
    assert set(reply.body) == {"code", "message"}
    assert created["id"] in reply.body["message"]
    assert call("get_connection", path=connection_path(created["id"])).status == 404


def test_delete_frees_the_schema_name(aws) -> None:
    group_id = make_group()
    created = make_connection(group_id)
    call("delete_connection", path=connection_path(created["id"]))
    make_connection(group_id)  # same schema again


def test_delete_unknown_is_404_and_alias_reports_connector(aws) -> None:
    assert call("delete_connection", path=connection_path("gone")).status == 404
    reply = call("delete_connection", path=connection_path("gone", alias=True))
    assert reply.body["code"] == "NotFound_Connector"


def test_delete_of_another_accounts_connection_is_404_and_keeps_it(aws) -> None:
    created = make_connection(make_group())
    reply = call("delete_connection", path=connection_path(created["id"]), account=Account("acct_x", "u"))
    assert reply.status == 404
    assert call("get_connection", path=connection_path(created["id"])).status == 200


def test_delete_is_announced_on_the_bus(aws, bus) -> None:
    created = make_connection(make_group())
    bus.drain()
    call("delete_connection", path=connection_path(created["id"]))
    events = bus.drain()
    assert [e["detail-type"] for e in events] == ["Connection Deleted"]
    assert events[0]["detail"]["connection_id"] == created["id"]
