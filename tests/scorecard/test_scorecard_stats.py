"""Properties of the scorecard's statistics (in-process; the package is stdlib-only)."""

from __future__ import annotations

import bisect
import statistics
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.prereq import ROOT

sys.path.insert(0, str(ROOT / "scorecard" / "src"))

from scorecard import stats

S_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
latencies = st.lists(
    st.floats(min_value=0.001, max_value=80.0, allow_nan=False), min_size=2, max_size=200
)


@settings(max_examples=200, deadline=None)
@given(latencies, st.sampled_from([1, 10, 50, 90, 99]))
def test_percentile_matches_the_standard_library(values, pct):
    expected = statistics.quantiles(values, n=100, method="inclusive")[pct - 1]
    assert abs(stats.percentile(values, pct) - expected) <= 1e-9 * max(1.0, abs(expected))


@settings(max_examples=200, deadline=None)
@given(latencies, st.sampled_from([0.5, 0.9, 0.99]))
def test_histogram_quantile_lies_in_the_true_quantiles_bucket(values, q):
    counts = [0] * (len(S_BUCKETS) + 1)
    for value in values:
        counts[bisect.bisect_left(S_BUCKETS, value)] += 1
    estimate = stats.histogram_quantile(q, S_BUCKETS, counts)
    ordered = sorted(values)
    rank = max(0, int(-(-q * len(ordered) // 1)) - 1)  # the ceil(q*n)-th value
    true = ordered[rank]
    index = bisect.bisect_left(S_BUCKETS, true)
    lower = 0.0 if index == 0 else S_BUCKETS[index - 1]
    upper = S_BUCKETS[index] if index < len(S_BUCKETS) else S_BUCKETS[-1]
    assert lower - 1e-12 <= estimate <= upper + 1e-12


@given(st.integers(min_value=1, max_value=500), st.data())
def test_wilson_interval_contains_the_share(total, data):
    successes = data.draw(st.integers(min_value=0, max_value=total))
    low, high = stats.wilson_interval(successes, total)
    assert 0.0 <= low <= successes / total <= high <= 1.0


def test_mean_interval_and_edge_cases():
    assert stats.mean_interval([0.5]) is None
    low, high = stats.mean_interval([0.0, 1.0, 0.5, 0.75])
    assert low < 0.5625 < high
    assert stats.percentile([], 50) is None
    assert stats.histogram_quantile(0.5, [1.0], [0, 0]) is None
    assert stats.histogram_quantile(0.99, [1.0, 2.0], [0, 0, 5]) == 2.0  # overflow: lower bound
