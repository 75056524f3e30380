"""Concurrency on DynamoDB Local only: in-process moto is not safe under threads (it lost updates,
double-claimed and crashed in these same tests), so a result there would mean nothing.

Threads start together at a barrier; each test checks the guarantee, not a timing."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import boto3
import pytest

from sluice.api.caller import Caller
from sluice.api.request_models import UpdateConnectionRequest
from sluice.connections import operations as connections
from sluice.connections.model import Connection
from sluice.errors import ConcurrentUpdate
from sluice.scheduler.tick import Scheduler
from sluice.storage.store import connection_to_item, to_dynamo
from sluice.storage.sync_store import LeaseBusy, LeaseLost, SyncStore
from sluice.timestamps import utc_now
from tests.support.api_events import DEFAULT, make_connection, make_group, rest_api_config

pytestmark = pytest.mark.backends("dynamodb_local")

LEASE = timedelta(minutes=16)


def race(*work: Callable[[], Any]) -> list[Any]:
    """Run each callable in its own thread, released together; their results or exceptions."""
    barrier = threading.Barrier(len(work))
    results: list[Any] = [None] * len(work)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work[i]()
        except Exception as exc:  # the outcome under test, reported to the assertion
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(work))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_racing_patches_lose_no_update_that_reported_success(aws, store) -> None:
    created = make_connection(make_group())
    caller = Caller(DEFAULT.account_id, DEFAULT.user_id)
    changes = [
        {"pause_after_trial": True},
        {"sync_frequency": 30},
        {"daily_sync_time": "03:00"},
        {"data_delay_sensitivity": "HIGH"},
        {"schedule_type": "manual"},
        {"paused": True},
    ]

    def patch(change: dict[str, Any]) -> Callable[[], Any]:
        return lambda: connections.update(caller, created["id"], UpdateConnectionRequest(**change), store)

    before = store.get_connection(None, created["id"])
    results = race(*(patch(c) for c in changes))
    stored = store.get_connection(None, created["id"])
    succeeded = 0
    for change, result in zip(changes, results, strict=True):
        if isinstance(result, ConcurrentUpdate):
            continue  # a clear 409 after its retries: reported, so not lost
        assert isinstance(result, Connection), result
        succeeded += 1
        for field, value in change.items():
            assert getattr(stored, field) == value, (field, value)
    assert succeeded >= 1
    assert stored.version == before.version + succeeded  # one write per reported success, none lost


def seed_due(aws, count: int) -> list[str]:
    now = utc_now()
    ids = [f"due{i:04d}" for i in range(count)]
    client = boto3.client("dynamodb", region_name="us-east-1")
    requests = []
    for connection_id in ids:
        connection = Connection(
            id=connection_id,
            account_id="acct_seed",
            group_id="seedgroup",
            service="rest_api",
            schema=connection_id,
            connected_by="u",
            created_at=now,
            setup_state="connected",
            connected_since=now,
            next_sync_at=now - timedelta(minutes=1),
            config=rest_api_config(connection_id),
        )
        requests.append({"PutRequest": {"Item": to_dynamo(connection_to_item(connection))}})
    for offset in range(0, len(requests), 25):
        client.batch_write_item(RequestItems={aws.env["TABLE_NAME"]: requests[offset : offset + 25]})
    return ids


def test_overlapping_ticks_claim_each_due_connection_once(aws, store) -> None:
    ids = seed_due(aws, 10)
    now = utc_now()
    reports = race(*(lambda: Scheduler(store, 4).tick(now) for _ in range(3)))
    claimed = [i for report in reports for i in report.syncs_requested]
    assert sorted(claimed) == sorted(ids)  # every one, and none twice


def test_racing_sync_triggers_start_one_sync(aws, store) -> None:
    connection_id = make_connection(make_group())["id"]
    syncs = SyncStore(store)
    asked = utc_now() - timedelta(seconds=1)

    def start(sync_id: str) -> Callable[[], Any]:
        return lambda: syncs.acquire(connection_id, sync_id, utc_now(), LEASE, requested_at=asked)

    results = race(*(start(f"sync-{i}") for i in range(8)))
    winners = [r for r in results if isinstance(r, Connection)]
    assert len(winners) == 1, results
    assert all(isinstance(r, LeaseBusy) for r in results if not isinstance(r, Connection))
    assert store.get_connection(None, connection_id).active_sync_id == winners[0].active_sync_id


def test_a_stolen_lease_stops_the_old_worker_and_keeps_the_new_ones_checkpoints(aws, store) -> None:
    connection_id = make_connection(make_group())["id"]
    syncs = SyncStore(store)
    syncs.acquire(connection_id, "old", utc_now(), LEASE)
    committed: list[int] = []

    def old_worker() -> Any:
        for seq in range(1, 200):
            syncs.commit_checkpoint(connection_id, "old", seq, {"by": "old", "seq": seq}, utc_now(), LEASE)
            committed.append(seq)
        return "never lost the lease"

    def force() -> Any:
        syncs.release_for_force(connection_id)
        return syncs.acquire(connection_id, "new", utc_now(), LEASE)

    old, new = race(old_worker, force)
    assert isinstance(old, LeaseLost), old
    assert isinstance(new, Connection) and new.active_sync_id == "new"
    seq = (committed[-1] if committed else 0) + 1
    syncs.commit_checkpoint(connection_id, "new", seq, {"by": "new"}, utc_now(), LEASE)
    latest = syncs.latest_snapshot(connection_id)
    assert latest is not None and latest.state == {"by": "new"}
    # The old worker wrote nothing after the theft: its snapshots are exactly the ones it saw commit.
    old_snapshots = [
        i for i in store.query_partition(f"CONN#{connection_id}", "STATE#") if i["sync_id"] == "old"
    ]
    assert sorted(int(i["seq"]) for i in old_snapshots) == committed


def test_racing_schema_config_patches_lose_no_change(aws, store) -> None:
    from sluice.schema_config import operations as schema_config
    from sluice.schema_config import rules

    created = make_connection(make_group())
    caller = Caller(DEFAULT.account_id, DEFAULT.user_id)
    columns = [f"c{i}" for i in range(6)]
    SyncStore(store).add_columns(created["id"], {"orders": {"id", *columns}})

    def disable(column: str) -> Callable[[], Any]:
        def change(config: Any, loaded: Any, effects: Any) -> None:
            rules.patch_column(config, "shop", "orders", column, {"enabled": False}, loaded.source, effects)

        return lambda: schema_config.modify(caller, created["id"], store, change, "modified")

    results = race(*(disable(c) for c in columns))
    assert not [r for r in results if isinstance(r, Exception) and not isinstance(r, ConcurrentUpdate)]
    succeeded = {c for c, r in zip(columns, results, strict=True) if not isinstance(r, Exception)}
    assert succeeded  # at least the first writer of each round gets through
    got = schema_config.schema_config(caller, created["id"], store)
    disabled = {
        c for c, v in got["schemas"]["shop"]["tables"]["orders"]["columns"].items() if not v["enabled"]
    }
    assert succeeded <= disabled  # every change that reported success is there
