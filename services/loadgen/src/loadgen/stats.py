"""Exact statistics from raw per-request samples (Locust's own percentiles are rounded).

A sample is a plain dict (it travels between Locust workers and the master as msgpack), with at
least: model, error_kind (None = good), start_s (epoch seconds), e2e_ms, content_ms (arrival of
every content event, ms after start), input_tokens, output_tokens, finish_reason and, when the user
rated the answer, feedback_score. Against the assistant it also has the assistant's own figures of
the request from its `done` event: server_ttft_ms (= the chat span's TTFT) and server_duration_ms
(its chat call, request to the last chunk). With the assistant's shop agent a sample also has
the turn's steps, tool_calls and tool_errors (from `done`; None without the agent) and answer_ms
(the first text event; ttft_ms is then the first tool call or text event, whichever came first).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

PERCENTILES = (50, 90, 95, 99)


def percentile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default) on an already sorted list."""
    if not ordered:
        raise ValueError("no values")
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def distribution(values: Iterable[float]) -> dict:
    """count, p50/p90/p95/p99, mean, min, max of `values` (None fields when there are none)."""
    ordered = sorted(values)
    result: dict = {"count": len(ordered)}
    for q in PERCENTILES:
        result[f"p{q}"] = round(percentile(ordered, q), 3) if ordered else None
    result["mean"] = round(sum(ordered) / len(ordered), 3) if ordered else None
    result["min"] = round(ordered[0], 3) if ordered else None
    result["max"] = round(ordered[-1], 3) if ordered else None
    return result


def output_tokens(sample: dict) -> int:
    """Reported completion tokens, else the number of content events."""
    reported = sample.get("output_tokens")
    return int(reported) if reported is not None else len(sample.get("content_ms") or ())


def tpot_ms(sample: dict) -> float | None:
    """(t_last - t_first) / (out - 1); undefined for answers of fewer than two tokens."""
    times = sample.get("content_ms") or ()
    out = output_tokens(sample)
    if len(times) < 2 or out < 2:
        return None
    return (times[-1] - times[0]) / (out - 1)


def gaps_ms(sample: dict) -> list[float]:
    times = sample.get("content_ms") or ()
    return [b - a for a, b in itertools.pairwise(times)]


def user_tokens_per_s(sample: dict) -> float | None:
    """(out - 1) / (t_last - t_first): the speed one user sees once text flows."""
    times = sample.get("content_ms") or ()
    out = output_tokens(sample)
    if len(times) < 2 or out < 2 or times[-1] <= times[0]:
        return None
    return (out - 1) / ((times[-1] - times[0]) / 1000.0)


@dataclass(frozen=True)
class Slo:
    ttft_ms: float = 0.0
    tpot_ms: float = 0.0
    e2e_ms: float = 0.0

    def met(self, sample: dict) -> bool:
        """A good answer within every SLO that is set (0 = not set)."""
        if sample.get("error_kind") is not None:
            return False
        ttft = sample.get("ttft_ms")
        if self.ttft_ms and (ttft is None or ttft > self.ttft_ms):
            return False
        tpot = tpot_ms(sample)
        if self.tpot_ms and tpot is not None and tpot > self.tpot_ms:
            return False
        return not (self.e2e_ms and sample["e2e_ms"] > self.e2e_ms)


def assistant_added_ms(samples: Sequence[dict]) -> dict:
    """The latency the assistant added, per request: client TTFT minus the assistant's TTFT, and
    client E2E minus the assistant's chat call. Both pairs time the same request, so what remains
    is the assistant's own time (parsing, queueing for a worker thread, relaying) plus the network
    between the load generator and the assistant. Only good answers with the assistant's figures
    count (none against the openai target)."""
    ttft, e2e = [], []
    for sample in samples:
        if sample.get("error_kind") is not None:
            continue
        server_ttft, client_ttft = sample.get("server_ttft_ms"), sample.get("ttft_ms")
        if server_ttft is not None and client_ttft is not None:
            ttft.append(client_ttft - server_ttft)
        if sample.get("server_duration_ms") is not None:
            e2e.append(sample["e2e_ms"] - sample["server_duration_ms"])
    return {"ttft": distribution(ttft), "e2e": distribution(e2e)}


STEP_LIMIT = "max_steps"  # the finish reason of a turn the agent's step limit ended


def has_agent_fields(sample: dict) -> bool:
    """The assistant's `done` event carried the shop agent's counts (steps, tool calls, errors)."""
    return all(sample.get(key) is not None for key in ("steps", "tool_calls", "tool_errors"))


def agent_figures(samples: Sequence[dict]) -> dict | None:
    """The agent's turns in this group (None when no sample has agent fields): answers, tool
    calls and steps per answer (means), tool error rate (errors / calls, None without calls), the
    share of answers the step limit ended, and the time to the answer's first text (ms, over
    successful answers, like ttft_ms)."""
    answers = [s for s in samples if has_agent_fields(s)]
    if not answers:
        return None
    calls = sum(s["tool_calls"] for s in answers)
    errors = sum(s["tool_errors"] for s in answers)
    steps = sum(s["steps"] for s in answers)
    limited = sum(1 for s in answers if s.get("finish_reason") == STEP_LIMIT)
    return {
        "answers": len(answers),
        "steps": steps,
        "tool_calls": calls,
        "tool_errors": errors,
        "step_limited": limited,
        "steps_per_answer": round(steps / len(answers), 3),
        "tool_calls_per_answer": round(calls / len(answers), 3),
        "tool_error_rate": round(errors / calls, 4) if calls else None,
        "step_limit_rate": round(limited / len(answers), 4),
        "time_to_answer_ms": distribution(
            s["answer_ms"]
            for s in answers
            if s.get("error_kind") is None and s.get("answer_ms") is not None
        ),
    }


def peak_tokens_per_s(samples: Iterable[dict]) -> float:
    """Most output tokens that arrived in any whole wall-clock second, across all requests."""
    buckets: dict[int, float] = defaultdict(float)
    for sample in samples:
        times = sample.get("content_ms") or ()
        if not times:
            continue
        per_event = output_tokens(sample) / len(times)
        for at_ms in times:
            buckets[math.floor(sample["start_s"] + at_ms / 1000.0)] += per_event
    return round(max(buckets.values()), 3) if buckets else 0.0


def window(samples: Sequence[dict]) -> tuple[float, float]:
    """(first start, last end) in epoch seconds."""
    start = min(s["start_s"] for s in samples)
    end = max(s["start_s"] + s["e2e_ms"] / 1000.0 for s in samples)
    return start, end


def summarize_group(samples: Sequence[dict], slo: Slo, duration_s: float) -> dict:
    """Every report figure for one group of samples (one model, or all)."""
    good = [s for s in samples if s.get("error_kind") is None]
    failed = len(samples) - len(good)
    errors = Counter(s["error_kind"] for s in samples if s.get("error_kind") is not None)
    codes = Counter(
        f"{s['error_kind']}:{s['error_code']}"
        for s in samples
        if s.get("error_kind") and s.get("error_code")
    )
    meeting = sum(1 for s in samples if slo.met(s))
    rated = [s["feedback_score"] for s in samples if s.get("feedback_score") is not None]
    out_total = sum(output_tokens(s) for s in good)
    per_duration = duration_s if duration_s > 0 else float("nan")

    def rate(count: float) -> float | None:
        value = count / per_duration
        return None if math.isnan(value) else round(value, 3)

    figures = {
        "requests": len(samples),
        "succeeded": len(good),
        "failed": failed,
        "error_rate": round(failed / len(samples), 4) if samples else None,
        "finish_length": sum(1 for s in good if s.get("finish_reason") == "length"),
        "errors_by_kind": dict(sorted(errors.items())),
        "errors_by_code": dict(sorted(codes.items())),
        "ttft_ms": distribution(s["ttft_ms"] for s in good if s.get("ttft_ms") is not None),
        "tpot_ms": distribution(t for s in good if (t := tpot_ms(s)) is not None),
        "itl_ms": distribution(gap for s in good for gap in gaps_ms(s)),
        "e2e_ms": distribution(s["e2e_ms"] for s in good),
        "assistant_added_ms": assistant_added_ms(good),
        "input_tokens": {
            "total": sum(int(s.get("input_tokens") or 0) for s in good),
            "per_request": distribution(
                s["input_tokens"] for s in good if s.get("input_tokens") is not None
            ),
        },
        "output_tokens": {
            "total": out_total,
            "per_request": distribution(output_tokens(s) for s in good),
        },
        "output_tokens_per_s_per_request": distribution(
            v for s in good if (v := user_tokens_per_s(s)) is not None
        ),
        "output_tokens_per_s": rate(out_total),
        "requests_per_s": rate(len(samples)),
        "peak_output_tokens_per_s": peak_tokens_per_s(good),
        "goodput": {
            "requests_meeting_slo": meeting,
            "ratio": round(meeting / len(samples), 4) if samples else None,
            "requests_per_s": rate(meeting),
        },
        "feedback": {
            "count": len(rated),
            "mean_score": round(sum(rated) / len(rated), 3) if rated else None,
            "positive_share": round(sum(1 for r in rated if r >= 4) / len(rated), 4)
            if rated
            else None,
        },
    }
    agent = agent_figures(samples)
    if agent is not None:
        figures["agent"] = agent
    return figures


def summarize(samples: Sequence[dict], slo: Slo) -> dict:
    """{"window": ..., "overall": {...}, "models": {model: {...}}}."""
    if samples:
        start, end = window(samples)
    else:
        start = end = 0.0
    duration = end - start
    by_model: dict[str, list[dict]] = defaultdict(list)
    for sample in samples:
        by_model[sample["model"]].append(sample)
    return {
        "window": {"first_start_s": start, "last_end_s": end, "duration_s": round(duration, 3)},
        "overall": summarize_group(samples, slo, duration),
        "models": {
            model: summarize_group(group, slo, duration)
            for model, group in sorted(by_model.items())
        },
    }
