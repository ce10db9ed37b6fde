"""The scorecard's checks on hand-built archives: --strict, the span-vs-metric consistency rows
and the latency the assistant added (from the archive and from the load generator summary)."""

from __future__ import annotations

import json

import pytest
from scorecard_archive_builder import BASE_NS, make_calls, write_archive
from scorecard_cli import pct, run_scorecard

RELAXED = ("--slo-error-rate", "0.2", "--slo-ttft-p90-ms", "5000", "--min-requests", "5")
EXIT_CHECKS_FAILED = 5
ADDED_FIELDS = ("count", "p50", "p90", "p95", "p99", "mean", "min", "max")


def added(p50: float, p99: float, count: int = 27) -> dict:
    """An assistant_added_ms distribution as the load generator writes it."""
    return {
        "count": count,
        "p50": p50,
        "p90": p99 * 0.9,
        "p95": p99 * 0.95,
        "p99": p99,
        "mean": p50,
        "min": 0.5,
        "max": p99 * 1.1,
    }


def summary_for(calls, path, ttft_shift_ms=0.0, assistant_added_ms=None, models=None) -> str:
    """A load generator summary of exactly these calls: the client saw the server's figures,
    plus `ttft_shift_ms` on TTFT; `assistant_added_ms` per model when given."""
    entries = {}
    for model in models or sorted({c.model for c in calls}):
        ok = [c for c in calls if c.model == model and c.error_type is None]
        ttft = [c.ttft_s * 1000 + ttft_shift_ms for c in ok]
        e2e = [int(c.server_s * 1e9) / 1e6 + 3 for c in ok]
        entry = {
            "requests": sum(1 for c in calls if c.model == model),
            "failed": sum(1 for c in calls if c.model == model and c.error_type),
            "ttft_ms": {f"p{p}": pct(ttft, p) for p in (50, 90, 99)},
            "e2e_ms": {f"p{p}": pct(e2e, p) for p in (50, 90, 99)},
        }
        if assistant_added_ms is not None and model in assistant_added_ms:
            entry["assistant_added_ms"] = assistant_added_ms[model]
        entries[model] = entry
    path.write_text(
        json.dumps(
            {
                "schema": "loadgen.llm-summary/1",
                "metadata": {"run_id": "checks-run"},
                "window": {
                    "first_start_s": min(c.start_ns for c in calls) / 1e9,
                    "last_end_s": max(c.start_ns + int(c.server_s * 1e9) for c in calls) / 1e9,
                },
                "models": entries,
            }
        )
    )
    return str(path)


def rows_by(report: dict) -> dict[tuple[str, str], dict]:
    return {(r["model"], r["figure"]): r for r in report["consistency"]["rows"]}


def test_consistent_data_passes_strict(tmp_path):
    calls = make_calls()
    archive = write_archive(tmp_path / "archive", calls)
    summary = summary_for(calls, tmp_path / "llm-summary.json", ttft_shift_ms=8)
    run = run_scorecard(
        "--archive", str(archive), "--loadgen-summary", summary, "--strict", *RELAXED, out=tmp_path
    )
    assert run.returncode == 0, run.stderr
    report = run.report()
    assert report["checks"] == {"strict": True, "passed": True, "failures": []}
    consistency = report["consistency"]
    assert consistency["checked"] is True and consistency["disagreements"] == 0
    assert consistency["notes"] == []
    rows = rows_by(report)
    for model in ("gpt-4o", "gpt-4o-mini", "o3-mini"):
        mine = [c for c in calls if c.model == model]
        ok = [c for c in mine if c.error_type is None]
        assert rows[(model, "LLM calls")]["spans"] == rows[(model, "LLM calls")]["metrics"]
        assert rows[(model, "LLM calls")]["spans"] == len(mine)  # failures too
        ttft = rows[(model, "TTFT mean")]
        assert ttft["spans"] == pytest.approx(sum(c.ttft_s for c in ok) / len(ok) * 1000)
        assert ttft["metrics"] == pytest.approx(ttft["spans"])
        assert ttft["tolerance"] == pytest.approx(max(2.0, 0.02 * ttft["metrics"]))
        assert rows[(model, "TTFT records")]["metrics"] == len(ok)
        duration = rows[(model, "LLM call duration mean")]
        assert duration["spans"] == pytest.approx(sum(c.chat_s for c in mine) / len(mine) * 1000)
        tokens = rows[(model, "Output tokens")]
        assert tokens["spans"] == tokens["metrics"] == sum(c.output_tokens for c in ok)
        assert not any(r["flagged"] for r in consistency["rows"] if r["model"] == model)
    md = (tmp_path / "scorecard.md").read_text()
    html = (tmp_path / "scorecard.html").read_text()
    assert "| DISAGREE |" not in md and ">DISAGREE<" not in html
    for text in (md, html):
        assert "Consistency (spans vs metrics)" in text
        assert "Checks: client vs server agree; spans vs metrics agree." in text


def test_tool_runs_in_the_duration_histogram_are_not_chat_calls(tmp_path):
    """The shop agent records its tool runs in gen_ai.client.operation.duration too (operation
    execute_tool): the chat figures and the span-vs-metric rows leave them out."""
    calls = make_calls()
    reports = []
    for name, tool_runs in (("plain", False), ("agent", True)):
        archive = write_archive(tmp_path / name / "archive", calls, tool_runs=tool_runs)
        run = run_scorecard("--archive", str(archive), "--strict", *RELAXED, out=tmp_path / name)
        assert run.returncode == 0, run.stderr
        reports.append(run.report())
    plain, agent = reports
    assert agent["consistency"]["disagreements"] == 0
    assert rows_by(agent) == rows_by(plain)
    assert agent["models"] == plain["models"]


def test_a_flagged_ttft_row_fails_strict_only(tmp_path):
    """The bug of the issue: the client sees ~150 ms more TTFT than the telemetry shows."""
    calls = make_calls()
    archive = write_archive(tmp_path / "archive", calls)
    summary = summary_for(calls, tmp_path / "llm-summary.json", ttft_shift_ms=150)
    args = ("--archive", str(archive), "--loadgen-summary", summary, *RELAXED)
    lenient = run_scorecard(*args, out=tmp_path / "lenient")
    assert lenient.returncode == 0, lenient.stderr
    report = lenient.report()
    assert report["checks"]["passed"] is False and report["checks"]["strict"] is False
    assert report["consistency"]["disagreements"] == 0  # the telemetry agrees with itself
    strict = run_scorecard(*args, "--strict", out=tmp_path / "strict")
    assert strict.returncode == EXIT_CHECKS_FAILED, strict.stderr
    assert "Traceback" not in strict.stderr
    assert "scorecard: strict:" in strict.stderr and "gpt-4o TTFT p50" in strict.stderr
    for path in ("scorecard.html", "scorecard.md", "scorecard.json"):
        assert (tmp_path / "strict" / path).exists()  # written before the exit
    failures = strict.report()["checks"]["failures"]
    assert failures and all("TTFT" in f for f in failures)
    # the report says what the disagreement means
    md = (tmp_path / "strict" / "scorecard.md").read_text()
    html = (tmp_path / "strict" / "scorecard.html").read_text()
    for text in (md, html):
        assert "A TTFT disagreement means: the client saw a TTFT the telemetry does not show" in (
            text.replace("&quot;", '"').replace("&#x27;", "'")
        )
        assert "do not trust the TTFT charts of this run" in text
    assert "E2E disagreement" not in md  # only the metrics that disagree are explained


def test_default_client_vs_server_tolerance_is_50_ms_or_10_percent(tmp_path):
    calls = make_calls()
    archive = write_archive(tmp_path / "archive", calls)
    summary = summary_for(calls, tmp_path / "llm-summary.json", ttft_shift_ms=60)
    run = run_scorecard(
        "--archive", str(archive), "--loadgen-summary", summary, *RELAXED, out=tmp_path
    )
    assert run.returncode == 0, run.stderr
    report = run.report()
    assert report["tolerance"] == {"pct": 10.0, "ms": 50.0}
    for model, entry in report["models"].items():
        for row in entry["client_vs_server"]:
            tolerance = max(50.0, 0.10 * row["server_ms"])
            assert row["tolerance_ms"] == pytest.approx(tolerance)
            assert row["flagged"] == (abs(row["diff_ms"]) > tolerance), (model, row)

    def ttft_p50(model: str) -> dict:
        rows = report["models"][model]["client_vs_server"]
        return next(r for r in rows if (r["metric"], r["percentile"]) == ("TTFT", "p50"))

    assert ttft_p50("gpt-4o-mini")["flagged"]  # 60 ms > 50 ms
    assert not ttft_p50("o3-mini")["flagged"]  # 60 ms < 10 % of ~1.3 s


def test_span_and_metric_ttft_disagreeing_is_flagged(tmp_path):
    """One path fixed and not the other: the histogram still times the role-only chunk."""
    calls = make_calls()
    for call in calls:
        if call.model == "gpt-4o":
            call.metric_ttft_s = 0.004
    archive = write_archive(tmp_path / "archive", calls)
    lenient = run_scorecard("--archive", str(archive), *RELAXED, out=tmp_path / "a")
    assert lenient.returncode == 0, lenient.stderr
    strict = run_scorecard("--archive", str(archive), "--strict", *RELAXED, out=tmp_path / "b")
    assert strict.returncode == EXIT_CHECKS_FAILED
    report = strict.report()
    rows = rows_by(report)
    bad = rows[("gpt-4o", "TTFT mean")]
    assert bad["flagged"] and bad["metrics"] == pytest.approx(4.0)
    assert bad["spans"] > 300
    assert not rows[("gpt-4o", "TTFT records")]["flagged"]  # same calls, different values
    assert [(r["model"], r["figure"]) for r in report["consistency"]["rows"] if r["flagged"]] == [
        ("gpt-4o", "TTFT mean")
    ]
    assert "gpt-4o TTFT mean: spans" in strict.stderr
    md = (tmp_path / "b" / "scorecard.md").read_text()
    assert "| gpt-4o | TTFT mean |" in md and "DISAGREE" in md
    assert "two records of the same thing differ" in md
    assert "a telemetry bug" in md


def test_lost_metric_records_are_flagged(tmp_path):
    calls = make_calls()
    lost = next(c for c in calls[10:] if c.model == "gpt-4o-mini" and c.error_type is None)
    lost.metric_lost = True
    archive = write_archive(tmp_path / "archive", calls, export_every_s=5)
    run = run_scorecard("--archive", str(archive), "--strict", *RELAXED, out=tmp_path)
    assert run.returncode == EXIT_CHECKS_FAILED
    flagged = {r["figure"]: r for r in run.report()["consistency"]["rows"] if r["flagged"]}
    assert set(flagged) >= {"LLM calls", "TTFT records", "Output token records", "Output tokens"}
    assert flagged["LLM calls"]["difference"] == -1
    assert flagged["Output tokens"]["difference"] == -lost.output_tokens
    assert all(r["model"] == "gpt-4o-mini" for r in flagged.values())


def test_a_window_cutting_an_export_interval_is_not_a_disagreement(tmp_path):
    """The metric points straddling the window's edge also hold calls outside it: those calls
    are compared too (a note says so), so the counts still match exactly."""
    calls = make_calls()
    archive = write_archive(tmp_path / "archive", calls, export_every_s=5)
    cut = calls[40].start_ns / 1e9
    run = run_scorecard(
        "--archive", str(archive), "--since", f"{cut:.9f}", "--strict", *RELAXED, out=tmp_path
    )
    assert run.returncode == 0, run.stderr
    report = run.report()
    assert sum(m["requests"] for m in report["models"].values()) == len(calls) - 40
    assert report["consistency"]["disagreements"] == 0
    assert any(
        "outside the selection share a metric export interval" in n
        for n in (report["consistency"]["notes"])
    )


def test_calls_after_the_last_metric_export_are_left_out_with_a_note(tmp_path):
    """Read right after a run: the last metric export is still to come. Not a disagreement."""
    calls = make_calls()
    # the last export: the last whole second before the 5th-last call ended
    last_export = BASE_NS + (calls[-5].end_ns - BASE_NS - 1) // 10**9 * 10**9
    archive = write_archive(
        tmp_path / "archive", calls, export_every_s=1, exported_until_ns=last_export
    )
    run = run_scorecard("--archive", str(archive), "--strict", *RELAXED, out=tmp_path)
    assert run.returncode == 0, run.stderr
    report = run.report()
    assert report["consistency"]["disagreements"] == 0
    notes = " ".join(report["consistency"]["notes"])
    assert "ended after the archive's last metric export" in notes
    assert "OTEL_METRIC_EXPORT_INTERVAL" in run.stderr
    pending = sum(1 for c in calls if c.end_ns > last_export and c.model == "o3-mini")
    assert pending >= 1
    rows = rows_by(report)
    assert rows[("o3-mini", "LLM calls")]["spans"] == 25 - pending


def test_without_metrics_nothing_is_checked_and_strict_passes(tmp_path):
    calls = make_calls()
    archive = write_archive(tmp_path / "archive", calls)
    (archive / "metrics.jsonl").unlink()
    run = run_scorecard("--archive", str(archive), "--strict", *RELAXED, out=tmp_path)
    assert run.returncode == 0, run.stderr
    consistency = run.report()["consistency"]
    assert consistency["checked"] is False and consistency["rows"] == []
    assert "no GenAI metric points" in consistency["notes"][0]
    assert "spans vs metrics not checked" in (tmp_path / "scorecard.md").read_text()


def test_strict_from_the_environment(tmp_path):
    calls = make_calls()
    archive = write_archive(tmp_path / "archive", calls)
    summary = summary_for(calls, tmp_path / "llm-summary.json", ttft_shift_ms=400)
    run = run_scorecard(
        "--archive",
        str(archive),
        "--loadgen-summary",
        summary,
        *RELAXED,
        out=tmp_path,
        env={"SCORECARD_STRICT": "1"},
    )
    assert run.returncode == EXIT_CHECKS_FAILED
    assert run.report()["checks"]["strict"] is True


def test_assistant_added_from_the_archive_and_not_measured_without_the_field(tmp_path):
    calls = make_calls()
    archive = write_archive(tmp_path / "archive", calls)
    summary = summary_for(calls, tmp_path / "llm-summary.json")  # an older summary: no field
    run = run_scorecard(
        "--archive", str(archive), "--loadgen-summary", summary, *RELAXED, out=tmp_path
    )
    assert run.returncode == 0, run.stderr
    report = run.report()
    for model, entry in report["models"].items():
        added_ = entry["assistant_added"]
        ok = [c for c in calls if c.model == model and c.error_type is None]
        # the builder's SERVER span lasts 4 ms longer than the chat span, which starts 1 ms in
        assert added_["server_spans"]["count"] == len(ok)
        assert added_["server_spans"]["p50"] == pytest.approx(4.0, abs=0.01)
        assert added_["server_spans"]["p99"] == pytest.approx(4.0, abs=0.01)
        assert added_["server_spans"]["before_call"]["p50"] == pytest.approx(1.0, abs=0.001)
        assert added_["measured"] is False and added_["flagged"] is False
        assert added_["client"] is None
        assert added_["text"].startswith("added TTFT not measured")
        assert "LOADGEN_TARGET=openai" in added_["text"]
    assert report["assistant_added"]["flagged_models"] == []
    assert not report["ranking"]["verdict"].startswith("This run measured the assistant")
    md = (tmp_path / "scorecard.md").read_text()
    assert "## Latency the assistant added" in md and "not measured" in md
    assert "Latency the assistant added" in (tmp_path / "scorecard.html").read_text()


def test_added_ttft_above_the_limit_says_the_run_measured_the_assistant(tmp_path):
    calls = make_calls()
    archive = write_archive(tmp_path / "archive", calls)
    summary = summary_for(
        calls,
        tmp_path / "llm-summary.json",
        assistant_added_ms={
            "gpt-4o": {"ttft": added(40, 180), "e2e": added(60, 400)},
            "gpt-4o-mini": {"ttft": added(3, 12), "e2e": added(5, 20)},
        },
    )
    run = run_scorecard(
        "--archive", str(archive), "--loadgen-summary", summary, "--strict", *RELAXED, out=tmp_path
    )
    assert run.returncode == 0, run.stderr  # a report statement, not a telemetry disagreement
    report = run.report()
    slow = report["models"]["gpt-4o"]["assistant_added"]
    assert slow["flagged"] is True and slow["measured"] is True
    assert slow["ttft_p99_ms"] == 180 and slow["limit_ms"] == 50
    assert slow["client"]["ttft"] == added(40, 180) and slow["client"]["e2e"] == added(60, 400)
    assert set(slow["client"]["ttft"]) == set(ADDED_FIELDS)
    assert "this run measured the assistant, not the model" in slow["text"]
    fast = report["models"]["gpt-4o-mini"]["assistant_added"]
    assert fast["flagged"] is False and "this run measured the model" in fast["text"]
    assert report["models"]["o3-mini"]["assistant_added"]["measured"] is False
    assert report["assistant_added"]["flagged_models"] == ["gpt-4o"]
    verdict = report["ranking"]["verdict"]
    assert verdict.startswith("This run measured the assistant, not the models")
    for advice in ("ASSISTANT_WORKERS", "LOADGEN_USERS", "LOADGEN_TARGET=openai"):
        assert advice in verdict
    assert "As measured: " in verdict
    assert verdict in run.stdout
    md = (tmp_path / "scorecard.md").read_text()
    html = (tmp_path / "scorecard.html").read_text()
    for text in (md, html):
        assert "ASSISTANT MEASURED" in text and "LOADGEN_TARGET=openai" in text
        assert "This run measured the assistant, not the models" in text
    # the limit is an option
    relaxed = run_scorecard(
        "--archive",
        str(archive),
        "--loadgen-summary",
        summary,
        *RELAXED,
        out=tmp_path / "relaxed",
        env={"SCORECARD_MAX_ADDED_TTFT_MS": "200"},
    )
    assert relaxed.returncode == 0, relaxed.stderr
    assert relaxed.report()["assistant_added"]["flagged_models"] == []
    flag = run_scorecard(
        "--archive",
        str(archive),
        "--loadgen-summary",
        summary,
        "--max-added-ttft-ms",
        "10",
        *RELAXED,
        out=tmp_path / "tight",
    )
    assert flag.report()["assistant_added"]["flagged_models"] == ["gpt-4o", "gpt-4o-mini"]


@pytest.mark.parametrize(
    "block",
    [
        {"ttft_ms": {"count": 5, "p50_ms": 1.0, "p99_ms": 80.0}},  # suffixed keys
        {"ttft": {"count": 5, "p50_s": 0.001, "p99_s": 0.08}},  # seconds
    ],
)
def test_assistant_added_is_read_tolerantly(tmp_path, block):
    calls = make_calls()
    archive = write_archive(tmp_path / "archive", calls)
    summary = summary_for(
        calls, tmp_path / "llm-summary.json", assistant_added_ms={"o3-mini": block}
    )
    run = run_scorecard(
        "--archive", str(archive), "--loadgen-summary", summary, *RELAXED, out=tmp_path
    )
    assert run.returncode == 0, run.stderr
    entry = run.report()["models"]["o3-mini"]["assistant_added"]
    assert entry["ttft_p99_ms"] == pytest.approx(80.0) and entry["flagged"] is True
    assert entry["client"]["ttft"]["p50"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "block", [None, {}, {"ttft": {"count": 0, "p50": None, "p99": None}}, {"ttft": "n/a"}]
)
def test_empty_assistant_added_is_not_measured(tmp_path, block):
    calls = make_calls()
    archive = write_archive(tmp_path / "archive", calls)
    summary = summary_for(
        calls, tmp_path / "llm-summary.json", assistant_added_ms={"gpt-4o": block}
    )
    run = run_scorecard(
        "--archive", str(archive), "--loadgen-summary", summary, *RELAXED, out=tmp_path
    )
    assert run.returncode == 0, run.stderr
    entry = run.report()["models"]["gpt-4o"]["assistant_added"]
    assert entry["measured"] is False and entry["client"] is None


@pytest.mark.parametrize(
    ("args", "message"), [(("--max-added-ttft-ms", "-1"), "--max-added-ttft-ms")]
)
def test_bad_added_limit(tmp_path, args, message):
    archive = write_archive(tmp_path / "archive", make_calls())
    run = run_scorecard("--archive", str(archive), *args, out=tmp_path)
    assert run.returncode == 2 and message in run.stderr
