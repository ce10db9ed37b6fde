"""Units of the LLM-as-judge evaluator (docs/evaluations.md): configuration, the judge request,
strict parsing of the judge's answer, trace-id sampling, the non-blocking hand-off."""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import replace
from types import SimpleNamespace

import pytest

from assistant import semconv as sc
from assistant.config import ConfigError, load_config
from assistant.evals import JudgeError, judge_body, parse_judge_response
from assistant.evals.evaluator import Evaluator, trace_sampled

RATE = "OTEL_INSTRUMENTATION_GENAI_EVALUATION_SAMPLE_RATE"
MOCK_ENV = {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "OPENAI_API_KEY": "sk-chat"}


def verdicts(**overrides) -> list[dict]:
    items = [
        {"name": name, "score": 1, "label": labels[0], "reason": "fine"}
        for name, labels in sc.EVALUATION_LABELS.items()
    ]
    for item in items:
        item.update(overrides.get(item["name"], {}))
    return items


def completion(content) -> dict:
    return {"id": "j1", "choices": [{"message": {"role": "assistant", "content": content}}]}


def test_on_by_default_and_off_with_the_switch():
    assert load_config(MOCK_ENV).eval_sample_rate == 1.0
    assert load_config({"OPENAI_API_KEY": "sk-real"}).eval_sample_rate == 0.1
    off = {"ASSISTANT_EVALUATIONS": "false"}
    assert load_config({**MOCK_ENV, **off}).eval_sample_rate == 0.0
    assert load_config({"OPENAI_API_KEY": "sk-real", **off}).eval_sample_rate == 0.0


def test_defaults_with_the_mock_backend():
    cfg = load_config({**MOCK_ENV, "ASSISTANT_EVALUATIONS": "true"})
    assert cfg.eval_sample_rate == 1.0
    assert cfg.judge_model == "mock-judge"
    assert cfg.judge_base_url == cfg.openai_base_url
    assert cfg.judge_api_key == "sk-chat"
    assert (cfg.eval_queue_size, cfg.eval_timeout_s) == (100, 30.0)


def test_defaults_with_the_real_openai_api():
    cfg = load_config({"OPENAI_API_KEY": "sk-real", "ASSISTANT_EVALUATIONS": "true"})
    assert cfg.eval_sample_rate == 0.1  # every evaluation is a paid completion
    assert cfg.judge_model == "gpt-4o-mini"
    assert cfg.judge_base_url == "https://api.openai.com/v1"
    assert cfg.judge_api_key == "sk-real"


def test_judge_settings_override():
    cfg = load_config(
        {
            **MOCK_ENV,
            "OTEL_INSTRUMENTATION_GENAI_EVALUATION_SAMPLE_RATE": "0.25",
            "ASSISTANT_JUDGE_MODEL": "my-judge",
            "ASSISTANT_JUDGE_BASE_URL": "http://judge:1/v1/",
            "ASSISTANT_JUDGE_API_KEY": "sk-judge",
            "ASSISTANT_EVAL_QUEUE_SIZE": "3",
            "ASSISTANT_EVAL_TIMEOUT_S": "2.5",
        }
    )
    assert cfg.eval_sample_rate == 0.25 and cfg.judge_model == "my-judge"
    assert cfg.judge_base_url == "http://judge:1/v1" and cfg.judge_api_key == "sk-judge"
    assert (cfg.eval_queue_size, cfg.eval_timeout_s) == (3, 2.5)
    assert "sk-judge" not in repr(cfg) and "sk-chat" not in repr(cfg)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OTEL_INSTRUMENTATION_GENAI_EVALUATION_SAMPLE_RATE", "1.5"),
        ("OTEL_INSTRUMENTATION_GENAI_EVALUATION_SAMPLE_RATE", "-0.1"),
        ("OTEL_INSTRUMENTATION_GENAI_EVALUATION_SAMPLE_RATE", "nan"),
        ("OTEL_INSTRUMENTATION_GENAI_EVALUATION_SAMPLE_RATE", "half"),
        ("ASSISTANT_EVALUATIONS", "maybe"),
        ("ASSISTANT_JUDGE_MODEL", "a judge"),
        ("ASSISTANT_JUDGE_BASE_URL", "ftp://judge"),
        ("ASSISTANT_EVAL_QUEUE_SIZE", "0"),
        ("ASSISTANT_EVAL_QUEUE_SIZE", "many"),
        ("ASSISTANT_EVAL_TIMEOUT_S", "0"),
        ("ASSISTANT_EVAL_TIMEOUT_S", "soon"),
    ],
)
def test_config_errors_name_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        load_config({**MOCK_ENV, name: value})


def test_judge_request_follows_the_contract():
    body = judge_body("mock-judge", "why?", "because.", ["user: hi", "assistant: hello"])
    assert body["model"] == "mock-judge"
    assert body["temperature"] == 0 and body["response_format"] == {"type": "json_object"}
    assert "stream" not in body
    system, user = body["messages"]
    assert system["role"] == "system" and system["content"].splitlines()[0] == "llm-lab-judge/1"
    assert user["role"] == "user"
    assert json.loads(user["content"]) == {
        "question": "why?",
        "answer": "because.",
        "context": ["user: hi", "assistant: hello"],
    }


def test_parse_accepts_the_contract():
    parsed = parse_judge_response(
        completion(json.dumps({"evaluations": verdicts(toxicity={"score": 0, "label": "toxic"})}))
    )
    assert [v["name"] for v in parsed] == list(sc.EVALUATION_LABELS)
    assert parsed[2] == {"name": "toxicity", "score": 0, "label": "toxic", "reason": "fine"}


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        json.dumps([]),
        json.dumps({"evaluations": "x"}),
        json.dumps({"evaluations": verdicts()[:3]}),  # one missing
        json.dumps({"evaluations": [*verdicts(), verdicts()[0]]}),  # twice
        json.dumps({"evaluations": [*verdicts()[:3], {**verdicts()[3], "name": "vibes"}]}),
        json.dumps({"evaluations": verdicts(answered={"score": 1.5})}),
        json.dumps({"evaluations": verdicts(answered={"score": -1})}),
        json.dumps({"evaluations": verdicts(answered={"score": "1"})}),
        json.dumps({"evaluations": verdicts(answered={"score": True})}),
        json.dumps({"evaluations": verdicts(answered={"label": None})}),
        json.dumps({"evaluations": verdicts(answered={"label": "great"})}),
        json.dumps({"evaluations": verdicts(answered={"reason": 3})}),
        None,
    ],
)
def test_parse_rejects_every_deviation(content):
    with pytest.raises(JudgeError) as caught:
        parse_judge_response(completion(content))
    assert "fine" not in str(caught.value)  # the message never quotes the judge


@pytest.mark.parametrize("response", [None, {}, {"choices": []}, {"choices": [{}]}, "text"])
def test_parse_rejects_a_non_completion(response):
    with pytest.raises(JudgeError):
        parse_judge_response(response)


def test_trace_id_ratio_sampling():
    rng = random.Random(7)
    ids = [rng.getrandbits(128) for _ in range(20000)]
    assert all(trace_sampled(i, 1.0) for i in ids[:100])
    assert not any(trace_sampled(i, 0.0) for i in ids[:100])
    share = sum(trace_sampled(i, 0.3) for i in ids) / len(ids)
    assert 0.28 < share < 0.32
    # nested: a trace sampled at a rate is sampled at every higher rate
    assert all(trace_sampled(i, 0.6) for i in ids if trace_sampled(i, 0.3))


class _Counter:
    def __init__(self) -> None:
        self.added: list[tuple[int, dict]] = []

    def add(self, n, attributes):
        self.added.append((n, attributes))


def _fake_chat(trace_id: int, model: str = "gpt-4o-mini"):
    from opentelemetry.trace import SpanContext, TraceFlags

    context = SpanContext(trace_id, 1, is_remote=False, trace_flags=TraceFlags(1))
    span = SimpleNamespace(get_span_context=lambda: context)
    params = SimpleNamespace(
        model=model,
        response_id="resp_" + "0" * 32,
        messages=({"role": "system", "content": "s"}, {"role": "user", "content": "q"}),
    )
    call = SimpleNamespace(span=span, response_id="chatcmpl-1", text="an answer", params=params)
    return call, params


def test_an_explicit_rate_wins_over_the_switch():
    env = {**MOCK_ENV, RATE: "0.3"}
    assert load_config(env).eval_sample_rate == 0.3
    env = {**env, "ASSISTANT_EVALUATIONS": "true", RATE: "0"}
    assert load_config(env).eval_sample_rate == 0.0


def test_without_a_trace_the_response_id_is_the_sampling_key():
    """Telemetry off: every chat span context is invalid (trace id 0); the rate must still hold
    (trace id 0 alone would sample every answer)."""
    from opentelemetry.trace import INVALID_SPAN_CONTEXT

    evaluator, _ = _evaluator(0.3)
    rng = random.Random(3)
    decisions = []
    for _ in range(4000):
        call, params = _fake_chat(1)
        params.response_id = f"resp_{rng.getrandbits(128):032x}"
        call.span = SimpleNamespace(get_span_context=lambda: INVALID_SPAN_CONTEXT)
        decisions.append(evaluator.sampled(call))
    assert 0.27 < sum(decisions) / len(decisions) < 0.33


def _evaluator(rate: float, queue_size: int = 1):
    cfg = replace(load_config(MOCK_ENV), eval_sample_rate=rate, eval_queue_size=queue_size)
    counter = _Counter()
    inst = SimpleNamespace(evaluation_requests=counter)
    return Evaluator(cfg, inst), counter


def test_rate_zero_starts_nothing():
    evaluator, counter = _evaluator(0.0)
    before = threading.active_count()
    assert not evaluator.offer(*_fake_chat(5), "s", None)
    assert evaluator._thread is None and threading.active_count() == before
    assert counter.added == []


def test_full_queue_drops_and_counts_without_blocking(monkeypatch):
    evaluator, counter = _evaluator(1.0, queue_size=1)
    gate = threading.Event()
    monkeypatch.setattr(evaluator, "evaluate", lambda request: gate.wait(10))
    try:
        started = time.perf_counter()
        queued = [evaluator.offer(*_fake_chat(i + 1), "s", None) for i in range(20)]
        elapsed = time.perf_counter() - started
        assert elapsed < 0.5, elapsed
        assert 1 <= sum(queued) <= 2  # one being evaluated, one queued
        dropped = [n for n, a in counter.added if a == {"outcome": "dropped"}]
        assert sum(dropped) == 20 - sum(queued)
    finally:
        gate.set()
        evaluator.stop(2.0)


def test_an_answer_of_the_judge_model_is_still_a_chat():
    """Only chats are offered (the judge's calls never are): a chat with the judge's model name
    (the real API's default judge gpt-4o-mini is also a chat model) is evaluated."""
    evaluator, _ = _evaluator(1.0)
    evaluator.evaluate = lambda request: None
    try:
        assert evaluator.offer(*_fake_chat(3, model="gpt-4o-mini"), "s", None)
    finally:
        evaluator.stop(2.0)


class _Span:
    def __init__(self) -> None:
        self.attributes: dict = {}

    def set_attribute(self, key, value):
        self.attributes[key] = value


@pytest.mark.parametrize(
    ("usage", "recorded"),
    [
        ({"prompt_tokens": 412, "completion_tokens": 97}, {"in": 412, "out": 97}),
        ({"prompt_tokens": 412}, {"in": 412}),  # what is there, each on its own
        ({"prompt_tokens": 4.0, "completion_tokens": True}, {}),  # not integers
        ({"prompt_tokens": -1, "completion_tokens": "7"}, {}),
        (None, {}),
        ("412", {}),
    ],
)
def test_the_judge_span_records_integer_usage_only(usage, recorded):
    from assistant.evals.evaluator import _record_usage

    span = _Span()
    _record_usage(span, usage)
    names = {"in": sc.GEN_AI_USAGE_INPUT_TOKENS, "out": sc.GEN_AI_USAGE_OUTPUT_TOKENS}
    assert span.attributes == {names[k]: v for k, v in recorded.items()}
