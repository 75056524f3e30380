"""GET /v1/connections/{id} through the get_connection handler on moto."""

from __future__ import annotations

import pytest

from tests.support.api_events import Account, call, connection_path, make_connection, make_group

# The API and its storage on both DynamoDB backends (see tests/conftest.py).
pytestmark = pytest.mark.backends("moto", "dynamodb_local")


def test_get_returns_the_created_object(aws) -> None:
    created = make_connection(make_group())
    reply = call("get_connection", path=connection_path(created["id"]))
    assert reply.status == 200
    assert reply.body["code"] == "Success"
    assert reply.data == created


def test_get_through_the_connectors_alias_and_trailing_slash(aws) -> None:
    created = make_connection(make_group())
    reply = call("get_connection", path=connection_path(created["id"], alias=True) + "/")
    assert reply.status == 200
    assert reply.data["id"] == created["id"]


def test_unknown_id_is_404_not_found_connection(aws) -> None:
    reply = call("get_connection", path=connection_path("missing"))
    assert reply.status == 404
    assert reply.body == {
        "code": "NotFound_Connection",
        "message": "Connection with id 'missing' doesn't exist",
    }


def test_another_accounts_connection_is_404(aws) -> None:
    created = make_connection(make_group())
    reply = call("get_connection", path=connection_path(created["id"]), account=Account("acct_other", "u"))
    assert reply.status == 404


def test_wrong_method_on_a_known_path_is_405_json(aws) -> None:
    from tests.support.api_events import api_event, invoke

    event = api_event("get_connection", path=connection_path("abc"))
    event["httpMethod"] = "PUT"
    reply = invoke("get_connection", event)
    assert reply.status == 405
    assert reply.body["code"] == "MethodNotAllowed"


def test_request_without_authorizer_context_is_401(aws) -> None:
    from tests.support.api_events import api_event, invoke

    event = api_event("get_connection", path=connection_path("abc"))
    event["requestContext"].pop("authorizer")
    reply = invoke("get_connection", event)
    assert reply.status == 401
    assert reply.body["code"] == "Unauthorized"
