"""HTTP attempt spans (assistant/http_spans.py): one CLIENT span per HTTP attempt to the LLM, child
of the chat span, so the openai SDK's internal retries are visible. Unit tests of the transport
in-process, then the real mock LLM + collector + gunicorn assistant."""

from __future__ import annotations

import time
import uuid

import httpx2
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from assistant.http_spans import (
    TracedTransport,
    exception_type,
    traced_http_client,
    url_without_credentials,
)
from harness.assistant import chat, start_assistant

MODEL = "gpt-4o-mini"
PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


# --- the transport in-process (httpx2.MockTransport as the network) ---


@pytest.fixture
def traced():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    seen: list[httpx2.Request] = []

    def make(handler):
        def record(request):
            seen.append(request)
            return handler(request)

        transport = TracedTransport(httpx2.MockTransport(record), provider.get_tracer("t"))
        return httpx2.Client(transport=transport)

    yield make, exporter, seen
    provider.shutdown()


def test_attempt_span_attributes_and_traceparent(traced):
    make, exporter, seen = traced
    client = make(lambda request: httpx2.Response(200, content=b"data: x\n\n"))
    with client.stream(
        "POST",
        "http://user:secret@127.0.0.1:8000/v1/chat/completions",
        headers={"traceparent": PARENT, "x-stainless-retry-count": "0"},
        content=b"{}",
    ) as response:
        (span,) = exporter.get_finished_spans()  # ended at the headers, before the body is read
        assert response.read() == b"data: x\n\n"
    assert span.name == "POST" and span.kind == SpanKind.CLIENT
    assert dict(span.attributes) == {
        "http.request.method": "POST",
        "server.address": "127.0.0.1",
        "server.port": 8000,
        "url.full": "http://127.0.0.1:8000/v1/chat/completions",
        "http.response.status_code": 200,
    }
    assert span.status.status_code == StatusCode.UNSET
    assert format(span.context.trace_id, "032x") == PARENT.split("-")[1]
    assert format(span.parent.span_id, "016x") == PARENT.split("-")[2]
    # the backend sees the attempt span as its parent
    sent = seen[0].headers["traceparent"].split("-")
    assert sent[1] == PARENT.split("-")[1] and sent[2] == format(span.context.span_id, "016x")


def test_failed_status_and_resend_count(traced):
    make, exporter, _ = traced
    client = make(lambda request: httpx2.Response(429, json={"error": {}}))
    response = client.post(
        "http://127.0.0.1:8000/v1/chat/completions",
        headers={"traceparent": PARENT, "x-stainless-retry-count": "1"},
    )
    assert response.status_code == 429
    (span,) = exporter.get_finished_spans()
    assert span.attributes["http.response.status_code"] == 429
    assert span.attributes["error.type"] == "429"
    assert span.attributes["http.request.resend_count"] == 1
    assert span.status.status_code == StatusCode.ERROR


def test_exception_ends_the_span_with_its_class(traced):
    make, exporter, _ = traced

    def refuse(request):
        raise httpx2.ConnectError("connection refused", request=request)

    client = make(refuse)
    with pytest.raises(httpx2.ConnectError):
        client.post("http://127.0.0.1:9/v1/models", headers={"traceparent": PARENT})
    (span,) = exporter.get_finished_spans()
    assert span.attributes["error.type"] == "httpx2.ConnectError"
    assert "http.response.status_code" not in span.attributes
    assert "http.request.resend_count" not in span.attributes
    assert span.status.status_code == StatusCode.ERROR
    assert span.events[0].name == "exception"


def test_no_span_outside_a_trace(traced):
    make, exporter, seen = traced
    client = make(lambda request: httpx2.Response(200, json={"data": []}))
    assert client.get("http://127.0.0.1:8000/v1/models").status_code == 200
    assert exporter.get_finished_spans() == ()
    assert "traceparent" not in seen[0].headers


def test_helpers():
    assert url_without_credentials(httpx2.URL("https://k:s@api.example/v1?a=1")) == (
        "https://api.example/v1?a=1"
    )
    assert exception_type(httpx2.ReadTimeout("t")) == "httpx2.ReadTimeout"
    assert exception_type(ValueError()) == "ValueError"


def test_the_traced_client_keeps_the_proxy_environment(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "localhost")
    client = traced_http_client()
    transports = {str(pattern.pattern): t for pattern, t in client._mounts.items()}
    assert isinstance(transports["https://"], TracedTransport)
    assert isinstance(transports["https://"]._inner, httpx2.HTTPTransport)
    assert transports["all://localhost"] is None  # NO_PROXY: direct, through the traced default
    assert isinstance(client._transport, TracedTransport)


# --- the real processes ---


@pytest.fixture(scope="module")
def app(log_dir, mock_llm, collector):
    env = {
        "ASSISTANT_MODELS": f"{MODEL},{MODEL}:fault-429,{MODEL}:fault-500,gpt-4o",
        "ASSISTANT_LLM_MAX_RETRIES": "1",
    }
    with start_assistant(log_dir, mock_llm.base_url, otlp=collector.otlp_http, env=env) as running:
        yield running


def sid() -> str:
    return f"attempt_{uuid.uuid4().hex[:12]}"


def spans_of_trace(collector, trace_id: str, count: int) -> list[dict]:
    """The trace's spans once `count` of them (server + chat + attempts) were exported."""

    def ready():
        spans = [s for s in collector.spans() if s["trace_id"] == trace_id]
        return spans if len(spans) >= count else None

    return collector.wait_until(ready, timeout=20)


def split(spans: list[dict]) -> tuple[dict, dict, list[dict]]:
    """(server span, chat span, attempt spans in start order)."""
    (server,) = [s for s in spans if s["kind"] == "SERVER"]
    (chat_span,) = [s for s in spans if s["attributes"].get("gen_ai.operation.name") == "chat"]
    attempts = sorted(
        (s for s in spans if "http.request.method" in s["attributes"]), key=lambda s: s["start_ns"]
    )
    assert len(spans) == 2 + len(attempts), [s["name"] for s in spans]
    return server, chat_span, attempts


def test_sdk_retry_of_a_429_is_two_attempt_spans(app, collector, mock_llm):
    mock_llm.reset()
    model = f"{MODEL}:fault-429"  # every attempt answers 429 with retry-after
    result = chat(app.url, "rate limit me twice", sid(), model=model, max_tokens=20)
    assert [e for e, _ in result.events] == ["start", "error"]
    assert result.events[-1][1]["type"] == "rate_limited"
    trace_id = result.first("start")["trace_id"]
    _, chat_span, attempts = split(spans_of_trace(collector, trace_id, 4))
    assert chat_span["attributes"]["error.type"] == "openai.RateLimitError"
    assert len(attempts) == 2
    first, second = attempts
    port = int(mock_llm.base_url.rsplit(":", 1)[1].split("/")[0])
    for attempt in attempts:
        attrs = attempt["attributes"]
        assert attempt["name"] == "POST" and attempt["kind"] == "CLIENT"
        assert attempt["parent_span_id"] == chat_span["span_id"]
        assert chat_span["start_ns"] <= attempt["start_ns"] <= attempt["end_ns"]
        assert attempt["end_ns"] <= chat_span["end_ns"]
        assert attrs["http.request.method"] == "POST"
        assert attrs["server.address"] == "127.0.0.1" and attrs["server.port"] == port
        assert attrs["url.full"] == f"{mock_llm.base_url}/chat/completions"
        assert attrs["http.response.status_code"] == 429
        assert attrs["error.type"] == "429"
        assert attempt["status_code"] == "ERROR"
    assert "http.request.resend_count" not in first["attributes"]
    assert second["attributes"]["http.request.resend_count"] == 1
    # the SDK waited the mock's retry-after (1000 ms by default) between the attempts
    gap_s = (second["start_ns"] - first["end_ns"]) / 1e9
    assert 0.9 <= gap_s < 3, gap_s
    # the mock saw both attempts, each with the attempt span as its parent
    entries = [e for e in mock_llm.requests_log() if e["trace_id"] == trace_id]
    assert [e["status"] for e in entries] == [429, 429]
    assert [e["parent_span_id"] for e in entries] == [a["span_id"] for a in attempts]
    print(
        f"\n429 retried: 2 attempt spans, gap {gap_s:.2f} s, "
        f"resend_count {second['attributes']['http.request.resend_count']}"
    )


def test_success_is_one_attempt_span_ended_at_the_headers(app, collector):
    result = chat(app.url, "hello there", sid(), model="gpt-4o", max_tokens=30)
    assert result.first("done") is not None
    trace_id = result.first("start")["trace_id"]
    _, chat_span, attempts = split(spans_of_trace(collector, trace_id, 3))
    (attempt,) = attempts
    attrs = attempt["attributes"]
    assert attrs["http.response.status_code"] == 200
    assert attrs["network.protocol.version"] == "1.1"
    assert "error.type" not in attrs and "http.request.resend_count" not in attrs
    assert attempt["status_code"] == "UNSET"
    assert "error.type" not in chat_span["attributes"]
    # the attempt ends at the response headers, the chat span only after the last chunk
    ttfc_ns = chat_span["attributes"]["gen_ai.response.time_to_first_chunk"] * 1e9
    assert attempt["end_ns"] <= chat_span["start_ns"] + ttfc_ns + 5e6
    assert chat_span["end_ns"] - attempt["end_ns"] > 100e6  # the body streamed for a while after


def test_a_retry_that_succeeds_leaves_the_chat_span_ok(app, collector, mock_llm):
    mock_llm.reset()
    mock_llm.set_faults({"rates": {"503": 0.5}})
    try:
        results = [
            chat(app.url, f"retry then answer {i}", sid(), model=MODEL, max_tokens=10)
            for i in range(12)
        ]
        log = mock_llm.requests_log()
    finally:
        mock_llm.reset()
    recovered = 0
    for result in results:
        trace_id = result.first("start")["trace_id"]
        statuses = [e["status"] for e in log if e["trace_id"] == trace_id]
        assert statuses in ([200], [503, 200], [503, 503]), statuses
        _, chat_span, attempts = split(spans_of_trace(collector, trace_id, 2 + len(statuses)))
        assert [a["attributes"]["http.response.status_code"] for a in attempts] == statuses
        if statuses == [503, 200]:
            recovered += 1
            assert result.first("done") is not None
            assert "error.type" not in chat_span["attributes"]
            assert chat_span["status_code"] == "UNSET"
            assert attempts[0]["attributes"]["error.type"] == "503"
            assert attempts[1]["attributes"]["http.request.resend_count"] == 1
            assert "error.type" not in attempts[1]["attributes"]
        elif statuses == [503, 503]:
            assert chat_span["attributes"]["error.type"] == "openai.InternalServerError"
    assert recovered >= 1, "no request was retried successfully (seeded draws changed?)"
    print(f"\n503 at 50%: {recovered} of {len(results)} chats recovered by the SDK retry")


def test_connection_errors_are_retried_attempts(log_dir, collector):
    from harness.procs import free_port

    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    env = {"ASSISTANT_LLM_MAX_RETRIES": "1", "ASSISTANT_MODELS": MODEL}
    with start_assistant(log_dir, dead, otlp=collector.otlp_http, env=env) as down:
        result = chat(down.url, "anyone there?", sid())
        assert result.events[-1][1]["type"] == "upstream_disconnected"
        trace_id = result.first("start")["trace_id"]
        _, chat_span, attempts = split(spans_of_trace(collector, trace_id, 4))
        assert chat_span["attributes"]["error.type"] == "openai.APIConnectionError"
        assert [a["attributes"]["error.type"] for a in attempts] == ["httpx2.ConnectError"] * 2
        assert [a["attributes"].get("http.request.resend_count") for a in attempts] == [None, 1]
        assert all("http.response.status_code" not in a["attributes"] for a in attempts)


def test_readiness_probe_makes_no_orphan_spans(app, collector):
    import requests

    before = len(collector.spans())
    assert requests.get(f"{app.url}/readyz", timeout=10).status_code == 200
    time.sleep(1.0)  # > the 200 ms batch delay of the test assistant
    new = collector.spans()[before:]
    assert not [s for s in new if "http.request.method" in s["attributes"]]
