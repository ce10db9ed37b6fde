"""Answer quality from the judge's evaluations (docs/evaluations.md).

- Results: `gen_ai.evaluation.result` events (log records or span events) named
  answer_relevancy, faithfulness, toxicity or answered (user_satisfaction stays the
  satisfaction figure; other names are ignored), joined to the selected chat calls by
  `gen_ai.response.id` or `assistant.response_id`, else by the span the event is parented on.
  One result per (response, evaluation name): the latest.
- Score: `gen_ai.evaluation.score.value` in [0, 1], 1 is good (so a mean is a pass rate);
  without a value the label decides (relevant / faithful / safe / answered = 1, their
  opposites = 0); anything else is not a result.
- Per model and evaluation: count, mean (pass rate), 95 % interval (Wilson for 0/1 scores,
  Student-t otherwise) and the judge(s), from `assistant.evaluation.judge`.
- Quality (per model) = the unweighted mean of the four evaluations' means, so each
  evaluation counts the same whatever its number of results; its count is the number of
  results of all four; its 95 % interval is a normal approximation, half-width
  1.96 x sqrt(sum of the four squared standard errors) / 4 (the four treated as independent).
- Simulated: results judged by `mock-judge` measure the mock LLM's configured quality traits
  (services/mock-llm profiles), not a model's real quality; they are labelled SIMULATED
  wherever shown. Results of any other judge are measured by that judge model.
- Judge cost (per judge model): the `judge <model>` CLIENT spans parented on the selected chat
  calls (judge calls, failures included), their `gen_ai.usage.input_tokens` / `output_tokens`
  summed, and the estimate (input tokens x input price + output tokens x output price) / 1M
  with the chat cost's price table and lookup (dated snapshots included), per 1,000 evaluated
  answers (selected calls with a result of that judge). An estimate from list prices; the
  offline mock judge has no price and no cost (never invented).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .names import (
    ALL_EVALUATIONS,
    APP_RESPONSE_ID,
    EVALUATED_MODEL,
    EVALUATION_EVENT,
    EVALUATION_NAME,
    INPUT_TOKENS,
    JUDGE,
    MOCK_JUDGE,
    MODEL,
    OUTPUT_TOKENS,
    QUALITY_EVALUATIONS,
    RESPONSE_ID,
    SCORE_LABEL,
    SCORE_VALUE,
    TOOL_EVALUATIONS,
)
from .otlp import Archive, LogRecord, Span
from .prices import PriceTable

if TYPE_CHECKING:
    from .analysis import Call

NAMES = tuple(QUALITY_EVALUATIONS)
TOOL_NAMES = tuple(TOOL_EVALUATIONS)
MOCK_JUDGE_TEXT = "mock judge (simulated quality traits)"
SIMULATED_MEANING = (
    "judged by the mock LLM's mock-judge: it detects the defects the mock's per-model quality "
    "traits put into the answers, so these pass rates show the configured traits (simulated), "
    "not a real model's answer quality"
)
MOCK_JUDGE_COST = "offline mock judge: no cost"
JUDGE_COST_DEFINITION = (
    "judge cost = the judge spans' input tokens x input price + output tokens x output price "
    "(USD per 1M tokens, the chat cost's price table), an estimate from list prices; per 1k "
    "evaluated answers = cost / answers with a result of that judge x 1000"
)
DEFINITION = (
    "quality = the unweighted mean of the four evaluations' pass rates (answer_relevancy, "
    "faithfulness, toxicity, answered; 1 is good for all four); count = their results together"
)

TOOL_DEFINITION = (
    "tool_call_correctness = the pass rate of the judge's verdicts on the shop-agent turns that "
    "called tools (1 = correct: the right tools, with arguments they accepted); reported apart, "
    "not part of quality"
)


@dataclass
class Result:
    model: str
    name: str
    score: float
    judge: str
    time_ns: int
    resource: dict[str, Any]
    call_span_id: str = ""


def judge_label(judge: str) -> str:
    if judge == MOCK_JUDGE:
        return MOCK_JUDGE_TEXT
    return judge or "unknown judge (not stated)"


def _score(attrs: dict[str, Any]) -> float | None:
    value = attrs.get(SCORE_VALUE)
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        return number if 0.0 <= number <= 1.0 and math.isfinite(number) else None
    passed, failed = ALL_EVALUATIONS[str(attrs.get(EVALUATION_NAME))]
    label = str(attrs.get(SCORE_LABEL) or "").strip().lower()
    return 1.0 if label == passed else 0.0 if label == failed else None


def _is_record(record: LogRecord) -> bool:
    return record.event_name == EVALUATION_EVENT or (
        record.event_name == "" and SCORE_VALUE in record.attributes
    )


def collect(archive: Archive, calls: list[Call]) -> list[Result]:
    """The latest result per (response, evaluation name) of the selected calls."""
    by_response: dict[str, Call] = {}
    for call in calls:
        for key in (RESPONSE_ID, APP_RESPONSE_ID):
            if call.span.attributes.get(key):
                by_response[str(call.span.attributes[key])] = call
    by_span = {c.span.span_id: c for c in calls}
    latest: dict[tuple[str, str], Result] = {}

    def consider(attrs: dict[str, Any], time_ns: int, span_id: str, resource: dict) -> None:
        name = attrs.get(EVALUATION_NAME)
        if name not in ALL_EVALUATIONS:
            return
        call = (
            by_response.get(str(attrs.get(RESPONSE_ID)))
            or by_response.get(str(attrs.get(APP_RESPONSE_ID)))
            or by_span.get(span_id)
        )
        score = _score(attrs)
        if call is None or score is None:
            return
        key = (call.span.span_id, str(name))
        if key not in latest or time_ns >= latest[key].time_ns:
            latest[key] = Result(
                model=call.model,
                name=str(name),
                score=score,
                judge=str(attrs.get(JUDGE) or ""),
                time_ns=time_ns,
                resource=resource,
                call_span_id=call.span.span_id,
            )

    for span in archive.spans:
        for event in span.events:
            if event["name"] == EVALUATION_EVENT:
                consider(event["attributes"], event["time_ns"], span.span_id, span.resource)
    for record in archive.logs:
        if _is_record(record):
            consider(record.attributes, record.time_ns, record.span_id, record.resource)
    return list(latest.values())


def _judges(results: list[Result]) -> list[dict[str, Any]]:
    counts = Counter(r.judge for r in results)
    return [
        {
            "judge": judge or None,
            "label": judge_label(judge),
            "simulated": judge == MOCK_JUDGE,
            "results": count,
        }
        for judge, count in sorted(counts.items())
    ]


def judge_text(judges: list[dict[str, Any]]) -> str:
    if not judges:
        return "no evaluations"
    parts = []
    for judge in judges:
        how = (
            "SIMULATED: the mock's quality traits are configured, not measured"
            if judge["simulated"]
            else "measured by this judge model"
        )
        parts.append(f"{judge['label']}, {judge['results']} result(s) ({how})")
    return "judged by " + "; ".join(parts)


def _overall(figures: dict[str, dict[str, Any]]) -> dict[str, Any]:
    present = [f for f in figures.values() if f["count"]]
    mean = sum(f["mean"] for f in present) / len(present) if present else None
    low = high = None
    if present:
        variance = 0.0
        for f in present:
            p, n = f["mean"], f["count"]
            if f["interval"].startswith("Wilson"):
                variance += p * (1 - p) / n
            elif f["ci_low"] is not None:
                variance += ((f["ci_high"] - f["ci_low"]) / (2 * 1.96)) ** 2
        half = 1.96 * math.sqrt(variance) / len(present)
        low, high = max(0.0, mean - half), min(1.0, mean + half)
    return {
        "count": sum(f["count"] for f in figures.values()),
        "mean": mean,
        "ci_low": low,
        "ci_high": high,
        "interval": "normal approx. 95% (mean of the evaluations' means)",
        "evaluations": len(present),
        "complete": len(present) == len(figures),
        "definition": DEFINITION,
    }


def model_quality(results: list[Result], min_evaluations: int, score_figures) -> dict[str, Any]:
    """One model's `quality` block (`score_figures`: count, mean and interval of scores).
    tool_call_correctness is reported apart (`tool_evaluations`, only when the model has such
    results) and never enters the composite quality or its judges' counts."""
    tool_results = [r for r in results if r.name in TOOL_EVALUATIONS]
    results = [r for r in results if r.name in QUALITY_EVALUATIONS]
    by_name: dict[str, list[Result]] = defaultdict(list)
    for result in results:
        by_name[result.name].append(result)
    evaluations = {}
    for name in NAMES:
        mine = by_name.get(name, [])
        judges = _judges(mine)
        evaluations[name] = {
            **score_figures([r.score for r in mine]),
            "judges": [j["label"] for j in judges],
            "simulated": any(j["simulated"] for j in judges),
        }
    judges = _judges(results)
    fewest = min(e["count"] for e in evaluations.values())
    block = {
        "evaluations": evaluations,
        "overall": _overall(evaluations),
        "simulated": any(j["simulated"] for j in judges),
        "judges": judges,
        "judge_text": judge_text(judges),
        "enough_evaluations": fewest >= min_evaluations,
        "min_evaluations": min_evaluations,
        "used_in_ranking": False,  # set by the ranking
    }
    if tool_results:
        block["tool_evaluations"] = {}
        for name in TOOL_NAMES:
            mine = [r for r in tool_results if r.name == name]
            judges = _judges(mine)
            block["tool_evaluations"][name] = {
                **score_figures([r.score for r in mine]),
                "judges": [j["label"] for j in judges],
                "judge_text": judge_text(judges),
                "simulated": any(j["simulated"] for j in judges),
                "in_quality": False,
                "definition": TOOL_DEFINITION,
            }
    return block


def overview(
    models: dict[str, dict[str, Any]], min_evaluations: int, judge_costs: list[dict[str, Any]]
) -> dict[str, Any]:
    results = sum(e["quality"]["overall"]["count"] for e in models.values())
    simulated = sum(
        j["results"] for e in models.values() for j in e["quality"]["judges"] if j["simulated"]
    )
    return {
        "evaluations": list(NAMES),
        "results": results,
        "simulated_results": simulated,
        "measured_results": results - simulated,
        "min_evaluations": min_evaluations,
        "definition": DEFINITION,
        "simulated_meaning": SIMULATED_MEANING,
        "judge_cost": {"judges": judge_costs, "definition": JUDGE_COST_DEFINITION},
    }


def is_judge_span(span: Span) -> bool:
    return span.kind == "CLIENT" and (
        span.name.startswith("judge ") or EVALUATED_MODEL in span.attributes
    )


def _tokens(span: Span, key: str) -> int | None:
    value = span.attributes.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def judge_cost(
    archive: Archive, calls: list[Call], results: list[Result], prices: PriceTable
) -> list[dict[str, Any]]:
    """Per judge model: judge calls, tokens summed from its spans, and the estimated cost."""
    selected = {c.span.span_id for c in calls}
    spans: dict[str, list[Span]] = defaultdict(list)
    for span in archive.spans:
        if is_judge_span(span) and span.parent_span_id in selected:
            spans[str(span.attributes.get(MODEL) or span.name.removeprefix("judge "))].append(span)
    answers: dict[str, set[str]] = defaultdict(set)
    for result in results:
        answers[result.judge].add(result.call_span_id)
    rows = []
    for judge in sorted(set(spans) | set(answers)):
        mine = spans.get(judge, [])
        used = [s for s in mine if _tokens(s, INPUT_TOKENS) is not None]
        tokens_in = sum(_tokens(s, INPUT_TOKENS) or 0 for s in mine)
        tokens_out = sum(_tokens(s, OUTPUT_TOKENS) or 0 for s in mine)
        price = None if judge == MOCK_JUDGE else prices.lookup(judge)
        cost = per_1k = None
        if price is not None:
            cost = (tokens_in * price.input_per_mtok + tokens_out * price.output_per_mtok) / 1e6
            per_1k = cost / len(answers[judge]) * 1000.0 if answers[judge] else None
        if judge == MOCK_JUDGE:
            text = MOCK_JUDGE_COST
        elif price is None:
            text = f"no price for {judge} in the price table: cost unknown"
        else:
            text = "estimated from list prices"
        rows.append(
            {
                "judge": judge,
                "label": judge_label(judge),
                "simulated": judge == MOCK_JUDGE,
                "evaluated_answers": len(answers[judge]),
                "results": sum(1 for r in results if r.judge == judge),
                "judge_calls": len(mine),
                "calls_with_usage": len(used),
                "input_tokens": tokens_in,
                "output_tokens": tokens_out,
                "price_per_mtok_usd": (
                    {"input": price.input_per_mtok, "output": price.output_per_mtok}
                    if price
                    else None
                ),
                "cost_usd": cost,
                "cost_per_1k_evaluated_answers_usd": per_1k,
                "cost_text": text,
            }
        )
    return rows
