"""Issue 9 item 9: secrets a source echoes (as JSON keys or values) are scrubbed at every exit.

Before, setup-test details, column names in `GET .../schemas`, run records and a log line held the
token. A real loopback source echoes the token as a key, as a value and in the keys an error message
lists; the token must then appear in no response, stored record, event detail or log line.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import boto3
import pytest

from sluice.config_secrets import MASK, Scrubber
from sluice.sources import rest_api
from sluice.storage.store import get_store
from sluice.storage.sync_store import SyncStore
from tests.security.echo_server import EchoServer, Seen
from tests.support.api_events import call, connection_path
from tests.support.syncing import (
    duckdb_file,
    make_group_with_duckdb,
    make_rest_connection,
    run_worker,
    sync_event,
)

TOKEN = "tok-echoed-7f3a9c"
PASSWORD = "pw-echoed-51e2"


def echoing(request: Seen, _server: EchoServer) -> tuple[int, Any, dict[str, str]]:
    """Rows that carry whatever credential arrived: as a key, inside a key, as a value."""
    credential = request.headers.get("Authorization", "").split(" ", 1)[-1]
    row = {"id": 1, credential: "as a key", f"x_{credential}": 1, "echo": f"you sent {credential}"}
    if "broken" in request.path:
        # No `data` list: the error message lists the top-level keys.
        return 200, {credential: [row], "meta": {}}, {}
    return 200, {"data": [row]}, {}


def config(url: str, path: str = "/items", auth: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "schema": "shop",
        "base_url": url,
        "auth": auth or {"type": "bearer", "token": TOKEN},
        "tables": [{"name": "items", "path": path, "records_path": "data", "primary_key": ["id"]}],
    }


def stored_item(aws, connection_id: str) -> str:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    items = ddb.query(
        TableName=aws.env["TABLE_NAME"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"CONN#{connection_id}"}},
    )["Items"]
    return json.dumps(items)


def test_setup_test_details_and_messages_are_scrubbed(aws, capsys: pytest.CaptureFixture[str]) -> None:
    group_id = make_group_with_duckdb("unused.duckdb")
    with EchoServer(echoing) as api:
        for path in ("/items", "/broken"):
            body = {"group_id": group_id, "service": "rest_api", "config": config(api.url, path)}
            reply = call("create_connection", body={**body, "config": {**body["config"], "schema": path[1:]}})
            assert reply.status == 201, reply.body
            tests = reply.data["setup_tests"]
            assert TOKEN not in json.dumps(reply.body)
            assert TOKEN not in stored_item(aws, reply.data["id"])
            fetched = tests[-1]
            if path == "/items":
                assert set(fetched["details"]["fields"]) == {"id", MASK, f"x_{MASK}", "echo"}
            else:
                assert fetched["status"] == "FAILED" and MASK in fetched["message"]
        assert any(r.headers.get("Authorization") == f"Bearer {TOKEN}" for r in api.requests)
    assert TOKEN not in capsys.readouterr().out


def test_a_sync_scrubs_column_names_schemas_run_records_and_logs(
    aws, capsys: pytest.CaptureFixture[str]
) -> None:
    import duckdb

    group_id = make_group_with_duckdb("lake.duckdb")
    lake = duckdb_file("lake.duckdb")
    with EchoServer(echoing) as api:
        good = make_rest_connection(group_id, config(api.url))
        run_worker(sync_event(good["id"], event_id="sync-good"))
        bad = make_rest_connection(group_id, {**config(api.url, "/broken"), "schema": "broken"})
        run_worker(sync_event(bad["id"], event_id="sync-bad"))
    runs = SyncStore(get_store())
    assert runs.run(good["id"], "sync-good")["status"] == "SUCCESSFUL"  # type: ignore[index]
    assert runs.run(bad["id"], "sync-bad")["status"] == "FAILURE_WITH_TASK"  # type: ignore[index]
    schemas = call("get_connection_schemas", path=connection_path(good["id"]) + "/schemas", query=None)
    assert schemas.status == 200, schemas.body
    columns = schemas.body["data"]["schemas"]["shop"]["tables"]["items"]["columns"]
    assert {"id", MASK, f"x_{MASK}", "echo"} <= set(columns)
    assert TOKEN not in json.dumps(schemas.body)
    for connection in (good, bad):
        assert TOKEN not in stored_item(aws, connection["id"])  # connection, run records, state
    assert "records_path 'data' was not found" in stored_item(aws, bad["id"])
    with duckdb.connect(str(lake), read_only=True) as db:
        names = [c[0] for c in db.execute("SELECT * FROM shop.items").description]
        values = db.execute("SELECT echo FROM shop.items").fetchall()
    assert TOKEN not in json.dumps(names) and f"x_{MASK}" in names
    assert values == [(f"you sent {TOKEN}",)]  # row values are data: they land as sent
    assert TOKEN not in capsys.readouterr().out


def test_a_basic_credential_is_scrubbed_in_its_encoded_form(aws) -> None:
    encoded = base64.b64encode(f"ann:{PASSWORD}".encode()).decode()
    group_id = make_group_with_duckdb("unused.duckdb")
    with EchoServer(echoing) as api:
        basic = {"type": "basic", "username": "ann", "password": PASSWORD}
        body = {"group_id": group_id, "service": "rest_api", "config": config(api.url, auth=basic)}
        reply = call("create_connection", body=body)
        assert any(encoded in r.headers.get("Authorization", "") for r in api.requests)
    assert reply.status == 201, reply.body
    assert encoded not in json.dumps(reply.body) and PASSWORD not in json.dumps(reply.body)


def test_the_scrubber_replaces_longest_first_and_leaves_short_secrets_alone() -> None:
    scrubber = Scrubber(["abcd", "abcdefgh", "id"])
    assert scrubber.text("x abcdefgh y abcd id") == f"x {MASK} y {MASK} id"
    assert scrubber.value({"abcd": ["abcdefgh", 1]}) == {MASK: [MASK, 1]}
    rows = [{"id": 1, "abcd": 2}]
    assert scrubber.row_keys(rows, {"id", "abcd"}) == [{"id": 1, MASK: 2}]
    untouched = [{"id": 1}]
    assert scrubber.row_keys(untouched, {"id"}) is untouched


def test_the_service_knows_every_form_its_secrets_take() -> None:
    plain = config("https://api.example.com", auth={"type": "basic", "username": "ann", "password": PASSWORD})
    scrubber = rest_api.SERVICE.scrubber(plain)
    encoded = base64.b64encode(f"ann:{PASSWORD}".encode()).decode()
    assert scrubber.text(f"{PASSWORD} {encoded}") == f"{MASK} {MASK}"
