"""Fields Fivetran accepts on create and update that Sluice stores but does not act on: accepted, stored,
echoed where Fivetran echoes them; a misspelt or unknown field is still a clear 400."""

from __future__ import annotations

import pytest

from tests.support.api_events import call, connection_path, make_connection, make_group, rest_api_config

UNUSED = {
    "destination_configuration": {"virtual_warehouse": "LOADING_WH"},
    "external_secrets_manager_id": "esm_1",
    "external_secrets_keys_config": {"auth": {"token": "vault-key/token"}},
}


def get(connection_id: str) -> dict:
    reply = call("get_connection", path=connection_path(connection_id))
    assert reply.status == 200, reply.body
    return dict(reply.data)


def test_create_accepts_stores_and_echoes_them(aws) -> None:
    created = make_connection(make_group(), **UNUSED)
    for data in (created, get(created["id"])):
        assert data["destination_configuration"] == {"virtual_warehouse": "LOADING_WH"}
        assert data["external_secrets_manager_id"] == "esm_1"
        # Fivetran never returns the keys config: neither do we.
        assert "external_secrets_keys_config" not in data


def test_update_accepts_them_and_schema_status(aws) -> None:
    created = make_connection(make_group())
    assert created["destination_configuration"] is None
    assert created["status"]["schema_status"] == "ready"
    body = {**UNUSED, "schema_status": "BLOCKED_ON_CAPTURE"}
    reply = call("update_connection", path=connection_path(created["id"]), body=body)
    assert reply.status == 200, reply.body
    for data in (reply.data, get(created["id"])):
        assert data["destination_configuration"] == {"virtual_warehouse": "LOADING_WH"}
        assert data["external_secrets_manager_id"] == "esm_1"
        assert data["status"]["schema_status"] == "blocked_on_capture"


def test_the_keys_config_is_stored(aws, table) -> None:
    created = make_connection(make_group(), **UNUSED)
    stored = table.get_connection("acct_example", created["id"])
    assert stored.external_secrets_keys_config == {"auth": {"token": "vault-key/token"}}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"destination_configuraton": {}}, "Field 'destination_configuraton' is not supported"),
        (
            {"destination_configuration": {"warehouse": "X"}},
            "Field 'destination_configuration.warehouse' is not supported",
        ),
        ({"schema_status": "frozen"}, "Invalid value for field 'schema_status'"),
        ({"external_secrets_manager_id": 5}, "Invalid value for field 'external_secrets_manager_id'"),
    ],
)
def test_misspelt_or_invalid_is_a_clear_400(aws, body: dict, message: str) -> None:
    group_id = make_group()
    reply = call(
        "create_connection",
        body={"group_id": group_id, "service": "rest_api", "config": rest_api_config(), **body},
    )
    assert reply.status == 400 and reply.body["code"] == "InvalidInput"
    assert reply.body["message"].startswith(message), reply.body
