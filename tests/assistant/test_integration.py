"""The assistant under gunicorn with the real mock LLM and the real test collector (local mode):
concurrent chats, exact telemetry in the collector archive, feedback, sessions, content capture."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from harness.assistant import chat, parse_sse, start_assistant, worker_pids
from harness.collector import start_collector

MODELS = ("gpt-4o-mini", "gpt-4.1-mini", "gpt-4o")
SECONDS_BUCKETS = [0.01 * 2**i for i in range(14)]
TOKEN_BUCKETS = [4**i for i in range(14)]
METRIC_KEYS = {
    "gen_ai.operation.name",
    "gen_ai.provider.name",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "server.address",
    "server.port",
}
N_CHATS = 30


@pytest.fixture(scope="module")
def assistant(log_dir, mock_llm, collector):
    with start_assistant(log_dir, mock_llm.base_url, otlp=collector.otlp_http) as running:
        yield running


def session_id() -> str:
    return f"test_{uuid.uuid4().hex[:16]}"


def check_stream(result, model: str) -> None:
    """start, delta*, then exactly one terminal event (done here), all well formed."""
    assert result.status == 200, result.raw
    kinds = [event for event, _ in result.events]
    assert kinds[0] == "start" and kinds[-1] == "done", kinds
    assert set(kinds[1:-1]) <= {"delta"}, kinds
    start, done = result.events[0][1], result.events[-1][1]
    assert start["model"] == model
    assert start["response_id"].startswith("resp_") and len(start["response_id"]) == 37
    assert len(start["trace_id"]) == 32 and int(start["trace_id"], 16)
    assert done["finish_reason"] in ("stop", "length")
    assert 0 < done["ttft_ms"] <= done["duration_ms"]
    # the mock sends one token per content chunk: output tokens == delta events
    assert done["usage"]["output_tokens"] == result.deltas > 0
    assert done["usage"]["input_tokens"] > 0


def points(collector, name: str, **attrs) -> list[dict]:
    return [
        p
        for p in collector.metric_points(name)
        if all(p["attributes"].get(k) == v for k, v in attrs.items())
    ]


def test_concurrent_chats_have_exact_telemetry(assistant, collector, mock_llm):
    assert requests.get(f"{assistant.url}/readyz", timeout=10).json() == {"status": "ready"}
    sessions = [session_id() for _ in range(N_CHATS)]
    models = list(itertools.islice(itertools.cycle(MODELS), N_CHATS))
    max_tokens = {sid: 40 + i for i, sid in enumerate(sessions)}

    def one(i: int):
        return chat(
            assistant.url,
            f"question {i}: explain tracing",
            sessions[i],
            model=models[i],
            max_tokens=40 + i,
            temperature=0.5,
        )

    with ThreadPoolExecutor(N_CHATS) as pool:
        results = list(pool.map(one, range(N_CHATS)))
    for result, model in zip(results, models, strict=True):
        check_stream(result, model)
    by_response = {
        r.first("start")["response_id"]: (r, m, s)
        for r, m, s in zip(results, models, sessions, strict=True)
    }

    def chat_spans():
        spans = [
            s for s in collector.spans() if s["kind"] == "CLIENT" and s["name"].startswith("chat ")
        ]
        mine = [s for s in spans if s["attributes"].get("assistant.response_id") in by_response]
        return mine if len(mine) >= N_CHATS else None

    clients = collector.wait_until(chat_spans, timeout=30)
    assert len(clients) == N_CHATS  # exactly one chat span per request
    spans = collector.spans()
    servers = {s["span_id"]: s for s in spans if s["kind"] == "SERVER"}
    for span in clients:
        result, model, sid = by_response[span["attributes"]["assistant.response_id"]]
        start, done = result.first("start"), result.first("done")
        attrs = span["attributes"]
        assert span["name"] == f"chat {model}"
        assert span["trace_id"] == start["trace_id"]
        assert span["status_code"] == "UNSET"
        assert attrs["gen_ai.operation.name"] == "chat"
        assert attrs["gen_ai.provider.name"] == "openai"
        assert attrs["gen_ai.request.model"] == model
        assert attrs["gen_ai.response.model"] == model
        assert attrs["gen_ai.request.stream"] is True
        assert attrs["gen_ai.request.temperature"] == 0.5
        assert attrs["gen_ai.request.max_tokens"] == max_tokens[sid]
        assert "gen_ai.request.top_p" not in attrs  # never sent, never recorded
        assert attrs["gen_ai.conversation.id"] == sid
        assert attrs["server.address"] == "127.0.0.1"
        assert attrs["server.port"] == int(mock_llm.url.rsplit(":", 1)[1])
        assert attrs["gen_ai.response.id"].startswith("chatcmpl-")
        assert attrs["gen_ai.response.finish_reasons"] == [done["finish_reason"]]
        assert attrs["gen_ai.usage.input_tokens"] == done["usage"]["input_tokens"]
        assert (
            attrs["gen_ai.usage.output_tokens"] == done["usage"]["output_tokens"] == result.deltas
        )
        duration_s = (span["end_ns"] - span["start_ns"]) / 1e9
        assert 0 < attrs["gen_ai.response.time_to_first_chunk"] < duration_s
        assert "gen_ai.system" not in attrs and "error.type" not in attrs
        assert not any(k.startswith(("gen_ai.input", "gen_ai.output")) for k in attrs)  # no content
        # parent: the Flask SERVER span of the same request, which covers the whole stream
        server = servers[span["parent_span_id"]]
        assert server["trace_id"] == span["trace_id"]
        assert server["name"] == "POST /api/chat"
        assert server["attributes"]["gen_ai.request.model"] == model
        assert server["attributes"]["http.route"] == "/api/chat"
        assert server["start_ns"] <= span["start_ns"] and server["end_ns"] >= span["end_ns"]
        assert server["status_code"] == "UNSET"
    chat_servers = [
        s
        for s in servers.values()
        if s["trace_id"] in {r.first("start")["trace_id"] for r in results}
    ]
    assert len(chat_servers) == N_CHATS  # exactly one SERVER span per request

    # metrics: per model, counts and sums equal what the mock reported
    expected = defaultdict(lambda: Counter())
    for result, model in zip(results, models, strict=True):
        usage = result.first("done")["usage"]
        expected[model]["n"] += 1
        expected[model]["input"] += usage["input_tokens"]
        expected[model]["output"] += usage["output_tokens"]
        # one gap between each two output chunks (one per token); the role, finish and usage
        # chunks carry no output and make no gap (docs/numbers.md)
        expected[model]["gaps"] += usage["output_tokens"] - 1

    def totals(name, model, **attrs):
        found = points(collector, name, **{"gen_ai.request.model": model}, **attrs)
        return sum(p["count"] for p in found), sum(p["sum"] for p in found), found

    def metrics_complete():
        return all(
            totals("gen_ai.client.token.usage", m, **{"gen_ai.token.type": "output"})[0] == e["n"]
            and totals("gen_ai.client.operation.time_per_output_chunk", m)[0] == e["gaps"]
            for m, e in expected.items()
        )

    collector.wait_until(metrics_complete, timeout=30)
    for model, exp in expected.items():
        for token_type in ("input", "output"):
            count, total, found = totals(
                "gen_ai.client.token.usage", model, **{"gen_ai.token.type": token_type}
            )
            assert (count, total) == (exp["n"], exp[token_type])
            for point in found:
                assert point["unit"] == "{token}" and point["type"] == "histogram"
                assert point["explicit_bounds"] == TOKEN_BUCKETS
                assert point["temporality"] == "DELTA"
                assert set(point["attributes"]) == METRIC_KEYS | {"gen_ai.token.type"}
        for name in (
            "gen_ai.client.operation.duration",
            "gen_ai.client.operation.time_to_first_chunk",
        ):
            count, total, found = totals(name, model)
            assert count == exp["n"], name
            assert 0 < total < exp["n"] * 30
            for point in found:
                assert point["unit"] == "s" and point["explicit_bounds"] == SECONDS_BUCKETS
                assert set(point["attributes"]) == METRIC_KEYS  # no error.type on success
                assert point["attributes"]["gen_ai.response.model"] == model
        count, _, _ = totals("gen_ai.client.operation.time_per_output_chunk", model)
        assert count == exp["gaps"]
    # span duration and the duration metric agree (sum over all calls, within 1 %)
    span_total = sum((s["end_ns"] - s["start_ns"]) / 1e9 for s in clients)
    metric_total = sum(
        p["sum"]
        for m in MODELS
        for p in points(
            collector, "gen_ai.client.operation.duration", **{"gen_ai.request.model": m}
        )
    )
    assert metric_total == pytest.approx(span_total, rel=0.01)
    # the worker's telemetry carries the service and a per-worker instance id
    resource = clients[0]["resource"]
    assert resource["service.name"] == "assistant"
    assert resource["telemetry.distro.name"] == "splunk-opentelemetry"
    assert resource["service.instance.id"]


def test_feedback_event_and_satisfaction_metric(assistant, collector):
    sid, other = session_id(), session_id()
    result = chat(assistant.url, "rate me", sid, model="gpt-4o-mini", max_tokens=20)
    check_stream(result, "gpt-4o-mini")
    response_id = result.first("start")["response_id"]
    url = f"{assistant.url}/api/feedback"

    def post(body, session=sid):
        return requests.post(url, json=body, headers={"X-Session-Id": session}, timeout=10)

    assert post({"response_id": response_id, "score": 5}).status_code == 204
    assert post({"response_id": response_id, "score": 2}).status_code == 204  # replaces
    unknown = post({"response_id": "resp_" + "0" * 32, "score": 3})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["type"] == "unknown_response"
    assert post({"response_id": response_id, "score": 4}, session=other).status_code == 404
    assert post({"response_id": response_id, "score": 6}).status_code == 400

    def events():
        found = [
            r
            for r in collector.log_records()
            if r["event_name"] == "gen_ai.evaluation.result"
            and r["attributes"].get("assistant.response_id") == response_id
        ]
        return found if len(found) >= 2 else None

    found = sorted(
        collector.wait_until(events, timeout=20),
        key=lambda r: r["attributes"]["assistant.feedback.revision"],
    )
    assert len(found) == 2
    chat_span = collector.wait_until(
        lambda: next(
            (
                s
                for s in collector.spans()
                if s["attributes"].get("assistant.response_id") == response_id
            ),
            None,
        ),
        timeout=20,
    )
    for record, score, label in zip(found, (5, 2), ("thumbs_up", "thumbs_down"), strict=True):
        attrs = record["attributes"]
        assert record["trace_id"] == result.first("start")["trace_id"] == chat_span["trace_id"]
        assert record["span_id"] == chat_span["span_id"]
        assert attrs["gen_ai.evaluation.name"] == "user_satisfaction"
        assert attrs["gen_ai.evaluation.score.value"] == score
        assert attrs["gen_ai.evaluation.score.label"] == label
        assert attrs["gen_ai.response.id"] == chat_span["attributes"]["gen_ai.response.id"]
        assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
        assert record["body"] == f"user_satisfaction {score}/5 for gpt-4o-mini"
    # the satisfaction metrics: recorded once per response id (at its first rating)
    sat = collector.wait_until(
        lambda: points(
            collector,
            "assistant.user_satisfaction.score",
            **{"gen_ai.request.model": "gpt-4o-mini"},
        ),
        timeout=20,
    )
    assert sum(p["count"] for p in sat) == 1 and sum(p["sum"] for p in sat) == 5
    score = points(collector, "gen_ai.evaluation.score", **{"gen_ai.request.model": "gpt-4o-mini"})
    assert sum(p["count"] for p in score) == 1 and sum(p["sum"] for p in score) == 1.0
    assert score[0]["attributes"]["gen_ai.evaluation.name"] == "user_satisfaction"


def test_histories_are_isolated_and_reset(log_dir, mock_llm, collector):
    env = {
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "span_and_event",
        "ASSISTANT_LEGACY_ATTRIBUTES": "true",
        "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "3000",
        "ASSISTANT_SYSTEM_PROMPT": "Be brief.",
    }
    with start_assistant(log_dir, mock_llm.base_url, otlp=collector.otlp_http, env=env) as app:
        a, b = session_id(), session_id()
        with ThreadPoolExecutor(2) as pool:
            first = dict(
                zip(
                    (a, b),
                    pool.map(
                        lambda s: chat(
                            app.url, f"alpha from {s}", s, max_tokens=15, temperature=0.3
                        ),
                        (a, b),
                    ),
                    strict=True,
                )
            )
            second = dict(
                zip(
                    (a, b),
                    pool.map(lambda s: chat(app.url, f"beta from {s}", s, max_tokens=15), (a, b)),
                    strict=True,
                )
            )
        long_message = '"quoted" \\ line\n' * 250  # 4000 characters of escapes
        third = chat(app.url, long_message, a, max_tokens=10)
        assert third.status == 200 and third.first("done")
        requests.post(
            f"{app.url}/api/reset", headers={"X-Session-Id": b}, timeout=10
        ).raise_for_status()
        fourth = chat(app.url, "gamma after reset", b, max_tokens=10)

        wanted = {
            r.first("start")["response_id"]
            for r in (*first.values(), *second.values(), third, fourth)
        }

        def spans():
            found = {s["attributes"].get("assistant.response_id"): s for s in collector.spans()}
            return found if wanted <= set(found) else None

        by_id = collector.wait_until(spans, timeout=20)

    def messages(result, key="gen_ai.input.messages"):
        value = by_id[result.first("start")["response_id"]]["attributes"][key]
        assert len(value) <= 3000
        return [(m["role"], m["parts"][0]["content"]) for m in json.loads(value)]

    for sid in (a, b):
        assert messages(first[sid]) == [("user", f"alpha from {sid}")]
        assert messages(second[sid]) == [
            ("user", f"alpha from {sid}"),
            ("assistant", first[sid].text),
            ("user", f"beta from {sid}"),
        ]
        assert messages(second[sid], "gen_ai.output.messages") == [("assistant", second[sid].text)]
    span = by_id[second[a].first("start")["response_id"]]
    assert json.loads(span["attributes"]["gen_ai.system_instructions"]) == [
        {"type": "text", "content": "Be brief."}
    ]
    # truncated per message, still valid JSON under the attribute limit
    long_in = messages(third)
    assert [role for role, _ in long_in] == ["user", "assistant", "user", "assistant", "user"]
    assert long_in[-1][1].endswith("…[truncated]")
    assert long_message.startswith(long_in[-1][1].removesuffix("…[truncated]"))
    assert messages(fourth) == [("user", "gamma after reset")]  # reset cleared b's history
    # SPAN_AND_EVENT: the same content as a log event in the chat span's context
    span = by_id[second[b].first("start")["response_id"]]
    event = collector.wait_until(
        lambda: next(
            (
                r
                for r in collector.log_records()
                if r["event_name"] == "gen_ai.client.inference.operation.details"
                and r["span_id"] == span["span_id"]
            ),
            None,
        ),
        timeout=20,
    )
    assert event["trace_id"] == span["trace_id"]
    for key in ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions"):
        assert event["attributes"][key] == span["attributes"][key]
    # the blog's legacy attribute names, with real values
    legacy = by_id[first[a].first("start")["response_id"]]["attributes"]
    usage = first[a].first("done")["usage"]
    assert legacy["GPT-model"] == "gpt-4o-mini" and legacy["GPT-temperature"] == 0.3
    assert legacy["tokens_used"] == usage["input_tokens"] + usage["output_tokens"]
    assert legacy["completion_tokens"] == usage["output_tokens"]
    assert "GPT-top_p" not in legacy


def test_two_workers_do_not_duplicate_metrics(log_dir, mock_llm, tmp_path):
    with (
        start_collector(tmp_path / "collector") as collector,
        start_assistant(
            log_dir, mock_llm.base_url, otlp=collector.otlp_http, env={"ASSISTANT_WORKERS": "2"}
        ) as app,
    ):
        app.process.wait_log("Booting worker", timeout=20)
        n = 12
        with ThreadPoolExecutor(6) as pool:
            results = list(
                pool.map(lambda i: chat(app.url, f"w{i}", session_id(), max_tokens=8), range(n))
            )
        assert all(r.first("done") for r in results)

        def counted():
            found = collector.metric_points("gen_ai.client.operation.duration")
            return found if sum(p["count"] for p in found) >= n else None

        found = collector.wait_until(counted, timeout=30)
        time.sleep(2.5)  # more export intervals: no late duplicates may show up
        assert (
            sum(p["count"] for p in collector.metric_points("gen_ai.client.operation.duration"))
            == n
        )
        workers = {p["resource"]["service.instance.id"] for p in found}
        pids = {p["resource"].get("process.pid") for p in found}
        assert app.process.pid not in pids  # nothing recorded by the gunicorn master
        assert len(workers) == len(pids) >= 1


def test_workers_share_conversations_and_feedback(log_dir, mock_llm, tmp_path):
    """Sessions and feedback live in the shared state file, not in a worker: two assistant
    instances on one ASSISTANT_STATE_DIR (as the workers of one instance are) continue each
    other's conversations and take feedback on each other's answers, deterministically."""
    state = tmp_path / "state"
    state.mkdir()
    env = {"ASSISTANT_WORKERS": "1", "ASSISTANT_STATE_DIR": str(state)}
    with (
        start_assistant(log_dir, mock_llm.base_url, env=env) as first,
        start_assistant(log_dir, mock_llm.base_url, env=env) as second,
    ):
        sid = session_id()
        question = "Which model is the fastest under load?"
        turn1 = chat(first.url, question, sid, max_tokens=12)
        turn2 = chat(second.url, question, sid, max_tokens=12)
        fresh = chat(second.url, question, session_id(), max_tokens=12)
        inputs = [r.first("done")["usage"]["input_tokens"] for r in (turn1, turn2, fresh)]
        assert inputs[0] == inputs[2] < inputs[1], inputs  # turn 2 carried turn 1's history

        def feedback(app, result, session=sid):
            body = {"response_id": result.first("start")["response_id"], "score": 4}
            headers = {"X-Session-Id": session}
            url = f"{app.url}/api/feedback"
            return requests.post(url, json=body, headers=headers, timeout=10).status_code

        assert feedback(second, turn1) == 204 and feedback(first, turn2) == 204
        assert feedback(first, turn1, session=session_id()) == 404  # still bound to its session
        reset = requests.post(f"{second.url}/api/reset", headers={"X-Session-Id": sid}, timeout=10)
        assert reset.status_code in (200, 204)
        after_reset = chat(first.url, question, sid, max_tokens=12)
        assert after_reset.first("done")["usage"]["input_tokens"] == inputs[0]
    assert "sessions shared by the workers" in first.process.log()


def test_default_is_two_workers_sharing_state(log_dir, mock_llm):
    with start_assistant(log_dir, mock_llm.base_url) as app:
        app.process.wait_log("Booting worker", timeout=20)
        deadline = time.monotonic() + 20
        while len(worker_pids(app)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(worker_pids(app)) == 2
        log = app.process.log()
        assert "2 worker(s) x 48 threads, sessions shared by the workers" in log
        sid, previous = session_id(), 0
        # turns between bursts of other chats, so that they spread over the workers (which
        # worker serves a turn is the kernel's choice; the test above is the deterministic one)
        for i in range(6):
            with ThreadPoolExecutor(4) as pool:
                others = list(pool.map(lambda _: chat(app.url, "x", session_id()), range(4)))
            assert all(r.first("done") for r in others)
            done = chat(app.url, f"turn {i}", sid, max_tokens=5).first("done")
            assert done["usage"]["input_tokens"] > previous  # the history grows every turn
            previous = done["usage"]["input_tokens"]


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"ASSISTANT_PORT": "abc"}, "ASSISTANT_PORT"),
        ({"ASSISTANT_DEFAULT_MODEL": "gpt-5"}, "ASSISTANT_DEFAULT_MODEL"),
        ({"OPENAI_BASE_URL": ""}, "OPENAI_BASE_URL"),
    ],
)
def test_bad_configuration_exits_with_a_clear_message(log_dir, env, variable):
    from harness.assistant import assistant_env
    from harness.prereq import service_python
    from harness.procs import ServiceProcess, free_port

    full = assistant_env(free_port(), "http://127.0.0.1:9/v1", None, {"OPENAI_API_KEY": "", **env})
    process = ServiceProcess(
        f"assistant-badconfig-{variable}",
        [service_python("assistant"), "-m", "assistant"],
        log_dir,
        full,
    )
    with process:
        assert process.wait_exit(timeout=30) == 2
    message = next(line for line in process.log().splitlines() if "configuration error" in line)
    assert variable in message
    assert "Traceback" not in process.log()


def test_incoming_traceparent_is_honoured(assistant, collector):
    trace_id, parent_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    response = requests.post(
        f"{assistant.url}/api/chat",
        json={"message": "traced by the load generator", "max_tokens": 5},
        headers={
            "X-Session-Id": session_id(),
            "traceparent": f"00-{trace_id}-{parent_id}-01",
            "baggage": "synthetic_request=true,loadgen.run_id=lg-7,user.email=a%40b.c",
        },
        timeout=30,
    )
    start = dict(parse_sse(response.text))["start"]
    assert start["trace_id"] == trace_id
    server = collector.wait_until(
        lambda: next(
            (s for s in collector.spans() if s["trace_id"] == trace_id and s["kind"] == "SERVER"),
            None,
        ),
        timeout=20,
    )
    assert server["parent_span_id"] == parent_id
    # only the allow-listed baggage entries become attributes, on the request and chat spans
    chat = collector.wait_until(
        lambda: next(
            (
                s
                for s in collector.spans()
                if s["trace_id"] == trace_id
                and s["attributes"].get("gen_ai.operation.name") == "chat"
            ),
            None,
        ),
        timeout=20,
    )
    for span in (server, chat):
        copied = {k: v for k, v in span["attributes"].items() if k.startswith(("synth", "loadgen"))}
        assert copied == {"synthetic_request": "true", "loadgen.run_id": "lg-7"}
        assert "user.email" not in span["attributes"]
