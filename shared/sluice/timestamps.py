"""Timestamps as the wire and the table hold them: RFC 3339 UTC with microseconds and a Z."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime


def _system_clock() -> datetime:
    return datetime.now(UTC)


_clock: Callable[[], datetime] = _system_clock


def utc_now() -> datetime:
    """Now, from the one clock every module reads (tests move it with `clock_set_to`)."""
    return _clock()


@contextmanager
def clock_set_to(clock: Callable[[], datetime]) -> Iterator[None]:
    """Run the block with `clock` as the time of every `utc_now()` call: the one way tests control time."""
    global _clock
    previous, _clock = _clock, clock
    try:
        yield
    finally:
        _clock = previous


def format_timestamp(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
