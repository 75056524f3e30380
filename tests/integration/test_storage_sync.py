"""Sync bookkeeping past DynamoDB's limits, on both backends: states over 400 KB, pruning more
snapshots than one 1 MB query page holds."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sluice.storage.sync_store import MAX_STATE_BYTES, StateTooLarge, SyncStore
from sluice.timestamps import utc_now
from tests.support.api_events import make_connection, make_group

pytestmark = pytest.mark.backends("moto", "dynamodb_local")

LEASE = timedelta(minutes=16)


def leased(store, sync_id: str = "sync-1") -> tuple[SyncStore, str]:
    connection_id = make_connection(make_group())["id"]
    syncs = SyncStore(store)
    syncs.acquire(connection_id, sync_id, utc_now(), LEASE)
    return syncs, connection_id


def s3_like_state(files: int) -> dict:
    """What the s3 source keeps when many files share one LastModified second."""
    return {
        "last_modified": "2026-01-01T00:00:00+00:00",
        "keys": [f"landing/2026/01/01/part-{i:08d}.csv" for i in range(files)],
    }


def test_a_checkpoint_state_past_400_kb_commits_and_reads_back(aws, store) -> None:
    syncs, connection_id = leased(store)
    state = s3_like_state(20_000)  # about 900 KB of JSON
    syncs.commit_checkpoint(connection_id, "sync-1", 1, state, utc_now(), LEASE)
    snapshot = syncs.latest_snapshot(connection_id)
    assert snapshot is not None and snapshot.seq == 1
    assert snapshot.state == state
    # And the next one, smaller, is the latest (its parts do not mix with the older one's).
    syncs.commit_checkpoint(connection_id, "sync-1", 2, {"keys": ["a"]}, utc_now(), LEASE)
    latest = syncs.latest_snapshot(connection_id)
    assert latest is not None and latest.state == {"keys": ["a"]}


def test_a_state_past_the_designed_bound_is_a_clear_error_and_writes_nothing(aws, store) -> None:
    syncs, connection_id = leased(store)
    too_big = {"blob": "x" * (MAX_STATE_BYTES + 1)}
    with pytest.raises(StateTooLarge, match=str(MAX_STATE_BYTES)):
        syncs.commit_checkpoint(connection_id, "sync-1", 1, too_big, utc_now(), LEASE)
    assert syncs.latest_snapshot(connection_id) is None


def test_pruning_reads_every_page_of_old_snapshots(aws, store) -> None:
    syncs, connection_id = leased(store)
    # 25 snapshots of about 100 KB: more than one 1 MB query page.
    for seq in range(1, 26):
        syncs.commit_checkpoint(connection_id, "sync-1", seq, {"pad": f"{seq}" * 100_000}, utc_now(), LEASE)
    syncs.prune_snapshots(connection_id, keep_from_seq=25)
    left = list(store.query_partition(f"CONN#{connection_id}", "STATE#"))
    assert [int(i["seq"]) for i in left] == [25]


def test_pruning_removes_the_parts_of_large_old_snapshots(aws, store) -> None:
    syncs, connection_id = leased(store)
    for seq in (1, 2):
        syncs.commit_checkpoint(connection_id, "sync-1", seq, s3_like_state(10_000), utc_now(), LEASE)
    syncs.prune_snapshots(connection_id, keep_from_seq=2)
    parts = [i["sk"] for i in store.query_partition(f"CONN#{connection_id}", "STATEPART#")]
    assert parts and all(sk.startswith("STATEPART#000000000002#") for sk in parts)
    latest = syncs.latest_snapshot(connection_id)
    assert latest is not None and latest.state == s3_like_state(10_000)


def test_columns_seen_past_400_kb_live_outside_the_connection_item(aws, store) -> None:
    from tests.support.api_events import call

    created = make_connection(make_group())
    syncs = SyncStore(store)
    names = {f"attribute_with_a_long_descriptive_name_{i:06d}" for i in range(15_000)}  # ~700 KB
    before = store.get_connection(None, created["id"])
    # Two syncs, each seeing part of them (a union, as every sync adds what it saw).
    syncs.add_columns(created["id"], {"orders": set(sorted(names)[:9_000])})
    syncs.add_columns(created["id"], {"orders": set(sorted(names)[6_000:]), "refunds": {"id"}})
    after = store.get_connection(None, created["id"])
    assert after.version == before.version and after.table_columns == before.table_columns
    seen = syncs.columns_seen(after)
    assert seen["orders"] == sorted(names) and seen["refunds"] == ["id"]
    reply = call(
        "get_connection_schemas", path=f"/v1/connections/{created['id']}/schemas/shop/tables/orders/columns"
    )
    assert reply.status == 200, reply.body
    assert set(reply.data["columns"]) == names | {"id"}


def test_columns_already_stored_are_not_written_again(aws, store) -> None:
    from sluice.storage.dynamo import requests_sent

    created = make_connection(make_group())
    syncs = SyncStore(store)
    columns = {f"column_{i}" for i in range(40)}  # spread over every bucket
    syncs.add_columns(created["id"], {"orders": columns, "refunds": {"id"}})

    before = requests_sent()
    syncs.add_columns(created["id"], {"orders": columns, "refunds": {"id"}})
    assert requests_sent() - before == 1  # the read of what is stored; nothing new to write

    before = requests_sent()
    syncs.add_columns(created["id"], {"orders": columns | {"column_new"}, "refunds": {"id"}})
    assert requests_sent() - before == 2  # the read, and one bucket of one table
    assert "column_new" in syncs.columns_seen(store.get_connection(None, created["id"]))["orders"]
