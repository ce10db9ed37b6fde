"""The shop agent end to end: the assistant under gunicorn (ASSISTANT_AGENT=true), the real mock
LLM calling the tools, and the real test collector. Ground truth: the mock's request log (the
tool calls it sent, what it grounded its answer on) and the seeded shop data."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import yaml

from harness.assistant import chat, start_assistant
from harness.mock_llm import start_mock_llm
from harness.prereq import ROOT

SHOP = json.loads(
    (ROOT / "services/assistant/src/assistant/agent/data/shop.json").read_text("utf-8")
)
FAST = "{ttft_ms: 0, tokens_per_s: 100000, output_tokens: {min: 3, mean: 5, max: 8}}"
PROFILES = f"""
defaults: {{rpm: 0, tpm: 0, tps_jitter: 0, itl_jitter: 0, ttft_jitter_ms: 0}}
models:
  gpt-4o-mini: {FAST}
  gpt-4o: {{<<: {FAST}, tools: {{malformed_arguments: 1.0}}}}
  gpt-4.1-mini: {{<<: {FAST}, faults: {{tool_call_loop: 1.0}}}}
"""
MODELS = "gpt-4o-mini,gpt-4o,gpt-4.1-mini"
MAX_STEPS = 3
QUESTION = "Do you have the Splunk T-shirt in XL, and how long does shipping take?"


@pytest.fixture(scope="module")
def tool_mock(log_dir):
    with start_mock_llm(log_dir, profiles=PROFILES) as mock:
        yield mock


def running_agent(log_dir, mock, collector, **settings):
    """The assistant with the shop agent on (and the judge off), plus `settings`."""
    env = {"ASSISTANT_AGENT": "true", "ASSISTANT_MODELS": MODELS, "ASSISTANT_EVALUATIONS": "false"}
    return start_assistant(
        log_dir, mock.base_url, otlp=collector.otlp_http, env={**env, **settings}
    )


@pytest.fixture(scope="module")
def agent(log_dir, tool_mock, collector):
    with running_agent(
        log_dir, tool_mock, collector, ASSISTANT_AGENT_MAX_STEPS=str(MAX_STEPS)
    ) as app:
        yield app


@pytest.fixture(scope="module")
def faulty_agent(log_dir, tool_mock, collector):
    """Tool faults and content capture on: the workshop's settings."""
    settings = {
        "ASSISTANT_TOOL_FAULTS": "get_order_status=error",
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_ONLY",
    }
    with running_agent(log_dir, tool_mock, collector, **settings) as app:
        yield app


def ask(app, message: str, model: str = "gpt-4o-mini"):
    result = chat(app.url, message, f"agent_{uuid.uuid4().hex[:16]}", model=model)
    assert result.status == 200, result.raw
    kinds = [event for event, _ in result.events]
    assert kinds[0] == "start" and kinds[-1] == "done", kinds
    assert set(kinds[1:-1]) <= {"delta", "tool_call", "tool_result"}, kinds
    return result


def mock_log(mock, trace_id: str) -> list[dict]:
    response = requests.get(f"{mock.url}/admin/requests", params={"trace_id": trace_id}, timeout=10)
    response.raise_for_status()
    return response.json()["requests"]


def trace_spans(collector, trace_id: str, count: int) -> list[dict]:
    def spans():
        mine = [s for s in collector.spans() if s["trace_id"] == trace_id]
        agents = [s for s in mine if s["name"].startswith("invoke_agent")]
        return mine if agents and len(mine) >= count else None

    return collector.wait_until(spans, timeout=30)


def children(spans: list[dict], parent: dict, prefix: str) -> list[dict]:
    found = [
        s
        for s in spans
        if s["parent_span_id"] == parent["span_id"] and s["name"].startswith(prefix)
    ]
    return sorted(found, key=lambda s: s["start_ns"])


def test_a_shop_question_runs_parallel_tools_and_answers_from_their_results(
    agent, tool_mock, collector
):
    result = ask(agent, QUESTION)
    start, done = result.first("start"), result.first("done")
    calls = [data for event, data in result.events if event == "tool_call"]
    results = [data for event, data in result.events if event == "tool_result"]
    assert [c["name"] for c in calls] == ["check_inventory", "get_policy"]
    assert [(r["id"], r["name"], r["ok"], r["error"]) for r in results] == [
        (c["id"], c["name"], True, None) for c in calls
    ]
    assert all("arguments" not in r for r in results)  # no content capture
    # tool events come before the answer's deltas
    kinds = [event for event, _ in result.events]
    assert kinds.index("delta") > max(i for i, k in enumerate(kinds) if k == "tool_result")
    assert done["finish_reason"] == "stop"
    assert (done["steps"], done["tool_calls"], done["tool_errors"]) == (2, 2, 0)
    assert 0 < done["ttft_ms"] < done["time_to_answer_ms"] <= done["duration_ms"]

    # ground truth: the mock's log of the two model calls of this trace
    log = mock_log(tool_mock, start["trace_id"])
    assert len(log) == 2
    first, second = log
    sent = first["tools"]["calls"]
    assert [(c["id"], c["name"]) for c in sent] == [(c["id"], c["name"]) for c in calls]
    assert json.loads(sent[0]["arguments"]) == {"product": "t-shirt", "size": "XL"}
    assert json.loads(sent[1]["arguments"]) == {"topic": "shipping"}
    assert second["tools"]["grounded"] is True
    assert second["tools"]["grounded_on"] == [c["id"] for c in calls]
    # grounding: the answer quotes the seeded facts the tools returned
    answer = result.text
    assert SHOP["policies"]["shipping"] in answer
    for product in SHOP["products"]:
        if product["kind"] == "t-shirt":
            assert product["name"] in answer
    assert f"The in stock is {SHOP['products'][1]['stock']['XL']}." in answer

    # the span tree: invoke_agent -> chat, execute_tool x2, chat, in this order
    spans = trace_spans(collector, start["trace_id"], 6)
    (server,) = [s for s in spans if s["kind"] == "SERVER"]
    (turn,) = [s for s in spans if s["name"] == "invoke_agent shop-assistant"]
    assert turn["parent_span_id"] == server["span_id"] and turn["kind"] == "INTERNAL"
    chats = children(spans, turn, "chat ")
    tools = children(spans, turn, "execute_tool ")
    assert [s["name"] for s in chats] == ["chat gpt-4o-mini"] * 2
    assert [s["name"] for s in tools] == ["execute_tool check_inventory", "execute_tool get_policy"]
    assert chats[0]["end_ns"] <= tools[0]["start_ns"] <= tools[0]["end_ns"] <= tools[1]["start_ns"]
    assert tools[1]["end_ns"] <= chats[1]["start_ns"] and chats[1]["end_ns"] <= turn["end_ns"]
    attrs = turn["attributes"]
    assert attrs["gen_ai.operation.name"] == "invoke_agent"
    assert attrs["gen_ai.agent.name"] == "shop-assistant"
    assert attrs["gen_ai.conversation.id"] == chats[0]["attributes"]["gen_ai.conversation.id"]
    assert attrs["assistant.agent.steps"] == 2
    # the span's time to answer is the done event's (ms, rounded to 3 decimals)
    assert round(attrs["assistant.agent.time_to_answer"] * 1000, 3) == done["time_to_answer_ms"]
    for key in ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"):
        assert attrs[key] == sum(s["attributes"][key] for s in chats) > 0
    assert done["usage"] == {
        "input_tokens": attrs["gen_ai.usage.input_tokens"],
        "output_tokens": attrs["gen_ai.usage.output_tokens"],
    }
    # each chat span's usage is what the mock counted for that call
    for span, entry in zip(chats, log, strict=True):
        assert span["attributes"]["gen_ai.response.id"] == entry["completion_id"]
        assert span["attributes"]["gen_ai.usage.output_tokens"] == entry["tokens_sent"]
    assert chats[0]["attributes"]["gen_ai.response.finish_reasons"] == ["tool_calls"]
    for span, call in zip(tools, calls, strict=True):
        a = span["attributes"]
        assert a["gen_ai.operation.name"] == "execute_tool"
        assert (a["gen_ai.tool.name"], a["gen_ai.tool.call.id"]) == (call["name"], call["id"])
        assert a["gen_ai.tool.type"] == "function" and a["gen_ai.tool.description"]
        assert a["gen_ai.request.model"] == "gpt-4o-mini"
        assert span["status_code"] == "UNSET" and "error.type" not in a
        assert "gen_ai.tool.call.arguments" not in a and "gen_ai.tool.call.result" not in a


def test_orders_that_exist_and_that_do_not(agent):
    order = next(o for o in SHOP["orders"] if o["id"] == "1042")
    known = ask(agent, "Where is my order 1042?")
    (result,) = [d for e, d in known.events if e == "tool_result"]
    assert (result["name"], result["summary"]) == ("get_order_status", "order found: shipped")
    assert order["tracking"] in known.text and order["carrier"] in known.text
    unknown = ask(agent, "What is the status of order #7777?")
    (result,) = [d for e, d in unknown.events if e == "tool_result"]
    assert result["ok"] is True and result["summary"] == "no such order"
    assert "No order with this number." in unknown.text


def test_a_question_without_a_tool_intent_is_one_model_call(agent, collector):
    result = ask(agent, "Tell me a fun fact about observability.")
    done = result.first("done")
    assert (done["steps"], done["tool_calls"]) == (1, 0)
    assert done["time_to_answer_ms"] == pytest.approx(done["ttft_ms"], abs=5)
    spans = trace_spans(collector, result.first("start")["trace_id"], 3)
    (turn,) = [s for s in spans if s["name"].startswith("invoke_agent")]
    assert [s["name"] for s in children(spans, turn, "")] == ["chat gpt-4o-mini"]


def test_malformed_arguments_are_a_tool_error_the_model_recovers_from(agent, tool_mock, collector):
    result = ask(agent, "Where is my order 1042?", model="gpt-4o")
    start, done = result.first("start"), result.first("done")
    (tool,) = [d for e, d in result.events if e == "tool_result"]
    assert (tool["ok"], tool["error"]) == (False, "invalid_json")
    log = mock_log(tool_mock, start["trace_id"])
    assert log[0]["tools"]["arguments_valid"] == [False]  # the mock did send broken JSON
    assert done["finish_reason"] == "stop" and done["tool_errors"] == 1
    assert "invalid_json" in result.text  # the grounded answer reports the tool's error
    spans = trace_spans(collector, start["trace_id"], 5)
    (span,) = [s for s in spans if s["name"] == "execute_tool get_order_status"]
    assert span["status_code"] == "ERROR" and span["attributes"]["error.type"] == "invalid_json"

    def error_points():
        points = [
            p
            for p in collector.metric_points("gen_ai.client.operation.duration")
            if p["attributes"].get("gen_ai.operation.name") == "execute_tool"
            and p["attributes"].get("error.type") == "invalid_json"
        ]
        return points or None

    point = collector.wait_until(error_points, timeout=30)[0]
    assert point["attributes"]["gen_ai.tool.name"] == "get_order_status"
    assert point["attributes"]["gen_ai.request.model"] == "gpt-4o"


def test_the_step_limit_ends_a_tool_call_loop_with_a_clear_message(agent, tool_mock, collector):
    result = ask(agent, "Where is my order 1042?", model="gpt-4.1-mini")
    start, done = result.first("start"), result.first("done")
    assert done["finish_reason"] == "max_steps" and done["steps"] == MAX_STEPS
    assert 0 < done["ttft_ms"] < done["time_to_answer_ms"]  # when the limit's message came
    assert f"limit of {MAX_STEPS} steps" in result.text
    log = mock_log(tool_mock, start["trace_id"])
    assert len(log) == MAX_STEPS  # never more model calls than the limit
    assert all(entry["tools"]["calls"] for entry in log)
    results = [d for e, d in result.events if e == "tool_result"]
    ran = MAX_STEPS - 1  # the last step's calls are reported, not run
    assert [r["error"] for r in results] == [None] * ran + ["not_run"]
    spans = trace_spans(collector, start["trace_id"], 2 * MAX_STEPS)
    (turn,) = [s for s in spans if s["name"].startswith("invoke_agent")]
    assert turn["attributes"]["assistant.agent.stop_reason"] == "max_steps"
    assert turn["status_code"] == "UNSET"
    assert len(children(spans, turn, "chat ")) == MAX_STEPS
    assert len(children(spans, turn, "execute_tool ")) == ran


def test_an_injected_tool_fault_is_visible_and_explained(faulty_agent, collector):
    result = ask(faulty_agent, "Where is my order 1042?")
    start, done = result.first("start"), result.first("done")
    (tool,) = [d for e, d in result.events if e == "tool_result"]
    assert (tool["ok"], tool["error"]) == (False, "tool_fault")
    assert json.loads(tool["arguments"]) == {"order_id": "1042"}  # content capture is on
    assert done["finish_reason"] == "stop" and "tool_fault" in result.text
    spans = trace_spans(collector, start["trace_id"], 5)
    (span,) = [s for s in spans if s["name"] == "execute_tool get_order_status"]
    assert span["attributes"]["error.type"] == "tool_fault" and span["status_code"] == "ERROR"
    assert json.loads(span["attributes"]["gen_ai.tool.call.arguments"]) == {"order_id": "1042"}
    assert "gen_ai.tool.call.result" not in span["attributes"]  # only on success
    ok = ask(faulty_agent, "What is your returns policy?")
    spans = trace_spans(collector, ok.first("start")["trace_id"], 5)
    (span,) = [s for s in spans if s["name"] == "execute_tool get_policy"]
    result_json = json.loads(span["attributes"]["gen_ai.tool.call.result"])
    assert result_json == {"topic": "returns", "policy": SHOP["policies"]["returns"]}
    # the chat span's captured input carries the tool call and its result as semconv parts
    (second,) = [
        s
        for s in spans
        if s["name"].startswith("chat ")
        and '"tool_call_response"' in s["attributes"].get("gen_ai.input.messages", "")
    ]
    messages = json.loads(second["attributes"]["gen_ai.input.messages"])
    call_part = messages[-2]["parts"][1]
    response_part = messages[-1]["parts"][1]
    assert call_part["type"] == "tool_call" and call_part["name"] == "get_policy"
    assert response_part == {
        "type": "tool_call_response",
        "id": call_part["id"],
        "result": span["attributes"]["gen_ai.tool.call.result"],
    }


def judged(app, response_id: str, session: str, timeout_s: float = 30.0) -> dict[str, float]:
    """The judge's scores of one answer (the badge endpoint), once it is no longer pending."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = requests.get(
            f"{app.url}/api/evaluations/{response_id}",
            headers={"X-Session-Id": session},
            timeout=10,
        )
        response.raise_for_status()
        result = response.json()
        if result["status"] != "pending":
            assert result["status"] == "done", result
            return {e["name"]: e["score"] for e in result["evaluations"]}
        assert time.monotonic() < deadline, result
        time.sleep(0.1)


def shipped_profiles_made_fast() -> str:
    """The shipped profiles with every timing instant: the tool traits (illustrative, per model)
    stay as shipped."""
    path = ROOT / "services/mock-llm/src/mock_llm/profiles.yaml"
    document = yaml.safe_load(path.read_text("utf-8"))
    for profile in document["models"].values():
        profile.update(ttft_ms=0, ttft_jitter_ms=0, tokens_per_s=100000)
        profile["output_tokens"] = {"min": 3, "mean": 5, "max": 8}
    document["defaults"].update(rpm=0, tpm=0)
    return yaml.safe_dump(document)


TURNS_PER_MODEL = 120


def test_the_models_tool_slips_follow_their_profiles(log_dir, collector):
    """A seeded bake-off of order questions: for every turn, what the assistant reports (a tool
    error, the first tool called, the steps) is exactly what the mock's log says it did (its
    traits), the judge's tool_call_correctness fails exactly the turns with a wrong tool or
    broken arguments, and each model's slip rates match its profile within three standard
    errors."""
    profiles = shipped_profiles_made_fast()
    models = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "o3-mini")
    traits = {m: yaml.safe_load(profiles)["models"][m]["tools"] for m in models}
    with (
        start_mock_llm(log_dir, env={"MOCK_LLM_SEED": "7"}, profiles=profiles) as mock,
        running_agent(
            log_dir,
            mock,
            collector,
            ASSISTANT_MODELS=",".join(models),
            ASSISTANT_EVALUATIONS="true",
        ) as app,
    ):
        jobs = [(m, i) for m in models for i in range(TURNS_PER_MODEL)]

        def turn(job):
            model, i = job
            session = f"agent_{uuid.uuid4().hex[:16]}"
            result = chat(app.url, f"Where is my order {1000 + i}?", session, model=model)
            assert result.status == 200 and result.events[-1][0] == "done", result.raw
            verdict = judged(app, result.first("start")["response_id"], session)
            log = mock_log(mock, result.first("start")["trace_id"])
            return model, result, [e for e in log if e["model"] == model], verdict

        with ThreadPoolExecutor(8) as pool:
            turns = list(pool.map(turn, jobs))
    seen = {m: {"wrong_tool": 0, "malformed_arguments": 0, "extra_step": 0} for m in models}
    for model, result, log, verdict in turns:
        done = result.first("done")
        results = [d for e, d in result.events if e == "tool_result"]
        assert len(log) == done["steps"]
        first = log[0]["tools"]
        assert [r["name"] for r in results[: len(first["calls"])]] == [
            c["name"] for c in first["calls"]
        ]
        # per model call: the mock's slips in that call are what the assistant ran
        by_step: dict[int, list[dict]] = {}
        for r in results:
            by_step.setdefault(r["step"], []).append(r)
        for step, entry in enumerate(log[:-1], start=1):
            valid = entry["tools"]["arguments_valid"]
            errors = [r["error"] == "invalid_json" for r in by_step[step]]
            assert errors == [not v for v in valid], (model, step, entry["tools"], by_step[step])
        first_slips = log[0]["tools"]["traits"]
        wrong = results[0]["name"] != "get_order_status"
        assert wrong == ("wrong_tool" in first_slips), (model, first_slips, results)
        assert done["tool_errors"] == sum(1 for r in results if not r["ok"])
        extra = any("extra_step" in entry["tools"]["traits"] for entry in log)
        assert (done["steps"] == 3) == extra, (model, done)
        assert done["finish_reason"] == "stop"
        broken = any("wrong_tool" in e["tools"]["traits"] for e in log) or any(
            r["error"] == "invalid_json" for r in results
        )
        assert verdict["tool_call_correctness"] == (0 if broken else 1), (model, log, verdict)
        # the rates: the first call's slips, and an extra step anywhere in the turn
        seen[model]["wrong_tool"] += "wrong_tool" in first_slips
        seen[model]["malformed_arguments"] += "malformed_arguments" in first_slips
        seen[model]["extra_step"] += extra
    incorrect = {
        m: sum(1 for t in turns if t[0] == m and not t[3]["tool_call_correctness"]) for m in models
    }
    print(f"judged tool_call_correctness failures of {TURNS_PER_MODEL} turns: {incorrect}")
    assert all(incorrect[m] > 0 for m in ("gpt-4o-mini", "gpt-4.1-mini"))
    print("tool slips per turn (observed / profile):")
    for model in models:
        print(
            f"  {model:13}",
            ", ".join(
                f"{t} {n / TURNS_PER_MODEL:.3f}/{traits[model][t]}" for t, n in seen[model].items()
            ),
        )
    for model in models:
        for trait, count in seen[model].items():
            p = traits[model][trait]
            observed = count / TURNS_PER_MODEL
            bound = 3 * math.sqrt(p * (1 - p) / TURNS_PER_MODEL) + 1 / TURNS_PER_MODEL
            assert abs(observed - p) <= bound, (model, trait, observed, p)


def test_the_workshops_trace_tree_prints_the_agent_turn(agent, collector, tmp_path):
    """docs/workshop.md exercise 4c: its trace_tree.py, run as written on the archive, prints
    the turn's span tree (server, invoke_agent, chat, execute_tool x2, chat)."""
    guide = (ROOT / "docs/workshop.md").read_text("utf-8")
    section = guide.split("## 4c.", 1)[1]
    script = section.split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "trace_tree.py").write_text(script)
    (tmp_path / "telemetry").mkdir()
    (tmp_path / "telemetry" / "archive").symlink_to(collector.archive)
    result = ask(agent, QUESTION)
    trace_id = result.first("start")["trace_id"]
    trace_spans(collector, trace_id, 6)
    printed = subprocess.run(
        [sys.executable, "trace_tree.py", trace_id],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    tree = [
        ((len(line) - len(line.lstrip())) // 2, line.strip().split("  ")[0])
        for line in printed.splitlines()
    ]
    assert [(depth, name) for depth, name in tree if name != "POST"] == [
        (0, "POST /api/chat"),
        (1, "invoke_agent shop-assistant"),
        (2, "chat gpt-4o-mini"),
        (2, "execute_tool check_inventory"),
        (2, "execute_tool get_policy"),
        (2, "chat gpt-4o-mini"),
    ], printed
