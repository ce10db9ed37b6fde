"""Smoke run of every benchmark script (`--quick`): they keep working; nothing here is timed.

Each script runs as `make bench` runs it, but tiny and into a temporary results file and report;
the test checks the record it appended (fields, types, sane values) and the rendered table. No
assertion depends on how fast this machine is.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from harness.prereq import ROOT, VENVS, collector_binary, missing, service_python

BENCH = ROOT / "bench"
FIELDS = {
    "benchmark": str,
    "title": str,
    "metric": str,
    "unit": str,
    "target": str,
    "comparison": str,
    "status": str,
    "anchor": str,
    "method": str,
    "quick": bool,
    "machine": dict,
    "date": str,
    "details": dict,
}
# script -> (benchmark names it records, services it needs)
SCRIPTS = {
    "bench_mock_capacity": (("mock_capacity",), ("mock-llm",)),
    "bench_overhead": (
        (
            "instrumentation_overhead",
            "instrumentation_per_chunk",
            "instrumentation_per_chunk_amortized",
        ),
        ("mock-llm", "assistant", "collector"),
    ),
    "bench_throughput": (("saturation_throughput",), ("mock-llm", "assistant", "collector")),
    "bench_streams": (("concurrent_streams",), ("mock-llm", "assistant", "collector")),
    "bench_loadgen": (("loadgen_fidelity",), ("mock-llm", "loadgen")),
    "bench_delivery": (("delivery_latency",), ("mock-llm", "assistant", "collector")),
    "bench_footprint": (
        ("stack_footprint", "first_span"),
        ("mock-llm", "assistant", "collector", "loadgen"),
    ),
    "bench_evaluations": (
        ("evaluation_cpu", "evaluation_ttft_p50", "evaluation_ttft_p99"),
        ("mock-llm", "assistant", "collector"),
    ),
    "profile_chunk_path": (("chunk_path_profile",), ("mock-llm", "assistant", "collector")),
}


def require(services: tuple[str, ...]) -> None:
    for service in services:
        if service == "collector":
            collector_binary()
        else:
            service_python(service)


def run_quick(script: str, tmp_path) -> tuple[list[dict], str]:
    results = tmp_path / "results.json"
    doc = tmp_path / "performance.md"
    completed = subprocess.run(
        [
            sys.executable,
            str(BENCH / f"{script}.py"),
            "--quick",
            "--results",
            str(results),
            "--doc",
            str(doc),
            "--work-dir",
            str(tmp_path / "work"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    assert results.exists(), completed.stderr[-4000:]
    return json.loads(results.read_text())["runs"], doc.read_text()


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_quick_run_records_a_sane_result(script, tmp_path):
    names, services = SCRIPTS[script]
    require(services)
    if script == "profile_chunk_path" and not (VENVS / "bench" / "bin" / "py-spy").exists():
        missing("py-spy in build/venvs/bench (bench/setup.sh)")
    runs, doc = run_quick(script, tmp_path)
    assert [run["benchmark"] for run in runs] == list(names)
    for run in runs:
        for field, kind in FIELDS.items():
            assert isinstance(run[field], kind), (field, run[field])
        assert run["quick"] is True
        assert run["status"] == "measured", run.get("reason")
        assert run["comparison"] in ("<=", ">=")
        assert isinstance(run["value"], (int, float)) and math.isfinite(run["value"])
        assert run["met"] in (True, False)
        assert run["met"] == (
            run["value"] <= run["target_value"]
            if run["comparison"] == "<="
            else run["value"] >= run["target_value"]
        )
        assert run["machine"]["cpus"] >= 1 and run["machine"]["python"].startswith("3.")
        assert run["date"].startswith("20")
        if run["benchmark"] != "chunk_path_profile":
            assert run["title"] in doc, "the rendered table lists every benchmark"
    check_details(runs[0])


def check_details(run: dict) -> None:
    """Values a working benchmark must produce, whatever the machine's speed."""
    details = run["details"]
    name = run["benchmark"]
    if name == "mock_capacity":
        level = details["levels"][0]["repetitions"][0]
        assert level["ok"] == level["requests"] > 0
        assert 250 <= level["ttft_ms"]["p50"] < 5000  # profile TTFT is 300 ms
        assert 5 < level["token_rate_per_stream"]["p50"] < 40  # profile rate is 20 tokens/s
    elif name == "instrumentation_overhead":
        assert details["failed_requests"] == {"on": 0, "off": 0}
        assert details["cpu_ms_per_request_on"]["median"] > 0
        assert details["cpu_ms_per_request_off"]["median"] > 0
        assert details["spans_in_archive"] > 0  # telemetry really was exported
        micro = details["micro_per_chunk_record"]
        assert 0 < micro["clock_read_us"] < micro["record_6_attributes_us"]
        # the assistant's batched path is cheaper than a record per chunk on any machine
        assert 0 < micro["record_values_per_value_us"] < micro["record_6_attributes_us"]
        long_on = details["cpu_ms_per_1000_token_request_on"]["median"]
        assert long_on > details["cpu_ms_per_request_on"]["median"]  # 1000 vs 200 chunks
    elif name == "saturation_throughput":
        assert details["failed_requests"] == {"on": 0, "off": 0}
        assert details["rps_on"]["median"] > 0 and details["rps_off"]["median"] > 0
    elif name == "concurrent_streams":
        variant = details["variants"][details["best_variant"]]
        assert variant["levels"][0]["ok"] > 0
        assert variant["levels"][0]["ttft_ms"]["p50"] >= 250  # never faster than the mock
    elif name == "loadgen_fidelity":
        level = details["levels"][0]
        assert level["loadgen"]["streams_with_tokens"] > 0
        assert level["loadgen"]["gap_error_ms"]["p50"] < 50  # gaps are about 50 ms
    elif name == "delivery_latency":
        shipped = details["latency_s_by_variant"]["shipped (BSP 1000 ms)"]
        assert shipped["missing_spans"] == 0
        assert 0 <= shipped["p50"] < 30
    elif name == "stack_footprint":
        sizes = details["peak_rss_mb_by_service"]
        assert set(sizes) == {"otel-collector", "mock-llm", "assistant", "loadgen"}
        assert all(size > 5 for size in sizes.values())
    elif name == "evaluation_cpu":
        cpu, ttft = details["cpu"], details["ttft"]
        assert cpu["failed_requests"] == {"off": 0, "on": 0}
        assert cpu["judge_failed"] == 0 and ttft["judge_failed"] == 0
        # every answer of the evaluating assistant was judged, and only those
        assert sum(cpu["judge_calls_per_window"]) == cpu["answers_on"] > 0
        assert cpu["judge_spans_in_archive"] > 0 and cpu["evaluation_events_in_archive"] > 0
        assert cpu["cpu_ms_per_request_off"]["median"] > 0
        assert cpu["judge_http_call"]["evaluations"] == 4
        assert cpu["judge_http_call"]["cpu_ms_per_call_mean"] > 0
        assert ttft["unmatched_requests"] == {"off": 0, "on": 0}  # matched to the mock's log
        for variant in ("off", "on"):
            assert ttft["added_ttft_ms"][variant]["n"] > 0
        assert 250 <= ttft["mock_scheduled_ttft_ms"]["p50"] < 5000  # profile TTFT is 300 ms
    elif name == "chunk_path_profile":
        on = details["telemetry on"]["share_by_component"]
        assert details["telemetry on"]["samples"] > 0
        assert abs(sum(on.values()) - 100) < 0.5
