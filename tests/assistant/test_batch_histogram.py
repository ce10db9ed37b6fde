"""`record_values` against the real (pinned) OpenTelemetry SDK: the exported histogram must be
exactly what one `Histogram.record` per value gives, for every temporality, with views, across
collections, from several threads, and through the fallback when it cannot use the fast path."""

from __future__ import annotations

import random
import threading

import pytest
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import Histogram as SdkHistogram
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View

from assistant import batch_histogram
from assistant.batch_histogram import record_values
from assistant.semconv import SECONDS_BUCKETS

ATTRS = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "server.address": "mock-llm",
    "server.port": 8000,
}
NAME = "gen_ai.client.operation.time_per_output_chunk"


def _provider(temporality: AggregationTemporality, views=()) -> tuple:
    reader = InMemoryMetricReader(preferred_temporality={SdkHistogram: temporality})
    provider = MeterProvider(metric_readers=[reader], views=list(views))
    histogram = provider.get_meter("test").create_histogram(
        NAME, unit="s", explicit_bucket_boundaries_advisory=list(SECONDS_BUCKETS)
    )
    return reader, histogram


def _points(reader) -> dict:
    """{attributes: (count, sum, min, max, bucket_counts)} of the histogram, from one collection;
    sums rounded to 9 digits (adding the same values in another order changes the last bits)."""
    data = reader.get_metrics_data()
    points = {}
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for p in metric.data.data_points:
                    key = tuple(sorted(p.attributes.items()))
                    if hasattr(p, "bucket_counts"):
                        points[key] = (p.count, round(p.sum, 9), p.min, p.max, p.bucket_counts)
                    else:  # exponential histogram
                        points[key] = (p.count, round(p.sum, 9), p.min, p.max)
    return points


def _gaps(n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.choice((0.0, 1e-6, 0.004, 0.02, 0.02, 0.5, 3.0)) * rng.random() for _ in range(n)]


@pytest.mark.parametrize(
    "temporality", [AggregationTemporality.DELTA, AggregationTemporality.CUMULATIVE]
)
def test_same_histogram_as_one_record_per_value(temporality):
    batch_reader, batch = _provider(temporality)
    plain_reader, plain = _provider(temporality)
    other = {**ATTRS, "gen_ai.request.model": "gpt-4o"}
    for round_ in range(3):  # several collections: delta points restart, cumulative ones grow
        for seed in range(5):
            values = _gaps(199, seed + 10 * round_)
            attrs = other if seed % 2 else ATTRS
            record_values(batch, values, attrs)
            for v in values:
                plain.record(v, attrs)
        expected = _points(plain_reader)
        assert len(expected) == 2
        assert _points(batch_reader) == expected
    assert batch_histogram._aggregations(batch, ATTRS) is not None  # the fast path was taken


def test_views_that_drop_attributes_or_change_the_aggregation():
    keep = View(instrument_name=NAME, attribute_keys={"gen_ai.request.model"})
    values = _gaps(50, 1)
    batch_reader, batch = _provider(AggregationTemporality.DELTA, [keep])
    plain_reader, plain = _provider(AggregationTemporality.DELTA, [keep])
    record_values(batch, values, ATTRS)
    for v in values:
        plain.record(v, ATTRS)
    expected = _points(plain_reader)
    assert list(expected) == [(("gen_ai.request.model", "gpt-4o-mini"),)]
    assert _points(batch_reader) == expected

    exponential = View(instrument_name=NAME, aggregation=ExponentialBucketHistogramAggregation())
    batch_reader, batch = _provider(AggregationTemporality.DELTA, [exponential])
    plain_reader, plain = _provider(AggregationTemporality.DELTA, [exponential])
    record_values(batch, values, ATTRS)
    for v in values:
        plain.record(v, ATTRS)
    assert batch_histogram._aggregations(batch, ATTRS) is None  # not ours to touch: fallback
    assert _points(batch_reader) == _points(plain_reader)
    assert _points(plain_reader) == {}  # delta: collected above


def test_concurrent_streams_and_collections_lose_nothing():
    reader, histogram = _provider(AggregationTemporality.DELTA)
    values = [0.02] * 199 + [0.5]
    threads = [
        threading.Thread(
            target=lambda: [record_values(histogram, values, ATTRS) for _ in range(50)]
        )
        for _ in range(8)
    ]
    counts, total = 0, 0.0
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        for count, sum_, *_ in _points(reader).values():
            counts, total = counts + count, total + sum_
    for t in threads:
        t.join()
    for count, sum_, *_ in _points(reader).values():
        counts, total = counts + count, total + sum_
    assert counts == 8 * 50 * 200
    assert total == pytest.approx(8 * 50 * (199 * 0.02 + 0.5))


def test_no_sdk_and_empty_input():
    histogram = NoOpMeterProvider().get_meter("x").create_histogram(NAME)
    record_values(histogram, [0.1, 0.2], ATTRS)  # no SDK: plain (no-op) records, no error
    assert batch_histogram._aggregations(histogram, ATTRS) is None
    reader, histogram = _provider(AggregationTemporality.DELTA)
    record_values(histogram, [], ATTRS)
    assert _points(reader) == {}
