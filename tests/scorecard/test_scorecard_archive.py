"""The scorecard on a hand-built OTLP JSON archive: figures, ranking, selection, bad input."""

from __future__ import annotations

import gzip
import json
import shutil

import pytest
from scorecard_archive_builder import (
    FakeCall,
    log_lines,
    make_calls,
    metric_lines,
    span_lines,
    write_archive,
)
from scorecard_cli import close, pct, run_scorecard

PRICES = {  # the shipped table, per 1M tokens
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "o3-mini": (1.10, 4.40),
}
RELAXED = ("--slo-error-rate", "0.2", "--slo-ttft-p90-ms", "5000", "--min-requests", "5")


@pytest.fixture
def calls() -> list[FakeCall]:
    return make_calls()


@pytest.fixture
def archive(tmp_path, calls):
    return write_archive(tmp_path / "archive", calls)


def test_figures_match_an_independent_computation(tmp_path, archive, calls):
    run = run_scorecard("--archive", str(archive), *RELAXED, out=tmp_path / "out")
    assert run.returncode == 0, run.stderr
    report = run.report()
    assert set(report["models"]) == {"gpt-4o", "gpt-4o-mini", "o3-mini"}
    for model, entry in report["models"].items():
        mine = [c for c in calls if c.model == model]
        ok = [c for c in mine if c.error_type is None]
        assert entry["requests"] == len(mine)
        assert entry["errors"] == len(mine) - len(ok)
        assert entry["error_rate"] == pytest.approx((len(mine) - len(ok)) / len(mine))
        expected_errors: dict[str, int] = {}
        for c in mine:
            if c.error_type:
                expected_errors[c.error_type] = expected_errors.get(c.error_type, 0) + 1
        assert entry["errors_by_type"] == expected_errors
        # span durations are written in whole ns; compare to 1 microsecond
        e2e = [int(c.server_s * 1e9) / 1e6 for c in ok]
        ttft = [c.ttft_s * 1000 for c in ok]
        for p in (50, 90, 99):
            assert close(entry["e2e_ms"][f"p{p}"], pct(e2e, p), abs_=1e-3), (model, p)
            assert close(entry["ttft_ms"][f"p{p}"], pct(ttft, p), abs_=1e-3), (model, p)
        assert entry["e2e_ms"]["source"] == "SERVER span"
        rates = [c.output_tokens / (int(c.chat_s * 1e9) / 1e9) for c in ok]
        assert close(entry["output_tokens_per_s"]["median"], statistics_median(rates), rel=1e-6)
        inputs = [c.input_tokens for c in ok]
        outputs = [c.output_tokens for c in ok]
        assert close(entry["input_tokens_per_request"], sum(inputs) / len(inputs))
        assert close(entry["output_tokens_per_request"], sum(outputs) / len(outputs))
        price_in, price_out = PRICES[model]
        cost = (sum(inputs) * price_in + sum(outputs) * price_out) / 1e6 / len(mine) * 1000
        assert close(entry["cost_per_1k_requests_usd"], cost)
        scores = [(c.score - 1) / 4 for c in mine if c.score is not None]
        assert entry["satisfaction"]["count"] == len(scores)
        assert close(entry["satisfaction"]["mean"], sum(scores) / len(scores))
        low, high = entry["satisfaction"]["ci_low"], entry["satisfaction"]["ci_high"]
        assert 0 <= low < entry["satisfaction"]["mean"] < high <= 1
        # the metric view agrees with the spans where it is exact (means, counts)
        metrics = entry["metrics"]
        assert metrics["duration_ms"]["count"] == len(ok)
        assert close(metrics["output_tokens_per_request"], sum(outputs) / len(outputs))
        assert close(metrics["satisfaction_mean"], sum(scores) / len(scores))
        # a histogram estimate lies inside the bucket holding the true percentile
        assert 0.5 * pct(ttft, 90) <= metrics["ttft_ms"]["p90"] <= 2 * pct(ttft, 90)


def statistics_median(values):
    import statistics

    return statistics.median(values)


def test_outputs_are_written_and_self_contained(tmp_path, archive):
    run = run_scorecard("--archive", str(archive), *RELAXED, out=tmp_path / "out")
    assert run.returncode == 0, run.stderr
    html = (tmp_path / "out" / "scorecard.html").read_text()
    md = (tmp_path / "out" / "scorecard.md").read_text()
    for model in ("gpt-4o", "gpt-4o-mini", "o3-mini"):
        assert f'data-model="{model}"' in html
        assert f"### {model}" in md
    assert html.count('<section class="model"') == 3
    assert html.count("<svg") >= 8  # 5 overview plots + one histogram per model
    for forbidden in ("<script", "http://cdn", "https://cdn", "<link ", 'src="http'):
        assert forbidden not in html
    for title in (
        "End-to-end latency distribution",
        "TTFT by model",
        "Output tokens/s",
        "Cost vs satisfaction",
        "Errors over time",
    ):
        assert title in html
    assert "Best fit" in md or "Too close" in md


def test_ranking_follows_the_weights(tmp_path, archive):
    speed = run_scorecard(
        "--archive",
        str(archive),
        *RELAXED,
        "--weights",
        "latency=1,cost=0,satisfaction=0",
        out=tmp_path / "a",
    )
    cost = run_scorecard(
        "--archive",
        str(archive),
        *RELAXED,
        "--weights",
        "latency=0,cost=1,satisfaction=0",
        out=tmp_path / "b",
    )
    happy = run_scorecard(
        "--archive",
        str(archive),
        *RELAXED,
        "--min-ratings",
        "3",
        "--weights",
        "latency=0,cost=0,satisfaction=1",
        out=tmp_path / "c",
    )
    for run in (speed, cost, happy):
        assert run.returncode == 0, run.stderr
    models = speed.report()["models"]
    fastest = min(models, key=lambda m: models[m]["e2e_ms"]["p90"])
    cheapest = min(models, key=lambda m: models[m]["cost_per_1k_requests_usd"])
    happiest = max(models, key=lambda m: models[m]["satisfaction"]["mean"])
    assert speed.report()["ranking"]["ranked"][0]["model"] == fastest == "gpt-4o-mini"
    assert cost.report()["ranking"]["ranked"][0]["model"] == cheapest == "gpt-4o-mini"
    assert happy.report()["ranking"]["ranked"][0]["model"] == happiest
    top = speed.report()["ranking"]["ranked"][0]
    assert top["score"] == pytest.approx(1.0)
    assert top["reasons"] and "E2E p90" in top["reasons"][0]


def test_slo_misses_are_marked_and_ranked_apart(tmp_path, archive):
    run = run_scorecard(
        "--archive",
        str(archive),
        "--min-requests",
        "5",
        "--slo-error-rate",
        "0.2",
        "--slo-ttft-p90-ms",
        "1000",
        out=tmp_path / "o",
    )
    assert run.returncode == 0, run.stderr
    ranking = run.report()["ranking"]
    assert [m["model"] for m in ranking["slo_misses"]] == ["o3-mini"]
    assert "TTFT p90" in ranking["slo_misses"][0]["missed"][0]
    assert "o3-mini" not in [r["model"] for r in ranking["ranked"]]
    assert run.report()["models"]["o3-mini"]["slo_met"] is False
    assert "MISSED" in (tmp_path / "o" / "scorecard.md").read_text()


def test_too_few_data_is_said_plainly(tmp_path, archive):
    run = run_scorecard("--archive", str(archive), "--min-requests", "1000", out=tmp_path / "o")
    assert run.returncode == 0, run.stderr
    assert run.report()["ranking"]["verdict"].startswith("Too few data to decide")
    assert "Too few data to decide" in run.stdout


def test_time_window_selects_calls(tmp_path, archive, calls):
    cut = calls[40].start_ns / 1e9
    run = run_scorecard(
        "--archive", str(archive), "--since", f"{cut:.9f}", *RELAXED, out=tmp_path / "o"
    )
    assert run.returncode == 0, run.stderr
    report = run.report()
    assert sum(m["requests"] for m in report["models"].values()) == len(calls) - 40
    assert report["selection"]["method"] == "time window"


def test_run_id_selects_traces_and_falls_back_to_the_summary_window(tmp_path, calls):
    for call in calls[:50]:
        call.run_id = "run-a"
    tagged = write_archive(tmp_path / "tagged", calls)
    run = run_scorecard("--archive", str(tagged), "--run-id", "run-a", *RELAXED, out=tmp_path / "a")
    assert run.returncode == 0, run.stderr
    assert sum(m["requests"] for m in run.report()["models"].values()) == 50
    # no span carries the id: without a summary, a clear error; with one, its time window
    untagged = write_archive(tmp_path / "untagged", make_calls())
    missing = run_scorecard("--archive", str(untagged), "--run-id", "run-b", out=tmp_path / "b")
    assert missing.returncode == 3
    assert "run-b" in missing.stderr and "--since" in missing.stderr
    assert "Traceback" not in missing.stderr
    window = [c.start_ns / 1e9 for c in make_calls()[:30]]
    summary = tmp_path / "llm-summary.json"
    summary.write_text(
        json.dumps(
            {
                "schema": "loadgen.llm-summary/1",
                "metadata": {"run_id": "run-b"},
                "window": {"first_start_s": window[0], "last_end_s": window[-1]},
                "models": {"gpt-4o": {"requests": 30, "ttft_ms": {"p50": 1}, "e2e_ms": {"p50": 1}}},
            }
        )
    )
    fallback = run_scorecard(
        "--archive",
        str(untagged),
        "--run-id",
        "run-b",
        "--loadgen-summary",
        str(summary),
        *RELAXED,
        out=tmp_path / "c",
    )
    assert fallback.returncode == 0, fallback.stderr
    report = fallback.report()
    assert "time window of the load run" in report["selection"]["method"]
    assert any("run-b" in note for note in report["selection"]["notes"])
    assert 25 <= report["models"]["gpt-4o"]["requests"] <= 30


def test_client_and_server_latencies_side_by_side(tmp_path, archive, calls):
    server = [c.ttft_s * 1000 for c in calls if c.model == "gpt-4o" and c.error_type is None]
    e2e = [int(c.server_s * 1e9) / 1e6 for c in calls if c.model == "gpt-4o" and not c.error_type]
    summary = tmp_path / "llm-summary.json"
    summary.write_text(
        json.dumps(
            {
                "schema": "loadgen.llm-summary/1",
                "metadata": {"run_id": "r1"},
                "models": {
                    "gpt-4o": {
                        "requests": 30,
                        "failed": 3,
                        "ttft_ms": {
                            "p50": pct(server, 50) + 5,
                            "p90": pct(server, 90) + 400,
                            "p99": None,
                        },
                        "e2e_ms": {
                            "p50": pct(e2e, 50) + 20,
                            "p90": pct(e2e, 90) + 30,
                            "p99": pct(e2e, 99),
                        },
                    }
                },
            }
        )
    )
    run = run_scorecard(
        "--archive",
        str(archive),
        "--loadgen-summary",
        str(summary),
        *RELAXED,
        "--tolerance-ms",
        "100",
        "--tolerance-pct",
        "25",
        out=tmp_path / "o",
    )
    assert run.returncode == 0, run.stderr
    rows = {
        (r["metric"], r["percentile"]): r
        for r in run.report()["models"]["gpt-4o"]["client_vs_server"]
    }
    assert rows[("TTFT", "p50")]["flagged"] is False
    assert rows[("TTFT", "p90")]["flagged"] is True  # 400 ms > max(100 ms, 25 %)
    assert ("TTFT", "p99") not in rows
    assert rows[("E2E", "p90")]["flagged"] is False
    assert rows[("E2E", "p50")]["diff_ms"] == pytest.approx(20, abs=1e-6)
    html = (tmp_path / "o" / "scorecard.html").read_text()
    assert "Client (load generator) vs server (telemetry)" in html and "DISAGREE" in html
    assert "no entry for this model" in json.dumps(run.report()["models"]["o3-mini"]["notes"])


def test_rotated_gzipped_and_truncated_files(tmp_path, calls):
    folder = tmp_path / "archive"
    folder.mkdir()
    first, second = span_lines(calls)
    rotated = folder / "traces-2026-11-26T17-00-00.000.jsonl.gz"
    with gzip.open(rotated, "wt") as handle:
        handle.write(json.dumps(first) + "\n")
    live = json.dumps(second) + "\n" + json.dumps(first)[:200]  # a partial last write
    (folder / "traces.jsonl").write_text(live)
    (folder / "metrics.jsonl").write_text(json.dumps(metric_lines(calls)[0]) + "\n")
    (folder / "logs.jsonl").write_text(json.dumps(log_lines(calls)[0]) + "\n")
    run = run_scorecard("--archive", str(folder), *RELAXED, out=tmp_path / "o")
    assert run.returncode == 0, run.stderr
    report = run.report()
    assert sum(m["requests"] for m in report["models"].values()) == len(calls)
    assert report["input"]["truncated_lines"] == [f"{folder / 'traces.jsonl'}:2"]
    assert "truncated last line" in run.stderr
    assert report["input"]["files"] == 4


@pytest.mark.parametrize(
    ("content", "code", "message"),
    [
        (None, 3, "holds no telemetry files"),
        ("", 3, "is empty"),
        ('{"resourceSpans": []}\n', 3, "is empty"),
        ('{"foo": 1}\n', 4, "unknown schema"),
        ("[1, 2]\n", 4, "unknown schema"),
        (
            '{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "x"}]}]}]}\n',
            4,
            "unknown schema",
        ),
        (
            '{"resourceSpans": [{"schemaUrl": "https://opentelemetry.io/schemas/2.0.0"}]}\n',
            4,
            "unknown schema version",
        ),
        ('{"resourceSpans": []}\nnot json\n{"resourceSpans": []}\n', 4, "corrupt line"),
        (
            '{"resourceSpans": [{"resource": {"attributes": '
            '[{"key": "a", "value": {"intValue": "x"}}]}}]}\n',
            4,
            "unknown schema",
        ),
    ],
)
def test_bad_input_is_a_clear_message_not_a_traceback(tmp_path, content, code, message):
    folder = tmp_path / "archive"
    folder.mkdir()
    if content is not None:
        (folder / "traces.jsonl").write_text(content)
    run = run_scorecard("--archive", str(folder), out=tmp_path / "o")
    assert run.returncode == code, (run.stdout, run.stderr)
    assert message in run.stderr
    assert run.stderr.startswith("scorecard: error: ")
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "o" / "scorecard.json").exists()


def test_corrupt_lines_can_be_skipped_and_are_counted(tmp_path, calls):
    folder = write_archive(tmp_path / "archive", calls)
    traces = folder / "traces.jsonl"
    lines = traces.read_text().splitlines()
    traces.write_text(lines[0] + "\n{broken\n" + lines[1] + "\n")
    failed = run_scorecard("--archive", str(folder), out=tmp_path / "a")
    assert failed.returncode == 4 and f"{traces}:2" in failed.stderr
    assert "--skip-corrupt" in failed.stderr
    run = run_scorecard("--archive", str(folder), "--skip-corrupt", *RELAXED, out=tmp_path / "b")
    assert run.returncode == 0, run.stderr
    assert run.report()["input"]["corrupt_lines"] == [f"{traces}:2"]
    assert "corrupt" in run.stderr


def test_binary_and_missing_inputs(tmp_path, archive):
    (archive / "traces.jsonl").write_bytes(b"\xff\xfe\x00garbage\n")
    run = run_scorecard("--archive", str(archive), out=tmp_path / "a")
    assert run.returncode == 4 and "not UTF-8" in run.stderr
    missing = run_scorecard("--archive", str(tmp_path / "nope"), out=tmp_path / "b")
    assert missing.returncode == 3 and "archive not found" in missing.stderr
    bad_summary = tmp_path / "s.json"
    bad_summary.write_text('{"schema": "loadgen.llm-summary/9", "models": {}}')
    good = write_archive(tmp_path / "good", make_calls())
    run = run_scorecard(
        "--archive", str(good), "--loadgen-summary", str(bad_summary), out=tmp_path / "c"
    )
    assert run.returncode == 4 and "unknown schema version" in run.stderr


def test_no_chat_spans_is_explained(tmp_path, calls):
    folder = tmp_path / "archive"
    folder.mkdir()
    only_server = span_lines(calls)[0]
    spans = only_server["resourceSpans"][0]["scopeSpans"][0]["spans"]
    only_server["resourceSpans"][0]["scopeSpans"][0]["spans"] = [s for s in spans if s["kind"] == 2]
    (folder / "traces.jsonl").write_text(json.dumps(only_server) + "\n")
    run = run_scorecard("--archive", str(folder), out=tmp_path / "o")
    assert run.returncode == 3 and "no LLM calls" in run.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--weights", "speed=1"), "unknown weight 'speed'"),
        (("--weights", "latency=0,cost=0,satisfaction=0,quality=0"), "at least one weight"),
        (("--weights", "latency=0,cost=0,satisfaction=0", "--weight-quality", "0"), "at least one"),
        (("--weights", "quality=2", "--weight-quality", "1"), "use one of them"),
        (("--weight-quality", "-1"), "--weight-quality"),
        (("--min-evaluations", "0"), "--min-evaluations"),
        (("--since", "yesterday-ish"), "--since"),
        (("--slo-error-rate", "2"), "--slo-error-rate"),
        (("--since", "2026-11-26T18:00:00Z", "--until", "2026-11-26T17:00:00Z"), "before --until"),
    ],
)
def test_bad_flags(tmp_path, archive, args, message):
    run = run_scorecard("--archive", str(archive), *args, out=tmp_path / "o")
    assert run.returncode == 2
    assert message in run.stderr and "Traceback" not in run.stderr


def test_env_fallbacks_and_price_override(tmp_path, archive, calls):
    prices = tmp_path / "prices.json"
    prices.write_text(
        json.dumps({"as_of": "2030-01-01", "models": {"gpt-4o": {"input": 0, "output": 1}}})
    )
    run = run_scorecard(
        "--archive",
        str(archive),
        "--min-requests",
        "5",
        out=tmp_path / "o",
        env={
            "SCORECARD_PRICES": str(prices),
            "SCORECARD_SLO_ERROR_RATE": "0.01",
            "SCORECARD_WEIGHTS": "latency=3",
        },
    )
    assert run.returncode == 0, run.stderr
    report = run.report()
    outputs = [c.output_tokens for c in calls if c.model == "gpt-4o" and c.output_tokens]
    assert close(
        report["models"]["gpt-4o"]["cost_per_1k_requests_usd"], sum(outputs) / 1e6 / 30 * 1000
    )
    assert report["prices"]["as_of"] == "2030-01-01"
    assert report["slo"]["error_rate"] == 0.01
    assert report["ranking"]["weights"] == {
        "latency": 3.0,
        "cost": 1.0,
        "satisfaction": 1.0,
        "quality": 1.0,
    }
    assert len(report["ranking"]["slo_misses"]) == 3  # 8-10 % errors > 1 %


def test_works_when_copied_elsewhere(tmp_path, archive):
    """The archive may be a single file too (e.g. a copied traces.jsonl plus nothing else)."""
    single = tmp_path / "one.jsonl"
    shutil.copy(archive / "traces.jsonl", single)
    run = run_scorecard("--archive", str(single), *RELAXED, out=tmp_path / "o")
    assert run.returncode == 0, run.stderr
    assert run.report()["models"]["gpt-4o"]["satisfaction"]["count"] == 0
    assert run.report()["models"]["gpt-4o"]["metrics"]["duration_ms"] is None


def test_a_summary_of_another_run_is_not_compared(tmp_path, archive, calls):
    summary = tmp_path / "llm-summary.json"
    summary.write_text(
        json.dumps(
            {
                "schema": "loadgen.llm-summary/1",
                "metadata": {"run_id": "old-run"},
                "window": {"first_start_s": 1_000_000_000.0, "last_end_s": 1_000_000_060.0},
                "models": {
                    "gpt-4o": {"requests": 3, "ttft_ms": {"p50": 1.0}, "e2e_ms": {"p50": 2.0}}
                },
            }
        )
    )
    run = run_scorecard(
        "--archive", str(archive), "--loadgen-summary", str(summary), *RELAXED, out=tmp_path / "o"
    )
    assert run.returncode == 0, run.stderr
    report = run.report()
    assert sum(m["requests"] for m in report["models"].values()) == len(calls)
    assert report["selection"]["method"] == "whole archive"
    assert "no LLM calls in this archive" in report["selection"]["notes"][0]
    assert all(m["client_vs_server"] == [] for m in report["models"].values())
