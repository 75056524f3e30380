"""The scheduler tick on moto: due syncs, skipped points, re-tests, data delays, trials, costs."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import boto3
import pytest

from local.functions import load_module
from local.lambda_context import LocalContext
from local.sample_api import SampleApi
from sluice.accounts.trials import set_trial_end
from sluice.connections.model import Connection
from sluice.scheduler.grid import connection_next_sync_at, next_sync_at
from sluice.scheduler.tick import Scheduler
from sluice.storage.store import Store, connection_to_item, to_dynamo
from sluice.storage.sync_store import SyncStore
from sluice.timestamps import utc_now
from tests.support.api_events import call, make_connection, make_group, rest_api_config
from tests.support.syncing import (
    get_connection,
    make_group_with_duckdb,
    make_rest_connection,
    run_worker,
    sample_api_config,
)

# The API and its storage on both DynamoDB backends (see tests/conftest.py).
pytestmark = pytest.mark.backends("moto", "dynamodb_local")


SHARDS = 4


def connect(store: Store, connection_id: str, now: datetime, **changes) -> Connection:
    """Mark a connection connected (as passing setup tests would) and put it on the grid."""
    current = store.get_connection(None, connection_id)
    connected = current.model_copy(update={"setup_state": "connected", "connected_since": now, **changes})
    connected = connected.model_copy(update={"next_sync_at": connection_next_sync_at(connected, now)})
    return store.replace_connection(connected, current.version)


def tick(store: Store, now: datetime):
    return Scheduler(store, SHARDS).tick(now)


def requested(bus) -> list[dict]:
    return [e for e in bus.drain() if e["detail-type"] == "Sync Requested"]


def test_a_due_connection_is_claimed_once_and_moves_to_the_next_grid_point(aws, table, bus) -> None:
    now = utc_now()
    created = make_connection(make_group(), sync_frequency=15)
    connection = connect(table, created["id"], now - timedelta(minutes=30))
    due_at = connection.next_sync_at
    assert due_at is not None
    report = tick(table, due_at + timedelta(seconds=5))
    assert report.syncs_requested == [created["id"]]
    events = requested(bus)
    assert len(events) == 1 and events[0]["detail"]["reason"] == "schedule"
    after = table.get_connection(None, created["id"])
    assert after.next_sync_at == next_sync_at(created["id"], 15, None, due_at + timedelta(seconds=5))
    # The same moment again: nothing is due any more.
    assert tick(table, due_at + timedelta(seconds=5)).syncs_requested == []
    assert requested(bus) == []


def test_after_downtime_one_run_then_the_grid_resumes(aws, table, bus) -> None:
    now = utc_now()
    created = make_connection(make_group(), sync_frequency=5)
    connect(table, created["id"], now - timedelta(days=1))
    # The scheduler was down for hours: the first tick runs it once, not once per missed point,
    following = next_sync_at(created["id"], 5, None, now)
    assert tick(table, now).syncs_requested == [created["id"]]
    assert tick(table, following - timedelta(microseconds=1)).syncs_requested == []
    assert len(requested(bus)) == 1
    # and the grid resumes at its next point.
    assert table.get_connection(None, created["id"]).next_sync_at == following
    assert tick(table, following).syncs_requested == [created["id"]]


@pytest.mark.parametrize("change", [{"paused": True}, {"schedule_type": "manual"}])
def test_paused_and_manual_connections_are_never_claimed(aws, table, bus, change) -> None:
    now = utc_now()
    created = make_connection(make_group(), sync_frequency=5)
    connect(table, created["id"], now - timedelta(hours=1))
    reply = call("update_connection", path=f"/v1/connections/{created['id']}", body=change)
    assert reply.status == 200
    assert table.get_connection(None, created["id"]).next_sync_at is None
    assert tick(table, now + timedelta(days=2)).syncs_requested == []


def test_a_connection_that_is_not_connected_is_never_claimed(aws, table) -> None:
    created = make_connection(make_group(), sync_frequency=5)
    assert table.get_connection(None, created["id"]).next_sync_at is None
    assert tick(table, utc_now() + timedelta(days=2)).syncs_requested == []


def test_a_connection_syncing_at_its_grid_point_skips_it(aws, table, bus) -> None:
    now = utc_now()
    created = make_connection(make_group(), sync_frequency=15)
    connection = connect(table, created["id"], now - timedelta(hours=1))
    SyncStore(table).acquire(created["id"], "running", now, timedelta(hours=2))
    report = tick(table, connection.next_sync_at + timedelta(seconds=1))
    assert report.syncs_requested == [] and report.skipped_while_syncing == [created["id"]]
    assert requested(bus) == []
    assert table.get_connection(None, created["id"]).next_sync_at > connection.next_sync_at


def test_changing_the_frequency_moves_the_next_sync_at_once(aws, table) -> None:
    now = utc_now()
    created = make_connection(make_group(), sync_frequency=1440)
    connect(table, created["id"], now)
    reply = call("update_connection", path=f"/v1/connections/{created['id']}", body={"sync_frequency": 5})
    assert reply.status == 200
    moved = table.get_connection(None, created["id"]).next_sync_at
    assert moved is not None and moved <= utc_now() + timedelta(minutes=5)
    daily = call(
        "update_connection",
        path=f"/v1/connections/{created['id']}",
        body={"sync_frequency": 1440, "daily_sync_time": "04:00"},
    )
    assert daily.status == 200
    at = table.get_connection(None, created["id"]).next_sync_at
    assert (at.hour, at.minute) == (4, 0)


def test_a_rescheduled_auto_connection_resumes_at_rescheduled_for(aws, table, bus) -> None:
    now = utc_now()
    created = make_connection(make_group(), sync_frequency=60)
    connect(table, created["id"], now)
    resume = now + timedelta(minutes=7)
    current = table.get_connection(None, created["id"])
    rescheduled = current.model_copy(update={"sync_state": "rescheduled", "rescheduled_for": resume})
    rescheduled = rescheduled.model_copy(update={"next_sync_at": connection_next_sync_at(rescheduled, now)})
    table.replace_connection(rescheduled, current.version)
    assert tick(table, resume - timedelta(seconds=1)).syncs_requested == []
    assert tick(table, resume).syncs_requested == [created["id"]]


def count_dynamodb_requests(store: Store, now: datetime) -> int:
    calls: list[str] = []

    def record(**kwargs) -> None:
        calls.append(kwargs["model"].name)

    events = store.client.meta.events
    events.register("before-call.dynamodb", record)
    try:
        tick(store, now)
    finally:
        events.unregister("before-call.dynamodb", record)
    return len(calls)


def seed_connections(aws, total: int, due: int, now: datetime, prefix: str) -> None:
    """`total` connected connections straight into the table, `due` of them due now."""
    client = boto3.client("dynamodb", region_name="us-east-1")
    requests = []
    for i in range(total):
        connection = Connection(
            id=f"{prefix}{i:06d}",
            account_id="acct_seed",
            group_id="seedgroup",
            service="rest_api",
            schema=f"{prefix}{i}",
            connected_by="u",
            created_at=now,
            setup_state="connected",
            connected_since=now,
            succeeded_at=now,
            next_sync_at=now - timedelta(minutes=1) if i < due else now + timedelta(hours=3),
            config=rest_api_config(f"{prefix}{i}"),
        )
        requests.append({"PutRequest": {"Item": to_dynamo(connection_to_item(connection))}})
    for offset in range(0, len(requests), 25):
        client.batch_write_item(RequestItems={aws.env["TABLE_NAME"]: requests[offset : offset + 25]})


def test_a_tick_costs_what_is_due_not_what_exists(aws, table) -> None:
    now = utc_now()
    seed_connections(aws, 10, 3, now, prefix="small")
    with_ten = count_dynamodb_requests(table, now - timedelta(minutes=2))  # nothing due yet
    seed_connections(aws, 10_000, 0, now, prefix="large")  # ten thousand more, none due
    with_ten_thousand = count_dynamodb_requests(table, now - timedelta(minutes=2))
    assert (
        with_ten == with_ten_thousand == 3 * SHARDS + 2
    )  # one query per index partition (per shard: syncs, retests, delays; trials; purges)
    # And with three due: for each, one read of its flexible schedule and one claim, whatever the total.
    assert count_dynamodb_requests(table, now) == with_ten_thousand + 2 * 3


def test_a_race_between_the_tick_and_a_manual_sync_gives_one_run(aws, table, bus, tmp_path: Path) -> None:
    with SampleApi(rows=40) as api:
        group_id = make_group_with_duckdb("lake.duckdb")
        created = make_rest_connection(group_id, sample_api_config(api.url), sync_frequency=15)
        connection = connect(table, created["id"], utc_now() - timedelta(hours=1))
        bus.drain()
        assert call("sync_connection", path=f"/v1/connections/{created['id']}/sync", body={}).status == 200
        assert tick(table, connection.next_sync_at + timedelta(seconds=1)).syncs_requested == [created["id"]]
        events = requested(bus)
        assert len(events) == 2
        results = [run_worker(event)["status"] for event in events]
        assert sorted(results) == ["SKIPPED", "SUCCESSFUL"]
        assert sum(1 for r in api.requests if r.startswith("/next_link/items")) == 1


def test_broken_connections_are_retested_daily_by_the_tick(aws, table, bus) -> None:
    now = utc_now()
    created = make_connection(make_group())
    current = table.get_connection(None, created["id"])
    broken = current.model_copy(
        update={"setup_state": "broken", "connected_since": now, "retest_at": now + timedelta(days=1)}
    )
    table.replace_connection(broken, current.version)
    assert tick(table, now + timedelta(hours=23)).retests_requested == []
    report = tick(table, now + timedelta(days=1, seconds=1))
    assert report.retests_requested == [created["id"]]
    events = [e for e in bus.drain() if e["detail-type"] == "Setup Tests Requested"]
    assert [e["detail"]["connection_id"] for e in events] == [created["id"]]
    assert tick(table, now + timedelta(days=1, seconds=2)).retests_requested == []
    assert tick(table, now + timedelta(days=2, seconds=2)).retests_requested == [created["id"]]


def test_data_delayed_fires_once_per_episode_and_update_state_follows(aws, table, bus) -> None:
    now = utc_now()
    created = make_connection(make_group(), sync_frequency=60, schedule_type="manual")
    call(
        "update_connection",
        path=f"/v1/connections/{created['id']}",
        body={"data_delay_sensitivity": "CUSTOM", "data_delay_threshold": 30},
    )
    connect(table, created["id"], now - timedelta(hours=2), succeeded_at=now - timedelta(minutes=40))
    assert get_connection(created["id"])["status"]["update_state"] == "delayed"
    assert tick(table, now).delays_announced == [created["id"]]
    assert tick(table, now + timedelta(minutes=5)).delays_announced == []
    delayed = [e for e in bus.drain() if e["detail-type"] == "Data Delayed"]
    assert len(delayed) == 1 and delayed[0]["detail"]["connection_id"] == created["id"]
    # A success ends the episode; the next lateness is a new one.
    current = table.get_connection(None, created["id"])
    table.replace_connection(
        current.model_copy(update={"succeeded_at": now, "delay_announced": False}), current.version
    )
    assert get_connection(created["id"])["status"]["update_state"] == "on_schedule"
    assert tick(table, now + timedelta(minutes=10)).delays_announced == []
    assert tick(table, now + timedelta(minutes=31)).delays_announced == [created["id"]]


def test_the_tick_pauses_connections_that_asked_for_it_when_the_trial_ends(aws, table, bus) -> None:
    now = utc_now()
    group_id = make_group()
    asked = make_connection(group_id, pause_after_trial=True, config=rest_api_config("a"))
    other = make_connection(group_id, config=rest_api_config("b"))
    set_trial_end(table, "acct_example", now + timedelta(days=3))
    assert tick(table, now + timedelta(days=2)).paused_after_trial == []
    report = tick(table, now + timedelta(days=3, seconds=1))
    assert report.paused_after_trial == [asked["id"]]
    assert get_connection(asked["id"])["paused"] is True
    assert get_connection(other["id"])["paused"] is False
    announced = [e for e in bus.drain() if e["detail-type"] == "Connection Paused After Trial"]
    assert [e["detail"]["connection_id"] for e in announced] == [asked["id"]]
    assert tick(table, now + timedelta(days=4)).paused_after_trial == []


def test_three_failed_syncs_in_a_row_announce_connection_failing(aws, table, bus, tmp_path: Path) -> None:
    with SampleApi(rows=5, token="right") as api:
        group_id = make_group_with_duckdb("lake.duckdb")
        created = make_rest_connection(group_id, sample_api_config(api.url, token="wrong"))
        from tests.support.syncing import sync_event

        for _ in range(4):
            assert run_worker(sync_event(created["id"]))["status"] == "FAILURE_WITH_TASK"
    failing = [e for e in bus.drain() if e["detail-type"] == "Connection Failing"]
    assert len(failing) == 1 and failing[0]["detail"]["consecutive_failures"] == 3


def test_the_scheduler_tick_function_reports_what_it_did(aws, table) -> None:
    created = make_connection(make_group(), sync_frequency=5)
    connect(table, created["id"], utc_now() - timedelta(hours=1))
    module = load_module("functions/scheduler_tick")
    report = module.lambda_handler({"detail-type": "Scheduled Event"}, LocalContext(function_name="tick"))
    assert report["syncs_requested"] == [created["id"]]


def test_a_failed_announcement_puts_the_claim_back_for_the_next_tick(aws, table, bus, monkeypatch) -> None:
    from sluice.events import PublishFailed

    now = utc_now()
    created = make_connection(make_group(), sync_frequency=15)
    connection = connect(table, created["id"], now - timedelta(hours=1))

    def refuse(*_args, **_kwargs):
        raise PublishFailed("bus unavailable")

    monkeypatch.setattr("sluice.scheduler.tick.request_sync", refuse)
    report = tick(table, connection.next_sync_at + timedelta(seconds=1))
    assert report.syncs_requested == [] and report.failed == [created["id"]]
    assert table.get_connection(None, created["id"]).next_sync_at == connection.next_sync_at
    monkeypatch.undo()
    assert tick(table, connection.next_sync_at + timedelta(seconds=2)).syncs_requested == [created["id"]]
