"""The scorecard's agent turns on a real, bounded run: the mock LLM calling the tools, the
assistant with the shop agent on (a tool fault, a model that loops until the step limit, one
whose arguments break the schema) and the test collector. The figures are checked against what
the client saw (each turn's `done` event: steps, tool calls, tool errors, usage, time to the
answer) and against the raw spans as the collector harness parses them; the run passes
`--strict` (the agent spans agree with their children, the tool spans with their points)."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from scorecard_cli import SCORECARD_SRC, close, pct, run_scorecard

from harness.assistant import chat, start_assistant
from harness.collector import (
    metric_points_from_otlp,
    read_jsonl,
    spans_from_otlp,
    start_collector,
    wait_until,
)
from harness.mock_llm import start_mock_llm

FAST = "{ttft_ms: 5, tokens_per_s: 20000, output_tokens: {min: 3, mean: 5, max: 8}}"
PROFILES = f"""
defaults: {{rpm: 0, tpm: 0, tps_jitter: 0, itl_jitter: 0, ttft_jitter_ms: 0}}
models:
  gpt-4o-mini: {FAST}
  gpt-4o: {{<<: {FAST}, tools: {{malformed_arguments: 1.0}}}}
  gpt-4.1-mini: {{<<: {FAST}, faults: {{tool_call_loop: 1.0}}}}
"""
MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini")
MAX_STEPS = 3
QUESTIONS = (
    "Do you have the Splunk T-shirt in XL, and how long does shipping take?",
    "Where is my order 1042?",
    "What is your returns policy?",
    "Tell me a fun fact about observability.",
)
ROUNDS = 2
PRICES = json.loads((SCORECARD_SRC / "scorecard" / "data" / "prices.json").read_text())["models"]


def _docs(archive, signal):
    return read_jsonl(sorted(archive.glob(f"{signal}*.jsonl"), key=lambda p: p.stat().st_mtime))


@pytest.fixture(scope="module")
def agent_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("scorecard-agent-run")
    jobs = [(m, q) for _ in range(ROUNDS) for m in MODELS for q in QUESTIONS]
    env = {
        "ASSISTANT_AGENT": "true",
        "ASSISTANT_MODELS": ",".join(MODELS),
        "ASSISTANT_EVALUATIONS": "false",
        "ASSISTANT_AGENT_MAX_STEPS": str(MAX_STEPS),
        "ASSISTANT_TOOL_FAULTS": "check_inventory=error",
    }
    with (
        start_mock_llm(root, profiles=PROFILES) as mock,
        start_collector(root) as collector,
        start_assistant(root, mock.base_url, otlp=collector.otlp_http, env=env) as app,
    ):

        def ask(job):
            model, question = job
            result = chat(app.url, question, f"agent_{uuid.uuid4().hex[:16]}", model=model)
            assert result.status == 200, result.raw
            done = [data for event, data in result.events if event == "done"]
            assert len(done) == 1, result.raw
            return model, done[0]

        with ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(ask, jobs))

        def spans():
            return [s for d in _docs(collector.archive, "traces") for s in spans_from_otlp(d)]

        def complete() -> bool:
            found = spans()
            agents = [s for s in found if s["name"].startswith("invoke_agent ")]
            tools = [s for s in found if s["name"].startswith("execute_tool ")]
            points = [
                p
                for d in _docs(collector.archive, "metrics")
                for p in metric_points_from_otlp(d)
                if p["name"] == "gen_ai.client.operation.duration"
            ]
            tool_points = sum(
                p["count"]
                for p in points
                if p["attributes"].get("gen_ai.operation.name") == "execute_tool"
            )
            chats = sum(1 for s in found if s["kind"] == "CLIENT" and s["name"].startswith("chat"))
            chat_points = sum(
                p["count"] for p in points if p["attributes"].get("gen_ai.operation.name") == "chat"
            )
            return (
                len(agents) == len(jobs)
                and tool_points >= len(tools)
                and chat_points >= chats
                and all(s["end_ns"] for s in found)
            )

        wait_until(complete, timeout=60, interval=0.5)
    out = root / "out"
    run = run_scorecard("--archive", str(collector.archive), "--strict", out=out)
    return answers, spans(), run


def test_agent_run_passes_strict_and_agrees_with_the_clients_done_events(agent_run):
    answers, _, run = agent_run
    assert run.returncode == 0, run.stderr
    report = run.report()
    assert report["checks"]["passed"] is True, report["checks"]
    assert report["agents"]["models"] == sorted(MODELS)
    for model in MODELS:
        done = [d for m, d in answers if m == model]
        block = report["models"][model]["agents"]
        assert block["answers"] == len(done) == ROUNDS * len(QUESTIONS)
        assert block["failed"] == 0
        assert block["tool_calls"] == sum(d["tool_calls"] for d in done)
        assert block["tool_errors"] == sum(d["tool_errors"] for d in done)
        assert close(block["steps_per_answer"], sum(d["steps"] for d in done) / len(done))
        limited = sum(1 for d in done if d["finish_reason"] == "max_steps")
        assert block["step_limit_answers"] == limited
        answer_ms = [d["time_to_answer_ms"] for d in done if d["time_to_answer_ms"] is not None]
        assert block["time_to_answer_ms"]["count"] == len(answer_ms)
        for p in (50, 90):
            got = block["time_to_answer_ms"][f"p{p}"]
            assert close(got, pct(answer_ms, p), abs_=1e-3) if answer_ms else got is None
        usage = [d["usage"] for d in done if d["usage"]]
        assert close(
            block["output_tokens_per_answer"], sum(u["output_tokens"] for u in usage) / len(usage)
        )
        price = PRICES[model]
        cost = sum(
            (u["input_tokens"] * price["input"] + u["output_tokens"] * price["output"]) / 1e6
            for u in usage
        )
        assert close(block["cost_per_answer_usd"], cost / len(done), abs_=1e-12)
    # what the profiles make happen, so the figures above are not all zeros
    mini, malformed, looping = (report["models"][m]["agents"] for m in MODELS)
    assert looping["step_limit_answers"] > 0 and looping["tool_calls"] > 0
    # the step-limit message is the answer those turns give: timed like any other
    assert looping["time_to_answer_ms"]["count"] == looping["answers"]
    assert malformed["tool_error_rate"] == 1.0
    assert mini["step_limit_rate"] == 0.0 and mini["tool_calls_per_answer"] > 0
    assert mini["time_to_answer_ms"]["count"] == len(QUESTIONS) * ROUNDS
    # the faulted tool fails every run, the others never do (the draw is random: no rate)
    faulted = mini["tools"].pop("check_inventory")
    assert faulted["calls"] > 0 and faulted["error_rate"] == 1.0
    assert mini["tools"] and all(tool["errors"] == 0 for tool in mini["tools"].values())


def test_agent_run_tools_and_checks_match_the_raw_spans(agent_run):
    _, spans, run = agent_run
    report = run.report()
    agents = {s["span_id"]: s for s in spans if s["name"].startswith("invoke_agent ")}
    tools = [s for s in spans if s["parent_span_id"] in agents and s["name"].startswith("execute")]
    chats = [s for s in spans if s["parent_span_id"] in agents and s["kind"] == "CLIENT"]
    tool_rows = {
        (r["model"], r["figure"]): r
        for r in report["consistency"]["rows"]
        if r["figure"].startswith("Tool calls ")
    }
    for model in MODELS:
        mine = [t for t in tools if agents[t["parent_span_id"]]["attributes"][
            "gen_ai.request.model"] == model]  # fmt: skip
        by_tool: dict[str, list[dict]] = {}
        for span in mine:
            by_tool.setdefault(span["attributes"]["gen_ai.tool.name"], []).append(span)
        shown = report["models"][model]["agents"]["tools"]
        assert set(shown) == set(by_tool)
        for name, runs in by_tool.items():
            ok = [
                (s["end_ns"] - s["start_ns"]) / 1e6
                for s in runs
                if "error.type" not in s["attributes"]
            ]
            assert shown[name]["calls"] == len(runs)
            assert shown[name]["errors"] == len(runs) - len(ok)
            if ok:
                assert close(shown[name]["duration_ms"]["p90"], pct(ok, 90), abs_=1e-6)
            row = tool_rows[(model, f"Tool calls {name}")]
            assert row["spans"] == row["metrics"] == len(runs) and not row["flagged"]
        rows = {
            r["figure"]: r for r in report["agents"]["consistency"]["rows"] if r["model"] == model
        }
        steps = rows["Agent steps vs chat spans"]
        children = [c for c in chats if agents[c["parent_span_id"]]["attributes"][
            "gen_ai.request.model"] == model]  # fmt: skip
        assert steps["agent"] == steps["children"] == len(children) and not steps["flagged"]
        tokens = rows["Agent input tokens vs chat spans"]
        expected = sum(c["attributes"].get("gen_ai.usage.input_tokens", 0) for c in children)
        assert tokens["agent"] == tokens["children"] == expected and not tokens["flagged"]
