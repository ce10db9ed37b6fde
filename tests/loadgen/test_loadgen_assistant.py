"""The default target: the real assistant (gunicorn) in front of the real mock LLM, with the test
collector receiving the assistant's telemetry, all on 127.0.0.1."""

from __future__ import annotations

import csv
from collections import Counter

import pytest

from harness.assistant import start_assistant
from harness.collector import start_collector


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
    with (run.report_dir / "locust_stats.csv").open() as handle:
        rows = {(r["Type"], r["Name"]): r for r in csv.DictReader(handle)}
    assert int(rows[("POST", "/api/feedback")]["Request Count"]) == len(rated)
    assert int(rows[("POST", "/api/feedback")]["Failure Count"]) == 0
    assert int(rows[("POST", "/api/chat")]["Request Count"]) == 30
    print(
        f"\nassistant run: {overall['requests']} chats, TTFT p50 {overall['ttft_ms']['p50']} ms, "
        f"{len(rated)} ratings, mean score {overall['feedback']['mean_score']}"
    )
