"""Function tools (issue 18, item 4): the mock calls tools like OpenAI does, answers grounded on
the tool results, and slips (wrong tool, malformed arguments, extra step, loops) at seeded rates;
against the real service with the official openai SDK."""

from __future__ import annotations

import itertools
import json
import math
import time
from concurrent.futures import ThreadPoolExecutor

import jsonschema_rs
import openai
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.prereq import ROOT, service_python
from harness.procs import ServiceProcess

from .conftest import profiled_mock

FAST = {"ttft_ms": 0, "tokens_per_s": 100000, "output_tokens": {"min": 8, "mean": 12, "max": 16}}
TOOL_PROFILES = {
    "defaults": {"tps_jitter": 0, "itl_jitter": 0, "ttft_jitter_ms": 0, "rpm": 0, "tpm": 0},
    "models": {
        "agent": FAST,  # tools traits: the defaults (all 0)
        "sloppy": {**FAST, "tools": {"malformed_arguments": 0.3, "wrong_tool": 0.2}},
        "stepper": {**FAST, "tools": {"extra_step": 0.4}},
        "timed": {
            "ttft_ms": 200,
            "tokens_per_s": 50,
            "output_tokens": {"min": 10, "mean": 10, "max": 10},
        },
        "early": {**FAST, "role_chunk": "early"},
    },
}
ORDER_SCHEMA = {
    "type": "object",
    "properties": {"order_id": {"type": "string", "description": "e.g. A1042"}},
    "required": ["order_id"],
    "additionalProperties": False,
}
INVENTORY_SCHEMA = {
    "type": "object",
    "properties": {
        "product": {"type": "string"},
        "size": {"type": "string", "enum": ["XS", "S", "M", "L", "XL", "XXL"]},
    },
    "required": ["product", "size"],
    "additionalProperties": False,
}
POLICY_SCHEMA = {
    "type": "object",
    "properties": {
        "topic": {"type": "string", "enum": ["shipping", "returns", "refunds", "sizing"]}
    },
    "required": ["topic"],
    "additionalProperties": False,
}
SCHEMAS = {
    "get_order_status": ORDER_SCHEMA,
    "check_inventory": INVENTORY_SCHEMA,
    "get_policy": POLICY_SCHEMA,
}
TOOLS = [
    {
        "type": "function",
        "function": {"name": name, "description": f"The shop's {name}", "parameters": schema},
    }
    for name, schema in SCHEMAS.items()
]
ORDER_Q = "Where is my order #A1042?"
ALL_Q = "Where is order 1042, is the blue hoodie in stock in size M, and how do refunds work?"
PLAIN_Q = "How should I plan a small vegetable garden?"
SE_TOLERANCE = 4  # |observed - rate| <= 4 binomial standard errors: a false alarm ~ 6e-5
RESULTS = {
    "get_order_status": {"order_id": "A1042", "status": "shipped", "carrier": "DHL"},
    "check_inventory": {"product": "blue hoodie", "size": "M", "stock": 7},
    "get_policy": {"topic": "refunds", "text": "Refunds reach your card within 5 business days."},
}


def post_chat(service, body: dict) -> requests.Response:
    """A raw POST /chat/completions (what the SDK would not send, or the bytes it hides)."""
    return requests.post(
        f"{service.base_url}/chat/completions",
        headers={"Authorization": f"Bearer {service.api_key}"},
        json=body,
        timeout=30,
    )


@pytest.fixture(scope="module")
def tools_mock(tmp_path_factory):
    with profiled_mock(tmp_path_factory, "mock-llm-tools", TOOL_PROFILES) as service:
        yield service


@pytest.fixture(autouse=True)
def clean_state(tools_mock):
    tools_mock.reset()
    yield
    tools_mock.reset()


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def assemble(stream) -> tuple[list, dict[int, dict], str | None, object]:
    """(chunks, calls by index {id, name, arguments, fragments}, finish_reason, usage)."""
    chunks, calls, finish, usage = [], {}, None, None
    for chunk in stream:
        chunks.append(chunk)
        if chunk.usage:
            usage = chunk.usage
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        finish = choice.finish_reason or finish
        for delta in choice.delta.tool_calls or []:
            call = calls.setdefault(delta.index, {"arguments": "", "fragments": 0})
            if delta.id:
                assert "id" not in call  # the id and name come once, in the call's first chunk
                call.update(id=delta.id, name=delta.function.name, type=delta.type)
                assert delta.function.arguments == ""
            else:
                assert delta.function.name is None
                call["arguments"] += delta.function.arguments
                call["fragments"] += 1
    return chunks, calls, finish, usage


def tool_results(calls) -> list[dict]:
    return [
        {"role": "tool", "tool_call_id": c.id, "content": json.dumps(RESULTS[c.function.name])}
        for c in calls
    ]


def follow_up(question: str, message) -> list[dict]:
    """The conversation after a tool-call answer, with the shop's results."""
    assistant = {
        "role": "assistant",
        "content": None,
        "tool_calls": [c.model_dump() for c in message.tool_calls],
    }
    return [*user(question), assistant, *tool_results(message.tool_calls)]


def within(observed: int, total: int, rate: float) -> bool:
    se = math.sqrt(rate * (1 - rate) / total)
    return abs(observed / total - rate) <= SE_TOLERANCE * se


def valid_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("include_usage", [False, True])
def test_streamed_tool_call_is_parsed_by_the_sdk(tools_mock, client_for, include_usage):
    options = {"stream_options": {"include_usage": True}} if include_usage else {}
    stream = client_for(tools_mock).chat.completions.create(
        model="agent", messages=user(ORDER_Q), tools=TOOLS, stream=True, seed=3, **options
    )
    chunks, calls, finish, usage = assemble(stream)
    assert finish == "tool_calls"
    assert list(calls) == [0]
    call = calls[0]
    assert call["id"].startswith("call_") and len(call["id"]) == 29
    assert call["name"] == "get_order_status" and call["type"] == "function"
    assert call["fragments"] >= 3  # the arguments arrive in several chunks
    arguments = json.loads(call["arguments"])
    assert arguments == {"order_id": "A1042"}
    jsonschema_rs.validate(ORDER_SCHEMA, arguments)
    first = chunks[0].choices[0].delta
    assert first.role == "assistant" and first.content is None and first.tool_calls
    assert all(not c.choices[0].delta.content for c in chunks if c.choices)
    if include_usage:
        assert chunks[-1].choices == []
        assert usage.completion_tokens == 1 + call["fragments"]  # chunks sent, as for text
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    else:
        assert usage is None


def test_raw_stream_layout(tools_mock):
    response = post_chat(
        tools_mock,
        {
            "model": "agent",
            "messages": user(ORDER_Q),
            "tools": TOOLS,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    assert response.status_code == 200
    events = response.text.split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    payloads = [json.loads(e.removeprefix("data: ")) for e in events[:-2]]
    head = payloads[0]["choices"][0]
    assert head["delta"] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "index": 0,
                "id": head["delta"]["tool_calls"][0]["id"],
                "type": "function",
                "function": {"name": "get_order_status", "arguments": ""},
            }
        ],
        "refusal": None,
    }
    fragments = payloads[1:-2]
    assert all(
        set(p["choices"][0]["delta"]) == {"tool_calls"}
        and set(p["choices"][0]["delta"]["tool_calls"][0]) == {"index", "function"}
        for p in fragments
    )
    assert payloads[-2]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "tool_calls",
    }
    assert (
        payloads[-1]["choices"] == []
        and payloads[-1]["usage"]["completion_tokens"] == len(payloads) - 2
    )
    assert all(p["usage"] is None for p in payloads[:-1])


def test_non_streaming_tool_calls_match_the_stream(tools_mock, client_for):
    client = client_for(tools_mock)
    completion = client.chat.completions.create(
        model="agent", messages=user(ALL_Q), tools=TOOLS, seed=11
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls
    assert [c.function.name for c in calls] == list(SCHEMAS)  # parallel, in the question's order
    for call in calls:
        jsonschema_rs.validate(SCHEMAS[call.function.name], json.loads(call.function.arguments))
    assert json.loads(calls[1].function.arguments) == {"product": "blue hoodie", "size": "M"}
    assert json.loads(calls[2].function.arguments) == {"topic": "refunds"}
    stream = client.chat.completions.create(
        model="agent",
        messages=user(ALL_Q),
        tools=TOOLS,
        seed=11,
        stream=True,
        stream_options={"include_usage": True},
    )
    _, streamed, finish, usage = assemble(stream)
    assert finish == "tool_calls"
    assert [(c["id"], c["name"], c["arguments"]) for c in streamed.values()] == [
        (c.id, c.function.name, c.function.arguments) for c in calls
    ]  # same request, same calls (ids included)
    assert usage.model_dump() == completion.usage.model_dump()


def test_parallel_tool_calls_false_makes_one_call(tools_mock, client_for):
    completion = client_for(tools_mock).chat.completions.create(
        model="agent", messages=user(ALL_Q), tools=TOOLS, parallel_tool_calls=False
    )
    calls = completion.choices[0].message.tool_calls
    assert [c.function.name for c in calls] == ["get_order_status"]


def test_two_order_ids_make_two_calls(tools_mock, client_for):
    completion = client_for(tools_mock).chat.completions.create(
        model="agent", messages=user("Compare order #1042 and order #A2077, please."), tools=TOOLS
    )
    calls = completion.choices[0].message.tool_calls
    assert [json.loads(c.function.arguments) for c in calls] == [
        {"order_id": "1042"},
        {"order_id": "A2077"},
    ]
    assert len({c.id for c in calls}) == 2


@pytest.mark.parametrize("stream", [False, True])
def test_tool_choice_none_and_no_intent_answer_as_without_tools(tools_mock, client_for, stream):
    client = client_for(tools_mock)

    def content(question, **kwargs) -> tuple[str, str]:
        if not stream:
            choice = client.chat.completions.create(
                model="agent", messages=user(question), seed=5, **kwargs
            ).choices[0]
            assert not choice.message.tool_calls
            return choice.message.content, choice.finish_reason
        chunks, calls, finish, _ = assemble(
            client.chat.completions.create(
                model="agent", messages=user(question), seed=5, stream=True, **kwargs
            )
        )
        assert calls == {}
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices), finish

    baseline = content(ORDER_Q)
    assert baseline[1] == "stop" and baseline[0]
    assert content(ORDER_Q, tools=TOOLS, tool_choice="none") == baseline
    assert content(PLAIN_Q, tools=TOOLS) == content(PLAIN_Q)  # no intent: the usual answer


def test_tool_choice_required_and_forced(tools_mock, client_for):
    client = client_for(tools_mock)
    required = client.chat.completions.create(
        model="agent", messages=user(PLAIN_Q), tools=TOOLS, tool_choice="required"
    )
    calls = required.choices[0].message.tool_calls
    assert len(calls) == 1 and calls[0].function.name == "get_order_status"
    jsonschema_rs.validate(ORDER_SCHEMA, json.loads(calls[0].function.arguments))
    forced = client.chat.completions.create(
        model="agent",
        messages=user(ALL_Q),
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_policy"}},
    )
    calls = forced.choices[0].message.tool_calls
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_policy", {"topic": "refunds"})
    ]


def test_arguments_follow_other_schemas(tools_mock, client_for):
    """Property names decide, whatever the tool is called; integer ids, enums, required
    properties without a value, nested $ref definitions (as pydantic writes them)."""
    schema = {
        "type": "object",
        "$defs": {"Size": {"type": "string", "enum": ["small", "M", "large"]}},
        "properties": {
            "orderNumber": {"type": "integer"},
            "size": {"$ref": "#/$defs/Size"},
            "item_name": {"type": "string"},
            "include_history": {"type": "boolean"},
            "limit": {"type": "integer", "minimum": 5},
            "channel": {"type": "string", "enum": ["web", "store"]},
        },
        "required": ["orderNumber", "limit", "channel", "include_history"],
    }
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": schema}}]
    completion = client_for(tools_mock).chat.completions.create(
        model="agent", messages=user("Is order 1042 the M jacket?"), tools=tools
    )
    calls = completion.choices[0].message.tool_calls
    arguments = json.loads(calls[0].function.arguments)
    assert arguments["orderNumber"] == 1042
    jsonschema_rs.validate(schema, arguments)
    assert arguments["limit"] == 5 and arguments["channel"] == "web"


@pytest.mark.parametrize("stream", [False, True])
def test_grounded_answer_quotes_the_tool_results(tools_mock, client_for, stream):
    client = client_for(tools_mock)
    first = client.chat.completions.create(
        model="agent", messages=user(ALL_Q), tools=TOOLS, seed=2
    ).choices[0]
    messages = follow_up(ALL_Q, first.message)
    if stream:
        chunks, calls, finish, usage = assemble(
            client.chat.completions.create(
                model="agent",
                messages=messages,
                tools=TOOLS,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        assert calls == {}
        pieces = [
            c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
        ]
        text = "".join(pieces)
        assert usage.completion_tokens == len(pieces)
        completion_id = chunks[0].id
    else:
        completion = client.chat.completions.create(model="agent", messages=messages, tools=TOOLS)
        text, finish = completion.choices[0].message.content, completion.choices[0].finish_reason
        completion_id = completion.id
    assert finish == "stop"
    assert "shipped" in text and "DHL" in text and "7" in text
    assert RESULTS["get_policy"]["text"] in text  # verbatim
    entry = tools_mock.request_entry(completion_id)
    assert entry["tools"]["grounded"] is True
    assert entry["tools"]["grounded_on"] == [c.id for c in first.message.tool_calls]
    assert entry["tools"]["calls"] == []


def test_plain_text_tool_result_is_quoted(tools_mock, client_for):
    first = (
        client_for(tools_mock)
        .chat.completions.create(model="agent", messages=user(ORDER_Q), tools=TOOLS)
        .choices[0]
    )
    call = first.message.tool_calls[0]
    messages = [
        *user(ORDER_Q),
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "Out for delivery since 9 am."},
    ]
    answer = client_for(tools_mock).chat.completions.create(model="agent", messages=messages)
    assert "Out for delivery since 9 am." in answer.choices[0].message.content  # no tools: still


def test_timing_follows_the_profile(tools_mock, client_for):
    client = client_for(tools_mock)
    started = time.monotonic()
    stream = client.chat.completions.create(
        model="timed", messages=user(ORDER_Q), tools=TOOLS, stream=True
    )
    arrivals = []
    completion_id = None
    for chunk in stream:
        completion_id = chunk.id
        if chunk.choices and chunk.choices[0].delta.tool_calls:
            arrivals.append(time.monotonic() - started)
    entry = tools_mock.request_entry(completion_id)
    assert arrivals[0] >= 0.2  # TTFT (200 ms) before the first tool-call chunk
    assert (
        entry["scheduled_ttft_ms"] / 1000 <= arrivals[0] <= entry["scheduled_ttft_ms"] / 1000 + 0.1
    )
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert len(gaps) == entry["plan"]["tokens"] - 1 == entry["tokens_sent"] - 1
    assert all(g == pytest.approx(20, abs=0.01) for g in entry["plan"]["gaps_ms"])  # 50 tok/s
    assert (arrivals[-1] - arrivals[0]) >= 0.9 * 0.02 * len(gaps)
    assert entry["completed"] is True and entry["plan"]["finish_reason"] == "tool_calls"


def test_early_role_chunk_with_tool_calls(tools_mock):
    response = post_chat(
        tools_mock,
        {"model": "early", "messages": user(ORDER_Q), "tools": TOOLS, "stream": True},
    )
    payloads = [json.loads(e[6:]) for e in response.text.split("\n\n")[:-2]]
    assert payloads[0]["choices"][0]["delta"] == {
        "role": "assistant",
        "content": None,
        "refusal": None,
    }
    assert "role" not in payloads[1]["choices"][0]["delta"]
    assert payloads[1]["choices"][0]["delta"]["tool_calls"][0]["id"].startswith("call_")


def test_max_completion_tokens_cuts_the_arguments(tools_mock, client_for):
    completion = client_for(tools_mock).chat.completions.create(
        model="agent", messages=user(ORDER_Q), tools=TOOLS, max_completion_tokens=3
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "length" and completion.usage.completion_tokens == 3
    assert choice.message.tool_calls[0].function.arguments == '{"order'


def test_ground_truth_records_the_calls(tools_mock, client_for):
    completion = client_for(tools_mock).chat.completions.create(
        model="agent", messages=user(ALL_Q), tools=TOOLS, seed=4
    )
    entry = tools_mock.request_entry(completion.id)
    calls = completion.choices[0].message.tool_calls
    assert entry["tools"]["calls"] == [
        {"index": i, "id": c.id, "name": c.function.name, "arguments": c.function.arguments}
        for i, c in enumerate(calls)
    ]
    assert entry["tools"]["offered"] == list(SCHEMAS)
    assert entry["tools"]["intents"] == ["order", "product", "policy"]
    assert entry["tools"]["arguments_valid"] == [True, True, True]
    assert entry["tools"]["grounded"] is False and entry["tools"]["traits"] == []
    assert entry["tools"]["round"] == 1
    assert entry["tokens_sent"] == completion.usage.completion_tokens
    plain = client_for(tools_mock).chat.completions.create(model="agent", messages=user(PLAIN_Q))
    assert "tools" not in tools_mock.request_entry(plain.id)  # no tools: the entry as before


def run(client, model, seeds, messages_for, **kwargs):
    def one(seed):
        return client.chat.completions.create(
            model=model, messages=messages_for(seed), tools=TOOLS, seed=seed, **kwargs
        )

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, seeds))


def test_malformed_and_wrong_tool_rates(tools_mock, client_for):
    client = client_for(tools_mock)
    total = 300
    answers = run(client, "sloppy", range(total), lambda seed: user(ORDER_Q))
    log = {e.get("completion_id"): e for e in tools_mock.requests_log()}
    malformed = wrong = 0
    for completion in answers:
        call = completion.choices[0].message.tool_calls[0]
        entry = log[completion.id]["tools"]
        ok = valid_json(call.function.arguments)
        malformed += not ok
        wrong += call.function.name != "get_order_status"
        assert entry["arguments_valid"] == [ok]
        assert ("malformed_arguments" in entry["traits"]) == (not ok)
        assert ("wrong_tool" in entry["traits"]) == (call.function.name != "get_order_status")
    assert within(malformed, total, 0.3), malformed
    assert within(wrong, total, 0.2), wrong
    again = run(client, "sloppy", range(20), lambda seed: user(ORDER_Q))
    assert [a.choices[0].message.tool_calls[0].function.arguments for a in again] == [
        a.choices[0].message.tool_calls[0].function.arguments for a in answers[:20]
    ]  # seeded: the same requests slip the same way


def test_extra_step_rate(tools_mock, client_for):
    client = client_for(tools_mock)
    total = 300
    first = run(client, "agent", range(total), lambda seed: user(f"Where is order #{1000 + seed}?"))
    conversations = {
        seed: follow_up(f"Where is order #{1000 + seed}?", c.choices[0].message)
        for seed, c in enumerate(first)
    }
    second = run(client, "stepper", range(total), conversations.__getitem__)
    extra = [s for s in second if s.choices[0].finish_reason == "tool_calls"]
    assert within(len(extra), total, 0.4), len(extra)
    for answer in second:
        if answer.choices[0].finish_reason != "tool_calls":
            assert "shipped" in answer.choices[0].message.content
    # after the extra step, the model answers (one extra step at most)
    seeds = [seed for seed, s in enumerate(second) if s.choices[0].finish_reason == "tool_calls"]
    third = run(
        client,
        "stepper",
        seeds,
        lambda seed: [
            *conversations[seed],
            *follow_up("", second[seed].choices[0].message)[1:],
        ],
    )
    assert all(t.choices[0].finish_reason == "stop" for t in third)
    assert all("shipped" in t.choices[0].message.content for t in third)


def fault(kind: str) -> dict:
    return {"extra_headers": {"x-mock-fault": kind}}


def test_malformed_tool_arguments_fault(tools_mock, client_for):
    client = client_for(tools_mock)
    completion = client.chat.completions.create(
        model="agent", messages=user(ALL_Q), tools=TOOLS, **fault("malformed_tool_arguments")
    )
    calls = completion.choices[0].message.tool_calls
    assert len(calls) == 3 and not any(valid_json(c.function.arguments) for c in calls)
    entry = tools_mock.request_entry(completion.id)
    assert entry["fault"] == "malformed_tool_arguments"
    assert entry["tools"]["arguments_valid"] == [False] * 3
    plain = client.chat.completions.create(
        model="agent", messages=user(PLAIN_Q), **fault("malformed_tool_arguments")
    )
    assert plain.choices[0].finish_reason == "stop"  # no tools: no effect


def test_tool_call_loop_fault(tools_mock, client_for):
    client = client_for(tools_mock)
    messages = user(ORDER_Q)
    first = client.chat.completions.create(model="agent", messages=messages, tools=TOOLS)
    messages = follow_up(ORDER_Q, first.choices[0].message)
    for _ in range(3):  # it keeps calling tools instead of answering
        looped = client.chat.completions.create(
            model="agent", messages=messages, tools=TOOLS, **fault("tool_call_loop")
        )
        message = looped.choices[0].message
        assert looped.choices[0].finish_reason == "tool_calls"
        assert message.tool_calls[0].function.name == "get_order_status"
        assert "tool_call_loop" in tools_mock.request_entry(looped.id)["tools"]["traits"]
        messages = [
            *messages,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [c.model_dump() for c in message.tool_calls],
            },
            *tool_results(message.tool_calls),
        ]
    answer = client.chat.completions.create(model="agent", messages=messages, tools=TOOLS)
    assert answer.choices[0].finish_reason == "stop"  # without the fault it answers


def test_tool_call_loop_rate_through_the_admin_api(tools_mock, client_for):
    tools_mock.set_faults({"models": {"agent": {"tool_call_loop": 0.25}}})
    client = client_for(tools_mock)
    total = 300
    base = client.chat.completions.create(model="agent", messages=user(ORDER_Q), tools=TOOLS)
    conversation = follow_up(ORDER_Q, base.choices[0].message)
    answers = run(client, "agent", range(total), lambda seed: conversation)
    loops = sum(a.choices[0].finish_reason == "tool_calls" for a in answers)
    assert within(loops, total, 0.25), loops
    log = {e.get("completion_id"): e for e in tools_mock.requests_log()}
    assert all(
        (log[a.id]["fault"] == "tool_call_loop") == (a.choices[0].finish_reason == "tool_calls")
        for a in answers
    )


def test_profiles_show_the_tool_traits(tools_mock, mock):
    profiles = requests.get(f"{tools_mock.url}/admin/profiles", timeout=10).json()["models"]
    assert profiles["sloppy"]["tools"] == {
        "wrong_tool": 0.2,
        "malformed_arguments": 0.3,
        "extra_step": 0.0,
    }
    shipped = requests.get(f"{mock.url}/admin/profiles", timeout=10).json()["models"]
    # the shipped (illustrative) traits: the chat models slip at different rates, the judge never
    assert shipped["gpt-4o-mini"]["tools"] == {
        "wrong_tool": 0.10,
        "malformed_arguments": 0.06,
        "extra_step": 0.12,
    }
    assert set(shipped["mock-judge"]["tools"].values()) == {0.0}
    slips = {m: sum(p["tools"].values()) for m, p in shipped.items() if m != "mock-judge"}
    assert len(set(slips.values())) == len(slips)  # every model differs
    kinds = requests.get(f"{tools_mock.url}/admin/faults", timeout=10).json()["kinds"]
    assert kinds[-2:] == ["malformed_tool_arguments", "tool_call_loop"]


GOOD_CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
BAD_INPUTS = [
    ({"tools": {}}, "tools", "invalid_type"),
    ({"tools": []}, "tools", "empty_array"),
    ({"tools": [5]}, "tools[0]", "invalid_type"),
    ({"tools": [{"function": {"name": "f"}}]}, "tools[0].type", "missing_required_parameter"),
    ({"tools": [{"type": "web", "function": {"name": "f"}}]}, "tools[0].type", "invalid_value"),
    ({"tools": [{"type": "function"}]}, "tools[0].function", "missing_required_parameter"),
    (
        {"tools": [{"type": "function", "function": {}}]},
        "tools[0].function.name",
        "missing_required_parameter",
    ),
    (
        {"tools": [{"type": "function", "function": {"name": "bad name!"}}]},
        "tools[0].function.name",
        "invalid_value",
    ),
    (
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": "x"}}]},
        "tools[0].function.parameters",
        "invalid_type",
    ),
    (
        {
            "tools": [
                {"type": "function", "function": {"name": "f", "parameters": {"type": "array"}}}
            ]
        },
        "tools[0].function.parameters",
        "invalid_function_parameters",
    ),
    (
        {
            "tools": [
                {"type": "function", "function": {"name": "f", "parameters": {"required": "a"}}}
            ]
        },
        "tools[0].function.parameters",
        "invalid_function_parameters",
    ),
    ({"tools": TOOLS[:1] * 2}, "tools", "invalid_value"),
    ({"tools": TOOLS, "tool_choice": "sometimes"}, "tool_choice", "invalid_value"),
    ({"tools": TOOLS, "tool_choice": 3}, "tool_choice", "invalid_type"),
    (
        {"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}},
        "tool_choice",
        "invalid_value",
    ),
    ({"tools": TOOLS, "parallel_tool_calls": "yes"}, "parallel_tool_calls", "invalid_type"),
    ({"tool_choice": "auto"}, "tool_choice", "invalid_value"),
    ({"parallel_tool_calls": True}, "parallel_tool_calls", "invalid_value"),
    (
        {"messages": [*user("x"), {"role": "tool", "content": "r"}]},
        "messages[1].tool_call_id",
        "missing_required_parameter",
    ),
    (
        {"messages": [*user("x"), {"role": "tool", "tool_call_id": "call_1", "content": "r"}]},
        "messages.[1].role",
        None,
    ),
    (
        {"messages": [*user("x"), {"role": "assistant", "content": None, "tool_calls": {}}]},
        "messages[1].tool_calls",
        "invalid_type",
    ),
    (
        {
            "messages": [
                *user("x"),
                {"role": "assistant", "tool_calls": [{**GOOD_CALL, "function": {"name": "f"}}]},
            ]
        },
        "messages[1].tool_calls[0].function.arguments",
        "invalid_type",
    ),
    (
        {"messages": [*user("x"), {"role": "assistant", "tool_calls": [GOOD_CALL]}, *user("y")]},
        "messages.[1].role",
        None,
    ),
]


@pytest.mark.parametrize(("fields", "param", "code"), BAD_INPUTS)
def test_bad_tool_inputs_are_400(tools_mock, fields, param, code):
    response = post_chat(
        tools_mock,
        {"model": "agent", "messages": user(ORDER_Q), **fields},
    )
    assert response.status_code == 400, response.text[:300]
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["message"]
    assert (error["param"], error["code"]) == (param, code)


def test_bad_tool_input_raises_bad_request_in_the_sdk(tools_mock, client_for):
    with pytest.raises(openai.BadRequestError) as caught:
        client_for(tools_mock).chat.completions.create(
            model="agent", messages=user(ORDER_Q), tools=[{"type": "function", "function": {}}]
        )
    assert caught.value.code == "missing_required_parameter"


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
SCHEMA = st.fixed_dictionaries(
    {},
    optional={
        "type": st.just("object") | JSON_VALUES,
        "properties": st.dictionaries(
            st.sampled_from(["order_id", "product", "size", "topic", "query", "x"]),
            st.fixed_dictionaries(
                {},
                optional={
                    "type": st.sampled_from(["string", "integer", "array", "object", "boolean"])
                    | JSON_VALUES,
                    "enum": JSON_VALUES,
                    "$ref": st.sampled_from(["#/$defs/a", "#/x/y", "#"]) | JSON_VALUES,
                    "anyOf": JSON_VALUES,
                    "minimum": JSON_VALUES,
                    "items": JSON_VALUES,
                },
            )
            | JSON_VALUES,
            max_size=4,
        )
        | JSON_VALUES,
        "required": st.lists(st.sampled_from(["order_id", "size", "y"]), max_size=3) | JSON_VALUES,
        "$defs": JSON_VALUES,
    },
)
TOOL = st.fixed_dictionaries(
    {"type": st.just("function") | JSON_VALUES},
    optional={
        "function": st.fixed_dictionaries(
            {"name": st.sampled_from(["lookup", "get_policy"]) | JSON_VALUES},
            optional={"parameters": SCHEMA | JSON_VALUES, "description": JSON_VALUES},
        )
        | JSON_VALUES
    },
)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    tools=st.lists(TOOL, max_size=3) | JSON_VALUES,
    choice=st.sampled_from(["auto", "none", "required"]) | JSON_VALUES,
    stream=st.booleans(),
)
def test_fuzzed_tool_requests_never_5xx(tools_mock, tools, choice, stream):
    response = post_chat(
        tools_mock,
        {
            "model": "agent",
            "messages": user(ALL_Q),
            "tools": tools,
            "tool_choice": choice,
            "stream": stream,
        },
    )
    assert response.status_code in (200, 400), response.text[:300]
    if response.status_code == 400:
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    elif not stream:
        for call in response.json()["choices"][0]["message"].get("tool_calls") or []:
            assert valid_json(call["function"]["arguments"])


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("m: {tools: {wrong_tool: 1.5}}", "models.m.tools.wrong_tool must be between 0 and 1"),
        ("m: {tools: 0.2}", "models.m.tools must be a mapping of wrong_tool, malformed_arguments"),
        ("m: {tools: {lazy: 0.1}}", "models.m.tools: unknown trait(s) lazy"),
    ],
)
def test_bad_tool_traits_stop_the_service(tmp_path, body, needle):
    profile = tmp_path / "p.yaml"
    profile.write_text(f"models:\n  {body}\n")
    process = ServiceProcess(
        "mock-llm-tools-config",
        [service_python("mock-llm"), "-m", "mock_llm"],
        tmp_path,
        {
            "PYTHONPATH": str(ROOT / "services" / "mock-llm" / "src"),
            "MOCK_LLM_PORT": "1",
            "MOCK_LLM_PROFILES": str(profile),
        },
    )
    with process:
        assert process.wait_exit(timeout=30) == 2
    assert needle in process.log()
