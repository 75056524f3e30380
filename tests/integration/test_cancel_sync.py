"""Issue 14 item 3: POST /v1/connections/{id}/syncs/{sync_id}/cancel (ours) stops a running sync at its
next batch; everything up to its last checkpoint is kept, nothing after it is committed; the run is
recorded CANCELLED (one Sync Completed), and the connection returns to `scheduled` with `failed_at`
moved forward, ready for the next sync. The source is a real loopback server whose pages wait for
the test."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from sluice.storage.sync_store import SyncStore
from sluice.timestamps import parse_timestamp
from tests.support.api_events import Account, call
from tests.support.paged_gate import PagedGate
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

PAGE = 10


@pytest.fixture
def gate() -> Iterator[PagedGate]:
    with PagedGate(pages=3, page_size=PAGE) as source:
        yield source


@pytest.fixture
def connection(aws, gate, monkeypatch) -> dict[str, Any]:
    from sluice.settings import get_settings

    monkeypatch.setenv("SYNC_COMMIT_EVERY_SECONDS", "0")  # a checkpoint after every page
    get_settings.cache_clear()
    # The worker looks at its lease before every batch (in production: at most a second apart).
    monkeypatch.setattr("sluice.sync.engine.LEASE_CHECK_SECONDS", 0.0)
    group_id = make_group_with_duckdb("lake.duckdb")
    return make_rest_connection(group_id, sample_api_config(gate.url, page_size=PAGE))


class Worker:
    """The sync worker on its own thread, as Lambda would run it beside the API."""

    def __init__(self, event: dict[str, Any]) -> None:
        self.event = event
        self.result: dict[str, Any] = {}
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.result = run_worker(self.event)

    def join(self) -> dict[str, Any]:
        self.thread.join(timeout=120)
        assert not self.thread.is_alive(), "the worker did not stop"
        return self.result


def cancel(connection_id: str, sync_id: str, account: Account | None = None):
    path = f"/v1/connections/{connection_id}/syncs/{sync_id}/cancel"
    return call("cancel_connection_sync", path=path, **({"account": account} if account else {}))


def test_a_cancelled_sync_stops_at_its_next_batch_and_keeps_its_last_checkpoint(
    aws, gate, connection, store, bus
) -> None:
    connection_id = connection["id"]
    event = sync_event(connection_id)
    bus.drain()
    worker = Worker(event)
    gate.release(0)
    gate.wait_requested(1)  # page 0 is written and checkpointed; the worker waits for page 1
    running = call("get_connection_syncs", path=f"/v1/connections/{connection_id}/syncs/{event['id']}")
    assert running.data["status"] == "RUNNING" and running.data["rows_upserted"] == PAGE
    before = get_connection(connection_id)
    assert before["status"]["sync_state"] == "syncing"

    reply = cancel(connection_id, event["id"])
    assert reply.status == 200, reply.body
    assert reply.body["message"] == f"Sync with id '{event['id']}' has been cancelled"
    assert reply.data["status"] == "CANCELLED" and reply.data["finished_at"] is not None
    assert reply.data["rows_upserted"] == PAGE
    after = get_connection(connection_id)
    assert after["status"]["sync_state"] == "scheduled"
    assert after["failed_at"] is not None  # orchestrators polling succeeded_at/failed_at see it end
    assert after["status"]["tasks"] == []  # the user's own doing: nothing to fix

    gate.release(1)
    result = worker.join()
    assert result["status"] == "SKIPPED" and result["message"] == "lease lost"
    assert not gate.requested[2].is_set(), "the cancelled sync read on"
    assert set(duckdb_rows(duckdb_file("lake.duckdb"))) == set(range(PAGE))  # page 1 never landed
    snapshot = SyncStore(store).latest_snapshot(connection_id)
    assert snapshot is not None and snapshot.sync_id == event["id"] and snapshot.seq == 1
    record = call("get_connection_syncs", path=f"/v1/connections/{connection_id}/syncs/{event['id']}").data
    assert record["status"] == "CANCELLED" and record["rows_upserted"] == PAGE
    assert record["reason"] == "Cancelled through the API"
    ends = [e["detail"] for e in bus.drain() if e["detail-type"] == "Sync Completed"]
    assert [(e["sync_id"], e["data"]["status"]) for e in ends] == [(event["id"], "CANCELLED")]
    assert ends[0]["data"]["rows_upserted"] == PAGE

    # The connection takes the next sync at once, from the cancelled sync's checkpoint.
    gate.release_all()
    again = sync_event(connection_id)
    assert run_worker(again)["status"] == "SUCCESSFUL"
    done = get_connection(connection_id)
    assert parse_timestamp(done["succeeded_at"]) > parse_timestamp(after["failed_at"])
    assert set(duckdb_rows(duckdb_file("lake.duckdb"))) == set(range(3 * PAGE))


def test_cancelling_a_sync_that_is_not_running_is_a_409_and_another_accounts_is_a_404(
    aws, gate, connection
) -> None:
    gate.release_all()
    event = sync_event(connection["id"])
    assert run_worker(event)["status"] == "SUCCESSFUL"
    ended = cancel(connection["id"], event["id"])
    assert ended.status == 409 and ended.body["code"] == "Conflict"
    assert "is not running" in ended.body["message"]
    unknown = cancel(connection["id"], "no-such-sync")
    assert unknown.status == 404 and unknown.body["code"] == "NotFound_Sync"
    stranger = cancel(connection["id"], event["id"], Account("acct_other", "user_other"))
    assert stranger.status == 404 and stranger.body["code"] == "NotFound_Connection"
    # Nothing changed on the connection.
    assert get_connection(connection["id"])["status"]["sync_state"] == "scheduled"


def test_the_running_sync_can_be_cancelled_without_its_id(aws, gate, connection) -> None:
    connection_id = connection["id"]
    event = sync_event(connection_id)
    worker = Worker(event)
    gate.wait_requested(0)  # the sync is running, waiting for its first page
    path = f"/v1/connectors/{connection_id}/sync/cancel"
    reply = call("cancel_connection_sync", path=path)
    assert reply.status == 200, reply.body
    assert reply.data["id"] == event["id"] and reply.data["status"] == "CANCELLED"
    gate.release_all()
    assert worker.join()["message"] == "lease lost"
    assert not gate.requested[1].is_set()
    again = call("cancel_connection_sync", path=path)
    assert again.status == 409 and "No sync is running" in again.body["message"]
    assert get_connection(connection_id)["status"]["sync_state"] == "scheduled"
