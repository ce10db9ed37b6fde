"""The scorecard with the real load generator's llm-summary.json (its real schema), after a
bounded Locust run against the assistant, mock LLM and test collector."""

from __future__ import annotations

import json

import pytest
from scorecard_cli import run_scorecard

from harness.assistant import start_assistant
from harness.collector import start_collector, wait_until
from harness.loadgen import loadgen_env, loadgen_process
from harness.mock_llm import start_mock_llm

RUN_ID = "scorecard-loadgen-1"
MODELS = ("gpt-4o", "gpt-4o-mini", "gpt-4.1-mini", "o3-mini")


@pytest.fixture(scope="module")
def loadgen_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("scorecard-loadgen")
    report_dir = root / "reports"
    settings = {
        "users": 4,
        "requests_per_user": 4,
        "conversation_turns": "1-1",
        "feedback_rate": 0.5,
        "seed": 5,
        "run_id": RUN_ID,
        "model_weights": ",".join(f"{m}=1" for m in MODELS),
    }
    with (
        start_mock_llm(root, env={"MOCK_LLM_SEED": "5"}) as mock,
        start_collector(root) as collector,
        start_assistant(
            root, mock.base_url, otlp=collector.otlp_http, env={"ASSISTANT_LLM_MAX_RETRIES": "0"}
        ) as assistant,
    ):
        env = loadgen_env(report_dir, host=assistant.url, **settings)
        process = loadgen_process("loadgen", root, env)
        with process:
            process.wait_exit(180)
        summary = json.loads((report_dir / "llm-summary.json").read_text())
        expected = summary["overall"]["requests"]
        wait_until(
            lambda: (
                sum(
                    1
                    for s in collector.spans()
                    if s["kind"] == "CLIENT" and s["name"].startswith("chat ")
                )
                >= expected
            ),
            timeout=60,
        )
        wait_until(
            lambda: (
                sum(p["count"] for p in collector.metric_points("gen_ai.client.operation.duration"))
                >= expected
            ),
            timeout=60,
        )
    return collector.archive, report_dir / "llm-summary.json", summary, root


def test_scorecard_reads_the_real_loadgen_summary(loadgen_run):
    archive, summary_path, summary, root = loadgen_run
    run = run_scorecard(
        "--archive",
        str(archive),
        "--loadgen-summary",
        str(summary_path),
        "--min-requests",
        "1",
        out=root / "out",
    )
    assert run.returncode == 0, run.stderr
    report = run.report()
    assert report["input"]["loadgen_run_id"] == RUN_ID
    assert report["selection"]["method"].startswith("time window of the load run")
    assert sum(m["requests"] for m in report["models"].values()) == summary["overall"]["requests"]
    for model, entry in report["models"].items():
        client = summary["models"][model]
        assert entry["requests"] == client["requests"]
        assert entry["errors"] == client["failed"]
        rows = {(r["metric"], r["percentile"]): r for r in entry["client_vs_server"]}
        assert set(rows) == {(m, p) for m in ("TTFT", "E2E") for p in ("p50", "p90", "p99")}
        for p in ("p50", "p90", "p99"):
            assert rows[("E2E", p)]["client_ms"] == pytest.approx(client["e2e_ms"][p])
            assert rows[("TTFT", p)]["client_ms"] == pytest.approx(client["ttft_ms"][p])
        # the user waits at least as long as the server span lasts (minus clock noise)
        assert rows[("E2E", "p50")]["client_ms"] >= rows[("E2E", "p50")]["server_ms"] - 20
        # the latency the assistant added, as the load generator measured it (when it does)
        added = client.get("assistant_added_ms") or {}
        if (added.get("ttft") or {}).get("count"):
            assert entry["assistant_added"]["measured"] is True
            for figure in ("ttft", "e2e"):
                got = entry["assistant_added"]["client"][figure]
                assert got == {
                    k: pytest.approx(v) if v is not None else None
                    for k, v in (added[figure].items())
                }
            limit = report["assistant_added"]["limit_ms"]
            assert entry["assistant_added"]["flagged"] == (added["ttft"]["p99"] > limit)
        else:
            assert entry["assistant_added"]["measured"] is False
            assert "not measured" in entry["assistant_added"]["text"]
        assert entry["satisfaction"]["count"] == client["feedback"]["count"]
        # every rating of the load generator is simulated (synthetic_request=true), none real
        assert entry["satisfaction"]["synthetic"]["count"] == client["feedback"]["count"]
        assert entry["satisfaction"]["real"]["count"] == 0
        if client["feedback"]["count"]:
            # the loadgen's mean of 1-5 scores, normalised like the scorecard's
            mean = (client["feedback"]["mean_score"] - 1) / 4
            assert entry["satisfaction"]["mean"] == pytest.approx(mean, abs=0.001)
            assert entry["satisfaction"]["synthetic"]["mean"] == pytest.approx(mean, abs=0.001)
    assert summary["metadata"]["simulated_ratings"]["simulated"] is True
    assert report["ratings"]["synthetic"] == summary["overall"]["feedback"]["count"] > 0
    assert report["ratings"]["real"] == 0
    html = (root / "out" / "scorecard.html").read_text()
    assert "Client (load generator) vs server (telemetry)" in html


def test_run_id_selection_with_the_real_summary(loadgen_run):
    archive, summary_path, summary, root = loadgen_run
    run = run_scorecard(
        "--archive",
        str(archive),
        "--run-id",
        RUN_ID,
        "--loadgen-summary",
        str(summary_path),
        "--min-requests",
        "1",
        out=root / "by-run",
    )
    assert run.returncode == 0, run.stderr
    report = run.report()
    assert sum(m["requests"] for m in report["models"].values()) == summary["overall"]["requests"]
    other = run_scorecard(
        "--archive",
        str(archive),
        "--run-id",
        "some-other-run",
        "--loadgen-summary",
        str(summary_path),
        out=root / "other",
    )
    # the summary is of another run and no span carries the id: a clear error, no guess
    assert other.returncode == 3, other.stderr
    assert "some-other-run" in other.stderr and "Traceback" not in other.stderr
