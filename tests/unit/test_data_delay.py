"""update_state: the threshold table (one example per row) and the rules around it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import sluice.scheduler.data_delay
from sluice.connections.model import SYNC_FREQUENCIES
from sluice.scheduler.data_delay import SENSITIVITIES, delay_threshold, delayed_after, update_state

NOW = datetime(2026, 7, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("sensitivity", "frequency", "custom", "minutes"),
    [
        # SYNC_FREQUENCY: f + min(f, 15)
        ("SYNC_FREQUENCY", 1, 0, 2),
        ("SYNC_FREQUENCY", 5, 0, 10),
        ("SYNC_FREQUENCY", 15, 0, 30),
        ("SYNC_FREQUENCY", 30, 0, 45),
        ("SYNC_FREQUENCY", 360, 0, 375),
        ("SYNC_FREQUENCY", 1440, 0, 1455),
        # HIGH: max(2f, 60)
        ("HIGH", 1, 0, 60),
        ("HIGH", 30, 0, 60),
        ("HIGH", 60, 0, 120),
        ("HIGH", 360, 0, 720),
        ("HIGH", 1440, 0, 2880),
        # NORMAL: max(3f, 180)
        ("NORMAL", 15, 0, 180),
        ("NORMAL", 60, 0, 180),
        ("NORMAL", 120, 0, 360),
        ("NORMAL", 360, 0, 1080),
        ("NORMAL", 1440, 0, 4320),
        # LOW: max(6f, 1440)
        ("LOW", 5, 0, 1440),
        ("LOW", 180, 0, 1440),
        ("LOW", 240, 0, 1440),
        ("LOW", 360, 0, 2160),
        ("LOW", 1440, 0, 8640),
        # CUSTOM: data_delay_threshold minutes, whatever the frequency
        ("CUSTOM", 5, 1, 1),
        ("CUSTOM", 360, 90, 90),
        ("CUSTOM", 1440, 10_000, 10_000),
        # The custom threshold is ignored by every other sensitivity.
        ("NORMAL", 360, 5, 1080),
    ],
)
def test_threshold_table(sensitivity: str, frequency: int, custom: int, minutes: int) -> None:
    assert delay_threshold(sensitivity, frequency, custom) == timedelta(minutes=minutes)


@pytest.mark.parametrize("custom", [0, -1])
def test_custom_without_a_positive_threshold_has_none(custom: int) -> None:
    assert delay_threshold("CUSTOM", 360, custom) is None
    assert state(sensitivity="CUSTOM", custom_threshold=custom, last_success=NOW - timedelta(days=365)) == (
        "on_schedule"
    )


@pytest.mark.parametrize(
    ("sensitivity", "frequency", "custom"),
    [("BOGUS", 60, 0), ("normal", 60, 0), ("NORMAL", 0, 0), ("NORMAL", -60, 0), ("CUSTOM", 60, True)],
)
def test_bad_inputs_are_refused(sensitivity: str, frequency: int, custom: int) -> None:
    with pytest.raises(ValueError):
        delay_threshold(sensitivity, frequency, custom)
    with pytest.raises(ValueError):
        state(sensitivity=sensitivity, sync_frequency=frequency, custom_threshold=custom, paused=True)


def test_the_table_is_documented_in_the_module_docstring() -> None:
    doc = sluice.scheduler.data_delay.__doc__ or ""
    for row in ("f + min(f, 15)", "max(2 * f, 60)", "max(3 * f, 180)", "max(6 * f, 1440)"):
        assert row in doc
    for sensitivity in SENSITIVITIES:
        assert sensitivity in doc


@given(st.sampled_from(SENSITIVITIES[:4]), st.sampled_from(SYNC_FREQUENCIES))
def test_every_threshold_outlasts_one_period(sensitivity: str, frequency: int) -> None:
    threshold = delay_threshold(sensitivity, frequency, 0)
    assert threshold is not None
    assert threshold > timedelta(minutes=frequency)


def state(**overrides: Any) -> str:
    arguments: dict[str, Any] = {
        "sensitivity": "NORMAL",
        "sync_frequency": 360,
        "custom_threshold": 0,
        "paused": False,
        "schedule_type": "auto",
        "last_success": None,
        "connected_since": None,
        "now": NOW,
    }
    return update_state(**(arguments | overrides))


# --- update_state rules --------------------------------------------------------------------------


def test_delayed_strictly_after_the_threshold() -> None:
    threshold = timedelta(minutes=1080)  # NORMAL at 360
    assert state(last_success=NOW - threshold) == "on_schedule"
    assert state(last_success=NOW - threshold - timedelta(microseconds=1)) == "delayed"
    assert state(last_success=NOW - timedelta(minutes=5)) == "on_schedule"


@pytest.mark.parametrize(
    ("sensitivity", "frequency", "custom", "minutes"),
    [
        ("SYNC_FREQUENCY", 60, 0, 75),
        ("HIGH", 60, 0, 120),
        ("NORMAL", 60, 0, 180),
        ("LOW", 60, 0, 1440),
        ("CUSTOM", 60, 42, 42),
    ],
)
def test_each_row_flips_at_its_threshold(sensitivity: str, frequency: int, custom: int, minutes: int) -> None:
    common = {"sensitivity": sensitivity, "sync_frequency": frequency, "custom_threshold": custom}
    edge = NOW - timedelta(minutes=minutes)
    assert state(**common, last_success=edge) == "on_schedule"
    assert state(**common, last_success=edge - timedelta(seconds=1)) == "delayed"


def test_last_success_wins_over_connected_since() -> None:
    old = NOW - timedelta(days=30)
    recent = NOW - timedelta(minutes=10)
    assert state(last_success=recent, connected_since=old) == "on_schedule"
    assert state(last_success=old, connected_since=recent) == "delayed"


def test_connected_but_never_succeeded_counts_from_connected_since() -> None:
    assert state(connected_since=NOW - timedelta(hours=2)) == "on_schedule"
    assert state(connected_since=NOW - timedelta(days=2)) == "delayed"


def test_never_connected_is_on_schedule() -> None:
    for sensitivity in SENSITIVITIES:
        assert state(sensitivity=sensitivity, custom_threshold=1) == "on_schedule"


@pytest.mark.parametrize("sensitivity", ["SYNC_FREQUENCY", "HIGH", "NORMAL", "LOW"])
def test_paused_and_manual_are_on_schedule_unless_custom(sensitivity: str) -> None:
    long_ago = NOW - timedelta(days=365)
    assert state(sensitivity=sensitivity, last_success=long_ago) == "delayed"
    assert state(sensitivity=sensitivity, last_success=long_ago, paused=True) == "on_schedule"
    assert state(sensitivity=sensitivity, last_success=long_ago, schedule_type="manual") == "on_schedule"


def test_custom_applies_to_paused_and_manual_connections() -> None:
    long_ago = NOW - timedelta(days=365)
    custom = {"sensitivity": "CUSTOM", "custom_threshold": 60, "last_success": long_ago}
    assert state(**custom) == "delayed"
    assert state(**custom, paused=True) == "delayed"
    assert state(**custom, schedule_type="manual") == "delayed"
    assert state(**(custom | {"last_success": NOW}), paused=True, schedule_type="manual") == "on_schedule"


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError):
        state(last_success=datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        state(last_success=NOW, now=datetime(2026, 1, 1))


@given(
    st.sampled_from(SENSITIVITIES),
    st.sampled_from(SYNC_FREQUENCIES),
    st.integers(-10, 20_000),
    st.booleans(),
    st.sampled_from(["auto", "manual"]),
    st.none() | st.integers(0, 60 * 24 * 60),
    st.none() | st.integers(0, 60 * 24 * 60),
)
def test_update_state_agrees_with_delayed_after(
    sensitivity: str,
    frequency: int,
    custom: int,
    paused: bool,
    schedule_type: str,
    success_minutes_ago: int | None,
    connected_minutes_ago: int | None,
) -> None:
    last_success = None if success_minutes_ago is None else NOW - timedelta(minutes=success_minutes_ago)
    connected = None if connected_minutes_ago is None else NOW - timedelta(minutes=connected_minutes_ago)
    common: dict[str, Any] = {
        "sensitivity": sensitivity,
        "sync_frequency": frequency,
        "custom_threshold": custom,
        "paused": paused,
        "schedule_type": schedule_type,
        "last_success": last_success,
        "connected_since": connected,
    }
    result = update_state(**common, now=NOW)
    deadline = delayed_after(**common)
    assert result == ("delayed" if deadline is not None and deadline < NOW else "on_schedule")
    # The rules, independently of delayed_after.
    reference = last_success or connected
    threshold = delay_threshold(sensitivity, frequency, custom)
    muted = sensitivity != "CUSTOM" and (paused or schedule_type == "manual")
    expected_delayed = (
        not muted and reference is not None and threshold is not None and NOW - reference > threshold
    )
    assert result == ("delayed" if expected_delayed else "on_schedule")
