"""PATCH /v1/connections/{id} through the update_connection handler on moto."""

from __future__ import annotations

import json

import boto3
import pytest

from sluice.errors import ConcurrentUpdate
from tests.support.api_events import DEFAULT, Account, call, connection_path, make_connection, make_group

# The API and its storage on both DynamoDB backends (see tests/conftest.py).
pytestmark = pytest.mark.backends("moto", "dynamodb_local")


def patch(connection_id: str, body: dict, alias: bool = False, account: Account = DEFAULT) -> object:
    return call("update_connection", path=connection_path(connection_id, alias), body=body, account=account)


def stored_item(aws, connection_id: str) -> dict:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    key = {"pk": {"S": f"CONN#{connection_id}"}, "sk": {"S": "CONN"}}
    return ddb.get_item(TableName=aws.env["TABLE_NAME"], Key=key)["Item"]


def test_absent_keys_keep_their_values(aws) -> None:
    created = make_connection(make_group(), sync_frequency=60, pause_after_trial=True)
    reply = patch(created["id"], {"schedule_type": "manual"})
    assert reply.status == 200, reply.body
    assert reply.body["message"] == "Connection has been updated"
    assert reply.data["schedule_type"] == "manual"
    assert reply.data["sync_frequency"] == 60
    assert reply.data["pause_after_trial"] is True
    assert reply.data["config"] == created["config"]


def test_top_level_null_means_not_set(aws) -> None:
    created = make_connection(make_group(), sync_frequency=60)
    reply = patch(created["id"], {"sync_frequency": None, "paused": None})
    assert reply.status == 200
    assert reply.data["sync_frequency"] == 60


def test_null_inside_config_clears_that_key(aws) -> None:
    created = make_connection(make_group(), config={**_config(), "headers": {"X-Tenant": "acme"}})
    assert created["config"]["headers"] == {"X-Tenant": "acme"}
    reply = patch(created["id"], {"config": {"headers": None}})
    assert reply.status == 200, reply.body
    assert reply.data["config"]["headers"] == {}


def test_masked_secret_sent_back_keeps_the_stored_secret(aws) -> None:
    created = make_connection(make_group())
    before = json.loads(stored_item(aws, created["id"])["secrets"]["S"])
    reply = patch(created["id"], {"config": {"auth": {"type": "bearer", "token": "******"}, "page_size": 50}})
    assert reply.status == 200, reply.body
    after = json.loads(stored_item(aws, created["id"])["secrets"]["S"])
    assert after == before
    assert reply.data["config"]["page_size"] == 50


def test_new_secret_replaces_the_stored_one(aws) -> None:
    created = make_connection(make_group())
    before = json.loads(stored_item(aws, created["id"])["secrets"]["S"])
    reply = patch(created["id"], {"config": {"auth": {"type": "bearer", "token": "rotated"}}})
    assert reply.status == 200
    after = json.loads(stored_item(aws, created["id"])["secrets"]["S"])
    assert after["auth/token"] != before["auth/token"]
    assert "rotated" not in json.dumps(reply.body)


def test_switching_auth_type_drops_the_old_secret(aws) -> None:
    created = make_connection(make_group())
    reply = patch(created["id"], {"config": {"auth": {"type": "basic", "username": "u", "password": "p"}}})
    assert reply.status == 200, reply.body
    assert reply.data["config"]["auth"] == {"type": "basic", "username": "u", "password": "******"}
    secrets = json.loads(stored_item(aws, created["id"])["secrets"]["S"])
    assert set(secrets) == {"auth/password"}


@pytest.mark.parametrize("body", [{"config": {"schema": "renamed"}}])
def test_changing_schema_is_400(aws, body: dict) -> None:
    created = make_connection(make_group())
    reply = patch(created["id"], body)
    assert reply.status == 400
    assert reply.body["message"] == "Field 'schema' can't be changed"


def test_unknown_schema_field_at_top_level_is_400(aws) -> None:
    created = make_connection(make_group())
    reply = patch(created["id"], {"schema": "renamed"})
    assert reply.status == 400
    assert reply.body["code"] == "InvalidInput"


def test_body_with_only_setup_test_fields_is_400(aws) -> None:
    created = make_connection(make_group())
    reply = patch(created["id"], {"run_setup_tests": True, "trust_certificates": True})
    assert reply.status == 400
    assert "/test" in reply.body["message"]


def test_pause_and_unpause_move_sync_state(aws) -> None:
    created = make_connection(make_group())
    paused = patch(created["id"], {"paused": True})
    assert paused.data["paused"] is True
    assert paused.data["status"]["sync_state"] == "paused"
    resumed = patch(created["id"], {"paused": False})
    assert resumed.data["status"]["sync_state"] == "scheduled"


def test_is_historical_sync_true_marks_the_next_sync_historical(aws) -> None:
    created = make_connection(make_group())
    reply = patch(created["id"], {"is_historical_sync": True})
    assert reply.data["status"]["is_historical_sync"] is True


def test_daily_sync_time_follows_the_frequency(aws) -> None:
    created = make_connection(make_group())
    daily = patch(created["id"], {"sync_frequency": 1440, "daily_sync_time": "05:00"})
    assert daily.data["daily_sync_time"] == "05:00"
    hourly = patch(created["id"], {"sync_frequency": 60})
    assert hourly.data["daily_sync_time"] is None


def test_invalid_config_change_is_400_and_writes_nothing(aws) -> None:
    created = make_connection(make_group())
    before = stored_item(aws, created["id"])
    reply = patch(created["id"], {"config": {"page_size": "lots"}, "sync_frequency": 60})
    assert reply.status == 400
    assert "config.page_size" in reply.body["message"]
    assert stored_item(aws, created["id"]) == before


def test_unknown_connection_is_404_with_the_path_family_code(aws) -> None:
    assert patch("nope", {"paused": True}).body["code"] == "NotFound_Connection"
    reply = patch("nope", {"paused": True}, alias=True)
    assert reply.status == 404
    assert reply.body["code"] == "NotFound_Connector"


def test_connection_of_another_account_is_404_and_unchanged(aws) -> None:
    created = make_connection(make_group())
    reply = patch(created["id"], {"paused": True}, account=Account("acct_other", "user_other"))
    assert reply.status == 404
    assert call("get_connection", path=connection_path(created["id"])).data["paused"] is False


def test_update_is_announced_on_the_bus(aws, bus) -> None:
    created = make_connection(make_group())
    bus.drain()
    patch(created["id"], {"paused": True})
    events = bus.drain()
    assert [e["detail-type"] for e in events] == ["Connection Updated"]
    assert events[0]["detail"]["connection"]["paused"] is True


def test_a_stale_version_cannot_overwrite_a_newer_one(aws, table) -> None:
    created = make_connection(make_group())
    current = table.get_connection(None, created["id"])
    table.replace_connection(current.model_copy(update={"sync_frequency": 60}), current.version)
    with pytest.raises(ConcurrentUpdate):
        table.replace_connection(current.model_copy(update={"sync_frequency": 120}), current.version)
    assert table.get_connection(None, created["id"]).sync_frequency == 60


def test_a_concurrent_change_between_read_and_write_is_retried_not_lost(aws, table, monkeypatch) -> None:
    from sluice.connections import operations as connections
    from sluice.storage.store import Store

    created = make_connection(make_group())
    original = Store.replace_connection
    interfered = []

    def racing(self, connection, expected_version):
        if not interfered:
            interfered.append(True)
            other = self.get_connection(None, connection.id)
            original(self, other.model_copy(update={"pause_after_trial": True}), other.version)
        return original(self, connection, expected_version)

    monkeypatch.setattr(Store, "replace_connection", racing)
    reply = patch(created["id"], {"sync_frequency": 30})
    assert reply.status == 200
    stored = table.get_connection(None, created["id"])
    assert stored.sync_frequency == 30
    assert stored.pause_after_trial is True  # the other writer's change survived
    assert connections  # imported for the patch target's module


def _config() -> dict:
    from tests.support.api_events import rest_api_config

    return rest_api_config()
