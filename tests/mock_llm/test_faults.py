"""Every fault maps to the exception the SDK raises against OpenAI; admin API; limits."""

from __future__ import annotations

import itertools
import threading
import time

import openai
import pytest
import requests

from .conftest import QUESTION


def fault(kind: str) -> dict:
    return {"extra_headers": {"x-mock-fault": kind}}


def stream_chunks(client, model="fast", **kwargs):
    received = []
    stream = client.chat.completions.create(model=model, messages=QUESTION, stream=True, **kwargs)
    for chunk in stream:
        received.append(chunk)
    return received


@pytest.fixture(autouse=True)
def clean(fast_mock):
    fast_mock.reset()
    yield
    fast_mock.reset()


@pytest.mark.parametrize(
    ("kind", "exception", "status", "code"),
    [
        ("429", openai.RateLimitError, 429, "rate_limit_exceeded"),
        ("quota", openai.RateLimitError, 429, "insufficient_quota"),
        ("500", openai.InternalServerError, 500, None),
        ("503", openai.InternalServerError, 503, None),
        ("401", openai.AuthenticationError, 401, "invalid_api_key"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_status_faults(fast_mock, client_for, kind, exception, status, code, stream):
    with pytest.raises(exception) as caught:
        client_for(fast_mock).chat.completions.create(
            model="fast", messages=QUESTION, stream=stream, **fault(kind)
        )
    assert caught.value.status_code == status
    assert caught.value.code == code
    if kind == "429":
        assert caught.value.response.headers["retry-after-ms"] == "300"
        assert caught.value.response.headers["retry-after"] == "1"


def test_429_retries_honour_retry_after(fast_mock, client_for):
    client = client_for(fast_mock, max_retries=2)
    before = fast_mock.metric("mock_llm_requests_total", model="fast", status="429")
    started = time.monotonic()
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="fast", messages=QUESTION, **fault("429"))
    elapsed = time.monotonic() - started
    after = fast_mock.metric("mock_llm_requests_total", model="fast", status="429")
    assert after - before == 3  # first try + 2 retries
    assert 0.55 <= elapsed < 2.0  # two waits of retry-after-ms=300 (the SDK adds no jitter)


def test_quota_is_not_retried(fast_mock, client_for):
    client = client_for(fast_mock, max_retries=2)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="fast", messages=QUESTION, **fault("quota"))
    assert [r["status"] for r in fast_mock.requests_log()] == [429]


def test_retry_succeeds_once_admin_clears_the_fault(fast_mock, client_for):
    fast_mock.set_faults({"models": {"fast": {"429": 1.0}}})
    client = client_for(fast_mock, max_retries=3)
    threading.Timer(0.15, fast_mock.reset).start()
    completion = client.chat.completions.create(
        model="fast", messages=QUESTION, max_completion_tokens=3
    )
    assert completion.choices[0].finish_reason == "length"
    statuses = [r["status"] for r in fast_mock.requests_log()]
    assert statuses[-1] == 200
    assert fast_mock.metric("mock_llm_faults_total", model="fast", kind="429") >= 1


def test_500_is_retried_by_the_sdk(fast_mock, client_for):
    client = client_for(fast_mock, max_retries=1)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="fast", messages=QUESTION, **fault("500"))
    assert [r["status"] for r in fast_mock.requests_log()] == [500, 500]


def test_midstream_error_raises_api_error(fast_mock, client_for):
    client = client_for(fast_mock)
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in client.chat.completions.create(
            model="fast", messages=QUESTION, stream=True, **fault("midstream_error")
        ):
            received.append(chunk)
    assert not isinstance(caught.value, openai.APIStatusError)
    assert "server had an error" in caught.value.message
    assert sum(1 for c in received if c.choices[0].delta.content) == 3


def test_midstream_error_without_stream_is_500(fast_mock, client_for):
    with pytest.raises(openai.InternalServerError):
        client_for(fast_mock).chat.completions.create(
            model="fast", messages=QUESTION, **fault("midstream_error")
        )


def test_disconnect_raises_connection_error(fast_mock, client_for):
    client = client_for(fast_mock)
    received = []
    with pytest.raises(openai.APIConnectionError) as caught:
        for chunk in client.chat.completions.create(
            model="fast", messages=QUESTION, stream=True, **fault("disconnect")
        ):
            received.append(chunk)
    assert not isinstance(caught.value, openai.APITimeoutError)
    assert sum(1 for c in received if c.choices[0].delta.content) == 3
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="fast", messages=QUESTION, **fault("disconnect"))


def test_truncate_raises_nothing_but_has_no_finish(fast_mock, client_for):
    chunks = stream_chunks(
        client_for(fast_mock), stream_options={"include_usage": True}, **fault("truncate")
    )
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) == 3
    assert all(c.choices[0].finish_reason is None for c in chunks)
    assert all(c.usage is None for c in chunks)


def test_stall_times_out_and_releases_the_connection(fast_mock, client_for):
    client = client_for(fast_mock, timeout=1.0)
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        stream_chunks(client, **fault("stall"))
    assert 0.9 < time.monotonic() - started < 3.0
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="fast", messages=QUESTION, **fault("stall"))
    # the server notices the client left well before MOCK_LLM_STALL_S (5 s)
    deadline = time.monotonic() + 3.0
    while fast_mock.metric("mock_llm_active_streams", model="fast") != 0:
        assert time.monotonic() < deadline, "stalled answers still hold their slots"
        time.sleep(0.1)


def test_slow_first_token_and_slow_stream(fast_mock, client_for):
    client = client_for(fast_mock)

    def timings(kind):
        started = time.monotonic()
        stamps = []
        for chunk in client.chat.completions.create(
            model="fast", messages=QUESTION, stream=True, max_completion_tokens=6, **fault(kind)
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                stamps.append(time.monotonic() - started)
        gaps = [b - a for a, b in itertools.pairwise(stamps)]
        return stamps[0], sorted(gaps)[len(gaps) // 2]

    ttft, _ = timings("slow_first_token")
    assert 0.68 <= ttft <= 1.0  # 100 ms + 600 ms
    _, gap = timings("slow_stream")
    assert 0.085 <= gap <= 0.125  # 25 ms * 4


def test_model_suffix_selects_a_fault(fast_mock, client_for):
    with pytest.raises(openai.InternalServerError):
        client_for(fast_mock).chat.completions.create(model="fast:fault-503", messages=QUESTION)
    with pytest.raises(openai.NotFoundError):
        client_for(fast_mock).chat.completions.create(model="fast:fault-nope", messages=QUESTION)


def test_unknown_fault_header_is_400(fast_mock, client_for):
    with pytest.raises(openai.BadRequestError) as caught:
        client_for(fast_mock).chat.completions.create(
            model="fast", messages=QUESTION, **fault("meteor")
        )
    assert caught.value.param == "x-mock-fault"


def test_profile_fault_rate_is_seeded(fast_mock, client_for):
    client = client_for(fast_mock)

    def outcomes():
        fast_mock.reset()
        result = []
        for index in range(40):
            try:
                client.chat.completions.create(
                    model="flaky", messages=[{"role": "user", "content": f"question {index}"}]
                )
                result.append("ok")
            except openai.InternalServerError:
                result.append("500")
        return result

    first = outcomes()
    assert 4 <= first.count("500") <= 20  # rate 0.3 of 40
    assert outcomes() == first


def test_admin_faults_round_trip_and_validation(fast_mock):
    url = f"{fast_mock.url}/admin/faults"
    body = {"rates": {"503": 0.25}, "models": {"fast": {"truncate": 0.5}}}
    document = fast_mock.set_faults(body)
    assert document["rates"] == {"503": 0.25}
    assert document["effective"]["fast"] == {"503": 0.25, "truncate": 0.5}
    assert document["effective"]["flaky"] == {"500": 0.3, "503": 0.25}
    assert requests.get(url, timeout=10).json()["models"] == {"fast": {"truncate": 0.5}}
    bad_bodies = [
        b"not json",
        b"[1, 2]",
        b'{"rates": {"418": 0.1}}',
        b'{"rates": {"500": 2}}',
        b'{"rates": {"500": "often"}}',
        b'{"rates": {"500": 0.7, "503": 0.7}}',
        b'{"models": {"gpt-9": {"500": 0.1}}}',
        b'{"models": []}',
        b'{"surprise": 1}',
    ]
    for raw in bad_bodies:
        response = requests.put(url, data=raw, timeout=10)
        assert response.status_code == 400, raw
        assert response.json()["error"]["type"] == "invalid_request_error", raw
    assert requests.get(url, timeout=10).json()["rates"] == {"503": 0.25}  # unchanged
    fast_mock.reset()
    assert requests.get(url, timeout=10).json()["rates"] == {}


def test_rpm_limit_and_headers(fast_mock, client_for):
    client = client_for(fast_mock)
    remaining = []
    for _ in range(3):
        raw = client.chat.completions.with_raw_response.create(
            model="rpm-limited", messages=QUESTION
        )
        remaining.append(int(raw.headers["x-ratelimit-remaining-requests"]))
        assert raw.headers["x-ratelimit-limit-requests"] == "3"
    assert remaining == [2, 1, 0]
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="rpm-limited", messages=QUESTION)
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.type == "requests"
    assert "(RPM): Limit 3" in caught.value.message
    assert 1 <= int(caught.value.response.headers["retry-after-ms"]) <= 20_000


def test_tpm_limit(fast_mock, client_for):
    client = client_for(fast_mock)
    client.chat.completions.create(model="tpm-limited", messages=QUESTION)  # ~20 tokens
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(
            model="tpm-limited", messages=[{"role": "user", "content": "x" * 400}]
        )
    assert caught.value.type == "tokens"
    assert caught.value.response.headers["x-ratelimit-limit-tokens"] == "100"


def test_queue_overflow_is_429_and_queue_wait_adds_to_ttft(fast_mock, client_for):
    """tiny-queue: one slot, one queue place, 1 s per answer."""
    started: dict[int, float] = {}
    finished: dict[int, float] = {}

    def call(index):
        started[index] = time.monotonic()
        client_for(fast_mock).chat.completions.create(model="tiny-queue", messages=QUESTION)
        finished[index] = time.monotonic()

    def wait_for(name, value):
        deadline = time.monotonic() + 10
        while fast_mock.metric(name, model="tiny-queue") != value:
            assert time.monotonic() < deadline, f"{name} never reached {value}"
            time.sleep(0.02)

    first = threading.Thread(target=call, args=(1,))
    first.start()
    wait_for("mock_llm_active_streams", 1)
    second = threading.Thread(target=call, args=(2,))
    second.start()
    wait_for("mock_llm_queued_requests", 1)
    with pytest.raises(openai.RateLimitError) as caught:
        client_for(fast_mock).chat.completions.create(model="tiny-queue", messages=QUESTION)
    assert "Too many concurrent requests" in caught.value.message
    first.join(timeout=10)
    second.join(timeout=10)
    head_start = started[2] - started[1]
    # the queued request waited for the rest of the first one, then took its own second
    assert finished[2] - started[2] >= (1.0 - head_start) + 1.0 - 0.05
    assert finished[2] >= finished[1] + 0.95
