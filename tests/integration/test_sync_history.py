"""Issue 14 item 2: sync history (ours) from the run records: GET /v1/connections/{id}/syncs (newest
first, paged like every list) and .../syncs/{sync_id}; while a sync runs its record shows the rows of
its latest checkpoint, written in that checkpoint's own transaction; `Sync Completed` carries rows per
table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from local.sample_api import SampleApi
from sluice.timestamps import parse_timestamp
from tests.support.api_events import DEFAULT, Account, call
from tests.support.syncing import (
    make_group_with_duckdb,
    make_rest_connection,
    run_worker,
    sample_api_config,
    sync_event,
)

pytestmark = pytest.mark.backends("moto", "dynamodb_local")

ROWS = 45
PAGE = 20


@pytest.fixture
def api() -> Iterator[SampleApi]:
    with SampleApi(rows=ROWS, token="tok") as server:
        yield server


@pytest.fixture
def connection(aws, api) -> dict[str, Any]:
    group_id = make_group_with_duckdb("lake.duckdb")
    return make_rest_connection(group_id, sample_api_config(api.url, token="tok", page_size=PAGE))


@pytest.fixture
def commit_every_page(monkeypatch) -> None:
    from sluice.settings import get_settings

    monkeypatch.setenv("SYNC_COMMIT_EVERY_SECONDS", "0")
    get_settings.cache_clear()


def syncs(connection_id: str, alias: bool = False, account: Account = DEFAULT, **query: str):
    base = "connectors" if alias else "connections"
    return call(
        "get_connection_syncs", path=f"/v1/{base}/{connection_id}/syncs", query=query or None, account=account
    )


def one_sync(connection_id: str, sync_id: str, alias: bool = False):
    base = "connectors" if alias else "connections"
    return call("get_connection_syncs", path=f"/v1/{base}/{connection_id}/syncs/{sync_id}")


def test_history_lists_syncs_newest_first_with_trigger_rows_per_table_duration_and_reason(
    aws, api, connection, bus
) -> None:
    api.fail_next(1, status=404)
    failed = sync_event(connection["id"], reason="schedule")
    assert run_worker(failed)["status"] == "FAILURE_WITH_TASK"
    succeeded = sync_event(connection["id"], reason="api")
    assert run_worker(succeeded)["status"] == "SUCCESSFUL"

    reply = syncs(connection["id"])
    assert reply.status == 200, reply.body
    assert reply.body["message"] == "Syncs list retrieved successfully"
    items = reply.data["items"]
    assert [i["id"] for i in items] == [succeeded["id"], failed["id"]]
    assert reply.data["next_cursor"] is None
    newest, oldest = items
    assert newest["status"] == "SUCCESSFUL" and newest["trigger"] == "api"
    assert newest["connection_id"] == connection["id"]
    assert newest["rows_upserted"] == ROWS and newest["rows_deleted"] == 0
    assert newest["tables"] == {"items": {"rows_upserted": ROWS, "rows_deleted": 0}}
    assert newest["continuations"] == 0
    assert newest["reason"] is None and newest["reason_code"] is None
    elapsed = parse_timestamp(newest["finished_at"]) - parse_timestamp(newest["started_at"])
    assert newest["duration_seconds"] == pytest.approx(elapsed.total_seconds())
    assert oldest["status"] == "FAILURE_WITH_TASK" and oldest["trigger"] == "schedule"
    assert oldest["reason_code"] == "source_error" and "HTTP 404" in oldest["reason"]
    assert oldest["rows_upserted"] == 0

    alone = one_sync(connection["id"], failed["id"], alias=True)
    assert alone.status == 200 and alone.data == oldest
    completed = [
        e["detail"]["data"]
        for e in bus.drain()
        if e["detail-type"] == "Sync Completed" and e["detail"]["sync_id"] == succeeded["id"]
    ]
    assert completed == [
        {
            "status": "SUCCESSFUL",
            "rows_upserted": ROWS,
            "rows_deleted": 0,
            "tables": {"items": {"rows_upserted": ROWS, "rows_deleted": 0}},
        }
    ]


def test_history_pages_by_cursor_and_a_cursor_of_another_list_is_a_400(aws, api, connection) -> None:
    events = [sync_event(connection["id"]) for _ in range(5)]
    for event in events:
        assert run_worker(event)["status"] == "SUCCESSFUL"
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        reply = syncs(connection["id"], limit="2", **({"cursor": cursor} if cursor else {}))
        assert reply.status == 200, reply.body
        assert len(reply.data["items"]) <= 2
        seen += [i["id"] for i in reply.data["items"]]
        cursor = reply.data["next_cursor"]
        assert reply.data["nextCursor"] == cursor
        if cursor is None:
            break
    assert seen == [e["id"] for e in reversed(events)]

    other = make_rest_connection(
        make_group_with_duckdb("other.duckdb", name="other"), sample_api_config(api.url, token="tok")
    )
    first = syncs(connection["id"], limit="2")
    crossed = syncs(other["id"], cursor=first.data["next_cursor"])
    assert crossed.status == 400 and crossed.body["code"] == "InvalidInput"
    assert syncs(connection["id"], limit="0").status == 400
    assert syncs(connection["id"], cursor="not-a-cursor").status == 400


def test_another_accounts_connection_and_an_unknown_sync_are_404s(aws, api, connection) -> None:
    event = sync_event(connection["id"])
    run_worker(event)
    stranger = Account(account_id="acct_other", user_id="user_other")
    reply = syncs(connection["id"], account=stranger)
    assert reply.status == 404 and reply.body["code"] == "NotFound_Connection"
    path = f"/v1/connectors/{connection['id']}/syncs/{event['id']}"
    alias = call("get_connection_syncs", path=path, account=stranger)
    assert alias.status == 404 and alias.body["code"] == "NotFound_Connector"
    missing = one_sync(connection["id"], "no-such-sync")
    assert missing.status == 404 and missing.body["code"] == "NotFound_Sync"


def test_a_running_sync_shows_the_rows_of_its_latest_checkpoint_written_in_that_checkpoint(
    aws, api, connection, store, commit_every_page, monkeypatch
) -> None:
    from sluice.destinations.duckdb import DuckDbDestination

    event = sync_event(connection["id"])
    run_writes: list[str] = []

    def record_writes(params: dict[str, Any], model: Any, **_: Any) -> None:
        key = str((params.get("Key") or params.get("Item") or {}).get("sk", {}).get("S", ""))
        if model.name in ("UpdateItem", "PutItem") and key.startswith("RUN#"):
            run_writes.append(model.name)
        if model.name == "TransactWriteItems":
            keys = []
            for item in params["TransactItems"]:
                action = next(iter(item.values()))
                keys.append(str((action.get("Key") or action.get("Item") or {})["sk"]["S"]))
            if any(k.startswith("STATE#") for k in keys):
                has_run = any(k.startswith("RUN#") for k in keys)
                run_writes.append("checkpoint with run" if has_run else "checkpoint without run")

    store.client.meta.events.register("provide-client-params.dynamodb", record_writes)
    seen_while_running: list[dict[str, Any]] = []
    original = DuckDbDestination.upsert
    batches = 0

    def upsert(self, *args, **kwargs):
        nonlocal batches
        batches += 1
        if batches == 3:  # two pages checkpointed, the third being written
            seen_while_running.append(one_sync(connection["id"], event["id"]).data)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DuckDbDestination, "upsert", upsert)
    try:
        assert run_worker(event)["status"] == "SUCCESSFUL"
    finally:
        store.client.meta.events.unregister("provide-client-params.dynamodb", record_writes)
    [running] = seen_while_running
    assert running["status"] == "RUNNING" and running["finished_at"] is None
    assert running["duration_seconds"] is None
    assert running["rows_upserted"] == 2 * PAGE
    assert running["tables"] == {"items": {"rows_upserted": 2 * PAGE, "rows_deleted": 0}}
    assert running["last_checkpoint_at"] is not None
    # One write opens the record, every checkpoint's transaction carries its progress, one write ends
    # it: nothing else writes the run record, however many pages the sync reads.
    assert run_writes[0] == "PutItem" and run_writes[-1] == "UpdateItem"
    checkpoints = run_writes[1:-1]
    assert len(checkpoints) >= -(-ROWS // PAGE)  # at least one a page
    assert set(checkpoints) == {"checkpoint with run"}
    done = one_sync(connection["id"], event["id"]).data
    assert done["status"] == "SUCCESSFUL" and done["rows_upserted"] == ROWS


def test_a_sync_that_continues_counts_its_continuations_and_every_invocations_rows(
    aws, api, connection
) -> None:
    first = run_worker(sync_event(connection["id"]), timeout_seconds=0)
    assert first["status"] == "CONTINUED"
    # The continuation the worker asked for, carried by the next event for the same sync id.
    syncs_now = syncs(connection["id"]).data["items"]
    assert [s["status"] for s in syncs_now] == ["RUNNING"]
    sync_id = syncs_now[0]["id"]
    assert syncs_now[0]["continuations"] == 1
    rest = run_worker(sync_event(connection["id"], reason="continuation", sync_id=sync_id))
    assert rest["status"] == "SUCCESSFUL"
    done = one_sync(connection["id"], sync_id).data
    assert done["continuations"] == 1 and done["trigger"] == "api"
    assert done["rows_upserted"] == first["rows_upserted"] + rest["rows_upserted"]


def test_a_sync_id_too_long_to_be_a_key_is_a_404_not_a_500(aws, connection) -> None:
    long_id = "s" * 2000  # longer than a DynamoDB sort key may be
    reply = one_sync(connection["id"], long_id)
    assert reply.status == 404 and reply.body["code"] == "NotFound_Sync"
    path = f"/v1/connections/{connection['id']}/syncs/{long_id}/cancel"
    cancelled = call("cancel_connection_sync", path=path)
    assert cancelled.status == 404 and cancelled.body["code"] == "NotFound_Sync"


def test_a_duplicate_worker_that_loses_a_checkpoint_race_leaves_the_run_to_the_other(
    aws, api, connection, store
) -> None:
    from sluice.storage.keys import state_key
    from sluice.storage.sync_store import SyncStore
    from sluice.timestamps import format_timestamp, utc_now

    event = sync_event(connection["id"])
    # A duplicate delivery of the same sync is running: it opened the run and its first checkpoint's
    # snapshot is written, its transaction not yet through.
    assert SyncStore(store).start_run(connection["id"], event["id"], utc_now(), "api")
    snapshot = {
        **state_key(connection["id"], 1),
        "type": "state",
        "seq": 1,
        "state": "{}",
        "parts": 1,
        "sync_id": event["id"],
        "created_at": format_timestamp(utc_now()),
    }
    store.put_new(snapshot, lambda: AssertionError("exists"))
    result = run_worker(event)
    assert result["status"] == "SKIPPED" and result["message"] == "lease lost"
    assert one_sync(connection["id"], event["id"]).data["status"] == "RUNNING"
