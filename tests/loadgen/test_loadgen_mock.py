"""Real bounded Locust runs (direct OpenAI-compatible mode) against the real mock LLM on 127.0.0.1.

The mock runs a fast, jitter-free profile (conftest.FAST_PROFILES) so each run takes seconds.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections import Counter

import pytest
import requests

from harness.procs import free_port, running

WEIGHTS = {"gpt-4o": 3, "gpt-4o-mini": 5, "o3-mini": 2}


def direct(llm, **settings):
    base = {
        "target": "openai",
        "host": llm.base_url,
        "api_key": llm.api_key,
        "model_weights": ",".join(f"{m}={w}" for m, w in WEIGHTS.items()),
    }
    return {**base, **settings}


def served(llm) -> Counter:
    """Requests the mock answered with 200, by model (its counters survive /admin/reset)."""
    models = ("gpt-4o", "gpt-4o-mini", "gpt-4.1-mini", "o3-mini")
    return Counter(
        {m: int(llm.metric("mock_llm_requests_total", model=m, status="200")) for m in models}
    )


def served_since(llm, before: Counter) -> Counter:
    after = served(llm)
    after.subtract(before)
    return +after


def signatures(samples):
    return Counter(
        (s["model"], s["prompt_id"], s["temperature"], s["top_p"], s["max_tokens"]) for s in samples
    )


def test_bounded_run_counts_timing_split_and_reports(llm, run_loadgen, profile_timing):
    before = served(llm)
    started = time.monotonic()
    run = run_loadgen(
        "bounded",
        **direct(llm, users=20, requests_per_user=5, seed=2024),
        max_error_rate=0.01,
        min_goodput_ratio=0.9,
        slo_ttft_ms=2000,
        slo_tpot_ms=200,
    )
    elapsed = time.monotonic() - started
    assert run.exit_code == 0, run.log()[-3000:]
    assert "all users sent their 5 requests" in run.log()
    summary = run.summary
    overall = summary["overall"]
    assert overall["requests"] == 100 and overall["failed"] == 0
    target_counted = served_since(llm, before)
    assert target_counted.total() == 100
    assert {m: g["requests"] for m, g in summary["models"].items()} == dict(target_counted)
    assert summary["gate"] == {"passed": True, "exit_code": 0, "violations": []}
    print(f"\nbounded run: 20 users x 5 requests in {elapsed:.1f} s")

    # Timing agrees with the mock's jitter-free profile within 15 % (true line-by-line gaps).
    # A busy machine only ever adds delay, so TTFT is checked at its 10th percentile (no request
    # may beat the profile) and, more loosely, at its median.
    for model, group in summary["models"].items():
        ttft, itl = profile_timing[model]
        ttfts = sorted(s["ttft_ms"] for s in run.samples if s["model"] == model)
        ttft_p10 = ttfts[len(ttfts) // 10]
        measured_ttft, measured_itl = group["ttft_ms"]["p50"], group["itl_ms"]["p50"]
        tpot = group["tpot_ms"]["p50"]
        print(f"{model}: TTFT p10 {ttft_p10:.1f} p50 {measured_ttft:.1f} ms (profile {ttft:.0f}),")
        print(f"  ITL p50 {measured_itl:.2f} ms (profile {itl:.0f}), TPOT p50 {tpot:.2f} ms")
        assert ttfts[0] >= 0.97 * ttft, (model, ttfts[:5])
        assert abs(ttft_p10 - ttft) <= 0.15 * ttft, (model, ttfts)
        assert abs(measured_ttft - ttft) <= 0.30 * ttft, (model, group["ttft_ms"])
        assert abs(measured_itl - itl) <= 0.15 * itl, (model, group["itl_ms"])
        assert abs(group["tpot_ms"]["p50"] - itl) <= 0.15 * itl, (model, group["tpot_ms"])
        out = group["output_tokens"]
        assert out["per_request"]["min"] >= 14  # the profile's minimum (the mock may run on
        # to the end of a sentence past its maximum)
        assert group["itl_ms"]["count"] == out["total"] - group["requests"]

    # per-model split follows the weights: each count within 4 binomial standard deviations
    total = sum(WEIGHTS.values())
    for model, weight in WEIGHTS.items():
        p = weight / total
        count = summary["models"][model]["requests"]
        assert abs(count - 100 * p) <= 4 * math.sqrt(100 * p * (1 - p)), (model, count)

    # throughput figures are consistent with the raw numbers
    duration = summary["window"]["duration_s"]
    assert overall["requests_per_s"] == pytest.approx(100 / duration, rel=1e-3)
    assert overall["output_tokens_per_s"] == pytest.approx(
        overall["output_tokens"]["total"] / duration, rel=1e-3
    )
    assert 0 < overall["peak_output_tokens_per_s"] <= overall["output_tokens"]["total"]
    assert overall["goodput"]["ratio"] == 1.0

    # Locust's own reports: E2E as response time, per-model TTFT/E2E rows
    with (run.report_dir / "locust_stats.csv").open() as handle:
        rows = {(r["Type"], r["Name"]): r for r in csv.DictReader(handle)}
    assert int(rows[("POST", "/chat/completions")]["Request Count"]) == 100
    for model in WEIGHTS:
        ttft_row = rows[("LLM", f"TTFT {model}")]
        assert int(ttft_row["Request Count"]) == summary["models"][model]["requests"]
        assert int(rows[("LLM", f"E2E {model}")]["Request Count"]) == int(ttft_row["Request Count"])
    e2e_mean = float(rows[("POST", "/chat/completions")]["Average Response Time"])
    assert e2e_mean == pytest.approx(overall["e2e_ms"]["mean"], rel=0.02)  # not time-to-headers
    assert (run.report_dir / "locust.html").stat().st_size > 10_000
    assert (run.report_dir / "llm-summary.md").read_text().startswith("# LLM load report")


def test_same_seed_users_and_cap_give_the_same_requests(llm, run_loadgen):
    settings = direct(llm, users=6, requests_per_user=4)
    first = run_loadgen("repro-a", **settings, seed=99)
    second = run_loadgen("repro-b", **settings, seed=99)
    other = run_loadgen("repro-c", **settings, seed=100)
    for run in (first, second, other):
        assert run.exit_code == 0, run.log()[-3000:]
        assert len(run.samples) == 24
    assert signatures(first.samples) == signatures(second.samples)
    assert signatures(first.samples) != signatures(other.samples)
    # and per user, in order
    per_user = [
        [(s["user"], s["seq"], s["model"], s["prompt_id"]) for s in r.samples]
        for r in (first, second)
    ]
    assert per_user[0] == per_user[1]


def test_stream_faults_are_classified(llm, run_loadgen):
    llm.set_faults(
        {
            "models": {
                "gpt-4o": {"midstream_error": 1.0},
                "gpt-4o-mini": {"truncate": 1.0},
                "o3-mini": {"429": 1.0},
                "gpt-4.1-mini": {"disconnect": 1.0},
            }
        }
    )
    weights = "gpt-4o=1,gpt-4o-mini=1,o3-mini=1,gpt-4.1-mini=1"
    run = run_loadgen("faults", **direct(llm, users=4, requests_per_user=5, model_weights=weights))
    assert run.exit_code == 0, run.log()[-3000:]  # no thresholds set: faults alone do not fail
    expected = {
        "gpt-4o": "error_event:server_error",
        "gpt-4o-mini": "truncated",
        "o3-mini": "http_429",
        "gpt-4.1-mini": "dropped",
    }
    summary = run.summary
    assert summary["overall"]["requests"] == 20 and summary["overall"]["failed"] == 20
    for model, group in summary["models"].items():
        assert group["errors_by_kind"] == {expected[model]: group["requests"]}, model
    if "o3-mini" in summary["models"]:
        assert summary["models"]["o3-mini"]["errors_by_code"] == {
            "http_429:rate_limit_exceeded": summary["models"]["o3-mini"]["requests"]
        }
    with (run.report_dir / "locust_failures.csv").open() as handle:
        failures = {r["Error"]: int(r["Occurrences"]) for r in csv.DictReader(handle)}
    assert sum(failures.values()) == 20
    assert any("truncated" in error for error in failures)


def test_thresholds_set_the_exit_code(llm, run_loadgen):
    llm.set_faults({"models": {"gpt-4o": {"stall": 1.0}, "gpt-4o-mini": {"503": 1.0}}})
    run = run_loadgen(
        "gate-errors",
        **direct(llm, users=2, requests_per_user=2, model_weights="gpt-4o=1,gpt-4o-mini=1"),
        request_timeout_s=1,
        max_error_rate=0.5,
    )
    assert run.exit_code == 3, run.log()[-3000:]
    summary = run.summary
    kinds = summary["overall"]["errors_by_kind"]
    assert set(kinds) <= {"timeout", "http_503"} and sum(kinds.values()) == 4, kinds
    assert summary["gate"]["violations"] == ["error rate 1.0000 > LOADGEN_MAX_ERROR_RATE 0.5"]

    llm.reset()
    slow = run_loadgen(
        "gate-goodput",
        **direct(llm, users=2, requests_per_user=2, model_weights="gpt-4o=1"),
        slo_ttft_ms=50,  # the profile's TTFT is 400 ms: no request meets it
        min_goodput_ratio=0.5,
    )
    assert slow.exit_code == 3, slow.log()[-3000:]
    assert slow.summary["overall"]["failed"] == 0
    assert slow.summary["overall"]["goodput"]["ratio"] == 0.0


def run_distributed(llm, loadgen_proc, folder, seed: int) -> tuple[dict, list[dict]]:
    """Master + 2 workers (6 users x 3 requests) to completion; (summary, samples)."""
    port = free_port()
    report_dir = folder / "report"
    settings = direct(llm, users=6, requests_per_user=3, seed=seed, master_port=port)
    master = loadgen_proc("lg-master", report_dir, **settings, role="master", expect_workers=2)
    # Workers adopt the master's traffic settings: their own (different) ones must not matter.
    own = {"requests_per_user": 1, "seed": 999, "model_weights": "gpt-4.1-mini=1"}
    workers = [
        loadgen_proc(
            f"lg-worker-{i}",
            folder / f"worker-{i}",
            **own,
            api_key=llm.api_key,
            role="worker",
            master_host="127.0.0.1",
            master_port=port,
        )
        for i in range(2)
    ]
    with running(master, *workers):
        code = master.wait_exit(120)
        worker_codes = [w.wait_exit(30) for w in workers]
    assert code == 0, master.log()[-4000:]
    assert worker_codes == [0, 0], [w.log()[-2000:] for w in workers]
    assert not (folder / "worker-0").exists()  # workers write no reports
    summary = json.loads((report_dir / "llm-summary.json").read_text())
    samples = [json.loads(x) for x in (report_dir / "llm-samples.jsonl").read_text().split()]
    return summary, samples


def test_distributed_master_and_two_workers_merge_samples(llm, loadgen_proc, tmp_path):
    before = served(llm)
    summary, samples = run_distributed(llm, loadgen_proc, tmp_path / "first", seed=5)
    assert summary["overall"]["requests"] == 18 == served_since(llm, before).total()
    assert summary["metadata"]["workers"] == 2
    assert summary["metadata"]["workers_reporting"] == [0, 1]
    per_user = Counter((s["worker"], s["user"]) for s in samples)
    assert sum(per_user.values()) == 18 and set(per_user.values()) == {3}
    assert len(per_user) == 6 and {w for w, _ in per_user} == {0, 1}
    assert set(summary["models"]) <= set(WEIGHTS)  # the master's weights, not the workers'

    # reproducible with the same seed, users, cap and number of workers
    _, again = run_distributed(llm, loadgen_proc, tmp_path / "second", seed=5)
    assert signatures(again) == signatures(samples)


def test_staged_shape_ramps_and_stops_by_itself(llm, run_loadgen):
    run = run_loadgen(
        "staged",
        **direct(llm, requests_per_user=0),
        shape="staged",
        stages="3s:2:10,3s:5:10,2s:1:10",
        wait_seconds="0.2-0.4",
    )
    assert run.exit_code == 0, run.log()[-3000:]
    assert "staged shape completed" in run.log()
    assert run.summary["overall"]["requests"] > 5
    with (run.report_dir / "locust_stats_history.csv").open() as handle:
        users = [int(r["User Count"]) for r in csv.DictReader(handle) if r["Name"] == "Aggregated"]
    assert max(users) == 5 and users[0] <= 2


def test_web_ui_mode_runs_the_demo_load_and_stays_up(llm, loadgen_proc, tmp_path):
    port = free_port()
    report_dir = tmp_path / "webui"
    settings = direct(llm, users=3, requests_per_user=2)
    process = loadgen_proc("lg-webui", report_dir, **settings, headless="false", web_port=port)
    with process:
        process.wait_log("LLM summary", timeout=60)
        time.sleep(1.5)
        assert process.alive(), process.log()[-3000:]
        stats = requests.get(f"http://127.0.0.1:{port}/stats/requests", timeout=10).json()
        assert stats["state"] == "stopped"
        chat = next(s for s in stats["stats"] if s["name"] == "/chat/completions")
        assert chat["num_requests"] == 6
    summary = json.loads((report_dir / "llm-summary.json").read_text())
    assert summary["overall"]["requests"] == 6 and summary["gate"]["passed"]
    assert (report_dir / "locust.html").exists()


def test_stopping_an_idle_web_ui_keeps_the_last_report(llm, loadgen_proc, tmp_path):
    """`docker compose down` of a load generator that ran nothing must not blank the report."""
    port = free_port()
    report_dir = tmp_path / "idle"
    report_dir.mkdir()
    last = report_dir / "llm-summary.json"
    last.write_text('{"overall": {"requests": 42}}\n')
    settings = direct(llm, users=3, requests_per_user=2)
    process = loadgen_proc(
        "lg-idle", report_dir, **settings, headless="false", autostart="false", web_port=port
    )
    with process:
        process.wait_http(f"http://127.0.0.1:{port}/", timeout=60)
        assert process.stop() == 0, process.log()[-3000:]
    assert "no request was made" in process.log()
    assert json.loads(last.read_text()) == {"overall": {"requests": 42}}


def test_distributed_run_time_limit_keeps_in_flight_samples(llm, loadgen_proc, tmp_path):
    """At --run-time, workers finish their current request and send it before quitting."""
    before = served(llm)
    port = free_port()
    report_dir = tmp_path / "timed"
    shared = direct(
        llm, users=4, requests_per_user=0, run_time="4s", master_port=port, wait_seconds="0"
    )
    master = loadgen_proc("lg-master", report_dir, **shared, role="master", expect_workers=2)
    workers = [
        loadgen_proc(
            f"lg-worker-{i}",
            report_dir,
            api_key=llm.api_key,
            role="worker",
            master_host="127.0.0.1",
            master_port=port,
        )
        for i in range(2)
    ]
    with running(master, *workers):
        code = master.wait_exit(120)
        worker_codes = [w.wait_exit(30) for w in workers]
    assert code == 0 and worker_codes == [0, 0], master.log()[-4000:]
    assert "run time 4s reached" in master.log()
    summary = json.loads((report_dir / "llm-summary.json").read_text())
    assert summary["overall"]["requests"] == served_since(llm, before).total() > 8
    assert summary["overall"]["failed"] == 0
    assert summary["metadata"]["workers_reporting"] == [0, 1]
