"""POST /v1/connections through the create_connection handler on moto."""

from __future__ import annotations

import base64
import json
import re

import boto3
import pytest

from tests.support.api_events import DEFAULT, Account, call, make_connection, make_group, rest_api_config

# The API and its storage on both DynamoDB backends (see tests/conftest.py).
pytestmark = pytest.mark.backends("moto", "dynamodb_local")


WIRE_KEYS = {
    "id",
    "group_id",
    "service",
    "service_version",
    "schema",
    "connected_by",
    "created_at",
    "succeeded_at",
    "failed_at",
    "paused",
    "pause_after_trial",
    "sync_frequency",
    "schedule_type",
    "daily_sync_time",
    "data_delay_sensitivity",
    "data_delay_threshold",
    "networking_method",
    "private_link_id",
    "proxy_agent_id",
    "hybrid_deployment_agent_id",
    "destination_schema_names",
    "destination_configuration",
    "external_secrets_manager_id",
    "schedule",
    "source_sync_details",
    "config",
    "status",
}
STATUS_KEYS = {
    "setup_state", "sync_state", "update_state", "is_historical_sync", "rescheduled_for", "schema_status",
    "tasks", "warnings",
}  # fmt: skip
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def create(body: dict, account: Account = DEFAULT, **kwargs) -> object:
    return call("create_connection", body=body, account=account, **kwargs)


def test_create_returns_201_with_every_key_and_fivetran_defaults(aws) -> None:
    group_id = make_group()
    reply = create({"group_id": group_id, "service": "rest_api", "config": rest_api_config()})
    assert reply.status == 201
    assert reply.body["code"] == "Success"
    assert reply.body["message"] == "Connection has been created"
    data = reply.data
    assert set(data) >= WIRE_KEYS
    assert set(data["status"]) == STATUS_KEYS
    assert data["group_id"] == group_id
    assert data["schema"] == "shop"
    assert data["service"] == "rest_api"
    assert data["service_version"] == 1
    assert data["connected_by"] == "user_example"
    assert TIMESTAMP.match(data["created_at"])
    assert data["succeeded_at"] is None and data["failed_at"] is None
    assert data["paused"] is False and data["pause_after_trial"] is False
    assert data["sync_frequency"] == 360 and data["schedule_type"] == "auto"
    assert data["daily_sync_time"] is None
    assert data["data_delay_sensitivity"] == "NORMAL" and data["data_delay_threshold"] == 0
    assert data["networking_method"] == "Directly"
    assert data["status"]["setup_state"] == "incomplete"
    assert data["status"]["sync_state"] == "scheduled"
    assert data["status"]["update_state"] == "on_schedule"
    assert data["status"]["is_historical_sync"] is True
    assert data["status"]["rescheduled_for"] is None
    # The setup tests ran (api.example.com does not resolve here): each failed one is a task.
    failed = [t["title"] for t in data["setup_tests"] if t["status"] in ("FAILED", "JOB_FAILED")]
    assert failed
    tasks = data["status"]["tasks"]
    assert [(t["code"], t["message"]) for t in tasks] == [("setup_test_failed", title) for title in failed]
    assert data["status"]["warnings"] == []


def test_config_is_returned_without_naming_keys_and_with_secrets_masked(aws) -> None:
    data = make_connection(make_group())
    assert "schema" not in data["config"]
    assert data["config"]["auth"] == {"type": "bearer", "token": "******"}
    assert "tok-secret-1" not in json.dumps(data)


def test_secret_is_stored_encrypted_with_kms_and_bound_to_the_connection(aws) -> None:
    data = make_connection(make_group())
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    item = ddb.get_item(
        TableName=aws.env["TABLE_NAME"], Key={"pk": {"S": f"CONN#{data['id']}"}, "sk": {"S": "CONN"}}
    )
    raw = json.dumps(item["Item"])
    assert "tok-secret-1" not in raw
    secrets = json.loads(item["Item"]["secrets"]["S"])
    kms = boto3.client("kms", region_name="us-east-1")
    plain = kms.decrypt(
        CiphertextBlob=base64.b64decode(secrets["auth/token"]),
        EncryptionContext={"connection_id": data["id"], "field": "auth/token"},
    )["Plaintext"]
    assert plain == b"tok-secret-1"


def test_numbers_as_strings_and_explicit_nulls_are_accepted(aws) -> None:
    reply = create(
        {
            "group_id": make_group(),
            "service": "rest_api",
            "config": rest_api_config(),
            "sync_frequency": "60",
            "paused": None,
            "daily_sync_time": None,
            "networking_method": None,
        }
    )
    assert reply.status == 201, reply.body
    assert reply.data["sync_frequency"] == 60
    assert reply.data["paused"] is False
    assert reply.data["networking_method"] == "Directly"


def test_daily_sync_time_is_returned_only_at_1440(aws) -> None:
    group_id = make_group()
    daily = make_connection(group_id, sync_frequency=1440, daily_sync_time="03:00")
    assert daily["daily_sync_time"] == "03:00"
    hourly = make_connection(
        group_id, config=rest_api_config("other"), sync_frequency=60, daily_sync_time="03:00"
    )
    assert hourly["daily_sync_time"] is None


def test_paused_connection_reads_sync_state_paused(aws) -> None:
    data = make_connection(make_group(), paused=True)
    assert data["paused"] is True
    assert data["status"]["sync_state"] == "paused"


@pytest.mark.parametrize(
    ("body_change", "message"),
    [
        ({"group_id": None}, "Field 'group_id' is required"),
        ({"service": None}, "Field 'service' is required"),
        ({"sync_frequency": 7}, "Invalid value for field 'sync_frequency'"),
        ({"sync_frequency": "often"}, "Invalid value for field 'sync_frequency'"),
        ({"schedule_type": "sometimes"}, "Invalid value for field 'schedule_type'"),
        ({"daily_sync_time": "03:30"}, "Invalid value for field 'daily_sync_time'"),
        ({"data_delay_sensitivity": "MEDIUM"}, "Invalid value for field 'data_delay_sensitivity'"),
        ({"networking_method": "directly"}, "Invalid value for field 'networking_method'"),
        ({"networking_method": "PrivateLink"}, "Field 'private_link_id' is required"),
        ({"networking_method": "ProxyAgent"}, "Field 'proxy_agent_id' is required"),
        ({"data_delay_sensitivity": "CUSTOM"}, "Field 'data_delay_threshold' must be greater than 0"),
        ({"paused": "perhaps"}, "Invalid value for field 'paused'"),
        ({"surprise": 1}, "Field 'surprise' is not supported"),
        ({"config": {"base_url": "https://x.example.com", "tables": []}}, "Field 'schema' is required"),
        ({"config": rest_api_config(base_url="ftp://x")}, "Invalid value for field 'config.base_url'"),
        (
            {"config": rest_api_config(tables=[{"name": "t", "path": "/t"}])},
            "Field 'config.tables.0.primary_key'",
        ),
    ],
)
def test_bad_input_is_400_invalid_input_naming_the_field(aws, body_change: dict, message: str) -> None:
    body = {"group_id": make_group(), "service": "rest_api", "config": rest_api_config(), **body_change}
    reply = create(body)
    assert reply.status == 400, reply.body
    assert reply.body["code"] == "InvalidInput"
    assert message in reply.body["message"]
    assert "data" not in reply.body


def test_missing_group_id_is_400(aws) -> None:
    reply = create({"service": "rest_api", "config": rest_api_config()})
    assert reply.status == 400
    assert reply.body == {"code": "InvalidInput", "message": "Field 'group_id' is required"}


def test_unknown_service_is_400(aws) -> None:
    reply = create({"group_id": make_group(), "service": "mainframe", "config": {"schema": "x"}})
    assert reply.status == 400
    assert reply.body["message"] == "Unsupported connector service 'mainframe'"


def test_unknown_group_is_404_not_found_group(aws) -> None:
    reply = create({"group_id": "nosuchgroup", "service": "rest_api", "config": rest_api_config()})
    assert reply.status == 404
    assert reply.body["code"] == "NotFound_Group"


def test_group_of_another_account_is_404(aws) -> None:
    theirs = make_group(account=Account("acct_other", "user_other"))
    reply = create({"group_id": theirs, "service": "rest_api", "config": rest_api_config()})
    assert reply.status == 404
    assert reply.body["code"] == "NotFound_Group"


def test_duplicate_schema_in_a_group_is_409_and_writes_nothing(aws) -> None:
    group_id = make_group()
    make_connection(group_id)
    reply = create({"group_id": group_id, "service": "rest_api", "config": rest_api_config()})
    assert reply.status == 409
    assert reply.body["code"] == "Conflict"
    listed = call("list_connections", query={"group_id": group_id})
    assert len(listed.data["items"]) == 1


def test_same_schema_in_another_group_is_fine(aws) -> None:
    make_connection(make_group("one"))
    make_connection(make_group("two"))


@pytest.mark.parametrize(
    ("raw", "status"),
    [("{not json", 400), ("[1, 2]", 400), ('"text"', 400), ("null", 400)],
)
def test_malformed_bodies_are_4xx_in_the_envelope(aws, raw: str, status: int) -> None:
    reply = create({}, raw_body=raw)
    assert reply.status == status
    assert reply.body["code"] == "InvalidInput"
    assert set(reply.body) == {"code", "message"}


def test_oversized_body_is_413(aws) -> None:
    reply = create({}, raw_body=json.dumps({"group_id": "x" * (1024 * 1024 + 10)}))
    assert reply.status == 413
    assert reply.body["code"] == "PayloadTooLarge"


def test_non_json_content_type_is_415(aws) -> None:
    from tests.support.api_events import sample_event

    headers = {**sample_event("create_connection")["headers"], "Content-Type": "text/plain"}
    reply = create({"group_id": "g", "service": "rest_api"}, headers=headers)
    assert reply.status == 415
    assert reply.body["code"] == "UnsupportedMediaType"


def test_content_type_with_parameters_is_json(aws) -> None:
    from tests.support.api_events import sample_event

    headers = {**sample_event("create_connection")["headers"], "Content-Type": "application/json;version=2"}
    reply = create(
        {"group_id": make_group(), "service": "rest_api", "config": rest_api_config()}, headers=headers
    )
    assert reply.status == 201, reply.body


def test_connectors_alias_creates_too(aws) -> None:
    reply = create(
        {"group_id": make_group(), "service": "rest_api", "config": rest_api_config()}, path="/v1/connectors/"
    )
    assert reply.status == 201, reply.body


def test_creation_is_announced_on_the_bus_without_secrets(aws, bus) -> None:
    data = make_connection(make_group())
    events = [e for e in bus.drain() if e["detail-type"] == "Connection Created"]
    assert len(events) == 1
    assert events[0]["detail"]["connection_id"] == data["id"]
    assert events[0]["detail"]["connection"]["config"]["auth"]["token"] == "******"
    assert "tok-secret-1" not in json.dumps(events)


def test_s3_connection_schema_is_schema_dot_table(aws) -> None:
    reply = create(
        {
            "group_id": make_group(),
            "service": "s3",
            "config": {"schema": "files", "table": "events", "bucket": "my-bucket", "file_type": "jsonl"},
        }
    )
    assert reply.status == 201, reply.body
    assert reply.data["schema"] == "files.events"
    assert "table" not in reply.data["config"] and "schema" not in reply.data["config"]
