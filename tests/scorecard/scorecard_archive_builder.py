"""Build a small OTLP JSON-lines archive by hand, shaped like the assistant's telemetry.

Used by the unit tests (the real-run test uses a real collector's archive instead).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from harness.evaluations import FAIL_LABELS

S_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
T_BUCKETS = [
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
]
BASE_NS = 1_795_000_000_000_000_000  # 2026-11-18T...Z


def value(v):
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, list | tuple):
        return {"arrayValue": {"values": [value(x) for x in v]}}
    return {"stringValue": str(v)}


def attrs(mapping: dict) -> list[dict]:
    return [{"key": k, "value": value(v)} for k, v in mapping.items()]


RESOURCE = {
    "resource": {
        "attributes": attrs({"service.name": "assistant", "deployment.environment": "test"})
    }
}


@dataclass
class FakeEvaluation:
    """One `gen_ai.evaluation.result` of the judge (docs/evaluations.md) on a call's answer."""

    name: str
    score: float | None
    label: str | None = None
    judge: str = "mock-judge"
    delay_s: float = 2.0  # recorded this long after the chat span ends
    as_span_event: bool = False  # a span event on the chat span instead of a log record
    join: str = "response_id"  # or "app_response_id", or "span" (no ids: by the parent span)
    metric_score: float | None = None  # what the histogram records, if not the score
    metric_lost: bool = False  # the histogram record never reached the archive


@dataclass
class FakeJudgeCall:
    """The judge's own CLIENT span `judge {model}` on a call's answer, with its token usage."""

    model: str
    input_tokens: int | None
    output_tokens: int | None


@dataclass
class FakeCall:
    model: str
    start_ns: int
    server_s: float
    chat_s: float
    ttft_s: float
    input_tokens: int | None
    output_tokens: int | None
    error_type: str | None = None
    score: int | None = None
    trace_id: str = ""
    run_id: str | None = None
    metric_ttft_s: float | None = None  # what the histogram records, if not the span's TTFT
    metric_lost: bool = False  # the call's metric records never reached the archive
    # where `synthetic_request=true` is (the load generator's baggage, copied by the assistant):
    # "chat" (the chat span and its SERVER span), "record" (the evaluation log record),
    # "feedback_span" (the feedback request's SERVER span that carries the event's copy)
    synthetic_on: tuple[str, ...] = ()
    feedback_span: bool = False  # also write the rating's span-event copy on a feedback span
    evaluations: list[FakeEvaluation] = field(default_factory=list)
    judge_calls: list[FakeJudgeCall] = field(default_factory=list)

    @property
    def end_ns(self) -> int:
        """When the chat span ends, i.e. when the assistant records the call's metrics."""
        return self.start_ns + 1_000_000 + int(self.chat_s * 1e9)


def make_calls(seed: int = 7, per_model: dict[str, int] | None = None) -> list[FakeCall]:
    """Deterministic calls: distinct speed per model, a few errors, some ratings."""
    rng = random.Random(seed)
    per_model = per_model or {"gpt-4o": 30, "gpt-4o-mini": 40, "o3-mini": 25}
    profile = {
        "gpt-4o": (0.40, 60),
        "gpt-4o-mini": (0.15, 120),
        "o3-mini": (1.2, 80),
        "gpt-4.1-mini": (0.2, 100),
    }
    calls = []
    t = BASE_NS
    for model, count in per_model.items():
        ttft_base, tps = profile[model]
        for i in range(count):
            t += int(rng.uniform(0.05, 0.3) * 1e9)
            ttft = ttft_base * rng.uniform(0.8, 1.3)
            out = rng.randint(20, 120)
            chat = ttft + (out - 1) / (tps * rng.uniform(0.9, 1.1))
            error = None
            if i % 10 == 9:
                error = "openai.RateLimitError" if i % 20 == 9 else "upstream_incomplete"
            score = rng.choice([2, 3, 4, 5, 5]) if i % 3 == 0 and error is None else None
            calls.append(
                FakeCall(
                    model=model,
                    start_ns=t,
                    server_s=chat + 0.004,
                    chat_s=chat if error is None else 0.05,
                    ttft_s=ttft,
                    input_tokens=None if error else rng.randint(10, 60),
                    output_tokens=None if error else out,
                    error_type=error,
                    score=score,
                    trace_id=f"{rng.getrandbits(128):032x}",
                )
            )
    return calls


def span_lines(calls: list[FakeCall]) -> list[dict]:
    spans = []
    for index, call in enumerate(calls):
        server_id, chat_id = f"{index * 2 + 1:016x}", f"{index * 2 + 2:016x}"
        chat_start = call.start_ns + 1_000_000
        server_attrs = {
            "http.request.method": "POST",
            "http.route": "/api/chat",
            "gen_ai.request.model": call.model,
        }
        if call.run_id:
            server_attrs["loadgen.run_id"] = call.run_id
        if "chat" in call.synthetic_on:
            server_attrs["synthetic_request"] = "true"
        spans.append(
            {
                "traceId": call.trace_id,
                "spanId": server_id,
                "name": "POST /api/chat",
                "kind": 2,
                "startTimeUnixNano": str(call.start_ns),
                "endTimeUnixNano": str(call.start_ns + int(call.server_s * 1e9)),
                "attributes": attrs(server_attrs),
                "status": {},
            }
        )
        chat_attrs = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": call.model,
        }
        if "chat" in call.synthetic_on:
            chat_attrs["synthetic_request"] = "true"
        status = {}
        if call.error_type:
            chat_attrs["error.type"] = call.error_type
            status = {"code": 2, "message": "failed"}
        else:
            chat_attrs.update(
                {
                    "gen_ai.response.model": call.model + "-2024-08-06",
                    "gen_ai.response.id": f"chatcmpl-{index}",
                    "gen_ai.response.time_to_first_chunk": call.ttft_s,
                    "gen_ai.usage.input_tokens": call.input_tokens,
                    "gen_ai.usage.output_tokens": call.output_tokens,
                    "gen_ai.response.finish_reasons": ["stop"],
                }
            )
        events = [
            {
                "name": "gen_ai.evaluation.result",
                "timeUnixNano": str(call.end_ns + int(e.delay_s * 1e9)),
                "attributes": attrs(evaluation_attrs(index, call, e)),
            }
            for e in call.evaluations
            if e.as_span_event
        ]
        spans.append(
            {
                "traceId": call.trace_id,
                "spanId": chat_id,
                "parentSpanId": server_id,
                "name": f"chat {call.model}",
                "kind": 3,
                "startTimeUnixNano": str(chat_start),
                "endTimeUnixNano": str(chat_start + int(call.chat_s * 1e9)),
                "attributes": attrs(chat_attrs),
                **({"events": events} if events else {}),
                "status": status,
            }
        )
        spans += [_judge_span(index, n, call, judge) for n, judge in enumerate(call.judge_calls)]
        if call.feedback_span and call.score is not None:
            spans.append(_feedback_span(index, call))
    # two export requests, like two batches
    half = len(spans) // 2
    return [
        {
            "resourceSpans": [
                {**RESOURCE, "scopeSpans": [{"scope": {"name": "assistant.genai"}, "spans": part}]}
            ]
        }
        for part in (spans[:half], spans[half:])
    ]


def _evaluation_attrs(index: int, call: FakeCall) -> dict:
    return {
        "gen_ai.evaluation.name": "user_satisfaction",
        "gen_ai.evaluation.score.value": call.score,
        "gen_ai.evaluation.score.label": "thumbs_up" if call.score >= 4 else "neutral",
        "gen_ai.request.model": call.model,
        "gen_ai.response.id": f"chatcmpl-{index}",
        "assistant.response_id": f"resp_{index:04x}",
        "assistant.feedback.revision": 1,
    }


def evaluation_attrs(index: int, call: FakeCall, evaluation: FakeEvaluation) -> dict:
    """The attributes the assistant puts on a judge's result (docs/evaluations.md)."""
    result = {"gen_ai.evaluation.name": evaluation.name}
    if evaluation.score is not None:
        result["gen_ai.evaluation.score.value"] = evaluation.score
    if evaluation.label is not None:
        result["gen_ai.evaluation.score.label"] = evaluation.label
    result["gen_ai.request.model"] = call.model
    if evaluation.join == "response_id":
        result["gen_ai.response.id"] = f"chatcmpl-{index}"
    if evaluation.join in ("response_id", "app_response_id"):
        result["assistant.response_id"] = f"resp_{index:04x}"
    result["assistant.evaluation.judge"] = evaluation.judge
    return result


def _judge_span(index: int, n: int, call: FakeCall, judge: FakeJudgeCall) -> dict:
    """The evaluator's judge call, a child of the chat span (docs/evaluations.md)."""
    start = call.end_ns + 500_000_000
    span_attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": judge.model,
        "assistant.evaluation.evaluated_model": call.model,
        "assistant.response_id": f"resp_{index:04x}",
    }
    for key, tokens in (("input", judge.input_tokens), ("output", judge.output_tokens)):
        if tokens is not None:
            span_attrs[f"gen_ai.usage.{key}_tokens"] = tokens
    return {
        "traceId": call.trace_id,
        "spanId": f"{0xE0000 + index * 16 + n:016x}",
        "parentSpanId": f"{index * 2 + 2:016x}",
        "name": f"judge {judge.model}",
        "kind": 3,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + 300_000_000),
        "attributes": attrs(span_attrs),
        "status": {},
    }


def _feedback_span(index: int, call: FakeCall) -> dict:
    """POST /api/feedback: its own trace, the rating as a span event (as the assistant does)."""
    start = call.start_ns + 5 * 10**9
    span_attrs = {"http.request.method": "POST", "http.route": "/api/feedback"}
    if "feedback_span" in call.synthetic_on:
        span_attrs["synthetic_request"] = "true"
    return {
        "traceId": f"{int(call.trace_id, 16) ^ 1:032x}",
        "spanId": f"{0xF000 + index:016x}",
        "name": "POST /api/feedback",
        "kind": 2,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + 2_000_000),
        "attributes": attrs(span_attrs),
        "events": [
            {
                "name": "gen_ai.evaluation.result",
                "timeUnixNano": str(start + 1_000_000),
                "attributes": attrs(_evaluation_attrs(index, call)),
            }
        ],
        "status": {},
    }


def _histogram(
    name: str, unit: str, bounds: list, groups: dict[tuple, list[float]], interval: tuple[int, int]
) -> dict:
    points = []
    for key, values in groups.items():
        counts = [0] * (len(bounds) + 1)
        for v in values:
            counts[next((i for i, b in enumerate(bounds) if v <= b), len(bounds))] += 1
        points.append(
            {
                "attributes": attrs(dict(key)),
                "startTimeUnixNano": str(interval[0]),
                "timeUnixNano": str(interval[1]),
                "count": str(len(values)),
                "sum": sum(values),
                "bucketCounts": [str(c) for c in counts],
                "explicitBounds": bounds,
            }
        )
    return {
        "name": name,
        "unit": unit,
        "histogram": {"dataPoints": points, "aggregationTemporality": 1},
    }


def metric_lines(
    calls: list[FakeCall],
    export_every_s: float = 60.0,
    exported_until_ns: int | None = None,
    tool_runs: bool = False,
) -> list[dict]:
    """Delta histograms, one export request per interval of `export_every_s` from BASE_NS (a
    call is recorded when its chat span ends); intervals ending after `exported_until_ns` are
    not exported yet. `tool_runs`: each call also records an agent's tool run in the duration
    histogram (gen_ai.operation.name=execute_tool), three times as long as the call."""
    step = int(export_every_s * 1e9)
    by_interval: dict[int, list[FakeCall]] = {}
    judged: dict[int, list[tuple[FakeCall, FakeEvaluation]]] = {}
    for call in calls:
        if not call.metric_lost:
            by_interval.setdefault((call.end_ns - BASE_NS - 1) // step, []).append(call)
        for e in call.evaluations:
            if not e.metric_lost:
                at = call.end_ns + int(e.delay_s * 1e9)
                judged.setdefault((at - BASE_NS - 1) // step, []).append((call, e))
    lines = []
    for index in sorted(set(by_interval) | set(judged)):
        interval = (BASE_NS + index * step, BASE_NS + (index + 1) * step)
        if exported_until_ns is None or interval[1] <= exported_until_ns:
            lines.append(
                _export(by_interval.get(index, []), interval, judged.get(index, []), tool_runs)
            )
    return lines


def _export(
    calls: list[FakeCall],
    interval: tuple[int, int],
    judged: list[tuple[FakeCall, FakeEvaluation]] = (),
    tool_runs: bool = False,
) -> dict:
    duration, ttft, tokens, score = {}, {}, {}, {}
    for call, e in judged:
        key = (
            ("gen_ai.evaluation.name", e.name),
            ("gen_ai.request.model", call.model),
            ("gen_ai.provider.name", "openai"),
            ("assistant.evaluation.judge", e.judge),
        )
        recorded = e.score if e.metric_score is None else e.metric_score
        if recorded is None:  # a label only: the assistant records its pass/fail score
            recorded = 0.0 if e.label in FAIL_LABELS else 1.0
        score.setdefault(key, []).append(recorded)
    for call in calls:
        base = (
            ("gen_ai.operation.name", "chat"),
            ("gen_ai.provider.name", "openai"),
            ("gen_ai.request.model", call.model),
        )
        key = base + ((("error.type", call.error_type),) if call.error_type else ())
        duration.setdefault(key, []).append(call.chat_s)
        if tool_runs:
            tool = (
                ("gen_ai.operation.name", "execute_tool"),
                ("gen_ai.tool.name", "get_policy"),
                ("gen_ai.request.model", call.model),
            )
            duration.setdefault(tool, []).append(call.chat_s * 3)
        if not call.error_type:
            recorded = call.ttft_s if call.metric_ttft_s is None else call.metric_ttft_s
            ttft.setdefault(base, []).append(recorded)
            tokens.setdefault((*base, ("gen_ai.token.type", "input")), []).append(call.input_tokens)
            tokens.setdefault((*base, ("gen_ai.token.type", "output")), []).append(
                call.output_tokens
            )
        if call.score is not None:
            score.setdefault(base, []).append((call.score - 1) / 4)
    metrics = [
        _histogram("gen_ai.client.operation.duration", "s", S_BUCKETS, duration, interval),
        _histogram("gen_ai.client.operation.time_to_first_chunk", "s", S_BUCKETS, ttft, interval),
        _histogram("gen_ai.client.token.usage", "{token}", T_BUCKETS, tokens, interval),
        _histogram("gen_ai.evaluation.score", "1", [0.0, 0.25, 0.5, 0.75, 1.0], score, interval),
    ]
    return {
        "resourceMetrics": [
            {
                **RESOURCE,
                "scopeMetrics": [{"scope": {"name": "assistant.genai"}, "metrics": metrics}],
            }
        ]
    }


def log_lines(calls: list[FakeCall]) -> list[dict]:
    records = []
    for index, call in enumerate(calls):
        for e in call.evaluations:
            if e.as_span_event:
                continue
            records.append(
                {
                    "timeUnixNano": str(call.end_ns + int(e.delay_s * 1e9)),
                    "eventName": "gen_ai.evaluation.result",
                    "traceId": call.trace_id,
                    "spanId": f"{index * 2 + 2:016x}",
                    "attributes": attrs(evaluation_attrs(index, call, e)),
                }
            )
        if call.score is None:
            continue
        record_attrs = _evaluation_attrs(index, call)
        if "record" in call.synthetic_on:
            record_attrs["synthetic_request"] = "true"
        records.append(
            {
                "timeUnixNano": str(call.start_ns + 5 * 10**9),
                "eventName": "gen_ai.evaluation.result",
                "traceId": call.trace_id,
                "spanId": f"{index * 2 + 2:016x}",
                "attributes": attrs(record_attrs),
            }
        )
    return [
        {
            "resourceLogs": [
                {
                    **RESOURCE,
                    "scopeLogs": [{"scope": {"name": "assistant.genai"}, "logRecords": records}],
                }
            ]
        }
    ]


def write_archive(folder: Path, calls: list[FakeCall], **metric_options) -> Path:
    """traces/metrics/logs.jsonl; `metric_options` go to `metric_lines`."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, lines in (
        ("traces", span_lines(calls)),
        ("metrics", metric_lines(calls, **metric_options)),
        ("logs", log_lines(calls)),
    ):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return folder
