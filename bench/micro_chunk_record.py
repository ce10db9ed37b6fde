"""Micro-benchmark of the per-chunk telemetry call: one histogram record with GenAI attributes.

Run with the assistant's interpreter (its pinned OpenTelemetry SDK):

    build/venvs/assistant/bin/python bench/micro_chunk_record.py [--calls 200000]

Prints JSON: process CPU microseconds per call for the clock read alone, `Histogram.record`
with no attributes, with the 6 attributes the assistant records per chunk, and the same inside a
sampled span (as in the SDK's exemplar path), and what the assistant does now: keep each gap in an
`array('d')` and add a stream's 199 gaps in one `record_values` call (assistant/batch_histogram.py),
per value.
Measured in one process with process_time (CPU, not wall), best of 5 rounds, so it is far less
sensitive to the other load on a shared machine than the end-to-end benchmark.
"""

from __future__ import annotations

import argparse
import json
import time

ATTRIBUTES = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "server.address": "mock-llm",
    "server.port": 8000,
}


def per_call_us(function, calls: int, rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(calls):
            function()
        best = min(best, time.process_time() - start)
    return best / calls * 1e6


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--calls", type=int, default=200_000)
    args = cli.parse_args()
    calls = max(1000, min(args.calls, 5_000_000))
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    histogram = provider.get_meter("bench").create_histogram(
        "gen_ai.client.operation.time_per_output_chunk", unit="s"
    )
    perf_counter = time.perf_counter
    results = {
        "calls_per_round": calls,
        "clock_read_us": per_call_us(perf_counter, calls),
        "record_no_attributes_us": per_call_us(lambda: histogram.record(0.01), calls),
        "record_6_attributes_us": per_call_us(lambda: histogram.record(0.01, ATTRIBUTES), calls),
    }
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("bench")
    with trace.use_span(tracer.start_span("chat bench"), end_on_exit=True):
        # inside a sampled span the SDK also offers every measurement as an exemplar
        results["record_6_attributes_in_sampled_span_us"] = per_call_us(
            lambda: histogram.record(0.01, ATTRIBUTES), calls
        )
    import sys
    from array import array
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services/assistant/src"))
    from assistant.batch_histogram import record_values

    gaps = array("d")
    results["array_append_us"] = per_call_us(lambda: gaps.append(0.01), calls)
    stream = array("d", [0.01] * 199)
    results["record_values_per_value_us"] = per_call_us(
        lambda: record_values(histogram, stream, ATTRIBUTES), max(100, calls // 199)
    ) / len(stream)
    provider.shutdown()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
