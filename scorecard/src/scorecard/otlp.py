"""Read the collector's local archive: OTLP JSON lines written by the `file` exporter.

Every line is one export request: {"resourceSpans": [...]}, {"resourceMetrics": [...]} or
{"resourceLogs": [...]}. Traces, metrics and logs live in separate files of one folder;
rotated files (`traces-<timestamp>.jsonl`, optionally `.gz`) sit alongside and are read too.
A last line cut short by a writer still writing (no final newline) is skipped with a warning;
any other unparsable line is corrupt.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import EXIT_BAD_INPUT, EXIT_NO_DATA, ScorecardError

SPAN_KINDS = {
    0: "UNSPECIFIED",
    1: "INTERNAL",
    2: "SERVER",
    3: "CLIENT",
    4: "PRODUCER",
    5: "CONSUMER",
}
STATUS_CODES = {0: "UNSET", 1: "OK", 2: "ERROR"}
TEMPORALITY = {0: "UNSPECIFIED", 1: "DELTA", 2: "CUMULATIVE"}
SIGNAL_KEYS = ("resourceSpans", "resourceMetrics", "resourceLogs")
IGNORED_KEYS = ("resourceProfiles",)
ARCHIVE_SUFFIXES = (".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz", ".ndjson.gz")
_SCHEMA_URL = re.compile(r"/schemas/(\d+)\.(\d+)(?:\.(\d+))?/?$")
SUPPORTED_SCHEMA_MAJOR = 1
MAX_REPORTED_LOCATIONS = 5


@dataclass
class Span:
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_span_id: str
    start_ns: int
    end_ns: int
    status_code: str
    status_message: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    events: list[dict[str, Any]]

    @property
    def duration_s(self) -> float:
        return max(0, self.end_ns - self.start_ns) / 1e9


@dataclass
class MetricPoint:
    name: str
    unit: str
    type: str
    temporality: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    start_ns: int
    time_ns: int
    count: int = 0
    sum: float | None = None
    bucket_counts: list[int] = field(default_factory=list)
    explicit_bounds: list[float] = field(default_factory=list)
    value: float | None = None


@dataclass
class LogRecord:
    time_ns: int
    event_name: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    trace_id: str
    span_id: str
    body: Any


@dataclass
class ReadStats:
    files: list[str] = field(default_factory=list)
    lines: int = 0
    records: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SIGNAL_KEYS, 0))
    truncated: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    ignored: int = 0
    warnings: list[str] = field(default_factory=list)


@dataclass
class Archive:
    spans: list[Span]
    points: list[MetricPoint]
    logs: list[LogRecord]
    stats: ReadStats


def any_value(value: dict[str, Any] | None) -> Any:
    """Decode an OTLP JSON AnyValue (int64 arrive as strings)."""
    if not isinstance(value, dict) or not value:
        return None
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "arrayValue" in value:
        return [any_value(item) for item in (value["arrayValue"] or {}).get("values", [])]
    if "kvlistValue" in value:
        return attributes((value["kvlistValue"] or {}).get("values", []))
    if "bytesValue" in value:
        return value["bytesValue"]
    return None


def attributes(items: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {item["key"]: any_value(item.get("value")) for item in items or [] if "key" in item}


def _int(value: Any, default: int = 0) -> int:
    if value is None or value == "":
        return default
    return int(value)


def _enum(value: Any, names: dict[int, str], prefix: str) -> str:
    if isinstance(value, str):
        return value.removeprefix(prefix) if not value.isdigit() else names.get(int(value), value)
    return names.get(_int(value), str(value))


def archive_files(path: Path) -> list[Path]:
    """The archive's files, oldest first (rotated backups before the live file)."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ScorecardError(
            f"archive not found: {path} (the collector's file-exporter folder: run the stack "
            "with `make up`, send traffic, or pass --archive)",
            EXIT_NO_DATA,
        )
    found = [
        item
        for item in path.rglob("*")
        if item.is_file() and not item.name.startswith(".") and item.name.endswith(ARCHIVE_SUFFIXES)
    ]
    return sorted(found, key=lambda item: (item.stat().st_mtime_ns, item.name))


def _open_lines(path: Path) -> tuple[list[str], bool]:
    """The file's lines and whether it ends with a newline (a missing one = partial write)."""
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as handle:
                raw = handle.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError) as exc:
        raise ScorecardError(f"cannot read {path}: {exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScorecardError(f"{path} is not UTF-8 text (not an OTLP JSON file?): {exc}") from exc
    return text.splitlines(), text.endswith("\n")


def _check_schema_url(url: Any, where: str) -> None:
    if not url or "opentelemetry.io/schemas/" not in str(url):
        return
    match = _SCHEMA_URL.search(str(url))
    if match is None or int(match.group(1)) != SUPPORTED_SCHEMA_MAJOR:
        raise ScorecardError(
            f"{where}: unknown schema version {url!r} (this scorecard reads OpenTelemetry "
            f"schema {SUPPORTED_SCHEMA_MAJOR}.x)"
        )


def iter_records(path: Path, stats: ReadStats, skip_corrupt: bool) -> Iterator[tuple[str, dict]]:
    lines, ends_with_newline = _open_lines(path)
    last_nonblank = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        stats.lines += 1
        where = f"{path}:{index + 1}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            if index == last_nonblank and not ends_with_newline:
                stats.truncated.append(where)
                stats.warnings.append(f"skipped a truncated last line (partial write) at {where}")
                continue
            stats.corrupt.append(where)
            if skip_corrupt:
                continue
            raise ScorecardError(
                f"corrupt line at {where}: {exc.msg} (column {exc.colno}); "
                "rerun with --skip-corrupt to ignore corrupt lines"
            ) from exc
        if not isinstance(record, dict):
            raise ScorecardError(
                f"{where}: unknown schema: a JSON {type(record).__name__}, "
                "expected an OTLP export object"
            )
        signal = next((key for key in SIGNAL_KEYS if key in record), None)
        if signal is None:
            if any(key in record for key in IGNORED_KEYS):
                stats.ignored += 1
                continue
            keys = ", ".join(sorted(record)[:5]) or "none"
            raise ScorecardError(
                f"{where}: unknown schema: top-level keys [{keys}], expected one of "
                f"{', '.join(SIGNAL_KEYS)} (OTLP JSON from the collector's file exporter)"
            )
        if not isinstance(record[signal], list):
            raise ScorecardError(f"{where}: unknown schema: {signal} is not a list")
        stats.records[signal] += 1
        yield where, record


def _spans(record: dict, where: str) -> Iterator[Span]:
    for resource_spans in record["resourceSpans"]:
        _check_schema_url(resource_spans.get("schemaUrl"), where)
        resource = attributes((resource_spans.get("resource") or {}).get("attributes"))
        for scope_spans in resource_spans.get("scopeSpans") or []:
            _check_schema_url(scope_spans.get("schemaUrl"), where)
            for raw in scope_spans.get("spans") or []:
                if "traceId" not in raw or "spanId" not in raw or "startTimeUnixNano" not in raw:
                    raise ScorecardError(
                        f"{where}: unknown schema: a span without traceId/spanId/startTimeUnixNano"
                    )
                status = raw.get("status") or {}
                yield Span(
                    name=raw.get("name", ""),
                    kind=_enum(raw.get("kind", 0), SPAN_KINDS, "SPAN_KIND_"),
                    trace_id=raw["traceId"],
                    span_id=raw["spanId"],
                    parent_span_id=raw.get("parentSpanId", "") or "",
                    start_ns=_int(raw["startTimeUnixNano"]),
                    end_ns=_int(raw.get("endTimeUnixNano"), _int(raw["startTimeUnixNano"])),
                    status_code=_enum(status.get("code", 0), STATUS_CODES, "STATUS_CODE_"),
                    status_message=status.get("message", "") or "",
                    attributes=attributes(raw.get("attributes")),
                    resource=resource,
                    events=[
                        {
                            "name": event.get("name", ""),
                            "time_ns": _int(event.get("timeUnixNano")),
                            "attributes": attributes(event.get("attributes")),
                        }
                        for event in raw.get("events") or []
                    ],
                )


def _number(point: dict) -> float | None:
    if "asDouble" in point:
        return float(point["asDouble"])
    if "asInt" in point:
        return float(int(point["asInt"]))
    return None


def _points(record: dict, where: str) -> Iterator[MetricPoint]:
    for resource_metrics in record["resourceMetrics"]:
        _check_schema_url(resource_metrics.get("schemaUrl"), where)
        resource = attributes((resource_metrics.get("resource") or {}).get("attributes"))
        for scope_metrics in resource_metrics.get("scopeMetrics") or []:
            _check_schema_url(scope_metrics.get("schemaUrl"), where)
            for metric in scope_metrics.get("metrics") or []:
                name, unit = metric.get("name", ""), metric.get("unit", "")
                for kind in ("histogram", "sum", "gauge"):
                    if kind not in metric:
                        continue
                    body = metric[kind] or {}
                    temporality = _enum(
                        body.get("aggregationTemporality", 0),
                        TEMPORALITY,
                        "AGGREGATION_TEMPORALITY_",
                    )
                    for raw in body.get("dataPoints") or []:
                        point = MetricPoint(
                            name=name,
                            unit=unit,
                            type=kind,
                            temporality=temporality,
                            attributes=attributes(raw.get("attributes")),
                            resource=resource,
                            start_ns=_int(raw.get("startTimeUnixNano")),
                            time_ns=_int(raw.get("timeUnixNano")),
                        )
                        if kind == "histogram":
                            point.count = _int(raw.get("count"))
                            point.sum = float(raw["sum"]) if "sum" in raw else None
                            point.bucket_counts = [_int(c) for c in raw.get("bucketCounts") or []]
                            point.explicit_bounds = [
                                float(b) for b in raw.get("explicitBounds") or []
                            ]
                        else:
                            point.value = _number(raw)
                        yield point


def _logs(record: dict, where: str) -> Iterator[LogRecord]:
    for resource_logs in record["resourceLogs"]:
        _check_schema_url(resource_logs.get("schemaUrl"), where)
        resource = attributes((resource_logs.get("resource") or {}).get("attributes"))
        for scope_logs in resource_logs.get("scopeLogs") or []:
            for raw in scope_logs.get("logRecords") or []:
                attrs = attributes(raw.get("attributes"))
                yield LogRecord(
                    time_ns=_int(raw.get("timeUnixNano")) or _int(raw.get("observedTimeUnixNano")),
                    event_name=raw.get("eventName") or str(attrs.get("event.name") or ""),
                    attributes=attrs,
                    resource=resource,
                    trace_id=raw.get("traceId", "") or "",
                    span_id=raw.get("spanId", "") or "",
                    body=any_value(raw.get("body")),
                )


def read_archive(path: Path, skip_corrupt: bool = False) -> Archive:
    """Read every archive file; raise ScorecardError with a clear message on bad input."""
    stats = ReadStats()
    spans: list[Span] = []
    points: list[MetricPoint] = []
    logs: list[LogRecord] = []
    files = archive_files(path)
    if not files:
        raise ScorecardError(
            f"the archive {path} holds no telemetry files (*.json, *.jsonl, rotated or .gz): "
            "is the collector running in local mode and has traffic been sent?",
            EXIT_NO_DATA,
        )
    for file in files:
        stats.files.append(str(file))
        for where, record in iter_records(file, stats, skip_corrupt):
            try:
                if "resourceSpans" in record:
                    spans.extend(_spans(record, where))
                elif "resourceMetrics" in record:
                    points.extend(_points(record, where))
                else:
                    logs.extend(_logs(record, where))
            except (TypeError, ValueError, KeyError, AttributeError) as exc:
                raise ScorecardError(
                    f"{where}: unknown schema: {type(exc).__name__}: {exc}", EXIT_BAD_INPUT
                ) from exc
    if stats.corrupt:
        shown = ", ".join(stats.corrupt[:MAX_REPORTED_LOCATIONS])
        stats.warnings.append(f"skipped {len(stats.corrupt)} corrupt line(s): {shown}")
    if not spans and not points and not logs:
        raise ScorecardError(
            f"the archive {path} is empty: {len(files)} file(s), {stats.lines} line(s), "
            "no spans, metrics or logs",
            EXIT_NO_DATA,
        )
    return Archive(spans=spans, points=points, logs=logs, stats=stats)
