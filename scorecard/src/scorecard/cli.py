"""`python -m scorecard`: read the archive, score the models, write HTML, Markdown and JSON."""

from __future__ import annotations

import json
import math
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import agents, analysis, checks, quality, ranking, render
from .config import Settings, parse_settings
from .errors import EXIT_BAD_INPUT, EXIT_CHECKS_FAILED, ScorecardError
from .loadgen import read_summary
from .otlp import read_archive
from .prices import load_prices

SCHEMA_VERSION = 1


def build(settings: Settings) -> tuple[dict[str, Any], dict[str, dict[str, list[float]]]]:
    """The scorecard document (JSON-ready) and the samples its plots need."""
    archive = read_archive(settings.archive, skip_corrupt=settings.skip_corrupt)
    summary = read_summary(settings.loadgen_summary) if settings.loadgen_summary else None
    prices = load_prices(settings.prices)
    body, samples = analysis.analyse(archive, settings, prices, summary)
    ranked = ranking.rank(body["models"], settings)
    read = archive.stats
    doc = {
        "schema_version": SCHEMA_VERSION,
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "input": {
            "archive": str(settings.archive),
            "files": len(read.files),
            "lines": read.lines,
            "records": read.records,
            "truncated_lines": read.truncated,
            "corrupt_lines": read.corrupt,
            "warnings": read.warnings,
            "loadgen_summary": str(settings.loadgen_summary) if settings.loadgen_summary else None,
            "loadgen_run_id": summary.run_id if summary else None,
        },
        "selection": body["selection"],
        "slo": {
            "ttft_p90_ms": settings.slo.ttft_p90_ms,
            "e2e_p90_ms": settings.slo.e2e_p90_ms,
            "error_rate": settings.slo.error_rate,
        },
        "tolerance": {"pct": settings.tolerance_pct, "ms": settings.tolerance_ms},
        "client_vs_server_meaning": checks.CLIENT_VS_SERVER_MEANING,
        "min_requests": settings.min_requests,
        "min_ratings": settings.min_ratings,
        "min_evaluations": settings.min_evaluations,
        "prices": {"as_of": prices.as_of, "source": prices.source},
        "ratings_scale": body["ratings_scale"],
        "ratings": {**body["ratings"], "ranking_basis": ranked["satisfaction_basis"]},
        "quality": {**body["quality"], "ranking_basis": ranked["quality_basis"]},
        "models": body["models"],
        "ranking": ranked,
        "errors_over_time": body["errors_over_time"],
        "consistency": body["consistency"],
        "assistant_added": body["assistant_added"],
        "method": {
            "analysis": (analysis.__doc__ or "").strip(),
            "checks": (checks.__doc__ or "").strip(),
            "quality": (quality.__doc__ or "").strip(),
        },
    }
    if "agents" in body:  # only with agent turns: an archive without them is reported as before
        doc["agents"] = body["agents"]
        doc["method"]["agents"] = (agents.__doc__ or "").strip()
    doc["checks"] = checks.gate(doc, settings.strict)
    return doc, samples


def _clean(value: Any) -> Any:
    """JSON has no NaN/Infinity: write null instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def write(doc: dict[str, Any], samples: dict[str, dict[str, list[float]]], out: Path) -> list[Path]:
    try:
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / "scorecard.html", out / "scorecard.md", out / "scorecard.json"]
        paths[0].write_text(render.html(doc, samples), encoding="utf-8")
        paths[1].write_text(render.markdown(doc), encoding="utf-8")
        paths[2].write_text(
            json.dumps(_clean(doc), indent=2, sort_keys=False) + "\n", encoding="utf-8"
        )
    except OSError as exc:
        raise ScorecardError(f"cannot write the reports to {out}: {exc}", EXIT_BAD_INPUT) from exc
    return paths


def main(argv: list[str] | None = None) -> int:
    try:
        settings = parse_settings(argv)
        doc, samples = build(settings)
        paths = write(doc, samples, settings.out)
    except ScorecardError as exc:
        print(f"scorecard: error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    for warning in doc["input"]["warnings"] + doc["selection"]["notes"]:
        print(f"scorecard: warning: {warning}", file=sys.stderr)
    for note in doc["consistency"]["notes"]:
        print(f"scorecard: note: {note}", file=sys.stderr)
    print(doc["ranking"]["verdict"])
    for path in paths:
        print(f"wrote {path}")
    gate = doc["checks"]
    if settings.strict and not gate["passed"]:
        print(
            f"scorecard: strict: {len(gate['failures'])} check(s) disagree "
            f"(exit {EXIT_CHECKS_FAILED}); do not trust this run's telemetry until they agree:",
            file=sys.stderr,
        )
        for failure in gate["failures"]:
            print(f"scorecard: strict:   {failure}", file=sys.stderr)
        return EXIT_CHECKS_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
