"""Rate limits on POST /api/chat and /api/feedback against the real assistant (gunicorn) and the
real mock LLM: off by default; per session and per client IP when configured; 429 with a JSON
error and Retry-After; other sessions unaffected; the window slides and admits requests again."""

from __future__ import annotations

import http.client
import json
import time

import requests

from harness.assistant import chat, start_assistant

# Limits are counted per gunicorn worker (services/assistant/README.md): exact with one worker.
ONE_WORKER = {"ASSISTANT_WORKERS": "1"}


def feedback(url: str, session_id: str | None = None, headers: dict | None = None, **kwargs):
    all_headers = {**({"X-Session-Id": session_id} if session_id else {}), **(headers or {})}
    return requests.post(
        f"{url}/api/feedback",
        json={"response_id": "resp_unknown", "score": 3},
        headers=all_headers,
        timeout=30,
        **kwargs,
    )


def assert_rate_limited(response, window_s: int, which: str) -> None:
    assert response.status_code == 429, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["type"] == "rate_limited"
    assert which in error["message"]
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= window_s, retry_after


def test_limits_are_off_by_default(log_dir, fast_mock_llm):
    with start_assistant(log_dir, fast_mock_llm.base_url) as app:
        statuses = [feedback(app.url, "burst_session_1").status_code for _ in range(60)]
        statuses += [chat(app.url, "hi", "burst_session_1", max_tokens=2).status for _ in range(15)]
        assert statuses == [404] * 60 + [200] * 15
        assert "429" not in requests.get(f"{app.url}/api/openapi.json", timeout=10).text


def test_per_session_limit(log_dir, fast_mock_llm):
    env = {**ONE_WORKER, "ASSISTANT_RATE_LIMIT_PER_SESSION": "5/minute"}
    with start_assistant(log_dir, fast_mock_llm.base_url, env=env) as app:
        results = [chat(app.url, "hello", "limited_session_a", max_tokens=2) for _ in range(5)]
        assert [r.status for r in results] == [200] * 5
        assert all(r.events[-1][0] == "done" for r in results)
        sixth = requests.post(
            f"{app.url}/api/chat",
            json={"message": "one more"},
            headers={"X-Session-Id": "limited_session_a"},
            timeout=30,
        )
        assert_rate_limited(sixth, 60, "this session")
        # another session has its own budget; feedback is counted separately from chat
        assert chat(app.url, "hello", "limited_session_b", max_tokens=2).status == 200
        assert [feedback(app.url, "limited_session_a").status_code for _ in range(5)] == [404] * 5
        assert_rate_limited(feedback(app.url, "limited_session_a"), 60, "this session")
        # browsers: the signed cookie's session is limited the same way
        browser = requests.Session()
        statuses = [
            browser.post(
                f"{app.url}/api/feedback", json={"response_id": "r", "score": 1}
            ).status_code
            for _ in range(6)
        ]
        assert statuses == [404] * 5 + [429]
        # a client that drops its cookie gets a new session (the per-IP limit covers that case)
        assert feedback(app.url).status_code == 404
        assert "Traceback" not in app.process.log()


def test_per_ip_limit_uses_the_peer_address_only(log_dir, fast_mock_llm):
    env = {**ONE_WORKER, "ASSISTANT_RATE_LIMIT_PER_IP": "4/minute"}
    with start_assistant(log_dir, fast_mock_llm.base_url, env=env) as app:
        sessions = [f"ip_session_{i}" for i in range(6)]
        assert [feedback(app.url, s).status_code for s in sessions[:4]] == [404] * 4
        assert [chat(app.url, "hi", s, max_tokens=2).status for s in sessions[:4]] == [200] * 4
        # a fresh session, and a forged proxy header, do not get around the per-IP limit
        spoofed = {"X-Forwarded-For": "203.0.113.7", "Forwarded": "for=203.0.113.7"}
        assert_rate_limited(feedback(app.url, sessions[4], headers=spoofed), 60, "client address")
        limited_chat = requests.post(
            f"{app.url}/api/chat",
            json={"message": "hi"},
            headers={**spoofed, "X-Session-Id": sessions[4]},
            timeout=30,
        )
        assert_rate_limited(limited_chat, 60, "client address")
        # another peer address (127.0.0.2 -> 127.0.0.1 on loopback) has its own budget
        connection = http.client.HTTPConnection(
            "127.0.0.1", app.port, timeout=30, source_address=("127.0.0.2", 0)
        )
        try:
            connection.request(
                "POST",
                "/api/feedback",
                body=json.dumps({"response_id": "r", "score": 2}),
                headers={"Content-Type": "application/json", "X-Session-Id": sessions[5]},
            )
            other = connection.getresponse()
            assert other.status == 404, other.read()
        finally:
            connection.close()
        # unlimited endpoints stay available
        assert requests.get(f"{app.url}/api/models", timeout=10).status_code == 200


def test_limit_resets_after_the_window(log_dir, fast_mock_llm):
    env = {**ONE_WORKER, "ASSISTANT_RATE_LIMIT_PER_SESSION": "3/second"}
    with start_assistant(log_dir, fast_mock_llm.base_url, env=env) as app:
        for attempt in range(3):  # the machine may be too busy to send 4 requests within 1 s
            session_id = f"window_session_{attempt}"
            started = time.monotonic()
            statuses = [feedback(app.url, session_id).status_code for _ in range(3)]
            fourth = feedback(app.url, session_id)
            if time.monotonic() - started < 0.9:
                break
        assert statuses == [404] * 3
        assert_rate_limited(fourth, 1, "this session")
        time.sleep(1.2)
        assert feedback(app.url, session_id).status_code == 404
        assert chat(app.url, "after the window", session_id, max_tokens=2).status == 200
