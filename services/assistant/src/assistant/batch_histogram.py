"""Record many values of one histogram data point at once (the per-chunk gaps of a stream).

Why hand-written: `gen_ai.client.operation.time_per_output_chunk` gets one value per chunk, and
the SDK's `Histogram.record` costs 12-20 us per call here, three quarters of it re-cleaning,
copying and hashing the same six attributes to find the data point (docs/performance.md). That is
more than the whole budget of 5 us per chunk. The SDK has no bulk or bound-instrument API, so a
stream keeps its gaps in an `array('d')` (about 0.1 us per chunk) and `record_values` adds them
at the end of the stream: the first one through the public `record` (which creates the data point,
applies views and offers the exemplar), the rest straight into the bucket counts, sum, min and max
of the SDK aggregation(s) that first call used, under that aggregation's lock. The exported
histogram is identical to one `record` per value (tests/assistant/test_batch_histogram.py checks
it against the SDK). This reaches into the pinned SDK's internals (1.45); if they ever differ, or
no SDK is configured, every value goes through `record` as before: slower, never wrong.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence


def record_values(histogram, values: Sequence[float], attributes: dict) -> None:
    """`histogram.record(v, attributes)` for every v in `values`, in one go."""
    if not values:
        return
    histogram.record(values[0], attributes)
    rest = values[1:]
    if not rest:
        return
    aggregations = _aggregations(histogram, attributes)
    if aggregations is None:
        for value in rest:
            histogram.record(value, attributes)
        return
    total = sum(rest)
    low = min(rest)
    high = max(rest)
    for aggregation in aggregations:
        bounds = aggregation._boundaries
        with aggregation._lock:
            counts = aggregation._value
            if counts is None:  # collected since the first value: a fresh delta point
                counts = aggregation._value = aggregation._get_empty_bucket_counts()
            for value in rest:
                counts[bisect_left(bounds, value)] += 1
            aggregation._sum += total
            if aggregation._record_min_max:
                aggregation._min = min(aggregation._min, low)
                aggregation._max = max(aggregation._max, high)


def _aggregations(histogram, attributes: dict) -> list | None:
    """The SDK explicit-bucket aggregations holding `attributes`' data point of `histogram`, one
    per metric reader; None when they cannot all be found (then the caller records value by
    value)."""
    try:
        from opentelemetry.sdk.metrics._internal._view_instrument_match import _hash_attributes
        from opentelemetry.sdk.metrics._internal.aggregation import (
            _ExplicitBucketHistogramAggregation,
        )

        if not histogram._is_enabled():
            return None
        found = []
        for storage in histogram._measurement_consumer._reader_storages.values():
            for match in storage._instrument_view_instrument_matches.get(histogram, ()):
                keys = match._view._attribute_keys
                kept = (
                    attributes
                    if keys is None
                    else {k: attributes[k] for k in attributes if k in keys}
                )
                aggregation = match._attributes_aggregation.get(_hash_attributes(dict(kept)))
                if type(aggregation) is not _ExplicitBucketHistogramAggregation:
                    return None
                found.append(aggregation)
        return found or None
    except (AttributeError, ImportError, TypeError):
        return None
