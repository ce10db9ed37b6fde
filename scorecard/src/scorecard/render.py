"""Render the scorecard document as self-contained HTML (inline CSS and SVG) and Markdown."""

from __future__ import annotations

import re
from html import escape
from typing import Any

from . import svg
from .errors import EXIT_CHECKS_FAILED as STRICT_EXIT

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
    simulated = " simulated" if block.get("simulated") else ""
    return f"{block['mean']:.2f}{interval} (n={block['count']}{simulated})"


def judged_by(block: dict[str, Any]) -> str:
    """Who judged a quality block: the mock judge (SIMULATED) and/or the real judge models."""
    labels = block.get("judges") or []
    if labels and isinstance(labels[0], dict):
        labels = [j["label"] for j in labels]
    if not labels:
        return "no judge"
    text = ", ".join(labels)
    return f"SIMULATED: {text}" if block.get("simulated") else f"measured by {text}"


def quality_text(block: dict[str, Any], figures: dict[str, Any] | None = None) -> str:
    """`0.85 [0.80, 0.90] (n=120, SIMULATED: mock judge ...)` for a model or an evaluation."""
    figures = figures or block
    if not figures["count"]:
        return f"{DASH} (0 evaluations)"
    interval = ""
    if figures.get("ci_low") is not None:
        interval = f" [{figures['ci_low']:.2f}, {figures['ci_high']:.2f}]"
    return f"{figures['mean']:.2f}{interval} (n={figures['count']}, {judged_by(block)})"


def model_quality_text(entry: dict[str, Any]) -> str:
    block = entry["quality"]
    text = quality_text(block, block["overall"])
    if block["overall"]["count"] and not block["enough_evaluations"]:
        text += "; too few evaluations to judge quality"
    return text


QUALITY_HEADER = ["Model", "Evaluation", "Pass rate [95% CI]", "Results", "Judge", "Simulated"]
QUALITY_OVERALL = "quality (mean of the four)"
TOOL_ROW_NOTE = "agent turns with tool calls; not in quality"


def quality_rows(doc: dict[str, Any]) -> list[list[str]]:
    rows = []
    for model, entry in doc["models"].items():
        block = entry["quality"]
        for name, figures in block["evaluations"].items():
            rows.append(
                [
                    model,
                    name,
                    _interval_text(figures),
                    str(figures["count"]),
                    ", ".join(figures["judges"]) or DASH,
                    "SIMULATED" if figures["simulated"] else "no" if figures["count"] else DASH,
                ]
            )
        overall = block["overall"]
        rows.append(
            [
                model,
                QUALITY_OVERALL,
                _interval_text(overall)
                + ("" if block["enough_evaluations"] else "; too few evaluations to judge quality"),
                str(overall["count"]),
                ", ".join(j["label"] for j in block["judges"]) or DASH,
                "SIMULATED" if block["simulated"] else "no" if overall["count"] else DASH,
            ]
        )
        for name, figures in block.get("tool_evaluations", {}).items():
            rows.append(
                [
                    model,
                    f"{name} ({TOOL_ROW_NOTE})",
                    _interval_text(figures),
                    str(figures["count"]),
                    ", ".join(figures["judges"]) or DASH,
                    "SIMULATED" if figures["simulated"] else "no" if figures["count"] else DASH,
                ]
            )
    return rows


JUDGE_COST_HEADER = [
    "Judge",
    "Evaluated answers",
    "Results",
    "Judge calls",
    "Input tokens",
    "Output tokens",
    "Estimated judge cost",
    "Cost / 1k evaluated answers",
    "Note",
]


def judge_cost_rows(doc: dict[str, Any]) -> list[list[str]]:
    return [
        [
            row["label"],
            str(row["evaluated_answers"]),
            str(row["results"]),
            str(row["judge_calls"]),
            f"{row['input_tokens']:,}",
            f"{row['output_tokens']:,}",
            usd(row["cost_usd"]),
            usd(row["cost_per_1k_evaluated_answers_usd"]),
            row["cost_text"],
        ]
        for row in doc["quality"]["judge_cost"]["judges"]
    ]


def judge_cost_intro(doc: dict[str, Any]) -> str:
    text = f"Judge cost: {doc['quality']['judge_cost']['definition']}."
    if any(row["cost_usd"] is not None for row in doc["quality"]["judge_cost"]["judges"]):
        text += f" Prices: {doc['prices']['source']} (as of {doc['prices']['as_of']})."
    return text


def _interval_text(figures: dict[str, Any]) -> str:
    if not figures["count"] or figures["mean"] is None:
        return DASH
    if figures.get("ci_low") is None:
        return f"{figures['mean']:.2f}"
    return f"{figures['mean']:.2f} [{figures['ci_low']:.2f}, {figures['ci_high']:.2f}]"


def quality_intro(doc: dict[str, Any]) -> str:
    q = doc["quality"]
    basis = q["ranking_basis"]
    text = (
        f"From the judge's gen_ai.evaluation.result events ({', '.join(q['evaluations'])}; "
        "scores 0-1, 1 is good, so a mean is a pass rate), the latest result per response and "
        "evaluation; 95% interval: Wilson for 0/1 scores, else Student-t. "
        f"{q['definition'][0].upper()}{q['definition'][1:]}. "
        f"{q['results']} result(s): {q['simulated_results']} SIMULATED (mock judge), "
        f"{q['measured_results']} measured by a real judge model. SIMULATED means "
        f"{q['simulated_meaning']}. A model needs {q['min_evaluations']} results of every "
        "evaluation, else: too few evaluations to judge quality. "
    )
    if basis["in_score"]:
        text += f"In the ranking's score: {', '.join(basis['models'])}."
    else:
        text += "No ranked model has enough evaluations: quality is left out of the score."
    return text


def quality_chart(doc: dict[str, Any], models: list[str] | None = None) -> str:
    """Pass rates by model and evaluation with 95 % whiskers; the title says who judged."""
    models = models if models is not None else list(doc["models"])
    names = doc["quality"]["evaluations"]
    values = {}
    for model in models:
        block = doc["models"][model]["quality"]
        for name in names:
            figures = block["evaluations"][name]
            if figures["count"]:
                values[(model, name)] = (figures["mean"], figures["ci_low"], figures["ci_high"])
    judged = [m for m in models if doc["models"][m]["quality"]["judges"]]
    simulated = [m for m in judged if doc["models"][m]["quality"]["simulated"]]
    if len(models) == 1:
        block = doc["models"][models[0]]["quality"]
        real = ", ".join(j["label"] for j in block["judges"] if not j["simulated"])
        label = "; SIMULATED: mock judge" if simulated else f"; measured by {real}" if real else ""
        return svg.interval_bars(
            f"{models[0]}: answer quality by evaluation (95% CI{label})",
            "pass rate",
            list(names),
            ["pass rate"],
            {(n, "pass rate"): v for (_, n), v in values.items()},
        )
    if simulated and simulated == judged:
        label = "; SIMULATED: mock judge"
    elif simulated:
        label = f"; SIMULATED (mock judge): {', '.join(simulated)}"
    else:
        label = ""
    return svg.interval_bars(
        f"Answer quality: pass rate by model and evaluation (95% CI{label})",
        "pass rate",
        models,
        list(names),
        values,
    )


def basis_label(doc: dict[str, Any]) -> str:
    """What the ranking's satisfaction column is made of."""
    kind = doc["ranking"]["satisfaction_basis"]["ratings"]
    return {"real": "real ratings", "simulated": "SIMULATED ratings"}.get(kind, "no ratings")


def ratings_text(doc: dict[str, Any]) -> str:
    """One line: how many ratings are real and simulated, and what the ranking used."""
    ratings = doc["ratings"]
    text = (
        f"Ratings: {ratings['real']} real, {ratings['synthetic']} simulated "
        f"({ratings['synthetic_when']}). Ranking: {ratings['ranking_basis']['text']}."
    )
    if ratings["synthetic"] and ratings["ranking_basis"]["ratings"] != "simulated":
        text += f" Simulated ratings: {ratings['simulated_meaning']}."
    return text


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
        "Satisfaction, real users [95% CI] (n)",
        "Satisfaction, SIMULATED [95% CI] (n)",
        "Quality (evaluations) [95% CI] (n, judge)",
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
                satisfaction_text(entry["satisfaction"]["real"]),
                satisfaction_text(entry["satisfaction"]["synthetic"]),
                model_quality_text(entry),
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


def _p50_p99(block: dict[str, Any] | None) -> str:
    if not block or not block.get("count"):
        return "not measured"
    return f"{ms(block.get('p50'))} / {ms(block.get('p99'))} (n={block['count']})"


def added_status(added: dict[str, Any]) -> str:
    if not added["measured"]:
        return "not measured"
    return "ASSISTANT MEASURED" if added["flagged"] else "ok"


ADDED_HEADER = [
    "Model",
    "Around the call p50 / p99",
    "Before the call p50 / p99",
    "Added TTFT p50 / p99",
    "Added E2E p50 / p99",
    "Check",
]


def added_rows(doc: dict[str, Any]) -> list[list[str]]:
    rows = []
    for model, entry in doc["models"].items():
        added = entry["assistant_added"]
        client = added["client"] or {}
        rows.append(
            [
                model,
                _p50_p99(added["server_spans"]),
                _p50_p99(added["server_spans"]["before_call"]),
                _p50_p99(client.get("ttft")),
                _p50_p99(client.get("e2e")),
                added_status(added),
            ]
        )
    return rows


def added_intro(doc: dict[str, Any]) -> str:
    limit = doc["assistant_added"]["limit_ms"]
    return (
        "Around the call: from the archive, per successful call, the SERVER span's duration "
        "minus the chat span's (the assistant's own time around the LLM call; before the call: "
        "the part up to the LLM request). Added TTFT and E2E: from the load generator summary, "
        "per request, the client's TTFT minus the TTFT the assistant reported for it, and the "
        "client's E2E minus the assistant's chat duration (queueing, the assistant, the "
        f"network). Flagged when the added TTFT p99 exceeds {limit:g} ms. "
        + doc["assistant_added"]["meaning"]
    )


CONSISTENCY_HEADER = ["Model", "Figure", "Spans", "Metrics", "Difference", "Tolerance", "Check"]


def _consistency_value(row: dict[str, Any], value: float | None) -> str:
    if value is None:
        return DASH
    if row["unit"] == "score":
        return f"{value:.3f}"
    if row["kind"] == "mean":
        return ms(value)
    return f"{value:,.0f}"


def _difference(row: dict[str, Any]) -> str:
    if row["difference"] is None:
        return DASH
    if row["unit"] == "score":
        return f"{round(row['difference'], 3) + 0.0:+.3f}"
    if row["kind"] == "mean":
        return f"{round(row['difference'], 1) + 0.0:+,.1f} ms"  # + 0.0: no "-0.0"
    return f"{row['difference']:+,.0f}"


def consistency_rows(doc: dict[str, Any]) -> list[list[str]]:
    suffix = {"count": " (count)", "sum": " (sum)", "mean": ""}
    return [
        [
            row["model"],
            row["figure"] + suffix[row["kind"]],
            _consistency_value(row, row["spans"]),
            _consistency_value(row, row["metrics"]),
            _difference(row),
            "equal"
            if row["tolerance"] == 0
            else f"{row['tolerance']:.3f}"
            if row["unit"] == "score"
            else ms(row["tolerance"]),
            "DISAGREE" if row["flagged"] else "ok",
        ]
        for row in doc["consistency"]["rows"]
    ]


def consistency_intro(doc: dict[str, Any]) -> str:
    tol = doc["consistency"]["tolerance"]
    return (
        "The assistant records every figure twice: on the chat span and in a histogram. Per "
        "model, over the calls the selection's metric points cover: counts and token sums must "
        f"be equal, means within max({tol['mean_ms']:g} ms, {tol['mean_pct']:g}% of the "
        "metric's). Evaluations: the gen_ai.evaluation.result events (Spans column) vs the "
        "gen_ai.evaluation.score histogram with that evaluation name, counts equal and means "
        "within max(0.001, 2% of the metric's). "
        + (
            "Tool calls: the execute_tool spans vs the execute_tool points of "
            "gen_ai.client.operation.duration, per model and tool, equal. "
            if "agents" in doc
            else ""
        )
        + "A DISAGREE means "
        + doc["consistency"]["meaning"]
    )


SHOWN_FAILURES = 4  # on the Checks line; the sections below list every row


def checks_text(doc: dict[str, Any]) -> str:
    gate = doc["checks"]
    if not gate["passed"]:
        mode = f" (--strict: exit code {STRICT_EXIT})" if gate["strict"] else ""
        shown = gate["failures"][:SHOWN_FAILURES]
        more = len(gate["failures"]) - len(shown)
        return (
            f"Checks: {len(gate['failures'])} disagree{mode}; do not trust this run's telemetry "
            "until they agree: "
            + "; ".join(shown)
            + (f"; and {more} more (see below)" if more else "")
        )
    compared = any(entry["client_vs_server"] for entry in doc["models"].values())
    client = (
        "client vs server agree"
        if compared
        else "client vs server not compared (no load generator summary of this run)"
    )
    spans = (
        "spans vs metrics agree"
        if doc["consistency"]["checked"]
        else "spans vs metrics not checked (no metrics in the archive)"
    )
    agents = "; agent turns agree with their spans" if "agents" in doc else ""
    return f"Checks: {client}; {spans}{agents}."


def meaning_lines(doc: dict[str, Any]) -> list[str]:
    """What a client-vs-server disagreement means, for the metrics that have one."""
    flagged = {
        row["metric"]
        for entry in doc["models"].values()
        for row in entry["client_vs_server"]
        if row["flagged"]
    }
    return [
        f"A {metric} disagreement means: {doc['client_vs_server_meaning'][metric]}"
        for metric in ("TTFT", "E2E")
        if metric in flagged
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
            "Satisfaction, real users (events)",
            satisfaction_text(entry["satisfaction"]["real"]),
            entry["satisfaction"]["real"]["interval"] + _used(entry, "real"),
        ],
        [
            "Satisfaction, SIMULATED (events)",
            satisfaction_text(entry["satisfaction"]["synthetic"]),
            entry["satisfaction"]["synthetic"]["interval"]
            + "; load generator (synthetic_request=true): latency, errors, truncation and a "
            "content heuristic only, not answer quality" + _used(entry, "simulated"),
        ],
        [
            "Satisfaction (metric mean)",
            num(metrics.get("satisfaction_mean"), 2),
            f"gen_ai.evaluation.score, {metrics.get('satisfaction_count', 0)} records, real and "
            "simulated together (the metric has no synthetic marker)",
        ],
    ]
    block = entry["quality"]
    rows.append(
        [
            "Quality (mean of the four evaluations)",
            model_quality_text(entry),
            block["judge_text"] + ("; used in the ranking" if block["used_in_ranking"] else ""),
        ]
    )
    for name, figures in block["evaluations"].items():
        rows.append(
            [
                f"Evaluation {name} (pass rate)",
                quality_text(figures),
                figures["interval"] if figures["count"] else "no results",
            ]
        )
    for name, figures in block.get("tool_evaluations", {}).items():
        rows.append(
            [
                f"Evaluation {name} (pass rate; {TOOL_ROW_NOTE})",
                quality_text(figures),
                figures["judge_text"],
            ]
        )
    for check in entry["slo"]:
        value = ms(check["value"]) if check["unit"] == "ms" else pct(check["value"])
        limit = ms(check["limit"]) if check["unit"] == "ms" else pct(check["limit"])
        rows.append([f"SLO {check['name']} <= {limit}", value, "met" if check["met"] else "MISSED"])
    return rows


DURATION_NOTE = "histogram estimate, bucket interpolation"


def _used(entry: dict[str, Any], kind: str) -> str:
    return "; used in the ranking" if entry["satisfaction"].get("used_in_ranking") == kind else ""


def error_rows(entry: dict[str, Any]) -> list[list[str]]:
    return [
        [kind, str(count), pct(count / entry["requests"])]
        for kind, count in entry["errors_by_type"].items()
    ]


# --- agent turns (only with invoke_agent spans; see agents.py) -------------------------------

AGENT_HEADER = [
    "Model",
    "Answers",
    "Failed",
    "Tool calls / answer",
    "Tool error rate",
    "Steps / answer",
    "Step-limit rate",
    "Time to answer p50",
    "Time to answer p90",
    "In tok / answer",
    "Out tok / answer",
    "Cost / answer",
]
TOOL_HEADER = ["Model", "Tool", "Calls", "Error rate", "Duration p50", "Duration p90"]
AGENT_CHECK_HEADER = [
    "Model",
    "Figure",
    "Agent spans",
    "Chat spans",
    "Difference",
    "Turns disagreeing",
    "Check",
]


def agent_models(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(m, e["agents"]) for m, e in doc["models"].items() if "agents" in e]


def agent_rows(doc: dict[str, Any]) -> list[list[str]]:
    return [
        [
            model,
            str(block["answers"]),
            str(block["failed"]),
            num(block["tool_calls_per_answer"], 2),
            pct(block["tool_error_rate"]),
            num(block["steps_per_answer"], 2),
            pct(block["step_limit_rate"]),
            ms(block["time_to_answer_ms"]["p50"]),
            ms(block["time_to_answer_ms"]["p90"]),
            num(block["input_tokens_per_answer"]),
            num(block["output_tokens_per_answer"]),
            usd(block["cost_per_answer_usd"]),
        ]
        for model, block in agent_models(doc)
    ]


def tool_rows(doc: dict[str, Any]) -> list[list[str]]:
    return [
        [
            model,
            name,
            str(tool["calls"]),
            pct(tool["error_rate"]),
            ms(tool["duration_ms"]["p50"]),
            ms(tool["duration_ms"]["p90"]),
        ]
        for model, block in agent_models(doc)
        for name, tool in block["tools"].items()
    ]


def agent_check_rows(doc: dict[str, Any]) -> list[list[str]]:
    return [
        [
            row["model"],
            row["figure"],
            f"{row['agent']:,.0f}",
            f"{row['children']:,.0f}",
            f"{row['difference']:+,.0f}",
            str(row["turns_disagreeing"]),
            "DISAGREE" if row["flagged"] else "ok",
        ]
        for row in doc["agents"]["consistency"]["rows"]
    ]


def agent_intro(doc: dict[str, Any]) -> str:
    block = doc["agents"]
    return (
        f"The shop agent's turns: {block['answers']} invoke_agent span(s) of the selection "
        f"({', '.join(block['models'])}), each parenting its chat calls and execute_tool runs. "
        "Time to answer: assistant.agent.time_to_answer (first model call's start to the "
        "answer's first text token); tokens per answer: the agent span's usage (summed over "
        "its model calls); cost per answer: the price table on each chat call's tokens, summed "
        "per turn; tool durations: successful runs. Definitions: scorecard/README.md, "
        '"Agent turns", and the Method below.'
    )


def agent_check_intro(doc: dict[str, Any]) -> str:
    return (
        "Per model: assistant.agent.steps vs the turn's chat spans, and the agent span's "
        "input/output tokens vs the sum of its chat spans'; equal, turn by turn. A DISAGREE "
        "means " + doc["agents"]["consistency"]["meaning"]
    )


def agent_detail_rows(block: dict[str, Any]) -> list[list[str]]:
    answer = block["time_to_answer_ms"]
    rows = [
        ["Answers (invoke_agent spans)", str(block["answers"]), f"{block['failed']} failed"],
        [
            "Tool calls per answer",
            num(block["tool_calls_per_answer"], 2),
            f"{block['tool_calls']} execute_tool spans",
        ],
        [
            "Tool error rate",
            pct(block["tool_error_rate"]),
            f"{block['tool_errors']} of {block['tool_calls']} with error.type",
        ],
        [
            "Steps (model calls) per answer",
            num(block["steps_per_answer"], 2),
            f"assistant.agent.steps, {block['answers_with_steps']} answers",
        ],
        [
            "Step-limit rate",
            pct(block["step_limit_rate"]),
            f"{block['step_limit_answers']} answers stopped at max_steps",
        ],
        [
            "Time to final answer p50 / p90",
            f"{ms(answer['p50'])} / {ms(answer['p90'])}",
            f"assistant.agent.time_to_answer, {answer['count']} answers",
        ],
        [
            "Input / output tokens per answer",
            f"{num(block['input_tokens_per_answer'])} / {num(block['output_tokens_per_answer'])}",
            f"agent span usage, {block['answers_with_usage']} answers with usage",
        ],
        [
            "Estimated cost per answer",
            usd(block["cost_per_answer_usd"]),
            "price table on each chat call's tokens, summed per turn",
        ],
    ]
    for name, tool in block["tools"].items():
        rows.append(
            [
                f"Tool {name}: calls, error rate, p50 / p90",
                f"{tool['calls']}, {pct(tool['error_rate'])}, "
                f"{ms(tool['duration_ms']['p50'])} / {ms(tool['duration_ms']['p90'])}",
                f"{tool['errors']} errors; durations of {tool['duration_ms']['count']} "
                "successful runs",
            ]
        )
    return rows


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
    out += ["## Verdict", "", f"**{ranking['verdict']}**", "", checks_text(doc), ""]
    out += [ratings_text(doc), ""]
    out += ["## Ranking", ""]
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
    out += ["", f"Weights: {weights}. SLOs: {_slo_text(doc)}.", ""]
    out += [
        "## Answer quality (evaluations)",
        "",
        quality_intro(doc),
        "",
        _md_table(QUALITY_HEADER, quality_rows(doc)),
        "",
    ]
    out += [f"- {m}: {e['quality']['judge_text']}" for m, e in doc["models"].items()]
    if doc["quality"]["judge_cost"]["judges"]:
        out += ["", judge_cost_intro(doc), "", _md_table(JUDGE_COST_HEADER, judge_cost_rows(doc))]
    out += ["", "## Per model", ""]
    header, rows = summary_rows(doc)
    out += [_md_table(header, rows), ""]
    if "agents" in doc:
        out += [
            "## Agent turns",
            "",
            agent_intro(doc),
            "",
            _md_table(AGENT_HEADER, agent_rows(doc)),
        ]
        out += ["", _md_table(TOOL_HEADER, tool_rows(doc)), "", agent_check_intro(doc), ""]
        out += [_md_table(AGENT_CHECK_HEADER, agent_check_rows(doc)), ""]
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
        out += [f"**{line}**" for line in meaning_lines(doc)]
        if meaning_lines(doc):
            out.append("")
    out += [
        "## Latency the assistant added",
        "",
        added_intro(doc),
        "",
        _md_table(ADDED_HEADER, added_rows(doc)),
        "",
    ]
    if doc["assistant_added"]["message"]:
        out += [f"**{doc['assistant_added']['message']}**", ""]
    out += [f"- {m}: {e['assistant_added']['text']}" for m, e in doc["models"].items()] + [""]
    out += ["## Consistency (spans vs metrics)", "", consistency_intro(doc), ""]
    if doc["consistency"]["rows"]:
        out += [_md_table(CONSISTENCY_HEADER, consistency_rows(doc)), ""]
    out += [f"- {note}" for note in doc["consistency"]["notes"]]
    if doc["consistency"]["notes"]:
        out.append("")
    for model, entry in doc["models"].items():
        out += [f"### {model}", "", _md_table(["Figure", "Value", "Note"], detail_rows(entry)), ""]
        if "agents" in entry:
            rows = agent_detail_rows(entry["agents"])
            out += ["Agent turns:", "", _md_table(["Figure", "Value", "Note"], rows), ""]
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
        doc["method"]["checks"],
        "",
        doc["method"]["quality"],
        "",
        *([doc["method"]["agents"], ""] if "agents" in doc["method"] else []),
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
QUALITY_CLASSES = {"SIMULATED": "miss"}
STATUS_CLASSES = {
    "MISSED": "miss",
    "DISAGREE": "miss",
    "ASSISTANT MEASURED": "miss",
    "met": "ok",
    "ok": "ok",
}


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
    # the ratings the ranking used (real ones whenever there are enough), never both mixed
    kind = doc["ranking"]["satisfaction_basis"]["ratings"] or "real"
    block = "synthetic" if kind == "simulated" else "real"
    points = [
        (
            m,
            e["cost_per_1k_requests_usd"],
            e["satisfaction"][block]["mean"],
            e["satisfaction"][block]["ci_low"],
            e["satisfaction"][block]["ci_high"],
        )
        for m, e in doc["models"].items()
        if e["cost_per_1k_requests_usd"] is not None
        and e["satisfaction"][block]["mean"] is not None
    ]
    charts.append(
        svg.scatter(
            "Cost vs satisfaction ("
            + ("SIMULATED ratings" if kind == "simulated" else "real users' ratings")
            + ", 95% interval)",
            "USD per 1k requests",
            "mean satisfaction (0-1)" + (", simulated" if kind == "simulated" else ""),
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
    css = "ok" if doc["checks"]["passed"] else "miss"
    parts.append(f'<p id="checks" class="{css}">{escape(checks_text(doc))}</p>')
    simulated = doc["ranking"]["satisfaction_basis"]["ratings"] == "simulated"
    warn = ' class="warn"' if simulated else ""
    parts.append(f'<p id="ratings"{warn}>{escape(ratings_text(doc))}</p>')
    parts.append('<h2 id="ranking">Ranking</h2>')
    if ranking["ranked"]:
        parts.append(
            _html_table(
                [
                    "Rank",
                    "Model",
                    "Score",
                    "Latency",
                    "Cost",
                    f"Satisfaction ({basis_label(doc)})",
                    "Quality" + (" (SIMULATED)" if ranking["quality_basis"]["simulated"] else ""),
                    "Reasoning",
                ],
                [
                    [
                        str(r["rank"]),
                        r["model"],
                        f"{r['score']:.3f}",
                        *(
                            DASH if r["components"].get(k) is None else f"{r['components'][k]:.2f}"
                            for k in ("latency", "cost", "satisfaction", "quality")
                        ),
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
    quality_class = ' class="warn"' if doc["quality"]["simulated_results"] else ""
    parts += [
        '<h2 id="quality">Answer quality (evaluations)</h2>',
        f"<p{quality_class}>{escape(quality_intro(doc))}</p>",
        _html_table(QUALITY_HEADER, quality_rows(doc), QUALITY_CLASSES),
        "<ul>"
        + "".join(
            f"<li>{escape(m)}: {escape(e['quality']['judge_text'])}</li>"
            for m, e in doc["models"].items()
        )
        + "</ul>",
    ]
    if doc["quality"]["judge_cost"]["judges"]:
        parts += [
            f'<p id="judge-cost">{escape(judge_cost_intro(doc))}</p>',
            _html_table(JUDGE_COST_HEADER, judge_cost_rows(doc)),
        ]
    parts += [
        quality_chart(doc),
    ]
    header, rows = summary_rows(doc)
    parts += ['<h2 id="summary">All models</h2>', _html_table(header, rows, STATUS_CLASSES)]
    if "agents" in doc:
        parts += [
            '<h2 id="agents">Agent turns</h2>',
            f"<p>{escape(agent_intro(doc))}</p>",
            _html_table(AGENT_HEADER, agent_rows(doc)),
            _html_table(TOOL_HEADER, tool_rows(doc)),
            f"<p>{escape(agent_check_intro(doc))}</p>",
            _html_table(AGENT_CHECK_HEADER, agent_check_rows(doc), STATUS_CLASSES),
        ]
    comparison = comparison_rows(doc)
    if comparison:
        tol = doc["tolerance"]
        parts += [
            '<h2 id="client-vs-server">Client (load generator) vs server (telemetry)</h2>',
            f"<p>Flagged when |client - server| &gt; max({tol['ms']:g} ms, {tol['pct']:g}% of "
            "server). The client figure includes the network and the assistant; the server "
            "E2E is the SERVER span, the server TTFT the LLM's first output-bearing chunk.</p>",
            _html_table(COMPARISON_HEADER, comparison, STATUS_CLASSES),
        ]
        parts += [f'<p class="warn">{escape(line)}</p>' for line in meaning_lines(doc)]
    parts += [
        '<h2 id="assistant-added">Latency the assistant added</h2>',
        f"<p>{escape(added_intro(doc))}</p>",
        _html_table(ADDED_HEADER, added_rows(doc), STATUS_CLASSES),
    ]
    if doc["assistant_added"]["message"]:
        parts.append(f'<p class="warn">{escape(doc["assistant_added"]["message"])}</p>')
    parts.append(
        "<ul>"
        + "".join(
            f"<li>{escape(m)}: {escape(e['assistant_added']['text'])}</li>"
            for m, e in doc["models"].items()
        )
        + "</ul>"
    )
    parts += [
        '<h2 id="consistency">Consistency (spans vs metrics)</h2>',
        f"<p>{escape(consistency_intro(doc))}</p>",
    ]
    if doc["consistency"]["rows"]:
        parts.append(_html_table(CONSISTENCY_HEADER, consistency_rows(doc), STATUS_CLASSES))
    if doc["consistency"]["notes"]:
        parts.append(
            "<ul>" + "".join(f"<li>{escape(n)}</li>" for n in doc["consistency"]["notes"]) + "</ul>"
        )
    parts.append('<h2 id="plots">Plots</h2>')
    parts += plots(doc, samples)
    for index, (model, entry) in enumerate(doc["models"].items()):
        parts.append(
            f'<section class="model" id="model-{slug(model)}" data-model="{escape(model)}">'
        )
        parts.append(f"<h2>{escape(model)}</h2>")
        parts.append(_html_table(["Figure", "Value", "Note"], detail_rows(entry), STATUS_CLASSES))
        if "agents" in entry:
            parts.append("<h3>Agent turns</h3>")
            parts.append(
                _html_table(["Figure", "Value", "Note"], agent_detail_rows(entry["agents"]))
            )
        if entry["errors_by_type"]:
            parts.append(
                _html_table(["error.type", "Count", "Share of requests"], error_rows(entry))
            )
        else:
            parts.append("<p>No failed requests.</p>")
        parts.append(quality_chart(doc, [model]))
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
        f"<pre>{escape(doc['method']['checks'])}</pre>",
        f"<pre>{escape(doc['method']['quality'])}</pre>",
        *([f"<pre>{escape(doc['method']['agents'])}</pre>"] if "agents" in doc["method"] else []),
        f"<pre>{escape(ranking['method'])}</pre>",
        f"<p>Prices: {escape(doc['prices']['source'])} "
        f"(as of {escape(doc['prices']['as_of'])}).</p>",
        "</body></html>",
    ]
    return "\n".join(parts)
