"""The sync worker (target of Sync Requested) on moto: a real local API into a real DuckDB file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from local.sample_api import SampleApi
from sluice.storage.sync_store import LeaseLost, SyncStore
from sluice.timestamps import parse_timestamp, utc_now
from tests.support.api_events import call
from tests.support.syncing import (
    duckdb_file,
    duckdb_rows,
    get_connection,
    make_group_with_duckdb,
    make_rest_connection,
    run_worker,
    sample_api_config,
    sync_event,
)

# The API and its storage on both DynamoDB backends (see tests/conftest.py).
pytestmark = pytest.mark.backends("moto", "dynamodb_local")


class Crash(BaseException):
    """Stands for the process dying: nothing in the engine catches it."""


@pytest.fixture
def api():
    with SampleApi(rows=237, ties=7, token="s3cr3t-token") as server:
        yield server


@pytest.fixture
def lake(aws) -> Path:
    return duckdb_file("lake.duckdb")


@pytest.fixture
def connection(aws, api, lake) -> dict:
    group_id = make_group_with_duckdb(lake.name)
    return make_rest_connection(group_id, sample_api_config(api.url, token="s3cr3t-token", page_size=20))


def commit_every_checkpoint(monkeypatch) -> None:
    from sluice.settings import get_settings

    monkeypatch.setenv("SYNC_COMMIT_EVERY_SECONDS", "0")
    get_settings.cache_clear()


def _plain(value):
    # DuckDB reads ISO timestamps into TIMESTAMPTZ; compare them as the source wrote them.
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(value, datetime) else value


def assert_destination_matches_source(lake: Path, api: SampleApi) -> None:
    landed = duckdb_rows(lake)
    source = {r["id"]: r for r in api.data.all_rows()}
    assert set(landed) == set(source)
    for row_id, row in source.items():
        got = landed[row_id]
        assert {k: _plain(got[k]) for k in row} == row, row_id
        assert got["_fivetran_deleted"] is False
        assert got["_fivetran_synced"] is not None


def test_first_sync_lands_every_row_and_marks_success(aws, api, lake, connection, bus) -> None:
    result = run_worker(sync_event(connection["id"]))
    assert result["status"] == "SUCCESSFUL"
    assert result["rows_upserted"] == 237
    assert_destination_matches_source(lake, api)
    after = get_connection(connection["id"])
    assert after["succeeded_at"] is not None and after["failed_at"] is None
    assert after["status"]["sync_state"] == "scheduled"
    assert after["status"]["is_historical_sync"] is False
    assert after["status"]["setup_state"] == "connected"
    state = call("get_connection_state", path=f"/v1/connections/{connection['id']}/state")
    assert state.status == 200
    assert state.data["state"]["tables"]["items"]["cursor"] == api.data.all_rows()[-1]["updated_at"]
    kinds = [e["detail-type"] for e in bus.drain()]
    assert kinds.count("Sync Started") == 1 and kinds.count("Sync Completed") == 1
    completed = [e for e in bus.drain() if e["detail-type"] == "Sync Completed"]
    del completed


def test_sync_events_use_the_webhook_shape(aws, api, lake, connection, bus) -> None:
    bus.drain()
    run_worker(sync_event(connection["id"]))
    events = {e["detail-type"]: e["detail"] for e in bus.drain()}
    end = events["Sync Completed"]
    assert end["event"] == "sync_end"
    assert end["connector_id"] == connection["id"]
    assert end["connector_type"] == "rest_api"
    assert end["destination_group_id"] == connection["group_id"]
    assert end["data"]["status"] == "SUCCESSFUL"
    assert events["Sync Started"]["event"] == "sync_start"
    assert events["Sync Started"]["sync_id"] == end["sync_id"]
    assert "s3cr3t-token" not in str(events)


def test_second_sync_moves_only_new_and_changed_rows(aws, api, lake, connection) -> None:
    run_worker(sync_event(connection["id"]))
    api.update([3, 50])
    api.add(4)
    api.requests.clear()
    result = run_worker(sync_event(connection["id"]))
    assert result["status"] == "SUCCESSFUL"
    # The saved cursor's own rows are read again (>=), then the 2 changed and 4 new ones.
    assert result["rows_upserted"] <= 7 + 6
    assert all("updated_since=" in r for r in api.requests)
    assert_destination_matches_source(lake, api)
    assert duckdb_rows(lake)[3]["version"] == 2


def test_resync_rereads_everything_from_empty_state(aws, api, lake, connection) -> None:
    run_worker(sync_event(connection["id"]))
    reply = call("resync_connection", path=f"/v1/connections/{connection['id']}/resync", body={})
    assert reply.status == 200, reply.body
    assert get_connection(connection["id"])["status"]["is_historical_sync"] is True
    result = run_worker(sync_event(connection["id"], historical=True, reason="resync"))
    assert result["rows_upserted"] == 237
    assert get_connection(connection["id"])["status"]["is_historical_sync"] is False


def test_a_crash_between_destination_write_and_checkpoint_is_replayed_to_an_identical_destination(
    aws, api, lake, connection, monkeypatch
) -> None:
    original = SyncStore.commit_checkpoint
    calls = {"n": 0}

    def crash_on_third(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise Crash()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SyncStore, "commit_checkpoint", crash_on_third)
    commit_every_checkpoint(monkeypatch)
    event = sync_event(connection["id"])
    with pytest.raises(Crash):
        run_worker(event)
    crashed = get_connection(connection["id"])
    assert crashed["status"]["sync_state"] == "syncing"  # the lease outlives the dead worker
    # Lambda retries the same event: the same sync takes its lease back and replays from its checkpoint.
    result = run_worker(event)
    assert result["status"] == "SUCCESSFUL"
    assert_destination_matches_source(lake, api)
    assert get_connection(connection["id"])["status"]["sync_state"] == "scheduled"


def test_two_requests_for_one_connection_run_one_sync(aws, api, lake, connection, table) -> None:
    SyncStore(table).acquire(connection["id"], "first-sync", utc_now(), timedelta(minutes=16))
    result = run_worker(sync_event(connection["id"]))
    assert result["status"] == "SKIPPED"
    assert result["message"] == "busy"
    assert api.requests == []


def test_a_duplicate_delivery_after_the_sync_ended_is_harmless(aws, api, lake, connection) -> None:
    event = sync_event(connection["id"])
    run_worker(event)
    run_worker(event)
    assert_destination_matches_source(lake, api)


def test_a_stale_worker_cannot_commit_after_losing_its_lease(aws, api, lake, connection, table) -> None:
    store = SyncStore(table)
    now = utc_now()
    store.acquire(connection["id"], "stale", now, timedelta(minutes=16))
    assert store.release_for_force(connection["id"]) == "stale"
    store.acquire(connection["id"], "fresh", now, timedelta(minutes=16))
    with pytest.raises(LeaseLost):
        store.commit_checkpoint(connection["id"], "stale", 1, {"tables": {}}, now, timedelta(minutes=16))
    assert store.latest_snapshot(connection["id"]) is None
    current = table.get_connection(None, connection["id"])
    with pytest.raises(LeaseLost):
        store.finish(current.model_copy(update={"active_sync_id": "stale"}), "stale")
    assert table.get_connection(None, connection["id"]).active_sync_id == "fresh"


def test_an_expired_lease_can_be_taken_over(aws, connection, table) -> None:
    store = SyncStore(table)
    long_ago = utc_now() - timedelta(hours=1)
    store.acquire(connection["id"], "dead", long_ago, timedelta(minutes=16))
    assert (
        store.acquire(connection["id"], "alive", utc_now(), timedelta(minutes=16)).active_sync_id == "alive"
    )


# About the source's paging, with a checkpoint per page: moto only, to keep the DynamoDB Local lane short.
@pytest.mark.backends("moto")
@pytest.mark.parametrize("style", ["next_link", "link_header", "cursor", "page", "offset"])
def test_ties_across_pages_and_checkpoints_lose_no_row(aws, api, lake, style, monkeypatch) -> None:
    commit_every_checkpoint(monkeypatch)
    group_id = make_group_with_duckdb(lake.name)
    config = sample_api_config(api.url, token="s3cr3t-token", style=style, page_size=6)
    created = make_rest_connection(group_id, config)
    # Stop after every checkpoint: each page boundary is also a continuation boundary.
    detail = sync_event(created["id"])
    for _ in range(100):
        result = run_worker(detail, timeout_seconds=0.01)
        if result["status"] != "CONTINUED":
            break
        detail = sync_event(
            created["id"], reason="continuation", sync_id=detail["detail"].get("sync_id") or detail["id"]
        )
    assert result["status"] == "SUCCESSFUL"
    assert_destination_matches_source(lake, api)


def test_a_long_rate_limit_reschedules_and_the_next_run_resumes(aws, api, lake, connection) -> None:
    api.fail_next(1, status=429, retry_after=7200)
    result = run_worker(sync_event(connection["id"]))
    assert result["status"] == "RESCHEDULED"
    rescheduled = get_connection(connection["id"])
    assert rescheduled["status"]["sync_state"] == "rescheduled"
    retry_at = parse_timestamp(rescheduled["status"]["rescheduled_for"])
    assert retry_at is not None and retry_at > utc_now() + timedelta(minutes=100)
    assert rescheduled["succeeded_at"] is None and rescheduled["failed_at"] is None
    result = run_worker(sync_event(connection["id"]))
    assert result["status"] == "SUCCESSFUL"
    resumed = get_connection(connection["id"])
    assert resumed["status"]["sync_state"] == "scheduled"
    assert resumed["status"]["rescheduled_for"] is None
    assert_destination_matches_source(lake, api)


def test_a_short_rate_limit_is_waited_out_within_the_run(aws, api, lake, connection) -> None:
    api.fail_next(1, status=429, retry_after=1)
    assert run_worker(sync_event(connection["id"]))["status"] == "SUCCESSFUL"


def test_refused_credentials_fail_the_sync_and_break_the_connection(aws, api, lake) -> None:
    group_id = make_group_with_duckdb(lake.name)
    created = make_rest_connection(group_id, sample_api_config(api.url, token="wrong-token"))
    result = run_worker(sync_event(created["id"]))
    assert result["status"] == "FAILURE_WITH_TASK"
    after = get_connection(created["id"])
    assert after["failed_at"] is not None and after["succeeded_at"] is None
    assert after["status"]["setup_state"] == "broken"
    assert after["status"]["sync_state"] == "scheduled"
    assert "wrong-token" not in result["message"]


def test_every_finished_sync_moves_a_timestamp_strictly_forward(aws, api, lake, connection) -> None:
    stamps = []
    for _ in range(3):
        run_worker(sync_event(connection["id"]))
        stamps.append(get_connection(connection["id"])["succeeded_at"])
    assert stamps == sorted(set(stamps))


def test_force_stops_a_running_sync_and_starts_a_new_one(aws, api, lake, connection, table, bus) -> None:
    store = SyncStore(table)
    store.acquire(connection["id"], "running", utc_now(), timedelta(minutes=16))
    bus.drain()
    plain = call("sync_connection", path=f"/v1/connections/{connection['id']}/sync", body={"force": False})
    assert plain.status == 200
    assert [e for e in bus.drain() if e["detail-type"] == "Sync Requested"] == []
    forced = call("sync_connection", path=f"/v1/connections/{connection['id']}/sync", body={"force": True})
    assert forced.status == 200
    requested = [e for e in bus.drain() if e["detail-type"] == "Sync Requested"]
    assert len(requested) == 1 and requested[0]["detail"]["force"] is True
    with pytest.raises(LeaseLost):
        store.commit_checkpoint(connection["id"], "running", 1, {}, utc_now(), timedelta(minutes=16))
    result = run_worker({**requested[0]})
    assert result["status"] == "SUCCESSFUL"
    assert_destination_matches_source(lake, api)


def test_a_paused_connection_does_not_sync(aws, api, lake, connection) -> None:
    call("update_connection", path=f"/v1/connections/{connection['id']}", body={"paused": True})
    assert run_worker(sync_event(connection["id"]))["status"] == "SKIPPED"
    assert api.requests == []


def test_schemas_and_columns_report_what_the_sync_saw(aws, api, lake, connection) -> None:
    run_worker(sync_event(connection["id"]))
    schemas = call("get_connection_schemas", path=f"/v1/connectors/{connection['id']}/schemas")
    table = schemas.data["schemas"]["shop"]["tables"]["items"]
    assert table["enabled"] is True and table["name_in_destination"] == "items"
    assert set(table["columns"]) == {"id", "name", "category", "price", "version", "updated_at"}
    columns = call(
        "get_connection_schemas", path=f"/v1/connectors/{connection['id']}/schemas/shop/tables/items/columns"
    )
    assert columns.status == 200
    assert columns.data["columns"]["id"]["is_primary_key"] is True
    assert columns.data["columns"]["name"]["is_primary_key"] is False
    missing = call(
        "get_connection_schemas", path=f"/v1/connections/{connection['id']}/schemas/shop/tables/nope/columns"
    )
    assert missing.status == 404 and missing.body["code"] == "NotFound_Table"


def test_a_request_for_a_deleted_connection_is_dropped(aws, api, lake, connection) -> None:
    assert call("delete_connection", path=f"/v1/connections/{connection['id']}").status == 200
    result = run_worker(sync_event(connection["id"]))
    assert result["status"] == "SKIPPED" and result["message"] == "deleted"
    assert api.requests == []


def test_a_forced_out_worker_stops_writing_at_its_next_batch(
    aws, api, lake, connection, table, monkeypatch
) -> None:
    from sluice.destinations.duckdb import DuckDbDestination

    monkeypatch.setattr("sluice.sync.engine.LEASE_CHECK_SECONDS", 0.0)
    original = DuckDbDestination.upsert
    writes = []

    def upsert_then_lose_the_lease(self, *args, **kwargs):
        writes.append(args[4])  # the batch id
        written = original(self, *args, **kwargs)
        SyncStore(table).release_for_force(connection["id"])  # a forced sync takes the connection
        return written

    monkeypatch.setattr(DuckDbDestination, "upsert", upsert_then_lose_the_lease)
    event = sync_event(connection["id"])
    result = run_worker(event)
    assert result["status"] == "SKIPPED" and result["message"] == "lease lost"
    assert len(writes) == 1
    assert event["id"] in writes[0], "batch ids carry the sync id, so two syncs never share an object key"
    assert SyncStore(table).latest_snapshot(connection["id"]) is None


def test_a_dead_workers_expired_lease_does_not_read_as_syncing(aws, connection, table) -> None:
    SyncStore(table).acquire(connection["id"], "dead", utc_now() - timedelta(hours=1), timedelta(minutes=16))
    call("update_connection", path=f"/v1/connections/{connection['id']}", body={"paused": True})
    assert get_connection(connection["id"])["status"]["sync_state"] == "paused"
    call("update_connection", path=f"/v1/connections/{connection['id']}", body={"paused": False})
    assert get_connection(connection["id"])["status"]["sync_state"] == "scheduled"
    call("update_connection", path=f"/v1/connections/{connection['id']}", body={"paused": True})
    reply = call(
        "update_connection_state", path=f"/v1/connections/{connection['id']}/state", body={"state": {"x": 1}}
    )
    assert reply.status == 200, reply.body


def test_a_patched_state_is_where_the_next_sync_starts(aws, api, lake, connection) -> None:
    path = f"/v1/connections/{connection['id']}"
    call("update_connection", path=path, body={"paused": True})
    last = api.data.all_rows()[-1]["updated_at"]
    reply = call(
        "update_connection_state",
        path=f"{path}/state",
        body={"state": {"tables": {"items": {"cursor": last}}}},
    )
    assert reply.status == 200, reply.body
    assert get_connection(connection["id"])["status"]["is_historical_sync"] is False
    call("update_connection", path=path, body={"paused": False})
    result = run_worker(sync_event(connection["id"]))
    assert result["status"] == "SUCCESSFUL"
    at_cursor = [r for r in api.data.all_rows() if r["updated_at"] == last]
    assert result["rows_upserted"] == len(at_cursor)  # only the rows at the patched cursor value


def test_older_snapshots_are_pruned_and_each_sync_has_one_run_record(
    aws, api, lake, connection, table, monkeypatch
) -> None:
    commit_every_checkpoint(monkeypatch)
    events = [sync_event(connection["id"]) for _ in range(2)]
    for event in events:
        assert run_worker(event)["status"] == "SUCCESSFUL"
    store = SyncStore(table)
    snapshots = list(table.query_partition(f"CONN#{connection['id']}", "STATE#"))
    assert [int(s["seq"]) for s in snapshots] == [store.latest_snapshot(connection["id"]).seq]
    for event in events:
        run = store.run(connection["id"], event["id"])
        assert run is not None and run["status"] == "SUCCESSFUL" and run["started_at"]
        assert run["expires_at"] > utc_now().timestamp() + 80 * 86400  # removed by the table's TTL
    assert len(list(table.query_partition(f"CONN#{connection['id']}", "RUN#"))) == 2
