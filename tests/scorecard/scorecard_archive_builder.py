"""Build a small OTLP JSON-lines archive by hand, shaped like the assistant's telemetry.

Used by the unit tests (the real-run test uses a real collector's archive instead).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

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
                "status": status,
            }
        )
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


def _histogram(name: str, unit: str, bounds: list, groups: dict[tuple, list[float]]) -> dict:
    points = []
    for key, values in groups.items():
        counts = [0] * (len(bounds) + 1)
        for v in values:
            counts[next((i for i, b in enumerate(bounds) if v <= b), len(bounds))] += 1
        points.append(
            {
                "attributes": attrs(dict(key)),
                "startTimeUnixNano": str(BASE_NS),
                "timeUnixNano": str(BASE_NS + 60 * 10**9),
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


def metric_lines(calls: list[FakeCall]) -> list[dict]:
    duration, ttft, tokens, score = {}, {}, {}, {}
    for call in calls:
        base = (
            ("gen_ai.operation.name", "chat"),
            ("gen_ai.provider.name", "openai"),
            ("gen_ai.request.model", call.model),
        )
        key = base + ((("error.type", call.error_type),) if call.error_type else ())
        duration.setdefault(key, []).append(call.chat_s)
        if not call.error_type:
            ttft.setdefault(base, []).append(call.ttft_s)
            tokens.setdefault((*base, ("gen_ai.token.type", "input")), []).append(call.input_tokens)
            tokens.setdefault((*base, ("gen_ai.token.type", "output")), []).append(
                call.output_tokens
            )
        if call.score is not None:
            score.setdefault(base, []).append((call.score - 1) / 4)
    metrics = [
        _histogram("gen_ai.client.operation.duration", "s", S_BUCKETS, duration),
        _histogram("gen_ai.client.operation.time_to_first_chunk", "s", S_BUCKETS, ttft),
        _histogram("gen_ai.client.token.usage", "{token}", T_BUCKETS, tokens),
        _histogram("gen_ai.evaluation.score", "1", [0.0, 0.25, 0.5, 0.75, 1.0], score),
    ]
    return [
        {
            "resourceMetrics": [
                {
                    **RESOURCE,
                    "scopeMetrics": [{"scope": {"name": "assistant.genai"}, "metrics": metrics}],
                }
            ]
        }
    ]


def log_lines(calls: list[FakeCall]) -> list[dict]:
    records = []
    for index, call in enumerate(calls):
        if call.score is None:
            continue
        records.append(
            {
                "timeUnixNano": str(call.start_ns + 5 * 10**9),
                "eventName": "gen_ai.evaluation.result",
                "traceId": call.trace_id,
                "spanId": f"{index * 2 + 2:016x}",
                "attributes": attrs(
                    {
                        "gen_ai.evaluation.name": "user_satisfaction",
                        "gen_ai.evaluation.score.value": call.score,
                        "gen_ai.evaluation.score.label": "thumbs_up"
                        if call.score >= 4
                        else "neutral",
                        "gen_ai.request.model": call.model,
                        "gen_ai.response.id": f"chatcmpl-{index}",
                        "assistant.response_id": f"resp_{index:04x}",
                        "assistant.feedback.revision": 1,
                    }
                ),
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


def write_archive(folder: Path, calls: list[FakeCall]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, lines in (
        ("traces", span_lines(calls)),
        ("metrics", metric_lines(calls)),
        ("logs", log_lines(calls)),
    ):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return folder
