"""A transaction conflict or throttling is "not now", not "no": it is retried with backoff, and only
a failed condition means the lease is lost (issue 16, finding 5). DynamoDB Local, where these
errors come from the real service's protocol."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sluice.storage.sync_store import LeaseLost, SyncStore
from sluice.timestamps import utc_now
from tests.support.api_events import call, make_connection, make_group
from tests.support.dynamodb_faults import failing, transaction_conflict, write_conflict

pytestmark = pytest.mark.backends("dynamodb_local")

LEASE = timedelta(minutes=16)


def test_a_conflict_at_a_checkpoint_is_retried_and_the_sync_keeps_its_lease(aws, store) -> None:
    connection_id = make_connection(make_group())["id"]
    syncs = SyncStore(store)
    syncs.acquire(connection_id, "sync-1", utc_now(), LEASE)
    errors = [transaction_conflict(2, 1), transaction_conflict(2, 0)]
    with failing(store.client, "TransactWriteItems", errors) as answered:
        syncs.commit_checkpoint(connection_id, "sync-1", 1, {"cursor": "a"}, utc_now(), LEASE)
    assert len(answered) == 2  # both conflicts were met, then the commit went through
    snapshot = syncs.latest_snapshot(connection_id)
    assert snapshot is not None and snapshot.state == {"cursor": "a"}
    assert syncs.holds_lease(connection_id, "sync-1")


def test_only_a_failed_lease_condition_is_lease_lost(aws, store) -> None:
    connection_id = make_connection(make_group())["id"]
    syncs = SyncStore(store)
    syncs.acquire(connection_id, "sync-1", utc_now(), LEASE)
    syncs.release_for_force(connection_id)
    with pytest.raises(LeaseLost):
        syncs.commit_checkpoint(connection_id, "sync-1", 1, {"cursor": "a"}, utc_now(), LEASE)


def test_a_conflict_on_a_patch_write_is_retried_not_a_500(aws, store) -> None:
    created = make_connection(make_group())
    with failing(store.client, "PutItem", [write_conflict()]) as answered:
        reply = call(
            "update_connection", path=f"/v1/connections/{created['id']}", body={"sync_frequency": 30}
        )
    assert answered == ["PutItem"]
    assert reply.status == 200, reply.body
    assert store.get_connection(None, created["id"]).sync_frequency == 30
