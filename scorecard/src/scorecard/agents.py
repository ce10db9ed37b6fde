"""Agent turns of the shop agent (services/assistant README, "The shop agent"), per model.

Only for models whose selected calls include `invoke_agent` spans; otherwise the report is
unchanged. Definitions (also in the README, "Agent turns"):
- An answer (agent turn) is one `invoke_agent` span with `gen_ai.request.model`, selected by
  the same rules as the chat calls (its trace carries the run id; it started in the window).
  Failed: status ERROR or `error.type`. Its chat calls and tool runs are its child spans:
  `chat {model}` CLIENT spans and `execute_tool {tool}` spans.
- Tool calls per answer: the mean number of `execute_tool` children per turn. Tool error rate:
  `execute_tool` spans with `error.type` (or status ERROR) / all `execute_tool` spans.
- Steps per answer: the mean of `assistant.agent.steps` (model calls of the turn).
  Step-limit rate: turns with `assistant.agent.stop_reason=max_steps` / all turns.
- Time to final answer p50/p90: `assistant.agent.time_to_answer` (from the first model call's
  start to the answer's first text token; for a turn ended by the step limit, to its fixed
  message), over the turns that carry it (a failed turn has none).
- Tokens per answer: the mean of the `invoke_agent` span's `gen_ai.usage.input_tokens` /
  `output_tokens` (summed over the turn's model calls by the assistant), over turns with usage.
  Cost per answer: the price table applied to each chat child's tokens (input x input price +
  output x output price, / 1M), summed per turn, averaged over all turns (failed ones too).
- Per tool: calls, error rate, and duration p50/p90 of the successful `execute_tool` spans.
- Consistency (agent turns vs their spans), per model, equal or DISAGREE: the sum of
  `assistant.agent.steps` vs the number of chat children, and the agent span's input/output
  tokens vs the sum of its chat children's; a row also disagrees when any single turn does (so
  differences cannot cancel out). Tool calls: the `execute_tool` spans vs the count of the
  `execute_tool` points of `gen_ai.client.operation.duration` (by model and tool), as the chat
  rows in checks.py (the points' export intervals; pending spans left out with a note).
- E2E and TTFT per answer: a model's E2E and TTFT figures (and so the client-vs-server rows and
  the SLOs) count an agent turn once, as the load generator measures it: its SERVER span and
  the TTFT of its first model call, when all its model calls succeeded (analysis._answers).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import stats
from .names import (
    ERROR_TYPE,
    EXECUTE_TOOL,
    INPUT_TOKENS,
    INVOKE_AGENT,
    MODEL,
    OPERATION,
    OUTPUT_TOKENS,
    TOOL_NAME,
)
from .otlp import Span
from .prices import PriceTable

if TYPE_CHECKING:
    from .analysis import Selection

AGENT_NAME = "gen_ai.agent.name"
STEPS = "assistant.agent.steps"
STOP_REASON = "assistant.agent.stop_reason"
TIME_TO_ANSWER = "assistant.agent.time_to_answer"
STOP_MAX_STEPS = "max_steps"

CONSISTENCY_MEANING = (
    "the agent span and its child spans record the same turn twice (the assistant counts the "
    "steps and sums the usage as it makes the model calls): a difference is a telemetry bug "
    "(a step not counted, usage added twice or not at all) or lost child spans."
)


def is_agent_span(span: Span) -> bool:
    if not span.attributes.get(MODEL):
        return False
    operation = span.attributes.get(OPERATION)
    return operation == INVOKE_AGENT or (operation is None and span.name.startswith("invoke_agent"))


def is_tool_span(span: Span) -> bool:
    operation = span.attributes.get(OPERATION)
    return operation == EXECUTE_TOOL or (operation is None and span.name.startswith("execute_tool"))


def failed(span: Span) -> bool:
    return span.status_code == "ERROR" or ERROR_TYPE in span.attributes


def tool_name(span: Span) -> str:
    return str(span.attributes.get(TOOL_NAME) or span.name.removeprefix("execute_tool ").strip())


def _number(span: Span, key: str) -> float | None:
    value = span.attributes.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass
class Turn:
    span: Span
    model: str
    chats: list[Span] = field(default_factory=list)
    tools: list[Span] = field(default_factory=list)


def collect(spans: list[Span], selection: Selection, is_chat) -> list[Turn]:
    """The selected `invoke_agent` spans with their chat and tool children."""
    turns = {
        s.span_id: Turn(s, str(s.attributes[MODEL]))
        for s in spans
        if is_agent_span(s) and selection.includes(s)
    }
    if not turns:
        return []
    for span in spans:
        turn = turns.get(span.parent_span_id)
        if turn is None:
            continue
        if is_chat(span):
            turn.chats.append(span)
        elif is_tool_span(span):
            turn.tools.append(span)
    return sorted(turns.values(), key=lambda t: t.span.start_ns)


def _ms(values_s: list[float]) -> dict[str, Any]:
    ms = [v * 1000.0 for v in values_s]
    return {"count": len(ms), "p50": stats.percentile(ms, 50), "p90": stats.percentile(ms, 90)}


def _turn_cost(turn: Turn, prices: PriceTable) -> float | None:
    total = 0.0
    for chat in turn.chats:
        tokens_in, tokens_out = _number(chat, INPUT_TOKENS), _number(chat, OUTPUT_TOKENS)
        if tokens_in is None and tokens_out is None:
            continue
        price = prices.lookup(str(chat.attributes.get(MODEL) or turn.model))
        if price is None:
            return None
        total += (
            (tokens_in or 0) * price.input_per_mtok + (tokens_out or 0) * price.output_per_mtok
        ) / 1e6
    return total


def model_figures(turns: list[Turn], prices: PriceTable) -> dict[str, Any]:
    """One model's "Agent turns" block (see the module docstring)."""
    tools = [t for turn in turns for t in turn.tools]
    tool_errors = sum(1 for t in tools if failed(t))
    steps = [v for turn in turns if (v := _number(turn.span, STEPS)) is not None]
    limited = sum(1 for turn in turns if turn.span.attributes.get(STOP_REASON) == STOP_MAX_STEPS)
    answer_s = [v for turn in turns if (v := _number(turn.span, TIME_TO_ANSWER)) is not None]
    inputs = [v for turn in turns if (v := _number(turn.span, INPUT_TOKENS)) is not None]
    outputs = [v for turn in turns if (v := _number(turn.span, OUTPUT_TOKENS)) is not None]
    costs = [_turn_cost(turn, prices) for turn in turns]
    by_tool: dict[str, list[Span]] = defaultdict(list)
    for span in tools:
        by_tool[tool_name(span)].append(span)
    return {
        "answers": len(turns),
        "failed": sum(1 for turn in turns if failed(turn.span)),
        "agents": sorted({str(t.span.attributes.get(AGENT_NAME) or "") for t in turns} - {""}),
        "tool_calls": len(tools),
        "tool_calls_per_answer": len(tools) / len(turns),
        "tool_errors": tool_errors,
        "tool_error_rate": tool_errors / len(tools) if tools else None,
        "steps_per_answer": stats.mean(steps),
        "answers_with_steps": len(steps),
        "step_limit_answers": limited,
        "step_limit_rate": limited / len(turns),
        "time_to_answer_ms": _ms(answer_s),
        "input_tokens_per_answer": stats.mean(inputs),
        "output_tokens_per_answer": stats.mean(outputs),
        "answers_with_usage": len(outputs),
        "cost_per_answer_usd": (
            sum(costs) / len(costs) if costs and all(c is not None for c in costs) else None
        ),
        "tools": {
            name: {
                "calls": len(spans),
                "errors": (errors := sum(1 for s in spans if failed(s))),
                "error_rate": errors / len(spans),
                "duration_ms": _ms([s.duration_s for s in spans if not failed(s)]),
            }
            for name, spans in sorted(by_tool.items())
        },
    }


def _row(model: str, figure: str, unit: str, agent: float, children: float, turns: int):
    return {
        "model": model,
        "figure": figure,
        "kind": "sum",
        "unit": unit,
        "agent": agent,
        "children": children,
        "difference": children - agent,
        "turns_disagreeing": turns,
        "tolerance": 0,
        "flagged": turns > 0 or abs(children - agent) > 1e-6 * max(1.0, abs(agent)),
    }


def consistency_rows(model: str, turns: list[Turn]) -> list[dict[str, Any]]:
    """The agent span vs its children (steps vs chat spans; usage vs the chats' usage)."""
    rows = []
    counted = [
        (steps, len(t.chats)) for t in turns if (steps := _number(t.span, STEPS)) is not None
    ]
    if counted:
        rows.append(
            _row(
                model,
                "Agent steps vs chat spans",
                "calls",
                sum(a for a, _ in counted),
                sum(c for _, c in counted),
                sum(1 for a, c in counted if a != c),
            )
        )
    for key, label in ((INPUT_TOKENS, "input"), (OUTPUT_TOKENS, "output")):
        pairs = []
        for turn in turns:
            agent = _number(turn.span, key)
            values = [v for chat in turn.chats if (v := _number(chat, key)) is not None]
            if agent is None and not values:
                continue
            pairs.append((agent or 0.0, sum(values), agent is None))
        if pairs:
            rows.append(
                _row(
                    model,
                    f"Agent {label} tokens vs chat spans",
                    "tokens",
                    sum(a for a, _, _ in pairs),
                    sum(c for _, c, _ in pairs),
                    sum(1 for a, c, missing in pairs if missing or abs(a - c) > 1e-6),
                )
            )
    return rows
