"""GET /v1/connections and /v1/groups/{id}/connections through the list_connections handler on moto."""

from __future__ import annotations

import pytest

from tests.support.api_events import Account, call, make_connection, make_group, rest_api_config

# The API and its storage on both DynamoDB backends (see tests/conftest.py).
pytestmark = pytest.mark.backends("moto", "dynamodb_local")


def list_all(query: dict, path: str = "/v1/connections") -> list[dict]:
    seen: list[dict] = []
    cursor = None
    while True:
        reply = call("list_connections", path=path, query={**query, **({"cursor": cursor} if cursor else {})})
        assert reply.status == 200, reply.body
        seen.extend(reply.data["items"])
        cursor = reply.data["next_cursor"]
        assert reply.data["nextCursor"] == cursor
        if not cursor:
            return seen


def test_pages_cover_every_connection_once(aws) -> None:
    group_id = make_group()
    ids = {make_connection(group_id, config=rest_api_config(f"s{i}"))["id"] for i in range(7)}
    seen = list_all({"limit": "3"})
    assert [c["id"] for c in seen if c["id"] in ids] == [c["id"] for c in seen]
    assert {c["id"] for c in seen} == ids
    assert len(seen) == 7


def test_last_page_has_null_next_cursor_and_message(aws) -> None:
    make_connection(make_group())
    reply = call("list_connections", query={})
    assert reply.body["message"] == "Connections list retrieved successfully"
    assert reply.data["next_cursor"] is None
    assert len(reply.data["items"]) == 1


def test_group_and_schema_filters(aws) -> None:
    one, two = make_group("one"), make_group("two")
    make_connection(one, config=rest_api_config("a"))
    make_connection(one, config=rest_api_config("b"))
    make_connection(two, config=rest_api_config("a"))
    assert {c["schema"] for c in list_all({"group_id": one})} == {"a", "b"}
    assert [c["group_id"] for c in list_all({"group_id": one, "schema": "a"})] == [one]
    assert sorted(c["group_id"] for c in list_all({"schema": "a", "limit": "1"})) == sorted([one, two])


def test_group_route_and_its_connectors_alias(aws) -> None:
    group_id = make_group()
    make_connection(group_id)
    for path in (f"/v1/groups/{group_id}/connections", f"/v1/groups/{group_id}/connectors/"):
        assert len(list_all({}, path=path)) == 1


def test_group_route_for_unknown_group_is_404(aws) -> None:
    reply = call("list_connections", path="/v1/groups/nope/connections", query={})
    assert reply.status == 404
    assert reply.body["code"] == "NotFound_Group"


def test_other_accounts_connections_are_invisible(aws) -> None:
    make_connection(make_group(account=Account("acct_other", "u")), account=Account("acct_other", "u"))
    assert list_all({}) == []


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "many"])
def test_limit_outside_1_to_1000_is_400(aws, limit: str) -> None:
    reply = call("list_connections", query={"limit": limit})
    assert reply.status == 400
    assert reply.body["code"] == "InvalidInput"
    assert "limit" in reply.body["message"]


@pytest.mark.parametrize("cursor", ["garbage!", "eyJhIjogMX0", "W10"])
def test_undecodable_cursor_is_400(aws, cursor: str) -> None:
    reply = call("list_connections", query={"cursor": cursor})
    assert reply.status == 400
    assert reply.body == {"code": "InvalidInput", "message": "Invalid cursor"}


def test_cursor_from_another_account_is_400(aws) -> None:
    other = Account("acct_other", "u")
    group_id = make_group(account=other)
    for i in range(2):
        make_connection(group_id, account=other, config=rest_api_config(f"s{i}"))
    theirs = call("list_connections", query={"limit": "1"}, account=other).data["next_cursor"]
    assert theirs
    reply = call("list_connections", query={"cursor": theirs})
    assert reply.status == 400


def test_group_filter_with_another_accounts_group_is_404(aws) -> None:
    theirs = make_group(account=Account("acct_other", "u"))
    reply = call("list_connections", query={"group_id": theirs})
    assert reply.status == 404
    assert reply.body["code"] == "NotFound_Group"
