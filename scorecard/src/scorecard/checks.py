"""Checks of the telemetry itself, and of what a load test measured.

Consistency (span vs metric): the assistant records each timing and token count twice, as a
`chat <model>` span attribute (or the span's own duration) and in a histogram. Per model, from
the same calls:
- LLM calls: chat spans vs the `gen_ai.client.operation.duration` count (every call, failures
  included, as the metric records every call), and the mean chat span duration vs the
  histogram's mean (sum / count);
- TTFT: the spans with `gen_ai.response.time_to_first_chunk` vs the
  `gen_ai.client.operation.time_to_first_chunk` count, and the two means;
- output tokens: the spans with `gen_ai.usage.output_tokens` vs the `gen_ai.client.token.usage`
  (output) count, and the two sums.
Counts and token sums must be equal; means agree within max(2 ms, 2 % of the metric's mean).
Which calls: a metric point has no trace id, only a time interval (a delta point holds what one
worker recorded between two exports). The selection's points (its window plus the last export,
as for every metric figure) are compared with the chat spans their intervals cover, matched on
the resource (one per worker) and on the span's end (the assistant records the metrics just
before it ends the span): the selection's calls, plus any other call that a point straddling the
window's edge also holds (named in a note), minus the selection's calls that ended after the
archive's last metric export of their worker (not exported yet: a note says so, nothing is
flagged). For a whole load run read after its last export that is exactly the selection.

Latency the assistant added, per model: from the archive, per successful call, the SERVER span's
duration minus the chat span's (the assistant's own time around the LLM call; "before the call"
is the part from the request to the LLM request); from the load generator summary
(`assistant_added_ms`), the client's TTFT minus the assistant-reported TTFT of the same request,
and the client's E2E minus the assistant's chat duration (queueing, the assistant, the network).
A model whose added TTFT p99 exceeds --max-added-ttft-ms is flagged: that run measured the
assistant, not the model.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from . import stats
from .names import (
    ALL_EVALUATIONS,
    DURATION_METRIC,
    EVALUATION_NAME,
    EXECUTE_TOOL,
    MODEL,
    OPERATION,
    OUTPUT_TOKENS,
    SCORE_METRIC,
    TOKEN_METRIC,
    TOKEN_TYPE,
    TOOL_NAME,
    TTFT,
    TTFT_METRIC,
    is_chat_point,
)
from .otlp import MetricPoint, Span

if TYPE_CHECKING:
    from .analysis import Call
    from .loadgen import ClientModel
    from .quality import Result

# The span and the histogram hold the same numbers recorded twice: TTFT is one float written to
# both; a duration is two clock reads around the same code (the span's start/end in time_ns, the
# metric's perf_counter between begin() and finish()), microseconds apart; the histogram's sum is
# a double. So only float rounding and that gap differ. 2 ms covers the gap when a thread is
# descheduled between the two reads on a busy 2-core machine (the GIL switch interval is 5 ms;
# this is a mean, so one slow call moves it little); 2 % covers the two clocks' rates on long
# calls (NTP slews time_ns by at most 0.05 %). A bug (one path changed, not the other; a lost
# point) moves a mean by far more, and a count or a token sum by at least one.
MEAN_TOLERANCE_MS = 2.0
MEAN_TOLERANCE_PCT = 2.0
CHECKED_METRICS = (DURATION_METRIC, TTFT_METRIC, TOKEN_METRIC)
# An evaluation score is one number written to the event and to the histogram: only float
# rounding differs, so the same rule as for the means above with a floor in score units.
MEAN_TOLERANCE_SCORE = 0.001

CLIENT_VS_SERVER_MEANING = {
    "TTFT": "the client saw a TTFT the telemetry does not show: the server-side figure (the span "
    "attribute and the histogram that the Splunk charts and the TTFT detector use) is wrong, or "
    'the assistant adds latency before the first token reaches the user (see "Latency the '
    'assistant added"); do not trust the TTFT charts of this run until it agrees.',
    "E2E": "the client waited longer (or less) than the assistant's SERVER span lasted: requests "
    "queued before the assistant saw them (too few workers for the users), the network or a "
    "proxy added time, or the span ends at the wrong moment; APM latency by model is off by as "
    "much.",
}
CONSISTENCY_MEANING = (
    "two records of the same thing differ: the span and the histogram hold the same value "
    "recorded twice, so a disagreement is a telemetry bug (one of the two paths changed and not "
    "the other) or lost telemetry (spans or metric points dropped on the way); the charts "
    "(metrics) and the traces of this run tell different stories until it agrees."
)
ADDED_MEANING = (
    "A load test of model choices is only honest when the assistant adds little: otherwise the "
    "run measured the assistant (its workers, its queue) rather than the models."
)
ADDED_ADVICE = (
    "give the assistant more workers (ASSISTANT_WORKERS), run fewer users (LOADGEN_USERS), or "
    "load the model directly (LOADGEN_TARGET=openai)"
)


# --- consistency ---------------------------------------------------------------------------


def _resource_key(resource: dict[str, Any]) -> tuple:
    return tuple(sorted((str(k), str(v)) for k, v in resource.items()))


class _Merged:
    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0

    def add(self, point: MetricPoint) -> None:
        self.count += point.count
        self.total += point.sum or 0.0

    def mean(self, scale: float = 1.0) -> float | None:
        return self.total / self.count * scale if self.count else None


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _count_row(model: str, figure: str, unit: str, spans: int, metrics: int) -> dict[str, Any]:
    return {
        "model": model,
        "figure": figure,
        "kind": "count",
        "unit": unit,
        "spans": spans,
        "metrics": metrics,
        "difference": metrics - spans,
        "tolerance": 0,
        "flagged": spans != metrics,
    }


def _mean_row(
    model: str,
    figure: str,
    spans: float | None,
    metrics: float | None,
    unit: str = "ms",
    floor: float = MEAN_TOLERANCE_MS,
) -> dict[str, Any] | None:
    if spans is None and metrics is None:
        return None  # nothing recorded on either side: the count row says so
    tolerance = max(floor, MEAN_TOLERANCE_PCT / 100.0 * abs(metrics or spans or 0.0))
    difference = None if spans is None or metrics is None else metrics - spans
    return {
        "model": model,
        "figure": figure,
        "kind": "mean",
        "unit": unit,
        "spans": spans,
        "metrics": metrics,
        "difference": difference,
        "tolerance": tolerance,
        "flagged": difference is None or abs(difference) > tolerance,
    }


def _sum_row(model: str, figure: str, spans: float, metrics: float) -> dict[str, Any]:
    return {
        "model": model,
        "figure": figure,
        "kind": "sum",
        "unit": "tokens",
        "spans": spans,
        "metrics": metrics,
        "difference": metrics - spans,
        "tolerance": 0,
        "flagged": abs(metrics - spans) > 1e-6 * max(1.0, abs(spans)),  # integers, as doubles
    }


def consistency(
    chats: list[Span],
    selected: Iterable[Call],
    window_points: list[MetricPoint],
    archive_points: list[MetricPoint],
    models: list[str],
) -> dict[str, Any]:
    """The span-vs-metric rows per model (see the module docstring for which calls)."""
    result: dict[str, Any] = {
        "tolerance": {
            "mean_ms": MEAN_TOLERANCE_MS,
            "mean_pct": MEAN_TOLERANCE_PCT,
            "counts": "equal",
            "token_sums": "equal",
        },
        "meaning": CONSISTENCY_MEANING,
        "checked": False,
        "rows": [],
        "disagreements": 0,
        "notes": [],
    }
    if not any(p.type == "histogram" and p.name in CHECKED_METRICS for p in archive_points):
        result["notes"].append(
            "the archive has no GenAI metric points (a traces file alone?): the span-vs-metric "
            "checks were not run"
        )
        return result
    result["checked"] = True
    archive_points = [p for p in archive_points if is_chat_point(p.attributes)]
    window_points = [p for p in window_points if is_chat_point(p.attributes)]
    coverage = _Coverage(archive_points, archive_points, [s.resource for s in chats])
    for point in window_points:
        model = str(point.attributes.get(MODEL) or "")
        if point.type != "histogram" or point.name not in CHECKED_METRICS or model not in models:
            continue
        if point.name == TOKEN_METRIC and point.attributes.get(TOKEN_TYPE) != "output":
            continue
        coverage.add(point, model, point.name)
    merged = coverage.merged
    chosen = {call.span.span_id for call in selected}
    by_model: dict[str, list[Span]] = defaultdict(list)
    for span in chats:
        by_model[str(span.attributes.get(MODEL))].append(span)

    def covered(model: str, metric: str, has_value) -> tuple[list[Span], int, int]:
        """The spans the metric's points cover, the extra (unselected) ones, the pending ones."""
        return coverage.split(
            [s for s in by_model[model] if has_value(s)], metric, model,
            selected=lambda s: s.span_id in chosen, at=lambda s: s.end_ns,
            resource=lambda s: s.resource,
        )  # fmt: skip

    def number(span: Span, name: str) -> float | None:
        value = span.attributes.get(name)
        return (
            float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        )

    rows: list[dict[str, Any]] = []
    for model in models:
        calls, extra, pending = covered(model, DURATION_METRIC, lambda s: True)
        duration = merged[(model, DURATION_METRIC)]
        rows.append(_count_row(model, "LLM calls", "calls", len(calls), duration.count))
        rows.append(
            _mean_row(
                model,
                "LLM call duration mean",
                _mean([s.duration_s * 1000.0 for s in calls]),
                duration.mean(1000.0),
            )
        )
        ttft_spans, _, _ = covered(model, TTFT_METRIC, lambda s: number(s, TTFT) is not None)
        ttft = merged[(model, TTFT_METRIC)]
        rows.append(_count_row(model, "TTFT records", "calls", len(ttft_spans), ttft.count))
        rows.append(
            _mean_row(
                model,
                "TTFT mean",
                _mean([number(s, TTFT) * 1000.0 for s in ttft_spans]),
                ttft.mean(1000.0),
            )
        )
        token_spans, _, _ = covered(
            model, TOKEN_METRIC, lambda s: number(s, OUTPUT_TOKENS) is not None
        )
        tokens = merged[(model, TOKEN_METRIC)]
        rows.append(
            _count_row(model, "Output token records", "calls", len(token_spans), tokens.count)
        )
        rows.append(
            _sum_row(
                model,
                "Output tokens",
                sum(number(s, OUTPUT_TOKENS) for s in token_spans),
                tokens.total,
            )
        )
        if extra:
            result["notes"].append(
                f"{model}: {extra} call(s) outside the selection share a metric export interval "
                "with it (the window's edge cuts that interval), so they are compared too"
            )
        if pending:
            result["notes"].append(
                f"{model}: {pending} call(s) of the selection ended after the archive's last "
                "metric export: left out of these checks; run the report again after the next "
                "export (OTEL_METRIC_EXPORT_INTERVAL, 60 s by default) to check them"
            )
    result["rows"] = [row for row in rows if row is not None]
    result["disagreements"] = sum(1 for row in result["rows"] if row["flagged"])
    return result


def evaluation_consistency(
    selected: list[Result],
    everywhere: list[Result],
    window_points: list[MetricPoint],
    archive_points: list[MetricPoint],
    models: list[str],
) -> tuple[list[dict[str, Any]], list[str]]:
    """Per model and evaluation: the `gen_ai.evaluation.result` events vs the
    `gen_ai.evaluation.score` histogram with that evaluation name (count equal, mean within
    max(0.001, 2 % of the metric's mean)). As for the chat figures, the events compared are the
    ones the selection's points cover (same resource, recorded inside the points' intervals),
    minus the selection's results recorded after the last metric export (a note says so).
    `selected`: the selection's results; `everywhere`: those of every chat call in the archive.
    Nothing is compared when the archive has no such histogram points."""

    def named(point: MetricPoint) -> bool:
        return (
            point.type == "histogram"
            and point.name == SCORE_METRIC
            and point.attributes.get(EVALUATION_NAME) in ALL_EVALUATIONS
        )

    evaluation_points = [p for p in archive_points if named(p)]
    if not evaluation_points:
        return [], []
    coverage = _Coverage(archive_points, evaluation_points, [r.resource for r in everywhere])
    for point in window_points:
        model = str(point.attributes.get(MODEL) or "")
        if named(point) and model in models:
            coverage.add(point, model, str(point.attributes[EVALUATION_NAME]))
    merged = coverage.merged
    chosen = {id(r) for r in selected}
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    for model in models:
        extra = pending = 0
        for name in ALL_EVALUATIONS:
            results, more, late = coverage.split(
                [r for r in everywhere if r.model == model and r.name == name], name, model,
                selected=lambda r: id(r) in chosen, at=lambda r: r.time_ns,
                resource=lambda r: r.resource,
            )  # fmt: skip
            extra, pending = extra + more, pending + late
            metric = merged.get((model, name), _Merged())
            if not results and not metric.count:
                continue
            rows.append(
                _count_row(model, f"{name} evaluations", "results", len(results), metric.count)
            )
            rows.append(
                _mean_row(
                    model,
                    f"{name} mean score",
                    _mean([r.score for r in results]),
                    metric.mean(),
                    unit="score",
                    floor=MEAN_TOLERANCE_SCORE,
                )
            )
        if extra:
            notes.append(
                f"{model}: {extra} evaluation result(s) of calls outside the selection share a "
                "metric export interval with it, so they are compared too"
            )
        if pending:
            notes.append(
                f"{model}: {pending} evaluation result(s) of the selection were recorded after "
                "the archive's last metric export: left out of these checks; run the report "
                "again after the next export"
            )
    return [row for row in rows if row is not None], notes


def tool_consistency(
    selected: set[str],
    tools: list[tuple[str, str, Span]],
    window_points: list[MetricPoint],
    archive_points: list[MetricPoint],
    models: list[str],
) -> tuple[list[dict[str, Any]], list[str]]:
    """Per model and tool: the `execute_tool` spans vs the count of the `execute_tool` points of
    `gen_ai.client.operation.duration` (every run, failures included), over the spans the
    selection's points cover, as for the chat calls (the assistant records the duration just
    before it ends the tool span). `tools`: (model, tool, span) for every tool span of the
    archive; `selected`: the span ids of the selection's. Not checked without GenAI metrics."""
    if not any(p.type == "histogram" and p.name in CHECKED_METRICS for p in archive_points):
        return [], []

    def tool_point(point: MetricPoint) -> bool:
        return (
            point.type == "histogram"
            and point.name == DURATION_METRIC
            and point.attributes.get(OPERATION) == EXECUTE_TOOL
        )

    keyed = [p for p in archive_points if tool_point(p)] or archive_points
    coverage = _Coverage(archive_points, keyed, [span.resource for _, _, span in tools])
    names: dict[str, set[str]] = defaultdict(set)
    for point in window_points:
        model = str(point.attributes.get(MODEL) or "")
        if tool_point(point) and model in models:
            name = str(point.attributes.get(TOOL_NAME) or "")
            coverage.add(point, model, f"tool {name}")
            names[model].add(name)
    for model, name, span in tools:
        if span.span_id in selected:
            names[model].add(name)
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    for model in models:
        extra = pending = 0
        for name in sorted(names[model]):
            spans, more, late = coverage.split(
                [s for m, n, s in tools if m == model and n == name], f"tool {name}", model,
                selected=lambda s: s.span_id in selected, at=lambda s: s.end_ns,
                resource=lambda s: s.resource,
            )  # fmt: skip
            extra, pending = extra + more, pending + late
            metric = coverage.merged.get((model, f"tool {name}"), _Merged())
            rows.append(_count_row(model, f"Tool calls {name}", "calls", len(spans), metric.count))
        if extra:
            notes.append(
                f"{model}: {extra} tool call(s) outside the selection share a metric export "
                "interval with it, so they are compared too"
            )
        if pending:
            notes.append(
                f"{model}: {pending} tool call(s) of the selection ended after the archive's "
                "last metric export: left out of these checks; run the report again after the "
                "next export"
            )
    return rows, notes


# --- latency the assistant added -------------------------------------------------------------


def _distribution_ms(values_ms: list[float]) -> dict[str, Any]:
    return {
        "count": len(values_ms),
        "p50": stats.percentile(values_ms, 50),
        "p90": stats.percentile(values_ms, 90),
        "p99": stats.percentile(values_ms, 99),
        "mean": stats.mean(values_ms),
    }


def assistant_added(
    calls: list[Call], client: ClientModel | None, summary_note: str | None, limit_ms: float
) -> dict[str, Any]:
    """One model's "Latency the assistant added" (see the module docstring).

    `summary_note`: why there is no `client` entry (no summary, another run's, no such model)."""
    pairs = [(c.server, c.span) for c in calls if c.ok and c.server is not None]
    around = [(server.duration_s - span.duration_s) * 1000.0 for server, span in pairs]
    before = [(span.start_ns - server.start_ns) / 1e6 for server, span in pairs]
    added = client.added_ms if client is not None else None
    ttft = (added or {}).get("ttft")
    ttft_p99 = ttft["p99"] if ttft else None
    flagged = ttft_p99 is not None and ttft_p99 > limit_ms
    if ttft_p99 is None:
        text = "added TTFT not measured: " + (
            "the load generator summary has no assistant_added_ms for this model (a run with "
            "LOADGEN_TARGET=openai, or a load generator older than that field)"
            if client is not None
            else summary_note or "no load generator summary of this run"
        )
    elif flagged:
        text = (
            f"this run measured the assistant, not the model: the assistant added "
            f"{ttft_p99:.0f} ms to TTFT p99 (more than {limit_ms:g} ms); {ADDED_ADVICE}"
        )
    else:
        text = (
            f"the assistant added {ttft_p99:.0f} ms to TTFT p99 (at most {limit_ms:g} ms): "
            "this run measured the model"
        )
    return {
        "server_spans": {**_distribution_ms(around), "before_call": _distribution_ms(before)},
        "client": added,
        "measured": ttft_p99 is not None,
        "ttft_p99_ms": ttft_p99,
        "limit_ms": limit_ms,
        "flagged": flagged,
        "text": text,
    }


def added_overview(models: dict[str, dict[str, Any]], limit_ms: float) -> dict[str, Any]:
    flagged = [m for m, e in models.items() if e["assistant_added"]["flagged"]]
    message = None
    if flagged:
        worst = ", ".join(
            f"{m} +{models[m]['assistant_added']['ttft_p99_ms']:.0f} ms" for m in flagged
        )
        message = (
            f"This run measured the assistant, not the models: the assistant added more than "
            f"{limit_ms:g} ms to TTFT p99 ({worst}); to compare models, {ADDED_ADVICE}."
        )
    return {
        "limit_ms": limit_ms,
        "flagged_models": flagged,
        "message": message,
        "meaning": ADDED_MEANING,
    }


# --- the gate ------------------------------------------------------------------------------


def gate(doc: dict[str, Any], strict: bool) -> dict[str, Any]:
    """Every disagreement of the report, as lines; --strict fails on any."""
    failures = []
    for model, entry in doc["models"].items():
        for row in entry["client_vs_server"]:
            if row["flagged"]:
                failures.append(
                    f"{model} {row['metric']} {row['percentile']}: client {row['client_ms']:.0f} "
                    f"ms vs server {row['server_ms']:.0f} ms (tolerance {row['tolerance_ms']:.0f} "
                    "ms)"
                )
    for row in doc["consistency"]["rows"]:
        if row["flagged"]:
            unit = row["unit"]
            limit = (
                "must be equal"
                if row["tolerance"] == 0
                else f"tolerance {row['tolerance']:.3f}"
                if unit == "score"
                else f"tolerance {row['tolerance']:.1f}"
            )
            side = "events" if unit in ("score", "results") else "spans"
            failures.append(
                f"{row['model']} {row['figure']}: {side} {_value(row['spans'], unit)} vs metrics "
                f"{_value(row['metrics'], unit)} ({limit} {unit})"
            )
    for row in doc.get("agents", {}).get("consistency", {}).get("rows", []):
        if row["flagged"]:
            failures.append(
                f"{row['model']} {row['figure']}: agent spans {row['agent']:.0f} vs their chat "
                f"spans {row['children']:.0f} {row['unit']}, {row['turns_disagreeing']} turn(s) "
                "disagree (must be equal)"
            )
    return {"strict": strict, "passed": not failures, "failures": failures}


def _value(value: float | None, unit: str) -> str:
    if value is None:
        return "none"
    if unit == "score":
        return f"{value:.3f}"
    return f"{value:.1f} {unit}" if unit == "ms" else f"{value:.0f}"


class _Coverage:
    """Which items (chat spans, evaluation results) a selection's metric points cover, per series
    (metric or evaluation name) and model: matched on the resource (one SDK per worker) unless a
    pipeline changed it (then on time alone), inside the points' intervals; the selection's own
    items recorded after their worker's last metric export are pending."""

    def __init__(
        self, archive_points: list[MetricPoint], keyed_points: list[MetricPoint], resources
    ) -> None:
        point_keys = {_resource_key(p.resource) for p in keyed_points}
        self.by_resource = any(_resource_key(r) in point_keys for r in resources)
        self.exported_until = _last_exports(archive_points, self.key)
        self.merged: dict[tuple[str, str], _Merged] = defaultdict(_Merged)
        self._cover: dict[tuple[str, str, tuple], tuple[int, int]] = {}

    def key(self, resource: dict[str, Any]) -> tuple:
        return _resource_key(resource) if self.by_resource else ()

    def add(self, point: MetricPoint, model: str, series: str) -> None:
        self.merged[(model, series)].add(point)
        start = point.start_ns or point.time_ns
        k = (series, model, self.key(point.resource))
        low, high = self._cover.get(k, (start, point.time_ns))
        self._cover[k] = (min(low, start), max(high, point.time_ns))

    def split(self, items, series: str, model: str, *, selected, at, resource):
        """(covered items, how many of them are outside the selection, pending selected ones)."""
        covered, extra, pending = [], 0, 0
        for item in items:
            k = self.key(resource(item))
            if selected(item):
                if at(item) > self.exported_until.get(k, 0):
                    pending += 1
                else:
                    covered.append(item)
                continue
            low, high = self._cover.get((series, model, k), (0, -1))
            if low < at(item) <= high:
                covered.append(item)
                extra += 1
        return covered, extra, pending


def _last_exports(points: Iterable[MetricPoint], key) -> dict[tuple, int]:
    """The time of the last metric export of each worker (`key` of a point's resource)."""
    last: dict[tuple, int] = defaultdict(int)
    for point in points:
        k = key(point.resource)
        last[k] = max(last[k], point.time_ns)
    return last
