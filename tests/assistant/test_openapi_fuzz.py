"""Schema-driven fuzzing: Schemathesis generates requests from the assistant's own OpenAPI document
(GET /api/openapi.json) and sends them to the real assistant under gunicorn, backed by the real mock
LLM over HTTP (instant profile, max_tokens <= 4 so streams are short).

Every response must: not be a 5xx; have a documented status code and content type; have a body
(JSON errors, models, health) that conforms to the documented schema, and documented headers
(Retry-After on 429); for `text/event-stream`, every event must conform to its Sse* schema with
`start` first and exactly one `done`/`error` last. Negative (schema-violating) requests must be
rejected with a 4xx. At least 5,000 requests in total; the figures are printed (-s).
"""

from __future__ import annotations

import threading
import time
import traceback
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor, as_completed

import pytest
import requests

from harness.assistant import chat, parse_sse, start_assistant

schemathesis = pytest.importorskip("schemathesis")
jsonschema_rs = pytest.importorskip("jsonschema_rs")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

POSITIVE = schemathesis.GenerationMode.POSITIVE
NEGATIVE = schemathesis.GenerationMode.NEGATIVE
MAX_TOKENS_LIMIT = 4
# (method, path, mode, examples): 5,100 generated requests in all
PLAN = [
    ("POST", "/api/chat", POSITIVE, 700),
    ("POST", "/api/chat", NEGATIVE, 700),
    ("POST", "/api/feedback", POSITIVE, 700),
    ("POST", "/api/feedback", NEGATIVE, 400),
    ("POST", "/api/reset", POSITIVE, 400),
    ("POST", "/api/reset", NEGATIVE, 400),
    ("GET", "/api/models", POSITIVE, 450),
    ("GET", "/healthz", POSITIVE, 450),
    ("GET", "/readyz", POSITIVE, 450),
    ("GET", "/api/openapi.json", POSITIVE, 450),
]
MIN_TOTAL_REQUESTS = 5000
THREADS = 4
WARM_UP_EXAMPLES = 5  # per plan item, sequentially, before the threads start
SSE_SCHEMAS = {
    "start": "SseStart",
    "delta": "SseDelta",
    "tool_call": "SseToolCall",
    "tool_result": "SseToolResult",
    "done": "SseDone",
    "error": "SseError",
}


class Figures:
    """What the fuzzer sent and saw, per endpoint."""

    def __init__(self) -> None:
        self.requests: Counter = Counter()
        self.statuses: dict[str, Counter] = defaultdict(Counter)
        self.seconds: Counter = Counter()
        self.sse_events = 0
        self.wall_s = 0.0
        self.lock = threading.Lock()

    def record(self, label: str, status: int, seconds: float) -> None:
        with self.lock:
            self.requests[label] += 1
            self.statuses[label][status] += 1
            self.seconds[label] += seconds

    def add_events(self, count: int) -> None:
        with self.lock:
            self.sse_events += count

    def report(self) -> str:
        lines = ["openapi fuzz figures (seconds = time waiting for responses, summed per thread):"]
        for label in sorted(self.requests):
            statuses = ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses[label].items()))
            lines.append(
                f"  {label:32} {self.requests[label]:5} requests  {self.seconds[label]:6.1f} s  "
                f"statuses {{{statuses}}}"
            )
        total = sum(self.requests.values())
        lines.append(
            f"  total {total} requests in {self.wall_s:.1f} s wall time ({THREADS} threads), "
            f"{self.sse_events} SSE events validated"
        )
        return "\n".join(lines)


@pytest.fixture(scope="module")
def app(log_dir, fast_mock_llm):
    env = {
        "ASSISTANT_MAX_TOKENS_LIMIT": str(MAX_TOKENS_LIMIT),
        "ASSISTANT_DEFAULT_MAX_TOKENS": "2",
        "ASSISTANT_LLM_MAX_RETRIES": "0",
        # the shop agent on: fuzzed messages that name sizes, products or orders run its tools
        "ASSISTANT_AGENT": "true",
    }
    with start_assistant(log_dir, fast_mock_llm.base_url, env=env) as running:
        yield running


@pytest.fixture(scope="module")
def document(app) -> dict:
    return requests.get(f"{app.url}/api/openapi.json", timeout=10).json()


@pytest.fixture(scope="module")
def schema(app):
    config = schemathesis.Config.from_dict(
        {"checks": {"negative_data_rejection": {"expected-statuses": [400, 404, 413, 415]}}}
    )
    return schemathesis.openapi.from_url(f"{app.url}/api/openapi.json", config=config)


@pytest.fixture(scope="module")
def figures():
    return Figures()


def test_document_matches_the_configuration(document):
    chat = document["paths"]["/api/chat"]["post"]
    body = chat["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert document["openapi"] == "3.1.0"
    assert body["message"]["maxLength"] == 4000
    assert body["max_tokens"]["maximum"] == MAX_TOKENS_LIMIT
    assert body["max_tokens"]["default"] == 2
    assert body["model"]["enum"] == ["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "o3-mini", None]
    assert set(chat["responses"]) == {"200", "400", "413", "415"}  # no 429: limits are off
    assert set(document["paths"]) == {
        "/api/chat",
        "/api/feedback",
        "/api/reset",
        "/api/models",
        "/healthz",
        "/readyz",
        "/api/openapi.json",
    }


def test_document_follows_another_configuration(log_dir, fast_mock_llm):
    env = {
        "ASSISTANT_MODELS": "gpt-4o,o3-mini",
        "ASSISTANT_MAX_MESSAGE_CHARS": "77",
        "ASSISTANT_MAX_TOKENS_LIMIT": "33",
        "ASSISTANT_DEFAULT_MAX_TOKENS": "3",
        "ASSISTANT_RATE_LIMIT_PER_SESSION": "7/minute",
    }
    with start_assistant(log_dir, fast_mock_llm.base_url, env=env) as other:
        document = requests.get(f"{other.url}/api/openapi.json", timeout=10).json()
    chat = document["paths"]["/api/chat"]["post"]
    body = chat["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert (body["message"]["maxLength"], body["max_tokens"]["maximum"]) == (77, 33)
    assert body["model"]["enum"] == ["gpt-4o", "o3-mini", None]
    assert body["model"]["default"] == "gpt-4o"
    assert "Retry-After" in chat["responses"]["429"]["headers"]
    assert "7/minute" in chat["responses"]["429"]["description"]


def _sse_check(document: dict, figures: Figures):
    validators = {
        event: jsonschema_rs.Draft202012Validator(document["components"]["schemas"][name])
        for event, name in SSE_SCHEMAS.items()
    }

    def sse_stream_conforms(ctx, response, case):
        content_type = response.headers.get("content-type", [""])[0]
        if not content_type.startswith("text/event-stream"):
            return None
        events = parse_sse(response.content.decode("utf-8"))
        kinds = [kind for kind, _ in events]
        assert kinds and kinds[0] == "start", f"stream does not begin with start: {kinds}"
        assert kinds[-1] in ("done", "error"), f"stream does not end with done/error: {kinds}"
        assert kinds.count("done") + kinds.count("error") == 1, kinds
        assert set(kinds[1:-1]) <= {"delta", "tool_call", "tool_result"}, kinds
        started = set()
        for kind, data in events:
            if kind == "tool_call":
                started.add(data["id"])
            elif kind == "tool_result":  # a tool runs only once the model has called it
                assert data["id"] in started, events
            validators[kind].validate(data)
        if kinds[-1] == "done":
            usage = events[-1][1]["usage"]
            assert usage["output_tokens"] <= MAX_TOKENS_LIMIT, usage
        figures.add_events(len(events))
        return True

    return sse_stream_conforms


def fuzz_operation(
    app, schema, sse_check, figures, method, path, mode, examples, answers=()
) -> None:
    """One operation in one generation mode: `examples` generated requests, every check.
    `answers`: (session id, response id) of real answers; every other positive feedback case
    rates one of them instead of a random id, so the 204 path is fuzzed too (scores generated)."""
    operation = schema[path][method]
    rated = 0
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
    ]
    if mode is NEGATIVE:
        checks.append(negative_data_rejection)
    label = f"{method} {path} {mode.value}"
    session = requests.Session()

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: report the first failure
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        nonlocal rated
        if answers and mode is POSITIVE and figures.requests[label] % 2 == 0:
            session_id, response_id = answers[rated % len(answers)]
            rated += 1
            case.body["response_id"] = response_id
            case.headers = {**(case.headers or {}), "X-Session-Id": session_id}
        started = time.perf_counter()
        response = case.call(base_url=app.url, session=session, timeout=30)
        figures.record(label, response.status_code, time.perf_counter() - started)
        assert response.status_code < 500, (response.status_code, response.text[:300])
        case.validate_response(response, checks=checks, additional_checks=[sse_check])

    try:
        run()
    finally:
        session.close()
    # a bounded run that still exercised the endpoint properly
    assert figures.requests[label] >= examples * 0.9, (label, figures.requests[label])


def real_answers(url: str, count: int) -> list[tuple[str, str]]:
    answers = []
    for i in range(count):
        session_id = f"fuzz_rated_session_{i % 3}"
        result = chat(url, f"question {i}", session_id, max_tokens=2)
        assert result.status == 200 and result.events[-1][0] == "done", result.raw[-300:]
        answers.append((session_id, result.first("start")["response_id"]))
    return answers


def test_fuzz_every_operation(app, schema, document, figures):
    """The plan runs in THREADS threads (Schemathesis' own CLI runs Hypothesis tests in threads
    too): each thread one operation and mode at a time, each with its own HTTP session."""
    sse_check = _sse_check(document, figures)
    started = time.perf_counter()
    # Warm-up, one thread: Hypothesis and Schemathesis import modules lazily, and concurrent first
    # imports trip CPython 3.11 (pytest's assertion rewriting in two threads at once).
    import hypothesis.strategies._internal.random  # noqa: F401

    answers = real_answers(app.url, 12)
    extra = {"/api/feedback": answers}
    for method, path, mode, _ in PLAN:
        fuzz_operation(
            app, schema, sse_check, figures, method, path, mode, WARM_UP_EXAMPLES, extra.get(path)
        )
    failures: list[str] = []
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        futures = {
            pool.submit(
                fuzz_operation, app, schema, sse_check, figures, *item, extra.get(item[1])
            ): item
            for item in sorted(PLAN, key=lambda item: -item[3])  # longest first
        }
        for future in as_completed(futures):
            method, path, mode, _ = futures[future]
            try:
                future.result()
            except Exception as exc:  # report every operation's failure
                detail = "".join(traceback.format_exception(exc))[-6000:]
                failures.append(f"{method} {path} {mode.value}: {detail}")
    figures.wall_s = time.perf_counter() - started
    assert not failures, "\n\n".join(failures)


def test_fuzz_totals(app, figures):
    total = sum(figures.requests.values())
    print("\n" + figures.report())
    assert total >= MIN_TOTAL_REQUESTS, total
    all_statuses = Counter()
    for statuses in figures.statuses.values():
        all_statuses.update(statuses)
    assert not [s for s in all_statuses if s >= 500], all_statuses
    assert all_statuses[200] > 1000 and all_statuses[400] > 500, all_statuses
    # ratings of real answers succeeded (the other half: random ids -> 404)
    assert figures.statuses["POST /api/feedback positive"][204] >= 300, figures.statuses
    # nothing reached the catch-all 500 handler, and the service still answers
    assert "unexpected error" not in app.process.log()
    assert "Traceback" not in app.process.log()
    response = requests.post(
        f"{app.url}/api/chat", json={"message": "still alive?"}, timeout=30, stream=False
    )
    assert response.status_code == 200
    assert parse_sse(response.text)[-1][0] == "done"
