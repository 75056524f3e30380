"""Issue 9, item 6: inputs past DynamoDB's limits (the 400 KB item, 32 levels of nesting) are a 413 or
a 400 naming the limit, before anything is written: create, PATCH, PATCH state."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sluice.api.resolver import MAX_BODY_BYTES
from sluice.api.validation import MAX_ITEM_BYTES, MAX_JSON_DEPTH, item_size, json_depth
from sluice.storage.store import to_dynamo
from tests.support.api_events import call, make_connection, make_group, rest_api_config

TOO_BIG = "x" * (MAX_ITEM_BYTES + 1)  # one attribute alone is over the limit; the body is under 1 MB
SIZE_MESSAGE = "over its item size limit of 400,000 bytes (400 KB)"
DEPTH_MESSAGE = f"Request body nests deeper than {MAX_JSON_DEPTH} levels (DynamoDB's limit)"


def nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


def many_tables(count: int) -> list[dict[str, Any]]:
    return [{"name": f"table_{i:05d}", "path": f"/v1/t{i}", "primary_key": ["id"]} for i in range(count)]


def create(group_id: str, config: dict[str, Any]) -> Any:
    body = {"group_id": group_id, "service": "rest_api", "config": config, "run_setup_tests": False}
    return call("create_connection", body=body)


def assert_nothing_created(group_id: str) -> None:
    assert call("list_connections", query={"group_id": group_id}).data["items"] == []
    assert create(group_id, rest_api_config()).status == 201  # the schema was never taken


def params_of(size: str) -> dict[str, Any]:
    return rest_api_config(
        tables=[{"name": "orders", "path": "/v1/orders", "primary_key": ["id"], "params": {"q": size}}]
    )


@pytest.mark.parametrize(
    "config",
    [params_of(TOO_BIG), rest_api_config(tables=many_tables(5_000))],
    ids=["config-over-400KB", "5000-tables"],
)
def test_a_create_past_the_item_size_is_a_413_naming_the_limit(aws, config: dict[str, Any]) -> None:
    group_id = make_group()
    assert len(json.dumps({"config": config})) < 1024 * 1024  # under the API's body limit

    reply = create(group_id, config)

    assert reply.status == 413, reply.body
    assert reply.body["code"] == "PayloadTooLarge"
    assert reply.body["message"].startswith("The connection would take ")
    assert SIZE_MESSAGE in reply.body["message"]
    assert_nothing_created(group_id)


def test_a_create_nested_1000_deep_is_a_400_naming_the_limit(aws) -> None:
    group_id = make_group()
    config = rest_api_config(
        tables=[{"name": "t", "path": "/t", "primary_key": ["id"], "deep": nested(1000)}]
    )

    reply = create(group_id, config)

    assert reply.status == 400, reply.body
    assert reply.body == {"code": "InvalidInput", "message": DEPTH_MESSAGE}
    assert_nothing_created(group_id)


def test_an_update_past_the_item_size_is_a_413_and_changes_nothing(aws) -> None:
    created = make_connection(make_group())
    path = f"/v1/connections/{created['id']}"
    before = call("get_connection", path=path).data

    for config in (params_of(TOO_BIG), {"tables": many_tables(5_000)}):
        config.pop("schema", None)
        reply = call("update_connection", path=path, body={"config": config, "run_setup_tests": False})
        assert reply.status == 413, reply.body
        assert SIZE_MESSAGE in reply.body["message"]
    deep = call("update_connection", path=path, body={"config": {"headers": nested(1000)}})
    assert deep.status == 400 and deep.body["message"] == DEPTH_MESSAGE

    assert call("get_connection", path=path).data == before


def test_a_state_past_the_body_limit_or_nesting_is_refused_and_the_state_stays(aws) -> None:
    created = make_connection(make_group(), paused=True)
    path = f"/v1/connections/{created['id']}/state"
    assert call("update_connection_state", path=path, body={"state": {"cursor": 1}}).status == 200

    huge = call("update_connection_state", path=path, body={"state": {"blob": "x" * MAX_BODY_BYTES}})
    deep = call("update_connection_state", path=path, body={"state": {"deep": nested(1000)}})

    assert huge.status == 413 and "Request body is larger than" in huge.body["message"]
    assert deep.status == 400 and deep.body["message"] == DEPTH_MESSAGE
    assert call("get_connection_state", path=path).data == {"state": {"cursor": 1}}


def test_a_state_past_one_item_is_kept_whole(aws) -> None:
    """A state is not bound by DynamoDB's 400 KB item: storage splits it over items of its snapshot."""
    created = make_connection(make_group(), paused=True)
    path = f"/v1/connections/{created['id']}/state"
    state = {"blob": TOO_BIG, "deep": nested(MAX_JSON_DEPTH - 3)}

    assert call("update_connection_state", path=path, body={"state": state}).status == 200
    assert call("get_connection_state", path=path).data == {"state": state}


def test_the_depth_count_ignores_brackets_inside_strings() -> None:
    assert json_depth('{"a": "[[[[{{{{\\"]]]"}') == 1
    assert json_depth(json.dumps(nested(40))) == 40
    assert json_depth("3") == 0


def test_the_item_size_counts_names_and_values_as_dynamodb_does() -> None:
    # DynamoDB: strings by their UTF-8 bytes, names too; numbers by significant digits; booleans 1 byte.
    assert item_size(to_dynamo({"pk": "CONN#ab"})) == 2 + 7
    assert item_size(to_dynamo({"é": "é"})) == 4
    assert item_size(to_dynamo({"n": 12345})) == 1 + 4
    assert item_size(to_dynamo({"b": True})) == 2
    assert item_size(to_dynamo({"m": {"k": "v"}})) == 1 + 3 + 1 + 1 + 1
