"""What every benchmark reports: a figure against its budget, printed as one line."""

from __future__ import annotations

import statistics
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
