"""Role-chunk timing and the mock's ground truth: what it scheduled and sent, per request.

The mock records, for every admitted answer, its queue wait, the TTFT it scheduled (from the
request's arrival), its plan (TTFT parts, planned gaps) and what it actually sent, in the request
log (`/admin/requests`, `/admin/requests/<id>`) and in `x-mock-*` headers. Clients measure from
before they send, so a client's TTFT can never be below the scheduled one.
"""

from __future__ import annotations

import json
import re
import socket
import statistics
import threading
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import openai
import pytest
import requests

from harness.mock_llm import start_mock_llm

from .conftest import FAST_PROFILES, QUESTION

# Slack of a client's TTFT over the scheduled one: request building, loopback, SSE parsing, and
# a loaded 2-core CI machine. An early role chunk would be a whole TTFT (>= 100 ms) off.
MARGIN_S = 0.015
MARGIN_RATIO = 0.05
LONG_PROMPT = [{"role": "user", "content": "Tell me about tomato seedlings. " * 60}]  # ~480 tokens


def fault(kind: str) -> dict:
    return {"extra_headers": {"x-mock-fault": kind}}


def close_to(measured_s: float, scheduled_s: float) -> bool:
    return scheduled_s <= measured_s <= scheduled_s * (1 + MARGIN_RATIO) + MARGIN_S


def plan_ttft_ms(entry: dict) -> float:
    plan = entry["plan"]
    return plan["ttft_ms"] + plan["prefill_ms"] + plan["fault_delay_ms"]


@dataclass
class Event:
    at: float  # seconds from just before the request was sent to the read that completed it
    read: int  # index of that read (socket recv)
    data: dict | str


@dataclass
class RawStream:
    status: int
    headers: dict[str, str]
    headers_at: float  # when the response head had arrived
    events: list[Event]

    @property
    def content(self) -> list[Event]:
        return [
            e
            for e in self.events
            if isinstance(e.data, dict)
            and e.data.get("choices")
            and e.data["choices"][0]["delta"].get("content")
        ]


def raw_stream(service, body: dict, headers: dict[str, str] | None = None) -> RawStream:
    """One streaming request over a plain socket, timing every read: the arrival of each SSE
    event as a client sees it, with nothing (SDK, HTTP library buffering) in between."""
    address = urlsplit(service.url)
    payload = json.dumps(body).encode()
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {address.netloc}\r\n"
        f"Authorization: Bearer {service.api_key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n{extra}\r\n"
    ).encode()
    reads: list[tuple[float, bytes]] = []
    with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        started = time.monotonic()
        sock.sendall(head + payload)
        while data := sock.recv(65536):
            reads.append((time.monotonic() - started, data))
    raw = b"".join(data for _, data in reads)
    header_end = raw.index(b"\r\n\r\n")
    status_line, *header_lines = raw[:header_end].decode().split("\r\n")
    parsed = dict(line.split(": ", 1) for line in header_lines)
    ends, total = [], 0
    for _, data in reads:
        total += len(data)
        ends.append(total)
    headers_at = reads[next(i for i, e in enumerate(ends) if e >= header_end)][0]
    events = []
    # each write of the mock is one HTTP chunk, so an event never spans a chunk boundary
    for match in re.finditer(rb"data: (.*?)\n\n", raw[header_end:]):
        end = header_end + match.end()
        read = next(i for i, e in enumerate(ends) if e >= end)
        text = match.group(1).decode()
        events.append(Event(reads[read][0], read, text if text == "[DONE]" else json.loads(text)))
    headers = {k.lower(): v for k, v in parsed.items()}
    return RawStream(int(status_line.split()[1]), headers, headers_at, events)


def sdk_stream(client, model: str, messages=QUESTION, **kwargs):
    """(headers, client TTFT, content-chunk arrival times, chunks) of one SDK stream."""
    started = time.monotonic()
    raw = client.chat.completions.with_raw_response.create(
        model=model,
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
        **kwargs,
    )
    stamps, chunks = [], []
    for chunk in raw.parse():
        chunks.append(chunk)
        if chunk.choices and chunk.choices[0].delta.content:
            stamps.append(time.monotonic() - started)
    return raw.headers, stamps[0] if stamps else None, stamps, chunks


@pytest.fixture(autouse=True)
def clean(fast_mock):
    fast_mock.reset()
    yield


def test_role_chunk_arrives_with_the_first_token(fast_mock):
    """Default role_chunk (with_first_token): role chunk and first token in one read, at or
    after the scheduled TTFT; a role chunk sent before the TTFT sleep fails here by ~300 ms.
    The response head does not wait: it goes out at once, as OpenAI's and vLLM's do."""
    for index in range(3):
        body = {"model": "timed", "messages": QUESTION, "stream": True, "seed": index}
        stream = raw_stream(fast_mock, {**body, "max_completion_tokens": 3})
        assert stream.status == 200
        assert stream.headers_at < 0.1 and stream.events[0].read > 0
        role, first = stream.events[0], stream.content[0]
        assert role.data["choices"][0]["delta"] == {
            "role": "assistant",
            "content": "",
            "refusal": None,
        }
        assert stream.events[1] is first
        assert role.read == first.read  # one write, one read
        scheduled_s = float(stream.headers["x-mock-ttft-ms"]) / 1000
        assert scheduled_s >= 0.3  # the "timed" profile: 300 ms
        assert close_to(role.at, scheduled_s), (role.at, scheduled_s)
        entry = fast_mock.request_entry(stream.headers["x-mock-completion-id"])
        assert entry["role_chunk"] == "with_first_token"
        assert entry["scheduled_ttft_ms"] <= entry["first_token_ms"] <= role.at * 1000


def test_early_role_chunk_arrives_a_ttft_before_the_first_token(fast_mock):
    stream = raw_stream(fast_mock, {"model": "early", "messages": QUESTION, "stream": True})
    role, first = stream.events[0], stream.content[0]
    assert role.data["choices"][0]["delta"]["role"] == "assistant"
    assert role.read < first.read
    assert role.at < 0.05  # at once
    assert first.at - role.at >= 0.2 * 0.8  # about the 200 ms TTFT later
    assert close_to(first.at, float(stream.headers["x-mock-ttft-ms"]) / 1000)
    entry = fast_mock.request_entry(stream.headers["x-mock-completion-id"])
    assert entry["role_chunk"] == "early"
    profiles = requests.get(f"{fast_mock.url}/admin/profiles", timeout=10).json()["models"]
    assert profiles["early"]["role_chunk"] == "early"
    assert profiles["fast"]["role_chunk"] == "with_first_token"


def test_ground_truth_matches_what_the_client_measures(fast_mock, client_for):
    """Jittered TTFT, prefill and gaps: the client's TTFT is at or just above x-mock-ttft-ms,
    the log counts what was sent, and the planned gaps are what the client sees."""
    client = client_for(fast_mock)
    sdk_stream(client, "instant")  # open the keep-alive connection, warm the SDK's streaming
    scheduled = []
    for index in range(6):
        messages = LONG_PROMPT if index % 2 else [{"role": "user", "content": f"ask {index}"}]
        headers, ttft, stamps, chunks = sdk_stream(client, "steady", messages, seed=index)
        entry = fast_mock.request_entry(headers["x-mock-completion-id"])
        plan = entry["plan"]
        scheduled.append(entry["scheduled_ttft_ms"])
        content = [c for c in chunks if c.choices and c.choices[0].delta.content]
        assert chunks[0].id == headers["x-mock-completion-id"] == entry["completion_id"]
        assert entry["request_id"] == headers["x-request-id"]
        assert float(headers["x-mock-ttft-ms"]) == entry["scheduled_ttft_ms"]
        assert float(headers["x-mock-queue-ms"]) == entry["queue_ms"]
        assert entry["scheduled_ttft_ms"] == pytest.approx(
            entry["queue_ms"] + plan_ttft_ms(entry), abs=0.003
        )
        assert 0 <= entry["queue_ms"] < 20  # no queue on this profile
        assert 150 - 90 <= plan["ttft_ms"] <= 150 + 90  # 150 ms +- 3 sigma
        assert plan["prefill_ms"] == pytest.approx(entry["prompt_tokens"] * 0.1, abs=0.001)
        assert plan["fault_delay_ms"] == 0
        assert close_to(ttft, entry["scheduled_ttft_ms"] / 1000), (ttft, entry)
        assert entry["scheduled_ttft_ms"] <= entry["first_token_ms"] <= ttft * 1000
        usage = chunks[-1].usage
        assert entry["tokens_sent"] == usage.completion_tokens == len(content) == plan["tokens"]
        assert len(plan["gaps_ms"]) == plan["tokens"] - 1
        assert plan["finish_reason"] == "stop" and entry["completed"] is True
        planned_gap = statistics.fmean(plan["gaps_ms"]) / 1000
        measured_gap = (stamps[-1] - stamps[0]) / (len(stamps) - 1)
        assert abs(measured_gap - planned_gap) <= 0.1 * planned_gap, (measured_gap, planned_gap)
        assert entry["last_token_ms"] - entry["first_token_ms"] == pytest.approx(
            sum(plan["gaps_ms"]), abs=10
        )
    assert len(set(scheduled)) == len(scheduled)  # jitter and prefill: every plan differs


def test_queue_wait_is_recorded_and_counts_in_the_scheduled_ttft(fast_mock, client_for):
    """single: one slot. The second request waits until the first one's stream has ended."""
    outcomes: dict[int, tuple] = {}

    def call(index: int) -> None:
        outcomes[index] = sdk_stream(client_for(fast_mock), "single", seed=index)

    first = threading.Thread(target=call, args=(1,))
    first.start()
    deadline = time.monotonic() + 10
    while fast_mock.metric("mock_llm_active_streams", model="single") != 1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    second = threading.Thread(target=call, args=(2,))
    second.start()
    first.join(timeout=10)
    second.join(timeout=10)
    one, two = (fast_mock.request_entry(outcomes[i][0]["x-mock-completion-id"]) for i in (1, 2))
    assert one["queue_ms"] < 20
    # the second was admitted when the first answer ended (its last token + the finish chunk)
    one_ended = one["arrived_at"] + one["last_token_ms"] / 1000
    two_admitted = two["arrived_at"] + two["queue_ms"] / 1000
    assert one_ended <= two_admitted <= one_ended + 0.015
    assert two["queue_ms"] > 0.5 * one["last_token_ms"]  # about the first one's duration
    assert two["scheduled_ttft_ms"] == pytest.approx(two["queue_ms"] + plan_ttft_ms(two), abs=0.003)
    headers, ttft, _, _ = outcomes[2]
    assert float(headers["x-mock-queue-ms"]) == two["queue_ms"]
    assert close_to(ttft, two["scheduled_ttft_ms"] / 1000), (ttft, two)


def test_slow_first_token_is_part_of_the_scheduled_ttft(fast_mock, client_for):
    client = client_for(fast_mock)
    headers, ttft, _, _ = sdk_stream(
        client, "fast", max_completion_tokens=4, **fault("slow_first_token")
    )
    entry = fast_mock.request_entry(headers["x-mock-completion-id"])
    assert entry["fault"] == "slow_first_token"
    assert entry["plan"]["fault_delay_ms"] == FAST_PROFILES["fault_settings"]["slow_first_token_ms"]
    assert entry["plan"]["ttft_ms"] == 100
    assert entry["scheduled_ttft_ms"] == pytest.approx(entry["queue_ms"] + 700, abs=0.003)
    assert float(headers["x-mock-ttft-ms"]) == entry["scheduled_ttft_ms"]
    assert close_to(ttft, entry["scheduled_ttft_ms"] / 1000), (ttft, entry)


@pytest.mark.parametrize("kind", ["truncate", "disconnect", "midstream_error"])
def test_stream_faults_record_what_was_sent(fast_mock, client_for, kind):
    received = []
    headers = {}
    try:
        raw = client_for(fast_mock).chat.completions.with_raw_response.create(
            model="fast", messages=QUESTION, stream=True, **fault(kind)
        )
        headers = raw.headers
        for chunk in raw.parse():
            received.append(chunk)
    except openai.APIError:
        assert kind != "truncate"
    content = [c for c in received if c.choices and c.choices[0].delta.content]
    entry = fast_mock.request_entry(headers["x-mock-completion-id"])
    assert entry["tokens_sent"] == len(content) == FAST_PROFILES["fault_settings"]["after_chunks"]
    assert entry["completed"] is False
    assert entry["plan"]["tokens"] >= 64 and entry["plan"]["finish_reason"] == "stop"  # planned
    assert entry["first_token_ms"] < entry["last_token_ms"]


def test_non_stream_is_recorded_with_the_same_fields(fast_mock, client_for):
    client = client_for(fast_mock)
    started = time.monotonic()
    raw = client.chat.completions.with_raw_response.create(
        model="fast", messages=QUESTION, max_completion_tokens=10
    )
    elapsed_ms = (time.monotonic() - started) * 1000
    completion = raw.parse()
    entry = fast_mock.request_entry(completion.id)
    assert raw.headers["x-mock-completion-id"] == completion.id == entry["completion_id"]
    assert fast_mock.request_entry(raw.headers["x-request-id"]) == entry
    assert entry["stream"] is False and entry["status"] == 200
    assert float(raw.headers["x-mock-ttft-ms"]) == entry["scheduled_ttft_ms"]
    assert entry["scheduled_ttft_ms"] == pytest.approx(entry["queue_ms"] + 100, abs=0.003)
    plan = entry["plan"]
    assert plan["tokens"] == entry["tokens_sent"] == completion.usage.completion_tokens == 10
    assert plan["finish_reason"] == completion.choices[0].finish_reason == "length"
    assert len(plan["gaps_ms"]) == 9 and plan["gaps_ms"][0] == 25.0  # 40 tokens/s, no jitter
    # the whole body goes out at once, after TTFT + the gaps
    assert entry["first_token_ms"] == entry["last_token_ms"]
    expected_ms = entry["scheduled_ttft_ms"] + sum(plan["gaps_ms"])
    assert expected_ms <= entry["last_token_ms"] <= elapsed_ms
    assert entry["completed"] is True and entry["role_chunk"] == "with_first_token"
    assert abs(entry["arrived_at"] - time.time()) < 10


def test_admin_lookups_by_id_and_trace(fast_mock, client_for):
    client = client_for(fast_mock)
    trace_id, other = uuid.uuid4().hex, uuid.uuid4().hex

    def ask(trace: str) -> openai.types.chat.ChatCompletion:
        traceparent = f"00-{trace}-{uuid.uuid4().hex[:16]}-01"
        return client.chat.completions.create(
            model="instant", messages=QUESTION, extra_headers={"traceparent": traceparent}
        )

    mine = [ask(trace_id).id, ask(other).id, ask(trace_id).id]
    url = f"{fast_mock.url}/admin/requests"
    entries = requests.get(url, params={"trace_id": trace_id}, timeout=10).json()["requests"]
    assert [e["completion_id"] for e in entries] == [mine[0], mine[2]]
    assert all(e["trace_id"] == trace_id for e in entries)
    upper = requests.get(url, params={"trace_id": other.upper()}, timeout=10).json()
    assert [e["completion_id"] for e in upper["requests"]] == [mine[1]]
    unseen = requests.get(url, params={"trace_id": "0" * 32}, timeout=10)
    assert unseen.status_code == 200 and unseen.json() == {"requests": []}
    by_completion = fast_mock.request_entry(mine[1])
    assert fast_mock.request_entry(by_completion["request_id"]) == by_completion
    assert by_completion["trace_id"] == other
    assert [e["completion_id"] for e in fast_mock.requests_log()] == mine
    for unknown in ("chatcmpl-nope", "req_nope", "something"):
        response = requests.get(f"{url}/{unknown}", timeout=10)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "request_not_found"
    for malformed in ("xyz", "0" * 31, "g" * 32, ""):
        response = requests.get(url, params={"trace_id": malformed}, timeout=10)
        assert response.status_code == 400, malformed
        assert response.json()["error"]["param"] == "trace_id"


def test_refused_requests_have_no_ground_truth(fast_mock, client_for):
    with pytest.raises(openai.RateLimitError) as caught:
        client_for(fast_mock).chat.completions.create(
            model="fast", messages=QUESTION, **fault("429")
        )
    assert "x-mock-ttft-ms" not in caught.value.response.headers
    (entry,) = fast_mock.requests_log()
    assert entry["status"] == 429 and "scheduled_ttft_ms" not in entry
    assert fast_mock.request_entry(caught.value.response.headers["x-request-id"]) == entry


def test_fault_before_any_token_and_a_small_log(tmp_path):
    """after_chunks 0: the role chunk still goes out, at the TTFT, before the fault; and the
    log keeps only MOCK_LLM_REQUEST_LOG_SIZE entries."""
    profiles = {
        "defaults": {"tps_jitter": 0, "itl_jitter": 0, "rpm": 0, "tpm": 0},
        "models": {"m": {"ttft_ms": 200, "output_tokens": {"min": 5, "mean": 5, "max": 5}}},
        "fault_settings": {"after_chunks": 0},
    }
    env = {"MOCK_LLM_REQUEST_LOG_SIZE": "3"}
    with start_mock_llm(tmp_path, env, profiles=json.dumps(profiles)) as service:
        body = {"model": "m", "messages": QUESTION, "stream": True}
        stream = raw_stream(service, body, {"x-mock-fault": "truncate"})
        (role,) = stream.events
        assert role.data["choices"][0]["delta"]["role"] == "assistant"
        assert close_to(role.at, float(stream.headers["x-mock-ttft-ms"]) / 1000)
        entry = service.request_entry(stream.headers["x-mock-completion-id"])
        assert entry["tokens_sent"] == 0 and entry["completed"] is False
        assert entry["first_token_ms"] is None and entry["last_token_ms"] is None
        ids = [stream.headers["x-mock-completion-id"]]
        for _ in range(3):
            ids.append(raw_stream(service, body).headers["x-mock-completion-id"])
        assert [e["completion_id"] for e in service.requests_log()] == ids[1:]
        assert requests.get(f"{service.url}/admin/requests/{ids[0]}", timeout=10).status_code == 404
