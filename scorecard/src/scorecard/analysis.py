"""Per-model figures from the archive: selection, latency, tokens, errors, cost, satisfaction.

Definitions (also in the README):
- A request is one `chat <model>` CLIENT span (`gen_ai.request.model` = the model asked for).
- Success: the span's status is not ERROR and it has no `error.type`.
- E2E latency: duration of the trace's SERVER span (POST /api/chat, ended when the stream
  closed), i.e. what the user waited; falls back to the chat span when no server span exists.
  LLM-call latency: duration of the chat span. TTFT: `gen_ai.response.time_to_first_chunk`,
  from the LLM request to the first chunk that carries output (content, refusal, reasoning or
  a tool-call delta; a role-only or empty chunk does not count).
  Latency percentiles use successful requests only (a fast failure is not a fast answer).
- Output tokens/s (per request): output_tokens / chat duration: the rate a caller gets, the
  wait for the first token included. Not the decode rate (tokens - 1) / (duration - TTFT), the
  load generator's 1 / TPOT, which leaves the time to first token out and is undefined for
  one-token answers.
- Cost per 1k requests: (sum input tokens x input price + sum output tokens x output price)
  / requests x 1000, failures included (they cost nothing unless usage was returned).
- Client vs server: the summary's TTFT/E2E p50/p90/p99 vs the spans', flagged when
  |client - server| > max(--tolerance-ms, --tolerance-pct of server), by default
  max(50 ms, 10 %). The span-vs-metric consistency rows and the latency the assistant added
  are defined in checks.py.
- Satisfaction: `gen_ai.evaluation.result` events (span events or log records) named
  `user_satisfaction`, one per response (the latest), normalised to 0-1: values on a 1-5
  scale (any value above 1 seen) -> (v - 1) / 4, values in 0-1 kept; without a value the
  label thumbs_up/down -> 1/0. 95 % interval: Wilson
  for 0/1 scores, Student-t otherwise.
  A rating is synthetic (simulated by the load generator) when the event, the span carrying
  it (the feedback request's), the rated chat span or that chat's SERVER span has
  `synthetic_request=true` (baggage the assistant copies onto them); every other rating is
  real. Real and synthetic ratings are reported apart (count, mean, 95 % interval each);
  simulated ratings reflect only latency, errors, truncation and the load generator's content
  heuristic, never answer quality. The `satisfaction` figures themselves (and the metric
  mean: the histogram has no such marker) cover both. The metric mean uses the
  `gen_ai.evaluation.score` points named `user_satisfaction` (or unnamed) only.
- The judge's call (`judge <model>`, `assistant.evaluation.evaluated_model`) is not a request.
- Answer quality (answer_relevancy, faithfulness, toxicity, answered): see quality.py.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import agents, checks, quality, stats
from .config import Settings
from .errors import EXIT_NO_DATA, ScorecardError
from .loadgen import PERCENTILES, LoadgenSummary
from .names import (
    APP_RESPONSE_ID,
    DURATION_METRIC,
    ERROR_TYPE,
    EVALUATION_EVENT,
    EVALUATION_NAME,
    INPUT_TOKENS,
    MODEL,
    OUTPUT_TOKENS,
    RESPONSE_ID,
    RESPONSE_MODEL,
    REVISION,
    SATISFACTION,
    SCORE_LABEL,
    SCORE_METRIC,
    SCORE_VALUE,
    SYNTHETIC,
    TOKEN_METRIC,
    TOKEN_TYPE,
    TTFT,
    TTFT_METRIC,
    is_chat_point,
)
from .otlp import Archive, LogRecord, MetricPoint, Span
from .prices import PriceTable

RUN_ID_KEY = re.compile(r"(^|[._])(load[._]?)?run[._]?id$", re.IGNORECASE)
SUMMARY_WINDOW_MARGIN_S = 2.0
METRIC_GRACE_S = 90.0  # a delta point is exported up to one export interval after the call
BIN_WIDTHS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400)
TARGET_BINS = 30


@dataclass
class Call:
    """One chat call with what the scorecard needs from its trace."""

    span: Span
    model: str
    server: Span | None

    @property
    def ok(self) -> bool:
        return self.span.status_code != "ERROR" and ERROR_TYPE not in self.span.attributes

    @property
    def error_type(self) -> str:
        return str(self.span.attributes.get(ERROR_TYPE) or "_OTHER")

    @property
    def e2e_s(self) -> float:
        return (self.server or self.span).duration_s

    def number(self, key: str) -> float | None:
        value = self.span.attributes.get(key)
        return (
            float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        )


@dataclass
class Selection:
    calls: list[Call]
    start_s: float
    end_s: float
    method: str
    notes: list[str] = field(default_factory=list)
    summary_matches: bool = False
    # the selection's rules, for spans other than chat calls (the agent turns)
    traces: set[str] | None = None
    since: float | None = None
    until: float | None = None

    def includes(self, span: Span) -> bool:
        """A span selected by the same rules as the chat calls (trace of the run, start)."""
        start = span.start_ns / 1e9
        return (
            (self.traces is None or span.trace_id in self.traces)
            and (self.since is None or start >= self.since)
            and (self.until is None or start <= self.until)
        )


def is_chat_span(span: Span) -> bool:
    if span.kind != "CLIENT" or not span.attributes.get(MODEL):
        return False
    if quality.is_judge_span(span):
        return False  # the evaluation's judge call (docs/evaluations.md), not a chat call
    return span.attributes.get("gen_ai.operation.name") == "chat" or span.name.startswith("chat ")


def _run_ids(span: Span) -> set[str]:
    found = set()
    for attrs in (span.attributes, span.resource):
        found.update(str(v) for k, v in attrs.items() if RUN_ID_KEY.search(k) and v is not None)
    return found


def _server_span(span: Span, by_id: dict[str, Span], trace: list[Span]) -> Span | None:
    current = span
    for _ in range(64):  # a parent chain longer than this is a broken archive, not a trace
        parent = by_id.get(current.parent_span_id)
        if parent is None:
            break
        if parent.kind == "SERVER":
            return parent
        current = parent
    roots = [s for s in trace if s.kind == "SERVER" and not s.parent_span_id]
    return roots[0] if len(roots) == 1 else None


def select_calls(archive: Archive, settings: Settings, summary: LoadgenSummary | None) -> Selection:
    """The chat calls in the chosen time window or load run, with their server spans."""
    chats = [span for span in archive.spans if is_chat_span(span)]
    if not chats:
        raise ScorecardError(
            f"no LLM calls in the archive: {len(archive.spans)} span(s) but none is a "
            f"`chat <model>` CLIENT span with {MODEL} (is the assistant instrumented and "
            "exporting to this collector?)",
            EXIT_NO_DATA,
        )
    notes: list[str] = []
    summary_matches = summary is not None
    since, until = settings.since_s, settings.until_s
    method = "whole archive"
    traces: set[str] | None = None
    if settings.run_id:
        summary_matches = summary is not None and summary.run_id in (None, settings.run_id)
        if summary is not None and not summary_matches:
            notes.append(
                f"the load generator summary is of run {summary.run_id!r}, "
                f"not {settings.run_id!r}: "
                "the client-side comparison was left out"
            )
        traces = {s.trace_id for s in archive.spans if settings.run_id in _run_ids(s)}
        if traces:
            method = f"load-run id {settings.run_id} (from span/resource attributes)"
        elif (
            summary
            and summary.start_s
            and summary.end_s
            and summary.run_id in (None, settings.run_id)
        ):
            traces = None
            since = since if since is not None else summary.start_s - SUMMARY_WINDOW_MARGIN_S
            until = until if until is not None else summary.end_s + SUMMARY_WINDOW_MARGIN_S
            method = "time window of the load run (from the load generator summary)"
            notes.append(
                f"no span carries load-run id {settings.run_id!r} (the assistant does not copy "
                "baggage onto spans), so the run's time window from the load generator summary "
                "was used; other traffic in that window is included"
            )
        else:
            raise ScorecardError(
                f"no span carries load-run id {settings.run_id!r} and no load generator summary "
                "with that run's times was given: select by time with --since/--until instead",
                EXIT_NO_DATA,
            )
    elif since is None and until is None and summary and summary.start_s and summary.end_s:
        summary_start = summary.start_s - SUMMARY_WINDOW_MARGIN_S
        summary_end = summary.end_s + SUMMARY_WINDOW_MARGIN_S
        if any(summary_start <= s.start_ns / 1e9 <= summary_end for s in chats):
            since, until = summary_start, summary_end
            method = "time window of the load run (from the load generator summary)"
        else:
            summary_matches = False
            notes.append(
                f"the load generator summary's run ({_iso(summary.start_s)} to "
                f"{_iso(summary.end_s)}) has no LLM calls in this archive: the whole archive "
                "was scored and the client-side comparison left out"
            )
    if (since is not None or until is not None) and method == "whole archive":
        method = "time window"
    selected = [
        span
        for span in chats
        if (traces is None or span.trace_id in traces)
        and (since is None or span.start_ns / 1e9 >= since)
        and (until is None or span.start_ns / 1e9 <= until)
    ]
    if not selected:
        raise ScorecardError(
            f"no LLM calls in the selection ({method}); the archive's calls run from "
            f"{_iso(min(s.start_ns for s in chats) / 1e9)} to "
            f"{_iso(max(s.start_ns for s in chats) / 1e9)}",
            EXIT_NO_DATA,
        )
    by_trace: dict[str, list[Span]] = defaultdict(list)
    for span in archive.spans:
        by_trace[span.trace_id].append(span)
    by_id = {span.span_id: span for span in archive.spans}
    calls = [
        Call(
            span=span,
            model=str(span.attributes[MODEL]),
            server=_server_span(span, by_id, by_trace[span.trace_id]),
        )
        for span in selected
    ]
    start = since if since is not None else min(c.span.start_ns for c in calls) / 1e9
    end = until if until is not None else max(c.span.end_ns for c in calls) / 1e9
    return Selection(
        calls=calls,
        start_s=start,
        end_s=end,
        method=method,
        notes=notes,
        summary_matches=summary_matches,
        traces=traces,
        since=since,
        until=until,
    )


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


def _summary(values_s: list[float]) -> dict[str, Any]:
    """Percentiles in ms of a list of seconds."""
    ms = [v * 1000.0 for v in values_s]
    return {
        "count": len(ms),
        "p50": stats.percentile(ms, 50),
        "p90": stats.percentile(ms, 90),
        "p99": stats.percentile(ms, 99),
        "mean": stats.mean(ms),
        "min": min(ms) if ms else None,
        "max": max(ms) if ms else None,
    }


# --- metrics -------------------------------------------------------------------------------


def _in_window(point: MetricPoint, start_s: float, end_s: float) -> bool:
    start_ns, end_ns = start_s * 1e9, (end_s + METRIC_GRACE_S) * 1e9
    return point.time_ns >= start_ns and (point.start_ns or point.time_ns) <= end_ns


def _series_key(point: MetricPoint) -> tuple:
    return (
        point.name,
        tuple(sorted((k, str(v)) for k, v in point.attributes.items())),
        tuple(sorted((k, str(v)) for k, v in point.resource.items())),
        point.start_ns,
    )


def windowed_points(points: list[MetricPoint], start_s: float, end_s: float) -> list[MetricPoint]:
    """Delta points overlapping the window; for cumulative series, the window's increase."""
    chosen: list[MetricPoint] = []
    cumulative: dict[tuple, list[MetricPoint]] = defaultdict(list)
    for point in points:
        if point.temporality == "CUMULATIVE" and point.type != "gauge":
            cumulative[_series_key(point)].append(point)
        elif _in_window(point, start_s, end_s):
            chosen.append(point)
    for series in cumulative.values():
        series.sort(key=lambda p: p.time_ns)
        before = [p for p in series if p.time_ns < start_s * 1e9]
        inside = [p for p in series if start_s * 1e9 <= p.time_ns <= (end_s + METRIC_GRACE_S) * 1e9]
        if not inside:
            continue
        last, base = inside[-1], (before[-1] if before else None)
        chosen.append(_difference(last, base))
    return chosen


def _difference(last: MetricPoint, base: MetricPoint | None) -> MetricPoint:
    if base is None:
        return last
    if last.type == "histogram" and len(base.bucket_counts) == len(last.bucket_counts):
        return MetricPoint(
            name=last.name,
            unit=last.unit,
            type=last.type,
            temporality="DELTA",
            attributes=last.attributes,
            resource=last.resource,
            start_ns=base.time_ns,
            time_ns=last.time_ns,
            count=last.count - base.count,
            sum=(last.sum or 0.0) - (base.sum or 0.0),
            bucket_counts=[
                a - b for a, b in zip(last.bucket_counts, base.bucket_counts, strict=True)
            ],
            explicit_bounds=last.explicit_bounds,
        )
    value = (last.value or 0.0) - (base.value or 0.0)
    return MetricPoint(
        name=last.name,
        unit=last.unit,
        type=last.type,
        temporality="DELTA",
        attributes=last.attributes,
        resource=last.resource,
        start_ns=base.time_ns,
        time_ns=last.time_ns,
        value=value,
    )


@dataclass
class MergedHistogram:
    count: int = 0
    total: float = 0.0
    bounds: list[float] = field(default_factory=list)
    buckets: list[int] = field(default_factory=list)
    skipped: int = 0

    def add(self, point: MetricPoint) -> None:
        if not self.bounds and point.explicit_bounds:
            self.bounds = list(point.explicit_bounds)
            self.buckets = [0] * (len(self.bounds) + 1)
        if point.explicit_bounds != self.bounds or len(point.bucket_counts) != len(self.buckets):
            self.skipped += 1
            return
        self.count += point.count
        self.total += point.sum or 0.0
        self.buckets = [a + b for a, b in zip(self.buckets, point.bucket_counts, strict=True)]

    def quantile_ms(self, q: float, scale: float = 1000.0) -> float | None:
        value = stats.histogram_quantile(q, self.bounds, self.buckets)
        return value * scale if value is not None else None

    def mean(self, scale: float = 1.0) -> float | None:
        return self.total / self.count * scale if self.count else None


def metric_figures(points: list[MetricPoint], models: list[str]) -> dict[str, dict[str, Any]]:
    merged: dict[tuple[str, str, str], MergedHistogram] = defaultdict(MergedHistogram)
    for point in points:
        model = str(point.attributes.get(MODEL) or "")
        if point.type != "histogram" or model not in models or not is_chat_point(point.attributes):
            continue
        if point.name in (DURATION_METRIC, TTFT_METRIC) and ERROR_TYPE in point.attributes:
            continue
        if point.name == SCORE_METRIC and point.attributes.get(EVALUATION_NAME) not in (
            None,
            SATISFACTION,
        ):
            continue  # an answer-quality evaluation: compared in the consistency rows
        variant = str(point.attributes.get(TOKEN_TYPE) or "")
        merged[(model, point.name, variant)].add(point)
    figures: dict[str, dict[str, Any]] = {}
    for model in models:

        def latency(name: str, model: str = model) -> dict[str, Any] | None:
            hist = merged.get((model, name, ""))
            if hist is None or not hist.count:
                return None
            return {
                "count": hist.count,
                "p50": hist.quantile_ms(0.5),
                "p90": hist.quantile_ms(0.9),
                "p99": hist.quantile_ms(0.99),
                "mean": hist.mean(1000.0),
            }

        tokens_in = merged.get((model, TOKEN_METRIC, "input"))
        tokens_out = merged.get((model, TOKEN_METRIC, "output"))
        score = merged.get((model, SCORE_METRIC, ""))
        figures[model] = {
            "duration_ms": latency(DURATION_METRIC),
            "ttft_ms": latency(TTFT_METRIC),
            "input_tokens_per_request": tokens_in.mean() if tokens_in else None,
            "output_tokens_per_request": tokens_out.mean() if tokens_out else None,
            "token_records": (tokens_out.count if tokens_out else 0),
            "satisfaction_mean": score.mean() if score else None,
            "satisfaction_count": score.count if score else 0,
        }
    return figures


# --- satisfaction --------------------------------------------------------------------------


@dataclass
class Rating:
    model: str
    value: float | None
    label: str | None
    time_ns: int
    synthetic: bool = False


SIMULATED_MEANING = (
    "simulated by the load generator (synthetic_request=true): its ratings follow only what a "
    "simulated user can observe (errors, TTFT and E2E against the SLOs, truncation, and the "
    "share of the question's content words the answer mentions), not answer quality"
)


def is_synthetic(attrs: dict[str, Any] | None) -> bool:
    value = (attrs or {}).get(SYNTHETIC)
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _evaluation(attrs: dict[str, Any]) -> tuple[float | None, str | None] | None:
    name = attrs.get(EVALUATION_NAME)
    if name not in (None, SATISFACTION):
        return None
    value = attrs.get(SCORE_VALUE)
    label = attrs.get(SCORE_LABEL)
    number = (
        float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    )
    return number, (str(label) if label else None)


def collect_ratings(archive: Archive, calls: list[Call]) -> list[Rating]:
    """Satisfaction events joined to the selected calls (by response id, else by span).

    The assistant emits each rating twice (a log record parented on the chat span and an event
    on the feedback request's span) and a user may rate again: one rating per response is
    kept, the latest (highest `assistant.feedback.revision`, then latest time). It is synthetic
    when any copy, the span carrying it, or the rated chat (or its SERVER span) is marked.
    """
    by_response = {
        str(c.span.attributes[RESPONSE_ID]): c for c in calls if c.span.attributes.get(RESPONSE_ID)
    }
    by_span = {c.span.span_id: c for c in calls}
    selected_traces = {c.span.trace_id for c in calls}
    latest: dict[Any, tuple[tuple, Rating]] = {}
    synthetic: dict[Any, bool] = {}

    def consider(
        attrs: dict[str, Any],
        time_ns: int,
        span_id: str,
        trace_id: str,
        carrier: dict[str, Any] | None = None,
    ) -> None:
        parsed = _evaluation(attrs)
        if parsed is None:
            return
        call = by_response.get(str(attrs.get(RESPONSE_ID))) or by_span.get(span_id)
        if call is not None:
            model = call.model
        elif trace_id in selected_traces and (attrs.get(MODEL) or attrs.get(RESPONSE_MODEL)):
            model = str(attrs.get(MODEL) or attrs.get(RESPONSE_MODEL))
        else:
            return
        key = attrs.get(APP_RESPONSE_ID) or attrs.get(RESPONSE_ID) or (span_id, time_ns)
        marked = (
            is_synthetic(attrs)
            or is_synthetic(carrier)
            or (
                call is not None
                and (
                    is_synthetic(call.span.attributes)
                    or (call.server is not None and is_synthetic(call.server.attributes))
                )
            )
        )
        synthetic[key] = synthetic.get(key, False) or marked
        revision = attrs.get(REVISION) if isinstance(attrs.get(REVISION), int) else 0
        order = (revision, time_ns)
        if key not in latest or order > latest[key][0]:
            rating = Rating(model=model, value=parsed[0], label=parsed[1], time_ns=time_ns)
            latest[key] = (order, rating)

    for span in archive.spans:
        for event in span.events:
            if event["name"] == EVALUATION_EVENT:
                consider(
                    event["attributes"],
                    event["time_ns"],
                    span.span_id,
                    span.trace_id,
                    span.attributes,
                )
    for record in archive.logs:
        if _is_evaluation_record(record):
            consider(record.attributes, record.time_ns, record.span_id, record.trace_id)
    ratings = []
    for key, (_, rating) in latest.items():
        rating.synthetic = synthetic[key]
        ratings.append(rating)
    return ratings


def _is_evaluation_record(record: LogRecord) -> bool:
    return record.event_name == EVALUATION_EVENT or (
        record.event_name == "" and SCORE_VALUE in record.attributes
    )


def satisfaction(ratings: list[Rating], one_to_five: bool) -> dict[str, Any]:
    scores = []
    for rating in ratings:
        if rating.value is not None:
            scores.append((rating.value - 1) / 4 if one_to_five else rating.value)
        elif rating.label in ("thumbs_up", "thumbs_down"):
            scores.append(1.0 if rating.label == "thumbs_up" else 0.0)
    return score_figures(scores)


def score_figures(scores: list[float]) -> dict[str, Any]:
    """Count, mean and 95 % interval of scores in 0-1: Wilson when all are 0 or 1, else t."""
    binary = bool(scores) and all(score in (0.0, 1.0) for score in scores)
    if binary:
        interval = stats.wilson_interval(sum(scores), len(scores))
    else:
        interval = stats.mean_interval(scores)
    return {
        "count": len(scores),
        "mean": stats.mean(scores),
        "ci_low": max(0.0, interval[0]) if interval else None,
        "ci_high": min(1.0, interval[1]) if interval else None,
        "interval": "Wilson 95%" if binary else "Student-t 95%",
    }


def satisfaction_split(ratings: list[Rating], one_to_five: bool) -> dict[str, Any]:
    """All ratings (the top-level figures), and real and synthetic ones apart."""
    return {
        **satisfaction(ratings, one_to_five),
        "scope": "all ratings, real and simulated",
        "real": satisfaction([r for r in ratings if not r.synthetic], one_to_five),
        "synthetic": {
            **satisfaction([r for r in ratings if r.synthetic], one_to_five),
            "simulated": True,
        },
        "used_in_ranking": None,  # set by the ranking: "real", "simulated" or None
    }


# --- the whole analysis --------------------------------------------------------------------


def _tokens_per_s(call: Call) -> float | None:
    out = call.number(OUTPUT_TOKENS)
    duration = call.span.duration_s
    return out / duration if out is not None and out > 0 and duration > 0 else None


def _compare(
    client: dict[str, float], server: dict[str, Any], settings: Settings, metric: str
) -> list[dict]:
    rows = []
    for name in PERCENTILES:
        c, s = client.get(name), server.get(name)
        if c is None or s is None:
            continue
        tolerance = max(settings.tolerance_ms, settings.tolerance_pct / 100.0 * s)
        rows.append(
            {
                "metric": metric,
                "percentile": name,
                "client_ms": c,
                "server_ms": s,
                "diff_ms": c - s,
                "tolerance_ms": tolerance,
                "flagged": abs(c - s) > tolerance,
            }
        )
    return rows


def _answers(calls: list[Call], agent_ids: set[str]) -> list[Call]:
    """The successful answers, each as its first model call: a chat call inside an agent turn
    (parented on an `invoke_agent` span) belongs to its turn, which is one answer (what a client
    measures as one request: its TTFT is the first model call's, its E2E the SERVER span once)
    and successful when all its calls are. Every other successful call is an answer of its own."""
    answers: dict[str, list[Call]] = defaultdict(list)
    for call in calls:
        parent = call.span.parent_span_id
        answers[parent if parent in agent_ids else call.span.span_id].append(call)
    return [
        min(group, key=lambda c: c.span.start_ns)
        for group in answers.values()
        if all(c.ok for c in group)
    ]


def errors_over_time(calls: list[Call], start_s: float, end_s: float) -> dict[str, Any]:
    first = min(start_s, min(c.span.start_ns for c in calls) / 1e9)
    last = max(end_s, max(c.span.start_ns for c in calls) / 1e9)
    span_s = max(last - first, 1.0)
    width = next((w for w in BIN_WIDTHS_S if span_s / w <= TARGET_BINS), BIN_WIDTHS_S[-1])
    count = int(span_s // width) + 1
    bins = [
        {"start_s": first + i * width, "requests": Counter(), "errors": Counter()}
        for i in range(count)
    ]
    for call in calls:
        index = min(count - 1, int((call.span.start_ns / 1e9 - first) // width))
        bins[index]["requests"][call.model] += 1
        if not call.ok:
            bins[index]["errors"][call.model] += 1
    return {
        "bin_s": width,
        "bins": [
            {"start_s": b["start_s"], "requests": dict(b["requests"]), "errors": dict(b["errors"])}
            for b in bins
        ],
    }


def analyse(
    archive: Archive,
    settings: Settings,
    prices: PriceTable,
    summary: LoadgenSummary | None,
) -> tuple[dict[str, Any], dict[str, dict[str, list[float]]]]:
    """The report body (JSON-ready) and the raw per-model samples the plots need."""
    selection = select_calls(archive, settings, summary)
    by_model: dict[str, list[Call]] = defaultdict(list)
    for call in selection.calls:
        by_model[call.model].append(call)
    models = sorted(by_model)
    points = windowed_points(archive.points, selection.start_s, selection.end_s)
    metrics = metric_figures(points, models)
    ratings = collect_ratings(archive, selection.calls)
    results = quality.collect(archive, selection.calls)
    one_to_five = any(r.value is not None and r.value > 1 for r in ratings)
    agent_ids = {s.span_id for s in archive.spans if agents.is_agent_span(s)}
    samples: dict[str, dict[str, list[float]]] = {}
    result: dict[str, Any] = {}
    for model in models:
        calls = by_model[model]
        ok = [c for c in calls if c.ok]
        errors = Counter(c.error_type for c in calls if not c.ok)
        answers = _answers(calls, agent_ids)  # = ok, unless some calls are agent turns' steps
        e2e = [c.e2e_s for c in answers]
        llm = [c.span.duration_s for c in ok]
        ttft = [v for c in answers if (v := c.number(TTFT)) is not None]
        rates = [v for c in ok if (v := _tokens_per_s(c)) is not None]
        inputs = [v for c in calls if (v := c.number(INPUT_TOKENS)) is not None]
        outputs = [v for c in calls if (v := c.number(OUTPUT_TOKENS)) is not None]
        price = prices.lookup(model)
        cost = None
        if price is not None:
            dollars = (
                sum(inputs) * price.input_per_mtok + sum(outputs) * price.output_per_mtok
            ) / 1e6
            cost = dollars / len(calls) * 1000.0
        model_ratings = [r for r in ratings if r.model == model]
        servers = sum(1 for c in answers if c.server is not None)
        entry: dict[str, Any] = {
            "requests": len(calls),
            "successes": len(ok),
            "errors": len(calls) - len(ok),
            "error_rate": (len(calls) - len(ok)) / len(calls),
            "errors_by_type": dict(sorted(errors.items())),
            "response_models": sorted(
                {
                    str(c.span.attributes.get(RESPONSE_MODEL))
                    for c in ok
                    if c.span.attributes.get(RESPONSE_MODEL)
                }
            ),
            "e2e_ms": {
                **_summary(e2e),
                "source": "SERVER span"
                if servers == len(answers)
                else f"SERVER span ({servers}/{len(answers)}), else chat span",
            },
            "llm_call_ms": _summary(llm),
            "ttft_ms": _summary(ttft),
            "output_tokens_per_s": {
                "count": len(rates),
                "median": stats.percentile(rates, 50),
                "p10": stats.percentile(rates, 10),
                "p90": stats.percentile(rates, 90),
            },
            "input_tokens_per_request": stats.mean(inputs),
            "output_tokens_per_request": stats.mean(outputs),
            "requests_with_usage": len(outputs),
            "price_per_mtok_usd": (
                {"input": price.input_per_mtok, "output": price.output_per_mtok} if price else None
            ),
            "cost_per_1k_requests_usd": cost,
            "satisfaction": satisfaction_split(model_ratings, one_to_five),
            "quality": quality.model_quality(
                [r for r in results if r.model == model], settings.min_evaluations, score_figures
            ),
            "metrics": metrics[model],
            "client": None,
            "client_vs_server": [],
            "notes": [],
        }
        if price is None:
            entry["notes"].append(f"no price for {model} in the price table: cost unknown")
        if len(answers) != len(ok):
            entry["notes"].append(
                f"E2E and TTFT are per answer: {model}'s calls include agent turns, each one "
                "answer (as a client measures it) with the TTFT of its first model call and "
                f"its SERVER span once ({len(answers)} successful answers, {len(ok)} "
                "successful model calls); the LLM call and token figures stay per model call"
            )
        client = None
        summary_note = "no load generator summary of this run was given (--loadgen-summary)"
        if summary is not None and not selection.summary_matches:
            summary_note = "the load generator summary is not of this run"
        if summary is not None and selection.summary_matches:
            client = summary.models.get(model)
            if client is None:
                summary_note = "the load generator summary has no entry for this model"
                entry["notes"].append(summary_note)
            else:
                entry["client"] = {
                    "requests": client.requests,
                    "failed": client.failed,
                    "ttft_ms": client.ttft_ms,
                    "e2e_ms": client.e2e_ms,
                }
                entry["client_vs_server"] = _compare(
                    client.ttft_ms, entry["ttft_ms"], settings, "TTFT"
                ) + _compare(client.e2e_ms, entry["e2e_ms"], settings, "E2E")
        entry["assistant_added"] = checks.assistant_added(
            calls, client, summary_note, settings.max_added_ttft_ms
        )
        result[model] = entry
        samples[model] = {
            "e2e_ms": [v * 1000 for v in e2e],
            "ttft_ms": [v * 1000 for v in ttft],
            "tokens_per_s": rates,
        }
    body = {
        "selection": {
            "method": selection.method,
            "run_id": settings.run_id,
            "start": _iso(selection.start_s),
            "end": _iso(selection.end_s),
            "start_s": selection.start_s,
            "end_s": selection.end_s,
            "calls": len(selection.calls),
            "notes": selection.notes,
        },
        "ratings_scale": "1-5" if one_to_five else "0-1",
        "ratings": {
            "real": sum(e["satisfaction"]["real"]["count"] for e in result.values()),
            "synthetic": sum(e["satisfaction"]["synthetic"]["count"] for e in result.values()),
            "synthetic_when": "synthetic_request=true on the evaluation event, the span carrying "
            "it, the rated chat span or its SERVER span",
            "simulated_meaning": SIMULATED_MEANING,
        },
        "quality": quality.overview(
            result,
            settings.min_evaluations,
            quality.judge_cost(archive, selection.calls, results, prices),
        ),
        "models": result,
        "errors_over_time": errors_over_time(selection.calls, selection.start_s, selection.end_s),
        "consistency": checks.consistency(
            [span for span in archive.spans if is_chat_span(span)],
            selection.calls,
            points,
            archive.points,
            models,
        ),
        "assistant_added": checks.added_overview(result, settings.max_added_ttft_ms),
    }
    _add_evaluation_checks(body["consistency"], archive, selection.calls, points, models)
    _add_agent_turns(body, archive, selection, points, models, prices)
    return body, samples


def _add_agent_turns(
    body: dict[str, Any],
    archive: Archive,
    selection: Selection,
    points: list[MetricPoint],
    models: list[str],
    prices: PriceTable,
) -> None:
    """The "Agent turns" blocks and their checks (agents.py), only when the selection has
    `invoke_agent` spans of a scored model: an archive without them is reported as before."""
    turns = [t for t in agents.collect(archive.spans, selection, is_chat_span) if t.model in models]
    if not turns:
        return
    by_model: dict[str, list[agents.Turn]] = defaultdict(list)
    for turn in turns:
        by_model[turn.model].append(turn)
    rows = []
    for model in models:
        if model in by_model:
            body["models"][model]["agents"] = agents.model_figures(by_model[model], prices)
            rows += agents.consistency_rows(model, by_model[model])
    body["agents"] = {
        "models": sorted(by_model),
        "answers": len(turns),
        "consistency": {
            "rows": rows,
            "disagreements": sum(1 for row in rows if row["flagged"]),
            "meaning": agents.CONSISTENCY_MEANING,
        },
    }
    # tool runs: execute_tool spans vs the execute_tool points of the duration histogram
    agent_models = {
        s.span_id: str(s.attributes[MODEL]) for s in archive.spans if agents.is_agent_span(s)
    }
    tools = [
        (
            str(s.attributes.get(MODEL) or agent_models.get(s.parent_span_id, "")),
            agents.tool_name(s),
            s,
        )
        for s in archive.spans
        if agents.is_tool_span(s)
    ]
    chosen = {t.span_id for turn in turns for t in turn.tools}
    tool_rows, notes = checks.tool_consistency(
        chosen, tools, points, archive.points, sorted(by_model)
    )
    consistency = body["consistency"]
    consistency["rows"] += tool_rows
    consistency["notes"] += notes
    consistency["disagreements"] = sum(1 for row in consistency["rows"] if row["flagged"])


def _add_evaluation_checks(
    consistency: dict[str, Any],
    archive: Archive,
    calls: list[Call],
    points: list[MetricPoint],
    models: list[str],
) -> None:
    """The evaluation rows (events vs the gen_ai.evaluation.score histogram), see checks.py."""
    if not any(p.name == SCORE_METRIC for p in archive.points):
        return
    everyone = [
        Call(span=span, model=str(span.attributes[MODEL]), server=None)
        for span in archive.spans
        if is_chat_span(span)
    ]
    chosen = {call.span.span_id for call in calls}
    everywhere = quality.collect(archive, everyone)
    selected = [r for r in everywhere if r.call_span_id in chosen]
    rows, notes = checks.evaluation_consistency(
        selected, everywhere, points, archive.points, models
    )
    if rows:
        consistency["checked"] = True
    consistency["rows"] += rows
    consistency["notes"] += notes
    consistency["disagreements"] = sum(1 for row in consistency["rows"] if row["flagged"])
