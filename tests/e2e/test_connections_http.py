"""The Connections API over real HTTP against the local stack, the way a user's client talks to it."""

from __future__ import annotations

import uuid

import pytest
import requests

from tests.support.local_stack import LocalStackProcess


def rest_config(schema: str) -> dict:
    return {
        "schema": schema,
        "base_url": "https://api.example.com",
        "auth": {"type": "api_key", "header": "X-Key", "api_key": "k-123-secret"},
        "tables": [{"name": "orders", "path": "/orders", "primary_key": ["id"]}],
    }


def new_schema() -> str:
    return "s_" + uuid.uuid4().hex[:8]


def test_full_lifecycle_over_http(stack: LocalStackProcess) -> None:
    http = stack.session()
    created = http.post(
        f"{stack.url}/v1/connections",
        json={"group_id": stack.group_id, "service": "rest_api", "config": rest_config(new_schema())},
    )
    assert created.status_code == 201, created.text
    connection = created.json()["data"]
    assert connection["config"]["auth"]["api_key"] == "******"

    got = http.get(f"{stack.url}/v1/connectors/{connection['id']}")
    assert got.status_code == 200
    assert got.json()["data"] == connection

    updated = http.patch(f"{stack.url}/v1/connections/{connection['id']}", json={"sync_frequency": "30"})
    assert updated.status_code == 200
    assert updated.json()["data"]["sync_frequency"] == 30

    listed = http.get(f"{stack.url}/v1/groups/{stack.group_id}/connectors/")
    assert connection["id"] in [c["id"] for c in listed.json()["data"]["items"]]

    deleted = http.delete(f"{stack.url}/v1/connections/{connection['id']}")
    assert deleted.status_code == 200
    assert deleted.json()["code"] == "Success"
    assert http.get(f"{stack.url}/v1/connections/{connection['id']}").status_code == 404

    for kind in ("Connection Created", "Connection Updated", "Connection Deleted"):
        # This connection's own event: another test's events of the same kind are not the signal.
        assert stack.events_of(connection["id"], kind), f"no {kind} event on the bus"
    assert "k-123-secret" not in (stack.data_dir / "events.jsonl").read_text()


@pytest.mark.parametrize(
    "accept", [None, "*/*", "application/json", "application/json;version=2", "application/json; version=2"]
)
def test_every_accept_header_gets_the_same_json(stack: LocalStackProcess, accept: str | None) -> None:
    headers = {"Accept": accept} if accept else {}
    reply = stack.session().get(f"{stack.url}/v1/groups", headers=headers)
    assert reply.status_code == 200
    assert reply.json()["data"]["items"]


def test_missing_or_wrong_credentials_are_401_json(stack: LocalStackProcess) -> None:
    for auth in (None, ("nope", "nope"), (stack.api_key, "wrong")):
        reply = requests.get(f"{stack.url}/v1/groups", auth=auth, timeout=10)
        assert reply.status_code == 401
        assert reply.json()["code"] == "Unauthorized"


def test_unknown_route_is_404_and_wrong_method_405_json(stack: LocalStackProcess) -> None:
    http = stack.session()
    missing = http.get(f"{stack.url}/v1/nothing/here")
    assert missing.status_code == 404 and missing.json()["code"] == "NotFound"
    wrong = http.put(f"{stack.url}/v1/connections/abc", json={})
    assert wrong.status_code == 405 and wrong.json()["code"] == "MethodNotAllowed"


def test_bad_input_over_http(stack: LocalStackProcess) -> None:
    http = stack.session()
    malformed = http.post(
        f"{stack.url}/v1/connections", data="{oops", headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 400 and malformed.json()["code"] == "InvalidInput"
    bad_cursor = http.get(f"{stack.url}/v1/connections", params={"cursor": "%%%"})
    assert bad_cursor.status_code == 400
    big = http.post(f"{stack.url}/v1/groups", json={"name": "x" * (2 * 1024 * 1024)})
    assert big.status_code == 413


def test_groups_and_destinations_over_http(stack: LocalStackProcess) -> None:
    http = stack.session()
    group = http.post(f"{stack.url}/v1/groups", json={"name": "g_" + uuid.uuid4().hex[:6]})
    assert group.status_code == 201
    group_id = group.json()["data"]["id"]
    assert http.get(f"{stack.url}/v1/groups/{group_id}").json()["data"]["id"] == group_id
    destination = http.post(
        f"{stack.url}/v1/destinations",
        json={"group_id": group_id, "service": "duckdb", "config": {"path": "other.duckdb"}},
    )
    assert destination.status_code == 201
    assert http.get(f"{stack.url}/v1/destinations/{group_id}").json()["data"]["service"] == "duckdb"
