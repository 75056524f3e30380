"""Issue 14 item 4: the CloudWatch metrics (EMF on stdout, as Lambda ships it to CloudWatch) a sync and a
setup test run emit: rows synced, sync duration, sync failures, setup-test failures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from local.sample_api import SampleApi
from sluice.metrics import EMITTED, NAMESPACE
from tests.support.api_events import call
from tests.support.syncing import (
    make_group_with_duckdb,
    make_rest_connection,
    run_worker,
    sample_api_config,
    sync_event,
)

ROWS = 30


@pytest.fixture
def api() -> Iterator[SampleApi]:
    with SampleApi(rows=ROWS, token="tok") as server:
        yield server


@pytest.fixture
def group_id(aws) -> str:
    return make_group_with_duckdb("lake.duckdb")


def emitted(output: str) -> list[dict[str, Any]]:
    """The EMF records in what the function wrote: {metric name: value}, with their declared units."""
    records = []
    for line in output.splitlines():
        if not line.startswith("{"):
            continue
        document = json.loads(line)
        if "_aws" not in document:
            continue
        [directive] = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == NAMESPACE and directive["Dimensions"] == [["service"]]
        values = {name: v[0] if isinstance(v, list) else v for name, v in document.items()}
        records.append({m["Name"]: (values[m["Name"]], m["Unit"]) for m in directive["Metrics"]})
    return records


def test_a_sync_emits_its_rows_duration_and_no_failure(aws, api, group_id, capsys) -> None:
    connection = make_rest_connection(group_id, sample_api_config(api.url, token="tok", page_size=10))
    event = sync_event(connection["id"])
    capsys.readouterr()
    assert run_worker(event)["status"] == "SUCCESSFUL"
    [record] = emitted(capsys.readouterr().out)
    run = call("get_connection_syncs", path=f"/v1/connections/{connection['id']}/syncs/{event['id']}").data
    assert record == {
        "SyncRowsUpserted": (ROWS, "Count"),
        "SyncRowsDeleted": (0, "Count"),
        "SyncFailures": (0, "Count"),
        "SyncDuration": (pytest.approx(run["duration_seconds"]), "Seconds"),
    }
    assert set(record) <= EMITTED


def test_a_failed_sync_counts_as_a_failure(aws, api, group_id, capsys) -> None:
    connection = make_rest_connection(group_id, sample_api_config(api.url, token="wrong"))
    capsys.readouterr()
    assert run_worker(sync_event(connection["id"]))["status"] == "FAILURE_WITH_TASK"
    [record] = emitted(capsys.readouterr().out)
    assert record["SyncFailures"] == (1, "Count") and record["SyncRowsUpserted"] == (0, "Count")


def test_setup_tests_count_a_failing_run_and_a_passing_one(aws, api, group_id, capsys) -> None:
    failing = make_rest_connection(group_id, sample_api_config(api.url, token="wrong"))
    capsys.readouterr()
    assert call("test_connection", path=f"/v1/connections/{failing['id']}/test", body={}).status == 200
    assert emitted(capsys.readouterr().out) == [{"SetupTestFailures": (1, "Count")}]
    config = {**sample_api_config(api.url, token="tok"), "schema": "shop_ok"}
    passing = make_rest_connection(group_id, config)
    capsys.readouterr()
    assert call("test_connection", path=f"/v1/connections/{passing['id']}/test", body={}).status == 200
    assert emitted(capsys.readouterr().out) == [{"SetupTestFailures": (0, "Count")}]


def test_a_tick_emits_the_syncs_it_requested_and_how_late_it_ran_them(aws, store, capsys) -> None:
    from datetime import timedelta

    from local.functions import load_module
    from local.lambda_context import LocalContext
    from sluice.scheduler.grid import connection_next_sync_at
    from sluice.timestamps import utc_now
    from tests.support.api_events import make_connection, make_group

    created = make_connection(make_group(), sync_frequency=15)
    current = store.get_connection(None, created["id"])
    since = utc_now() - timedelta(minutes=40)
    connected = current.model_copy(update={"setup_state": "connected", "connected_since": since})
    due = store.replace_connection(
        connected.model_copy(update={"next_sync_at": connection_next_sync_at(connected, since)}),
        current.version,
    ).next_sync_at
    assert due is not None
    capsys.readouterr()
    before = utc_now()
    report = load_module("functions/scheduler_tick").lambda_handler({}, LocalContext(function_name="tick"))
    after = utc_now()
    assert report["syncs_requested"] == [created["id"]]
    [record] = emitted(capsys.readouterr().out)
    assert record["TickDueSyncs"] == (1, "Count") and record["TickFailedItems"] == (0, "Count")
    lag, unit = record["TickLag"]
    assert unit == "Seconds"
    assert (before - due).total_seconds() <= lag <= (after - due).total_seconds()
