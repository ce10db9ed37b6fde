"""The LLM summary (llm-summary.json / .md) and the CI gate (exit code from thresholds)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

from loadgen.stats import Slo, summarize

EXIT_OK = 0
EXIT_NO_REQUESTS = 2
EXIT_THRESHOLD = 3


def evaluate_gate(
    overall: dict, max_error_rate: float | None, min_goodput_ratio: float | None
) -> dict:
    """{"passed", "exit_code", "violations": [...]} for the overall figures."""
    violations = []
    if overall["requests"] == 0:
        violations.append("no request completed")
        return {"passed": False, "exit_code": EXIT_NO_REQUESTS, "violations": violations}
    if max_error_rate is not None and overall["error_rate"] > max_error_rate:
        violations.append(
            f"error rate {overall['error_rate']:.4f} > LOADGEN_MAX_ERROR_RATE {max_error_rate}"
        )
    ratio = overall["goodput"]["ratio"]
    if min_goodput_ratio is not None and ratio < min_goodput_ratio:
        violations.append(
            f"goodput ratio {ratio:.4f} < LOADGEN_MIN_GOODPUT_RATIO {min_goodput_ratio}"
        )
    return {
        "passed": not violations,
        "exit_code": EXIT_THRESHOLD if violations else EXIT_OK,
        "violations": violations,
    }


ADVICE = (
    "This run measured the assistant, not the model: give it more workers (ASSISTANT_WORKERS), "
    "run fewer users (LOADGEN_USERS), or load the model directly (LOADGEN_TARGET=openai)."
)


def assistant_bottleneck(models: dict, threshold_ms: float) -> dict:
    """The models whose added TTFT p99 (client minus assistant, same request) exceeds the
    threshold: their latency figures describe the assistant under load more than the model."""
    over = {
        model: figures["assistant_added_ms"]["ttft"]["p99"]
        for model, figures in models.items()
        if (figures["assistant_added_ms"]["ttft"]["p99"] or 0) > threshold_ms
    }
    return {"threshold_ms": threshold_ms, "models": over, "advice": ADVICE if over else None}


def iso(epoch_s: float | None) -> str | None:
    if not epoch_s:
        return None
    millis = int(epoch_s % 1 * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_s)) + f".{millis:03d}Z"


def build_report(
    samples: Sequence[dict],
    *,
    settings: dict,
    metadata: dict,
    slo: Slo,
    max_error_rate: float | None,
    min_goodput_ratio: float | None,
    max_added_ttft_ms: float = 50.0,
) -> dict:
    summary = summarize(samples, slo)
    gate = evaluate_gate(summary["overall"], max_error_rate, min_goodput_ratio)
    window = summary["window"]
    meta = {
        **metadata,
        "first_request_at": iso(window["first_start_s"]),
        "last_response_at": iso(window["last_end_s"]),
        "workers_reporting": sorted({s.get("worker", 0) for s in samples}),
        "settings": settings,
    }
    return {
        "schema": "loadgen.llm-summary/1",
        "metadata": meta,
        **summary,
        "assistant_bottleneck": assistant_bottleneck(summary["models"], max_added_ttft_ms),
        "gate": gate,
    }


_DIST_COLUMNS = ("count", "p50", "p90", "p95", "p99", "mean", "min", "max")


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 100 else f"{value:.2f}"
    return str(value)


def render_markdown(report: dict) -> str:
    meta = report["metadata"]
    groups = [*report["models"].items(), ("**all**", report["overall"])]
    lines = [
        f"# LLM load report - run `{meta['run_id']}`",
        "",
        f"- target: {meta['settings']['target']} at {meta['settings']['host']}",
        f"- seed {meta['settings']['seed']}, users {meta['settings']['users']}, "
        f"shape {meta['settings']['shape']}, requests/user cap "
        f"{meta['settings']['requests_per_user']}",
        f"- from {meta['first_request_at']} to {meta['last_response_at']} "
        f"({report['window']['duration_s']} s); locust {meta.get('locust_version')}, "
        f"loadgen {meta.get('loadgen_version')}",
        f"- gate: **{'PASS' if report['gate']['passed'] else 'FAIL'}**"
        + "".join(f"; {v}" for v in report["gate"]["violations"]),
        *_ratings_line(meta.get("simulated_ratings")),
        "",
    ]
    for key, title in (
        ("ttft_ms", "Time to first token (ms)"),
        ("tpot_ms", "Time per output token (ms)"),
        ("itl_ms", "Inter-token gaps (ms)"),
        ("e2e_ms", "End-to-end latency (ms)"),
    ):
        lines += [f"## {title}", "", "| model | " + " | ".join(_DIST_COLUMNS) + " |"]
        lines.append("|---" * (len(_DIST_COLUMNS) + 1) + "|")
        for name, group in groups:
            row = [_fmt(group[key][c]) for c in _DIST_COLUMNS]
            lines.append(f"| {name} | " + " | ".join(row) + " |")
        lines.append("")
    lines += [
        "## Throughput, goodput, errors, feedback",
        "",
        "| model | requests | failed | error rate | req/s | out tok total | out tok/s | "
        "peak tok/s | user tok/s p50 | goodput req/s | goodput ratio | simulated "
        "ratings n | mean simulated score |",
        "|---" * 13 + "|",
    ]
    for name, g in groups:
        row = [
            g["requests"],
            g["failed"],
            g["error_rate"],
            g["requests_per_s"],
            g["output_tokens"]["total"],
            g["output_tokens_per_s"],
            g["peak_output_tokens_per_s"],
            g["output_tokens_per_s_per_request"]["p50"],
            g["goodput"]["requests_per_s"],
            g["goodput"]["ratio"],
            g["feedback"]["count"],
            g["feedback"]["mean_score"],
        ]
        lines.append(f"| {name} | " + " | ".join(_fmt(v) for v in row) + " |")
    lines += _agent_turns(groups)
    lines += _added_latency(report, groups)
    lines += ["", "## Errors by kind", ""]
    errors = report["overall"]["errors_by_kind"]
    lines += [f"- {kind}: {count}" for kind, count in errors.items()] or ["- none"]
    slo = meta["settings"]["slo_ms"]
    lines += [
        "",
        f"SLOs (0 = not set): TTFT {slo['ttft']} ms, TPOT {slo['tpot']} ms, E2E {slo['e2e']} ms. "
        "Percentiles are exact (linear interpolation) over raw samples of successful requests.",
        "",
    ]
    return "\n".join(lines)


def _ratings_line(ratings: dict | None) -> list[str]:
    """Whether the feedback figures are simulated ratings, and why (or why there are none)."""
    if not ratings:
        return []
    if ratings["simulated"]:
        return [
            f"- feedback: **simulated** ratings of {ratings['rate']:.0%} of the answers "
            f"({ratings['reason']}); they reflect errors, latency, truncation and a word-overlap "
            "heuristic only, not answer quality"
        ]
    return [f"- feedback: no simulated ratings ({ratings['reason']})"]


def _agent_turns(groups: list) -> list[str]:
    """The shop agent's turns (only when some sample came from it)."""
    agents = [(name, g["agent"]) for name, g in groups if g.get("agent")]
    if not agents:
        return []
    lines = [
        "",
        "## Agent turns",
        "",
        "Answers of the assistant's shop agent: model calls (steps) and tool calls per answer,",
        "tool errors per tool call, answers the step limit ended, and the time to the answer's",
        "first words (TTFT above may stop earlier, at a tool call).",
        "",
        "| model | answers | steps/answer | tool calls/answer | tool calls | tool errors | "
        "tool error rate | step-limit rate | time to answer p50 | p90 | p99 |",
        "|---" * 11 + "|",
    ]
    for name, a in agents:
        answer = a["time_to_answer_ms"]
        row = [
            a["answers"],
            a["steps_per_answer"],
            a["tool_calls_per_answer"],
            a["tool_calls"],
            a["tool_errors"],
            a["tool_error_rate"],
            a["step_limit_rate"],
            answer["p50"],
            answer["p90"],
            answer["p99"],
        ]
        lines.append(f"| {name} | " + " | ".join(_fmt(v) for v in row) + " |")
    return lines


def _added_latency(report: dict, groups: list) -> list[str]:
    """The latency the assistant added (client minus the assistant's own figure, per request)."""
    if not report["overall"]["assistant_added_ms"]["ttft"]["count"]:
        return []
    lines = [
        "",
        "## Latency the assistant added (ms)",
        "",
        "Client minus the assistant's own figure of the same request (its `done` event): small",
        "when the model, not the assistant, decides what users wait.",
        "",
        "| model | TTFT p50 | TTFT p99 | E2E p50 | E2E p99 |",
        "|---|---|---|---|---|",
    ]
    for name, g in groups:
        added = g["assistant_added_ms"]
        row = [added["ttft"]["p50"], added["ttft"]["p99"], added["e2e"]["p50"], added["e2e"]["p99"]]
        lines.append(f"| {name} | " + " | ".join(_fmt(v) for v in row) + " |")
    bottleneck = report["assistant_bottleneck"]
    if bottleneck["models"]:
        names = ", ".join(bottleneck["models"])
        lines += [
            "",
            f"**Warning:** added TTFT p99 above {_fmt(bottleneck['threshold_ms'])} ms for {names}. "
            + bottleneck["advice"],
        ]
    return lines


def write_samples(samples: Sequence[dict], report_dir: Path) -> Path:
    """Every raw sample, one JSON object a line (for your own analysis and the tests)."""
    report_dir.mkdir(parents=True, exist_ok=True)
    path = report_dir / "llm-samples.jsonl"
    ordered = sorted(samples, key=lambda s: (s.get("worker", 0), s.get("user", 0), s.get("seq", 0)))
    with path.open("w", encoding="utf-8") as out:
        for sample in ordered:
            out.write(json.dumps(sample, separators=(",", ":")) + "\n")
    return path


def write_report(report: dict, report_dir: Path) -> tuple[Path, Path]:
    report_dir.mkdir(parents=True, exist_ok=True)
    json_path = report_dir / "llm-summary.json"
    md_path = report_dir / "llm-summary.md"
    tmp = json_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(json_path)
    md_path.write_text(render_markdown(report), encoding="utf-8")
    return json_path, md_path
