"""Wire format: what the official SDK parses, byte layout of the stream, models, auth."""

from __future__ import annotations

import json

import openai
import pytest
import requests

from .conftest import QUESTION


def test_non_stream_parses_with_usage(mock, client_for):
    client = client_for(mock)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=QUESTION, max_completion_tokens=40
    )
    completion = raw.parse()
    assert raw.headers["x-request-id"].startswith("req_")
    assert int(raw.headers["x-ratelimit-limit-requests"]) == 10000
    assert int(raw.headers["x-ratelimit-remaining-requests"]) < 10000
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4o-mini"
    assert completion.id.startswith("chatcmpl-")
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert len(choice.message.content) > 20
    assert choice.finish_reason in ("stop", "length")
    usage = completion.usage
    # 3 per message + ceil(chars / 4) + 3 for the reply priming
    assert usage.prompt_tokens == 3 + -(-len(QUESTION[0]["content"]) // 4) + 3
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert 1 <= usage.completion_tokens <= 40


def test_stream_with_usage_parses_and_agrees_with_non_stream(mock, client_for):
    client = client_for(mock)
    kwargs = {"model": "gpt-4.1-mini", "messages": QUESTION, "seed": 7}
    full = client.chat.completions.create(**kwargs)
    chunks = list(
        client.chat.completions.create(
            **kwargs, stream=True, stream_options={"include_usage": True}
        )
    )
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    text = "".join(c.choices[0].delta.content for c in content_chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].choices[0].delta.content == ""
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert all(c.usage is None for c in chunks[:-1])
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert len({c.id for c in chunks}) == 1
    assert text == full.choices[0].message.content
    assert last.usage.model_dump() == full.usage.model_dump()
    assert last.usage.completion_tokens == len(content_chunks)
    assert full.choices[0].finish_reason == "stop"


def raw_stream(service, model: str, **body) -> tuple[requests.Response, list[bytes]]:
    """A streamed answer read as the server wrote it: one item per HTTP chunk (one write)."""
    response = requests.post(
        f"{service.base_url}/chat/completions",
        headers={"Authorization": f"Bearer {service.api_key}"},
        json={"model": model, "messages": QUESTION, "stream": True, **body},
        stream=True,
        timeout=30,
    )
    assert response.status_code == 200
    return response, list(response.raw.read_chunked(decode_content=False))


def events_of(write: bytes) -> list[dict | str]:
    texts = write.decode().split("\n\n")
    assert texts[-1] == ""
    return [t if t == "data: [DONE]" else json.loads(t.removeprefix("data: ")) for t in texts[:-1]]


def test_stream_raw_bytes_layout(mock):
    response, writes = raw_stream(
        mock,
        "gpt-4o-mini",
        max_completion_tokens=5,
        tools=[{"type": "function", "function": {"name": "ignored"}}],
        reasoning_effort="low",
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    events = b"".join(writes).decode().split("\n\n")
    assert events[-1] == ""
    assert events[-2] == "data: [DONE]"
    payloads = [json.loads(e.removeprefix("data: ")) for e in events[:-2]]
    assert all("usage" not in p for p in payloads)  # no include_usage: no usage key at all
    assert [p["choices"][0]["finish_reason"] for p in payloads][-1] == "length"
    assert len(payloads) == 1 + 5 + 1  # role, five content chunks, finish
    assert all(p["object"] == "chat.completion.chunk" for p in payloads)
    # the default role_chunk: with_first_token: the role chunk and the first token in one write
    role, first = events_of(writes[0])
    assert role["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert first["choices"][0]["delta"]["content"]
    assert [len(events_of(w)) for w in writes] == [2, 1, 1, 1, 1, 2]  # ..., finish + [DONE]


def test_early_role_chunk_keeps_the_old_wire_order(fast_mock):
    """role_chunk: early: the role chunk is a write of its own, sent before the TTFT sleep."""
    _, writes = raw_stream(fast_mock, "early", stream_options={"include_usage": True})
    events = [events_of(w) for w in writes]
    tokens = len(events) - 2
    assert tokens >= 8
    assert [len(e) for e in events] == [1] * (1 + tokens) + [3]  # role, tokens, finish+usage+DONE
    role = events[0][0]
    assert role["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert role["usage"] is None
    assert all(e[0]["choices"][0]["delta"]["content"] for e in events[1:-1])
    assert events[-1][0]["choices"][0]["finish_reason"] == "stop"
    assert events[-1][1]["choices"] == [] and events[-1][1]["usage"]["completion_tokens"] == tokens
    assert events[-1][2] == "data: [DONE]"


def test_max_tokens_caps_length(mock, client_for):
    completion = client_for(mock).chat.completions.create(
        model="gpt-4o", messages=QUESTION, max_tokens=3
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.completion_tokens == 3


def test_content_parts_and_roles_accepted(mock, client_for):
    messages = [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Tell me about tomatoes"}]},
        {"role": "assistant", "content": None, "tool_calls": []},
        {"role": "user", "content": "and cucumbers?"},
    ]
    completion = client_for(mock).chat.completions.create(
        model="gpt-4o-mini", messages=messages, max_completion_tokens=5
    )
    # 4 messages: 4 * 3 + ceil(9/4) + ceil(22/4) + 0 + ceil(14/4) + 3
    assert completion.usage.prompt_tokens == 12 + 3 + 6 + 0 + 4 + 3


def test_models_list_and_retrieve(mock, client_for):
    client = client_for(mock)
    models = {m.id: m for m in client.models.list()}
    assert {"gpt-4o", "gpt-4o-mini", "gpt-4.1-mini", "o3-mini"} <= set(models)
    entry = models["gpt-4o"].model_dump()
    assert entry["object"] == "model" and entry["root"] == "gpt-4o"
    qualities = {
        name: tuple(sorted(m.model_dump()["mock_profile"]["quality"].items()))
        for name, m in models.items()
    }
    assert len(set(qualities.values())) == len(qualities)  # the judge's: all zero
    assert all(0 <= rate <= 1 for q in qualities.values() for _, rate in q)
    assert {trait for trait, _ in qualities["gpt-4o"]} == {
        "off_topic",
        "unsupported_claim",
        "unsafe",
        "non_answer",
    }
    assert client.models.retrieve("o3-mini").id == "o3-mini"
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("gpt-9")
    assert caught.value.code == "model_not_found"


def test_profiles_are_distinct(mock):
    profiles = requests.get(f"{mock.url}/admin/profiles", timeout=10).json()["models"]
    ttfts = [p["ttft_ms"] for p in profiles.values()]
    speeds = [p["tokens_per_s"] for p in profiles.values()]
    assert len(set(ttfts)) == len(ttfts) and len(set(speeds)) == len(speeds)
    assert profiles["o3-mini"]["reasoning"] is True
    assert {p["role_chunk"] for p in profiles.values()} == {"with_first_token"}  # the default


def test_unknown_model_in_chat_is_404(mock, client_for):
    with pytest.raises(openai.NotFoundError) as caught:
        client_for(mock).chat.completions.create(model="gpt-9", messages=QUESTION)
    assert caught.value.code == "model_not_found"
    assert "`gpt-9` does not exist" in caught.value.message


def test_wrong_and_missing_api_key_are_401(mock):
    bad = openai.OpenAI(base_url=mock.base_url, api_key="sk-wrong-key-123", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        bad.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    assert caught.value.code == "invalid_api_key"
    assert "sk-wrong-key-123" not in caught.value.message  # masked, like OpenAI
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    bad.close()
    response = requests.get(f"{mock.base_url}/models", timeout=10)
    assert response.status_code == 401
    assert response.json()["error"]["message"].startswith("Missing bearer")


def test_reasoning_model_rejects_max_tokens(mock, client_for):
    client = client_for(mock)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="o3-mini", messages=QUESTION, max_tokens=10)
    assert caught.value.code == "unsupported_parameter"
    assert caught.value.param == "max_tokens"
    ok = client.chat.completions.create(model="o3-mini", messages=QUESTION, max_completion_tokens=2)
    assert ok.usage.completion_tokens == 2


def test_context_length_exceeded(mock, client_for):
    huge = [{"role": "user", "content": "word " * 110_000}]  # ~137k tokens > 128k window
    with pytest.raises(openai.BadRequestError) as caught:
        client_for(mock).chat.completions.create(model="gpt-4o-mini", messages=huge)
    assert caught.value.code == "context_length_exceeded"
    assert caught.value.param == "messages"


def test_healthz_and_metrics(mock, client_for):
    assert requests.get(f"{mock.url}/healthz", timeout=10).json()["status"] == "ok"
    before = mock.metric("mock_llm_completion_tokens_total", model="gpt-4o-mini")
    client_for(mock).chat.completions.create(
        model="gpt-4o-mini", messages=QUESTION, max_completion_tokens=4
    )
    text = requests.get(f"{mock.url}/metrics", timeout=10).text
    assert "# TYPE mock_llm_requests_total counter" in text
    assert mock.metric("mock_llm_completion_tokens_total", model="gpt-4o-mini") == before + 4
    assert mock.metric("mock_llm_active_streams", model="gpt-4o-mini") == 0
    assert mock.metric("mock_llm_requests_total", model="gpt-4o-mini", status="200") >= 1
