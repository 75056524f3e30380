"""A postgres destination's password: never in the create or get responses, the logs, or the stored
item in clear; sealed with KMS bound to the destination (its group id) and the field."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.support.api_events import call, make_group
from tests.support.postgres import PostgresServer

PASSWORD = "dest-pw-9f3c1e77"


def stored_item(group_id: str) -> dict[str, Any]:
    from sluice.storage.store import get_store

    item = get_store().get_destination(None, group_id)  # the item as stored, not the API's view
    assert item is not None
    return dict(item)


@pytest.fixture
def destination_role(pg_server: PostgresServer, pg_database: str) -> str:
    role = f"writer_{pg_database}"  # roles are the server's, not a database's: one per test
    pg_server.create_role(pg_database, role, PASSWORD)
    pg_server.execute(pg_database, f'GRANT CREATE ON DATABASE "{pg_database}" TO "{role}"')
    return role


def test_the_password_is_never_returned_logged_or_stored_in_clear(
    aws: Any,
    pg_server: PostgresServer,
    pg_database: str,
    destination_role: str,
    capfd: pytest.CaptureFixture[str],
) -> None:
    group_id = make_group()
    config = {
        "host": pg_server.host,
        "port": pg_server.port,
        "database": pg_database,
        "user": destination_role,
        "password": PASSWORD,
    }
    created = call("create_destination", body={"group_id": group_id, "service": "postgres", "config": config})
    assert created.status == 201, created.body
    assert created.data["setup_status"] == "connected"  # the sealed password was the one that connected
    got = call("get_destination", path=f"/v1/destinations/{group_id}")
    item = stored_item(group_id)
    for text in (
        json.dumps(created.body),
        json.dumps(got.body),
        json.dumps(item, default=str),
        capfd.readouterr().out,
    ):
        assert PASSWORD not in text
    assert created.data["config"]["password"] == got.data["config"]["password"] == "******"
    assert item["config"]["password"] == "******"
    assert set(item["secrets"]) == {"password"}


def test_the_ciphertext_is_bound_to_the_destination_and_the_field(
    aws: Any, pg_server: PostgresServer, pg_database: str, destination_role: str
) -> None:
    import boto3
    from botocore.exceptions import ClientError

    group_id = make_group()
    config = {"host": pg_server.host, "port": pg_server.port, "database": pg_database}
    body = {
        "group_id": group_id,
        "service": "postgres",
        "config": {**config, "user": destination_role, "password": PASSWORD},
    }
    assert call("create_destination", body=body).status == 201
    blob = base64.b64decode(stored_item(group_id)["secrets"]["password"])
    kms = boto3.client("kms")
    plain = kms.decrypt(
        CiphertextBlob=blob, EncryptionContext={"destination_id": group_id, "field": "password"}
    )
    assert plain["Plaintext"].decode() == PASSWORD
    for wrong in (
        {"destination_id": "another_group", "field": "password"},
        {"connection_id": group_id, "field": "password"},  # a connection's secret is not a destination's
        {"destination_id": group_id, "field": "user"},
    ):
        with pytest.raises(ClientError):
            kms.decrypt(CiphertextBlob=blob, EncryptionContext=wrong)


def test_a_patched_password_is_sealed_a_moved_host_needs_it_again_and_the_test_uses_it(
    aws: Any, pg_server: PostgresServer, pg_database: str, destination_role: str
) -> None:
    """PATCH /v1/destinations (compat) seals a new password like create; "******" keeps the stored one
    unless host or port moves; POST .../test connects with the sealed password."""
    group_id = make_group()
    config = {
        "host": pg_server.host,
        "port": pg_server.port,
        "database": pg_database,
        "user": destination_role,
    }
    body = {"group_id": group_id, "service": "postgres", "config": {**config, "password": "wrong-first"}}
    assert call("create_destination", body=body).status == 201
    path = f"/v1/destinations/{group_id}"
    patched = call("update_destination", path=path, body={"config": {"password": PASSWORD}})
    assert patched.status == 200, patched.body
    item = stored_item(group_id)
    assert PASSWORD not in json.dumps(patched.body) + json.dumps(item, default=str)
    assert patched.data["config"]["password"] == item["config"]["password"] == "******"
    assert set(item["secrets"]) == {"password"}
    tested = call("test_destination", path=f"{path}/test", body={})
    assert tested.status == 200, tested.body
    assert tested.data["setup_status"] == "connected", tested.data["setup_tests"]
    moved = call("update_destination", path=path, body={"config": {"host": "localhost"}})
    assert moved.status == 400 and moved.body["code"] == "InvalidInput"
    assert "password" in moved.body["message"]
