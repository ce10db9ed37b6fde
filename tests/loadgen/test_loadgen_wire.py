"""What the load generator puts on the wire, and that it times lines as they arrive.

A tiny OpenAI-compatible server in this test process streams content chunks a known 60 ms apart
(HTTP/1.1 chunked, one flush per line), records every request, and lets us check the headers and
body the generator sent. Locust's own `iter_content(1024)` would batch these lines (gaps ~0 ms);
the generator reads line by line, so its gaps must be the true ones.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness.procs import free_port

GAP_S = 0.06
CONTENT_CHUNKS = 6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[dict]

    def log_message(self, *args) -> None:
        pass

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append({"path": self.path, "headers": dict(self.headers), "body": body})
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def event(payload: dict) -> None:
            self._chunk(b"data: " + json.dumps(payload).encode() + b"\n\n")

        base = {"id": "chatcmpl-t", "object": "chat.completion.chunk", "model": body["model"]}
        role = {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
        event({**base, "choices": [role], "usage": None})
        for index in range(CONTENT_CHUNKS):
            time.sleep(GAP_S)
            delta = {"index": 0, "delta": {"content": f" w{index}"}, "finish_reason": None}
            event({**base, "choices": [delta], "usage": None})
        event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        usage = {"prompt_tokens": 30, "completion_tokens": CONTENT_CHUNKS, "total_tokens": 36}
        event({**base, "choices": [], "usage": usage})
        self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")  # the terminating zero-length chunk


@pytest.fixture
def capture_server():
    handler = type("Handler", (_Handler,), {"seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, handler.seen
    finally:
        server.shutdown()
        server.server_close()


def test_direct_mode_wire_format_trace_context_and_true_gaps(run_loadgen, capture_server):
    server, seen = capture_server
    run = run_loadgen(
        "wire",
        target="openai",
        host=f"http://127.0.0.1:{server.server_port}/v1",
        api_key="sk-wire-test",
        users=2,
        requests_per_user=3,
        conversation_turns="3-3",
        model_weights="gpt-4o-mini=1",
        run_id="wire-run-1",
        seed=11,
    )
    assert run.exit_code == 0, run.log()[-3000:]
    assert len(seen) == 6
    for request in seen:
        headers = {k.lower(): v for k, v in request["headers"].items()}
        body = request["body"]
        assert request["path"] == "/v1/chat/completions"
        assert headers["authorization"] == "Bearer sk-wire-test"
        assert headers["accept-encoding"] == "identity"
        assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", headers["traceparent"])
        baggage = dict(item.split("=") for item in headers["baggage"].split(","))
        assert baggage["synthetic_request"] == "true"
        assert baggage["loadgen.run_id"] == "wire-run-1"
        assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
        assert body["model"] == "gpt-4o-mini" and isinstance(body["seed"], int)
        assert body["messages"][0]["role"] == "system"
    # one conversation of 3 turns per user: the history grows by (user, assistant) per turn
    assert sorted(len(r["body"]["messages"]) for r in seen) == [2, 2, 4, 4, 6, 6]
    assert len({r["headers"]["traceparent"] for r in seen}) == 6

    samples = run.samples
    assert {s["trace_id"] for s in samples} == {
        r["headers"]["traceparent"].split("-")[1] for r in seen
    }
    gaps = sorted(b - a for s in samples for a, b in itertools.pairwise(s["content_ms"]))
    assert len(gaps) == 6 * (CONTENT_CHUNKS - 1)
    # True gaps are 60 ms; 1 KiB chunk reads would collapse most of them to ~0 ms.
    assert gaps[len(gaps) // 10] > GAP_S * 1000 * 0.5, gaps
    assert abs(gaps[len(gaps) // 2] - GAP_S * 1000) < GAP_S * 1000 * 0.15, gaps
    summary = run.summary
    assert summary["overall"]["requests"] == 6 and summary["overall"]["failed"] == 0
    assert summary["overall"]["output_tokens"]["total"] == 6 * CONTENT_CHUNKS
    assert summary["overall"]["input_tokens"]["total"] == 6 * 30
    assert summary["overall"]["ttft_ms"]["min"] > GAP_S * 1000 * 0.9  # first content, not role
    assert summary["metadata"]["run_id"] == "wire-run-1"
