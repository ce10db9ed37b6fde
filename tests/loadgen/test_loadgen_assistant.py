"""The default target: the real assistant (gunicorn) in front of the real mock LLM, with the test
collector receiving the assistant's telemetry, all on 127.0.0.1."""

from __future__ import annotations

import csv
from collections import Counter

import pytest

from harness.assistant import start_assistant
from harness.collector import start_collector
from loadgen.config import load_config
from loadgen.feedback import feedback_score
from loadgen.plan import UserPlanner
from loadgen.prompts import load_prompt_set
from loadgen.stats import Slo


@pytest.fixture
def stack(llm, tmp_path):
    with (
        start_collector(tmp_path / "collector", mode="local") as collector,
        start_assistant(
            tmp_path / "assistant",
            llm.base_url,
            otlp=collector.otlp_grpc,
            # one upstream call per chat, so the mock's count is the assistant's count too
            env={"ASSISTANT_LLM_MAX_RETRIES": "0"},
        ) as assistant,
    ):
        yield assistant, collector


def chat_server_spans(collector) -> list[dict]:
    return [
        span
        for span in collector.spans()
        if span["kind"] == "SERVER"
        and (
            span["attributes"].get("http.route") == "/api/chat"
            or span["name"].endswith("/api/chat")
        )
    ]


def server_spans(collector, route: str) -> list[dict]:
    return [
        span
        for span in collector.spans()
        if span["kind"] == "SERVER"
        and (span["attributes"].get("http.route") == route or span["name"].endswith(route))
    ]


def locust_rows(run) -> dict:
    with (run.report_dir / "locust_stats.csv").open() as handle:
        return {(r["Type"], r["Name"]): r for r in csv.DictReader(handle)}


def upstream_served(llm) -> int:
    """Chats the mock answered with 200 (its counters survive /admin/reset: use differences)."""
    return int(
        sum(
            llm.metric("mock_llm_requests_total", model=m, status="200")
            for m in ("gpt-4o", "gpt-4o-mini", "gpt-4.1-mini", "o3-mini")
        )
    )


def test_assistant_mode_conversations_feedback_and_trace_context(llm, stack, run_loadgen):
    assistant, collector = stack
    before = upstream_served(llm)
    run = run_loadgen(
        "assistant",
        host=assistant.url,
        users=10,
        requests_per_user=3,
        conversation_turns="1-3",
        feedback_rate=0.5,
        seed=3,
        run_id="assistant-run-1",
        max_error_rate=0.0,
    )
    assert run.exit_code == 0, run.log()[-3000:]
    summary = run.summary
    overall = summary["overall"]
    assert overall["requests"] == 30 and overall["failed"] == 0, overall["errors_by_kind"]
    samples = run.samples
    assert len(samples) == 30

    # the assistant served exactly what the load generator counted
    assert upstream_served(llm) - before == 30
    spans = collector.wait_until(lambda: (s := chat_server_spans(collector)) and len(s) >= 30 and s)
    assert len(spans) == 30

    # every request's traceparent was honoured: the app reports and exports our trace ids
    sent = {s["trace_id"] for s in samples}
    assert all(s["app_trace_id"] == s["trace_id"] for s in samples)
    assert {span["trace_id"] for span in spans} == sent
    assert all(s["response_id"].startswith("resp_") for s in samples)

    # multi-turn: each user's conversations number 1.., turns 1..3
    for sample in samples:
        assert 1 <= sample["turn"] <= 3
    assert max(Counter((s["user"], s["conversation"]) for s in samples).values()) <= 3

    # feedback: a seeded share of answers was rated, each accepted (204) by the assistant
    rated = [s for s in samples if s["feedback_score"] is not None]
    assert overall["feedback"]["count"] == len(rated) > 0
    assert all(1 <= s["feedback_score"] <= 5 for s in rated)
    rows = locust_rows(run)
    assert int(rows[("POST", "/api/feedback")]["Request Count"]) == len(rated)
    assert int(rows[("POST", "/api/feedback")]["Failure Count"]) == 0
    assert int(rows[("POST", "/api/chat")]["Request Count"]) == 30
    ratings = summary["metadata"]["simulated_ratings"]
    assert ratings["simulated"] is True and ratings["rate_explicit"] is True
    assert ratings["sent"] == len(rated) and ratings["llm_backend"] == "mock"

    # each rating is what the user observed, with the user's seeded mood: recomputed here from
    # the sample (no model name involved) and the same seeded plan, it is the one sent
    config = load_config({"LOADGEN_FEEDBACK_RATE": "0.5", "LOADGEN_CONVERSATION_TURNS": "1-3"})
    slo = Slo(config.slo_ttft_ms, config.slo_tpot_ms, config.slo_e2e_ms)
    for sample in samples:
        planner = UserPlanner(
            seed=3,
            worker_index=sample["worker"],
            user_index=sample["user"],
            models=config.models,
            weights=config.weights,
            prompts=load_prompt_set(),
            turns=config.turns,
            wait_s=(0.0, 0.05),
            feedback_rate=0.5,
        )
        plan = [planner.next() for _ in range(sample["seq"])][-1]
        assert plan.prompt.id == sample["prompt_id"]
        assert sample["answer_coverage"] is not None and 0 <= sample["answer_coverage"] <= 1
        if plan.give_feedback:
            assert sample["feedback_score"] == feedback_score(sample, slo, plan.feedback_noise)
        else:
            assert sample["feedback_score"] is None
    print(
        f"\nassistant run: {overall['requests']} chats, TTFT p50 {overall['ttft_ms']['p50']} ms, "
        f"{len(rated)} ratings, mean score {overall['feedback']['mean_score']}"
    )


def test_no_simulated_ratings_against_a_real_backend_unless_the_rate_is_set(
    llm, stack, run_loadgen
):
    """LOADGEN_LLM_BACKEND (compose sets it when OPENAI_API_KEY or OPENAI_BASE_URL is set) says
    the assistant's model is not the mock: without LOADGEN_FEEDBACK_RATE, no rating is sent."""
    assistant, collector = stack
    run = run_loadgen(
        "real-backend",
        host=assistant.url,
        users=4,
        requests_per_user=3,
        seed=3,
        llm_backend="https://api.openai.com/v1",
        run_id="real-backend-1",
        max_error_rate=0.0,
    )
    assert run.exit_code == 0, run.log()[-3000:]
    summary = run.summary
    assert summary["overall"]["requests"] == 12 and summary["overall"]["failed"] == 0
    ratings = summary["metadata"]["simulated_ratings"]
    assert ratings["simulated"] is False and ratings["rate"] == 0.0 and ratings["sent"] == 0
    assert (
        ratings["rate_explicit"] is False and ratings["llm_backend"] == "https://api.openai.com/v1"
    )
    assert "not the mock LLM" in ratings["reason"]
    assert summary["metadata"]["settings"]["feedback_rate"] == 0.0
    assert summary["overall"]["feedback"]["count"] == 0
    assert all(s["feedback_score"] is None for s in run.samples)
    assert "- feedback: no simulated ratings" in (run.report_dir / "llm-summary.md").read_text()
    assert "simulated ratings: none" in run.log()
    # Locust sent no feedback request, and the assistant received none
    rows = locust_rows(run)
    assert int(rows[("POST", "/api/chat")]["Request Count"]) == 12
    assert ("POST", "/api/feedback") not in rows
    collector.wait_until(lambda: len(server_spans(collector, "/api/chat")) >= 12)
    assert server_spans(collector, "/api/feedback") == []
