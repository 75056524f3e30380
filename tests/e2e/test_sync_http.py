"""Syncs over real HTTP against the local stack: a real source server and bucket into the group's
DuckDB file, the way a data engineer would try Sluice."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import boto3
import pytest
import requests

from local.sample_api import SampleApi, config_for
from tests.support.local_stack import LocalStackProcess, wait_for_sync


@pytest.fixture(scope="module")
def api() -> Iterator[SampleApi]:
    with SampleApi(rows=500, ties=4, token="e2e-token") as server:
        yield server


def landed(stack: LocalStackProcess, table: str) -> dict:
    import duckdb

    with duckdb.connect(str(stack.default_duckdb), read_only=True) as db:
        rows = db.execute(f"SELECT id, name, _fivetran_deleted FROM {table}").fetchall()
    return {r[0]: r for r in rows}


def test_rest_api_sync_incremental_and_resync_over_http(stack: LocalStackProcess, api: SampleApi) -> None:
    http = stack.session()
    schema = "shop_" + uuid.uuid4().hex[:6]
    created = http.post(
        f"{stack.url}/v1/connections",
        json={
            "group_id": stack.group_id,
            "service": "rest_api",
            "config": config_for(api.url, "next_link", {"type": "bearer", "token": "e2e-token"}, schema, 100),
        },
    )
    assert created.status_code == 201, created.text
    connection = created.json()["data"]
    assert connection["status"]["setup_state"] == "connected"  # setup tests ran against the source
    url = f"{stack.url}/v1/connections/{connection['id']}"

    assert http.post(f"{url}/sync", json={}).status_code == 200
    first = wait_for_sync(http, url, None)
    assert first["succeeded_at"] and first["failed_at"] is None
    assert first["status"]["is_historical_sync"] is False
    assert len(landed(stack, f"{schema}.items")) == 500

    api.update([7, 8])
    api.add(3)
    # The legacy route, with no body at all, as Dagster sends it.
    assert http.post(f"{url}/force").status_code == 200
    second = wait_for_sync(http, url, first["succeeded_at"])
    rows = landed(stack, f"{schema}.items")
    assert len(rows) == 503
    assert rows[7][1] == "Item 7 v2"
    state = http.get(f"{url}/state").json()["data"]["state"]
    assert state["tables"]["items"]["cursor"] == api.data.all_rows()[-1]["updated_at"]

    assert http.post(f"{url}/resync", json={}).status_code == 200
    third = wait_for_sync(http, url, second["succeeded_at"])
    assert third["succeeded_at"] > second["succeeded_at"]
    # The bus recorder appends events after the API shows the sync's end: wait for the events
    # themselves, not for succeeded_at.
    runs = stack.events_of(connection["id"], "Sync Completed", count=3)
    assert [r["detail"]["data"]["status"] for r in runs] == ["SUCCESSFUL"] * 3
    assert runs[-1]["detail"]["data"]["rows_upserted"] == 503  # a resync re-reads everything
    assert "e2e-token" not in (stack.data_dir / "events.jsonl").read_text()


def test_s3_csv_sync_over_http(stack: LocalStackProcess) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=stack.aws_endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    bucket = "e2e-" + uuid.uuid4().hex[:8]
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="exports/2026-11-01.csv", Body=b"id,city\n1,Oslo\n2,Lima\n")
    http = stack.session()
    table = "cities_" + uuid.uuid4().hex[:6]
    created = http.post(
        f"{stack.url}/v1/connections",
        json={
            "group_id": stack.group_id,
            "service": "s3",
            "config": {
                "schema": "files",
                "table": table,
                "bucket": bucket,
                "prefix": "exports/",
                "pattern": r"\.csv$",
                "file_type": "csv",
                "primary_key": ["id"],
            },
        },
    )
    assert created.status_code == 201, created.text
    connection = created.json()["data"]
    assert connection["schema"] == f"files.{table}"
    url = f"{stack.url}/v1/connections/{connection['id']}"
    http.post(f"{url}/sync", json={"force": False})
    first = wait_for_sync(http, url, None)
    assert first["failed_at"] is None, first
    import duckdb

    def cities() -> dict:
        with duckdb.connect(str(stack.default_duckdb), read_only=True) as db:
            return dict(db.execute(f"SELECT id, city FROM files.{table}").fetchall())

    assert cities() == {"1": "Oslo", "2": "Lima"}
    s3.put_object(Bucket=bucket, Key="exports/2026-11-02.csv", Body=b"id,city\n2,Lisbon\n3,Accra\n")
    http.post(f"{url}/sync", json={})
    wait_for_sync(http, url, first["succeeded_at"])
    assert cities() == {"1": "Oslo", "2": "Lisbon", "3": "Accra"}


def test_tick_now_runs_the_scheduler(stack: LocalStackProcess) -> None:
    reply = requests.post(f"{stack.url}/_local/tick", timeout=30)
    assert reply.status_code == 200
    assert set(reply.json()["data"]) == {"SchedulerTickFunction"}


def test_a_sync_runs_in_a_worker_process_of_its_own_and_is_counted(
    stack: LocalStackProcess, api: SampleApi
) -> None:
    from pathlib import Path

    http = stack.session()
    config = config_for(api.url, "next_link", {"type": "bearer", "token": "e2e-token"}, "counted", 100)
    created = http.post(
        f"{stack.url}/v1/connections",
        json={"group_id": stack.group_id, "service": "rest_api", "config": config, "run_setup_tests": False},
    )
    assert created.status_code == 201, created.text
    url = f"{stack.url}/v1/connections/{created.json()['data']['id']}"

    def worker_stats() -> dict:
        reply = requests.get(f"{stack.url}/_local/stats", timeout=30)
        assert reply.status_code == 200
        return reply.json()["data"].get("SyncWorkerFunction") or {"invocations": 0, "dynamodb_requests": 0}

    before = worker_stats()
    assert http.post(f"{url}/sync", json={}).status_code == 200
    wait_for_sync(http, url, None)
    # The Sync Completed event is published by the worker before its invocation returns.
    after, deadline = worker_stats(), time.monotonic() + 60
    while after["invocations"] == before["invocations"] and time.monotonic() < deadline:
        time.sleep(0.1)
        after = worker_stats()
    assert after["invocations"] - before["invocations"] == 1
    # Lease, state, one checkpoint, the end: a handful of requests, not one per page (5 pages here).
    assert 5 <= after["dynamodb_requests"] - before["dynamodb_requests"] <= 30

    children = [
        entry
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit()
        and b"SyncWorkerFunction" in (entry / "cmdline").read_bytes()
        and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == stack.process.pid
    ]
    assert children, "the sync worker runs in a child process of the stack, as on Lambda"
