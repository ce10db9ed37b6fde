"""Benchmark 1: assistant CPU per streamed request, full telemetry vs OTEL_SDK_DISABLED=true.

Two assistants run side by side against one zero-delay mock LLM: one with the shipped telemetry
(Splunk distribution, OTLP/HTTP as the image sends it, to a real local collector that writes its
archive), one with OTEL_SDK_DISABLED=true. Repetitions alternate A,B,B,A,...; in each window one
client process sends K sequential /api/chat requests. CPU is utime+stime of the whole gunicorn
tree (master + workers, all threads) from /proc, read from the start of one window of a variant
to the start of its next window (the last one after a wait longer than the batch delay), so
spans exported in the background after a window are charged to it.

Windows of 200-token answers give the ratio and the telemetry CPU per request spread over its
200 chunks; windows of 1000-token answers in the same rotation give the marginal cost of one more
chunk: ((on - off) at 1000 - (on - off) at 200) / 800, which per-request costs (spans, export,
the Flask instrumentation) cancel out of.
"""

from __future__ import annotations

import sys
import time

import benchlib as h

TOKENS = 200
LONG_TOKENS = 1000
META = {
    "benchmark": "instrumentation_overhead",
    "title": "1. Instrumentation overhead",
    "metric": "assistant CPU per 200-chunk request, telemetry on / off",
    "unit": "x",
    "comparison": "<=",
    "target": 1.10,
    "anchor": "official OpenAI GenAI instrumentation: +7-8 ms CPU per 200-chunk stream",
    "method": (
        "process-tree CPU (/proc utime+stime, gunicorn master+workers) per request, 200-token "
        "stream from a zero-delay mock, real OTLP export to a local collector vs "
        "OTEL_SDK_DISABLED=true, alternating windows, median of paired ratios"
    ),
}
META_CHUNK = {
    **META,
    "benchmark": "instrumentation_per_chunk",
    "title": "1b. Telemetry cost per streamed chunk (marginal)",
    "metric": "extra telemetry CPU per extra chunk: 1000- vs 200-chunk streams, on - off",
    "unit": "us",
    "target": 5,
    "anchor": "GenAI instrumentation ~35-40 us/chunk; OpenLLMetry ~30-35; OpenLIT ~25",
    "method": (
        "((CPU on - off) per 1000-token request - (CPU on - off) per 200-token request) / 800, "
        "windows interleaved with benchmark 1's, median of the repetitions"
    ),
}
META_AMORTIZED = {
    **META,
    "benchmark": "instrumentation_per_chunk_amortized",
    "title": "1c. Telemetry cost per chunk, per-request costs included",
    "metric": "(CPU on - CPU off) per 200-token request / 200",
    "unit": "us",
    "target": 5,
    "anchor": META_CHUNK["anchor"],
    "method": "benchmark 1's windows: (CPU on - CPU off) / 200, median of the repetitions",
}


def micro_record_cost(quick: bool) -> dict:
    """bench/micro_chunk_record.py in the assistant's venv: the per-chunk record alone."""
    calls = "2000" if quick else "100000"
    return h.run_venv_script("assistant", "micro_chunk_record.py", "--calls", calls)


def run(args) -> None:
    work = h.work_dir(args, "overhead")
    per_window = 3 if args.quick else 20
    long_per_window = 1 if args.quick else 8
    repetitions = 1 if args.quick else 10
    long_model = {**h.ZERO_DELAY_200, "output_tokens": {"min": 1000, "mean": 1000, "max": 1000}}
    profiles = h.write_profiles(
        work / "profiles.yaml", {"bench": h.ZERO_DELAY_200, "bench-long": long_model}
    )
    bodies = {
        TOKENS: {"message": "Tell me about observability.", "max_tokens": TOKENS},
        LONG_TOKENS: {
            "message": "Tell me about observability.",
            "model": "bench-long",
            "max_tokens": LONG_TOKENS,
        },
    }
    models = {"ASSISTANT_MODELS": "bench,bench-long"}
    with (
        h.collector(work / "collector") as collector,
        h.mock_llm(work, profiles) as (_mock, mock_url),
        h.assistant(
            work,
            f"{mock_url}/v1",
            telemetry=True,
            otlp_endpoint=collector.otlp_http,
            env=models,
            name="on",
        ) as (on, on_url),
        h.assistant(work, f"{mock_url}/v1", telemetry=False, env=models, name="off") as (
            off,
            off_url,
        ),
    ):
        targets = {"on": (on, on_url), "off": (off, off_url)}

        def send(url: str, count: int, tokens: int = TOKENS) -> dict:
            return h.sequential_chats(work, url, bodies[tokens], count)

        for _name, (_proc, url) in targets.items():  # warm-up: imports, connections, JIT caches
            send(url, 3)
            send(url, 1, LONG_TOKENS)
        # one CPU mark per window start; a window's CPU runs to the next mark of its process
        marks: dict[str, list[float]] = {"on": [], "off": []}
        windows: dict[str, list[tuple[int, int]]] = {"on": [], "off": []}  # (tokens, requests)
        failures = {"on": 0, "off": 0}

        def window(name: str, tokens: int, count: int):
            def measure() -> float:
                proc, url = targets[name]
                marks[name].append(h.tree_cpu_seconds(proc.pid))
                stats = h.stream_stats(send(url, count, tokens))
                windows[name].append((tokens, stats["ok"]))
                failures[name] += stats["failed"]
                return 0.0

            return measure

        h.interleaved(
            {
                "on": window("on", TOKENS, per_window),
                "off": window("off", TOKENS, per_window),
                "on long": window("on", LONG_TOKENS, long_per_window),
                "off long": window("off", LONG_TOKENS, long_per_window),
            },
            repetitions,
        )
        time.sleep(7.0)  # longer than the shipped span batch delay: flush the last window's spans
        for name, (proc, _url) in targets.items():
            marks[name].append(h.tree_cpu_seconds(proc.pid))
        spans = len(collector.spans())

    micro = micro_record_cost(args.quick)
    per_request: dict[tuple[str, int], list[float]] = {}
    for name in targets:
        for i, (tokens, ok) in enumerate(windows[name]):
            cpu = marks[name][i + 1] - marks[name][i]
            per_request.setdefault((name, tokens), []).append(cpu / max(ok, 1))
    on_short, off_short = per_request[("on", TOKENS)], per_request[("off", TOKENS)]
    on_long, off_long = per_request[("on", LONG_TOKENS)], per_request[("off", LONG_TOKENS)]
    ratios = h.ratio_summary(on_short, off_short)
    added_short = [a - b for a, b in zip(on_short, off_short, strict=True)]
    added_long = [a - b for a, b in zip(on_long, off_long, strict=True)]
    amortized_us = [x / TOKENS * 1e6 for x in added_short]
    marginal_us = [
        (long - short) / (LONG_TOKENS - TOKENS) * 1e6
        for long, short in zip(added_long, added_short, strict=True)
    ]
    on_ms = h.summary([x * 1000 for x in on_short])
    off_ms = h.summary([x * 1000 for x in off_short])
    details = h.clean(
        {
            "requests_per_window": {TOKENS: per_window, LONG_TOKENS: long_per_window},
            "repetitions": repetitions,
            "cpu_ms_per_request_on": on_ms,
            "cpu_ms_per_request_off": off_ms,
            "cpu_ms_per_1000_token_request_on": h.summary([x * 1000 for x in on_long]),
            "cpu_ms_per_1000_token_request_off": h.summary([x * 1000 for x in off_long]),
            "ratio_on_off": ratios,
            "telemetry_ms_per_request": h.summary([x * 1000 for x in added_short]),
            "telemetry_ms_per_1000_token_request": h.summary([x * 1000 for x in added_long]),
            "telemetry_us_per_chunk_marginal": h.summary(marginal_us),
            "telemetry_us_per_chunk_amortized": h.summary(amortized_us),
            "failed_requests": failures,
            "spans_in_archive": spans,
            "cpu_resolution_ms": 1000 / h.CLK_TCK,
            "micro_per_chunk_record": micro,
        }
    )
    print(
        f"overhead: on {on_ms['median']:.1f} ms, off {off_ms['median']:.1f} ms per request, "
        f"ratio {ratios['median']:.3f}, {h.summary(marginal_us)['median']:.1f} us per extra "
        f"chunk, {h.summary(amortized_us)['median']:.1f} us/chunk amortized",
        file=sys.stderr,
    )
    if failures["on"] or failures["off"]:
        raise RuntimeError(f"requests failed during the overhead benchmark: {failures}")
    per_request_ms = details["telemetry_ms_per_request"]["median"]
    per_chunk_us = micro.get("array_append_us", 0) + micro.get("record_values_per_value_us", 0)
    reason = (
        f"telemetry adds {per_request_ms:.1f} ms CPU per 200-chunk request, nearly all of it "
        "per request (three spans, five metric records, the Flask instrumentation, the export): "
        f"the per-chunk path itself costs {per_chunk_us:.1f} us (micro-benchmark)"
    )
    for meta, stats, digits in (
        (META, ratios, 3),
        (META_CHUNK, details["telemetry_us_per_chunk_marginal"], 2),
        (META_AMORTIZED, details["telemetry_us_per_chunk_amortized"], 2),
    ):
        h.record(
            args,
            **meta,
            value=h.finite(stats["median"], digits),
            details=details if meta is META else {"see": "instrumentation_overhead", **details},
            reason=reason,
            value_range=(stats["min"], stats["max"], stats["n"]),
        )


if __name__ == "__main__":
    sys.exit(h.main_guard(run, h.parser(__doc__.splitlines()[0]), META))
