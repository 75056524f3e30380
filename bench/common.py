"""What every benchmark reports: a figure against its budget, printed as one line."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    budget: float
    higher_is_better: bool = False  # ratios where more is better (throughput) are budgets from below
    detail: str = ""
    unit: str = "x"  # most figures are ratios

    @property
    def passed(self) -> bool:
        return self.value >= self.budget if self.higher_is_better else self.value <= self.budget

    def line(self) -> str:
        bound = ">=" if self.higher_is_better else "<="
        verdict = "PASS" if self.passed else "OVER"
        text = (
            f"{verdict:4}  {self.name:<44} {self.value:6.2f}{self.unit}  "
            f"(budget {bound} {self.budget:.2f}{self.unit})"
        )
        return f"{text}  {self.detail}" if self.detail else text


def median(values: list[float]) -> float:
    return statistics.median(values)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def us(seconds: float) -> str:
    return f"{seconds * 1e6:.0f} us"


def interleaved(
    runs: int, ours: Callable[[], float], theirs: Callable[[], float]
) -> tuple[list[float], list[float]]:
    """Seconds of each run of two sides, taking turns (and turning the order around each round), so that
    drift and caches hit both alike."""
    our_times: list[float] = []
    their_times: list[float] = []
    for index in range(runs):
        rounds = [(ours, our_times), (theirs, their_times)]
        for side, times in rounds if index % 2 == 0 else reversed(rounds):
            times.append(side())
    return our_times, their_times


def speed_figure(
    name: str,
    rows: int,
    ours: list[float],
    theirs: list[float],
    budget: float,
    pick: Callable[[list[float]], float] = min,
) -> Figure:
    """Our rows per second over theirs (a speed budget: higher is better), from the best run of each
    side or, with `pick=median`, the median."""
    our_speed, their_speed = rows / pick(ours), rows / pick(theirs)
    return Figure(
        name,
        our_speed / their_speed,
        budget,
        higher_is_better=True,
        detail=f"{our_speed:,.0f} vs {their_speed:,.0f} rows/s",
    )
