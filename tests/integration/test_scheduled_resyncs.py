"""Scheduled re-syncs (ours): `resync_schedule` on create/update, shown on GET, and claimed by the same
scheduler tick as syncs, announced as a historical `Sync Requested` like a manual resync."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sluice.scheduler.tick import Scheduler
from sluice.storage.store import Store
from sluice.timestamps import utc_now
from tests.integration.test_scheduler_tick import connect
from tests.support.api_events import call, connection_path, make_connection, make_group

WEEKLY = {"cron": "0 3 * * SUN", "scope": {"shop": ["orders"]}}


def patch(connection_id: str, body: dict) -> object:
    return call("update_connection", path=connection_path(connection_id), body=body)


def requests_on_bus(bus) -> list[dict]:
    return [e["detail"] for e in bus.drain() if e["detail-type"] == "Sync Requested"]


def test_update_takes_it_get_shows_it_and_an_empty_object_removes_it(aws, table: Store) -> None:
    created = make_connection(make_group())
    assert created["resync_schedule"] is None
    reply = patch(created["id"], {"resync_schedule": WEEKLY})
    assert reply.status == 200, reply.body
    got = call("get_connection", path=connection_path(created["id"])).data
    assert reply.data["resync_schedule"] == got["resync_schedule"] == WEEKLY
    planned = table.get_connection(None, created["id"]).next_resync_at
    assert planned is not None and planned.weekday() == 6 and (planned.hour, planned.minute) == (3, 0)
    cleared = patch(created["id"], {"resync_schedule": {}})
    assert cleared.data["resync_schedule"] is None
    assert table.get_connection(None, created["id"]).next_resync_at is None


def test_create_takes_it(aws) -> None:
    created = make_connection(make_group(), resync_schedule={"cron": "0 0 1 * *"})
    assert created["resync_schedule"] == {"cron": "0 0 1 * *"}


@pytest.mark.parametrize(
    ("resync_schedule", "message"),
    [
        ({"cron": "0 3 * *"}, "Field 'resync_schedule.cron' must have five fields"),
        ({"cron": "0 99 * * *"}, "Field 'resync_schedule.cron' is not a valid cron expression"),
        ({"cron": "0 3 * * *", "scope": {"shop": ["nope"]}}, "Unknown table 'nope' in schema 'shop'"),
        ({"scope": {"shop": ["orders"]}}, "Field 'resync_schedule.cron' is required"),
        ({"cron": "0 3 * * *", "every": "week"}, "Field 'resync_schedule.every' is not supported"),
    ],
)
def test_a_bad_resync_schedule_is_a_clear_400(aws, resync_schedule: dict, message: str) -> None:
    created = make_connection(make_group())
    reply = patch(created["id"], {"resync_schedule": resync_schedule})
    assert reply.status == 400 and reply.body["code"] == "InvalidInput"
    assert reply.body["message"].startswith(message), reply.body


def test_the_tick_claims_a_due_resync_once_and_announces_it_like_a_manual_one(aws, table: Store, bus) -> None:
    # The daily sync is hours away; the hourly re-sync within the hour.
    daily = f"{(utc_now() + timedelta(hours=6)).hour:02d}:00"
    created = make_connection(make_group(), sync_frequency=1440, daily_sync_time=daily)
    patch(created["id"], {"resync_schedule": {"cron": "30 * * * *", "scope": {"shop": ["orders"]}}})
    connection = connect(table, created["id"], utc_now())
    due = connection.next_resync_at
    assert due is not None and connection.next_sync_at is not None
    bus.drain()
    assert connection.next_sync_at > due + timedelta(hours=1)
    assert Scheduler(table, 4).tick(due - timedelta(seconds=1)).resyncs_requested == []
    report = Scheduler(table, 4).tick(due + timedelta(seconds=2))
    assert report.resyncs_requested == [created["id"]] and report.syncs_requested == []
    [detail] = requests_on_bus(bus)
    assert detail["historical"] is True and detail["scope"] == {"shop": ["orders"]}
    assert detail["reason"] == "scheduled_resync"
    after = table.get_connection(None, created["id"])
    assert after.next_resync_at == due + timedelta(hours=1)
    assert after.next_sync_at == connection.next_sync_at  # the sync grid is untouched
    # The same moment again: nothing more.
    assert Scheduler(table, 4).tick(due + timedelta(seconds=2)).resyncs_requested == []


def test_a_whole_connection_resync_marks_the_next_sync_historical(aws, table: Store, bus) -> None:
    created = make_connection(make_group())
    patch(created["id"], {"resync_schedule": {"cron": "* * * * *"}})
    start = utc_now()
    connect(table, created["id"], start, is_historical_sync=False)
    due = table.get_connection(None, created["id"]).next_resync_at
    assert due is not None
    assert Scheduler(table, 4).tick(due).resyncs_requested == [created["id"]]
    assert table.get_connection(None, created["id"]).is_historical_sync is True
    [detail] = [d for d in requests_on_bus(bus) if d["reason"] == "scheduled_resync"]
    assert detail["scope"] is None and detail["historical"] is True


def test_a_resync_due_while_a_sync_runs_waits_for_it(aws, table: Store) -> None:
    created = make_connection(make_group())
    patch(created["id"], {"resync_schedule": {"cron": "* * * * *"}})
    connect(table, created["id"], utc_now())
    due = table.get_connection(None, created["id"]).next_resync_at
    assert due is not None

    def hold(connection):
        return connection.model_copy(
            update={"active_sync_id": "running", "lease_expires_at": due + timedelta(minutes=10)}
        )

    table.modify_connection(None, created["id"], hold)
    assert Scheduler(table, 4).tick(due).resyncs_requested == []
    assert table.get_connection(None, created["id"]).next_resync_at == due  # still due

    def release(connection):
        return connection.model_copy(update={"active_sync_id": None, "lease_expires_at": None})

    table.modify_connection(None, created["id"], release)
    assert Scheduler(table, 4).tick(due + timedelta(seconds=30)).resyncs_requested == [created["id"]]


def test_a_paused_connection_is_not_resynced_until_unpaused(aws, table: Store) -> None:
    created = make_connection(make_group())
    patch(created["id"], {"resync_schedule": {"cron": "* * * * *"}})
    connect(table, created["id"], utc_now())
    patch(created["id"], {"paused": True})
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert Scheduler(table, 4).tick(later).resyncs_requested == []
    # Unpaused, the missed re-sync runs once; then its cron resumes.
    patch(created["id"], {"paused": False})
    assert Scheduler(table, 4).tick(later).resyncs_requested == [created["id"]]
    assert Scheduler(table, 4).tick(later).resyncs_requested == []


def test_a_failed_announcement_puts_the_resync_back_for_the_next_tick(aws, table: Store, monkeypatch) -> None:
    from sluice.events import PublishFailed

    created = make_connection(make_group())
    patch(created["id"], {"resync_schedule": {"cron": "* * * * *"}})
    connection = connect(table, created["id"], utc_now())
    due = connection.next_resync_at
    assert due is not None

    def refuse(*_args, **_kwargs):
        raise PublishFailed("bus unavailable")

    monkeypatch.setattr("sluice.scheduler.tick.request_sync", refuse)
    report = Scheduler(table, 4).tick(due + timedelta(seconds=1))
    assert report.resyncs_requested == [] and report.failed == [created["id"]]
    restored = table.get_connection(None, created["id"])
    assert (restored.next_resync_at, restored.next_sync_at) == (due, connection.next_sync_at)
    monkeypatch.undo()
    assert Scheduler(table, 4).tick(due + timedelta(seconds=2)).resyncs_requested == [created["id"]]
