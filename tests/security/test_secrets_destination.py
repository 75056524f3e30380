"""Issue 9 item 3: a change of where secrets go must come with the secrets again.

Before, a PATCH (or the Connect Card form) that changed only `base_url` kept the stored token, and
the setup tests then sent it to the new host. Now moving `base_url` to another origin without the
secrets is a 400 in the Fivetran envelope, nothing is saved and the new host hears nothing; with the
secrets it works. A real loopback server plays the attacker's host.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from sluice.config_secrets import MASK, SecretBox, moved_destination, seal_config
from sluice.connect_card import cards as connect_card
from sluice.errors import InvalidInput
from sluice.sources import rest_api
from tests.security.echo_server import EchoServer
from tests.support.api_events import call, connection_path, make_connection, make_group, rest_api_config
from tests.support.connect_card_pages import get_page, post_page, query_of

TOKEN = "tok-stored-secret"


@pytest.fixture
def attacker() -> Iterator[EchoServer]:
    with EchoServer() as server:
        yield server


@pytest.fixture
def connection(aws) -> dict[str, Any]:
    return make_connection(make_group(), config=rest_api_config(auth={"type": "bearer", "token": TOKEN}))


def _patch(connection_id: str, config: dict[str, Any], **body: Any) -> Any:
    return call("update_connection", path=connection_path(connection_id), body={"config": config, **body})


def _stored(aws, connection_id: str) -> dict[str, Any]:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    key = {"pk": {"S": f"CONN#{connection_id}"}, "sk": {"S": "CONN"}}
    item = ddb.get_item(TableName=aws.env["TABLE_NAME"], Key=key)["Item"]
    return {"config": json.loads(item["config"]["S"]), "secrets": json.loads(item["secrets"]["S"])}


@pytest.mark.parametrize("token", [None, MASK], ids=["token-absent", "token-masked"])
def test_moving_base_url_without_the_secret_is_400_and_nothing_reaches_the_new_host(
    aws, connection: dict[str, Any], attacker: EchoServer, token: str | None
) -> None:
    before = _stored(aws, connection["id"])
    config: dict[str, Any] = {"base_url": attacker.url}
    if token is not None:
        config["auth"] = {"type": "bearer", "token": token}
    reply = _patch(connection["id"], config, run_setup_tests=True)
    assert reply.status == 400, reply.body
    assert reply.body["code"] == "InvalidInput"
    assert reply.body["message"].startswith("Field 'config.base_url' changes where the secrets are sent")
    assert "'config.auth.token'" in reply.body["message"]
    assert attacker.requests == []
    assert _stored(aws, connection["id"]) == before


def test_moving_base_url_with_the_secret_works(aws, connection: dict[str, Any], attacker: EchoServer) -> None:
    config = {"base_url": attacker.url, "auth": {"type": "bearer", "token": "tok-for-new-host"}}
    reply = _patch(connection["id"], config, run_setup_tests=True)
    assert reply.status == 200, reply.body
    assert reply.data["config"]["base_url"] == attacker.url
    # Only the secret given with the move went there.
    assert [r.headers.get("Authorization") for r in attacker.requests] == ["Bearer tok-for-new-host"]


def test_moving_to_a_new_port_is_a_move_too(aws, connection: dict[str, Any]) -> None:
    reply = _patch(connection["id"], {"base_url": "https://api.example.com:8443"})
    assert reply.status == 400, reply.body
    assert "config.base_url" in reply.body["message"]


def test_a_new_path_on_the_same_origin_keeps_the_secret(aws, connection: dict[str, Any]) -> None:
    before = _stored(aws, connection["id"])
    reply = _patch(connection["id"], {"base_url": "https://API.example.com:443/v2"})
    assert reply.status == 200, reply.body
    assert _stored(aws, connection["id"])["secrets"] == before["secrets"]


def test_moving_while_dropping_the_credentials_needs_no_secret(aws, connection: dict[str, Any]) -> None:
    reply = _patch(connection["id"], {"base_url": "https://other.example.com", "auth": {"type": "none"}})
    assert reply.status == 200, reply.body
    assert _stored(aws, connection["id"])["secrets"] == {}


def test_the_connect_card_form_follows_the_same_rule(aws, attacker: EchoServer) -> None:
    connect_card.forget_signing_key()
    created = make_connection(make_group(), config=rest_api_config(auth={"type": "bearer", "token": TOKEN}))
    body = {"connect_card_config": {"redirect_uri": "https://app.example.com/done"}}
    card = call("create_connect_card", path=connection_path(created["id"]) + "/connect-card", body=body)
    query = query_of(card.data["connect_card"]["uri"])
    fields = get_page(query).form()
    assert fields["auth~bearer.token"] == ""  # blank keeps the stored secret, unless base_url moves
    refused = post_page({**fields, "base_url": attacker.url}, query)
    assert refused.status == 400
    assert "changes where the secrets are sent" in refused.body
    assert attacker.requests == []
    assert _stored(aws, created["id"])["config"]["base_url"] == "https://api.example.com"
    saved = post_page({**fields, "base_url": attacker.url, "auth~bearer.token": "typed-again"}, query)
    assert saved.status == 200, saved.body
    assert _stored(aws, created["id"])["config"]["base_url"] == attacker.url
    assert {r.headers.get("Authorization") for r in attacker.requests} == {"Bearer typed-again"}
    connect_card.forget_signing_key()


class _PlainBox(SecretBox):
    def __init__(self) -> None:
        super().__init__(None, "")

    def encrypt(
        self, connection_id: str, values: dict[str, str], scope: str = "connection_id"
    ) -> dict[str, str]:
        return {pointer: f"sealed:{value}" for pointer, value in values.items()}


def test_the_rule_lives_in_seal_config_and_reads_the_service_declaration() -> None:
    service = rest_api.SERVICE
    # Where the credentials go: the API's origin, and the SSH bastion a tunnelled connection goes through.
    assert dict(service.secret_destinations).keys() == {("base_url",), ("tunnel_host",), ("tunnel_port",)}
    stored_config = rest_api_config(auth={"type": "bearer", "token": MASK})
    moved = rest_api_config(base_url="http://127.0.0.1:9", auth={"type": "bearer", "token": MASK})
    assert moved_destination(stored_config, moved, service.secret_destinations) == "base_url"
    tunnelled = rest_api_config(auth={"type": "bearer", "token": MASK}, tunnel_host="bastion.example.com")
    assert moved_destination(stored_config, tunnelled, service.secret_destinations) == "tunnel_host"
    assert moved_destination(stored_config, stored_config, service.secret_destinations) is None
    stored = {"auth/token": "sealed:old"}
    with pytest.raises(InvalidInput):
        seal_config(
            "c",
            moved,
            service.secret_paths,
            stored,
            _PlainBox(),
            previous=stored_config,
            destinations=service.secret_destinations,
        )
    # A create has no previous config: nothing to move from.
    fresh = rest_api_config(base_url="http://127.0.0.1:9", auth={"type": "bearer", "token": "new"})
    _, sealed = seal_config("c", fresh, service.secret_paths, {}, _PlainBox())
    assert sealed == {"auth/token": "sealed:new"}


POSTGRES = {
    "schema": "pg",
    "host": "db.example.com",
    "port": 5432,
    "database": "shop",
    "user": "sluice",
    "password": "pg-stored-secret",
    "update_method": "XMIN",
}


@pytest.mark.parametrize("moved", [{"host": "attacker.example.com"}, {"port": 6543}], ids=["host", "port"])
def test_a_postgres_password_does_not_follow_a_new_host_or_port(aws, moved: dict[str, Any]) -> None:
    body = {"group_id": make_group(), "service": "postgres", "config": POSTGRES, "run_setup_tests": False}
    created = call("create_connection", body=body)
    assert created.status == 201, created.body
    refused = _patch(created.data["id"], moved, run_setup_tests=False)
    assert refused.status == 400, refused.body
    field = next(iter(moved))
    assert refused.body["message"].startswith(f"Field 'config.{field}' changes where the secrets are sent")
    assert "'config.password'" in refused.body["message"]
    accepted = _patch(created.data["id"], {**moved, "password": "pg-new-secret"}, run_setup_tests=False)
    assert accepted.status == 200, accepted.body
    assert accepted.data["config"][field] == moved[field]
