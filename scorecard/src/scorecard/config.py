"""Command-line flags with environment fallbacks, parsed and validated once."""

from __future__ import annotations

import argparse
import math
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .errors import EXIT_USAGE, ScorecardError

WEIGHT_NAMES = ("latency", "cost", "satisfaction", "quality")
DEFAULT_WEIGHTS = "latency=1,cost=1,satisfaction=1"
DEFAULT_QUALITY_WEIGHT = "1"
_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Slo:
    ttft_p90_ms: float
    e2e_p90_ms: float
    error_rate: float


@dataclass(frozen=True)
class Settings:
    archive: Path
    loadgen_summary: Path | None
    since_s: float | None
    until_s: float | None
    run_id: str | None
    out: Path
    slo: Slo
    weights: dict[str, float]
    prices: Path | None
    tolerance_pct: float
    tolerance_ms: float
    min_requests: int
    min_ratings: int
    skip_corrupt: bool
    strict: bool = False
    max_added_ttft_ms: float = 50.0
    min_evaluations: int = 20


def parse_time(text: str, flag: str, now: datetime | None = None) -> float:
    """ISO 8601 (naive = UTC), Unix seconds, or a duration ago such as `30m`, `2h`."""
    text = text.strip()
    now = now or datetime.now(UTC)
    relative = _RELATIVE.match(text)
    if relative:
        return (
            now - timedelta(seconds=float(relative.group(1)) * _UNITS[relative.group(2)])
        ).timestamp()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ScorecardError(
            f"{flag}: {text!r} is not a time (use ISO 8601 like 2026-11-26T17:00:00Z, "
            "Unix seconds, or a duration ago like 30m)",
            EXIT_USAGE,
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def parse_weights(text: str, quality: str | None = None) -> dict[str, float]:
    """`latency=2,cost=1,satisfaction=1` (unnamed weights keep their default of 1); the quality
    weight comes from `quality` (--weight-quality) or `quality=` in the list, not both."""
    weights = dict.fromkeys(WEIGHT_NAMES, 1.0)
    named = {piece.partition("=")[0].strip().lower() for piece in text.split(",") if piece.strip()}
    if quality is not None:
        if "quality" in named:
            raise ScorecardError(
                "--weights names quality and --weight-quality (or SCORECARD_WEIGHT_QUALITY) "
                "is given too: use one of them",
                EXIT_USAGE,
            )
        weights["quality"] = _float(quality, "--weight-quality")
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        name, _, value = part.partition("=")
        name = name.strip().lower()
        if name not in weights:
            raise ScorecardError(
                f"--weights: unknown weight {name!r} (known: {', '.join(WEIGHT_NAMES)})", EXIT_USAGE
            )
        try:
            weights[name] = float(value)
        except ValueError as exc:
            raise ScorecardError(f"--weights: {part!r} needs a number", EXIT_USAGE) from exc
        if weights[name] < 0 or not math.isfinite(weights[name]):
            raise ScorecardError(f"--weights: {name} must be >= 0", EXIT_USAGE)
    if sum(weights.values()) <= 0:
        raise ScorecardError("--weights: at least one weight must be positive", EXIT_USAGE)
    return weights


def _env(name: str, default: str) -> str:
    return os.environ.get(name, "").strip() or default


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _float(value: str, name: str, low: float = 0.0, high: float = math.inf) -> float:
    try:
        number = float(value)
    except ValueError as exc:
        raise ScorecardError(f"{name}: {value!r} is not a number", EXIT_USAGE) from exc
    if not (low <= number <= high) or not math.isfinite(number):
        raise ScorecardError(f"{name}: {number} is outside [{low}, {high}]", EXIT_USAGE)
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scorecard",
        description="Score LLM models from the collector's local telemetry archive: "
        "latency, TTFT, tokens/s, errors, cost and user satisfaction per model.",
    )
    add = parser.add_argument
    add(
        "--archive",
        default=_env("SCORECARD_ARCHIVE", "telemetry/archive"),
        help="the collector's file-exporter folder or one file "
        "(env SCORECARD_ARCHIVE; default telemetry/archive, where compose writes it)",
    )
    add(
        "--loadgen-summary",
        default=_env("SCORECARD_LOADGEN_SUMMARY", ""),
        help="the load generator's llm-summary.json (compose: reports/loadgen/llm-summary.json) "
        "for client vs server latencies; its run's time window is used unless --since/--until",
    )
    add(
        "--since",
        default=_env("SCORECARD_SINCE", ""),
        help="window start: ISO 8601, Unix seconds or a duration ago (30m)",
    )
    add("--until", default=_env("SCORECARD_UNTIL", ""), help="window end (same formats)")
    add(
        "--run-id",
        default=_env("SCORECARD_RUN_ID", ""),
        help="select traces carrying this load-run id (span or resource attribute)",
    )
    add("--out", default=_env("SCORECARD_OUT", "reports"), help="output folder (default reports)")
    add(
        "--slo-ttft-p90-ms",
        default=_env("SCORECARD_SLO_TTFT_P90_MS", "1000"),
        help="SLO: TTFT p90 in ms (env SCORECARD_SLO_TTFT_P90_MS; default 1000)",
    )
    add(
        "--slo-e2e-p90-ms",
        default=_env("SCORECARD_SLO_E2E_P90_MS", "10000"),
        help="SLO: end-to-end p90 in ms (env SCORECARD_SLO_E2E_P90_MS; default 10000)",
    )
    add(
        "--slo-error-rate",
        default=_env("SCORECARD_SLO_ERROR_RATE", "0.05"),
        help="SLO: highest error rate, 0-1 (env SCORECARD_SLO_ERROR_RATE; default 0.05)",
    )
    add(
        "--weights",
        default=_env("SCORECARD_WEIGHTS", DEFAULT_WEIGHTS),
        help="ranking weights (env SCORECARD_WEIGHTS; default latency=1,cost=1,satisfaction=1; "
        "quality=N is accepted too, or use --weight-quality)",
    )
    add(
        "--weight-quality",
        default=os.environ.get("SCORECARD_WEIGHT_QUALITY", "").strip() or None,
        help="ranking weight of answer quality (the evaluations' pass rates) "
        f"(env SCORECARD_WEIGHT_QUALITY; default {DEFAULT_QUALITY_WEIGHT}: latency, cost and "
        "quality weigh the same)",
    )
    add(
        "--prices",
        default=_env("SCORECARD_PRICES", ""),
        help="JSON price table overriding the shipped one (USD per 1M tokens)",
    )
    add(
        "--tolerance-pct",
        default=_env("SCORECARD_TOLERANCE_PCT", "10"),
        help="client vs server disagreement tolerance, percent of the server figure (default 10)",
    )
    add(
        "--tolerance-ms",
        default=_env("SCORECARD_TOLERANCE_MS", "50"),
        help="client vs server disagreement tolerance floor, ms (default 50)",
    )
    add(
        "--max-added-ttft-ms",
        default=_env("SCORECARD_MAX_ADDED_TTFT_MS", "50"),
        help="a model's TTFT p99 added by the assistant (client TTFT - assistant TTFT, from the "
        "load generator summary) above this = the run measured the assistant, not the model "
        "(env SCORECARD_MAX_ADDED_TTFT_MS; default 50)",
    )
    add(
        "--min-requests",
        default=_env("SCORECARD_MIN_REQUESTS", "20"),
        help="fewer successful requests than this = too few data to rank a model (default 20)",
    )
    add(
        "--min-ratings",
        default=_env("SCORECARD_MIN_RATINGS", "10"),
        help="fewer ratings than this = satisfaction not used in the score (default 10)",
    )
    add(
        "--min-evaluations",
        default=_env("SCORECARD_MIN_EVALUATIONS", "20"),
        help="fewer results than this for any of the four evaluations = too few evaluations "
        "to judge a model's quality (env SCORECARD_MIN_EVALUATIONS; default 20)",
    )
    add(
        "--skip-corrupt",
        action="store_true",
        help="skip corrupt archive lines (with a warning) instead of failing",
    )
    add(
        "--strict",
        action="store_true",
        default=_flag("SCORECARD_STRICT"),
        help="after writing the reports, exit 5 if a client-vs-server row or a consistency "
        "check disagrees (env SCORECARD_STRICT=1)",
    )
    return parser


def parse_settings(argv: list[str] | None = None) -> Settings:
    args = build_parser().parse_args(argv)
    since = parse_time(args.since, "--since") if args.since else None
    until = parse_time(args.until, "--until") if args.until else None
    if since is not None and until is not None and since >= until:
        raise ScorecardError("--since must be before --until", EXIT_USAGE)
    min_requests = int(_float(args.min_requests, "--min-requests", 1, 1e9))
    min_ratings = int(_float(args.min_ratings, "--min-ratings", 1, 1e9))
    return Settings(
        archive=Path(args.archive),
        loadgen_summary=Path(args.loadgen_summary) if args.loadgen_summary else None,
        since_s=since,
        until_s=until,
        run_id=args.run_id or None,
        out=Path(args.out),
        slo=Slo(
            ttft_p90_ms=_float(args.slo_ttft_p90_ms, "--slo-ttft-p90-ms"),
            e2e_p90_ms=_float(args.slo_e2e_p90_ms, "--slo-e2e-p90-ms"),
            error_rate=_float(args.slo_error_rate, "--slo-error-rate", 0.0, 1.0),
        ),
        weights=parse_weights(args.weights, args.weight_quality),
        prices=Path(args.prices) if args.prices else None,
        tolerance_pct=_float(args.tolerance_pct, "--tolerance-pct"),
        tolerance_ms=_float(args.tolerance_ms, "--tolerance-ms"),
        min_requests=min_requests,
        min_ratings=min_ratings,
        skip_corrupt=args.skip_corrupt,
        strict=args.strict,
        max_added_ttft_ms=_float(args.max_added_ttft_ms, "--max-added-ttft-ms"),
        min_evaluations=int(_float(args.min_evaluations, "--min-evaluations", 1, 1e9)),
    )
