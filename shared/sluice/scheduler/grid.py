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

A connection that a source rate limit rescheduled (``sync_state = rescheduled``) carries
:func:`resume_at` instead: ``rescheduled_for`` when auto, nothing when manual (manual connections
never auto-resume). After that run the grid takes over again. :func:`planned_next_sync_at` combines
all of these rules into the one value to store.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

from sluice.connections.model import DAILY, Connection

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
) -> datetime | None:
    """The ``next_sync_at`` to store, or None for no key (off the sparse GSI).

    ``rescheduled_for`` is the value while ``sync_state`` is ``rescheduled`` and None otherwise;
    ``after`` is normally *now* (on claim, on create/update, on unpause, on becoming connected).
    """
    if not schedulable(paused, schedule_type, setup_state):
        return None
    if rescheduled_for is not None:
        return resume_at(rescheduled_for, schedule_type)
    return next_sync_at(connection_id, sync_frequency, daily_sync_time, after)


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
    )
