"""Property-based: arbitrary requests to every endpoint of the running assistant never get a 5xx,
and every /api error is the JSON error shape."""

from __future__ import annotations

import json

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.assistant import parse_sse, start_assistant

PATHS = [
    "/api/chat",
    "/api/feedback",
    "/api/reset",
    "/api/models",
    "/healthz",
    "/readyz",
    "/",
    "/static/app.js",
    "/api/unknown",
    "/static/../config.py",
]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]
printable = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=80)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
chat_like = st.fixed_dictionaries(
    {},
    optional={
        "message": st.text(max_size=60) | json_values,
        "model": st.sampled_from(["gpt-4o-mini", "o3-mini", "gpt-5", ""]) | json_values,
        "temperature": st.floats(-1, 3) | json_values,
        "top_p": st.floats(-0.5, 1.5) | json_values,
        "max_tokens": st.integers(-5, 30) | json_values,
        "response_id": st.text(max_size=40) | json_values,
        "score": st.integers(-1, 7) | json_values,
        "extra": json_values,
    },
)
bodies = (
    chat_like.map(lambda d: json.dumps(d).encode())
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=200)
    | st.just(b"")
    | st.just(b'{"message": NaN}')
    | st.just(b"[" * 5000)
)
content_types = st.sampled_from(
    ["application/json", "application/json; charset=utf-8", "text/plain", "", "multipart/form-data"]
)


@pytest.fixture(scope="module")
def app(log_dir, mock_llm):
    env = {"ASSISTANT_MAX_TOKENS_LIMIT": "20", "ASSISTANT_DEFAULT_MAX_TOKENS": "5"}
    with start_assistant(log_dir, mock_llm.base_url, env=env) as running:
        yield running


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    path=st.sampled_from(PATHS),
    method=st.sampled_from(METHODS),
    body=bodies,
    content_type=content_types,
    # a header value cannot start with whitespace on the wire (requests refuses to send it, and
    # servers strip it as optional whitespace): the rest of any printable value is fair game
    session=st.none()
    | printable.map(str.lstrip)
    | st.from_regex(r"[A-Za-z0-9_-]{8,64}", fullmatch=True),
    cookie=st.none() | printable,
)
def test_no_5xx_ever(app, path, method, body, content_type, session, cookie):
    headers = {}
    if content_type:
        headers["Content-Type"] = content_type
    if session is not None:
        headers["X-Session-Id"] = session
    if cookie is not None:
        headers["Cookie"] = f"assistant_session={cookie}"
    response = requests.request(method, app.url + path, data=body, headers=headers, timeout=30)
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if path.startswith("/api/") and response.status_code >= 400 and method != "HEAD":
        error = response.json()["error"]
        assert isinstance(error["type"], str) and isinstance(error["message"], str)
    if response.headers.get("Content-Type", "").startswith("text/event-stream"):
        events = parse_sse(response.text)
        kinds = [event for event, _ in events]
        assert kinds[0] == "start" and kinds[-1] in ("done", "error")
        assert kinds.count("done") + kinds.count("error") == 1


def test_oversized_body_is_413_json(app):
    big = json.dumps({"message": "x" * 100_000}).encode()
    response = requests.post(
        f"{app.url}/api/chat", data=big, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "payload_too_large"


def test_method_not_allowed_is_json(app):
    response = requests.get(f"{app.url}/api/chat", timeout=10)
    assert response.status_code == 405
    assert response.json()["error"]["type"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    message=st.text(min_size=1, max_size=200).filter(lambda s: s.strip() and "\x00" not in s),
    model=st.sampled_from(["gpt-4o-mini", "gpt-4.1-mini", "gpt-4o"]),
    temperature=st.none() | st.floats(0, 2),
    top_p=st.none() | st.floats(0, 1),
    max_tokens=st.none() | st.integers(1, 20),
)
def test_valid_chats_always_stream_well_formed(app, message, model, temperature, top_p, max_tokens):
    body = {"message": message, "model": model}
    for key, value in (("temperature", temperature), ("top_p", top_p), ("max_tokens", max_tokens)):
        if value is not None:
            body[key] = value
    response = requests.post(
        f"{app.url}/api/chat", json=body, headers={"X-Session-Id": "prop_session_1"}, timeout=30
    )
    assert response.status_code == 200, response.text[:300]
    events = parse_sse(response.text)
    assert events[0][0] == "start" and events[-1][0] == "done"
    done = events[-1][1]
    assert done["usage"]["output_tokens"] == sum(1 for e, _ in events if e == "delta")
    assert done["usage"]["output_tokens"] <= (max_tokens or 5)


def test_catch_all_handler_was_never_hit(app):
    # runs after the property tests in this module: bad input never reached the 500 handler
    assert "unexpected error" not in app.process.log()
    assert "Traceback" not in app.process.log()
