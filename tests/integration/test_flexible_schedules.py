"""The flexible `schedule` object through create, update and get, and the scheduler tick honouring it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sluice.scheduler.grid import next_scheduled_at
from sluice.scheduler.tick import Scheduler
from sluice.storage.store import Store
from sluice.timestamps import utc_now
from tests.integration.test_scheduler_tick import connect
from tests.support.api_events import call, connection_path, make_connection, make_group, rest_api_config


def patch(connection_id: str, body: dict) -> object:
    return call("update_connection", path=connection_path(connection_id), body=body)


def get(connection_id: str) -> dict:
    return dict(call("get_connection", path=connection_path(connection_id)).data)


@pytest.mark.parametrize(
    ("schedule", "shown"),
    [
        (
            {"schedule_type": "INTERVAL", "interval": 60, "days_of_week": ["MONDAY", "WEDNESDAY"]},
            {"sync_frequency": 60, "daily_sync_time": None, "schedule_type": "auto"},
        ),
        (
            {"schedule_type": "TIME_OF_DAY", "time_of_day": "14:00"},
            {"sync_frequency": 1440, "daily_sync_time": "14:00", "schedule_type": "auto"},
        ),
        (
            {"schedule_type": "CRON", "cron": "*/20 8-18 * * MON-FRI"},
            {"sync_frequency": 30, "daily_sync_time": None, "schedule_type": "auto"},
        ),
        ({"schedule_type": "MANUAL"}, {"sync_frequency": 360, "schedule_type": "manual"}),
    ],
)
def test_update_takes_the_schedule_and_shows_the_fields_that_follow(aws, schedule: dict, shown: dict) -> None:
    created = make_connection(make_group())
    # Terraform sends sync_frequency beside the schedule: the schedule takes precedence.
    reply = patch(created["id"], {"schedule": schedule, "sync_frequency": 360})
    assert reply.status == 200, reply.body
    for data in (reply.data, get(created["id"])):
        assert data["schedule"] == schedule
        assert {k: data[k] for k in shown} == shown


def test_create_takes_a_schedule(aws) -> None:
    schedule = {"schedule_type": "TIME_OF_DAY", "time_of_day": "03:00", "days_of_week": ["SUNDAY"]}
    created = make_connection(make_group(), schedule=schedule)
    assert created["schedule"] == schedule
    assert created["sync_frequency"] == 1440 and created["daily_sync_time"] == "03:00"


def test_no_schedule_reads_null_and_a_new_sync_frequency_returns_to_the_grid(aws) -> None:
    created = make_connection(make_group())
    assert created["schedule"] is None
    patch(created["id"], {"schedule": {"schedule_type": "CRON", "cron": "0 * * * *"}})
    reply = patch(created["id"], {"sync_frequency": 15})
    assert reply.data["schedule"] is None and reply.data["sync_frequency"] == 15
    # An unrelated change keeps the schedule.
    patch(created["id"], {"schedule": {"schedule_type": "CRON", "cron": "0 * * * *"}})
    assert patch(created["id"], {"pause_after_trial": True}).data["schedule"]["cron"] == "0 * * * *"


def test_auto_over_a_manual_schedule_returns_to_the_grid(aws) -> None:
    created = make_connection(make_group())
    patch(created["id"], {"schedule": {"schedule_type": "MANUAL"}})
    reply = patch(created["id"], {"schedule_type": "auto"})
    assert reply.data["schedule"] is None and reply.data["schedule_type"] == "auto"


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ({"schedule_type": "HOURLY"}, "Invalid value for field 'schedule.schedule_type'"),
        ({"interval": 5}, "Field 'schedule.schedule_type' is required"),
        (
            {"schedule_type": "INTERVAL"},
            "Field 'schedule.interval' is required when schedule_type is INTERVAL",
        ),
        ({"schedule_type": "INTERVAL", "interval": 0}, "Invalid value for field 'schedule.interval'"),
        (
            {"schedule_type": "TIME_OF_DAY", "time_of_day": "14:30"},
            "Invalid value for field 'schedule.time_of_day'",
        ),
        (
            {"schedule_type": "TIME_OF_DAY", "time_of_day": "14:00", "days_of_week": ["FUNDAY"]},
            "Invalid value for field 'schedule.days_of_week.0'",
        ),
        (
            {"schedule_type": "CRON", "cron": "0 9 * * *", "interval": 60},
            "Field 'schedule.interval' can't be used when schedule_type is CRON",
        ),
        (
            {"schedule_type": "CRON", "cron": "0 25 * * *"},
            "Field 'schedule.cron' is not a valid cron expression",
        ),
        ({"schedule_type": "CRON", "crn": "0 9 * * *"}, "Field 'schedule.crn' is not supported"),
    ],
)
def test_a_bad_schedule_is_a_clear_400_and_changes_nothing(aws, schedule: dict, message: str) -> None:
    created = make_connection(make_group(), sync_frequency=60)
    reply = patch(created["id"], {"schedule": schedule})
    assert reply.status == 400 and reply.body["code"] == "InvalidInput"
    assert reply.body["message"].startswith(message), reply.body
    assert get(created["id"])["schedule"] is None and get(created["id"])["sync_frequency"] == 60
    bad_create = call(
        "create_connection",
        body={
            "group_id": make_group("other"),
            "service": "rest_api",
            "config": rest_api_config(),
            "schedule": schedule,
        },
    )
    assert bad_create.status == 400 and bad_create.body["message"].startswith(message)


def test_the_tick_honours_a_cron_schedule(aws, table: Store, bus) -> None:
    created = make_connection(make_group())
    patch(created["id"], {"schedule": {"schedule_type": "CRON", "cron": "0 9 * * *"}})
    start = utc_now()
    connection = connect(table, created["id"], start)
    due = connection.next_sync_at
    assert due is not None and (due.hour, due.minute) == (9, 0) and due > start
    assert Scheduler(table, 4).tick(due - timedelta(seconds=1)).syncs_requested == []
    assert Scheduler(table, 4).tick(due + timedelta(seconds=3)).syncs_requested == [created["id"]]
    after = table.get_connection(None, created["id"])
    assert after.next_sync_at == due + timedelta(days=1)
    assert [e["detail"]["reason"] for e in bus.drain() if e["detail-type"] == "Sync Requested"] == [
        "schedule"
    ]


def test_the_tick_honours_days_of_week(aws, table: Store) -> None:
    schedule = {"schedule_type": "TIME_OF_DAY", "time_of_day": "06:00", "days_of_week": ["TUESDAY"]}
    created = make_connection(make_group(), schedule=schedule)
    start = utc_now()
    connection = connect(table, created["id"], start)
    due = connection.next_sync_at
    assert due is not None and due.weekday() == 1 and due.hour == 6
    assert Scheduler(table, 4).tick(due).syncs_requested == [created["id"]]
    assert table.get_connection(None, created["id"]).next_sync_at == due + timedelta(days=7)
    assert next_scheduled_at(created["id"], 1440, "06:00", schedule, due) == due + timedelta(days=7)


def test_changing_the_schedule_moves_next_sync_at_at_once(aws, table: Store) -> None:
    created = make_connection(make_group())
    connect(table, created["id"], utc_now())
    patch(created["id"], {"schedule": {"schedule_type": "CRON", "cron": "7 4 * * *"}})
    moved = table.get_connection(None, created["id"]).next_sync_at
    assert moved is not None and (moved.hour, moved.minute) == (4, 7)
    assert moved.tzinfo is not None and moved.astimezone(UTC) == moved
    assert moved - datetime.now(UTC) <= timedelta(days=1)
