"""Groups: create_group, list_groups and get_group handlers on moto."""

from __future__ import annotations

import pytest

from tests.support.api_events import Account, call, make_group

# The API and its storage on both DynamoDB backends (see tests/conftest.py).
pytestmark = pytest.mark.backends("moto", "dynamodb_local")


def test_create_group_is_201_with_id_name_created_at(aws) -> None:
    reply = call("create_group", body={"name": "analytics"})
    assert reply.status == 201
    assert set(reply.data) == {"id", "name", "created_at"}
    assert reply.data["name"] == "analytics"


def test_group_name_is_required_and_checked(aws) -> None:
    assert call("create_group", body={}).body == {
        "code": "InvalidInput",
        "message": "Field 'name' is required",
    }
    assert call("create_group", body={"name": "bad name!"}).status == 400


def test_get_group_and_404s(aws) -> None:
    group_id = make_group()
    assert call("get_group", path=f"/v1/groups/{group_id}").data["id"] == group_id
    missing = call("get_group", path="/v1/groups/nope")
    assert missing.status == 404 and missing.body["code"] == "NotFound_Group"
    other = call("get_group", path=f"/v1/groups/{group_id}", account=Account("acct_other", "u"))
    assert other.status == 404


def test_list_groups_pages_and_isolation(aws) -> None:
    ids = {make_group(f"g{i}") for i in range(5)}
    make_group("theirs", account=Account("acct_other", "u"))
    seen, cursor = [], None
    while True:
        reply = call("list_groups", query={"limit": "2", **({"cursor": cursor} if cursor else {})})
        assert reply.status == 200
        seen += [g["id"] for g in reply.data["items"]]
        cursor = reply.data["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(ids)


def test_list_groups_trailing_slash(aws) -> None:
    make_group()
    assert len(call("list_groups", path="/v1/groups/", query={}).data["items"]) == 1
