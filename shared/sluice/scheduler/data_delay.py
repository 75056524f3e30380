"""``status.update_state``: whether a connection's data is ``on_schedule`` or ``delayed``.

Pure logic, no I/O. Every datetime is timezone-aware.

Thresholds (ours; this table is the source of truth). ``f`` is ``sync_frequency`` in minutes;
every threshold is in minutes.

=================  ==============================================
sensitivity        threshold
=================  ==============================================
SYNC_FREQUENCY     ``f + min(f, 15)``
HIGH               ``max(2 * f, 60)``
NORMAL             ``max(3 * f, 180)``
LOW                ``max(6 * f, 1440)``
CUSTOM             ``data_delay_threshold`` (must be > 0; otherwise no threshold)
=================  ==============================================

Rules of :func:`update_state`:

- A connection that never connected (no successful sync and no ``connected_since``) is
  ``on_schedule``.
- Paused connections and manual connections are ``on_schedule``, unless the sensitivity is
  CUSTOM (the user asked to be told after that many minutes, whatever the schedule).
- Otherwise it is ``delayed`` when ``now - (last_success or connected_since)`` is strictly more
  than the threshold, and ``on_schedule`` up to and including the threshold.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sluice.connections.model import Connection, UpdateState

SENSITIVITIES = ("LOW", "NORMAL", "HIGH", "SYNC_FREQUENCY", "CUSTOM")


def delay_threshold(sensitivity: str, sync_frequency: int, custom_threshold: int) -> timedelta | None:
    """The table above. None only for CUSTOM without a positive ``custom_threshold``."""
    f = sync_frequency
    if isinstance(f, bool) or not isinstance(f, int) or f <= 0:
        raise ValueError(f"sync_frequency must be a positive number of minutes, got {f!r}")
    if sensitivity == "SYNC_FREQUENCY":
        minutes = f + min(f, 15)
    elif sensitivity == "HIGH":
        minutes = max(2 * f, 60)
    elif sensitivity == "NORMAL":
        minutes = max(3 * f, 180)
    elif sensitivity == "LOW":
        minutes = max(6 * f, 1440)
    elif sensitivity == "CUSTOM":
        if isinstance(custom_threshold, bool) or not isinstance(custom_threshold, int):
            raise ValueError(f"data_delay_threshold must be an integer, got {custom_threshold!r}")
        if custom_threshold <= 0:
            return None
        minutes = custom_threshold
    else:
        raise ValueError(f"unknown data_delay_sensitivity {sensitivity!r}")
    return timedelta(minutes=minutes)


def delayed_after(
    *,
    sensitivity: str,
    sync_frequency: int,
    custom_threshold: int,
    paused: bool,
    schedule_type: str,
    last_success: datetime | None,
    connected_since: datetime | None,
) -> datetime | None:
    """The moment after which the connection counts as delayed, or None if it cannot be delayed.

    ``update_state`` is ``delayed`` exactly when ``now`` is strictly later than this.
    """
    if sensitivity != "CUSTOM" and (paused or schedule_type != "auto"):
        # Validate anyway: a bad sensitivity or frequency is a bug whatever the flags say.
        delay_threshold(sensitivity, sync_frequency, custom_threshold)
        return None
    threshold = delay_threshold(sensitivity, sync_frequency, custom_threshold)
    reference = last_success or connected_since
    if threshold is None or reference is None:
        return None
    _aware(reference, "last_success" if last_success is not None else "connected_since")
    return reference + threshold


def update_state(
    *,
    sensitivity: str,
    sync_frequency: int,
    custom_threshold: int,
    paused: bool,
    schedule_type: str,
    last_success: datetime | None,
    connected_since: datetime | None,
    now: datetime,
) -> UpdateState:
    """``on_schedule`` or ``delayed``, by the rules in the module docstring."""
    deadline = delayed_after(
        sensitivity=sensitivity,
        sync_frequency=sync_frequency,
        custom_threshold=custom_threshold,
        paused=paused,
        schedule_type=schedule_type,
        last_success=last_success,
        connected_since=connected_since,
    )
    _aware(now, "now")
    if deadline is not None and now > deadline:
        return "delayed"
    return "on_schedule"


def _aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {moment!r}")


def connection_delayed_after(connection: Connection) -> datetime | None:
    """:func:`delayed_after` of a stored connection (never for one that has not been connected)."""
    if connection.setup_state == "incomplete":
        return None
    return delayed_after(
        sensitivity=connection.data_delay_sensitivity,
        sync_frequency=connection.sync_frequency,
        custom_threshold=connection.data_delay_threshold,
        paused=connection.paused,
        schedule_type=connection.schedule_type,
        last_success=connection.succeeded_at,
        connected_since=connection.connected_since,
    )


def connection_update_state(connection: Connection, now: datetime) -> UpdateState:
    deadline = connection_delayed_after(connection)
    return "delayed" if deadline is not None and now > deadline else "on_schedule"
