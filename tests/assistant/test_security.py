"""Cookie and page security against the real assistant (gunicorn): the session cookie is signed
(a tampered or foreign cookie starts a new session, never an error and never someone else's
history), HttpOnly and SameSite=Lax; a missing ASSISTANT_SECRET_KEY is generated with a warning and
shared by the workers; `/` carries the strict CSP; and in headless Chromium a model answer made of
markup (`<script>`, `<img onerror>`) is shown as text and never executes. The answer comes from a
minimal OpenAI-compatible stub in the test process (the mock LLM cannot be told what to say)."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from harness.assistant import parse_sse, start_assistant
from harness.browser import chromium_browser, record_page_problems
from harness.procs import free_port

COOKIE = "assistant_session"
EXPECTED_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def cookie_sid(value: str) -> str:
    """The session id inside Flask's signed cookie `payload.timestamp.signature`."""
    return json.loads(b64decode(value.split(".")[0]))["sid"]


def set_cookie_value(response) -> str | None:
    header = response.headers.get("Set-Cookie")
    if header is None:
        return None
    assert header.startswith(f"{COOKIE}="), header
    return header.split(";")[0].split("=", 1)[1]


def chat_with_cookie(url: str, cookie: str | None, message: str = "hello") -> tuple[dict, str]:
    """(done event, cookie value after the call)."""
    headers = {"Cookie": f"{COOKIE}={cookie}"} if cookie else {}
    response = requests.post(
        f"{url}/api/chat", json={"message": message, "max_tokens": 3}, headers=headers, timeout=30
    )
    assert response.status_code == 200, response.text[:300]
    events = parse_sse(response.text)
    assert events[-1][0] == "done", events[-1]
    return events[-1][1], set_cookie_value(response) or cookie


@pytest.fixture(scope="module")
def app(log_dir, fast_mock_llm):
    with start_assistant(log_dir, fast_mock_llm.base_url) as running:
        yield running


def test_session_cookie_flags(app):
    response = requests.post(f"{app.url}/api/reset", timeout=10)
    assert response.status_code == 204
    attributes = [part.strip() for part in response.headers["Set-Cookie"].split(";")]
    assert attributes[0].startswith(f"{COOKIE}=")
    assert "HttpOnly" in attributes
    assert "SameSite=Lax" in attributes
    assert "Path=/" in attributes
    assert "Secure" not in attributes  # ASSISTANT_COOKIE_SECURE=false by default (plain HTTP)
    sid = cookie_sid(attributes[0].split("=", 1)[1])
    assert sid.startswith("web_") and len(sid) == 4 + 32


def test_tampered_cookie_starts_a_new_session_not_an_error(app):
    first, cookie = chat_with_cookie(app.url, None, "remember the word kumquat")
    victim_sid = cookie_sid(cookie)
    second, same = chat_with_cookie(app.url, cookie, "remember the word kumquat")
    assert same == cookie  # the signed cookie is accepted as it is
    # the history of the session makes the prompt grow
    assert second["usage"]["input_tokens"] > first["usage"]["input_tokens"]

    payload, timestamp, signature = cookie.split(".")
    forged = {"sid": victim_sid, "admin": True}
    forged_payload = b64encode(json.dumps(forged, separators=(",", ":")).encode())
    # The first character: the last one of an unpadded base64 signature carries
    # padding bits the decoder ignores, so changing it may leave the HMAC intact.
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    attempts = {
        "flipped signature": f"{payload}.{timestamp}.{flipped}",
        "forged payload, old signature": f"{forged_payload}.{timestamp}.{signature}",
        "unsigned": forged_payload,
        "garbage": "not-a-cookie!!",
        "empty": '""',
    }
    for name, value in attempts.items():
        done, new_cookie = chat_with_cookie(app.url, value, "remember the word kumquat")
        assert new_cookie != value, name
        assert cookie_sid(new_cookie) != victim_sid, name
        # a fresh conversation: the prompt has none of the victim's history
        assert done["usage"]["input_tokens"] == first["usage"]["input_tokens"], name
    for path in ("/api/reset", "/api/feedback"):
        response = requests.post(
            f"{app.url}{path}",
            json={"response_id": "r", "score": 1} if path.endswith("feedback") else {},
            headers={"Cookie": f"{COOKIE}={attempts['flipped signature']}"},
            timeout=10,
        )
        assert response.status_code in (204, 404), response.text
    assert "Traceback" not in app.process.log()


def test_security_headers_on_the_page(app):
    response = requests.get(f"{app.url}/", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Security-Policy"] == EXPECTED_CSP
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "unsafe-inline" not in EXPECTED_CSP and "unsafe-eval" not in EXPECTED_CSP
    script = requests.get(f"{app.url}/static/app.js", timeout=10)
    assert script.status_code == 200 and "innerHTML" not in script.text.split("\n", 1)[1]


def test_generated_secret_key_warns_and_is_shared_by_workers(log_dir, fast_mock_llm):
    env = {"ASSISTANT_SECRET_KEY": "", "ASSISTANT_WORKERS": "2", "ASSISTANT_THREADS": "4"}
    with start_assistant(log_dir, fast_mock_llm.base_url, env=env) as app:
        assert (
            "WARNING ASSISTANT_SECRET_KEY is not set; generated a random key" in app.process.log()
        )
        created = requests.post(f"{app.url}/api/reset", timeout=10)
        cookie = set_cookie_value(created)
        assert cookie
        for _ in range(12):  # new connections, spread over both workers: each accepts it
            response = requests.post(
                f"{app.url}/api/reset",
                headers={"Cookie": f"{COOKIE}={cookie}", "Connection": "close"},
                timeout=10,
            )
            assert response.status_code == 204
            assert "Set-Cookie" not in response.headers  # same session: nothing to re-issue
        assert "Traceback" not in app.process.log()


# --- model output in the browser ------------------------------------------------------------

XSS_REPLY = (
    'Here you go: <script>window.__xss = "script"; console.error("xss: script ran")</script>'
    "<img src=x onerror=\"window.__xss = 'img'; console.error('xss: onerror ran')\">"
    "<svg onload=\"window.__xss = 'svg'\"></svg> &lt;b&gt; &amp; done"
)


class StubLLM(BaseHTTPRequestHandler):
    """POST /v1/chat/completions (stream): the exact OpenAI SSE wire format with XSS_REPLY."""

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        body = json.dumps({"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model"}]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        model = request["model"]
        base = {
            "id": "chatcmpl-stub",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_stub",
        }

        def chunk(delta: dict, finish: str | None = None, **extra) -> bytes:
            choices = [{"index": 0, "delta": delta, "finish_reason": finish}]
            data = {**base, "choices": choices, **extra}
            return f"data: {json.dumps(data)}\n\n".encode()

        pieces = [XSS_REPLY[i : i + 7] for i in range(0, len(XSS_REPLY), 7)]  # split mid-tag
        frames = [chunk({"role": "assistant", "content": ""})]
        frames += [chunk({"content": piece}) for piece in pieces]
        frames.append(chunk({}, "stop"))
        usage = {"prompt_tokens": 11, "completion_tokens": len(pieces), "total_tokens": 0}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        frames.append(f"data: {json.dumps({**base, 'choices': [], 'usage': usage})}\n\n".encode())
        frames.append(b"data: [DONE]\n\n")
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()  # HTTP/1.0: the body ends when the connection closes
        for frame in frames:
            self.wfile.write(frame)
            self.wfile.flush()


@contextmanager
def stub_llm() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), StubLLM)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.browser
def test_model_markup_is_shown_as_text_and_never_runs(log_dir):
    with (
        stub_llm() as base_url,
        start_assistant(log_dir, base_url) as app,
        chromium_browser() as browser,
    ):
        # the stub speaks the wire format the SDK expects: the API sees the reply verbatim
        api = requests.post(f"{app.url}/api/chat", json={"message": "x"}, timeout=30)
        api_events = parse_sse(api.text)
        assert api_events[-1][0] == "done", api_events[-1]
        assert "".join(d["text"] for e, d in api_events if e == "delta") == XSS_REPLY

        page = browser.new_page()  # the app's CSP stays on
        problems = record_page_problems(page)
        page.on("dialog", lambda dialog: (problems.append("dialog"), dialog.dismiss()))
        requested: list[str] = []
        page.on("request", lambda req: requested.append(req.url))
        page.goto(app.url)
        page.wait_for_function("() => document.querySelectorAll('#model option').length > 0")
        page.fill("#message", "show me some HTML")
        page.click("#send")
        page.wait_for_selector(".msg.assistant .metrics", timeout=30000)
        page.wait_for_timeout(300)  # time for anything injected to run (it must not)

        assert page.text_content(".msg.assistant .text") == XSS_REPLY
        assert page.evaluate("() => window.__xss") is None
        counts = page.evaluate(
            "() => ['script', 'img', 'svg'].map("
            "t => document.querySelectorAll('#conversation ' + t).length)"
        )
        assert counts == [0, 0, 0]
        assert not [u for u in requested if u.rstrip("/").endswith("/x")], requested
        assert problems == []
