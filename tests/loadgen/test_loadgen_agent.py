"""Agent turns in the load generator: the parser on hand-written shop-agent streams, the summary's
`agent` block against an independent computation, the shop prompts against the real agent, and a
real Locust run against the real assistant (ASSISTANT_AGENT=true) backed by the real mock LLM,
checked request by request against the mock's ground truth (its request log per trace)."""

from __future__ import annotations

import json
import statistics
import uuid

import pytest
import requests

from harness.assistant import chat, start_assistant
from harness.collector import start_collector
from harness.mock_llm import start_mock_llm
from harness.prereq import ROOT
from loadgen.config import load_config
from loadgen.prompts import load_prompt_set
from loadgen.report import build_report, render_markdown
from loadgen.stats import Slo, summarize
from loadgen.streaming import EMPTY, MALFORMED, StreamParser

SHOP = json.loads(
    (ROOT / "services/assistant/src/assistant/agent/data/shop.json").read_text("utf-8")
)


def event(kind: str, data: dict) -> list[str]:
    return [f"event: {kind}", "data: " + json.dumps(data), ""]


def feed(parser: StreamParser, blocks: list[tuple[float, list[str]]]) -> StreamParser:
    """Feed SSE events, each block's lines arriving at its time (ms)."""
    for at_ms, lines in blocks:
        for line in lines:
            parser.feed(line + "\n", at_ms)
    return parser


START = event("start", {"response_id": "resp_1", "trace_id": "a" * 32, "model": "gpt-4o-mini"})


def call(step: int, index: int, call_id: str, name: str = "check_inventory") -> list[str]:
    return event("tool_call", {"step": step, "index": index, "id": call_id, "name": name})


def result(step: int, call_id: str, ok: bool = True, error: str | None = None) -> list[str]:
    data = {
        "step": step,
        "id": call_id,
        "name": "check_inventory",
        "duration_ms": 0.4,
        "ok": ok,
        "summary": "XL: in stock for 2 of 3 product(s)" if ok else "not run",
        "error": error,
    }
    return event("tool_result", data)


def done(finish="stop", steps=2, calls=2, errors=0, to_answer=301.5, ttft=95.0) -> list[str]:
    data = {
        "finish_reason": finish,
        "usage": {"input_tokens": 120, "output_tokens": 40},
        "ttft_ms": ttft,
        "duration_ms": 420.0,
        "time_to_answer_ms": to_answer,
        "steps": steps,
        "tool_calls": calls,
        "tool_errors": errors,
    }
    return event("done", data)


# --- the parser -------------------------------------------------------------------------------


def test_ttft_is_the_first_tool_call_and_answer_ms_the_first_delta():
    parser = feed(
        StreamParser("assistant"),
        [
            (1.0, START),
            (100.0, call(1, 0, "call_a")),
            (104.0, call(1, 1, "call_b", "get_policy")),
            (150.0, result(1, "call_a")),
            (151.0, result(1, "call_b")),
            (310.0, event("delta", {"text": "The"})),
            (330.0, event("delta", {"text": ""})),  # no text: not an output event
            (350.0, event("delta", {"text": " hoodie"})),
            (420.0, done(errors=1)),
        ],
    )
    assert parser.outcome(200) is None
    assert parser.ttft_ms == 100.0  # the first tool_call, not the first delta
    assert parser.answer_ms == 310.0
    assert parser.tool_call_ms == [100.0, 104.0]
    assert parser.content_ms == [310.0, 350.0]  # text gaps only: ITL/TPOT stay the answer's
    assert parser.tool_results == 2
    assert (parser.steps, parser.tool_calls, parser.tool_errors) == (2, 2, 1)
    assert parser.server_time_to_answer_ms == 301.5 and parser.server_ttft_ms == 95.0
    assert (parser.input_tokens, parser.output_tokens) == (120, 40)
    assert parser.text == "The hoodie"


def test_text_before_a_tool_call_is_the_first_output():
    parser = feed(
        StreamParser("assistant"),
        [
            (1.0, START),
            (80.0, event("delta", {"text": "Let me check."})),
            (90.0, call(1, 0, "call_a")),
            (120.0, result(1, "call_a")),
            (250.0, event("delta", {"text": " In stock."})),
            (260.0, done(steps=2, calls=1)),
        ],
    )
    assert parser.outcome(200) is None
    assert parser.ttft_ms == 80.0 and parser.answer_ms == 80.0
    assert parser.tool_call_ms == [90.0] and parser.content_ms == [80.0, 250.0]


def test_a_turn_ended_by_the_step_limit():
    limit = "I could not finish looking this up: I reached my limit of 3 steps."
    parser = feed(
        StreamParser("assistant"),
        [
            (1.0, START),
            (50.0, call(1, 0, "call_1")),
            (60.0, result(1, "call_1")),
            (110.0, call(2, 0, "call_2")),
            (120.0, result(2, "call_2")),
            (170.0, call(3, 0, "call_3")),
            (171.0, result(3, "call_3", ok=False, error="not_run")),
            (172.0, event("delta", {"text": limit})),
            (173.0, done(finish="max_steps", steps=3, calls=2, to_answer=None)),
        ],
    )
    assert parser.outcome(200) is None  # the user got an answer: not an error
    assert parser.finish_reason == "max_steps"
    assert parser.ttft_ms == 50.0 and parser.answer_ms == 172.0
    assert parser.tool_call_ms == [50.0, 110.0, 170.0] and parser.tool_results == 3
    # the done event counts the calls that ran (the last step's was reported, not run)
    assert (parser.steps, parser.tool_calls, parser.tool_errors) == (3, 2, 0)
    assert parser.server_time_to_answer_ms is None  # the assistant's: no model answer


@pytest.mark.parametrize(
    "blocks",
    [
        # a result for an id no tool_call announced
        [(1.0, START), (50.0, call(1, 0, "call_a")), (60.0, result(1, "call_zz"))],
        # a result before its call
        [(1.0, START), (50.0, result(1, "call_a")), (60.0, call(1, 0, "call_a"))],
        # a result without an id
        [(1.0, START), (50.0, event("tool_result", {"step": 1, "ok": True}))],
        # an id that is not a string
        [(1.0, START), (50.0, call(1, 0, "call_a")), (60.0, event("tool_result", {"id": []}))],
        # a call without an id
        [(1.0, START), (50.0, event("tool_call", {"step": 1, "index": 0, "name": "x"}))],
    ],
    ids=["unknown-id", "result-first", "result-no-id", "result-list-id", "call-no-id"],
)
def test_a_tool_result_without_its_tool_call_is_malformed(blocks):
    parser = feed(StreamParser("assistant"), blocks)
    assert parser.malformed
    # even if the stream then ended well
    feed(parser, [(100.0, event("delta", {"text": "ok"})), (110.0, done())])
    assert parser.outcome(200) == MALFORMED


def test_tool_calls_without_any_text_are_an_empty_answer():
    parser = feed(
        StreamParser("assistant"),
        [(1.0, START), (40.0, call(1, 0, "call_a")), (90.0, done(finish="length", steps=1))],
    )
    assert parser.ttft_ms == 40.0 and parser.answer_ms is None
    assert parser.outcome(200) == EMPTY


def test_without_the_agent_the_fields_stay_none_and_ttft_is_the_first_delta():
    plain = {"finish_reason": "stop", "usage": None, "ttft_ms": 20.0, "duration_ms": 50.0}
    parser = feed(
        StreamParser("assistant"),
        [
            (1.0, START),
            (30.0, event("delta", {"text": "Hi"})),
            (45.0, event("delta", {"text": "!"})),
            (50.0, event("done", plain)),
        ],
    )
    assert parser.outcome(200) is None
    assert parser.ttft_ms == 30.0 == parser.answer_ms and parser.tool_call_ms == []
    assert (parser.steps, parser.tool_calls, parser.tool_errors) == (None, None, None)
    assert parser.server_time_to_answer_ms is None


# --- the summary's agent block ----------------------------------------------------------------


def agent_sample(model, start, ttft, answer, steps, calls, errors, finish="stop", error=None):
    """A sample as locust_app builds it from an agent stream (tool calls from `ttft` on)."""
    content = [answer + 10.0 * i for i in range(5)] if error is None else []
    return {
        "model": model,
        "error_kind": error,
        "start_s": start,
        "ttft_ms": ttft,
        "answer_ms": answer if error is None else None,
        "tool_call_ms": [ttft + i for i in range(calls)],
        "e2e_ms": (content[-1] if content else ttft) + 5.0,
        "content_ms": content,
        "input_tokens": 100,
        "output_tokens": 30 if error is None else None,
        "finish_reason": finish if error is None else None,
        "steps": steps,
        "tool_calls": calls,
        "tool_errors": errors,
    }


def plain_sample(model, start, ttft):
    content = [ttft + 10.0 * i for i in range(5)]
    return {
        "model": model,
        "error_kind": None,
        "start_s": start,
        "ttft_ms": ttft,
        "answer_ms": ttft,
        "tool_call_ms": [],
        "e2e_ms": content[-1] + 5.0,
        "content_ms": content,
        "input_tokens": 10,
        "output_tokens": 5,
        "finish_reason": "stop",
        "steps": None,
        "tool_calls": None,
        "tool_errors": None,
    }


def reference_percentile(values: list[float], q: int) -> float:
    """Linear interpolation between closest ranks, by the standard library."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def expected_agent(samples: list[dict]) -> dict | None:
    """The agent block computed independently from raw samples."""
    answers = [s for s in samples if s.get("steps") is not None]
    if not answers:
        return None
    calls = sum(s["tool_calls"] for s in answers)
    errors = sum(s["tool_errors"] for s in answers)
    waits = [
        s["answer_ms"] for s in answers if s["error_kind"] is None and s["answer_ms"] is not None
    ]
    return {
        "answers": len(answers),
        "steps_per_answer": statistics.fmean(s["steps"] for s in answers),
        "tool_calls_per_answer": statistics.fmean(s["tool_calls"] for s in answers),
        "tool_error_rate": errors / calls if calls else None,
        "step_limit_rate": sum(s["finish_reason"] == "max_steps" for s in answers) / len(answers),
        "time_to_answer_ms": {
            "count": len(waits),
            **{f"p{q}": reference_percentile(waits, q) for q in (50, 90, 99)},
        },
    }


def assert_agent_block(block: dict | None, samples: list[dict]) -> None:
    expected = expected_agent(samples)
    if expected is None:
        assert block is None
        return
    assert block["answers"] == expected["answers"]
    for key in ("steps_per_answer", "tool_calls_per_answer", "step_limit_rate"):
        assert block[key] == pytest.approx(expected[key], abs=1e-3), key
    if expected["tool_error_rate"] is None:
        assert block["tool_error_rate"] is None
    else:
        assert block["tool_error_rate"] == pytest.approx(expected["tool_error_rate"], abs=1e-4)
    answer = block["time_to_answer_ms"]
    assert answer["count"] == expected["time_to_answer_ms"]["count"]
    for q in (50, 90, 99):
        wanted = expected["time_to_answer_ms"][f"p{q}"]
        assert answer[f"p{q}"] == pytest.approx(wanted, abs=1e-3), q


HAND_BUILT = [
    agent_sample("gpt-4o-mini", 1000.0, 100.0, 300.0, steps=2, calls=2, errors=0),
    agent_sample("gpt-4o-mini", 1000.1, 120.0, 120.0, steps=1, calls=0, errors=0),
    agent_sample("gpt-4o-mini", 1000.2, 90.0, 500.0, steps=3, calls=3, errors=1),
    agent_sample("gpt-4o-mini", 1000.3, 80.0, 260.0, 3, 2, 0, finish="max_steps"),
    # a failed agent answer: counted as an answer, but has no time to answer
    agent_sample("gpt-4o-mini", 1000.4, 85.0, 0.0, steps=2, calls=1, errors=1, error="empty"),
    agent_sample("gpt-4o", 1000.5, 200.0, 200.0, steps=1, calls=0, errors=0),
    agent_sample("gpt-4o", 1000.6, 210.0, 220.0, steps=1, calls=0, errors=0, finish="length"),
    plain_sample("o3-mini", 1000.7, 400.0),
    {**plain_sample("o3-mini", 1000.8, 0.0), "error_kind": "http_429", "content_ms": []},
]


def test_the_agent_block_against_an_independent_computation():
    summary = summarize(HAND_BUILT, Slo())
    models = summary["models"]
    for model in ("gpt-4o-mini", "gpt-4o"):
        group = [s for s in HAND_BUILT if s["model"] == model]
        assert_agent_block(models[model].get("agent"), group)
    assert_agent_block(summary["overall"].get("agent"), HAND_BUILT)
    assert "agent" not in models["o3-mini"]  # no sample of it has agent fields
    # the numbers themselves, worked out by hand for gpt-4o-mini
    mini = models["gpt-4o-mini"]["agent"]
    counts = (mini["answers"], mini["steps"], mini["tool_calls"], mini["tool_errors"])
    assert counts == (5, 11, 8, 2)
    assert mini["steps_per_answer"] == 2.2 and mini["tool_calls_per_answer"] == 1.6
    assert mini["tool_error_rate"] == 0.25 and mini["step_limit_rate"] == 0.2
    assert mini["time_to_answer_ms"]["p50"] == 280.0  # of 120, 260, 300, 500
    assert models["gpt-4o"]["agent"]["tool_error_rate"] is None  # no tool call at all
    overall = summary["overall"]["agent"]
    assert overall["answers"] == 7 and overall["step_limit_rate"] == pytest.approx(1 / 7, abs=1e-4)
    # the existing figures keep their meaning: TTFT over good samples, first output event
    assert summary["overall"]["ttft_ms"]["count"] == 7
    assert models["gpt-4o-mini"]["ttft_ms"]["min"] == 80.0


def test_no_agent_block_without_agent_samples():
    summary = summarize([plain_sample("gpt-4o", 1000.0, 100.0)], Slo())
    assert "agent" not in summary["overall"] and "agent" not in summary["models"]["gpt-4o"]
    report = report_of([plain_sample("gpt-4o", 1000.0, 100.0)])
    assert "Agent turns" not in render_markdown(report)


def report_of(samples: list[dict]) -> dict:
    return build_report(
        samples,
        settings=load_config({"LOADGEN_RUN_ID": "r1"}).public(),
        metadata={"run_id": "r1"},
        slo=Slo(),
        max_error_rate=None,
        min_goodput_ratio=None,
    )


def test_the_markdown_shows_the_agent_figures():
    markdown = render_markdown(report_of(HAND_BUILT))
    assert "## Agent turns" in markdown
    lines = markdown.splitlines()
    header = next(line for line in lines if line.startswith("| model | answers | steps/answer"))
    assert header.split(" | ")[-3:] == ["time to answer p50", "p90", "p99 |"]
    # answers, steps/answer, calls/answer, calls, errors, error rate, step-limit rate, p50/90/99
    mini = "| gpt-4o-mini | 5 | 2.20 | 1.60 | 8 | 2 | 0.25 | 0.20 | 280.0 | 440.0 | 494.0 |"
    assert mini in lines
    assert "| gpt-4o | 2 | 1.00 | 0.00 | 0 | 0 | - | 0.00 | 210.0 | 218.0 | 219.8 |" in lines
    table = lines[lines.index(header) + 2 :]
    names = [line.split(" | ")[0][2:] for line in table[: table.index("")]]
    assert names == ["gpt-4o", "gpt-4o-mini", "**all**"]  # o3-mini had no agent turn


# --- the prompt set ---------------------------------------------------------------------------

# Quick, jitter-free models; each has its own tool behaviour (seeded per request by the mock):
# gpt-4o-mini calls exactly the tools the question asks for, gpt-4o sends malformed arguments
# half the time (tool errors), o3-mini often takes an extra step, gpt-4.1-mini loops on tool
# calls until the assistant's step limit ends the turn.
TTFT_MS = 200.0
MODEL = f"ttft_ms: {TTFT_MS:g}, tokens_per_s: 400, output_tokens: {{min: 6, mean: 9, max: 12}}"
PROFILES = f"""
defaults: {{rpm: 0, tpm: 0, tps_jitter: 0, itl_jitter: 0, ttft_jitter_ms: 0,
           max_concurrency: 500, queue_limit: 500}}
models:
  gpt-4o-mini: {{{MODEL}}}
  gpt-4o: {{{MODEL}, tools: {{malformed_arguments: 0.5}}}}
  o3-mini: {{reasoning: true, {MODEL}, tools: {{extra_step: 0.5}}}}
  gpt-4.1-mini: {{{MODEL}, faults: {{tool_call_loop: 1.0}}}}
"""
MODELS = ("gpt-4o-mini", "gpt-4o", "o3-mini", "gpt-4.1-mini")
MAX_STEPS = 3


@pytest.fixture(scope="module")
def tool_mock(tmp_path_factory):
    with start_mock_llm(tmp_path_factory.mktemp("tool-mock"), profiles=PROFILES) as mock:
        yield mock


@pytest.fixture(scope="module")
def agent(tmp_path_factory, tool_mock):
    """The assistant with its shop agent on, one upstream call per model call (no retries), so
    the mock's log of a trace holds exactly the turn's steps. Telemetry goes to the test
    collector: with it the assistant sends the trace context on to the mock."""
    env = {
        "ASSISTANT_AGENT": "true",
        "ASSISTANT_AGENT_MAX_STEPS": str(MAX_STEPS),
        "ASSISTANT_MODELS": ",".join(MODELS),
        "ASSISTANT_LLM_MAX_RETRIES": "0",
    }
    directory = tmp_path_factory.mktemp("agent")
    with (
        start_collector(directory / "collector", mode="local") as collector,
        start_assistant(
            directory / "assistant", tool_mock.base_url, otlp=collector.otlp_grpc, env=env
        ) as app,
    ):
        yield app


def mock_log(mock, trace_id: str) -> list[dict]:
    """The mock's request-log entries of one trace: one per model call, oldest first."""
    response = requests.get(f"{mock.url}/admin/requests", params={"trace_id": trace_id}, timeout=10)
    response.raise_for_status()
    return response.json()["requests"]


# --- the shop prompts trigger the tools they are written for ----------------------------------

# Every prompt of the tool topics: the tool calls it is written to trigger, as (tool, subject):
# an order id, (product kind, size or None), or a policy topic.
INTENDED = {
    "Where is my order 1042? It was supposed to arrive this week.": [("order", "1042")],
    "Can you tell me the status of order #1001?": [("order", "1001")],
    "Has order 1099 shipped yet?": [("order", "1099")],
    "I placed order 1003 last Monday. When will it be delivered?": [("order", "1003")],
    "What's happening with order #1777? I never got a confirmation.": [("order", "1777")],
    "Can you look up order 2048 for me, please?": [("order", "2048")],
    "Is there a tracking number for order 1002?": [("order", "1002")],
    "Can you also check order #1004?": [("order", "1004")],
    "And what about order 2048?": [("order", "2048")],
    "Order 1099 was sent back. When do I get my refund?": [
        ("order", "1099"),
        ("policy", "refunds"),
    ],
    "Do you have the Splunk Logo T-Shirt in XL?": [("stock", ("t-shirt", "XL"))],
    "Is the Dashboard Hoodie in stock in size L?": [("stock", ("hoodie", "L"))],
    "I'd like the Dashboard Hoodie in M. Is it available?": [("stock", ("hoodie", "M"))],
    "Do you still have the Detector Mug?": [("stock", ("mug", None))],
    "Are the Span Socks available in size medium?": [("stock", ("socks", "M"))],
    "Is the Splunk Logo T-Shirt available in M instead?": [("stock", ("t-shirt", "M"))],
    "What about the hoodie in XL?": [("stock", ("hoodie", "XL"))],
    "Is the Trace Cap in stock?": [("stock", ("cap", None))],
    "If the hoodie in L doesn't fit, can I exchange it?": [
        ("stock", ("hoodie", "L")),
        ("policy", "returns"),
    ],
}
TOOLS = {"order": "get_order_status", "stock": "check_inventory", "policy": "get_policy"}


def expected_summary(kind: str, subject) -> str:
    """What the tool tells the user, from the seeded shop data."""
    if kind == "order":
        status = {o["id"]: o["status"] for o in SHOP["orders"]}.get(subject)
        return f"order found: {status}" if status else "no such order"
    if kind == "policy":
        return f"{subject} policy"
    product_kind, size = subject
    products = [p for p in SHOP["products"] if p["kind"] == product_kind]
    if size is None:
        return f"stock of {len(products)} product(s)"
    available = sum(1 for p in products if p["stock"].get(size, 0) > 0)
    return f"{size}: in stock for {available} of {len(products)} product(s)"


def test_the_shop_prompts_trigger_the_intended_tools(agent):
    tool_topics = [t for t in load_prompt_set().topics if t.kind == "shop-tools"]
    prompts = [p.text for t in tool_topics for p in (*t.openers, *t.follow_ups)]
    assert sorted(prompts) == sorted(INTENDED)  # every tool prompt has its expectation here
    summaries = []
    for text, intended in INTENDED.items():
        answer = chat(agent.url, text, f"prompts_{uuid.uuid4().hex[:12]}", model="gpt-4o-mini")
        assert answer.status == 200, answer.raw
        calls = [d for e, d in answer.events if e == "tool_call"]
        results = [d for e, d in answer.events if e == "tool_result"]
        assert [c["name"] for c in calls] == [TOOLS[kind] for kind, _ in intended], text
        wanted = [expected_summary(kind, subject) for kind, subject in intended]
        assert [(r["ok"], r["summary"]) for r in results] == [(True, w) for w in wanted], text
        assert answer.first("done")["steps"] == 2 and answer.text, text
        summaries += wanted
    # the set covers found and unknown orders, in-stock and out-of-stock sizes
    assert {"no such order", "order found: shipped", "order found: delivered"} <= set(summaries)
    assert {"XL: in stock for 2 of 3 product(s)", "L: in stock for 0 of 1 product(s)"} <= set(
        summaries
    )
    assert "M: in stock for 1 of 1 product(s)" in summaries


# --- a real Locust run against the agent ------------------------------------------------------


def test_locust_against_the_agent_matches_the_mock_request_by_request(
    agent, tool_mock, run_loadgen
):
    tool_mock.reset()
    run = run_loadgen(
        "agent",
        timeout=180,
        host=agent.url,
        users=8,
        requests_per_user=5,
        conversation_turns="1-3",
        model_weights=",".join(f"{m}=1" for m in MODELS),
        feedback_rate=0,
        seed=11,
        run_id="agent-run-1",
        max_error_rate=0.0,
    )
    assert run.exit_code == 0, run.log()[-3000:]
    samples = run.samples
    assert len(samples) == 40 and all(s["error_kind"] is None for s in samples)

    client_minus_server = []
    for s in samples:
        where = f"{s['model']} {s['prompt_id']} {s['trace_id']}"
        log = mock_log(tool_mock, s["trace_id"])
        sent = [entry["tools"]["calls"] for entry in log]  # every model call offered the tools
        limited = s["finish_reason"] == "max_steps"
        # steps and tool calls: what the mock did for this trace
        assert s["steps"] == len(log), where
        assert len(s["tool_call_ms"]) == sum(len(calls) for calls in sent), where
        ran = sent[:-1] if limited else sent  # the last step's calls are not run at the limit
        assert s["tool_calls"] == sum(len(calls) for calls in ran), where
        valid = [ok for entry in log[: len(ran)] for ok in entry["tools"]["arguments_valid"]]
        invalid = valid.count(False)
        assert s["tool_errors"] == invalid, where
        assert limited == (len(log) == MAX_STEPS and bool(sent[-1])), where
        assert limited == (s["model"] == "gpt-4.1-mini"), where
        # timing: the client sees each event after the assistant produced it
        assert s["ttft_ms"] >= s["server_ttft_ms"], where
        if s["server_time_to_answer_ms"] is not None:
            assert s["answer_ms"] >= s["server_time_to_answer_ms"], where
        else:
            assert limited, where  # the assistant has no time to answer only at the step limit
        first = [times[0] for times in (s["tool_call_ms"], s["content_ms"]) if times]
        assert s["ttft_ms"] == min(first), where
        assert s["answer_ms"] == s["content_ms"][0], where
        if sent[0]:  # the first model call called tools: the answer's text comes a call later
            assert s["ttft_ms"] == s["tool_call_ms"][0], where
            assert s["answer_ms"] - s["ttft_ms"] >= 0.9 * TTFT_MS, where
        else:
            assert s["ttft_ms"] == s["answer_ms"], where
        client_minus_server.append(s["ttft_ms"] - s["server_ttft_ms"])
    # the client's TTFT times the same event as the assistant's (the first output, a tool call
    # included), not the answer a model call later
    assert statistics.median(client_minus_server) < 0.25 * TTFT_MS, client_minus_server

    # the run covered every kind of agent turn
    overall = run.summary["overall"]["agent"]
    assert overall["answers"] == 40
    assert overall["tool_calls"] > 0 and overall["tool_errors"] > 0, overall
    assert overall["step_limited"] > 0 and 0 < overall["step_limit_rate"] < 1, overall
    assert any(s["steps"] == 1 for s in samples) and any(s["steps"] == 2 for s in samples)

    # the summary's agent figures, per model and overall, from llm-samples.jsonl
    summary = run.summary
    assert_agent_block(summary["overall"]["agent"], samples)
    for model in MODELS:
        group = [s for s in samples if s["model"] == model]
        assert summary["models"][model]["requests"] == len(group) > 0
        assert_agent_block(summary["models"][model]["agent"], group)
    markdown = (run.report_dir / "llm-summary.md").read_text()
    assert "## Agent turns" in markdown
    row = f"| **all** | 40 | {overall['steps_per_answer']:.2f} | "
    assert row + f"{overall['tool_calls_per_answer']:.2f} | {overall['tool_calls']} |" in markdown
    print(
        f"\nagent run: 40 answers, {overall['steps_per_answer']} steps and "
        f"{overall['tool_calls_per_answer']} tool calls per answer, tool error rate "
        f"{overall['tool_error_rate']}, step-limit rate {overall['step_limit_rate']}, "
        f"TTFT p50 {summary['overall']['ttft_ms']['p50']} ms, time to answer p50 "
        f"{overall['time_to_answer_ms']['p50']} ms"
    )
