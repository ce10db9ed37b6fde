"""Bad-input matrix against the real assistant (gunicorn) and the real mock LLM: each bad request
gets a clear 4xx JSON error with a stable `type`, nothing reaches the 500 handler, no worker hangs
(a normal chat right after works). Header tricks that HTTP clients refuse to send go over a raw
socket; those gunicorn itself rejects (bare CR/LF, obsolete folding, oversized header lines) get
gunicorn's plain 400 and never reach the app."""

from __future__ import annotations

import json
import socket

import pytest
import requests

from harness.assistant import chat, start_assistant

SMALL_BODY_LIMIT = 1024
MARKER = "INJECTEDxMARKER"


@pytest.fixture(scope="module")
def app(log_dir, fast_mock_llm, collector):
    """Telemetry on (so traceparent/baggage are parsed), a body limit large enough for the
    100,000-level nesting cases."""
    env = {"ASSISTANT_MAX_BODY_BYTES": "1000000", "ASSISTANT_LLM_MAX_RETRIES": "0"}
    with start_assistant(log_dir, fast_mock_llm.base_url, otlp=collector.otlp_http, env=env) as a:
        yield a


@pytest.fixture(scope="module")
def small_app(log_dir, fast_mock_llm):
    env = {"ASSISTANT_MAX_BODY_BYTES": str(SMALL_BODY_LIMIT)}
    with start_assistant(log_dir, fast_mock_llm.base_url, env=env) as a:
        yield a


def post(url: str, path: str, data, content_type: str | None = "application/json", **headers):
    if content_type is not None:
        headers["Content-Type"] = content_type
    return requests.post(f"{url}{path}", data=data, headers=headers, timeout=30)


def assert_error(response, status: int, error_type: str) -> None:
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["type"] == error_type, error
    assert isinstance(error["message"], str) and error["message"]


def assert_still_serving(url: str) -> None:
    result = chat(url, "are you still there?", "followup_session", max_tokens=3, timeout=30)
    assert result.status == 200 and result.events[-1][0] == "done", result.raw[-300:]


def deep(levels: int, opening: str, closing: str, inner: str = "") -> bytes:
    return (opening * levels + inner + closing * levels).encode()


BODY_CASES = {
    # name: (path, raw body, content type, status, error type)
    "deep arrays 100k": (
        "/api/chat",
        deep(100_000, "[", "]"),
        "application/json",
        400,
        "invalid_json",
    ),
    "deep objects 100k": (
        "/api/chat",
        deep(100_000, '{"a":', "}", "1"),
        "application/json",
        400,
        "invalid_json",
    ),
    "deep message value": (
        "/api/chat",
        b'{"message": ' + deep(100_000, "[", "]") + b"}",
        "application/json",
        400,
        "invalid_json",
    ),
    "deep feedback": (
        "/api/feedback",
        deep(100_000, "[", "]"),
        "application/json",
        400,
        "invalid_json",
    ),
    "invalid utf-8": (
        "/api/chat",
        b'{"message": "hi \xff\xfe"}',
        "application/json",
        400,
        "invalid_json",
    ),
    "overlong utf-8": (
        "/api/chat",
        b'{"message": "\xc0\xaf"}',
        "application/json",
        400,
        "invalid_json",
    ),
    "utf-8 encoded surrogate": (
        "/api/chat",
        b'{"message": "\xed\xa0\x80"}',
        "application/json",
        400,
        "invalid_json",
    ),
    "escaped lone surrogate": (
        "/api/chat",
        b'{"message": "hi \\ud800"}',
        "application/json",
        400,
        "invalid_field",
    ),
    "utf-16 body": (
        "/api/chat",
        '{"message": "hi"}'.encode("utf-16"),
        "application/json",
        400,
        "invalid_json",
    ),
    "NaN": (
        "/api/chat",
        b'{"message": "hi", "temperature": NaN}',
        "application/json",
        400,
        "invalid_json",
    ),
    "text/plain": ("/api/chat", b'{"message": "hi"}', "text/plain", 415, "unsupported_media_type"),
    "form": (
        "/api/chat",
        b"message=hi",
        "application/x-www-form-urlencoded",
        415,
        "unsupported_media_type",
    ),
    "multipart": (
        "/api/chat",
        b'--b\r\nContent-Disposition: form-data; name="message"\r\n\r\nhi\r\n--b--\r\n',
        "multipart/form-data; boundary=b",
        415,
        "unsupported_media_type",
    ),
    "no content type": ("/api/chat", b'{"message": "hi"}', None, 415, "unsupported_media_type"),
    "feedback as form": (
        "/api/feedback",
        b"response_id=x&score=5",
        "application/x-www-form-urlencoded",
        415,
        "unsupported_media_type",
    ),
    "reset as text": ("/api/reset", b"{}", "text/plain", 415, "unsupported_media_type"),
    "max_tokens 10**12": (
        "/api/chat",
        b'{"message": "hi", "max_tokens": 1000000000000}',
        "application/json",
        400,
        "invalid_field",
    ),
    "max_tokens 1e309": (
        "/api/chat",
        b'{"message": "hi", "max_tokens": 1e309}',
        "application/json",
        400,
        "invalid_field",
    ),
    "max_tokens 10**400": (
        "/api/chat",
        b'{"message": "hi", "max_tokens": 1' + b"0" * 400 + b"}",
        "application/json",
        400,
        "invalid_field",
    ),
    "max_tokens -1": (
        "/api/chat",
        b'{"message": "hi", "max_tokens": -1}',
        "application/json",
        400,
        "invalid_field",
    ),
    "max_tokens '5'": (
        "/api/chat",
        b'{"message": "hi", "max_tokens": "5"}',
        "application/json",
        400,
        "invalid_field",
    ),
    "max_tokens 1.5": (
        "/api/chat",
        b'{"message": "hi", "max_tokens": 1.5}',
        "application/json",
        400,
        "invalid_field",
    ),
    "max_tokens true": (
        "/api/chat",
        b'{"message": "hi", "max_tokens": true}',
        "application/json",
        400,
        "invalid_field",
    ),
    "score 1e309": (
        "/api/feedback",
        b'{"response_id": "r", "score": 1e309}',
        "application/json",
        400,
        "invalid_field",
    ),
    "model gpt-5": (
        "/api/chat",
        b'{"message": "hi", "model": "gpt-5"}',
        "application/json",
        400,
        "invalid_model",
    ),
    "model empty": (
        "/api/chat",
        b'{"message": "hi", "model": ""}',
        "application/json",
        400,
        "invalid_model",
    ),
    "model upper case": (
        "/api/chat",
        b'{"message": "hi", "model": "GPT-4O-MINI"}',
        "application/json",
        400,
        "invalid_model",
    ),
    "model trailing space": (
        "/api/chat",
        b'{"message": "hi", "model": "gpt-4o-mini "}',
        "application/json",
        400,
        "invalid_model",
    ),
    "model number": (
        "/api/chat",
        b'{"message": "hi", "model": 4}',
        "application/json",
        400,
        "invalid_model",
    ),
    "model list": (
        "/api/chat",
        b'{"message": "hi", "model": ["gpt-4o"]}',
        "application/json",
        400,
        "invalid_model",
    ),
}


@pytest.mark.parametrize("name", list(BODY_CASES))
def test_bad_body(app, name):
    path, body, content_type, status, error_type = BODY_CASES[name]
    assert_error(post(app.url, path, body, content_type), status, error_type)


def test_oversized_bodies_with_a_small_limit(small_app):
    url = small_app.url
    just_fits = json.dumps({"message": "x" * (SMALL_BODY_LIMIT - 20)}).encode()
    assert len(just_fits) <= SMALL_BODY_LIMIT
    result = requests.post(
        f"{url}/api/chat",
        data=just_fits,
        headers={"Content-Type": "application/json", "X-Session-Id": "fits_session"},
        timeout=30,
    )
    assert result.status_code == 200, result.text[:300]
    too_big = json.dumps({"message": "x" * SMALL_BODY_LIMIT}).encode()
    assert_error(post(url, "/api/chat", too_big), 413, "payload_too_large")
    assert_error(post(url, "/api/feedback", too_big), 413, "payload_too_large")
    assert_error(post(url, "/api/reset", too_big), 413, "payload_too_large")
    # chunked upload without Content-Length: the limit still applies while reading
    chunked = json.dumps({"message": "y" * 4 * SMALL_BODY_LIMIT}).encode()
    chunks = (chunked[i : i + 512] for i in range(0, len(chunked), 512))
    assert_error(post(url, "/api/chat", chunks), 413, "payload_too_large")
    # a body far over the limit is refused without being read
    assert_error(post(url, "/api/chat", b"[" * 5_000_000), 413, "payload_too_large")
    assert_still_serving(url)
    assert "Traceback" not in small_app.process.log()


def raw_request(port: int, head: bytes, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (clients refuse CR/LF in header values) and read the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head + body)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head_part, _, rest = data.partition(b"\r\n\r\n")
    lines = head_part.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = headers.get(name.strip().lower(), "") + value.strip()
    return status, headers, rest


def request_head(port: int, header_lines: list[bytes], body: bytes) -> bytes:
    lines = [
        b"POST /api/chat HTTP/1.1",
        f"Host: 127.0.0.1:{port}".encode(),
        b"Content-Type: application/json",
        f"Content-Length: {len(body)}".encode(),
        b"Connection: close",
        *header_lines,
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n"


CHAT_BODY = b'{"message": "hi", "max_tokens": 2}'
REJECTED_BY_GUNICORN = {
    "bare LF in X-Session-Id": [b"X-Session-Id: abcdefgh\nSet-Cookie: " + MARKER.encode()],
    "bare CR in X-Session-Id": [b"X-Session-Id: abcdefgh\rX-" + MARKER.encode() + b": 1"],
    "obs-fold traceparent": [
        b"traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        b" X-" + MARKER.encode() + b": 1",
    ],
    "NUL in baggage": [b"baggage: a=b\x00" + MARKER.encode()],
    "X-Session-Id over 8 KB": [b"X-Session-Id: " + b"a" * 9000],
}


@pytest.mark.parametrize("name", list(REJECTED_BY_GUNICORN))
def test_malformed_headers_are_rejected_before_the_app(app, name):
    status, headers, body = raw_request(
        app.port, request_head(app.port, REJECTED_BY_GUNICORN[name], CHAT_BODY), CHAT_BODY
    )
    assert 400 <= status < 500, (status, body[:200])
    assert MARKER.lower() not in json.dumps(headers).lower()
    assert "set-cookie" not in headers
    assert_still_serving(app.url)


SAFE_HEADER_CASES = {
    # name: (headers, expected status, expected error type or None)
    "encoded CRLF in X-Session-Id": (
        {"X-Session-Id": f"abcdefgh%0d%0aSet-Cookie:%20{MARKER}"},
        400,
        "invalid_session",
    ),
    "long X-Session-Id": ({"X-Session-Id": "a" * 8000}, 400, "invalid_session"),
    "X-Session-Id one over": ({"X-Session-Id": "a" * 65}, 400, "invalid_session"),
    "non-ASCII X-Session-Id": ({"X-Session-Id": "s\u00e9ssion-123"}, 400, "invalid_session"),
    "long traceparent": ({"traceparent": "00-" + MARKER * 500}, 200, None),
    "invalid traceparent": ({"traceparent": f"00-{MARKER}-zz-01"}, 200, None),
    "traceparent all zero": (
        {"traceparent": "00-00000000000000000000000000000000-0000000000000000-01"},
        200,
        None,
    ),
    "long baggage": ({"baggage": f"k={MARKER * 500}"}, 200, None),
    "many baggage entries": (
        {"baggage": ",".join(f"k{i}={MARKER}" for i in range(300))},
        200,
        None,
    ),
    "malformed baggage": ({"baggage": f";;=={MARKER},%%%,=,"}, 200, None),
}


@pytest.mark.parametrize("name", list(SAFE_HEADER_CASES))
def test_hostile_header_values_are_rejected_or_ignored(app, name):
    headers, status, error_type = SAFE_HEADER_CASES[name]
    response = requests.post(
        f"{app.url}/api/chat",
        data=CHAT_BODY,
        headers={"Content-Type": "application/json", **headers},
        timeout=30,
    )
    if error_type:
        assert_error(response, status, error_type)
    else:
        assert response.status_code == status, response.text[:300]
        assert response.text.rstrip().splitlines()[-2] == "event: done"
    # nothing from the request is echoed into a response header
    assert MARKER.lower() not in json.dumps(dict(response.headers)).lower()
    if error_type:
        assert "Set-Cookie" not in response.headers


def test_no_500_and_no_hung_worker_after_the_matrix(app):
    assert_still_serving(app.url)
    log = app.process.log()
    assert "unexpected error" not in log and "Traceback" not in log
