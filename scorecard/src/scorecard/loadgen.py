"""Read the load generator's `llm-summary.json` (client-side view), tolerant of its layout.

Only what the scorecard compares is extracted: per model, TTFT and E2E percentiles in
milliseconds, request counts, the latency the assistant added (`assistant_added_ms`: client TTFT
minus the assistant-reported TTFT of the same request, client E2E minus the assistant's chat
duration; only against the assistant, and only in newer summaries), the run id and the run's
start/end times.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .errors import EXIT_BAD_INPUT, ScorecardError

PERCENTILES = ("p50", "p90", "p99")
DISTRIBUTION_KEYS = ("count", "p50", "p90", "p95", "p99", "mean", "min", "max")
ADDED_KEYS = ("assistant_added_ms", "assistant_added")
KNOWN_SCHEMA = "loadgen.llm-summary/1"
_MODEL_CONTAINERS = ("models", "per_model", "by_model")
_RUN_ID_KEYS = ("run_id", "load_run_id", "runId")
_START_KEYS = ("first_request_at", "started_at", "start_time", "start", "started")
_END_KEYS = (
    "last_response_at",
    "ended_at",
    "end_time",
    "end",
    "finished_at",
    "stopped_at",
    "ended",
)


@dataclass
class ClientModel:
    requests: int | None = None
    failed: int | None = None
    ttft_ms: dict[str, float] = field(default_factory=dict)
    e2e_ms: dict[str, float] = field(default_factory=dict)
    # {"ttft": {count, p50, ..., max}, "e2e": {...}} in ms; None = not measured (openai target,
    # older summary)
    added_ms: dict[str, dict[str, float | int | None]] | None = None


@dataclass
class LoadgenSummary:
    path: str
    run_id: str | None
    start_s: float | None
    end_s: float | None
    models: dict[str, ClientModel]


def _timestamp(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value) / (1e9 if value > 1e14 else 1.0)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def _first(mapping: dict, keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in mapping:
            return mapping[key]
    return None


def _percentiles(block: Any) -> dict[str, float]:
    """{'p50': ms, ...} from {'p50': 12.3} or {'p50_ms': 12.3}; seconds are converted."""
    if not isinstance(block, dict):
        return {}
    found: dict[str, float] = {}
    for name in PERCENTILES:
        for key, scale in ((name, 1.0), (f"{name}_ms", 1.0), (f"{name}_s", 1000.0)):
            value = block.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                found[name] = float(value) * scale
                break
    return found


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _distribution(block: Any) -> dict[str, float | int | None] | None:
    """{count, p50, p90, p95, p99, mean, min, max} in ms (`_ms`/`_s` suffixes accepted); None
    when the block holds no value at all (count 0 or missing percentiles = not measured)."""
    if not isinstance(block, dict):
        return None
    found: dict[str, float | int | None] = {}
    for name in DISTRIBUTION_KEYS:
        value = None
        for key, scale in ((name, 1.0), (f"{name}_ms", 1.0), (f"{name}_s", 1000.0)):
            number = _number(block.get(key))
            if number is not None:
                value = number if name == "count" else number * scale
                break
        found[name] = int(value) if name == "count" and value is not None else value
    if not found["count"] or found["p99"] is None:
        return None
    return found


def _added(entry: dict) -> dict[str, dict[str, float | int | None]] | None:
    block = _first(entry, ADDED_KEYS)
    if not isinstance(block, dict):
        return None
    added = {
        name: dist
        for name in ("ttft", "e2e")
        if (dist := _distribution(block.get(name) or block.get(f"{name}_ms"))) is not None
    }
    return added or None


def _metric_block(entry: dict, name: str) -> Any:
    for key in (name, f"{name}_ms", name.upper(), f"{name}_s"):
        if key in entry:
            return entry[key]
    latency = entry.get("latency") or entry.get("latencies") or {}
    return latency.get(name) if isinstance(latency, dict) else None


def _model_entries(data: dict) -> dict[str, dict]:
    for key in _MODEL_CONTAINERS:
        container = data.get(key)
        if isinstance(container, dict):
            return {str(k): v for k, v in container.items() if isinstance(v, dict)}
        if isinstance(container, list):
            return {
                str(item["model"]): item
                for item in container
                if isinstance(item, dict) and item.get("model")
            }
    return {}


def _count(entry: dict, *keys: str) -> int | None:
    for key in keys:
        value = entry.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, dict) and isinstance(value.get("count"), int):
            return value["count"]
    return None


def read_summary(path: Path) -> LoadgenSummary:
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ScorecardError(f"cannot read the load generator summary {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ScorecardError(f"{path} is not valid JSON: {exc}", EXIT_BAD_INPUT) from exc
    if not isinstance(data, dict):
        raise ScorecardError(f"{path}: unknown schema (expected a JSON object)", EXIT_BAD_INPUT)
    schema = data.get("schema")
    if schema is not None and not str(schema).startswith(KNOWN_SCHEMA):
        raise ScorecardError(
            f"{path}: unknown schema version {schema!r} (this scorecard reads {KNOWN_SCHEMA})",
            EXIT_BAD_INPUT,
        )
    meta = data.get("metadata") if isinstance(data.get("metadata"), dict) else data
    window = data.get("window") if isinstance(data.get("window"), dict) else {}
    run_id = _first(meta, _RUN_ID_KEYS) or _first(data, _RUN_ID_KEYS)
    start = _timestamp(window.get("first_start_s")) or _timestamp(
        _first(meta, _START_KEYS) or _first(data, _START_KEYS)
    )
    end = _timestamp(window.get("last_end_s")) or _timestamp(
        _first(meta, _END_KEYS) or _first(data, _END_KEYS)
    )
    entries = _model_entries(data)
    if not entries:
        raise ScorecardError(
            f"{path}: unknown schema: no per-model results (looked for "
            f"{', '.join(_MODEL_CONTAINERS)})",
            EXIT_BAD_INPUT,
        )
    models = {
        model: ClientModel(
            requests=_count(entry, "requests", "completed", "started", "count"),
            failed=_count(entry, "failed", "errors", "failures"),
            ttft_ms=_percentiles(_metric_block(entry, "ttft")),
            e2e_ms=_percentiles(_metric_block(entry, "e2e")),
            added_ms=_added(entry),
        )
        for model, entry in entries.items()
        if model.lower() not in ("overall", "all", "total", "aggregated")
    }
    return LoadgenSummary(
        path=str(path),
        run_id=str(run_id) if run_id else None,
        start_s=start,
        end_s=end,
        models=models,
    )
