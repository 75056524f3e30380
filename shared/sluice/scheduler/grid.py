"""The sync grid: when a connection syncs next, and which connections are on the schedule at all.

Pure logic, no I/O. Every datetime in and out is timezone-aware; results are UTC.

The grid
--------
A connection with ``sync_frequency`` f (minutes) syncs at the points

    EPOCH + offset + k * f minutes        (k an integer, EPOCH = 1970-01-01T00:00:00Z)

where ``offset`` is :func:`grid_offset`: a whole number of minutes in ``[0, f)`` derived from a
SHA-256 of the connection id. It is stable (the same id always gets the same offset, in every
process and on every Python version) and spreads connections of one frequency over the period
instead of firing them all at ``:00``. Every allowed frequency divides 1440, so the grid repeats
every UTC day.

At 1440 with a ``daily_sync_time`` of ``"HH:00"`` the grid is every day at ``HH:00`` UTC, with no
hashed offset. ``daily_sync_time`` is ignored at every other frequency.

The grid is start to start: a point depends only on the id, the frequency and the daily time,
never on when syncs ran or how long they took, so it never drifts.

How the scheduler tick uses it
------------------------------
Only :func:`schedulable` connections carry a ``next_sync_at`` (the sparse GSI key, sharded by
:func:`shard_for`). Each tick, for every connection with :func:`is_due` true, the tick claims it
with a conditional write that moves ``next_sync_at`` to :func:`next_sync_at` ``(after=now)`` and
emits ``Sync Requested``. Because the new value is the first grid point strictly after *now*:

- a claimed connection is never due again in the same tick (no two runs for one point);
- after downtime, the missed points are not replayed: one run for the stale point, then the grid
  resumes (no catch-up burst; at most one run is ever due);
- the number of runs never exceeds the number of grid points that passed.

Flexible schedules
------------------
A connection may carry a ``schedule`` object (go-fivetran's and Terraform's flexible schedule), which
takes precedence over ``sync_frequency``/``daily_sync_time``:

- ``INTERVAL``: every ``interval`` minutes on the hashed grid above (period ``interval``), only on the
  UTC ``days_of_week`` when given;
- ``TIME_OF_DAY``: daily at ``time_of_day`` (``HH:00`` UTC), only on ``days_of_week`` when given;
- ``CRON``: the fire times of a five-field cron expression, read in UTC (evaluated by ``cronsim``);
- ``MANUAL``: no scheduled syncs (the connection's ``schedule_type`` becomes ``manual``).

:func:`schedule_problem` is the one place for their cross-field rules; :func:`schedule_sync_frequency`
is the ``sync_frequency`` a connection shows for one (the smallest allowed frequency that is not
shorter than the schedule's shortest gap; 1440 at most). The same start-to-start, no-catch-up rules
hold: :func:`next_scheduled_at` is always the first point strictly after ``after``.

A connection that a source rate limit rescheduled (``sync_state = rescheduled``) carries
:func:`resume_at` instead: ``rescheduled_for`` when auto, nothing when manual (manual connections
never auto-resume). After that run the grid takes over again. :func:`planned_next_sync_at` combines
all of these rules into the one value to store.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sluice.connections.model import DAILY, SYNC_FREQUENCIES, Connection

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAILY_SYNC_TIME = re.compile(r"([01][0-9]|2[0-3]):00")


def _utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {moment!r}")
    return moment.astimezone(UTC)


def _period(sync_frequency: int) -> timedelta:
    if isinstance(sync_frequency, bool) or not isinstance(sync_frequency, int) or sync_frequency <= 0:
        raise ValueError(f"sync_frequency must be a positive number of minutes, got {sync_frequency!r}")
    return timedelta(minutes=sync_frequency)


def _digest_int(label: str, connection_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{label}:{connection_id}".encode()).digest(), "big")


def grid_offset(connection_id: str, sync_frequency: int) -> timedelta:
    """The connection's stable offset within one period: whole minutes in ``[0, sync_frequency)``."""
    _period(sync_frequency)
    return timedelta(minutes=_digest_int("grid", connection_id) % sync_frequency)


def daily_hour(daily_sync_time: str) -> int:
    """The hour of a ``"HH:00"`` daily sync time (00:00 to 23:00); ValueError otherwise."""
    if not isinstance(daily_sync_time, str) or not _DAILY_SYNC_TIME.fullmatch(daily_sync_time):
        raise ValueError(f"daily_sync_time must be HH:00 between 00:00 and 23:00, got {daily_sync_time!r}")
    return int(daily_sync_time[:2])


def grid_anchor(connection_id: str, sync_frequency: int, daily_sync_time: str | None) -> timedelta:
    """Where the connection's grid sits within one period: the hashed offset, or the daily hour."""
    if sync_frequency == DAILY and daily_sync_time is not None:
        return timedelta(hours=daily_hour(daily_sync_time))
    return grid_offset(connection_id, sync_frequency)


def next_sync_at(
    connection_id: str, sync_frequency: int, daily_sync_time: str | None, after: datetime
) -> datetime:
    """The first grid point strictly after ``after`` (UTC)."""
    period = _period(sync_frequency)
    anchor = EPOCH + grid_anchor(connection_id, sync_frequency, daily_sync_time)
    # timedelta // timedelta is exact integer arithmetic in microseconds, and floors.
    k = (_utc(after, "after") - anchor) // period
    return anchor + (k + 1) * period


def on_grid(connection_id: str, sync_frequency: int, daily_sync_time: str | None, moment: datetime) -> bool:
    """Whether ``moment`` is one of the connection's grid points."""
    period = _period(sync_frequency)
    anchor = EPOCH + grid_anchor(connection_id, sync_frequency, daily_sync_time)
    return (_utc(moment, "moment") - anchor) % period == timedelta(0)


# ---- flexible schedules ---------------------------------------------------------------------------

WEEKDAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")  # weekday() order
SCHEDULE_TYPES = ("INTERVAL", "TIME_OF_DAY", "CRON", "MANUAL")
_SCHEDULE_FIELDS = {
    "INTERVAL": ({"interval"}, {"interval", "days_of_week"}),
    "TIME_OF_DAY": ({"time_of_day"}, {"time_of_day", "days_of_week"}),
    "CRON": ({"cron"}, {"cron"}),
    "MANUAL": (set(), set()),
}
MAX_INTERVAL = DAILY
# The fire times sampled to find a cron expression's shortest gap.
_CRON_SAMPLE = 64
_CRON_SAMPLE_FROM = datetime(2024, 1, 1, tzinfo=UTC)


def _cron(expression: str, after: datetime) -> Any:
    from cronsim import CronSim  # imported when a cron schedule is met (cold start stays lean)

    return CronSim(expression, _utc(after, "after"))


def cron_problem(expression: str) -> str | None:
    """Why a cron expression can't be used, or None: five fields (minute hour day month weekday)."""
    from cronsim import CronSimError

    if len(expression.split()) != 5:
        return "must have five fields: minute hour day-of-month month day-of-week"
    try:
        next(_cron(expression, _CRON_SAMPLE_FROM))
    except (CronSimError, StopIteration) as exc:
        return f"is not a valid cron expression ({exc or 'it never fires'})"
    return None


def schedule_problem(schedule: Mapping[str, Any]) -> tuple[str, str] | None:
    """The first rule a ``schedule`` object breaks, as (field, message), or None. Field types and enums
    are the request model's; these are the rules between fields."""
    kind = schedule.get("schedule_type")
    if kind not in _SCHEDULE_FIELDS:
        return "schedule.schedule_type", f"must be one of {', '.join(SCHEDULE_TYPES)}"
    required, allowed = _SCHEDULE_FIELDS[kind]
    given = {k for k, v in schedule.items() if v is not None and k != "schedule_type"}
    for name in sorted(required - given):
        return f"schedule.{name}", f"is required when schedule_type is {kind}"
    for name in sorted(given - allowed):
        return f"schedule.{name}", f"can't be used when schedule_type is {kind}"
    days = schedule.get("days_of_week")
    if days is not None and (not days or len(set(days)) != len(days)):
        return "schedule.days_of_week", "must list at least one day, each day once"
    if kind == "CRON":
        problem = cron_problem(str(schedule["cron"]))
        if problem:
            return "schedule.cron", problem
    return None


def _smallest_frequency_covering(minutes: float) -> int:
    return next((f for f in SYNC_FREQUENCIES if f >= minutes), DAILY)


def schedule_sync_frequency(schedule: Mapping[str, Any]) -> int | None:
    """The ``sync_frequency`` a connection with this schedule shows (None: keep the one it has)."""
    kind = schedule.get("schedule_type")
    if kind == "INTERVAL":
        return _smallest_frequency_covering(int(schedule["interval"]))
    if kind == "TIME_OF_DAY":
        return DAILY
    if kind == "CRON":
        fires = _cron(str(schedule["cron"]), _CRON_SAMPLE_FROM)
        times = [next(fires) for _ in range(_CRON_SAMPLE)]
        gap = min(b - a for a, b in itertools.pairwise(times))
        return _smallest_frequency_covering(gap / timedelta(minutes=1))
    return None


def _on_days(first: Any, days: list[str] | None, after: datetime) -> datetime:
    """The first point of `first(after)`'s series that falls on one of `days` (UTC), all days if None."""
    allowed = {WEEKDAYS.index(d) for d in days or WEEKDAYS}
    candidate: datetime = first(after)
    for _ in range(8):
        if candidate.weekday() in allowed:
            return candidate
        midnight = datetime.combine(candidate.date() + timedelta(days=1), datetime.min.time(), UTC)
        candidate = first(midnight - timedelta(microseconds=1))
    raise ValueError(f"no day of {days!r} in a week")  # unreachable: a week holds every weekday


def next_scheduled_at(
    connection_id: str,
    sync_frequency: int,
    daily_sync_time: str | None,
    schedule: Mapping[str, Any] | None,
    after: datetime,
) -> datetime | None:
    """The first scheduled point strictly after ``after``: the flexible schedule when there is one,
    else the sync_frequency grid. None for a MANUAL schedule."""
    if not schedule:
        return next_sync_at(connection_id, sync_frequency, daily_sync_time, after)
    kind = schedule.get("schedule_type")
    days = schedule.get("days_of_week")
    if kind == "INTERVAL":
        interval = int(schedule["interval"])
        return _on_days(lambda t: next_sync_at(connection_id, interval, None, t), days, after)
    if kind == "TIME_OF_DAY":
        time_of_day = str(schedule["time_of_day"])
        return _on_days(lambda t: next_sync_at(connection_id, DAILY, time_of_day, t), days, after)
    if kind == "CRON":
        fire: datetime = next(_cron(str(schedule["cron"]), after))
        return fire.astimezone(UTC)
    return None


def next_resync_at(resync_schedule: Mapping[str, Any] | None, after: datetime) -> datetime | None:
    """Ours: when a connection's next scheduled re-sync is due (the cron's first fire time after
    ``after``), or None without one."""
    if not resync_schedule or not resync_schedule.get("cron"):
        return None
    fire: datetime = next(_cron(str(resync_schedule["cron"]), after))
    return fire.astimezone(UTC)


def is_due(next_sync_at: datetime | None, now: datetime) -> bool:
    """Whether a connection whose ``next_sync_at`` is this should be claimed at ``now``."""
    if next_sync_at is None:
        return False
    return _utc(next_sync_at, "next_sync_at") <= _utc(now, "now")


def shard_for(connection_id: str, shards: int) -> int:
    """The scheduler GSI shard of a connection: stable, in ``[0, shards)``, independent of the offset."""
    if isinstance(shards, bool) or not isinstance(shards, int) or shards <= 0:
        raise ValueError(f"shards must be a positive integer, got {shards!r}")
    return _digest_int("shard", connection_id) % shards


def schedulable(paused: bool, schedule_type: str, setup_state: str) -> bool:
    """Whether the connection carries a ``next_sync_at``: auto, unpaused and connected."""
    return not paused and schedule_type == "auto" and setup_state == "connected"


def resume_at(rescheduled_for: datetime | None, schedule_type: str) -> datetime | None:
    """When a rescheduled connection runs again by itself: auto at ``rescheduled_for``, manual never."""
    if schedule_type != "auto" or rescheduled_for is None:
        return None
    return _utc(rescheduled_for, "rescheduled_for")


def planned_next_sync_at(
    *,
    connection_id: str,
    sync_frequency: int,
    daily_sync_time: str | None,
    paused: bool,
    schedule_type: str,
    setup_state: str,
    rescheduled_for: datetime | None,
    after: datetime,
    schedule: Mapping[str, Any] | None = None,
) -> datetime | None:
    """The ``next_sync_at`` to store, or None for no key (off the sparse GSI).

    ``rescheduled_for`` is the value while ``sync_state`` is ``rescheduled`` and None otherwise;
    ``after`` is normally *now* (on claim, on create/update, on unpause, on becoming connected).
    """
    if not schedulable(paused, schedule_type, setup_state):
        return None
    if rescheduled_for is not None:
        return resume_at(rescheduled_for, schedule_type)
    return next_scheduled_at(connection_id, sync_frequency, daily_sync_time, schedule, after)


def connection_next_sync_at(connection: Connection, after: datetime) -> datetime | None:
    """:func:`planned_next_sync_at` for a Connection aggregate."""
    c = connection
    return planned_next_sync_at(
        connection_id=c.id,
        sync_frequency=c.sync_frequency,
        daily_sync_time=c.daily_sync_time if c.sync_frequency == DAILY else None,
        paused=c.paused,
        schedule_type=c.schedule_type,
        setup_state=c.setup_state,
        rescheduled_for=c.rescheduled_for if c.sync_state == "rescheduled" else None,
        after=after,
        schedule=c.schedule,
    )
