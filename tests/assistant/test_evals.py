"""LLM-as-judge evaluations end to end (docs/evaluations.md): the assistant under gunicorn, the
real mock LLM for the chats, the real test collector, and a tiny fake judge started here (an
http.server thread answering the contract's JSON), or the mock's own `mock-judge`."""

from __future__ import annotations

import json
import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from assistant import semconv as sc
from assistant.evals.evaluator import Evaluator, trace_sampled
from harness.assistant import chat, start_assistant
from harness.collector import wait_until
from harness.evaluations import scorecard_report
from harness.procs import free_port

FAKE_JUDGE = "fake-judge"
EVENT = "gen_ai.evaluation.result"
CLIENT_METRICS = (
    "gen_ai.client.operation.duration",
    "gen_ai.client.token.usage",
    "gen_ai.client.operation.time_to_first_chunk",
    "gen_ai.client.operation.time_per_output_chunk",
)


class FakeJudge:
    """POST /v1/chat/completions -> the contract's verdict. `mode`: ok | garbage | slow | reset;
    a question containing `FAILFAITH` fails faithfulness."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.delay_s = 0.0
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        judge = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                judge.requests.append(body)
                judge.headers.append(dict(self.headers))
                if judge.mode == "slow":
                    time.sleep(judge.delay_s)
                if judge.mode == "reset":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                content = judge.verdict(body) if judge.mode != "garbage" else "{not json"
                payload = json.dumps(
                    {
                        "id": f"judge-{uuid.uuid4().hex[:8]}",
                        "object": "chat.completion",
                        "model": body.get("model"),
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": content},
                            }
                        ],
                    }
                ).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the client gave up (timeout)
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_port}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @staticmethod
    def verdict(body: dict) -> str:
        question = json.loads(body["messages"][1]["content"])["question"]
        items = []
        for name, (good, bad) in sc.EVALUATION_LABELS.items():
            fail = name == "faithfulness" and "FAILFAITH" in question
            items.append(
                {
                    "name": name,
                    "score": 0 if fail else 1,
                    "label": bad if fail else good,
                    "reason": f"REASON-{name}",
                }
            )
        return json.dumps({"evaluations": items})

    def __enter__(self) -> FakeJudge:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def judge():
    with FakeJudge() as running:
        yield running


def judged_env(judge_url: str, name: str, **extra: str) -> dict[str, str]:
    return {
        "OTEL_SERVICE_NAME": name,  # the collector is shared by this module's assistants
        "ASSISTANT_JUDGE_BASE_URL": judge_url,
        "ASSISTANT_JUDGE_MODEL": FAKE_JUDGE,
        "OTEL_INSTRUMENTATION_GENAI_EVALUATION_SAMPLE_RATE": "1",
        **extra,
    }


def service(item: dict) -> str:
    return item["resource"].get("service.name", "")


def events_of(collector, name: str) -> list[dict]:
    return [r for r in collector.log_records() if r["event_name"] == EVENT and service(r) == name]


def judge_events(collector, name: str) -> list[dict]:
    """Evaluation events of the judge (not user feedback)."""
    return [
        r
        for r in events_of(collector, name)
        if r["attributes"].get(sc.GEN_AI_EVALUATION_NAME) in sc.EVALUATION_LABELS
    ]


def counted(collector, name: str, outcome: str) -> float:
    return sum(
        p["value"]
        for p in collector.metric_points(sc.METRIC_EVALUATION_REQUESTS)
        if service(p) == name and p["attributes"].get("outcome") == outcome
    )


def chat_spans(collector, name: str) -> dict[str, dict]:
    return {
        s["trace_id"]: s
        for s in collector.spans()
        if s["name"].startswith("chat ") and s["kind"] == "CLIENT" and service(s) == name
    }


def done_chat(url: str, message: str, sid: str, **fields):
    result = chat(url, message, sid, **fields)
    assert result.status == 200 and result.events[-1][0] == "done", result.raw[-300:]
    assert not any(kind == "error" for kind, _ in result.events)
    return result


def sid() -> str:
    return f"eval_{uuid.uuid4().hex[:16]}"


# --- results, linkage, content, endpoint -------------------------------------------------


@pytest.fixture(scope="module")
def judged(log_dir, fast_mock_llm, collector, judge):
    env = judged_env(judge.base_url, "assistant-judged")
    with start_assistant(log_dir, fast_mock_llm.base_url, otlp=collector.otlp_http, env=env) as a:
        yield a


def test_results_are_events_on_the_chat_span(judged, collector, judge):
    name = "assistant-judged"
    session = sid()
    models = ["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini"]
    results = [
        done_chat(judged.url, "first question SECRETQ", session, model=models[0]),
        done_chat(judged.url, "second FAILFAITH question SECRETQ", session, model=models[1]),
        done_chat(judged.url, "third question SECRETQ", sid(), model=models[2]),
    ]
    ids = {r.first("start")["response_id"]: r for r in results}
    collector.wait_until(lambda: len(judge_events(collector, name)) >= 12, timeout=30)
    spans = chat_spans(collector, name)
    events = judge_events(collector, name)
    assert len(events) == 12
    for response_id, result in ids.items():
        trace_id = result.first("start")["trace_id"]
        mine = [e for e in events if e["attributes"][sc.ASSISTANT_RESPONSE_ID] == response_id]
        chat_span = spans[trace_id]
        model = chat_span["attributes"][sc.GEN_AI_REQUEST_MODEL]
        assert sorted(e["attributes"][sc.GEN_AI_EVALUATION_NAME] for e in mine) == sorted(
            sc.EVALUATION_LABELS
        )
        for event in mine:
            attrs = event["attributes"]
            # parented on the chat span, in its trace
            assert (event["trace_id"], event["span_id"]) == (trace_id, chat_span["span_id"])
            assert attrs[sc.GEN_AI_REQUEST_MODEL] == model
            assert attrs[sc.ASSISTANT_EVALUATION_JUDGE] == FAKE_JUDGE
            assert attrs[sc.GEN_AI_RESPONSE_ID] == chat_span["attributes"][sc.GEN_AI_RESPONSE_ID]
            assert sc.GEN_AI_EVALUATION_EXPLANATION not in attrs  # no content capture
            # the second question (gpt-4o) asked the fake judge to fail faithfulness
            failed = model == "gpt-4o" and attrs[sc.GEN_AI_EVALUATION_NAME] == "faithfulness"
            good, bad = sc.EVALUATION_LABELS[attrs[sc.GEN_AI_EVALUATION_NAME]]
            assert attrs[sc.GEN_AI_EVALUATION_SCORE_VALUE] == (0 if failed else 1)
            assert attrs[sc.GEN_AI_EVALUATION_SCORE_LABEL] == (bad if failed else good)
            assert "SECRETQ" not in json.dumps(event, default=str)
            assert "REASON-" not in json.dumps(event, default=str)
        # one judge CLIENT span per answer, a child of the chat span, never `chat {model}`
        judge_spans = [
            s
            for s in collector.spans()
            if s["trace_id"] == trace_id and s["name"] == f"judge {FAKE_JUDGE}"
        ]
        assert len(judge_spans) == 1
        span = judge_spans[0]
        assert span["kind"] == "CLIENT" and span["parent_span_id"] == chat_span["span_id"]
        assert span["attributes"][sc.GEN_AI_OPERATION_NAME] == "chat"
        assert span["attributes"][sc.GEN_AI_REQUEST_MODEL] == FAKE_JUDGE
        assert span["attributes"][sc.ASSISTANT_EVALUATION_EVALUATED_MODEL] == model
        assert sc.ERROR_TYPE not in span["attributes"]
        assert "SECRETQ" not in json.dumps(span, default=str)
        assert "REASON-" not in json.dumps(span, default=str)
        assert not [
            s
            for s in collector.spans()
            if s["trace_id"] == trace_id
            and FAKE_JUDGE in s["name"]
            and s["name"].startswith("chat ")
        ]
    # the judge requests: the contract, the chat's trace context, earlier turns as context
    bodies = {json.loads(b["messages"][1]["content"])["question"]: b for b in judge.requests}
    second = json.loads(bodies["second FAILFAITH question SECRETQ"]["messages"][1]["content"])
    assert second["context"][0] == "user: first question SECRETQ"
    assert second["context"][1].startswith("assistant: ") and len(second["context"]) == 2
    assert second["answer"] == ids[results[1].first("start")["response_id"]].text
    first = json.loads(bodies["first question SECRETQ"]["messages"][1]["content"])
    assert first["context"] == []
    for body in bodies.values():
        assert body["temperature"] == 0 and body["response_format"] == {"type": "json_object"}
        assert body["messages"][0]["content"].startswith("llm-lab-judge/1\n")
    traceparents = {h.get("traceparent", "").split("-")[1] for h in judge.headers}
    assert {r.first("start")["trace_id"] for r in results} <= traceparents

    # the histogram: by model and evaluation name; judge traffic not in gen_ai.client.*
    def scores():
        found = {}
        for p in collector.metric_points(sc.METRIC_EVALUATION_SCORE):
            a = p["attributes"]
            if service(p) == name and a.get(sc.GEN_AI_EVALUATION_NAME) in sc.EVALUATION_LABELS:
                key = (a[sc.GEN_AI_REQUEST_MODEL], a[sc.GEN_AI_EVALUATION_NAME])
                count, total = found.get(key, (0, 0.0))
                found[key] = (count + p["count"], total + p["sum"])
                assert a[sc.ASSISTANT_EVALUATION_JUDGE] == FAKE_JUDGE
                assert a[sc.GEN_AI_PROVIDER_NAME] == "openai"
        return found if sum(c for c, _ in found.values()) >= 12 else None

    found = collector.wait_until(scores, timeout=20)
    assert found[("gpt-4o", "faithfulness")] == (1, 0.0)
    assert found[("gpt-4o-mini", "faithfulness")] == (1, 1.0)
    assert found[("gpt-4.1-mini", "toxicity")] == (1, 1.0)
    assert len(found) == 12
    collector.wait_until(lambda: counted(collector, name, "evaluated") >= 3, timeout=20)
    for metric in CLIENT_METRICS:
        for p in collector.metric_points(metric):
            assert p["attributes"].get(sc.GEN_AI_REQUEST_MODEL) != FAKE_JUDGE, p
    duration = [p for p in collector.metric_points(sc.METRIC_JUDGE_DURATION) if service(p) == name]
    assert sum(p["count"] for p in duration) >= 3
    assert all(p["unit"] == "s" for p in duration)


def test_content_capture_adds_the_explanation(log_dir, fast_mock_llm, collector, judge):
    name = "assistant-judged-content"
    env = judged_env(
        judge.base_url, name, OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="SPAN_AND_EVENT"
    )
    with start_assistant(log_dir, fast_mock_llm.base_url, otlp=collector.otlp_http, env=env) as a:
        done_chat(a.url, "hello there", sid())
        events = collector.wait_until(
            lambda: len(judge_events(collector, name)) >= 4 and judge_events(collector, name)
        )
    for event in events:
        evaluation = event["attributes"][sc.GEN_AI_EVALUATION_NAME]
        assert event["attributes"][sc.GEN_AI_EVALUATION_EXPLANATION] == f"REASON-{evaluation}"


def test_the_badge_endpoint(log_dir, fast_mock_llm, collector, judge):
    name = "assistant-badge"
    judge.mode, judge.delay_s = "slow", 1.5
    try:
        env = judged_env(judge.base_url, name)
        with start_assistant(
            log_dir, fast_mock_llm.base_url, otlp=collector.otlp_http, env=env
        ) as a:
            session = sid()
            result = done_chat(a.url, "FAILFAITH please", session)
            assert result.first("done")["evaluation"] == "sampled"
            response_id = result.first("start")["response_id"]
            url = f"{a.url}/api/evaluations/{response_id}"
            before = requests.get(url, headers={"X-Session-Id": session}, timeout=10)
            assert before.status_code == 200, before.text  # the judge takes 1.5 s
            assert before.json()["status"] == "pending" and before.json()["evaluations"] == []

            def ready():
                r = requests.get(url, headers={"X-Session-Id": session}, timeout=10)
                return r if r.status_code == 200 and r.json()["status"] != "pending" else None

            body = collector.wait_until(ready, timeout=20).json()
            assert body["response_id"] == response_id and body["status"] == "done"
            assert body["judge"] == FAKE_JUDGE and body["model"] == "gpt-4o-mini"
            assert {e["name"]: (e["score"], e["label"]) for e in body["evaluations"]} == {
                "answer_relevancy": (1, "relevant"),
                "faithfulness": (0, "unfaithful"),
                "toxicity": (1, "safe"),
                "answered": (1, "answered"),
            }
            # session-scoped like feedback; bad ids are 4xx JSON
            other = requests.get(url, headers={"X-Session-Id": sid()}, timeout=10)
            assert other.status_code == 404
            for bad in ("nope", "resp_" + "g" * 32, "resp_" + "0" * 33, "%00"):
                response = requests.get(f"{a.url}/api/evaluations/{bad}", timeout=10)
                assert response.status_code == 400, (bad, response.text)
                assert response.json()["error"]["type"] == "invalid_field"
            unknown = requests.get(f"{a.url}/api/evaluations/resp_{'0' * 32}", timeout=10)
            assert unknown.status_code == 404 and "error" in unknown.json()
            document = requests.get(f"{a.url}/api/openapi.json", timeout=10).json()
            assert "/api/evaluations/{response_id}" in document["paths"]
    finally:
        judge.mode, judge.delay_s = "ok", 0.0


# --- sampling ----------------------------------------------------------------------------


def test_sample_rate_zero_never_calls_the_judge(log_dir, fast_mock_llm, collector, judge):
    name = "assistant-rate-0"
    env = judged_env(judge.base_url, name, OTEL_INSTRUMENTATION_GENAI_EVALUATION_SAMPLE_RATE="0")
    seen = len(judge.requests)
    with start_assistant(log_dir, fast_mock_llm.base_url, otlp=collector.otlp_http, env=env) as a:
        session = sid()
        results = [done_chat(a.url, f"question {i}", session) for i in range(5)]
        assert all("evaluation" not in r.first("done") for r in results)
        collector.wait_until(lambda: len(chat_spans(collector, name)) >= 5, timeout=20)
        time.sleep(1.5)
        response_id = results[0].first("start")["response_id"]
        response = requests.get(
            f"{a.url}/api/evaluations/{response_id}", headers={"X-Session-Id": session}, timeout=10
        )
        assert response.status_code == 404
    assert len(judge.requests) == seen
    assert judge_events(collector, name) == []
    assert not [
        p for p in collector.metric_points(sc.METRIC_EVALUATION_REQUESTS) if service(p) == name
    ]


def test_sample_rate_half_is_a_trace_id_ratio(log_dir, fast_mock_llm, collector, judge):
    name = "assistant-rate-half"
    n = 60
    env = judged_env(judge.base_url, name, OTEL_INSTRUMENTATION_GENAI_EVALUATION_SAMPLE_RATE="0.5")
    with start_assistant(log_dir, fast_mock_llm.base_url, otlp=collector.otlp_http, env=env) as a:
        with ThreadPoolExecutor(6) as pool:
            results = list(pool.map(lambda i: done_chat(a.url, f"q {i}", sid()), range(n)))
        traces = {r.first("start")["trace_id"] for r in results}
        expected = {t for t in traces if trace_sampled(int(t, 16), 0.5)}
        for r in results:  # the done event tells the UI whether to poll for the badge
            sampled = r.first("start")["trace_id"] in expected
            assert (r.first("done").get("evaluation") == "sampled") == sampled
        collector.wait_until(
            lambda: (
                counted(collector, name, "evaluated") + counted(collector, name, "not_sampled") >= n
            ),
            timeout=30,
        )
        collector.wait_until(
            lambda: len(judge_events(collector, name)) >= 4 * len(expected), timeout=30
        )
    evaluated = {e["trace_id"] for e in judge_events(collector, name)}
    assert evaluated == expected  # decided by the trace id, whichever worker served it
    assert counted(collector, name, "evaluated") == len(expected)
    assert counted(collector, name, "not_sampled") == n - len(expected)
    assert abs(len(expected) - n / 2) <= 15, len(expected)  # about 3.9 sigma


# --- a failing judge never touches a chat ------------------------------------------------


def durations(url: str, count: int) -> list[float]:
    return [done_chat(url, f"timing {i}", sid()).first("done")["duration_ms"] for i in range(count)]


@pytest.mark.parametrize("mode", ["down", "slow", "garbage", "reset"])
def test_a_failing_judge_changes_no_chat(log_dir, fast_mock_llm, collector, judge, mode):
    name = f"assistant-judge-{mode}"
    url = f"http://127.0.0.1:{free_port()}/v1" if mode == "down" else judge.base_url
    env = judged_env(url, name, ASSISTANT_EVAL_TIMEOUT_S="0.3", ASSISTANT_WORKERS="1")
    baseline_env = {
        **env,
        "OTEL_SERVICE_NAME": f"{name}-off",
        "OTEL_INSTRUMENTATION_GENAI_EVALUATION_SAMPLE_RATE": "0",
    }
    judge.mode, judge.delay_s = (mode if mode != "down" else "ok"), 2.0
    count = 8
    try:
        with start_assistant(
            log_dir, fast_mock_llm.base_url, otlp=collector.otlp_http, env=baseline_env
        ) as off:
            durations(off.url, 3)  # warm-up
            without = durations(off.url, count)
        with start_assistant(
            log_dir, fast_mock_llm.base_url, otlp=collector.otlp_http, env=env
        ) as a:
            durations(a.url, 3)
            started = time.perf_counter()
            with_judge = durations(a.url, count)
            wall = time.perf_counter() - started
            collector.wait_until(
                lambda: counted(collector, name, "judge_error") >= count + 3, timeout=60
            )
            log = a.process.log()
    finally:
        judge.mode, judge.delay_s = "ok", 0.0
    assert statistics.median(with_judge) <= statistics.median(without) * 1.5 + 25, (
        with_judge,
        without,
    )
    assert wall < count * 1.0  # a judge call (0.3 s timeout, one retry) never delays a chat
    assert judge_events(collector, name) == []
    assert counted(collector, name, "evaluated") == 0
    spans = [s for s in collector.spans() if service(s) == name and s["name"].startswith("judge ")]
    assert spans and all(
        s["status_code"] == "ERROR" and s["attributes"].get(sc.ERROR_TYPE) for s in spans
    )
    chats = [s for s in collector.spans() if service(s) == name and s["name"].startswith("chat ")]
    assert chats and all(s["status_code"] != "ERROR" for s in chats)
    assert "timing" not in "\n".join(line for line in log.splitlines() if "judge" in line)
    assert "Traceback" not in log


def test_a_full_queue_drops_and_counts(log_dir, fast_mock_llm, collector, judge):
    name = "assistant-queue-full"
    env = judged_env(
        judge.base_url,
        name,
        ASSISTANT_EVAL_QUEUE_SIZE="1",
        ASSISTANT_WORKERS="1",
        ASSISTANT_EVAL_TIMEOUT_S="10",
    )
    judge.mode, judge.delay_s = "slow", 1.0
    burst = 12
    try:
        with start_assistant(
            log_dir, fast_mock_llm.base_url, otlp=collector.otlp_http, env=env
        ) as a:
            started = time.perf_counter()
            with ThreadPoolExecutor(burst) as pool:
                results = list(pool.map(lambda i: done_chat(a.url, f"b {i}", sid()), range(burst)))
            wall = time.perf_counter() - started
            assert wall < 3.0, wall  # the burst never waited for the judge
            assert all(r.first("done")["duration_ms"] < 1000 for r in results)

            def settled():
                outcomes = [counted(collector, name, o) for o in ("evaluated", "dropped")]
                return outcomes if sum(outcomes) >= burst else None

            evaluated, dropped = collector.wait_until(settled, timeout=30)
    finally:
        judge.mode, judge.delay_s = "ok", 0.0
    assert dropped >= burst - 3 and evaluated >= 1, (evaluated, dropped)
    assert evaluated + dropped == burst


# --- the mock's own judge ----------------------------------------------------------------


def test_with_the_mock_judge(log_dir, mock_llm, collector, tmp_path):
    name = "assistant-mock-judge"
    # the shipped defaults: mock-judge on every trace
    env = {"OTEL_SERVICE_NAME": name, "ASSISTANT_EVALUATIONS": "true"}
    with start_assistant(log_dir, mock_llm.base_url, otlp=collector.otlp_http, env=env) as a:
        results = [done_chat(a.url, f"explain tracing {i}", sid(), max_tokens=30) for i in range(4)]
        collector.wait_until(lambda: len(judge_events(collector, name)) >= 16, timeout=60)
    events = judge_events(collector, name)
    assert {e["trace_id"] for e in events} == {r.first("start")["trace_id"] for r in results}
    for event in events:
        attrs = event["attributes"]
        assert attrs[sc.ASSISTANT_EVALUATION_JUDGE] == "mock-judge"
        assert attrs[sc.GEN_AI_EVALUATION_SCORE_VALUE] in (0, 1)
        good, bad = sc.EVALUATION_LABELS[attrs[sc.GEN_AI_EVALUATION_NAME]]
        assert attrs[sc.GEN_AI_EVALUATION_SCORE_LABEL] in (good, bad)
    assert counted(collector, name, "judge_error") == 0
    # judge tokens (docs/evaluations.md, "Judge cost"): the spans' usage is what the mock sent
    traces = {r.first("start")["trace_id"] for r in results}

    def judge_spans():
        found = {
            s["span_id"]: s
            for s in collector.spans()
            if s["name"] == "judge mock-judge" and s["trace_id"] in traces
        }
        return found if len(found) >= 4 else None

    spans = collector.wait_until(judge_spans, timeout=30)
    sent = {
        e["parent_span_id"]: e
        for e in mock_llm.requests_log()
        if e["model"] == "mock-judge" and e["trace_id"] in traces
    }
    assert len(spans) == len(sent) == 4 and set(spans) == set(sent)
    for span_id, span in spans.items():
        assert span["attributes"][sc.GEN_AI_USAGE_INPUT_TOKENS] == sent[span_id]["prompt_tokens"]
        assert span["attributes"][sc.GEN_AI_USAGE_OUTPUT_TOKENS] == sent[span_id]["tokens_sent"]
    truth = (
        sum(e["prompt_tokens"] for e in sent.values()),
        sum(e["tokens_sent"] for e in sent.values()),
    )
    assert all(e["completed"] and e["status"] == 200 for e in sent.values())
    report = scorecard_report(collector.archive, tmp_path)
    rows = {row["judge"]: row for row in report["quality"]["judge_cost"]["judges"]}
    mock = rows["mock-judge"]
    assert (mock["input_tokens"], mock["output_tokens"]) == truth
    assert mock["judge_calls"] == mock["evaluated_answers"] == 4
    assert mock["cost_usd"] is None and mock["cost_text"] == "offline mock judge: no cost"
    print(f"mock-judge tokens per evaluation: {truth[0] / 4:.1f} in, {truth[1] / 4:.1f} out")


def test_worker_exit_drains_within_a_bound(log_dir, fast_mock_llm, collector, judge):
    """At worker exit the queued answers are still judged for at most 5 s (DRAIN_TIMEOUT_S); the
    rest are counted as dropped, and the counts reach the collector before the SDK shuts down."""
    name = "assistant-drain"
    env = judged_env(judge.base_url, name, ASSISTANT_WORKERS="1", ASSISTANT_EVAL_TIMEOUT_S="10")
    judge.mode, judge.delay_s = "slow", 1.0
    count = 9
    try:
        with start_assistant(
            log_dir, fast_mock_llm.base_url, otlp=collector.otlp_http, env=env
        ) as a:
            for i in range(count):
                done_chat(a.url, f"drain {i}", sid())
            stopping = time.perf_counter()
            code = a.process.stop(timeout=15)
            stopped_in = time.perf_counter() - stopping
            log = a.process.log()
    finally:
        judge.mode, judge.delay_s = "ok", 0.0
    assert code == 0, log[-2000:]
    assert stopped_in < 12, stopped_in  # 5 s of drain + a judge call in flight, not 9 s

    def settled():
        outcomes = [counted(collector, name, o) for o in ("evaluated", "dropped")]
        return outcomes if sum(outcomes) >= count else None

    evaluated, dropped = collector.wait_until(settled, timeout=20)
    assert evaluated + dropped == count and evaluated >= 4 and dropped >= 1, (evaluated, dropped)
    assert len(judge_events(collector, name)) == 4 * evaluated
    assert "Traceback" not in log


def test_the_badge_works_without_telemetry(log_dir, fast_mock_llm, judge):
    env = judged_env(judge.base_url, "assistant-no-telemetry")
    with start_assistant(log_dir, fast_mock_llm.base_url, otlp=None, env=env) as a:
        session = sid()
        result = done_chat(a.url, "no telemetry here", session)
        assert result.first("done")["evaluation"] == "sampled"
        url = f"{a.url}/api/evaluations/{result.first('start')['response_id']}"

        def ready():
            r = requests.get(url, headers={"X-Session-Id": session}, timeout=10)
            return r.json() if r.status_code == 200 and r.json()["status"] != "pending" else None

        body = wait_until(ready, timeout=20)
        assert body["status"] == "done" and len(body["evaluations"]) == 4
        assert "Traceback" not in a.process.log()


# --- the worker thread, in this process (no SDK: the API's no-op providers) ----------------


def _in_process_evaluator(judge_url: str, state_dir) -> Evaluator:
    from assistant.config import load_config
    from assistant.telemetry import create_instruments

    env = {
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "OPENAI_API_KEY": "sk-chat",
        "ASSISTANT_STATE_DIR": str(state_dir),  # the workers' shared SQLite store
        **judged_env(judge_url, "in-process"),
    }
    return Evaluator(load_config(env), create_instruments())


def _offered_chat(question: str):
    from types import SimpleNamespace

    from opentelemetry.trace import SpanContext, TraceFlags

    trace_id = uuid.uuid4().int
    context = SpanContext(trace_id, 1, is_remote=False, trace_flags=TraceFlags(1))
    params = SimpleNamespace(
        model="gpt-4o-mini",
        response_id=f"resp_{uuid.uuid4().hex}",
        messages=({"role": "user", "content": question},),
    )
    span = SimpleNamespace(get_span_context=lambda: context)
    return SimpleNamespace(span=span, response_id="chatcmpl-1", text="an answer", params=params)


def _thread_cpu_s(thread: threading.Thread) -> float:
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def test_the_worker_thread_builds_the_client_and_blocks_when_idle(tmp_path):
    """The first sampled answer only starts the thread (the judge's client is built in it, not on
    the request path); an idle thread uses no CPU (it blocks on its queue, no 0.2 s polling), and
    stop() ends it at once."""
    with FakeJudge() as judge:
        evaluator = _in_process_evaluator(judge.base_url, tmp_path)
        built_in: list[int] = []
        make_client = evaluator._make_client

        def recording_make_client():
            built_in.append(threading.get_ident())
            return make_client()

        evaluator._make_client = recording_make_client
        try:
            call = _offered_chat("what is a span?")
            assert evaluator.offer(call, call.params, "s1", None, sampled=True)
            pending = evaluator.result(call.params.response_id, "s1")
            assert pending is not None and pending["status"] in ("pending", "done")

            def judged():
                result = evaluator.result(call.params.response_id, "s1")
                return result if result and result["status"] == "done" else None

            done = wait_until(judged, timeout=10)
            assert [e["score"] for e in done["evaluations"]] == [1, 1, 1, 1]
            thread = evaluator._thread
            assert built_in == [thread.ident] != [threading.get_ident()]
            time.sleep(0.3)  # the result is stored: nothing left to do
            idle_start = _thread_cpu_s(thread)
            time.sleep(1.0)
            assert _thread_cpu_s(thread) - idle_start < 10e-6  # polling woke it 5 times a second
            started = time.monotonic()
            evaluator.stop(5.0)
            assert time.monotonic() - started < 1.0 and not thread.is_alive()
            assert len(judge.requests) == 1
        finally:
            evaluator.stop(1.0)


def test_stop_evaluates_what_is_queued_within_the_bound(tmp_path):
    with FakeJudge() as judge:
        judge.mode, judge.delay_s = "slow", 0.2
        evaluator = _in_process_evaluator(judge.base_url, tmp_path)
        calls = [_offered_chat(f"question {i}") for i in range(3)]
        try:
            assert all(evaluator.offer(c, c.params, "s2", None, sampled=True) for c in calls)
            evaluator.stop(5.0)  # queued behind the three answers: all three are judged first
            statuses = [evaluator.result(c.params.response_id, "s2")["status"] for c in calls]
            assert statuses == ["done"] * 3 and len(judge.requests) == 3
        finally:
            evaluator.stop(1.0)
