"""List paging on both DynamoDB backends: a cursor only when something follows, and a cursor is
only good for the filters it was returned for (DynamoDB refuses a start key outside the key range;
moto does not)."""

from __future__ import annotations

import pytest

from tests.support.api_events import call, make_connection, make_group, rest_api_config

pytestmark = pytest.mark.backends("moto", "dynamodb_local")


def page(query: dict, path: str = "/v1/connections"):
    reply = call("list_connections", path=path, query=query)
    assert reply.status == 200, reply.body
    return reply.data["items"], reply.data["next_cursor"]


@pytest.mark.parametrize("query", [{}, {"schema": "s1"}], ids=["unfiltered", "schema-filter"])
def test_an_exact_multiple_of_limit_ends_without_a_cursor_to_an_empty_page(aws, query) -> None:
    group_id = make_group()
    for i in range(4):
        make_connection(group_id, config=rest_api_config("s1" if query else f"s{i}"))
        if query:  # the filtered list: other groups' connections with the same schema
            group_id = make_group(f"g{i}")
    first, cursor = page({**query, "limit": "2"})
    assert len(first) == 2 and cursor
    second, cursor = page({**query, "limit": "2", "cursor": cursor})
    assert len(second) == 2
    assert cursor is None  # nothing follows: no cursor to an empty page
    assert {c["id"] for c in first} | {c["id"] for c in second} == {c["id"] for c in first + second}
    assert len({c["id"] for c in first + second}) == 4


def test_groups_list_ends_exactly_at_a_multiple_too(aws) -> None:
    for i in range(2):
        make_group(f"g{i}")
    reply = call("list_groups", query={"limit": "2"})
    assert len(reply.data["items"]) == 2
    assert reply.data["next_cursor"] is None


@pytest.mark.parametrize(
    "second_query",
    [
        lambda g, other: {"group_id": other},
        lambda g, other: {"schema": "a"},
        lambda g, other: {"group_id": g, "schema": "b"},
    ],
    ids=["other-group", "added-schema", "group-and-schema"],
)
def test_a_cursor_reused_with_other_filters_is_a_400(aws, second_query) -> None:
    group_id, other = make_group("one"), make_group("two")
    for schema in ("a", "b", "c"):
        make_connection(group_id, config=rest_api_config(schema))
    make_connection(other, config=rest_api_config("z"))
    _, cursor = page({"group_id": group_id, "limit": "1"})
    assert cursor
    reply = call("list_connections", query={**second_query(group_id, other), "limit": "1", "cursor": cursor})
    assert reply.status == 400, reply.body
    assert reply.body["code"] == "InvalidInput"
    assert "cursor" in reply.body["message"]


def test_a_forged_cursor_outside_the_filtered_key_range_is_a_400(aws) -> None:
    import base64
    import json

    from tests.support.api_events import DEFAULT

    group_id = make_group()
    created = make_connection(group_id)
    # The shape of a real cursor of this group's list, pointing at a key outside the group's range.
    key = {
        "pk": f"CONN#{created['id']}",
        "sk": "CONN",
        "gsi1pk": f"ACCT#{DEFAULT.account_id}#CONN",
        "gsi1sk": "elsewhere#x",
        "f": json.dumps([f"{group_id}#", False, None]),
    }
    token = base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")
    reply = call("list_connections", query={"group_id": group_id, "cursor": token})
    assert reply.status == 400, reply.body
    assert reply.body["code"] == "InvalidInput"
