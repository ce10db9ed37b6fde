"""A fake Splunk Observability Cloud ingest (and HEC) that records and decodes every request.

Paths, as the collector's exporters use them:
  POST /v2/trace/otlp         OTLP/HTTP protobuf traces (otlp_http exporter)        X-SF-Token
  POST /v2/datapoint          SignalFx protobuf or JSON datapoints, or OTLP protobuf  X-SF-Token
                              metrics when Content-Type has `format=otlp` (signalfx
                              exporter with send_otlp_histograms)
  POST /v2/event, /v2/...     recorded, answered 200                                 X-SF-Token
  POST /services/collector... Splunk HEC events (splunk_hec exporter)      Authorization: Splunk <t>
A wrong or missing token is answered 401. `fail_with(status)` answers every ingest request with
that status until `fail_with(None)`, to simulate an outage.

Inspection (used by FakeSplunkClient when the fake runs as a process or container):
  GET  /__fake/requests  every recorded request as JSON     POST /__fake/reset   forget them
  POST /__fake/failure   {"status": 503 | null}             GET  /healthz        200

In-thread:  `with FakeSplunk(token="t") as fake: ... fake.spans()`
Process:    `python -m harness.fake_splunk --port 9943 --token t` (PYTHONPATH=tests), or
            `python tests/harness/fake_splunk.py ...`; needs only protobuf and opentelemetry-proto.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import os
import signal
import struct
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import requests
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

SFX_METRIC_TYPES = ("GAUGE", "COUNTER", "ENUM", "CUMULATIVE_COUNTER")
_ID_KEYS = {"traceId", "spanId", "parentSpanId"}


# --- decoding ---


def otlp_json(message) -> dict[str, Any]:
    """A protobuf OTLP message as the collector's OTLP JSON (hex ids, enums as numbers)."""

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                key: base64.b64decode(value).hex() if key in _ID_KEYS else fix(value)
                for key, value in node.items()
            }
        if isinstance(node, list):
            return [fix(item) for item in node]
        return node

    return fix(MessageToDict(message, use_integers_for_enums=True))


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes):
    """(field number, wire type, value) of a protobuf message, without its schema."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + size], pos + size
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


def _int64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def decode_sfx_datapoints(buf: bytes) -> list[dict[str, Any]]:
    """SignalFx DataPointUploadMessage (com.signalfx.metrics.protobuf) to dicts."""
    points = []
    for number, _, raw in _fields(buf):
        if number != 1:
            continue
        point: dict[str, Any] = {"metric": "", "type": "GAUGE", "value": None, "dimensions": {}}
        for field, _, value in _fields(raw):
            if field == 1:
                point["source"] = value.decode()
            elif field == 2:
                point["metric"] = value.decode()
            elif field == 3:
                point["timestamp"] = _int64(value)
            elif field == 4:
                for datum_field, _, datum in _fields(value):
                    if datum_field == 1:
                        point["value"] = datum.decode()
                    elif datum_field == 2:
                        point["value"] = struct.unpack("<d", datum)[0]
                    elif datum_field == 3:
                        point["value"] = _int64(datum)
            elif field == 5:
                point["type"] = SFX_METRIC_TYPES[value]
            elif field == 6:
                dimension = {f: v for f, _, v in _fields(value)}
                point["dimensions"][dimension.get(1, b"").decode()] = dimension.get(2, b"").decode()
        points.append(point)
    return points


def decode_sfx_json(body: dict[str, Any]) -> list[dict[str, Any]]:
    """SignalFx JSON datapoints ({"gauge": [...], "counter": [...], ...}) to the same dicts."""
    return [
        {
            "metric": item.get("metric", ""),
            "type": kind.upper(),
            "value": item.get("value"),
            "dimensions": item.get("dimensions", {}),
            "timestamp": item.get("timestamp"),
        }
        for kind, items in body.items()
        for item in items
    ]


def decode_hec(body: bytes) -> list[dict[str, Any]]:
    """HEC sends concatenated JSON objects (not a list, not necessarily newline separated)."""
    decoder, text, pos, events = json.JSONDecoder(), body.decode(), 0, []
    while pos < len(text):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos < len(text):
            event, pos = decoder.raw_decode(text, pos)
            events.append(event)
    return events


def decode(path: str, headers: dict[str, str], body: bytes) -> tuple[str, Any]:
    """(kind, decoded body) of one ingest request."""
    content_type = headers.get("content-type", "")
    if path == "/v2/trace/otlp":
        return "traces", otlp_json(ExportTraceServiceRequest.FromString(body))
    if path == "/v2/datapoint":
        if "format=otlp" in content_type:
            return "otlp_metrics", otlp_json(ExportMetricsServiceRequest.FromString(body))
        if "json" in content_type:
            return "datapoints", decode_sfx_json(json.loads(body))
        return "datapoints", decode_sfx_datapoints(body)
    if path.startswith("/services/collector"):
        return "hec", decode_hec(body)
    if path in ("/v1/logs", "/v2/log/otlp"):
        return "otlp_logs", otlp_json(ExportLogsServiceRequest.FromString(body))
    return "other", body.decode(errors="replace")


# --- queries shared by the in-thread fake and the remote client ---


class FakeSplunkQueries:
    """What a test asks the fake; subclasses provide `requests()` (a list of record dicts)."""

    def requests(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def recorded(self, kind: str | None = None, accepted: bool | None = None) -> list[dict]:
        return [
            r
            for r in self.requests()
            if (kind is None or r["kind"] == kind)
            and (accepted is None or (r["status"] == 200) == accepted)
        ]

    def trace_docs(self, accepted: bool = True) -> list[dict[str, Any]]:
        return [r["body"] for r in self.recorded("traces", accepted)]

    def spans(self, accepted: bool = True) -> list[dict[str, Any]]:
        from harness.collector import spans_from_otlp

        return [span for doc in self.trace_docs(accepted) for span in spans_from_otlp(doc)]

    def datapoints(self, accepted: bool = True) -> list[dict[str, Any]]:
        return [p for r in self.recorded("datapoints", accepted) for p in r["body"]]

    def otlp_metric_points(self, accepted: bool = True) -> list[dict[str, Any]]:
        from harness.collector import metric_points_from_otlp

        docs = [r["body"] for r in self.recorded("otlp_metrics", accepted)]
        return [p for doc in docs for p in metric_points_from_otlp(doc)]

    def hec_events(self, accepted: bool = True) -> list[dict[str, Any]]:
        return [e for r in self.recorded("hec", accepted) for e in r["body"]]

    def wait_until(self, predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while not (result := predicate()):
            if time.monotonic() > deadline:
                seen = Counter((r["path"], r["status"]) for r in self.requests())
                raise TimeoutError(
                    f"fake Splunk: condition not met within {timeout:.0f}s; requests: {dict(seen)}"
                )
            time.sleep(0.2)
        return result


# --- the server ---


class _State:
    def __init__(self, token: str, hec_token: str | None) -> None:
        self.token = token
        self.hec_token = hec_token or token
        self.failure: int | None = None
        self.records: list[dict[str, Any]] = []
        self.lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    server_version = "fake-splunk/1"
    state: _State  # set on the subclass made per server

    def log_message(self, *args) -> None:  # quiet: tests read records, not access logs
        pass

    def _reply(self, status: int, body: bytes = b"", content_type: str = "application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _read_body(self) -> bytes:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding in ("deflate", "zlib"):
            body = zlib.decompress(body)
        return body

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/healthz":
            self._reply(200, b'{"status":"ok"}')
        elif path == "/__fake/requests":
            with self.state.lock:
                body = json.dumps(self.state.records).encode()
            self._reply(200, body)
        else:
            self._reply(404, b'{"error":"not found"}')

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if path == "/__fake/reset":
            with self.state.lock:
                self.state.records.clear()
            self._reply(200, b"{}")
        elif path == "/__fake/failure":
            self.state.failure = json.loads(self._read_body() or b"{}").get("status")
            self._reply(200, b"{}")
        else:
            self._ingest(path)

    do_PUT = do_PATCH = do_DELETE = do_POST

    def _ingest(self, path: str) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        record: dict[str, Any] = {
            "time": time.time(),
            "method": self.command,
            "path": path,
            "headers": headers,
            "kind": "other",
            "body": None,
        }
        try:
            raw = self._read_body()
            record["kind"], record["body"] = decode(path, headers, raw)
        except Exception as exc:  # a malformed request is recorded and answered 400
            record["error"] = f"{type(exc).__name__}: {exc}"
            status = 400
        else:
            status = self._status(path, headers)
        record["status"] = status
        with self.state.lock:
            record["seq"] = len(self.state.records)
            self.state.records.append(record)
        self._answer(path, status)

    def _status(self, path: str, headers: dict[str, str]) -> int:
        if path.startswith("/services/collector"):
            authorized = headers.get("authorization") == f"Splunk {self.state.hec_token}"
        else:
            authorized = headers.get("x-sf-token") == self.state.token
        if not authorized:
            return 401
        return self.state.failure or 200

    def _answer(self, path: str, status: int) -> None:
        if status != 200:
            message = "unauthorized" if status == 401 else "unavailable"
            self._reply(status, json.dumps({"error": message}).encode())
        elif path == "/v2/trace/otlp":
            body = ExportTraceServiceResponse().SerializeToString()
            self._reply(200, body, "application/x-protobuf")
        elif path == "/v2/datapoint" and "format=otlp" in self.headers.get("Content-Type", ""):
            body = ExportMetricsServiceResponse().SerializeToString()
            self._reply(200, body, "application/x-protobuf")
        elif path.startswith("/services/collector"):
            self._reply(200, b'{"text":"Success","code":0}')
        else:
            self._reply(200, b'"OK"')


class FakeSplunk(FakeSplunkQueries):
    """The fake served from a thread of the test process."""

    def __init__(
        self,
        token: str = "fake-token",
        hec_token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.state = _State(token, hec_token)
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self._thread: threading.Thread | None = None

    @property
    def token(self) -> str:
        return self.state.token

    def requests(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return list(self.state.records)

    def reset(self) -> None:
        with self.state.lock:
            self.state.records.clear()

    def fail_with(self, status: int | None) -> None:
        """Answer every ingest request with `status` (e.g. 503) until called with None."""
        self.state.failure = status

    def start(self) -> FakeSplunk:
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FakeSplunk:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class FakeSplunkClient(FakeSplunkQueries):
    """The same queries against a fake running elsewhere (process or container)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def requests(self) -> list[dict[str, Any]]:
        return requests.get(f"{self.url}/__fake/requests", timeout=10).json()

    def reset(self) -> None:
        requests.post(f"{self.url}/__fake/reset", timeout=10).raise_for_status()

    def fail_with(self, status: int | None) -> None:
        response = requests.post(f"{self.url}/__fake/failure", json={"status": status}, timeout=10)
        response.raise_for_status()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("FAKE_SPLUNK_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("FAKE_SPLUNK_PORT", "0")))
    parser.add_argument("--token", default=os.environ.get("FAKE_SPLUNK_TOKEN", "fake-token"))
    parser.add_argument("--hec-token", default=os.environ.get("FAKE_SPLUNK_HEC_TOKEN"))
    args = parser.parse_args(argv)
    fake = FakeSplunk(args.token, args.hec_token, args.host, args.port)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=fake.server.shutdown).start())
    print(f"fake-splunk listening on {fake.url}", flush=True)
    fake.server.serve_forever()
    fake.server.server_close()


if __name__ == "__main__":
    main()
