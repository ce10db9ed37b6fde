"""Small, dependency-free statistics: exact percentiles, histogram quantiles, intervals."""

from __future__ import annotations

import math
from collections.abc import Sequence

# Two-sided 95 % Student-t critical values by degrees of freedom (then the normal 1.96).
_T95 = {
    1: 12.706,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
    12: 2.179,
    15: 2.131,
    20: 2.086,
    25: 2.060,
    30: 2.042,
    40: 2.021,
    60: 2.000,
    120: 1.980,
}


def percentile(values: Sequence[float], pct: float) -> float | None:
    """The `pct` percentile (0-100) with linear interpolation between ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * pct / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    fraction = rank - low
    return float(ordered[low] + (ordered[high] - ordered[low]) * fraction)


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def histogram_quantile(
    quantile: float, bounds: Sequence[float], counts: Sequence[int]
) -> float | None:
    """Estimate a quantile (0-1) from explicit-bucket counts, interpolating inside the bucket.

    Buckets are (-inf, b0], (b0, b1], ..., (b_last, +inf). The first bucket is taken to start
    at 0 (latencies and token counts are never negative); a quantile in the overflow bucket
    returns the last bound (a lower bound of the true value).
    """
    total = sum(counts)
    if total <= 0 or len(counts) != len(bounds) + 1:
        return None
    target = quantile * total
    cumulative = 0.0
    for index, count in enumerate(counts):
        if count and cumulative + count >= target:
            if index == len(bounds):
                return float(bounds[-1]) if bounds else None
            lower = 0.0 if index == 0 else float(bounds[index - 1])
            upper = float(bounds[index])
            return lower + (upper - lower) * (target - cumulative) / count
        cumulative += count
    return float(bounds[-1]) if bounds else None


def t_critical_95(degrees: int) -> float:
    if degrees <= 0:
        return math.inf
    best = 1.96
    for df in sorted(_T95, reverse=True):
        if degrees >= df:
            return _T95[df] if degrees <= 120 else best
    return _T95[1]


def mean_interval(values: Sequence[float]) -> tuple[float, float] | None:
    """95 % Student-t interval of the mean; None with fewer than two values."""
    count = len(values)
    if count < 2:
        return None
    centre = sum(values) / count
    variance = sum((value - centre) ** 2 for value in values) / (count - 1)
    half = t_critical_95(count - 1) * math.sqrt(variance / count)
    return centre - half, centre + half


def wilson_interval(successes: float, total: int, z: float = 1.96) -> tuple[float, float] | None:
    """95 % Wilson score interval of a proportion (well-behaved at 0, 1 and small n)."""
    if total <= 0:
        return None
    share = successes / total
    denominator = 1 + z * z / total
    centre = (share + z * z / (2 * total)) / denominator
    half = z * math.sqrt(share * (1 - share) / total + z * z / (4 * total * total)) / denominator
    low = 0.0 if successes <= 0 else max(0.0, centre - half)
    high = 1.0 if successes >= total else min(1.0, centre + half)  # exact at the edges
    return low, high
