"""Faults from the real mock LLM and from the client: readable error events, error.type on the
spans, no dead worker, no span left open."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import requests

from harness.assistant import chat, replaced_workers, start_assistant
from harness.collector import start_collector
from harness.mock_llm import FAULT_OUTCOMES

BASE = "gpt-4o-mini"
# the mock's model suffix `:fault-<kind>` forces a fault on every request of that model
FAULTS = {
    kind: FAULT_OUTCOMES[kind]
    for kind in ("429", "500", "midstream_error", "disconnect", "truncate", "stall")
}
FAULT_MODELS = [f"{BASE}:fault-{kind}" for kind in FAULTS]


@pytest.fixture(scope="module")
def stack(log_dir, tmp_path_factory):
    from harness.mock_llm import start_mock_llm

    env = {
        "ASSISTANT_MODELS": ",".join([BASE, "gpt-4o", *FAULT_MODELS]),
        "ASSISTANT_LLM_MAX_RETRIES": "0",
        "ASSISTANT_LLM_READ_TIMEOUT": "1.5",
    }
    with (
        start_mock_llm(log_dir, env={"MOCK_LLM_STALL_S": "10"}) as mock,
        start_collector(tmp_path_factory.mktemp("fault-collector")) as collector,
        start_assistant(log_dir, mock.base_url, otlp=collector.otlp_http, env=env) as app,
    ):
        yield mock, collector, app


def sid() -> str:
    return f"fault_{uuid.uuid4().hex[:12]}"


def chat_span(collector, response_id: str, timeout: float = 20) -> dict:
    return collector.wait_until(
        lambda: next(
            (
                s
                for s in collector.spans()
                if s["kind"] == "CLIENT"
                and s["attributes"].get("assistant.response_id") == response_id
            ),
            None,
        ),
        timeout=timeout,
    )


@pytest.mark.parametrize("kind", list(FAULTS))
def test_upstream_fault_gives_error_event_and_error_span(stack, kind):
    _, collector, app = stack
    user_type, error_type = FAULTS[kind]
    model = f"{BASE}:fault-{kind}"
    started = time.monotonic()
    result = chat(app.url, f"please fail with {kind}", sid(), model=model, max_tokens=50)
    elapsed = time.monotonic() - started
    assert result.status == 200
    kinds = [event for event, _ in result.events]
    assert kinds[0] == "start" and kinds[-1] == "error" and kinds.count("error") == 1, kinds
    assert "done" not in kinds
    error = result.events[-1][1]
    assert error["type"] == user_type
    assert len(error["message"]) > 20 and "Traceback" not in error["message"]
    if kind in ("midstream_error", "disconnect", "truncate", "stall"):
        assert result.deltas == 5  # the mock's after_chunks: partial text reached the user
    assert elapsed < 10  # the stall ends at the 1.5 s read timeout, not the mock's 10 s
    span = chat_span(collector, result.first("start")["response_id"])
    attrs = span["attributes"]
    assert span["status_code"] == "ERROR"
    assert attrs["error.type"] == error_type
    assert attrs["gen_ai.response.finish_reasons"] == ["error"]
    assert span["end_ns"] > span["start_ns"]
    # the SERVER span ends when the response closes, after the chat span: wait for its export
    server = collector.wait_until(
        lambda: next(
            (s for s in collector.spans() if s["span_id"] == span["parent_span_id"]), None
        ),
        timeout=30,
    )
    assert server["status_code"] == "ERROR" and server["attributes"]["error.type"] == error_type
    assert server["end_ns"] >= span["end_ns"]
    duration = collector.wait_until(
        lambda: [
            p
            for p in collector.metric_points("gen_ai.client.operation.duration")
            if p["attributes"].get("gen_ai.request.model") == model
        ],
        timeout=20,
    )
    assert all(p["attributes"]["error.type"] == error_type for p in duration)
    assert not [
        p
        for p in collector.metric_points("gen_ai.client.token.usage")
        if p["attributes"].get("gen_ai.request.model") == model
    ]  # no usage without a usage chunk


def test_client_disconnect_stops_the_upstream_call(stack):
    _, collector, app = stack
    response = requests.post(
        f"{app.url}/api/chat",
        json={"message": "a long answer please", "model": "gpt-4o", "max_tokens": 600},
        headers={"X-Session-Id": sid()},
        stream=True,
        timeout=30,
    )
    lines = response.iter_lines(decode_unicode=True)
    start = None
    deltas = 0
    for line in lines:
        if line.startswith("data: ") and start is None:
            start = line
        elif line == "event: delta":
            deltas += 1
            if deltas == 3:
                break
    response.close()  # the user closes the tab
    response_id = json.loads(start[6:])["response_id"]
    span = chat_span(collector, response_id, timeout=30)
    attrs = span["attributes"]
    assert attrs["error.type"] == "client_disconnected"
    assert attrs["gen_ai.response.finish_reasons"] == ["error"]
    assert span["status_code"] == "ERROR"
    # ended long before the ~10 s the full answer would take: the upstream stream was closed
    assert (span["end_ns"] - span["start_ns"]) / 1e9 < 5
    assert "gen_ai.usage.output_tokens" not in attrs


def test_worker_survives_faults_and_no_span_is_left_open(stack):
    mock, collector, app = stack
    results = [
        chat(app.url, f"after faults {i}", sid(), model=BASE, max_tokens=10) for i in range(3)
    ]
    assert all(r.first("done") for r in results)
    log = app.process.log()
    assert replaced_workers(log) == 0, "a worker died and was replaced"
    assert app.process.alive()
    # every chat request the assistant made (mock's log) has exactly one ended chat span
    time.sleep(1.5)
    spans = [
        s for s in collector.spans() if s["kind"] == "CLIENT" and s["name"].startswith("chat ")
    ]
    assert all(s["end_ns"] >= s["start_ns"] > 0 for s in spans)
    made = len(mock.requests_log())
    assert len(spans) == made
    assert len({s["span_id"] for s in spans}) == len(spans)


def test_backend_down_is_not_ready_and_errors_readably(log_dir):
    from harness.procs import free_port

    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    env = {"ASSISTANT_LLM_MAX_RETRIES": "0"}
    with start_assistant(log_dir, dead, env=env) as app:
        assert requests.get(f"{app.url}/healthz", timeout=10).json() == {"status": "ok"}
        ready = requests.get(f"{app.url}/readyz", timeout=10)
        assert ready.status_code == 503
        assert ready.json()["error"]["type"] == "backend_unavailable"
        result = chat(app.url, "anyone there?", sid())
        assert [event for event, _ in result.events] == ["start", "error"]
        assert result.events[-1][1] == {
            "type": "upstream_disconnected",
            "message": "The model service could not be reached. Please retry.",
        }
        assert result.first("start")["trace_id"] == "0" * 32  # telemetry off: no trace
