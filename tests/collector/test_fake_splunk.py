"""The fake Splunk ingest run as a process (as the stack tests run it in a container)."""

from __future__ import annotations

import gzip
import struct
import sys

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from harness.collector import spans_from_otlp
from harness.fake_splunk import FakeSplunkClient, decode_sfx_datapoints
from harness.prereq import ROOT
from harness.procs import ServiceProcess, free_port

pytestmark = pytest.mark.timeout(60)

TOKEN = "fake-process-token"


def trace_request(name: str) -> bytes:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.name, span.trace_id, span.span_id = name, bytes(range(16)), bytes(range(8))
    return gzip.compress(request.SerializeToString())


def post_trace(url: str, name: str, token: str) -> int:
    headers = {
        "X-SF-Token": token,
        "Content-Type": "application/x-protobuf",
        "Content-Encoding": "gzip",
    }
    response = requests.post(
        f"{url}/v2/trace/otlp", data=trace_request(name), headers=headers, timeout=5
    )
    return response.status_code


def test_fake_as_a_process_records_decodes_and_refuses(tmp_path):
    port = free_port()
    argv = [sys.executable, str(ROOT / "tests/harness/fake_splunk.py"), "--port", str(port)]
    fake = ServiceProcess("fake-splunk", argv, tmp_path, env={"FAKE_SPLUNK_TOKEN": TOKEN})
    with fake:
        url = f"http://127.0.0.1:{port}"
        fake.wait_http(f"{url}/healthz")
        client = FakeSplunkClient(url)

        assert post_trace(url, "accepted", TOKEN) == 200
        assert post_trace(url, "refused", "wrong-token") == 401
        client.fail_with(503)
        assert post_trace(url, "unavailable", TOKEN) == 503
        client.fail_with(None)

        assert [s["name"] for s in client.spans()] == ["accepted"]
        (span,) = client.spans()
        assert (span["trace_id"], span["span_id"]) == (
            bytes(range(16)).hex(),
            bytes(range(8)).hex(),
        )
        recorded = [
            (r["status"], r["headers"]["x-sf-token"], spans_from_otlp(r["body"])[0]["name"])
            for r in client.recorded("traces", accepted=None)
        ]
        assert recorded == [
            (200, TOKEN, "accepted"),
            (401, "wrong-token", "refused"),
            (503, TOKEN, "unavailable"),
        ]
        client.reset()
        assert client.requests() == []
        assert fake.stop() == 0  # SIGTERM: a clean exit


def test_signalfx_protobuf_decoding():
    def field(number: int, wire: int, payload: bytes) -> bytes:
        return bytes([number << 3 | wire]) + payload

    def length_delimited(number: int, payload: bytes) -> bytes:
        return field(number, 2, bytes([len(payload)]) + payload)

    dimension = length_delimited(1, b"model") + length_delimited(2, b"gpt-4o")
    point = (
        length_delimited(2, b"lab.requests")
        + field(3, 0, bytes([0x2A]))  # timestamp 42
        + length_delimited(4, field(2, 1, struct.pack("<d", 7.5)))
        + field(5, 0, bytes([3]))  # CUMULATIVE_COUNTER
        + length_delimited(6, dimension)
    )
    message = length_delimited(1, point) + length_delimited(1, length_delimited(2, b"other"))
    assert decode_sfx_datapoints(message) == [
        {
            "metric": "lab.requests",
            "type": "CUMULATIVE_COUNTER",
            "value": 7.5,
            "timestamp": 42,
            "dimensions": {"model": "gpt-4o"},
        },
        {"metric": "other", "type": "GAUGE", "value": None, "dimensions": {}},
    ]
