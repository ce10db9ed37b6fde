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


@dataclass
class FakeTool:
    """One `execute_tool {name}` run of an agent turn, and its duration point."""

    name: str
    duration_s: float
    error_type: str | None = None
    metric_lost: bool = False  # its duration record never reached the archive


@dataclass
class FakeStep:
    """One model call (`chat {model}`) of an agent turn, then the tools it called."""

    chat_s: float
    ttft_s: float
    input_tokens: int | None
    output_tokens: int | None
    tools: list[FakeTool] = field(default_factory=list)
    error_type: str | None = None


@dataclass
class FakeTurn:
    """One shop-agent turn: SERVER > `invoke_agent shop-assistant` > chat and tool spans. The
    agent span's steps and usage are the children's unless `span_steps` / `span_*_tokens` say
    otherwise (a telemetry bug)."""

    model: str
    start_ns: int
    trace_id: str
    steps: list[FakeStep]
    stop_reason: str | None = None
    time_to_answer_s: float | None = None
    error_type: str | None = None
    run_id: str | None = None
    span_steps: int | None = None
    span_input_tokens: int | None = None
    span_output_tokens: int | None = None
    # the judge's results on the turn's answer (its last model call), e.g. tool_call_correctness
    evaluations: list[FakeEvaluation] = field(default_factory=list)

    def answer_step(self) -> int:
        """The index (among the turn's spans' items) of the answer's model call."""
        _, items, _ = self.timeline()
        return max(n for n, (_, _, item) in enumerate(items) if isinstance(item, FakeStep))

    def timeline(self) -> tuple[int, list[tuple[int, int, FakeStep | FakeTool]], int]:
        """(agent start, [(start, end, step or tool)] in order, agent end) in ns."""
        agent_start = self.start_ns + 1_000_000
        cursor, items = agent_start, []
        for step in self.steps:
            start = cursor + 500_000
            cursor = start + int(step.chat_s * 1e9)
            items.append((start, cursor, step))
            for tool in step.tools:
                start = cursor + 100_000
                cursor = start + int(tool.duration_s * 1e9)
                items.append((start, cursor, tool))
        return agent_start, items, cursor + 500_000

    def agent_attributes(self) -> dict:
        result = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.provider.name": "openai",
            "gen_ai.agent.name": "shop-assistant",
            "gen_ai.request.model": self.model,
            "gen_ai.conversation.id": f"conv-{self.trace_id[:8]}",
            "assistant.response_id": f"resp_{self.trace_id[:12]}",
            "assistant.agent.steps": (
                len(self.steps) if self.span_steps is None else self.span_steps
            ),
        }
        usage = [s for s in self.steps if s.input_tokens is not None]
        if usage:
            result["gen_ai.usage.input_tokens"] = (
                sum(s.input_tokens for s in usage)
                if self.span_input_tokens is None
                else self.span_input_tokens
            )
            result["gen_ai.usage.output_tokens"] = (
                sum(s.output_tokens for s in usage)
                if self.span_output_tokens is None
                else self.span_output_tokens
            )
        if self.stop_reason:
            result["assistant.agent.stop_reason"] = self.stop_reason
        if self.time_to_answer_s is not None:
            result["assistant.agent.time_to_answer"] = self.time_to_answer_s
        if self.run_id:
            result["loadgen.run_id"] = self.run_id
        if self.error_type:
            result["error.type"] = self.error_type
        return result

    def step_calls(self) -> list[FakeCall]:
        """The turn's model calls as FakeCalls (for their chat metric points): same end times."""
        _, items, _ = self.timeline()
        return [
            FakeCall(
                model=self.model,
                start_ns=start - 1_000_000,
                server_s=0.0,
                chat_s=item.chat_s,
                ttft_s=item.ttft_s,
                input_tokens=item.input_tokens,
                output_tokens=item.output_tokens,
                error_type=item.error_type,
                evaluations=list(self.evaluations) if n == self.answer_step() else [],
            )
            for n, (start, _, item) in enumerate(items)
            if isinstance(item, FakeStep)
        ]

    def tool_runs(self) -> list[tuple[int, FakeTool]]:
        """(end ns, tool): the duration point is recorded when the tool span ends."""
        _, items, _ = self.timeline()
        return [(end, item) for _, end, item in items if isinstance(item, FakeTool)]


TOOL_NAMES = ("search_products", "check_inventory", "get_order_status", "get_policy")


def tool_verdict(turn: FakeTurn) -> float:
    """The mock judge's tool_call_correctness of a turn (docs/evaluations.md): 0 when a call's
    arguments were rejected (`invalid_arguments`; an injected `tool_fault` is not the model's
    mistake), else 1."""
    rejected = any(t.error_type == "invalid_arguments" for s in turn.steps for t in s.tools)
    return 0.0 if rejected else 1.0


def make_turns(
    seed: int = 11, per_model: dict[str, int] | None = None, judged: bool = False
) -> list[FakeTurn]:
    """Deterministic agent turns after make_calls()' calls: 0-3 tool steps, some tool errors,
    every seventh turn stopped by the step limit (3 steps, all calling tools; the last step's
    calls are not run), one failed turn (gpt-4o's fourth: its last model call fails).
    `judged`: each answered turn that ran tools (not ended by the step limit, not failed) also
    gets the mock judge's tool_call_correctness (tool_verdict), as a log record joined by the
    answer's response id and a score-histogram record (the same turns otherwise)."""
    rng = random.Random(seed)
    per_model = per_model or {"gpt-4o-mini": 14, "gpt-4o": 9}
    turns, t = [], BASE_NS + 200 * 10**9
    for model, count in per_model.items():
        for i in range(count):
            t += int(rng.uniform(1.0, 3.0) * 1e9)
            limited = i % 7 == 6
            tool_steps = 3 if limited else rng.choice([0, 1, 1, 2])
            steps = []
            for n in range(tool_steps + (0 if limited else 1)):
                last = n == tool_steps and not limited
                tools = []
                if not last and not (limited and n == tool_steps - 1):
                    for _ in range(rng.choice([1, 1, 2])):
                        error = rng.choice([None, None, None, "invalid_arguments", "tool_fault"])
                        tools.append(
                            FakeTool(rng.choice(TOOL_NAMES), rng.uniform(0.0005, 0.02), error)
                        )
                steps.append(
                    FakeStep(
                        chat_s=rng.uniform(0.2, 0.9),
                        ttft_s=rng.uniform(0.05, 0.15),
                        input_tokens=rng.randint(200, 900),
                        output_tokens=rng.randint(5, 120),
                        tools=tools,
                    )
                )
            failed = model == "gpt-4o" and i == 3  # its answer's model call fails
            if failed:
                steps[-1] = FakeStep(0.05, 0.0, None, None, error_type="openai.APITimeoutError")
            answer = None  # a failed turn has none
            if not failed:  # to the answer's first token, or the step-limit message after
                _, items, _ = FakeTurn(model, t, "", steps).timeline()  # the last call ends
                first_step = t + 1_500_000
                last_start, last_end = items[-1][0], items[-1][1]
                at = last_end if limited else last_start + int(steps[-1].ttft_s * 1e9)
                answer = (at - first_step) / 1e9
            turns.append(
                FakeTurn(
                    model=model,
                    start_ns=t,
                    trace_id=f"{rng.getrandbits(128):032x}",
                    steps=steps,
                    stop_reason="max_steps" if limited else None,
                    time_to_answer_s=answer,
                    error_type="openai.APITimeoutError" if failed else None,
                )
            )
            turn = turns[-1]
            if judged and not failed and not limited and any(st.tools for st in steps):
                verdict = tool_verdict(turn)
                label = "correct" if verdict == 1.0 else "incorrect"
                turn.evaluations.append(FakeEvaluation("tool_call_correctness", verdict, label))
    return turns


def turn_log_lines(turns: list[FakeTurn]) -> list[dict]:
    """The judge's results on the turns' answers, as the assistant logs them."""
    records = []
    for index, turn in enumerate(turns):
        n = turn.answer_step()
        answer = [c for c in turn.step_calls() if c.evaluations]
        for e in turn.evaluations:
            result = {"gen_ai.evaluation.name": e.name, "gen_ai.request.model": turn.model}
            if e.score is not None:
                result["gen_ai.evaluation.score.value"] = e.score
            if e.label is not None:
                result["gen_ai.evaluation.score.label"] = e.label
            result["gen_ai.response.id"] = f"chatcmpl-agent-{index}-{n}"
            result["assistant.evaluation.judge"] = e.judge
            records.append(
                {
                    "timeUnixNano": str(answer[0].end_ns + int(e.delay_s * 1e9)),
                    "eventName": "gen_ai.evaluation.result",
                    "traceId": turn.trace_id,
                    "spanId": f"{0xA000_0000 + index * 256 + 2 + n:016x}",
                    "attributes": attrs(result),
                }
            )
    return records


def turn_span_lines(turns: list[FakeTurn]) -> list[dict]:
    """One export request with every span of the turns."""
    spans = []
    for index, turn in enumerate(turns):
        base = 0xA000_0000 + index * 256
        server_id, agent_id = f"{base:016x}", f"{base + 1:016x}"
        agent_start, items, agent_end = turn.timeline()
        server_attrs = {"http.request.method": "POST", "http.route": "/api/chat"}
        if turn.run_id:
            server_attrs["loadgen.run_id"] = turn.run_id
        spans.append(
            {
                "traceId": turn.trace_id,
                "spanId": server_id,
                "name": "POST /api/chat",
                "kind": 2,
                "startTimeUnixNano": str(turn.start_ns),
                "endTimeUnixNano": str(agent_end + 1_000_000),
                "attributes": attrs(server_attrs),
                "status": {},
            }
        )
        failed = {"code": 2, "message": "failed"}
        spans.append(
            {
                "traceId": turn.trace_id,
                "spanId": agent_id,
                "parentSpanId": server_id,
                "name": "invoke_agent shop-assistant",
                "kind": 1,
                "startTimeUnixNano": str(agent_start),
                "endTimeUnixNano": str(agent_end),
                "attributes": attrs(turn.agent_attributes()),
                "status": failed if turn.error_type else {},
            }
        )
        for n, (start, end, item) in enumerate(items):
            if isinstance(item, FakeStep):
                span_attrs = {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": turn.model,
                }
                if item.error_type:
                    span_attrs["error.type"] = item.error_type
                else:
                    span_attrs.update(
                        {
                            "gen_ai.response.model": turn.model + "-2024-08-06",
                            "gen_ai.response.id": f"chatcmpl-agent-{index}-{n}",
                            "gen_ai.response.time_to_first_chunk": item.ttft_s,
                            "gen_ai.usage.input_tokens": item.input_tokens,
                            "gen_ai.usage.output_tokens": item.output_tokens,
                            "gen_ai.response.finish_reasons": [
                                "tool_calls" if item.tools else "stop"
                            ],
                        }
                    )
                name, kind = f"chat {turn.model}", 3
            else:
                span_attrs = {
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": item.name,
                    "gen_ai.tool.call.id": f"call_{index}_{n}",
                    "gen_ai.tool.type": "function",
                    "gen_ai.request.model": turn.model,
                }
                if item.error_type:
                    span_attrs["error.type"] = item.error_type
                name, kind = f"execute_tool {item.name}", 1
            spans.append(
                {
                    "traceId": turn.trace_id,
                    "spanId": f"{base + 2 + n:016x}",
                    "parentSpanId": agent_id,
                    "name": name,
                    "kind": kind,
                    "startTimeUnixNano": str(start),
                    "endTimeUnixNano": str(end),
                    "attributes": attrs(span_attrs),
                    "status": failed if item.error_type else {},
                }
            )
    scope = {"scope": {"name": "assistant.genai"}, "spans": spans}
    return [{"resourceSpans": [{**RESOURCE, "scopeSpans": [scope]}]}]


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
    turns: list[FakeTurn] = (),
) -> list[dict]:
    """Delta histograms, one export request per interval of `export_every_s` from BASE_NS (a
    call is recorded when its chat span ends); intervals ending after `exported_until_ns` are
    not exported yet. `tool_runs`: each call also records an agent's tool run in the duration
    histogram (gen_ai.operation.name=execute_tool), three times as long as the call. `turns`:
    the agent turns' model calls (chat points) and tool runs (execute_tool points)."""
    step = int(export_every_s * 1e9)
    by_interval: dict[int, list[FakeCall]] = {}
    judged: dict[int, list[tuple[FakeCall, FakeEvaluation]]] = {}
    tools: dict[int, list[tuple[str, FakeTool]]] = {}
    for turn in turns:
        for end_ns, tool in turn.tool_runs():
            if not tool.metric_lost:
                tools.setdefault((end_ns - BASE_NS - 1) // step, []).append((turn.model, tool))
    for call in [*calls, *(c for turn in turns for c in turn.step_calls())]:
        if not call.metric_lost:
            by_interval.setdefault((call.end_ns - BASE_NS - 1) // step, []).append(call)
        for e in call.evaluations:
            if not e.metric_lost:
                at = call.end_ns + int(e.delay_s * 1e9)
                judged.setdefault((at - BASE_NS - 1) // step, []).append((call, e))
    lines = []
    for index in sorted(set(by_interval) | set(judged) | set(tools)):
        interval = (BASE_NS + index * step, BASE_NS + (index + 1) * step)
        if exported_until_ns is None or interval[1] <= exported_until_ns:
            lines.append(
                _export(
                    by_interval.get(index, []),
                    interval,
                    judged.get(index, []),
                    tool_runs,
                    tools.get(index, []),
                )
            )
    return lines


def _export(
    calls: list[FakeCall],
    interval: tuple[int, int],
    judged: list[tuple[FakeCall, FakeEvaluation]] = (),
    tool_runs: bool = False,
    tools: list[tuple[str, FakeTool]] = (),
) -> dict:
    duration, ttft, tokens, score = {}, {}, {}, {}
    for model, tool in tools:
        key = (
            ("gen_ai.operation.name", "execute_tool"),
            ("gen_ai.tool.name", tool.name),
            ("gen_ai.request.model", model),
        )
        key += (("error.type", tool.error_type),) if tool.error_type else ()
        duration.setdefault(key, []).append(tool.duration_s)
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


def log_lines(calls: list[FakeCall], extra: list[dict] = ()) -> list[dict]:
    records = list(extra)
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


def write_archive(
    folder: Path, calls: list[FakeCall], turns: list[FakeTurn] = (), **metric_options
) -> Path:
    """traces/metrics/logs.jsonl; `turns`: agent turns too; `metric_options` go to
    `metric_lines`."""
    folder.mkdir(parents=True, exist_ok=True)
    traces = span_lines(calls) + (turn_span_lines(turns) if turns else [])
    for name, lines in (
        ("traces", traces),
        ("metrics", metric_lines(calls, turns=turns, **metric_options)),
        ("logs", log_lines(calls, turn_log_lines(turns))),
    ):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return folder
