"""Bad input always gets a 400 (or 404/405) with OpenAI's error body, never a 5xx."""

from __future__ import annotations

import json

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

GOOD_MESSAGES = [{"role": "user", "content": "hello there"}]


def post(mock, body: bytes | str, headers: dict | None = None) -> requests.Response:
    return requests.post(
        f"{mock.base_url}/chat/completions",
        data=body,
        headers={
            "Authorization": f"Bearer {mock.api_key}",
            "Content-Type": "application/json",
            **(headers or {}),
        },
        timeout=30,
    )


def assert_openai_error(response: requests.Response, status: int = 400) -> dict:
    assert response.status_code == status, response.text[:300]
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["message"]
    return error


def body(**fields) -> str:
    return json.dumps({"model": "instant", "messages": GOOD_MESSAGES, **fields})


@pytest.mark.parametrize(
    ("raw", "param", "code"),
    [
        ("{not json", None, None),
        ("", None, None),
        ("[]", None, "invalid_type"),
        ('"text"', None, "invalid_type"),
        (json.dumps({"model": "fast"}), "messages", "missing_required_parameter"),
        (json.dumps({"messages": GOOD_MESSAGES}), "model", None),
        (json.dumps({"model": 4, "messages": GOOD_MESSAGES}), "model", "invalid_type"),
        (json.dumps({"model": "fast", "messages": "hi"}), "messages", "invalid_type"),
        (json.dumps({"model": "fast", "messages": []}), "messages", "empty_array"),
        (json.dumps({"model": "fast", "messages": [7]}), "messages[0]", "invalid_type"),
        (
            json.dumps({"model": "fast", "messages": [{"content": "x"}]}),
            "messages[0].role",
            "missing_required_parameter",
        ),
        (
            json.dumps({"model": "fast", "messages": [{"role": "robot", "content": "x"}]}),
            "messages[0].role",
            "invalid_value",
        ),
        (
            json.dumps({"model": "fast", "messages": [{"role": "user", "content": 5}]}),
            "messages[0].content",
            "invalid_type",
        ),
        (
            json.dumps({"model": "fast", "messages": [{"role": "user", "content": [{"x": 1}]}]}),
            "messages[0].content[0].type",
            "invalid_type",
        ),
        (body(max_tokens=10**12), "max_tokens", "invalid_value"),
        (body(max_completion_tokens=0), "max_completion_tokens", "integer_below_min_value"),
        (body(max_tokens="many"), "max_tokens", "invalid_type"),
        (body(max_tokens=True), "max_tokens", "invalid_type"),
        (body(temperature=7), "temperature", "invalid_value"),
        (body(temperature="hot"), "temperature", "invalid_type"),
        (body(top_p=-1), "top_p", "invalid_value"),
        (body(stream="yes"), "stream", "invalid_type"),
        (body(stream_options={"include_usage": True}), "stream_options", "invalid_value"),
        (body(stream=True, stream_options=[]), "stream_options", "invalid_type"),
        (body(seed=1.5), "seed", "invalid_type"),
        (body(n=3), "n", "invalid_value"),
        (body(stop=[1]), "stop", "invalid_type"),
        (body(user=5), "user", "invalid_type"),
        (
            '{"model": "instant", "messages": [{"role": "user", "content": "x"}], "t": NaN}',
            None,
            None,
        ),
        ("[" * 5000 + "]" * 5000, None, None),
    ],
)
def test_bad_bodies_are_400(fast_mock, raw, param, code):
    response = post(fast_mock, raw)
    if raw.startswith('{"model": "instant", "messages": [{"role": "user", "content": "x"}], "t"'):
        assert response.status_code == 200  # NaN in an ignored field is tolerated, like json
        return
    error = assert_openai_error(response)
    assert error["param"] == param
    assert error["code"] == code


def test_oversized_body_is_400(fast_mock):
    big = body(padding="x" * (5 * 1024 * 1024))
    error = assert_openai_error(post(fast_mock, big))
    assert error["code"] == "request_too_large"


def test_binary_garbage_is_400(fast_mock):
    assert_openai_error(post(fast_mock, b"\xff\xfe\x00garbage"))


def test_unknown_route_and_method(fast_mock):
    response = requests.get(
        f"{fast_mock.base_url}/chat/completions",
        headers={"Authorization": f"Bearer {fast_mock.api_key}"},
        timeout=10,
    )
    assert_openai_error(response, 405)
    response = requests.post(
        f"{fast_mock.base_url}/nothing-here",
        headers={"Authorization": f"Bearer {fast_mock.api_key}"},
        timeout=10,
    )
    assert_openai_error(response, 404)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
MESSAGE = st.fixed_dictionaries(
    {},
    optional={
        "role": st.sampled_from(["user", "system", "assistant", "tool", "alien"]) | JSON_VALUES,
        "content": st.text(max_size=50) | JSON_VALUES,
        "name": st.text(max_size=8) | JSON_VALUES,
    },
)
REQUEST = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from(["instant", "flaky", "nope", "instant:fault-500"]) | JSON_VALUES,
        "messages": st.lists(MESSAGE | JSON_VALUES, max_size=3) | JSON_VALUES,
        "stream": st.booleans() | JSON_VALUES,
        "stream_options": st.fixed_dictionaries({}, optional={"include_usage": JSON_VALUES})
        | JSON_VALUES,
        "max_tokens": st.integers(-5, 5) | JSON_VALUES,
        "max_completion_tokens": st.integers(-5, 5) | JSON_VALUES,
        "temperature": st.floats(-1, 3) | JSON_VALUES,
        "seed": JSON_VALUES,
        "n": JSON_VALUES,
        "stop": JSON_VALUES,
    },
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request_body=REQUEST)
def test_fuzzed_bodies_never_5xx(fast_mock, request_body):
    response = post(fast_mock, json.dumps(request_body))
    if response.status_code == 200:
        return
    if request_body.get("model") in ("instant:fault-500", "flaky") and response.status_code == 500:
        assert response.json()["error"]["type"] == "server_error"  # an injected fault
        return
    assert response.status_code in (400, 404), response.text[:300]
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
