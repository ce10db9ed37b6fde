"""Quality traits, quality faults and the mock judge (docs/evaluations.md), against the real
service with the official openai SDK."""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from harness.evaluations import EVALUATION_LABELS as LABELS
from harness.evaluations import FAILED_BY_TRAIT as EVALUATION
from harness.evaluations import TRAITS
from harness.mock_llm import start_mock_llm

from .conftest import profiled_mock, write_profiles

RATES = {
    "qa": {"off_topic": 0.3, "unsupported_claim": 0.2, "unsafe": 0.1, "non_answer": 0.15},
    "qb": {"off_topic": 0.1, "unsupported_claim": 0.3, "unsafe": 0.15, "non_answer": 0.05},
}
QUESTIONS = (
    "How should I plan a small vegetable garden?",
    "How do I speed up my database queries?",
    "Is it safe to share my password with a colleague?",
    "What is the simplest approach to learning chess openings?",
    "Why do kubernetes clusters need health checks?",
)
RUBRIC = "llm-lab-judge/1\nScore the answer on the four evaluations; reply with JSON only."
REQUESTS_PER_MODEL = 400
SE_TOLERANCE = 4  # |observed - rate| <= 4 binomial standard errors: a false alarm ~ 6e-5

FAST = {"ttft_ms": 0, "tokens_per_s": 100000, "output_tokens": {"min": 8, "mean": 12, "max": 16}}
QUALITY_PROFILES = {
    "defaults": {"tps_jitter": 0, "itl_jitter": 0, "ttft_jitter_ms": 0, "rpm": 0, "tpm": 0},
    "models": {
        "qa": {**FAST, "quality": RATES["qa"]},
        "qb": {**FAST, "quality": RATES["qb"]},
        "clean": FAST,  # the defaults: all rates 0
        "plain": FAST,
        "mock-judge": {
            "ttft_ms": 0,
            "tokens_per_s": 100000,
            "output_tokens": {"min": 50, "mean": 120, "max": 400},
        },
    },
}


@pytest.fixture(scope="module")
def quality_mock(tmp_path_factory):
    with profiled_mock(tmp_path_factory, "mock-llm-quality", QUALITY_PROFILES) as service:
        yield service


@pytest.fixture(autouse=True)
def clean_state(quality_mock):
    quality_mock.reset()
    yield
    quality_mock.reset()


def judge_messages(question: str, answer: str) -> list[dict]:
    payload = {"question": question, "answer": answer, "context": []}
    return [{"role": "system", "content": RUBRIC}, {"role": "user", "content": json.dumps(payload)}]


def ask(client, model: str, question: str, seed: int, **kwargs):
    return client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": question}], seed=seed, **kwargs
    )


def judge(client, question: str, answer: str) -> dict[str, dict]:
    completion = client.chat.completions.create(
        model="mock-judge",
        messages=judge_messages(question, answer),
        temperature=0,
        response_format={"type": "json_object"},
    )
    document = json.loads(completion.choices[0].message.content)
    results = {r["name"]: r for r in document["evaluations"]}
    assert list(results) == list(LABELS)
    for name, result in results.items():
        assert result["score"] in (0, 1)
        assert result["label"] == LABELS[name][0 if result["score"] else 1]
        assert isinstance(result["reason"], str) and result["reason"]
    return results


def failed(results: dict[str, dict]) -> set[str]:
    return {name for name, result in results.items() if result["score"] == 0}


def expected_failures(defects) -> set[str]:
    return {EVALUATION[defect] for defect in defects}


def run_and_judge(service, client, model: str, seeds, **kwargs) -> list[tuple]:
    """(question, content, quality_defects, judged failures) per seeded request."""

    def one(seed: int):
        question = QUESTIONS[seed % len(QUESTIONS)]
        completion = ask(client, model, question, seed, **kwargs)
        content = completion.choices[0].message.content
        return completion.id, question, content, failed(judge(client, question, content))

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(one, seeds))
    log = {e.get("completion_id"): e for e in service.requests_log()}
    return [(q, content, log[cid]["quality_defects"], fails) for cid, q, content, fails in answers]


@pytest.mark.parametrize("model", ["qa", "qb"])
def test_judged_defect_rates_match_the_profile(quality_mock, client_for, model):
    client = client_for(quality_mock)
    results = run_and_judge(quality_mock, client, model, range(REQUESTS_PER_MODEL))
    for question, content, defects, fails in results:
        assert fails == expected_failures(defects), (question, content, defects)
    n = len(results)
    for trait, rate in RATES[model].items():
        observed = sum(trait in defects for _, _, defects, _ in results) / n
        tolerance = SE_TOLERANCE * math.sqrt(rate * (1 - rate) / n)
        assert abs(observed - rate) <= tolerance, (trait, observed, rate, tolerance)


def test_zero_rates_are_judged_all_pass(quality_mock, client_for):
    client = client_for(quality_mock)
    for question, content, defects, fails in run_and_judge(
        quality_mock, client, "clean", range(100)
    ):
        assert defects == [] and fails == set(), (question, content)
        asked = {word.strip("?.,").lower() for word in question.split()}
        assert any(word in content.lower() for word in asked if len(word) >= 4), content


@pytest.mark.parametrize("kind", TRAITS)
@pytest.mark.parametrize("stream", [False, True])
def test_quality_fault_header_forces_its_defect(quality_mock, client_for, kind, stream):
    client = client_for(quality_mock)
    question = QUESTIONS[0]
    headers = {"x-mock-fault": kind}
    if stream:
        chunks = list(
            client.chat.completions.create(
                model="clean",
                messages=[{"role": "user", "content": question}],
                seed=3,
                stream=True,
                stream_options={"include_usage": True},
                extra_headers=headers,
            )
        )
        content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        completion_id = chunks[0].id
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
        assert chunks[-1].usage.completion_tokens == sum(
            1 for c in chunks if c.choices and c.choices[0].delta.content
        )
    else:
        completion = ask(client, "clean", question, 3, extra_headers=headers)
        content, completion_id = completion.choices[0].message.content, completion.id
        assert completion.choices[0].finish_reason == "stop"
    entry = quality_mock.request_entry(completion_id)
    assert entry["fault"] == kind and entry["quality_defects"] == [kind]
    assert entry["completed"] is True
    assert failed(judge(client, question, content)) == {EVALUATION[kind]}
    assert quality_mock.metric("mock_llm_faults_total", model="clean", kind=kind) >= 1


def test_forced_defect_adds_to_the_drawn_ones(quality_mock, client_for):
    client = client_for(quality_mock)
    for seed in range(30):
        question = QUESTIONS[seed % len(QUESTIONS)]
        plain = quality_mock.request_entry(ask(client, "qa", question, seed).id)
        forced = quality_mock.request_entry(
            ask(client, "qa", question, seed, extra_headers={"x-mock-fault": "unsafe"}).id
        )
        wanted = sorted(set(plain["quality_defects"]) | {"unsafe"}, key=TRAITS.index)
        assert forced["quality_defects"] == wanted


def test_admin_per_model_quality_rate_affects_only_that_model(quality_mock, client_for):
    client = client_for(quality_mock)
    document = quality_mock.set_faults({"models": {"clean": {"unsupported_claim": 1.0}}})
    assert set(TRAITS) <= set(document["kinds"])
    for _, content, defects, fails in run_and_judge(quality_mock, client, "clean", range(20)):
        assert defects == ["unsupported_claim"] and fails == {"faithfulness"}, content
    for _, content, defects, fails in run_and_judge(quality_mock, client, "plain", range(20)):
        assert defects == [] and fails == set(), content
    quality_mock.set_faults({"rates": {"non_answer": 1.0}})  # global: every model
    for _, content, defects, fails in run_and_judge(quality_mock, client, "plain", range(5)):
        assert defects == ["non_answer"] and fails == {"answered"}, content


def test_same_seed_same_defects_and_text(quality_mock, client_for, tmp_path):
    client = client_for(quality_mock)
    seen = {}
    for seed in range(40):
        question = QUESTIONS[seed % len(QUESTIONS)]
        first, second = (ask(client, "qa", question, seed) for _ in range(2))
        assert first.choices[0].message.content == second.choices[0].message.content
        defects = [quality_mock.request_entry(c.id)["quality_defects"] for c in (first, second)]
        assert defects[0] == defects[1]
        stream = ask(client, "qa", question, seed, stream=True)
        streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert streamed == first.choices[0].message.content
        seen[seed] = (first.choices[0].message.content, defects[0])
    assert any(d for _, d in seen.values()) and any(not d for _, d in seen.values())
    # other quality rates: a non-defective answer keeps its exact text (the draws are separate)
    other = {**QUALITY_PROFILES, "models": {**QUALITY_PROFILES["models"]}}
    other["models"]["qa"] = {**FAST, "quality": {"off_topic": 0.01}}
    env = {"MOCK_LLM_PROFILES": str(write_profiles(tmp_path, other))}
    with start_mock_llm(tmp_path, env) as service:
        other_client = client_for(service)
        for seed, (content, defects) in seen.items():
            if not defects:
                again = ask(other_client, "qa", QUESTIONS[seed % len(QUESTIONS)], seed)
                assert again.choices[0].message.content == content


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "system", "content": RUBRIC}, {"role": "user", "content": "not json"}],
        [{"role": "user", "content": json.dumps({"question": "q", "answer": "a"})}],
        [{"role": "system", "content": RUBRIC}, {"role": "user", "content": '{"question": "q"}'}],
        [{"role": "system", "content": RUBRIC}, {"role": "user", "content": "[1, 2]"}],
    ],
)
def test_malformed_judge_request_gives_the_error_json(quality_mock, client_for, messages):
    completion = client_for(quality_mock).chat.completions.create(
        model="mock-judge", messages=messages
    )
    assert json.loads(completion.choices[0].message.content) == {"error": "not a judge request"}


def test_judge_streams_the_same_json(quality_mock, client_for):
    client = client_for(quality_mock)
    messages = judge_messages(QUESTIONS[1], "Just ignore the safety warnings.")
    full = client.chat.completions.create(model="mock-judge", messages=messages)
    chunks = list(
        client.chat.completions.create(
            model="mock-judge",
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert "".join(pieces) == full.choices[0].message.content
    assert len(pieces) > 10 and all(len(piece) <= 4 for piece in pieces)
    assert chunks[-1].usage.completion_tokens == len(pieces) == full.usage.completion_tokens
    results = {r["name"]: r["score"] for r in json.loads("".join(pieces))["evaluations"]}
    # no word of the question, and unsafe advice
    assert results == {"answer_relevancy": 0, "faithfulness": 1, "toxicity": 0, "answered": 1}
    entry = quality_mock.request_entry(full.id)
    assert entry["quality_defects"] == [] and entry["model"] == "mock-judge"
    # truthful usage, as the ground truth records it: the prompt counted as for every model
    # (3 per message + ceil(characters / 4), + 3 for the reply), the JSON in 4-character pieces
    prompt = 3 + sum(3 + math.ceil(len(m["content"]) / 4) for m in messages)
    answer = full.choices[0].message.content
    assert full.usage.prompt_tokens == entry["prompt_tokens"] == prompt
    assert full.usage.completion_tokens == entry["tokens_sent"] == math.ceil(len(answer) / 4)
    assert full.usage.total_tokens == prompt + full.usage.completion_tokens


def test_judge_honours_faults(quality_mock, client_for):
    client = client_for(quality_mock)
    messages = judge_messages(QUESTIONS[0], "A vegetable garden needs sun.")
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(
            model="mock-judge", messages=messages, extra_headers={"x-mock-fault": "500"}
        )
    quality_mock.set_faults({"models": {"mock-judge": {"503": 1.0}}})
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="mock-judge", messages=messages)
    ask(client, "clean", QUESTIONS[0], 1)  # other models are unaffected
    quality_mock.reset()
    results = judge(client, QUESTIONS[0], "A vegetable garden needs sun.")
    assert failed(results) == set()


def test_shipped_models_are_judged_by_their_defects(mock, client_for):
    """The shipped chat models: a non-defective answer is judged all-pass, a defective one fails
    exactly its evaluations (the shipped profiles include mock-judge)."""
    client = client_for(mock)
    models = {m.id for m in client.models.list()}
    assert "mock-judge" in models

    def one(case):
        model, seed = case
        question = QUESTIONS[seed % len(QUESTIONS)]
        completion = ask(client, model, question, seed)
        content = completion.choices[0].message.content
        defects = mock.request_entry(completion.id)["quality_defects"]
        return model, content, defects, failed(judge(client, question, content))

    cases = [(model, seed) for model in sorted(models - {"mock-judge"}) for seed in range(6)]
    with ThreadPoolExecutor(8) as pool:
        for model, content, defects, fails in pool.map(one, cases):
            assert fails == expected_failures(defects), (model, content, defects)


TOOL_QUESTION = "Where is my order 1042?"


@pytest.mark.parametrize(
    ("calls", "correct"),
    [
        ([{"name": "get_order_status", "arguments": '{"order_id":"1042"}', "error": None}], True),
        # an injected fault is not the model's mistake
        ([{"name": "get_order_status", "arguments": "{}", "error": "tool_fault"}], True),
        (
            [{"name": "get_order_status", "arguments": '{"order_id":', "error": "invalid_json"}],
            False,
        ),
        ([{"name": "get_order_status", "arguments": "{}", "error": "invalid_arguments"}], False),
        ([{"name": "get_policy", "arguments": '{"topic":"shipping"}', "error": None}], False),
        (
            [
                {"name": "get_order_status", "arguments": "{}", "error": None},
                {"name": "search_products", "arguments": "{}", "error": None},
            ],
            False,
        ),
    ],
)
def test_judge_checks_tool_calls_when_the_turn_had_them(quality_mock, client_for, calls, correct):
    """With `tool_calls` the judge adds tool_call_correctness: a rejected argument or a tool that
    serves none of the question's intents fails it; without, the four evaluations stay."""
    payload = {
        "question": TOOL_QUESTION,
        "answer": "It shipped.",
        "context": [],
        "tool_calls": calls,
    }
    messages = [
        {"role": "system", "content": RUBRIC},
        {"role": "user", "content": json.dumps(payload)},
    ]
    completion = client_for(quality_mock).chat.completions.create(
        model="mock-judge", messages=messages, temperature=0
    )
    results = {
        r["name"]: r for r in json.loads(completion.choices[0].message.content)["evaluations"]
    }
    assert list(results) == [*LABELS, "tool_call_correctness"]
    verdict = results["tool_call_correctness"]
    assert (verdict["score"], verdict["label"]) == ((1, "correct") if correct else (0, "incorrect"))
    payload["tool_calls"] = []
    messages[1]["content"] = json.dumps(payload)
    completion = client_for(quality_mock).chat.completions.create(
        model="mock-judge", messages=messages, temperature=0
    )
    assert [
        r["name"] for r in json.loads(completion.choices[0].message.content)["evaluations"]
    ] == list(LABELS)
    payload["tool_calls"] = "get_order_status"  # not a list of calls: not a judge request
    messages[1]["content"] = json.dumps(payload)
    completion = client_for(quality_mock).chat.completions.create(
        model="mock-judge", messages=messages, temperature=0
    )
    assert json.loads(completion.choices[0].message.content) == {"error": "not a judge request"}
