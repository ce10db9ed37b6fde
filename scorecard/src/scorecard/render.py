"""Render the scorecard document as self-contained HTML (inline CSS and SVG) and Markdown."""

from __future__ import annotations

import re
from html import escape
from typing import Any

from . import svg

DASH = "\u2013"  # en dash for "no value"
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1100px;
padding:0 1rem;color:#222;line-height:1.4}
table{border-collapse:collapse;margin:.5rem 0 1.5rem;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.3rem .5rem;text-align:right;vertical-align:top;
white-space:nowrap}
td.l{white-space:normal;min-width:16rem}
.scroll{overflow-x:auto}
th:first-child,td:first-child,td.l{text-align:left}
th{background:#f4f4f4}
.miss{color:#b00020;font-weight:600}.ok{color:#1b7f3b}
.warn{background:#fff6e0;border:1px solid #f0c36d;padding:.5rem 1rem;margin:1rem 0}
.verdict{font-size:1.15rem;background:#eef5ff;border-left:4px solid #1f77b4;padding:.6rem 1rem}
section.model{border-top:2px solid #ddd;margin-top:2rem}
svg{max-width:100%;height:auto;display:block;margin:.5rem 0 1.5rem}
svg .t{font:600 14px sans-serif}svg .a{font:11px sans-serif;fill:#444}
code{background:#f4f4f4;padding:0 .2rem}
"""


def ms(value: float | None) -> str:
    return DASH if value is None else f"{value:,.0f} ms" if value >= 10 else f"{value:.1f} ms"


def pct(value: float | None) -> str:
    return DASH if value is None else f"{value:.1%}"


def usd(value: float | None) -> str:
    return DASH if value is None else f"${value:,.4f}" if value < 1 else f"${value:,.2f}"


def num(value: float | None, digits: int = 1) -> str:
    return DASH if value is None else f"{value:,.{digits}f}"


def satisfaction_text(block: dict[str, Any]) -> str:
    if not block["count"]:
        return f"{DASH} (0 ratings)"
    interval = ""
    if block["ci_low"] is not None:
        interval = f" [{block['ci_low']:.2f}, {block['ci_high']:.2f}]"
    return f"{block['mean']:.2f}{interval} (n={block['count']})"


def slug(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", model).strip("-") or "model"


# --- shared table rows ---------------------------------------------------------------------


def summary_rows(doc: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = [
        "Model",
        "Requests",
        "Error rate",
        "E2E p50",
        "E2E p90",
        "E2E p99",
        "TTFT p50",
        "TTFT p90",
        "TTFT p99",
        "Output tok/s (median)",
        "In tok/req",
        "Out tok/req",
        "Cost / 1k req",
        "Satisfaction [95% CI] (n)",
        "SLOs",
    ]
    rows = []
    for model, entry in doc["models"].items():
        rows.append(
            [
                model,
                str(entry["requests"]),
                pct(entry["error_rate"]),
                ms(entry["e2e_ms"]["p50"]),
                ms(entry["e2e_ms"]["p90"]),
                ms(entry["e2e_ms"]["p99"]),
                ms(entry["ttft_ms"]["p50"]),
                ms(entry["ttft_ms"]["p90"]),
                ms(entry["ttft_ms"]["p99"]),
                num(entry["output_tokens_per_s"]["median"]),
                num(entry["input_tokens_per_request"]),
                num(entry["output_tokens_per_request"]),
                usd(entry["cost_per_1k_requests_usd"]),
                satisfaction_text(entry["satisfaction"]),
                "met" if entry["slo_met"] else "MISSED",
            ]
        )
    return header, rows


def comparison_rows(doc: dict[str, Any]) -> list[list[str]]:
    rows = []
    for model, entry in doc["models"].items():
        for row in entry["client_vs_server"]:
            rows.append(
                [
                    model,
                    f"{row['metric']} {row['percentile']}",
                    ms(row["client_ms"]),
                    ms(row["server_ms"]),
                    f"{row['diff_ms']:+,.0f} ms",
                    ms(row["tolerance_ms"]),
                    "DISAGREE" if row["flagged"] else "ok",
                ]
            )
    return rows


COMPARISON_HEADER = [
    "Model",
    "Figure",
    "Client (loadgen)",
    "Server (spans)",
    "Difference",
    "Tolerance",
    "Check",
]


def detail_rows(entry: dict[str, Any]) -> list[list[str]]:
    metrics = entry["metrics"]
    m_dur = metrics.get("duration_ms") or {}
    m_ttft = metrics.get("ttft_ms") or {}
    rows = [
        [
            "Requests (chat spans)",
            str(entry["requests"]),
            f"{entry['successes']} ok, {entry['errors']} failed",
        ],
        ["Response models", ", ".join(entry["response_models"]) or DASH, ""],
        [
            "E2E p50 / p90 / p99 (spans)",
            " / ".join(ms(entry["e2e_ms"][p]) for p in ("p50", "p90", "p99")),
            entry["e2e_ms"]["source"],
        ],
        [
            "LLM call p50 / p90 / p99 (chat spans)",
            " / ".join(ms(entry["llm_call_ms"][p]) for p in ("p50", "p90", "p99")),
            "chat span duration",
        ],
        [
            "LLM call p50 / p90 / p99 (metrics)",
            " / ".join(ms(m_dur.get(p)) for p in ("p50", "p90", "p99")),
            f"{DURATION_NOTE} ({m_dur.get('count', 0)} records)",
        ],
        [
            "TTFT p50 / p90 / p99 (spans)",
            " / ".join(ms(entry["ttft_ms"][p]) for p in ("p50", "p90", "p99")),
            "gen_ai.response.time_to_first_chunk",
        ],
        [
            "TTFT p50 / p90 / p99 (metrics)",
            " / ".join(ms(m_ttft.get(p)) for p in ("p50", "p90", "p99")),
            f"{DURATION_NOTE} ({m_ttft.get('count', 0)} records)",
        ],
        [
            "Output tokens/s p10 / median / p90",
            " / ".join(num(entry["output_tokens_per_s"][k]) for k in ("p10", "median", "p90")),
            f"{entry['output_tokens_per_s']['count']} requests",
        ],
        [
            "Input / output tokens per request (spans)",
            f"{num(entry['input_tokens_per_request'])} / {num(entry['output_tokens_per_request'])}",
            f"{entry['requests_with_usage']} requests with usage",
        ],
        [
            "Input / output tokens per request (metrics)",
            f"{num(metrics.get('input_tokens_per_request'))} / "
            f"{num(metrics.get('output_tokens_per_request'))}",
            "gen_ai.client.token.usage",
        ],
        [
            "Estimated cost per 1k requests",
            usd(entry["cost_per_1k_requests_usd"]),
            (
                f"${entry['price_per_mtok_usd']['input']}/"
                f"${entry['price_per_mtok_usd']['output']} per 1M in/out"
                if entry["price_per_mtok_usd"]
                else "no price"
            ),
        ],
        [
            "Satisfaction (events)",
            satisfaction_text(entry["satisfaction"]),
            entry["satisfaction"]["interval"],
        ],
        [
            "Satisfaction (metric mean)",
            num(metrics.get("satisfaction_mean"), 2),
            f"gen_ai.evaluation.score, {metrics.get('satisfaction_count', 0)} records",
        ],
    ]
    for check in entry["slo"]:
        value = ms(check["value"]) if check["unit"] == "ms" else pct(check["value"])
        limit = ms(check["limit"]) if check["unit"] == "ms" else pct(check["limit"])
        rows.append([f"SLO {check['name']} <= {limit}", value, "met" if check["met"] else "MISSED"])
    return rows


DURATION_NOTE = "histogram estimate, bucket interpolation"


def error_rows(entry: dict[str, Any]) -> list[list[str]]:
    return [
        [kind, str(count), pct(count / entry["requests"])]
        for kind, count in entry["errors_by_type"].items()
    ]


# --- Markdown ------------------------------------------------------------------------------


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    def cell(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines)


def markdown(doc: dict[str, Any]) -> str:
    sel = doc["selection"]
    out = [
        "# Model scorecard",
        "",
        f"Generated {doc['generated_at']} from `{doc['input']['archive']}` "
        f"({doc['input']['files']} file(s), {doc['input']['lines']} line(s)). "
        f"Selection: {sel['method']}, {sel['start']} to {sel['end']}, {sel['calls']} LLM calls.",
        "",
    ]
    warnings = doc["input"]["warnings"] + sel["notes"]
    if warnings:
        out += ["**Warnings**", ""] + [f"- {w}" for w in warnings] + [""]
    ranking = doc["ranking"]
    out += ["## Verdict", "", f"**{ranking['verdict']}**", "", "## Ranking", ""]
    if ranking["ranked"]:
        out.append(
            _md_table(
                ["Rank", "Model", "Score", "Reasoning"],
                [
                    [str(r["rank"]), r["model"], f"{r['score']:.3f}", "; ".join(r["reasons"])]
                    for r in ranking["ranked"]
                ],
            )
        )
        out.append("")
    for miss in ranking["slo_misses"]:
        out.append(f"- **{miss['model']}** misses the SLOs: {', '.join(miss['missed'])}")
    for item in ranking["insufficient_data"]:
        out.append(f"- **{item['model']}**: too few data ({item['reason']})")
    weights = ", ".join(f"{k}={v:g}" for k, v in ranking["weights"].items())
    out += ["", f"Weights: {weights}. SLOs: {_slo_text(doc)}.", "", "## Per model", ""]
    header, rows = summary_rows(doc)
    out += [_md_table(header, rows), ""]
    comparison = comparison_rows(doc)
    if comparison:
        tol = doc["tolerance"]
        out += [
            "## Client (load generator) vs server (telemetry)",
            "",
            f"Flagged when |client - server| > max({tol['ms']:g} ms, {tol['pct']:g}% of server).",
            "",
            _md_table(COMPARISON_HEADER, comparison),
            "",
        ]
    for model, entry in doc["models"].items():
        out += [f"### {model}", "", _md_table(["Figure", "Value", "Note"], detail_rows(entry)), ""]
        if entry["errors_by_type"]:
            out += [_md_table(["error.type", "Count", "Share of requests"], error_rows(entry)), ""]
        out += [f"- {note}" for note in entry["notes"]]
        if entry["notes"]:
            out.append("")
    out += [
        "## Method",
        "",
        "```",
        doc["method"]["analysis"],
        "",
        doc["ranking"]["method"],
        "```",
        "",
        f"Prices: {doc['prices']['source']} (as of {doc['prices']['as_of']}).",
        "",
    ]
    return "\n".join(out)


def _slo_text(doc: dict[str, Any]) -> str:
    slo = doc["slo"]
    return (
        f"TTFT p90 <= {slo['ttft_p90_ms']:g} ms, E2E p90 <= {slo['e2e_p90_ms']:g} ms, "
        f"error rate <= {slo['error_rate']:.1%}"
    )


# --- HTML ----------------------------------------------------------------------------------


def _html_table(
    header: list[str], rows: list[list[str]], classes: dict[str, str] | None = None
) -> str:
    classes = classes or {}
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for value in row:
            css = classes.get(value, "l" if len(str(value)) > LONG_TEXT else "")
            cells.append(
                f'<td class="{css}">{escape(str(value))}</td>'
                if css
                else f"<td>{escape(str(value))}</td>"
            )
        body.append("<tr>" + "".join(cells) + "</tr>")
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    return f'<div class="scroll">{table}</div>'


LONG_TEXT = 40  # longer cells are prose: left-aligned and wrapped
STATUS_CLASSES = {"MISSED": "miss", "DISAGREE": "miss", "met": "ok", "ok": "ok"}


def plots(doc: dict[str, Any], samples: dict[str, dict[str, list[float]]]) -> list[str]:
    models = list(doc["models"])
    charts = [
        svg.cdf(
            "End-to-end latency distribution (successful requests)",
            "E2E latency (ms)",
            {m: samples[m]["e2e_ms"] for m in models},
        )
    ]
    ttft = {(m, p): doc["models"][m]["ttft_ms"][p] for m in models for p in ("p50", "p90", "p99")}
    series = ["p50", "p90", "p99"]
    clients = {m: (doc["models"][m]["client"] or {}).get("ttft_ms", {}).get("p90") for m in models}
    if any(v is not None for v in clients.values()):
        series.append("client p90")
        ttft.update({(m, "client p90"): v for m, v in clients.items()})
    charts.append(
        svg.grouped_bars("TTFT by model (server spans; client p90)", "ms", models, series, ttft)
    )
    charts.append(
        svg.grouped_bars(
            "Output tokens/s by model (median per request)",
            "tokens/s",
            models,
            ["median"],
            {(m, "median"): doc["models"][m]["output_tokens_per_s"]["median"] for m in models},
        )
    )
    points = [
        (
            m,
            e["cost_per_1k_requests_usd"],
            e["satisfaction"]["mean"],
            e["satisfaction"]["ci_low"],
            e["satisfaction"]["ci_high"],
        )
        for m, e in doc["models"].items()
        if e["cost_per_1k_requests_usd"] is not None and e["satisfaction"]["mean"] is not None
    ]
    charts.append(
        svg.scatter(
            "Cost vs satisfaction (95% interval)",
            "USD per 1k requests",
            "mean satisfaction (0-1)",
            points,
        )
    )
    timeline = doc["errors_over_time"]
    charts.append(
        svg.time_lines(
            "Errors over time",
            "failed requests",
            [b["start_s"] for b in timeline["bins"]],
            timeline["bin_s"],
            {m: [b["errors"].get(m, 0) for b in timeline["bins"]] for m in models},
        )
    )
    return charts


def html(doc: dict[str, Any], samples: dict[str, dict[str, list[float]]]) -> str:
    sel = doc["selection"]
    ranking = doc["ranking"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>Model scorecard</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>Model scorecard</h1>",
        f"<p>Generated {escape(doc['generated_at'])} from "
        f"<code>{escape(doc['input']['archive'])}</code> "
        f"({doc['input']['files']} file(s), {doc['input']['lines']} line(s)). Selection: "
        f"{escape(sel['method'])}, {escape(sel['start'])} to {escape(sel['end'])}, "
        f"{sel['calls']} LLM calls.</p>",
    ]
    warnings = doc["input"]["warnings"] + sel["notes"]
    if warnings:
        parts.append(
            '<div class="warn"><strong>Warnings</strong><ul>'
            + "".join(f"<li>{escape(w)}</li>" for w in warnings)
            + "</ul></div>"
        )
    parts.append(
        f'<h2 id="verdict">Verdict</h2><p class="verdict">{escape(ranking["verdict"])}</p>'
    )
    parts.append('<h2 id="ranking">Ranking</h2>')
    if ranking["ranked"]:
        parts.append(
            _html_table(
                ["Rank", "Model", "Score", "Latency", "Cost", "Satisfaction", "Reasoning"],
                [
                    [
                        str(r["rank"]),
                        r["model"],
                        f"{r['score']:.3f}",
                        *(f"{r['components'][k]:.2f}" for k in ("latency", "cost", "satisfaction")),
                        "; ".join(r["reasons"]),
                    ]
                    for r in ranking["ranked"]
                ],
            )
        )
    items = [
        f'<li class="miss">{escape(m["model"])} misses the SLOs: '
        f"{escape(', '.join(m['missed']))}</li>"
        for m in ranking["slo_misses"]
    ]
    items += [
        f"<li>{escape(i['model'])}: too few data ({escape(i['reason'])})</li>"
        for i in ranking["insufficient_data"]
    ]
    if items:
        parts.append("<ul>" + "".join(items) + "</ul>")
    weights = ", ".join(f"{k}={v:g}" for k, v in ranking["weights"].items())
    parts.append(
        f"<p>Weights: {escape(weights)}. SLOs: {escape(_slo_text(doc))}. "
        "Method: see the end of this page.</p>"
    )
    header, rows = summary_rows(doc)
    parts += ['<h2 id="summary">All models</h2>', _html_table(header, rows, STATUS_CLASSES)]
    comparison = comparison_rows(doc)
    if comparison:
        tol = doc["tolerance"]
        parts += [
            '<h2 id="client-vs-server">Client (load generator) vs server (telemetry)</h2>',
            f"<p>Flagged when |client - server| &gt; max({tol['ms']:g} ms, {tol['pct']:g}% of "
            "server). The client figure includes the network and the assistant; the server "
            "E2E is the SERVER span, the server TTFT the LLM's first chunk.</p>",
            _html_table(COMPARISON_HEADER, comparison, STATUS_CLASSES),
        ]
    parts.append('<h2 id="plots">Plots</h2>')
    parts += plots(doc, samples)
    for index, (model, entry) in enumerate(doc["models"].items()):
        parts.append(
            f'<section class="model" id="model-{slug(model)}" data-model="{escape(model)}">'
        )
        parts.append(f"<h2>{escape(model)}</h2>")
        parts.append(_html_table(["Figure", "Value", "Note"], detail_rows(entry), STATUS_CLASSES))
        if entry["errors_by_type"]:
            parts.append(
                _html_table(["error.type", "Count", "Share of requests"], error_rows(entry))
            )
        else:
            parts.append("<p>No failed requests.</p>")
        parts.append(
            svg.histogram(
                f"{model}: E2E latency histogram",
                "E2E latency (ms)",
                samples[model]["e2e_ms"],
                fill=svg.color(index),
            )
        )
        if entry["notes"]:
            parts.append(
                "<ul>" + "".join(f"<li>{escape(n)}</li>" for n in entry["notes"]) + "</ul>"
            )
        parts.append("</section>")
    parts += [
        '<h2 id="method">Method</h2>',
        f"<pre>{escape(doc['method']['analysis'])}</pre>",
        f"<pre>{escape(ranking['method'])}</pre>",
        f"<p>Prices: {escape(doc['prices']['source'])} "
        f"(as of {escape(doc['prices']['as_of'])}).</p>",
        "</body></html>",
    ]
    return "\n".join(parts)
