"""Flexible schedules (INTERVAL / TIME_OF_DAY / CRON / MANUAL): their rules and their points."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sluice.connections.model import Connection
from sluice.scheduler.grid import (
    WEEKDAYS,
    connection_next_sync_at,
    next_scheduled_at,
    next_sync_at,
    on_grid,
    schedule_problem,
    schedule_sync_frequency,
)

SATURDAY = datetime(2026, 1, 3, 10, 30, 7, tzinfo=UTC)
assert SATURDAY.weekday() == 5

day_sets = st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=7, unique=True)
starts = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC))


def points(schedule: dict, start: datetime, count: int, connection_id: str = "conn1") -> list[datetime]:
    out, moment = [], start
    for _ in range(count):
        following = next_scheduled_at(connection_id, 360, None, schedule, moment)
        assert following is not None and following > moment
        out.append(following)
        moment = following
    return out


@settings(max_examples=60, deadline=None)
@given(days=day_sets, interval=st.sampled_from([5, 15, 45, 60, 90, 360]), start=starts)
def test_interval_points_fall_on_the_chosen_days_interval_apart(days, interval, start) -> None:
    schedule = {"schedule_type": "INTERVAL", "interval": interval, "days_of_week": days}
    series = points(schedule, start, 40)
    assert all(WEEKDAYS[p.weekday()] in days for p in series)
    # Every point is on the interval's grid, and no grid point on an allowed day is skipped.
    assert all(on_grid("conn1", interval, None, p) for p in series)
    for a, b in itertools.pairwise(series):
        skipped = next_sync_at("conn1", interval, None, a)
        while skipped < b:
            assert WEEKDAYS[skipped.weekday()] not in days
            skipped += timedelta(minutes=interval)


@settings(max_examples=60, deadline=None)
@given(days=day_sets, hour=st.integers(0, 23), start=starts)
def test_time_of_day_fires_at_that_hour_on_the_chosen_days_only(days, hour, start) -> None:
    schedule = {"schedule_type": "TIME_OF_DAY", "time_of_day": f"{hour:02d}:00", "days_of_week": days}
    series = points(schedule, start, 10)
    assert all(p.hour == hour and p.minute == 0 and p.second == 0 for p in series)
    assert all(WEEKDAYS[p.weekday()] in days for p in series)
    # No allowed day is skipped: consecutive points are the next allowed day.
    for a, b in itertools.pairwise(series):
        gap = (b.date() - a.date()).days
        skipped = [WEEKDAYS[(a.weekday() + d) % 7] for d in range(1, gap)]
        assert 1 <= gap <= 7 and not set(skipped) & set(days)


def test_time_of_day_without_days_is_every_day() -> None:
    series = points({"schedule_type": "TIME_OF_DAY", "time_of_day": "14:00"}, SATURDAY, 3)
    assert series == [SATURDAY.replace(hour=14, minute=0, second=0) + timedelta(days=d) for d in range(3)]


def test_cron_is_read_in_utc_and_skips_to_its_next_fire_time() -> None:
    schedule = {"schedule_type": "CRON", "cron": "30 9 * * MON-FRI"}
    assert points(schedule, SATURDAY, 2) == [
        datetime(2026, 1, 5, 9, 30, tzinfo=UTC),
        datetime(2026, 1, 6, 9, 30, tzinfo=UTC),
    ]


def test_a_point_exactly_now_is_not_returned_again() -> None:
    schedule = {"schedule_type": "CRON", "cron": "*/10 * * * *"}
    at = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    assert next_scheduled_at("c", 360, None, schedule, at) == at + timedelta(minutes=10)


def test_manual_has_no_points_and_no_schedule_is_the_frequency_grid() -> None:
    assert next_scheduled_at("c", 60, None, {"schedule_type": "MANUAL"}, SATURDAY) is None
    assert next_scheduled_at("c", 60, None, None, SATURDAY) == next_sync_at("c", 60, None, SATURDAY)


def test_a_connection_with_a_schedule_is_planned_by_it() -> None:
    connection = Connection(
        id="c1",
        account_id="a",
        group_id="g",
        service="rest_api",
        schema="s",
        connected_by="u",
        created_at=SATURDAY,
        setup_state="connected",
        schedule={"schedule_type": "CRON", "cron": "0 6 * * *"},
    )
    assert connection_next_sync_at(connection, SATURDAY) == datetime(2026, 1, 4, 6, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "frequency"),
    [
        ({"schedule_type": "INTERVAL", "interval": 60}, 60),
        ({"schedule_type": "INTERVAL", "interval": 45}, 60),
        ({"schedule_type": "INTERVAL", "interval": 1440}, 1440),
        ({"schedule_type": "TIME_OF_DAY", "time_of_day": "03:00"}, 1440),
        ({"schedule_type": "CRON", "cron": "*/10 * * * *"}, 15),
        ({"schedule_type": "CRON", "cron": "0 */2 * * *"}, 120),
        ({"schedule_type": "CRON", "cron": "0 9 * * 1"}, 1440),
        ({"schedule_type": "MANUAL"}, None),
    ],
)
def test_the_sync_frequency_a_schedule_shows(schedule: dict, frequency: int | None) -> None:
    assert schedule_sync_frequency(schedule) == frequency


@pytest.mark.parametrize(
    ("schedule", "problem"),
    [
        ({"schedule_type": "INTERVAL"}, ("schedule.interval", "is required when schedule_type is INTERVAL")),
        (
            {"schedule_type": "INTERVAL", "interval": 60, "cron": "* * * * *"},
            ("schedule.cron", "can't be used when schedule_type is INTERVAL"),
        ),
        (
            {"schedule_type": "TIME_OF_DAY"},
            ("schedule.time_of_day", "is required when schedule_type is TIME_OF_DAY"),
        ),
        (
            {"schedule_type": "CRON", "cron": "0 9 * * *", "days_of_week": ["MONDAY"]},
            ("schedule.days_of_week", "can't be used when schedule_type is CRON"),
        ),
        (
            {"schedule_type": "MANUAL", "interval": 5},
            ("schedule.interval", "can't be used when schedule_type is MANUAL"),
        ),
        (
            {"schedule_type": "TIME_OF_DAY", "time_of_day": "01:00", "days_of_week": []},
            ("schedule.days_of_week", "must list at least one day, each day once"),
        ),
        (
            {"schedule_type": "INTERVAL", "interval": 5, "days_of_week": ["MONDAY", "MONDAY"]},
            ("schedule.days_of_week", "must list at least one day, each day once"),
        ),
        (
            {"schedule_type": "CRON", "cron": "0 9 * *"},
            ("schedule.cron", "must have five fields: minute hour day-of-month month day-of-week"),
        ),
    ],
)
def test_rules_between_fields(schedule: dict, problem: tuple[str, str]) -> None:
    assert schedule_problem(schedule) == problem


@pytest.mark.parametrize("cron", ["61 * * * *", "0 25 * * *", "0 0 30 2 *", "0 0 * * FUNDAY"])
def test_an_invalid_cron_expression_is_named(cron: str) -> None:
    field, message = schedule_problem({"schedule_type": "CRON", "cron": cron}) or ("", "")
    assert field == "schedule.cron" and message.startswith("is not a valid cron expression")


@pytest.mark.parametrize(
    "schedule",
    [
        {"schedule_type": "INTERVAL", "interval": 30, "days_of_week": ["MONDAY", "FRIDAY"]},
        {"schedule_type": "TIME_OF_DAY", "time_of_day": "23:00"},
        {"schedule_type": "CRON", "cron": "15 3 1 * *"},
        {"schedule_type": "MANUAL"},
    ],
)
def test_valid_schedules_pass(schedule: dict) -> None:
    assert schedule_problem(schedule) is None
