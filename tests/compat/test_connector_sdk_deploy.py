"""The Connector SDK's own `fivetran deploy` (PyPI fivetran-connector-sdk 3.0.0) against the local
stack, changed only in its base URL (`production_base_url` in ~/.fivetran/connector_sdk/_config.json,
which the SDK reads), then a sync of the deployed connector lands its rows."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import duckdb
import pytest

from tests.compat.conftest import client_python
from tests.support.connector_sdk import CONNECTORS
from tests.support.local_stack import LocalStackProcess, wait_for_sync


@pytest.fixture
def deploy(stack: LocalStackProcess, tmp_path: Path):
    python = client_python("connector-sdk")
    home = tmp_path / "home"
    config_dir = home / ".fivetran" / "connector_sdk"
    config_dir.mkdir(parents=True)
    (config_dir / "_config.json").write_text(json.dumps({"production_base_url": stack.url}))
    # The SDK asks PyPI for a newer version at most every six hours: not from a test.
    (config_dir / "_last_version_check").write_text(str(int(time.time())))
    key = base64.b64encode(f"{stack.api_key}:{stack.api_secret}".encode()).decode()
    env = {
        # pipreqs, which deploy runs to check requirements.txt, lives beside the SDK's python.
        "PATH": f"{python.parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(home),
        "DO_NOT_TRACK": "1",
    }

    def run(
        project: Path, destination: str, connection: str, *extra: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                str(python.parent / "fivetran"),
                "deploy",
                str(project),
                "--api-key",
                key,
                "--destination",
                destination,
                "--connection",
                connection,
                "--configuration",
                str(project / "configuration.json"),
                *extra,
                "--yes",
            ],
            env=env,
            cwd=project,
            capture_output=True,
            text=True,
            timeout=300,
        )

    return run


def test_fivetran_deploy_then_a_sync_lands_the_rows(stack: LocalStackProcess, deploy, tmp_path: Path) -> None:
    http = stack.session()
    group = http.get(f"{stack.url}/v1/groups/{stack.group_id}").json()["data"]
    project = tmp_path / "project"
    shutil.copytree(CONNECTORS / "every_operation", project)
    (project / "configuration.json").write_text(json.dumps({"rows": "12", "page": "5"}))
    (project / "requirements.txt").write_text("")
    schema = "sdk_" + uuid.uuid4().hex[:8]

    result = deploy(project, group["name"], schema, "--python-version", "3.13")
    assert result.returncode == 0, f"fivetran deploy failed:\n{result.stdout}\n{result.stderr}"
    assert "connection created" in result.stdout

    listed = http.get(f"{stack.url}/v1/groups/{stack.group_id}/connectors", params={"schema": schema})
    [connection] = [c for c in listed.json()["data"]["items"] if c["schema"] == schema]
    assert connection["service"] == "connector_sdk" and connection["paused"] is True
    package_id = connection["config"]["package_id"]
    package = http.get(f"{stack.url}/v1/connector-sdk/packages/{package_id}").json()["data"]
    assert package["connection_ids"] == [connection["id"]]
    assert connection["config"]["secrets_list"] == [
        {"key": "rows", "value": "******"},
        {"key": "page", "value": "******"},
    ]

    url = f"{stack.url}/v1/connections/{connection['id']}"
    assert http.patch(url, json={"paused": False}).status_code == 200
    assert http.post(f"{url}/sync", json={}).status_code == 200
    synced = wait_for_sync(http, url, timeout=120)
    assert synced["succeeded_at"] and synced["failed_at"] is None, synced

    with duckdb.connect(str(stack.default_duckdb), read_only=True) as db:
        items = dict(db.execute(f"SELECT id, name FROM {schema}.items").fetchall())
    assert set(items) == set(range(1, 13)) and items[1] == "renamed"

    # The first deploy moved the connection's settings into the SDK's options file (through
    # /v1/connector-sdk/migration/connections): a redeploy with that profile needs no --python-version.
    # It uploads a new package and points the connection at it.
    again = deploy(project, group["name"], schema, "--profile", f"{stack.group_id}-{schema}")
    assert again.returncode == 0, f"fivetran deploy (update) failed:\n{again.stdout}\n{again.stderr}"
    assert "connection updated" in again.stdout
    assert "migration failed" not in result.stdout + again.stdout
    rebound = http.get(url).json()["data"]["config"]["package_id"]
    assert rebound != package_id
    assert http.get(f"{stack.url}/v1/connector-sdk/packages/{rebound}").json()["data"]["connection_ids"] == [
        connection["id"]
    ]
