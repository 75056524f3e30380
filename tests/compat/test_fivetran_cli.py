"""Fivetran's own CLI (PyPI fivetran-cli) against the local stack, changed only in its base URL."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.compat.conftest import client_python
from tests.support.local_stack import LocalStackProcess

# The CLI keeps its base URL in this module constant and has no option for it.
RUN_CLI = (
    "import sys, fivetran_cli.http.config as config; config.DEFAULT_BASE_URL = sys.argv[1]; "
    "sys.argv = ['fivetran'] + sys.argv[2:]; from fivetran_cli import main; sys.exit(main())"
)


@pytest.fixture
def fivetran(stack: LocalStackProcess, tmp_path: Path):
    python = client_python("fivetran-cli")
    key = base64.b64encode(f"{stack.api_key}:{stack.api_secret}".encode()).decode()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),  # the CLI writes its config under $HOME
        "DO_NOT_TRACK": "1",  # and sends telemetry unless told not to
        "FIVETRAN_API_KEY": key,
    }

    def run(*args: str) -> dict:
        result = subprocess.run(
            [str(python), "-c", RUN_CLI, stack.url, *args, "--output", "json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"fivetran {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        return json.loads(result.stdout)

    return run


def test_cli_create_get_update_list_delete(stack: LocalStackProcess, fivetran) -> None:
    schema = "cli_" + uuid.uuid4().hex[:8]
    body = {
        "group_id": stack.group_id,
        "service": "rest_api",
        "sync_frequency": 120,
        "config": {
            "schema": schema,
            "base_url": "https://api.example.com",
            "auth": {"type": "bearer", "token": "cli-token-secret"},
            "tables": [{"name": "orders", "path": "/orders", "primary_key": ["id"]}],
        },
    }
    created = fivetran("beta", "connection", "create", "--config", json.dumps(body))
    connection = created["data"]
    assert created["code"] == "Success"
    assert connection["schema"] == schema
    assert connection["sync_frequency"] == 120
    assert connection["config"]["auth"]["token"] == "******"

    got = fivetran("beta", "connection", "get", "--connection-id", connection["id"])
    assert got["data"] == connection

    updated = fivetran(
        "beta", "connection", "update", "--connection-id", connection["id"], "--config", '{"paused": true}'
    )
    assert updated["data"]["paused"] is True
    assert updated["data"]["status"]["sync_state"] == "paused"

    listed = fivetran("beta", "connection", "list", "--group-id", stack.group_id)
    assert connection["id"] in [c["id"] for c in listed["data"]["items"]]

    deleted = fivetran("beta", "connection", "delete", "--connection-id", connection["id"], "--yes")
    assert deleted["code"] == "Success"
    assert connection["id"] in deleted["message"]


def test_cli_list_follows_next_cursor_across_pages(stack: LocalStackProcess, fivetran) -> None:
    # The CLI never sends `limit`; with more than one default page (100) it must follow next_cursor.
    import requests

    http = requests.Session()
    http.auth = stack.auth
    group = http.post(f"{stack.url}/v1/groups", json={"name": "cli_pages_" + uuid.uuid4().hex[:6]}).json()[
        "data"
    ]
    for i in range(105):
        reply = http.post(
            f"{stack.url}/v1/connections",
            json={
                "group_id": group["id"],
                "service": "s3",
                "config": {"schema": "files", "table": f"t{i}", "bucket": "some-bucket"},
            },
        )
        assert reply.status_code == 201, reply.text
    listed = fivetran("beta", "connection", "list", "--group-id", group["id"])
    assert len({c["id"] for c in listed["data"]["items"]}) == 105


def test_cli_reports_not_found(stack: LocalStackProcess, tmp_path: Path) -> None:
    python = client_python("fivetran-cli")
    key = base64.b64encode(f"{stack.api_key}:{stack.api_secret}".encode()).decode()
    result = subprocess.run(
        [str(python), "-c", RUN_CLI, stack.url, "beta", "connection", "get", "--connection-id", "nope"],
        env={"HOME": str(tmp_path), "DO_NOT_TRACK": "1", "FIVETRAN_API_KEY": key, "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "doesn't exist" in result.stderr


def test_cli_connection_test_account_and_group_update_delete(stack: LocalStackProcess, fivetran) -> None:
    # `connection test` sends no body at all; account and group commands hit routes added for clients.
    import requests

    http = requests.Session()
    http.auth = stack.auth
    group = http.post(f"{stack.url}/v1/groups", json={"name": "cli_" + uuid.uuid4().hex[:6]}).json()["data"]
    created = http.post(
        f"{stack.url}/v1/connections",
        json={
            "group_id": group["id"],
            "service": "s3",
            "run_setup_tests": False,
            "config": {"schema": "files", "table": "t", "bucket": "some-bucket"},
        },
    )
    assert created.status_code == 201, created.text
    connection_id = created.json()["data"]["id"]

    tested = fivetran("beta", "connection", "test", "--connection-id", connection_id)
    assert tested["code"] == "Success" and tested["data"]["setup_tests"]

    account = fivetran("beta", "account", "get")
    assert account["data"]["account_id"] and account["data"]["user_id"]

    renamed = fivetran(
        "beta", "group", "update", "--group-id", group["id"], "--config", '{"name": "renamed"}'
    )
    assert renamed["data"]["name"] == "renamed"

    fivetran("beta", "connection", "delete", "--connection-id", connection_id, "--yes")
    deleted = fivetran("beta", "group", "delete", "--group-id", group["id"], "--yes")
    assert deleted["code"] == "Success" and group["id"] in deleted["message"]


def test_cli_connection_schema_commands(stack: LocalStackProcess, fivetran) -> None:
    import requests

    http = requests.Session()
    http.auth = stack.auth
    schema = "cli_schema_" + uuid.uuid4().hex[:6]
    created = http.post(
        f"{stack.url}/v1/connections",
        json={
            "group_id": stack.group_id,
            "service": "rest_api",
            "paused": True,
            "run_setup_tests": False,
            "config": {
                "schema": schema,
                "base_url": "https://api.example.com",
                "tables": [
                    {"name": "orders", "path": "/orders", "primary_key": ["id"]},
                    {"name": "refunds", "path": "/refunds", "primary_key": ["id"]},
                ],
            },
        },
    )
    assert created.status_code == 201, created.text
    cid = ["--connection-id", created.json()["data"]["id"]]

    setup = {
        "schemas": {
            schema: {"enabled": True, "tables": {"orders": {"columns": {"email": {"enabled": False}}}}}
        }
    }
    made = fivetran("beta", "connection-schema", "setup", *cid, "--config", json.dumps(setup))
    assert made["message"] == "Schema configuration pre-created successfully"

    reloaded = fivetran(
        "beta",
        "connection-schema",
        "reload",
        *cid,
        "--config",
        json.dumps({"exclude_mode": "PRESERVE"}),
        "--yes",
    )
    assert set(reloaded["data"]["schemas"][schema]["tables"]) == {"orders", "refunds"}

    got = fivetran("beta", "connection-schema", "get", *cid)
    assert got["data"]["schema_change_handling"] == "ALLOW_ALL"
    orders = got["data"]["schemas"][schema]["tables"]["orders"]
    assert (
        orders["columns"]["email"]["enabled"] is False and orders["columns"]["id"]["is_primary_key"] is True
    )

    updated = fivetran(
        "beta", "connection-schema", "update", *cid, "--config", '{"schema_change_handling": "BLOCK_ALL"}'
    )
    assert updated["data"]["schema_change_handling"] == "BLOCK_ALL"

    one = fivetran(
        "beta",
        "connection-schema",
        "schema",
        "update",
        *cid,
        "--schema-name",
        schema,
        "--config",
        '{"enabled": true}',
    )
    assert one["message"] == "Database schema configuration has been modified"

    table = fivetran(
        "beta",
        "connection-schema",
        "table",
        "update",
        *cid,
        "--schema-name",
        schema,
        "--table-name",
        "refunds",
        "--config",
        '{"enabled": false}',
    )
    assert table["data"]["schemas"][schema]["tables"]["refunds"]["enabled"] is False

    columns = fivetran(
        "beta", "connection-schema", "column", "list", *cid, "--schema", schema, "--table", "orders"
    )
    assert set(columns["data"]["columns"]) == {"id", "email"}

    column = fivetran(
        "beta",
        "connection-schema",
        "column",
        "update",
        *cid,
        "--schema-name",
        schema,
        "--table-name",
        "orders",
        "--column-name",
        "email",
        "--config",
        '{"enabled": false, "hashed": true}',
    )
    assert column["data"]["schemas"][schema]["tables"]["orders"]["columns"]["email"]["hashed"] is True

    dropped = fivetran(
        "beta",
        "connection-schema",
        "column",
        "drop",
        *cid,
        "--schema-name",
        schema,
        "--table-name",
        "orders",
        "--column-name",
        "email",
        "--yes",
    )
    assert dropped == {"code": "Success", "message": "Column successfully marked for deletion"}
    drop_body = {"schemas": {schema: {"tables": {"orders": {"columns": ["email"]}}}}}
    many = fivetran(
        "beta",
        "connection-schema",
        "column",
        "drop-blocked",
        *cid,
        "--config",
        json.dumps(drop_body),
        "--yes",
    )
    assert many["message"] == "Column(s) successfully marked for deletion"
