"""dagster-fivetran (PyPI, the real client in its own venv) triggers and polls syncs on the local stack,
changed only in its base URL; the rows must land in the default group's DuckDB file."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from local.sample_api import SampleApi, config_for
from tests.compat.conftest import client_python
from tests.support.local_stack import LocalStackProcess

CLIENT_SCRIPT = Path(__file__).with_name("dagster_client.py")


@pytest.fixture
def sample_api() -> Iterator[SampleApi]:
    with SampleApi(rows=2000, ties=5) as api:
        yield api


def _change_source(api: SampleApi) -> set[int]:
    """New and changed rows after the connecting sync, so that dagster's sync has work of its own."""
    changed = set(range(1, 2001, 97))
    api.update(changed)
    return changed | set(api.add(500))


def _connection_body(stack: LocalStackProcess, api: SampleApi, schema: str) -> dict[str, Any]:
    return {
        "group_id": stack.group_id,
        "service": "rest_api",
        "run_setup_tests": False,
        "config": config_for(api.url, "next_link", schema=schema, page_size=500),
    }


def _get(http: requests.Session, stack: LocalStackProcess, connection_id: str) -> dict[str, Any]:
    reply = http.get(f"{stack.url}/v1/connections/{connection_id}", timeout=30)
    assert reply.status_code == 200, reply.text
    return dict(reply.json()["data"])


def _connected_connection(stack: LocalStackProcess, api: SampleApi, schema: str) -> dict[str, Any]:
    """A rest_api connection to the sample API that dagster will accept (setup_state `connected`).

    A connection created with `run_setup_tests: false` is `incomplete` until something proves it
    works; as a user would, we sync it once through the API (a successful sync connects it)."""
    http = stack.session()
    reply = http.post(f"{stack.url}/v1/connections", json=_connection_body(stack, api, schema), timeout=30)
    assert reply.status_code == 201, reply.text
    connection = dict(reply.json()["data"])
    if connection["status"]["setup_state"] == "connected":
        return connection
    reply = http.post(f"{stack.url}/v1/connections/{connection['id']}/sync", timeout=30)
    assert reply.status_code == 200, reply.text
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        connection = _get(http, stack, connection["id"])
        if connection["succeeded_at"] or connection["failed_at"]:
            break
        time.sleep(0.2)
    assert connection["succeeded_at"], f"the first sync did not succeed: {connection}"
    assert connection["status"]["setup_state"] == "connected", connection
    return connection


def _run_dagster(stack: LocalStackProcess, mode: str, connection_id: str, timeout: float = 180) -> dict:
    python = client_python("dagster")
    started = time.monotonic()
    result = subprocess.run(
        [str(python), str(CLIENT_SCRIPT), mode, stack.url, stack.api_key, stack.api_secret, connection_id],
        env={"PATH": "/usr/bin:/bin", "HOME": str(stack.data_dir)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no summary from dagster ({mode}):\n{result.stdout}\n{result.stderr[-4000:]}"
    summary = json.loads(lines[-1])
    summary["wall_seconds"] = round(time.monotonic() - started, 2)
    assert result.returncode == 0 and summary["ok"], f"{summary}\n{result.stderr[-4000:]}"
    return dict(summary)


def _landed(stack: LocalStackProcess, schema: str) -> tuple[int, dict[int, int]]:
    """Row count and {id: version} of <schema>.items in the default group's DuckDB file (read-only)."""
    import duckdb

    path = stack.default_duckdb
    deadline = time.monotonic() + 20
    while True:
        try:
            with duckdb.connect(str(path), read_only=True) as db:
                count = db.execute(f'SELECT count(*) FROM "{schema}"."items"').fetchone()
                rows = db.execute(f'SELECT id, version FROM "{schema}"."items"').fetchall()
                return int(count[0] if count else 0), {int(i): int(v) for i, v in rows}
        except duckdb.IOException:  # another sync of the stack holds the file's write lock for a moment
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _assert_landed(
    stack: LocalStackProcess,
    schema: str,
    api: SampleApi,
    changed: set[int],
    mode: str,
    summary: dict[str, Any],
    record_property: Any,
) -> None:
    count, landed = _landed(stack, schema)
    source = {row["id"]: row["version"] for row in api.data.all_rows()}
    print(f"\ndagster {mode}: {summary}\nlanded {count} rows in {schema}.items; the source has {len(source)}")
    record_property(f"dagster_{mode}_rows_landed", count)
    record_property(f"dagster_{mode}_rows_source", len(source))
    assert count == len(source) == 2500
    assert landed == source  # every id, and the rows changed after the first sync at their new version
    assert all(landed[i] == source[i] for i in changed)


def _wire_time(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def test_client_sync_and_poll_lands_every_row(
    stack: LocalStackProcess, sample_api: SampleApi, record_property
) -> None:
    schema = "dagster_" + uuid.uuid4().hex[:8]
    before = _connected_connection(stack, sample_api, schema)
    changed = _change_source(sample_api)

    summary = _run_dagster(stack, "client", before["id"])

    assert summary["succeeded_at"] and _wire_time(summary["succeeded_at"]) > _wire_time(
        before["succeeded_at"]
    )
    assert summary["failed_at"] is None
    assert summary["setup_state"] == "connected"
    assert summary["sync_state"] == "scheduled"
    assert summary["schedule_type"] == "manual"  # dagster switches it off the schedule before syncing
    assert summary["schemas"] == [schema]
    assert summary["tables"] == {schema: ["items"]}

    _assert_landed(stack, schema, sample_api, changed, "client", summary, record_property)


def test_workspace_materialize_lands_every_row(
    stack: LocalStackProcess, sample_api: SampleApi, record_property
) -> None:
    schema = "dagster_ws_" + uuid.uuid4().hex[:8]
    before = _connected_connection(stack, sample_api, schema)
    changed = _change_source(sample_api)

    summary = _run_dagster(stack, "workspace", before["id"])

    assert summary["asset_keys"] == [f"{schema}/items"]
    assert list(summary["materialized"]) == [f"{schema}/items"]
    materialized = summary["materialized"][f"{schema}/items"]
    assert materialized["sync_completed_at"] > _wire_time(before["succeeded_at"])
    assert materialized["storage_kind"] == "rest_api"
    assert summary["failures"] == []
    # The columns endpoint answers, so dagster attaches the table's column schema.
    assert materialized["has_column_schema"] is True

    _assert_landed(stack, schema, sample_api, changed, "workspace", summary, record_property)
