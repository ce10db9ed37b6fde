"""Render bench/results.json into docs/performance.md (one table plus per-benchmark notes).

    python bench/report.py [--results bench/results.json] [--doc docs/performance.md]

The table shows the latest full (non --quick) record of each benchmark; a benchmark measured only
in quick mode is shown as such. The prose around the table lives in bench/performance_notes.md
(hand-written: what each number means, where the time goes, what was changed).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
NOTES = BENCH_DIR / "performance_notes.md"
ORDER = (
    "instrumentation_overhead",
    "instrumentation_per_chunk",
    "instrumentation_per_chunk_amortized",
    "saturation_throughput",
    "concurrent_streams",
    "mock_capacity",
    "loadgen_fidelity",
    "delivery_latency",
    "stack_footprint",
    "first_span",
    "evaluation_cpu",
    "evaluation_ttft_p50",
    "evaluation_ttft_p99",
)
NOT_IN_TABLE = ("chunk_path_profile",)


def latest(runs: list[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Latest record per benchmark, preferring full runs over quick ones."""
    chosen: dict[str, Mapping[str, Any]] = {}
    for run in runs:
        current = chosen.get(run["benchmark"])
        if current is None or (current["quick"] or not run["quick"]):
            chosen[run["benchmark"]] = run
    return chosen


def _value(run: Mapping[str, Any]) -> str:
    if run.get("status") != "measured" or run.get("value") is None:
        return f"not run: {run.get('reason', '')}".strip()
    value = run["value"]
    text = f"{value:.3g}" if isinstance(value, float) else str(value)
    verdict = {True: "met", False: "**missed**", None: "n/a"}[run.get("met")]
    quick = " (quick smoke run only)" if run.get("quick") else ""
    spread = ""
    if run.get("value_range"):
        low, high, count = run["value_range"]
        spread = f" (range {low:.3g} to {high:.3g} over {count} repetitions)"
    why = f": {run['reason']}" if run.get("reason") and run.get("met") is False else ""
    return f"{text} {run['unit']}{spread} - {verdict}{quick}{why}"


def _machine(info: Mapping[str, Any]) -> str:
    return (
        f"{info.get('cpus')} vCPU {info.get('cpu_model')}, {info.get('memory_gib')} GiB, "
        f"Linux {info.get('kernel')}, Python {info.get('python')}, "
        f"load avg {info.get('load_avg_1m', info.get('load_avg_1m_at_start'))}"
    )


def _cell(text: Any) -> str:
    return str(text).replace("|", "/").replace("\n", " ")


def table(chosen: Mapping[str, Mapping[str, Any]]) -> str:
    head = (
        "| Benchmark | Measured | Target | Anchor | How measured | Machine | Date |\n"
        "|---|---|---|---|---|---|---|\n"
    )
    rows = []
    names = [n for n in ORDER if n in chosen]
    names += sorted(set(chosen) - set(ORDER) - set(NOT_IN_TABLE))
    for name in names:
        run = chosen[name]
        rows.append(
            "| "
            + " | ".join(
                _cell(x)
                for x in (
                    f"{run['title']}: {run['metric']}",
                    _value(run),
                    run["target"],
                    run["anchor"],
                    run["method"],
                    _machine(run["machine"]),
                    run["date"],
                )
            )
            + " |"
        )
    return head + "\n".join(rows) + "\n"


def profile_section(chosen: Mapping[str, Mapping[str, Any]]) -> str:
    """The py-spy profile (bench/profile_chunk_path.py) as two small tables."""
    run = chosen.get("chunk_path_profile")
    if not run or run.get("status") != "measured":
        reason = run.get("reason", "") if run else "bench/profile_chunk_path.py has not run"
        return f"## Where the time goes (profile)\n\nNot measured: {reason}\n"
    on = run["details"].get("telemetry on", {})
    off = run["details"].get("telemetry off", {})
    components = list(on.get("share_by_component", {}))
    components += [c for c in off.get("share_by_component", {}) if c not in components]
    lines = [
        "## Where the time goes (profile)\n",
        f"py-spy, {run['details'].get('seconds_per_variant')} s per variant, sequential "
        f"200-token streams from a zero-delay mock; {on.get('samples')} samples (telemetry on) "
        f"and {off.get('samples')} (off); {run['date']}, {_machine(run['machine'])}. Share of "
        "the worker's sampled CPU by component (innermost known frame):\n",
        "| Component | telemetry on | telemetry off |",
        "|---|---|---|",
    ]
    for component in components:
        a = on.get("share_by_component", {}).get(component)
        b = off.get("share_by_component", {}).get(component)
        lines.append(
            f"| {component} | {'' if a is None else f'{a:.1f} %'} | "
            f"{'' if b is None else f'{b:.1f} %'} |"
        )
    lines += ["", "Telemetry time by entry point (telemetry on):\n", "| Entry point | share |"]
    lines.append("|---|---|")
    for entry, share in on.get("telemetry_entry_points", {}).items():
        lines.append(f"| `{_cell(entry)}` | {share:.1f} % |")
    lines += ["", "Top leaf functions (telemetry on):\n", "| Function | share |", "|---|---|"]
    for entry, share in on.get("top_leaf_functions", {}).items():
        lines.append(f"| `{_cell(entry)}` | {share:.1f} % |")
    return "\n".join(lines) + "\n"


def details_section(chosen: Mapping[str, Mapping[str, Any]]) -> str:
    parts = ["## Raw details of the runs in the table\n"]
    names = [n for n in ORDER if n in chosen] + sorted(set(chosen) - set(ORDER))
    for name in names:
        run = chosen[name]
        if name in NOT_IN_TABLE:
            continue
        parts.append(f"### {run['title']}\n")
        if run.get("reason"):
            parts.append(f"Reason: {run['reason']}\n")
        parts.append("```json\n" + json.dumps(run.get("details", {}), indent=1)[:6000] + "\n```\n")
    return "\n".join(parts)


def render(results: Path, doc: Path) -> None:
    data = json.loads(results.read_text()) if results.exists() else {"runs": []}
    chosen = latest(data.get("runs", []))
    notes = NOTES.read_text() if NOTES.exists() else ""
    intro, _, rest = notes.partition("<!-- TABLE -->")
    body = (
        (intro or "# Performance\n\n")
        + "<!-- generated by bench/report.py from bench/results.json: edit "
        + "bench/performance_notes.md -->\n\n"
        + table(chosen)
        + rest.replace("<!-- PROFILE -->", profile_section(chosen))
        + "\n"
        + details_section(chosen)
    )
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(body)


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--results", type=Path, default=BENCH_DIR / "results.json")
    cli.add_argument("--doc", type=Path, default=BENCH_DIR.parent / "docs" / "performance.md")
    args = cli.parse_args()
    render(args.results, args.doc)


if __name__ == "__main__":
    main()
