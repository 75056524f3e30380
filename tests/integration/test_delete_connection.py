"""DELETE /v1/connections/{id} through the delete_connection handler on moto."""

from __future__ import annotations

import pytest

from tests.support.api_events import Account, call, connection_path, make_connection, make_group

# The API and its storage on both DynamoDB backends (see tests/conftest.py).
pytestmark = pytest.mark.backends("moto", "dynamodb_local")


def test_delete_returns_200_with_code_and_message_naming_the_id(aws) -> None:
    created = make_connection(make_group())
    reply = call("delete_connection", path=connection_path(created["id"]))
    assert reply.status == 200
    assert set(reply.body) == {"code", "message"}
    assert created["id"] in reply.body["message"]
    assert call("get_connection", path=connection_path(created["id"])).status == 404


def test_delete_frees_the_schema_name(aws) -> None:
    group_id = make_group()
    created = make_connection(group_id)
    call("delete_connection", path=connection_path(created["id"]))
    make_connection(group_id)  # same schema again


def test_delete_unknown_is_404_and_alias_reports_connector(aws) -> None:
    assert call("delete_connection", path=connection_path("gone")).status == 404
    reply = call("delete_connection", path=connection_path("gone", alias=True))
    assert reply.body["code"] == "NotFound_Connector"


def test_delete_of_another_accounts_connection_is_404_and_keeps_it(aws) -> None:
    created = make_connection(make_group())
    reply = call("delete_connection", path=connection_path(created["id"]), account=Account("acct_x", "u"))
    assert reply.status == 404
    assert call("get_connection", path=connection_path(created["id"])).status == 200


def test_delete_is_announced_on_the_bus(aws, bus) -> None:
    created = make_connection(make_group())
    bus.drain()
    call("delete_connection", path=connection_path(created["id"]))
    events = bus.drain()
    assert [e["detail-type"] for e in events] == ["Connection Deleted"]
    assert events[0]["detail"]["connection_id"] == created["id"]


def seed_children(aws, connection_id: str, runs: int, snapshots: int) -> None:
    """What 90 days of frequent syncs leave: run records and snapshots in the connection's partition."""
    import boto3

    from sluice.storage.keys import run_key, state_key
    from sluice.storage.store import to_dynamo

    items = [
        {
            **run_key(connection_id, f"sync{i:06d}"),
            "type": "sync_run",
            "status": "SUCCESSFUL",
            "message": "x" * 150,
        }
        for i in range(runs)
    ]
    items += [
        {**state_key(connection_id, i), "type": "state", "seq": i, "state": "{}"}
        for i in range(1, snapshots + 1)
    ]
    client = boto3.client("dynamodb", region_name="us-east-1")
    requests = [{"PutRequest": {"Item": to_dynamo(item)}} for item in items]
    for offset in range(0, len(requests), 25):
        client.batch_write_item(RequestItems={aws.env["TABLE_NAME"]: requests[offset : offset + 25]})


def test_deleting_a_connection_with_many_children_is_bounded_and_finishes_in_the_background(
    aws, store
) -> None:
    from sluice.scheduler.tick import Scheduler
    from sluice.storage.store import DELETE_INLINE_ITEMS
    from sluice.timestamps import utc_now

    created = make_connection(make_group())
    seed_children(aws, created["id"], runs=2_400, snapshots=100)  # run records alone: past 400 KB
    writes: list[str] = []

    def record(**kwargs) -> None:
        writes.append(kwargs["model"].name)

    store.client.meta.events.register("before-call.dynamodb.BatchWriteItem", record)
    try:
        reply = call("delete_connection", path=connection_path(created["id"]))
    finally:
        store.client.meta.events.unregister("before-call.dynamodb.BatchWriteItem", record)
    assert reply.status == 200, reply.body
    assert len(writes) <= DELETE_INLINE_ITEMS // 25  # bounded, whatever the history
    # A retried DELETE finds nothing to delete (404) and orphans nothing: the tick finishes it.
    assert call("delete_connection", path=connection_path(created["id"])).status == 404
    assert list(store.query_partition(f"CONN#{created['id']}", "RUN#"))  # not yet
    report = Scheduler(store, 4).tick(utc_now())
    assert report.purged == [created["id"]]
    assert list(store.query_partition(f"CONN#{created['id']}", "")) == []
    assert Scheduler(store, 4).tick(utc_now()).purged == []  # nothing left to do
