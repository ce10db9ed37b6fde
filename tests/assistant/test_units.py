"""Unit tests of the assistant's pure modules: config, store/sessions, SSE framing, validation,
content truncation and error mapping."""

from __future__ import annotations

import json

import pytest

from assistant.config import ConfigError, load_config
from assistant.genai import (
    ChatCall,
    ChatParams,
    Usage,
    bounded_messages_json,
    bounded_parts_json,
    error_type_of,
)
from assistant.sessions import BoundedSessionStore, Turn
from assistant.sse import frame, parse
from assistant.store import BoundedTTLMap, SharedTTLMap
from assistant.validation import (
    CHAT_FIELDS,
    ApiError,
    parse_json_object,
    validate_chat,
    validate_feedback,
    validate_session_header,
)

BASE_ENV = {"OPENAI_BASE_URL": "http://mock-llm:8000/v1"}


# --- config ---------------------------------------------------------------------------------


def test_config_defaults():
    cfg = load_config(BASE_ENV)
    assert cfg.port == 8080
    assert cfg.models == ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "o3-mini")
    assert cfg.default_model == "gpt-4o-mini"
    assert cfg.server_address == "mock-llm"
    assert cfg.server_port == 8000
    assert cfg.content_capture == "NO_CONTENT"
    assert cfg.secret_key_generated and len(cfg.secret_key) == 64
    assert cfg.max_retries == 1 and cfg.read_timeout_s == 60.0
    assert cfg.openai_api_key == "unused"


@pytest.mark.parametrize(
    ("env", "backend"),
    [
        ({"ASSISTANT_MOCK_BASE_URL": "http://mock:8000/v1/"}, ("http://mock:8000/v1", "unused")),
        (
            {"ASSISTANT_MOCK_BASE_URL": "http://mock:8000/v1", "ASSISTANT_MOCK_API_KEY": "sk-m"},
            ("http://mock:8000/v1", "sk-m"),
        ),
        (
            {"ASSISTANT_MOCK_BASE_URL": "http://mock:8000/v1", "OPENAI_API_KEY": "sk-real"},
            ("https://api.openai.com/v1", "sk-real"),
        ),
        (
            {"ASSISTANT_MOCK_BASE_URL": "http://mock:8000/v1", "OPENAI_BASE_URL": "http://v:1/v1"},
            ("http://v:1/v1", "unused"),
        ),
    ],
)
def test_config_backend_choice(env, backend):
    cfg = load_config(env)
    assert (cfg.openai_base_url, cfg.openai_api_key) == backend


def test_config_real_openai_when_only_key():
    cfg = load_config({"OPENAI_API_KEY": "sk-test"})
    assert cfg.openai_base_url == "https://api.openai.com/v1"
    assert (cfg.server_address, cfg.server_port) == ("api.openai.com", 443)


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({}, "OPENAI_BASE_URL"),
        ({**BASE_ENV, "ASSISTANT_PORT": "http"}, "ASSISTANT_PORT"),
        ({**BASE_ENV, "ASSISTANT_PORT": "70000"}, "ASSISTANT_PORT"),
        ({**BASE_ENV, "ASSISTANT_LLM_READ_TIMEOUT": "nan"}, "ASSISTANT_LLM_READ_TIMEOUT"),
        ({**BASE_ENV, "ASSISTANT_DEFAULT_MODEL": "gpt-5"}, "ASSISTANT_DEFAULT_MODEL"),
        ({**BASE_ENV, "ASSISTANT_MODELS": " , "}, "ASSISTANT_MODELS"),
        ({**BASE_ENV, "ASSISTANT_MODELS": "a b"}, "ASSISTANT_MODELS"),
        ({**BASE_ENV, "ASSISTANT_LEGACY_ATTRIBUTES": "maybe"}, "ASSISTANT_LEGACY_ATTRIBUTES"),
        ({**BASE_ENV, "ASSISTANT_SECRET_KEY": "short"}, "ASSISTANT_SECRET_KEY"),
        ({"OPENAI_BASE_URL": "ftp://x"}, "OPENAI_BASE_URL"),
        ({**BASE_ENV, "ASSISTANT_DEFAULT_MAX_TOKENS": "9000"}, "ASSISTANT_DEFAULT_MAX_TOKENS"),
    ],
)
def test_config_errors_name_the_variable(env, names):
    with pytest.raises(ConfigError, match=names):
        load_config(env)


@pytest.mark.parametrize(
    ("value", "mode"),
    [
        ("span_only", "SPAN_ONLY"),
        ("Span_And_Event", "SPAN_AND_EVENT"),
        ("EVENT_ONLY", "EVENT_ONLY"),
        ("true", "NO_CONTENT"),
        ("", "NO_CONTENT"),
    ],
)
def test_content_capture_modes(value, mode):
    cfg = load_config({**BASE_ENV, "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": value})
    assert cfg.content_capture == mode


def test_config_models_and_default():
    cfg = load_config(
        {
            **BASE_ENV,
            "ASSISTANT_MODELS": "gpt-4o, o3-mini,gpt-4o",
            "ASSISTANT_DEFAULT_MODEL": "o3-mini",
        }
    )
    assert cfg.models == ("gpt-4o", "o3-mini")
    assert cfg.default_model == "o3-mini"


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("", ""),
        ("  ", ""),
        ("10/minute", "10/minute"),
        ("5 / Second", "5/second"),
        ("1/hour", "1/hour"),
    ],
)
def test_rate_limit_values(value, parsed):
    for name, field in (
        ("ASSISTANT_RATE_LIMIT_PER_SESSION", "rate_limit_per_session"),
        ("ASSISTANT_RATE_LIMIT_PER_IP", "rate_limit_per_ip"),
    ):
        assert getattr(load_config({**BASE_ENV, name: value}), field) == parsed
    defaults = load_config(BASE_ENV)
    assert (defaults.rate_limit_per_session, defaults.rate_limit_per_ip) == ("", "")


@pytest.mark.parametrize("value", ["10", "0/minute", "-1/second", "10/day", "ten/minute", "10/min"])
def test_bad_rate_limits_name_the_variable(value):
    with pytest.raises(ConfigError, match="ASSISTANT_RATE_LIMIT_PER_IP"):
        load_config({**BASE_ENV, "ASSISTANT_RATE_LIMIT_PER_IP": value})


# --- store and sessions -----------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _map(kind: str, tmp_path, max_entries: int, ttl_s: float, clock):
    if kind == "memory":
        return BoundedTTLMap(max_entries, ttl_s, clock=clock)
    path = str(tmp_path / "state.sqlite3")
    return SharedTTLMap(path, "items", max_entries, ttl_s, lambda v: v, lambda v: v, clock=clock)


@pytest.mark.parametrize("kind", ["memory", "shared"])
def test_store_lru_eviction_and_ttl(kind, tmp_path):
    clock = FakeClock()
    store = _map(kind, tmp_path, 2, 10, clock)
    store.put("a", 1)
    store.put("b", 2)
    clock.now = 0.5
    assert store.get("a") == 1  # a is now most recently used
    clock.now = 1
    store.put("c", 3)  # evicts b
    assert store.get("b") is None and store.get("a") == 1 and store.get("c") == 3
    clock.now = 9.9
    assert store.get("a") == 1  # refreshes a's TTL
    clock.now = 15
    assert store.get("c") is None  # expired (last used at 1)
    assert store.get("a") == 1
    assert store.update("a", lambda old: old + 1) == 2 and store.get("a") == 2
    assert store.update("a", lambda old: None) is None and store.get("a") is None
    assert store.update("z", lambda old: (old or 0) + 5) == 5
    assert store.pop("z") == 5 and store.pop("z") is None
    clock.now = 100
    assert len(store) == 0


@pytest.mark.parametrize("kind", ["memory", "shared"])
def test_store_keeps_the_most_recently_used_entries_at_the_bound(kind, tmp_path):
    """Over `max_entries` the least recently used entries go, however many there are; every write
    keeps the bound, and a write at the same instant as older entries never evicts itself."""
    clock = FakeClock()
    store = _map(kind, tmp_path, 50, 1000, clock)
    for i in range(120):
        clock.now = i // 10  # ten writes per instant: ties in the expiry order
        store.put(f"k{i}", i)
        assert store.get(f"k{i}") == i and len(store) == min(i + 1, 50)
    present = []
    for i in range(120):
        clock.now = 12 + i / 100  # each read refreshes an entry: k71 is used before k72, ...
        if store.get(f"k{i}") is not None:
            present.append(i)
    assert present == list(range(70, 120))
    clock.now = 20
    assert store.get("k70") == 70  # now the most recently used
    assert store.update("k999", lambda old: 1) == 1  # evicts k71, the least recently used
    assert store.get("k71") is None and store.get("k70") == 70 and len(store) == 50
    (tmp_path / "tied").mkdir()
    tied = _map(kind, tmp_path / "tied", 2, 1000, FakeClock())  # one instant, one expiry time
    for key in "abc":
        tied.put(key, key)
    assert tied.get("c") == "c" and len(tied) == 2


def test_shared_store_is_one_store_for_every_process(tmp_path):
    """Two handles on one file (as two workers have) see each other's writes, and `update` is
    atomic across processes: concurrent increments from forked processes lose none."""
    import multiprocessing

    path = str(tmp_path / "state.sqlite3")
    first = SharedTTLMap(path, "n", 100, 60, lambda v: v, lambda v: v)
    second = SharedTTLMap(path, "n", 100, 60, lambda v: v, lambda v: v)
    first.put("k", {"turns": [["q", "a"]]})
    assert second.get("k") == {"turns": [["q", "a"]]}
    first.put("count", 0)

    def bump() -> None:
        for _ in range(50):
            first.update("count", lambda old: old + 1)  # the fork reopens its own connection

    procs = [multiprocessing.get_context("fork").Process(target=bump) for _ in range(4)]
    for proc in procs:
        proc.start()
    bump()
    for proc in procs:
        proc.join(30)
    assert [proc.exitcode for proc in procs] == [0] * 4
    assert second.get("count") == 250


def test_shared_store_failure_loses_the_operation_not_the_request(tmp_path, caplog):
    import sqlite3

    store = SharedTTLMap(str(tmp_path / "s.sqlite3"), "items", 10, 60, lambda v: v, lambda v: v)
    store.put("a", 1)
    sqlite3.connect(tmp_path / "s.sqlite3").execute("DROP TABLE items")  # storage gone
    assert store.get("a") is None
    store.put("b", 2)
    assert store.update("a", lambda old: 7) is None
    assert len(store) == 0
    assert "shared items store: put failed" in caplog.text


def test_sessions_and_feedback_survive_the_shared_encoding(tmp_path):
    from opentelemetry.trace import SpanContext, TraceFlags

    from assistant.feedback import RatedResponse, shared_answer_map
    from assistant.sessions import shared_history_map

    path = str(tmp_path / "state.sqlite3")
    store = BoundedSessionStore(10, 60, 3, 100, shared=shared_history_map(path, 10, 60))
    store.append("alice", Turn("q1", "a1 é 🎉"))
    store.append("alice", Turn("q2", "a2"))
    other_worker = BoundedSessionStore(10, 60, 3, 100, shared=shared_history_map(path, 10, 60))
    assert other_worker.history("alice") == (Turn("q1", "a1 é 🎉"), Turn("q2", "a2"))
    answer = RatedResponse(
        session_id="alice",
        span_context=SpanContext(2**127 + 5, 2**63 + 7, False, TraceFlags(1)),
        request_model="gpt-4o",
        response_model=None,
        upstream_response_id="chatcmpl-1",
        server_address="mock-llm",
        server_port=8000,
        revisions=2,
    )
    shared_answer_map(path, 10, 60).put("resp_1", answer)
    assert shared_answer_map(path, 10, 60).get("resp_1") == answer


def test_rating_event_carries_the_feedback_requests_allow_listed_baggage():
    """A simulated rating (the load generator's baggage) says so on its evaluation record; a
    rating without that baggage (a real user) carries no synthetic_request."""
    from opentelemetry import baggage, context
    from opentelemetry.metrics import NoOpMeterProvider
    from opentelemetry.trace import SpanContext, TraceFlags

    from assistant.feedback import FeedbackRecorder, RatedResponse
    from assistant.telemetry import Instruments

    class Logger:
        def __init__(self) -> None:
            self.records: list[dict] = []

        def emit(self, **record) -> None:
            self.records.append(record)

    logger = Logger()
    histogram = NoOpMeterProvider().get_meter("t").create_histogram("h")
    recorder = FeedbackRecorder(Instruments(None, logger, *(histogram,) * 6), 10, 60)
    for response_id in ("resp_sim", "resp_real"):
        recorder.remember(
            response_id,
            RatedResponse(
                session_id="s",
                span_context=SpanContext(2**100, 2**60, False, TraceFlags(1)),
                request_model="gpt-4o",
                response_model=None,
                upstream_response_id=None,
                server_address="mock-llm",
                server_port=8000,
            ),
        )
    ctx = baggage.set_baggage("synthetic_request", "true")
    ctx = baggage.set_baggage("loadgen.run_id", "lg-1", ctx)
    ctx = baggage.set_baggage("user.email", "someone@example.com", ctx)  # not allow-listed
    token = context.attach(ctx)
    try:
        assert recorder.record("resp_sim", "s", 4)
    finally:
        context.detach(token)
    assert recorder.record("resp_real", "s", 2)
    simulated, real = (record["attributes"] for record in logger.records)
    assert simulated["synthetic_request"] == "true" and simulated["loadgen.run_id"] == "lg-1"
    assert "user.email" not in simulated
    assert simulated["gen_ai.evaluation.score.value"] == 4
    assert simulated["gen_ai.evaluation.name"] == "user_satisfaction"
    assert "synthetic_request" not in real and "loadgen.run_id" not in real
    assert real["gen_ai.evaluation.score.value"] == 2


def test_sessions_isolated_and_capped():
    store = BoundedSessionStore(max_sessions=10, ttl_s=60, max_turns=3, max_chars=40)
    for i in range(5):
        store.append("alice", Turn(f"q{i}", f"a{i}"))
    store.append("bob", Turn("hello", "hi"))
    assert [t.user for t in store.history("alice")] == ["q2", "q3", "q4"]
    assert store.history("bob") == (Turn("hello", "hi"),)
    store.append("alice", Turn("x" * 33, "y" * 5))  # 38 chars: older turns must go
    assert store.history("alice") == (Turn("x" * 33, "y" * 5),)
    store.append("alice", Turn("z" * 50, ""))  # larger than the cap on its own: nothing kept
    assert store.history("alice") == ()
    store.reset("bob")
    assert store.history("bob") == ()


# --- SSE framing ----------------------------------------------------------------------------


def test_sse_frame_multiline_text_is_one_data_line():
    text = 'line one\nline two\r\n"quoted" \u2028 é 🎉\n\nevent: fake'
    raw = frame("delta", {"text": text}).decode()
    assert raw.startswith("event: delta\ndata: ") and raw.endswith("\n\n")
    assert raw.count("\n") == 3  # event line, data line, blank line
    assert parse(raw) == [("delta", {"text": text})]


def test_sse_frame_rejects_bad_type_and_nan():
    with pytest.raises(ValueError):
        frame("delta\ndata: x", {})
    with pytest.raises(ValueError):
        frame("done", {"x": float("nan")})


# --- validation -----------------------------------------------------------------------------

CFG = load_config(
    {**BASE_ENV, "ASSISTANT_MODELS": "gpt-4o-mini,gpt-4o", "ASSISTANT_MAX_MESSAGE_CHARS": "10"}
)


def body(data: object) -> bytes:
    return json.dumps(data).encode()


def test_valid_chat_defaults_and_values():
    parsed = validate_chat(
        parse_json_object("application/json", body({"message": "hi"}), CHAT_FIELDS), CFG
    )
    assert (parsed.model, parsed.temperature, parsed.top_p, parsed.max_tokens) == (
        "gpt-4o-mini",
        None,
        None,
        512,
    )
    full = {"message": "hi", "model": "gpt-4o", "temperature": 0, "top_p": 1, "max_tokens": 7}
    parsed = validate_chat(full, CFG)
    assert (parsed.model, parsed.temperature, parsed.top_p, parsed.max_tokens) == (
        "gpt-4o",
        0.0,
        1.0,
        7,
    )


def test_integral_floats_are_integers_and_surrogates_are_rejected():
    # JSON Schema (and so the OpenAPI document) counts 5.0 as an integer
    assert validate_chat({"message": "hi", "max_tokens": 5.0}, CFG).max_tokens == 5
    assert validate_feedback({"response_id": "r", "score": 4.0}) == ("r", 4)
    for value in (float("inf"), 1e20, 5.5):
        with pytest.raises(ApiError):
            validate_chat({"message": "hi", "max_tokens": value}, CFG)
    with pytest.raises(ApiError) as caught:
        validate_chat({"message": "hi \ud800"}, CFG)
    assert (caught.value.status, caught.value.type) == (400, "invalid_field")


@pytest.mark.parametrize(
    ("data", "error_type"),
    [
        ({"message": ""}, "invalid_field"),
        ({"message": "   "}, "invalid_field"),
        ({"message": 5}, "invalid_field"),
        ({"message": "x" * 11}, "invalid_field"),
        ({"message": "hi", "model": "gpt-5"}, "invalid_model"),
        ({"message": "hi", "model": ["gpt-4o"]}, "invalid_model"),
        ({"message": "hi", "temperature": 2.5}, "invalid_field"),
        ({"message": "hi", "temperature": True}, "invalid_field"),
        ({"message": "hi", "temperature": "1"}, "invalid_field"),
        ({"message": "hi", "top_p": -0.1}, "invalid_field"),
        ({"message": "hi", "max_tokens": 0}, "invalid_field"),
        ({"message": "hi", "max_tokens": 1.5}, "invalid_field"),
        ({"message": "hi", "max_tokens": 10**9}, "invalid_field"),
    ],
)
def test_invalid_chat(data, error_type):
    with pytest.raises(ApiError) as caught:
        validate_chat(data, CFG)
    assert (caught.value.status, caught.value.type) == (400, error_type)


@pytest.mark.parametrize(
    ("mimetype", "raw", "status", "error_type"),
    [
        ("text/plain", b'{"message":"hi"}', 415, "unsupported_media_type"),
        ("application/json", b"{", 400, "invalid_json"),
        ("application/json", b"\xff\xfe", 400, "invalid_json"),
        ("application/json", b'{"message": NaN}', 400, "invalid_json"),
        ("application/json", b"[1]", 400, "invalid_request"),
        ("application/json", b"[" * 100000, 400, "invalid_json"),
        ("application/json", b'{"message":"hi","extra":1}', 400, "unknown_field"),
    ],
)
def test_invalid_json_bodies(mimetype, raw, status, error_type):
    with pytest.raises(ApiError) as caught:
        parse_json_object(mimetype, raw, CHAT_FIELDS)
    assert (caught.value.status, caught.value.type) == (status, error_type)


def test_feedback_and_session_validation():
    assert validate_feedback({"response_id": "resp_1", "score": 5}) == ("resp_1", 5)
    for bad in (
        {"response_id": "r", "score": 0},
        {"response_id": "r", "score": True},
        {"response_id": "r"},
        {"response_id": 3, "score": 1},
        {"response_id": "", "score": 1},
    ):
        with pytest.raises(ApiError):
            validate_feedback(bad)
    assert validate_session_header("user_1234") == "user_1234"
    for bad in ("short", "x" * 65, "has space!", "abcdefgh\n"):
        with pytest.raises(ApiError):
            validate_session_header(bad)


# --- GenAI helpers --------------------------------------------------------------------------


def test_create_kwargs_send_only_what_was_set():
    params = ChatParams("o3-mini", ({"role": "user", "content": "hi"},), None, 0.5, 64, "c", "r")
    kwargs = params.create_kwargs()
    assert kwargs["max_completion_tokens"] == 64 and "max_tokens" not in kwargs
    assert kwargs["stream_options"] == {"include_usage": True} and kwargs["stream"] is True
    assert "temperature" not in kwargs and kwargs["top_p"] == 0.5


def test_bounded_messages_json_stays_valid_and_short():
    messages = [
        {"role": "user", "parts": [{"type": "text", "content": '"\\\n' * 5000}]},
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "é" * 20000}],
            "finish_reason": "stop",
        },
    ]
    for limit in (300, 1000, 12000):
        value = bounded_messages_json(messages, limit)
        assert len(value) <= limit
        decoded = json.loads(value)
        assert [m["role"] for m in decoded] == ["user", "assistant"]
        assert decoded[1]["finish_reason"] == "stop"
        assert decoded[1]["parts"][0]["content"].endswith("…[truncated]")
    short = [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]
    assert json.loads(bounded_messages_json(short, 12000)) == short
    value = bounded_parts_json("x" * 20000, 500)
    assert len(value) <= 500 and json.loads(value)[0]["type"] == "text"


def test_error_type_names():
    import openai

    assert error_type_of(openai.APIConnectionError(request=None)) == "openai.APIConnectionError"
    assert error_type_of(ValueError("x")) == "ValueError"


# --- stream chunks (plain dicts, assistant/llm.stream_chat_completion) ------------------------


def test_usage_parse_accepts_only_complete_counts():
    usage = Usage.parse(
        {
            "prompt_tokens": 12,
            "completion_tokens": 30,
            "total_tokens": 42,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 7},
        }
    )
    assert usage == Usage(12, 30, 42, cache_read_tokens=4, reasoning_tokens=7)
    assert Usage.parse({"prompt_tokens": 5, "completion_tokens": 2}) == Usage(5, 2, 7)
    for bad in (
        None,
        [],
        "12",
        {"prompt_tokens": 5},
        {"prompt_tokens": -1, "completion_tokens": 2},
        {"prompt_tokens": 5.0, "completion_tokens": 2},
        {"prompt_tokens": True, "completion_tokens": 2},
    ):
        assert Usage.parse(bad) is None, bad


def test_chat_call_reads_chunks_and_tolerates_malformed_ones():
    from opentelemetry.metrics import NoOpMeterProvider

    from assistant.telemetry import Instruments

    meter = NoOpMeterProvider().get_meter("t")
    histogram = meter.create_histogram("h")
    inst = Instruments(*(None, None), *(histogram,) * 6)
    params = ChatParams(
        "gpt-4o-mini", ({"role": "user", "content": "hi"},), None, None, 50, "c", "r"
    )
    call = ChatCall(inst, load_config(BASE_ENV), params, None)
    chunks = [
        {
            "id": "chatcmpl-1",
            "model": "gpt-4o-mini-2024-07-18",
            "service_tier": "default",
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}],
        },
        {"choices": [{"delta": {"content": "Hel"}}]},
        "not a chunk",
        {"choices": "nonsense"},
        {"choices": [None]},
        {"choices": [{"delta": {"content": 42}}]},
        {"choices": [{"delta": {"content": "lo"}, "finish_reason": "stop"}]},
        {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2}},
    ]
    texts = [call.on_chunk(c) for c in chunks]
    assert texts == [None, "Hel", None, None, None, None, "lo", None]
    assert call.text == "Hello" and call.finish_reason == "stop"
    assert call.response_id == "chatcmpl-1" and call.response_model == "gpt-4o-mini-2024-07-18"
    assert call.service_tier == "default" and call.usage == Usage(9, 2, 11)
    # output chunks: "Hel" and "lo" (the role chunk, junk and non-text deltas carry no output)
    assert call.output_chunks == 2 and len(call.gaps) == 1


def _timed_call(deltas_and_times):
    """A ChatCall fed chunks at given perf_counter values (seconds after begin)."""
    from unittest import mock

    from opentelemetry.metrics import NoOpMeterProvider

    from assistant import genai
    from assistant.telemetry import Instruments

    histogram = NoOpMeterProvider().get_meter("t").create_histogram("h")
    inst = Instruments(*(None, None), *(histogram,) * 6)
    params = ChatParams("m", ({"role": "user", "content": "hi"},), None, None, 50, "c", "r")
    call = ChatCall(inst, load_config(BASE_ENV), params, None)
    call.t_start = 100.0
    for delta, at in deltas_and_times:
        with mock.patch.object(genai, "perf_counter", return_value=100.0 + at):
            call.on_chunk({"id": "x", "choices": [{"index": 0, "delta": delta}]})
    return call


@pytest.mark.parametrize(
    "delta",
    [
        {"content": "Hi"},
        {"refusal": "I can't help with that."},
        {"reasoning_content": "Let me think"},
        {"reasoning": "Let me think"},
        {"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "f", "arguments": ""}}]},
    ],
)
def test_ttft_is_the_first_output_bearing_chunk(delta):
    """The role chunk at 0.003 s is not output: TTFT is the first chunk with output (0.150 s)."""
    call = _timed_call(
        [
            ({"role": "assistant", "content": "", "refusal": None}, 0.003),
            ({"content": ""}, 0.010),
            (delta, 0.150),
            ({"content": " there"}, 0.160),
            ({"content": "!"}, 0.175),
        ]
    )
    assert call.ttft_s == pytest.approx(0.150)
    assert list(call.gaps) == pytest.approx([0.010, 0.015])  # no gap for the role chunk
    assert call.t_first_chunk == pytest.approx(100.003)  # the answer started (for error mapping)


def test_no_output_means_no_ttft():
    call = _timed_call([({"role": "assistant", "content": ""}, 0.003), ({}, 0.2)])
    assert call.ttft_s is None and len(call.gaps) == 0
