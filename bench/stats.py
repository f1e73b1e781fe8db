"""Medians, spreads and percentiles, and the Figure a target is checked against.

Percentiles interpolate linearly between order statistics (``statistics.quantiles`` with
``method="inclusive"``, i.e. numpy's default): with 200 samples p99 lies between the second
and third largest. A spread is min-max over the series' own values.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from bench.common import Json


def median(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def percentile(values: Sequence[float], p: float) -> float | None:
    """The p-th percentile (0-100) by linear interpolation; None for no values."""
    if not values:
        return None
    if len(values) == 1:
        return float(values[0])
    ordered = sorted(values)
    pos = (len(ordered) - 1) * p / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def latency_summary(values_ms: Sequence[float]) -> Json:
    """n, median, p90, p95, p99, max and min of a latency sample in ms."""
    return {
        "n": len(values_ms),
        "median_ms": percentile(values_ms, 50),
        "p90_ms": percentile(values_ms, 90),
        "p95_ms": percentile(values_ms, 95),
        "p99_ms": percentile(values_ms, 99),
        "max_ms": max(values_ms) if values_ms else None,
        "min_ms": min(values_ms) if values_ms else None,
    }


@dataclass
class Figure:
    """One number a target is held to: ``value`` (how it is aggregated is the workload's),
    with the spread of the per-series values it came from."""

    value: float | None
    lo: float | None = None
    hi: float | None = None
    per_series: list[float | None] = field(default_factory=list)
    n: int = 0  # samples (pairs, requests, rounds) behind value
    text: str | None = None  # shown instead of the value (e.g. "10/10")

    def as_json(self) -> Json:
        return {
            "value": self.value,
            "min": self.lo,
            "max": self.hi,
            "per_series": self.per_series,
            "n": self.n,
            "text": self.text,
        }


def figure_of_series(per_series: list[float | None], n: int, pooled: float | None = None) -> Figure:
    """The median of the series' values (or ``pooled``, one value over every sample) with
    their min-max (none from a single series)."""
    vals = [v for v in per_series if v is not None]
    value = pooled if pooled is not None else median(vals)
    return Figure(
        value=value,
        lo=min(vals) if len(vals) > 1 else None,
        hi=max(vals) if len(vals) > 1 else None,
        per_series=per_series,
        n=n,
    )
