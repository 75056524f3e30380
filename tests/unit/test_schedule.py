"""The sync grid: properties over long simulated spans, plus the scheduling rules."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sluice.connections.model import SYNC_FREQUENCIES, Connection
from sluice.scheduler.grid import (
    EPOCH,
    connection_next_sync_at,
    daily_hour,
    grid_anchor,
    grid_offset,
    is_due,
    next_sync_at,
    on_grid,
    planned_next_sync_at,
    resume_at,
    schedulable,
    shard_for,
)

MINUTE = timedelta(minutes=1)
DAYS = 31
SPAN_MINUTES = DAYS * 24 * 60

ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz234567", min_size=1, max_size=16)
frequencies = st.sampled_from(SYNC_FREQUENCIES)
daily_times = st.none() | st.integers(0, 23).map(lambda h: f"{h:02d}:00")
# Ticks never land exactly on the minute: EventBridge fires somewhere within it.
starts = st.datetimes(
    min_value=datetime(2020, 1, 1),
    max_value=datetime(2035, 12, 31),
    timezones=st.just(UTC),
)
moments = st.datetimes(
    min_value=datetime(1971, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]),
)
# Downtime windows: (first minute down, minutes down), anywhere in the span, up to four days long.
outages = st.lists(st.tuples(st.integers(0, SPAN_MINUTES), st.integers(1, 4 * 24 * 60)), max_size=8)

SLOW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass
class Run:
    tick: datetime  # when the scheduler claimed it
    point: datetime  # the next_sync_at it claimed


@dataclass
class Simulation:
    runs: list[Run]
    ticks_up: list[datetime]
    recoveries: list[datetime]  # first tick up after each downtime


def simulate(
    connection_id: str,
    frequency: int,
    daily: str | None,
    start: datetime,
    down: set[int],
    *,
    retries_per_tick: int = 1,
) -> Simulation:
    """A scheduler tick every minute for the span, skipping the minutes in `down`.

    Each tick does what the real tick does for one connection: if due, claim (move next_sync_at to
    the first grid point after now) and record a run. `retries_per_tick` > 1 models a tick that
    runs its query again (a retry, or two overlapping ticks): it must not find the connection due.
    """
    runs: list[Run] = []
    ticks_up: list[datetime] = []
    recoveries: list[datetime] = []
    stored = next_sync_at(connection_id, frequency, daily, start)
    was_down = False
    for minute in range(SPAN_MINUTES):
        now = start + minute * MINUTE
        if minute in down:
            was_down = True
            continue
        if was_down:
            recoveries.append(now)
            was_down = False
        ticks_up.append(now)
        for _ in range(retries_per_tick):
            if is_due(stored, now):
                runs.append(Run(tick=now, point=stored))
                stored = next_sync_at(connection_id, frequency, daily, now)
        assert stored > now, "after a tick nothing is left due"
    return Simulation(runs, ticks_up, recoveries)


def down_minutes(windows: list[tuple[int, int]]) -> set[int]:
    return {m for first, length in windows for m in range(first, min(first + length, SPAN_MINUTES))}


def grid_points(
    connection_id: str, frequency: int, daily: str | None, start: datetime, end: datetime
) -> list[datetime]:
    """Every grid point in (start, end], by brute force from the anchor (not via next_sync_at)."""
    period = timedelta(minutes=frequency)
    anchor = EPOCH + grid_anchor(connection_id, frequency, daily)
    k = (start - anchor) // period - 1
    points = []
    while (p := anchor + k * period) <= end:
        if p > start:
            points.append(p)
        k += 1
    return points


@SLOW
@given(ids, frequencies, daily_times, starts, outages)
def test_long_span_with_downtime(
    connection_id: str, frequency: int, daily: str | None, start: datetime, windows: list[tuple[int, int]]
) -> None:
    daily = daily if frequency == 1440 else None
    period = timedelta(minutes=frequency)
    sim = simulate(connection_id, frequency, daily, start, down_minutes(windows))
    anchor = EPOCH + grid_anchor(connection_id, frequency, daily)
    end = start + (SPAN_MINUTES - 1) * MINUTE
    every_point = grid_points(connection_id, frequency, daily, start, end)

    for run in sim.runs:
        # Never drifts: every claimed point is anchor + k * period, on a whole minute.
        assert (run.point - anchor) % period == timedelta(0)
        assert run.point.second == 0 and run.point.microsecond == 0
        assert on_grid(connection_id, frequency, daily, run.point)
        # Never early.
        assert run.point <= run.tick
        if daily is not None:
            assert (run.point.hour, run.point.minute) == (daily_hour(daily), 0)

    # Never two runs for one grid point, and points are claimed in order.
    points = [r.point for r in sim.runs]
    assert points == sorted(set(points))
    # No extra runs ever: downtime can only lose runs, never add any.
    assert set(points) <= set(every_point)
    # Each run after the first claims a point after the previous run: nothing replayed.
    for before, after in zip(sim.runs, sim.runs[1:], strict=False):
        assert after.point > before.tick
    # No catch-up burst: after a recovery, at most one run before the next grid point.
    for recovered in sim.recoveries:
        first_point_after = next_sync_at(connection_id, frequency, daily, recovered)
        assert sum(1 for r in sim.runs if recovered <= r.tick < first_point_after) <= 1
    # Liveness: every grid point that passed while the scheduler was up was run on time.
    # (Only when the tick before was up too: a point that falls just after an outage is skipped
    # by the one stale run, which is exactly the no-catch-up rule.)
    up = set(sim.ticks_up) | {start - MINUTE}
    punctual = {r.point for r in sim.runs if r.tick - r.point < MINUTE}
    for p in every_point:
        first_tick = start - ((start - p) // MINUTE) * MINUTE  # the first tick at or after p
        if first_tick in up and first_tick - MINUTE in up:
            assert p in punctual


@SLOW
@given(ids, frequencies, daily_times, starts)
def test_long_span_without_downtime_runs_every_point_once_on_time(
    connection_id: str, frequency: int, daily: str | None, start: datetime
) -> None:
    daily = daily if frequency == 1440 else None
    sim = simulate(connection_id, frequency, daily, start, set(), retries_per_tick=3)
    end = start + (SPAN_MINUTES - 1) * MINUTE
    assert [r.point for r in sim.runs] == grid_points(connection_id, frequency, daily, start, end)
    assert all(timedelta(0) <= r.tick - r.point < MINUTE for r in sim.runs)
    assert len(sim.runs) >= SPAN_MINUTES // frequency - 1
    if daily is not None:
        hour = daily_hour(daily)
        assert all(r.tick.hour == hour and r.tick.minute == 0 for r in sim.runs)
        assert len(sim.runs) in (DAYS - 1, DAYS)


@settings(max_examples=500)
@given(ids, frequencies, daily_times, moments)
def test_next_sync_at_is_the_first_grid_point_strictly_after(
    connection_id: str, frequency: int, daily: str | None, after: datetime
) -> None:
    period = timedelta(minutes=frequency)
    point = next_sync_at(connection_id, frequency, daily, after)
    assert point.tzinfo is UTC
    assert on_grid(connection_id, frequency, daily, point)
    assert after < point <= after + period
    assert not on_grid(connection_id, frequency, daily, point - period + timedelta(microseconds=1))
    # Independent of history: only `after` matters, and a point maps to the next one.
    assert next_sync_at(connection_id, frequency, daily, point) == point + period
    assert next_sync_at(connection_id, frequency, daily, point - timedelta(microseconds=1)) == point


@given(ids, frequencies, moments, st.integers(1, 10_000))
def test_sync_duration_does_not_move_the_grid(
    connection_id: str, frequency: int, claimed: datetime, duration_seconds: int
) -> None:
    """Start to start: wherever `after` falls (claim time or end of a long sync), it stays on grid."""
    late = claimed + timedelta(seconds=duration_seconds)
    a = next_sync_at(connection_id, frequency, None, claimed)
    b = next_sync_at(connection_id, frequency, None, late)
    assert (b - a) % timedelta(minutes=frequency) == timedelta(0)


@pytest.mark.parametrize("hour", range(24))
def test_daily_sync_time_is_that_hour_utc(hour: int) -> None:
    daily = f"{hour:02d}:00"
    after = datetime(2026, 3, 29, 12, 30, tzinfo=UTC)
    point = next_sync_at("anything", 1440, daily, after)
    assert (point.hour, point.minute, point.second, point.microsecond) == (hour, 0, 0, 0)
    assert timedelta(0) < point - after <= timedelta(days=1)
    # No hashed offset: every connection with that daily time syncs at that hour.
    assert {next_sync_at(f"c{i}", 1440, daily, after) for i in range(50)} == {point}


def test_daily_sync_time_is_ignored_below_1440() -> None:
    after = datetime(2026, 1, 1, tzinfo=UTC)
    assert next_sync_at("conn", 360, "05:00", after) == next_sync_at("conn", 360, None, after)


def test_daily_without_time_uses_the_offset_grid() -> None:
    after = datetime(2026, 1, 1, tzinfo=UTC)
    point = next_sync_at("conn", 1440, None, after)
    assert (point - EPOCH - grid_offset("conn", 1440)) % timedelta(days=1) == timedelta(0)
    assert after < point <= after + timedelta(days=1)
    spread = {next_sync_at(f"c{i}", 1440, None, after).hour for i in range(200)}
    assert len(spread) > 12


def test_next_sync_at_example() -> None:
    point = EPOCH + timedelta(days=20000) + grid_offset("abc", 60)  # a grid point
    assert next_sync_at("abc", 60, None, point - timedelta(seconds=1)) == point
    assert next_sync_at("abc", 60, None, point) == point + timedelta(hours=1)
    assert next_sync_at("abc", 60, None, point + timedelta(seconds=1)) == point + timedelta(hours=1)


@pytest.mark.parametrize("bad", ["24:00", "5:00", "05:30", "05:00:00", "", " 05:00", "05:00\n"])
def test_bad_daily_sync_time_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        next_sync_at("conn", 1440, bad, datetime(2026, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize("bad", [0, -5, True])
def test_bad_frequency_is_refused(bad: int) -> None:
    with pytest.raises(ValueError):
        next_sync_at("conn", bad, None, datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError):
        grid_offset("conn", bad)


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2026, 1, 1)
    with pytest.raises(ValueError):
        next_sync_at("conn", 60, None, naive)
    with pytest.raises(ValueError):
        is_due(naive, datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError):
        is_due(datetime(2026, 1, 1, tzinfo=UTC), naive)


# --- the offset -------------------------------------------------------------------------------


@given(ids, frequencies)
def test_offset_is_stable_whole_minutes_within_one_period(connection_id: str, frequency: int) -> None:
    offset = grid_offset(connection_id, frequency)
    assert offset == grid_offset(connection_id, frequency)
    assert timedelta(0) <= offset < timedelta(minutes=frequency)
    assert offset % MINUTE == timedelta(0)


def test_offset_is_pinned_across_processes() -> None:
    """SHA-256, not hash(): the same id gets the same offset in every process and release."""
    assert grid_offset("connection_1", 1440) == timedelta(minutes=PINNED_1440)
    assert grid_offset("connection_1", 60) == timedelta(minutes=PINNED_1440 % 60)
    assert grid_offset("anything", 1) == timedelta(0)


# 1440 is a multiple of every other frequency, so the 1440 offset determines the others.
PINNED_1440 = 638  # sha256(b"grid:connection_1") mod 1440


@pytest.mark.parametrize("frequency", [f for f in SYNC_FREQUENCIES if f >= 5])
def test_offsets_spread_across_ids(frequency: int) -> None:
    n = frequency * 100
    counts = Counter(grid_offset(f"conn_{i}", frequency) for i in range(n))
    assert len(counts) == frequency  # every minute of the period is used
    assert max(counts.values()) < 100 * 1.6
    assert min(counts.values()) > 100 * 0.4


def test_same_frequency_connections_do_not_all_fire_at_once() -> None:
    after = datetime(2026, 6, 1, 9, 0, 30, tzinfo=UTC)
    firsts = Counter(next_sync_at(f"conn_{i}", 360, None, after) for i in range(3600))
    assert len(firsts) == 360
    assert max(firsts.values()) < 25


# --- due, shards --------------------------------------------------------------------------------


def test_is_due() -> None:
    t = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert is_due(t, t)
    assert is_due(t, t + timedelta(microseconds=1))
    assert not is_due(t, t - timedelta(microseconds=1))
    assert not is_due(None, t)
    assert is_due(t, t.astimezone(timezone(timedelta(hours=2))))


@given(ids, st.integers(1, 64))
def test_shard_is_stable_and_in_range(connection_id: str, shards: int) -> None:
    shard = shard_for(connection_id, shards)
    assert 0 <= shard < shards
    assert shard == shard_for(connection_id, shards)


def test_shards_spread_and_do_not_follow_the_offset() -> None:
    counts = Counter(shard_for(f"conn_{i}", 4) for i in range(4000))
    assert set(counts) == {0, 1, 2, 3}
    assert min(counts.values()) > 850
    # Connections sharing an offset (they fire together) still spread across shards.
    together = [f"conn_{i}" for i in range(20000) if grid_offset(f"conn_{i}", 60) == timedelta(0)]
    assert len({shard_for(c, 4) for c in together}) == 4


@pytest.mark.parametrize("bad", [0, -1, True])
def test_bad_shard_count_is_refused(bad: int) -> None:
    with pytest.raises(ValueError):
        shard_for("conn", bad)


# --- which connections are on the schedule -----------------------------------------------------


@given(
    st.booleans(), st.sampled_from(["auto", "manual"]), st.sampled_from(["incomplete", "connected", "broken"])
)
def test_only_auto_unpaused_connected_is_schedulable(
    paused: bool, schedule_type: str, setup_state: str
) -> None:
    expected = not paused and schedule_type == "auto" and setup_state == "connected"
    assert schedulable(paused, schedule_type, setup_state) is expected


@given(
    ids,
    frequencies,
    daily_times,
    st.booleans(),
    st.sampled_from(["auto", "manual"]),
    st.sampled_from(["incomplete", "connected", "broken"]),
    st.none() | moments,
    moments,
)
def test_planned_next_sync_at(
    connection_id: str,
    frequency: int,
    daily: str | None,
    paused: bool,
    schedule_type: str,
    setup_state: str,
    rescheduled_for: datetime | None,
    after: datetime,
) -> None:
    planned = planned_next_sync_at(
        connection_id=connection_id,
        sync_frequency=frequency,
        daily_sync_time=daily,
        paused=paused,
        schedule_type=schedule_type,
        setup_state=setup_state,
        rescheduled_for=rescheduled_for,
        after=after,
    )
    if paused or schedule_type == "manual" or setup_state != "connected":
        assert planned is None  # paused, manual and not-connected never carry the key
    elif rescheduled_for is not None:
        assert planned == rescheduled_for
    else:
        assert planned == next_sync_at(connection_id, frequency, daily, after)


def test_resume_at() -> None:
    when = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert resume_at(when, "auto") == when
    assert resume_at(when, "manual") is None
    assert resume_at(None, "auto") is None


def _connection(**changes: object) -> Connection:
    base: dict[str, object] = {
        "id": "conn_x",
        "account_id": "acct",
        "group_id": "grp",
        "service": "rest_api",
        "schema": "s",
        "connected_by": "u",
        "created_at": datetime(2026, 1, 1, tzinfo=UTC),
        "setup_state": "connected",
    }
    return Connection.model_validate(base | changes)


def test_connection_next_sync_at() -> None:
    now = datetime(2026, 5, 5, 5, 5, 5, tzinfo=UTC)
    later = now + timedelta(hours=3)
    assert connection_next_sync_at(_connection(), now) == next_sync_at("conn_x", 360, None, now)
    assert connection_next_sync_at(_connection(paused=True), now) is None
    assert connection_next_sync_at(_connection(schedule_type="manual"), now) is None
    assert connection_next_sync_at(_connection(setup_state="incomplete"), now) is None
    assert connection_next_sync_at(_connection(setup_state="broken"), now) is None
    daily = _connection(sync_frequency=1440, daily_sync_time="07:00")
    assert connection_next_sync_at(daily, now) == datetime(2026, 5, 5, 7, tzinfo=UTC)
    # daily_sync_time only counts at 1440.
    hourly = _connection(sync_frequency=60, daily_sync_time="07:00")
    assert connection_next_sync_at(hourly, now) == next_sync_at("conn_x", 60, None, now)
    # rescheduled_for only counts while rescheduled; manual never resumes by itself.
    rescheduled = _connection(sync_state="rescheduled", rescheduled_for=later)
    assert connection_next_sync_at(rescheduled, now) == later
    stale = _connection(sync_state="scheduled", rescheduled_for=later)
    assert connection_next_sync_at(stale, now) == next_sync_at("conn_x", 360, None, now)
    manual = _connection(sync_state="rescheduled", rescheduled_for=later, schedule_type="manual")
    assert connection_next_sync_at(manual, now) is None


def test_after_a_rescheduled_run_the_grid_resumes() -> None:
    now = datetime(2026, 5, 5, 5, 5, 5, tzinfo=UTC)
    resumed = resume_at(now + timedelta(minutes=17, seconds=3), "auto")
    assert resumed is not None
    assert not on_grid("conn_x", 60, None, resumed)
    assert is_due(resumed, resumed)
    following = next_sync_at("conn_x", 60, None, resumed)
    assert on_grid("conn_x", 60, None, following)
    assert not is_due(following, resumed)
