"""Issue 9 item 10: every started sync ends exactly once, with totals over all its invocations; a
sync forced out or whose connection was deleted still ends its run and sends one Sync Completed; a
replayed sync id sends no second Sync Started; a crashed worker does not block POST /sync for the
whole lease."""

from __future__ import annotations

from datetime import timedelta

import pytest

from local.sample_api import SampleApi
from sluice.storage.sync_store import SyncStore
from sluice.sync.runs import DELETED, FORCED_OUT, SILENT_AFTER, STOPPED_STATUS, WORKER_SILENT
from sluice.timestamps import utc_now
from tests.support.api_events import call
from tests.support.syncing import (
    make_group_with_duckdb,
    make_rest_connection,
    run_worker,
    sample_api_config,
    sync_event,
)

ROWS = 237


class Crash(BaseException):
    """Stands for the process dying: nothing in the engine catches it."""


@pytest.fixture
def api():
    with SampleApi(rows=ROWS, ties=7) as server:
        yield server


@pytest.fixture
def connection(aws, api) -> dict:
    group_id = make_group_with_duckdb("lake.duckdb")
    return make_rest_connection(group_id, sample_api_config(api.url, page_size=20))


def sync_events(bus, sync_id: str) -> dict[str, list[dict]]:
    seen: dict[str, list[dict]] = {"Sync Started": [], "Sync Completed": []}
    for event in bus.drain():
        if event["detail-type"] in seen and event["detail"].get("sync_id") == sync_id:
            seen[event["detail-type"]].append(event["detail"])
    return seen


def run_record(store, connection_id: str, sync_id: str) -> dict | None:
    return SyncStore(store).run(connection_id, sync_id)


def interrupt_after_first_batch(monkeypatch, action, batch: int = 1) -> list[int]:
    """Make the destination call `action()` right after its `batch`-th batch is written."""
    from sluice.destinations.duckdb import DuckDbDestination

    monkeypatch.setattr("sluice.sync.engine.LEASE_CHECK_SECONDS", 0.0)
    original = DuckDbDestination.upsert
    written: list[int] = []

    def upsert(self, *args, **kwargs):
        count = original(self, *args, **kwargs)
        written.append(count)
        if len(written) == batch:
            action()
        return count

    monkeypatch.setattr(DuckDbDestination, "upsert", upsert)
    return written


def test_a_forced_out_sync_ends_its_run_once_with_one_sync_completed(
    aws, api, connection, store, bus, monkeypatch
) -> None:
    from sluice.settings import get_settings

    monkeypatch.setenv("SYNC_COMMIT_EVERY_SECONDS", "0")  # a checkpoint after every page
    get_settings.cache_clear()
    path = f"/v1/connections/{connection['id']}/sync"

    def force() -> None:
        assert call("sync_connection", path=path, body={"force": True}).status == 200

    written = interrupt_after_first_batch(monkeypatch, force, batch=2)
    event = sync_event(connection["id"])
    bus.drain()
    result = run_worker(event)
    assert result["status"] == "SKIPPED" and result["message"] == "lease lost"
    record = run_record(store, connection["id"], event["id"])
    assert record is not None
    assert record["status"] == STOPPED_STATUS and record["message"] == FORCED_OUT
    seen = sync_events(bus, event["id"])
    assert len(seen["Sync Started"]) == 1
    assert len(seen["Sync Completed"]) == 1
    assert seen["Sync Completed"][0]["data"]["status"] == STOPPED_STATUS
    # The rows its checkpoints covered (the first page); the second page is the new sync's to land.
    assert seen["Sync Completed"][0]["data"]["rows_upserted"] == written[0] > 0


def test_a_sync_whose_connection_was_deleted_sends_one_sync_completed(
    aws, api, connection, bus, monkeypatch
) -> None:
    path = f"/v1/connections/{connection['id']}"
    interrupt_after_first_batch(monkeypatch, lambda: call("delete_connection", path=path))
    event = sync_event(connection["id"])
    bus.drain()
    result = run_worker(event)
    assert result["status"] == "SKIPPED"
    seen = sync_events(bus, event["id"])
    assert len(seen["Sync Started"]) == 1
    assert [e["data"]["status"] for e in seen["Sync Completed"]] == [STOPPED_STATUS]


def test_the_delete_ends_the_run_of_a_sync_whose_worker_is_gone(aws, connection, store, bus) -> None:
    syncs = SyncStore(store)
    syncs.acquire(connection["id"], "gone", utc_now(), timedelta(minutes=16))
    syncs.start_run(connection["id"], "gone", utc_now(), "api")
    bus.drain()
    assert call("delete_connection", path=f"/v1/connections/{connection['id']}").status == 200
    completed = sync_events(bus, "gone")["Sync Completed"]
    assert len(completed) == 1 and completed[0]["data"]["status"] == STOPPED_STATUS
    assert DELETED  # the message the run record got (the record itself is purged with the connection)


def test_a_replayed_sync_id_sends_no_second_sync_started_and_ends_once(
    aws, api, connection, store, bus, monkeypatch
) -> None:
    from sluice.destinations.duckdb import DuckDbDestination

    original = DuckDbDestination.upsert
    calls: list[int] = []

    def crash_once(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise Crash()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DuckDbDestination, "upsert", crash_once)
    event = sync_event(connection["id"])
    bus.drain()
    with pytest.raises(Crash):
        run_worker(event)
    assert run_worker(event)["status"] == "SUCCESSFUL"  # the platform's retry: the same event id
    assert run_worker(event)["status"] == "SKIPPED"  # and a late duplicate of it
    seen = sync_events(bus, event["id"])
    assert len(seen["Sync Started"]) == 1
    assert len(seen["Sync Completed"]) == 1
    assert seen["Sync Completed"][0]["data"]["rows_upserted"] == ROWS


def test_a_sync_over_many_invocations_reports_its_total(aws, api, connection, store, bus) -> None:
    event = sync_event(connection["id"])
    bus.drain()
    detail = event
    invocations = 0
    for _ in range(100):  # bounded: one invocation per page at most
        result = run_worker(detail, timeout_seconds=0.01)  # stops at every checkpoint
        invocations += 1
        if result["status"] != "CONTINUED":
            break
        detail = sync_event(connection["id"], reason="continuation", sync_id=event["id"])
    assert result["status"] == "SUCCESSFUL" and invocations > 1
    completed = sync_events(bus, event["id"])["Sync Completed"]
    assert len(completed) == 1
    assert completed[0]["data"]["rows_upserted"] == ROWS  # every invocation's rows, not the last one's
    record = run_record(store, connection["id"], event["id"])
    assert record is not None and record["rows_upserted"] == ROWS


def test_after_a_worker_crash_post_sync_starts_a_new_sync_without_waiting_for_the_lease(
    aws, connection, store, bus
) -> None:
    syncs = SyncStore(store)
    crashed_at = utc_now() - SILENT_AFTER - timedelta(seconds=5)
    syncs.acquire(connection["id"], "crashed", crashed_at, timedelta(minutes=16))  # lease still valid
    syncs.start_run(connection["id"], "crashed", crashed_at, "api")
    bus.drain()
    reply = call("sync_connection", path=f"/v1/connections/{connection['id']}/sync", body={})
    assert reply.status == 200
    assert "successfully triggered" in reply.body["message"]
    events = bus.drain()
    assert [e["detail-type"] for e in events].count("Sync Requested") == 1
    record = run_record(store, connection["id"], "crashed")
    assert record is not None and record["message"] == WORKER_SILENT
    completed = [
        e for e in events if e["detail-type"] == "Sync Completed" and e["detail"]["sync_id"] == "crashed"
    ]
    assert len(completed) == 1


def test_a_live_sync_still_answers_already_running(aws, connection, store) -> None:
    syncs = SyncStore(store)
    syncs.acquire(connection["id"], "alive", utc_now(), timedelta(minutes=16))
    reply = call("sync_connection", path=f"/v1/connections/{connection['id']}/sync", body={})
    assert reply.status == 200
    assert "already running" in reply.body["message"]
