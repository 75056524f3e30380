"""GET /v1/metadata/connector-types[/{service}] through the get_metadata handler on moto."""

from __future__ import annotations

import pytest

from tests.support.api_events import api_event, call, invoke

OP = "get_metadata"
LIST = "/v1/metadata/connector-types"
SUMMARY_KEYS = {"id", "name", "type", "description", "icon_url", "link_to_docs"}


def test_list_has_every_service_in_the_fivetran_list_envelope(aws) -> None:
    reply = call(OP, path=LIST)
    assert reply.status == 200
    assert reply.body["code"] == "Success"
    items = reply.data["items"]
    assert [i["id"] for i in items] == ["connector_sdk", "postgres", "rest_api", "s3"]
    for item in items:
        assert set(item) == SUMMARY_KEYS
        assert item["icon_url"] is None and item["link_to_docs"] is None
        assert item["name"] and item["description"]
    assert reply.data["next_cursor"] is None


def test_list_pages_with_cursor_and_limit(aws) -> None:
    first = call(OP, path=LIST, query={"limit": "2"})
    assert [i["id"] for i in first.data["items"]] == ["connector_sdk", "postgres"]
    cursor = first.data["next_cursor"]
    assert cursor
    second = call(OP, path=LIST, query={"limit": "2", "cursor": cursor})
    assert [i["id"] for i in second.data["items"]] == ["rest_api", "s3"]
    assert second.data["next_cursor"] is None


@pytest.mark.parametrize(
    "query", [{"limit": "0"}, {"limit": "1001"}, {"cursor": "%%%"}, {"cursor": "bm9wZQ"}]
)
def test_bad_paging_is_400(aws, query: dict[str, str]) -> None:
    reply = call(OP, path=LIST, query=query)
    assert reply.status == 400
    assert reply.body["code"] == "InvalidInput"


def test_one_type_adds_the_config_json_schema(aws) -> None:
    reply = call(OP, path=f"{LIST}/rest_api")
    assert reply.status == 200
    data = reply.data
    assert set(data) == SUMMARY_KEYS | {"config"}
    assert data["id"] == "rest_api" and data["type"] == "API"
    schema = data["config"]
    assert schema["type"] == "object"
    assert {"schema", "base_url", "tables"} <= set(schema["required"])
    bearer = schema["$defs"]["BearerAuth"]["properties"]["token"]
    assert bearer["format"] == "password" and bearer["secret"] is True


def test_s3_type(aws) -> None:
    data = call(OP, path=f"{LIST}/s3").data
    assert data["type"] == "File"
    assert {"schema", "table", "bucket"} <= set(data["config"]["required"])


def test_unknown_type_is_404(aws) -> None:
    reply = call(OP, path=f"{LIST}/oracle")
    assert reply.status == 404
    assert reply.body == {
        "code": "NotFound_ConnectorType",
        "message": "Connector type with id 'oracle' doesn't exist",
    }


def test_trailing_slash_is_tolerated(aws) -> None:
    assert call(OP, path=LIST + "/").status == 200


def test_without_authorizer_context_is_401(aws) -> None:
    event = api_event(OP, path=LIST)
    event["requestContext"].pop("authorizer")
    assert invoke(OP, event).status == 401
