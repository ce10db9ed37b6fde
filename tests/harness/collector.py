"""Run the test collector exactly as compose.yaml runs the Splunk image, and read its archive.

The collector's mode is chosen only by environment variables, through which overlay files of
collector/modes/ are merged (see collector/README.md). `AGENT_COMMAND` and `GATEWAY_COMMAND` are the
command lines of compose.yaml, with Compose's `${VAR:+word}` interpolation left in; `config_args()`
interpolates them the way Compose does, so the tests run the very same files.

Archive readers turn the collector's OTLP JSON lines into flat dicts (`spans_from_otlp` etc.); the
same functions read what the fake Splunk ingest decoded (harness.fake_splunk).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import requests

from harness.prereq import ROOT, collector_binary
from harness.procs import ServiceProcess, free_port

CONFIG_DIR = ROOT / "collector"
CONTAINER_CONFIG_DIR = "/etc/otelcol"

AGENT_COMMAND = (
    "--config=/etc/otelcol/agent.yaml",
    "--config=/etc/otelcol/modes/splunk${SPLUNK_ACCESS_TOKEN:+-on}.yaml",
    "--config=/etc/otelcol/modes/hec${SPLUNK_HEC_URL:+-on}.yaml",
    "--config=/etc/otelcol/modes/via-gateway${SPLUNK_GATEWAY_URL:+-on}.yaml",
)
GATEWAY_COMMAND = (
    "--config=/etc/otelcol/gateway.yaml",
    "--config=/etc/otelcol/modes/splunk${SPLUNK_ACCESS_TOKEN:+-on}.yaml",
    "--config=/etc/otelcol/modes/hec${SPLUNK_HEC_URL:+-on}.yaml",
)
COMMANDS = {"agent": AGENT_COMMAND, "gateway": GATEWAY_COMMAND}

# Variables the collector configs read; scrubbed from the developer's environment in tests.
CONFIG_VARIABLES = (
    "SPLUNK_ACCESS_TOKEN",
    "SPLUNK_REALM",
    "SPLUNK_INGEST_URL",
    "SPLUNK_API_URL",
    "SPLUNK_HEC_URL",
    "SPLUNK_HEC_TOKEN",
    "SPLUNK_HEC_INDEX",
    "SPLUNK_HEC_TLS_INSECURE",
    "SPLUNK_GATEWAY_URL",
    "SPLUNK_GATEWAY_OTLP_PORT",
    "SPLUNK_LISTEN_INTERFACE",
    "SPLUNK_MEMORY_LIMIT_MIB",
    "DEPLOYMENT_ENVIRONMENT",
    "OTELCOL_DATA_DIR",
    "OTELCOL_OTLP_GRPC_PORT",
    "OTELCOL_OTLP_HTTP_PORT",
    "OTELCOL_HEALTH_PORT",
    "OTELCOL_METRICS_PORT",
    "OTELCOL_LOG_LEVEL",
    "OTELCOL_DEBUG_VERBOSITY",
    "OTELCOL_ARCHIVE_MAX_MEGABYTES",
    "OTELCOL_ARCHIVE_MAX_BACKUPS",
)

_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([+-])([^}]*))?\}")


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's interpolation, restricted to `${VAR}`, `${VAR:-default}` and `${VAR:+word}`."""

    def replace(match: re.Match) -> str:
        name, op, word = match.groups()
        value = env.get(name, "")
        if op == "+":
            return word if value else ""
        if op == "-":
            return value or word
        return value

    return _INTERPOLATION.sub(replace, text)


def config_args(role: str, env: Mapping[str, str], config_dir: Path = CONFIG_DIR) -> list[str]:
    """The `--config=...` arguments compose.yaml gives the `role` collector for this environment."""
    return [
        interpolate(arg, env).replace(CONTAINER_CONFIG_DIR, str(config_dir), 1)
        for arg in COMMANDS[role]
    ]


def mode_of(role: str, env: Mapping[str, str]) -> str:
    """`local`, `splunk` or (agent only) `gateway`, as the overlays chosen for `env` behave."""
    if role == "agent" and env.get("SPLUNK_GATEWAY_URL"):
        return "gateway"
    return "splunk" if env.get("SPLUNK_ACCESS_TOKEN") else "local"


# --- OTLP JSON (the collector's file exporter, or protobuf decoded by the fake) to flat dicts ---

SPAN_KINDS = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
STATUS_CODES = ("UNSET", "OK", "ERROR")
TEMPORALITIES = ("UNSPECIFIED", "DELTA", "CUMULATIVE")


def _enum(value: Any, names: tuple[str, ...], prefix: str) -> str:
    if isinstance(value, str) and not value.isdigit():
        return value.removeprefix(prefix)
    return names[int(value or 0)]


def _int_enum(value: Any) -> int | str:
    """An enum as its number (protobuf's JSON mapping may give the name instead)."""
    if isinstance(value, str) and not value.isdigit():
        return value
    return int(value or 0)


def _id(value: str | None) -> str:
    """Trace/span ids: hex in the collector's JSON, base64 in protobuf's JSON mapping."""
    if not value:
        return ""
    if re.fullmatch(r"[0-9a-f]{16}|[0-9a-f]{32}", value):
        return value
    return base64.b64decode(value).hex()


def any_value(value: Mapping[str, Any] | None) -> Any:
    """Decode an OTLP AnyValue."""
    if not value:
        return None
    (kind, inner), *_ = value.items()
    if kind == "intValue":
        return int(inner)
    if kind == "doubleValue":
        return float(inner)
    if kind == "arrayValue":
        return [any_value(v) for v in inner.get("values", [])]
    if kind == "kvlistValue":
        return attributes(inner.get("values", []))
    if kind == "bytesValue":
        return base64.b64decode(inner)
    return inner


def attributes(items: Iterable[Mapping[str, Any]] | None) -> dict[str, Any]:
    return {item["key"]: any_value(item.get("value")) for item in items or ()}


def _scoped(doc: Mapping[str, Any], resource_key: str, scope_key: str, items_key: str):
    for resource_block in doc.get(resource_key, []):
        resource = attributes(resource_block.get("resource", {}).get("attributes"))
        for scope_block in resource_block.get(scope_key, []):
            scope = scope_block.get("scope", {}).get("name", "")
            for item in scope_block.get(items_key, []):
                yield resource, scope, item


def spans_from_otlp(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Flat span dicts from one ExportTraceServiceRequest in OTLP JSON."""
    return [
        {
            "name": span.get("name", ""),
            "kind": _enum(span.get("kind"), SPAN_KINDS, "SPAN_KIND_"),
            "trace_id": _id(span.get("traceId")),
            "span_id": _id(span.get("spanId")),
            "parent_span_id": _id(span.get("parentSpanId")),
            "start_ns": int(span.get("startTimeUnixNano", 0)),
            "end_ns": int(span.get("endTimeUnixNano", 0)),
            "status_code": _enum(span.get("status", {}).get("code"), STATUS_CODES, "STATUS_CODE_"),
            "status_message": span.get("status", {}).get("message", ""),
            "attributes": attributes(span.get("attributes")),
            "resource": resource,
            "scope": scope,
            "events": [
                {
                    "name": event.get("name", ""),
                    "time_ns": int(event.get("timeUnixNano", 0)),
                    "attributes": attributes(event.get("attributes")),
                }
                for event in span.get("events", [])
            ],
        }
        for resource, scope, span in _scoped(doc, "resourceSpans", "scopeSpans", "spans")
    ]


def _number(point: Mapping[str, Any]) -> int | float | None:
    if "asInt" in point:
        return int(point["asInt"])
    if "asDouble" in point:
        return float(point["asDouble"])
    return None


def metric_points_from_otlp(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Flat data point dicts from one ExportMetricsServiceRequest in OTLP JSON."""
    points = []
    for resource, scope, metric in _scoped(doc, "resourceMetrics", "scopeMetrics", "metrics"):
        base = {
            "name": metric.get("name", ""),
            "unit": metric.get("unit", ""),
            "description": metric.get("description", ""),
            "resource": resource,
            "scope": scope,
        }
        for kind in ("sum", "gauge", "histogram", "exponentialHistogram", "summary"):
            if kind in metric:
                data = metric[kind]
                break
        else:
            continue
        for point in data.get("dataPoints", []):
            flat = {
                **base,
                "type": re.sub(r"(?<!^)([A-Z])", r"_\1", kind).lower(),
                "attributes": attributes(point.get("attributes")),
                "start_ns": int(point.get("startTimeUnixNano", 0)),
                "time_ns": int(point.get("timeUnixNano", 0)),
            }
            if "aggregationTemporality" in data:
                flat["temporality"] = _enum(
                    data["aggregationTemporality"], TEMPORALITIES, "AGGREGATION_TEMPORALITY_"
                )
            if kind in ("sum", "gauge"):
                flat["value"] = _number(point)
                flat["is_monotonic"] = bool(data.get("isMonotonic", False))
            elif kind == "histogram":
                flat["count"] = int(point.get("count", 0))
                flat["sum"] = float(point["sum"]) if "sum" in point else None
                flat["bucket_counts"] = [int(c) for c in point.get("bucketCounts", [])]
                flat["explicit_bounds"] = [float(b) for b in point.get("explicitBounds", [])]
                flat["min"] = float(point["min"]) if "min" in point else None
                flat["max"] = float(point["max"]) if "max" in point else None
            else:
                flat["count"] = int(point.get("count", 0))
                flat["sum"] = float(point["sum"]) if "sum" in point else None
                flat["raw"] = point
            points.append(flat)
    return points


def log_records_from_otlp(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Flat log record dicts from one ExportLogsServiceRequest in OTLP JSON."""
    return [
        {
            "body": any_value(record.get("body")),
            "severity_number": _int_enum(record.get("severityNumber")),
            "severity_text": record.get("severityText", ""),
            "event_name": record.get("eventName", ""),
            "attributes": attributes(record.get("attributes")),
            "resource": resource,
            "scope": scope,
            "trace_id": _id(record.get("traceId")),
            "span_id": _id(record.get("spanId")),
            "time_ns": int(record.get("timeUnixNano", 0)),
        }
        for resource, scope, record in _scoped(doc, "resourceLogs", "scopeLogs", "logRecords")
    ]


def read_jsonl(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """JSON documents of JSON-lines files; a line still being written is skipped."""
    docs = []
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            for line in path.read_text().splitlines():
                with contextlib.suppress(json.JSONDecodeError):
                    docs.append(json.loads(line))
    return docs


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # rotated away meanwhile
        return 0.0


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.2) -> Any:
    """Poll `predicate` until it returns something truthy; return it, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout:.0f}s: {predicate}")
        time.sleep(interval)


# --- the collector's own metrics (Prometheus text format) ---

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text: str) -> list[tuple[str, dict[str, str], float]]:
    samples = []
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and not line.startswith("#"):
            name, labels, value = match.groups()
            samples.append((name, dict(_LABEL.findall(labels or "")), float(value)))
    return samples


class Archive:
    """Reader of a telemetry archive folder (a test collector's, or the stack's ./telemetry/...)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def docs(self, signal: str) -> list[dict[str, Any]]:
        """OTLP JSON documents of `signal` (traces, metrics, logs), rotated files included."""
        return read_jsonl(sorted(self.path.glob(f"{signal}*.jsonl"), key=_mtime))

    def spans(self) -> list[dict[str, Any]]:
        return [span for doc in self.docs("traces") for span in spans_from_otlp(doc)]

    def metric_points(self, name: str | None = None) -> list[dict[str, Any]]:
        points = [p for doc in self.docs("metrics") for p in metric_points_from_otlp(doc)]
        return [p for p in points if name is None or p["name"] == name]

    def log_records(self) -> list[dict[str, Any]]:
        return [r for doc in self.docs("logs") for r in log_records_from_otlp(doc)]

    def wait_until(self, predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
        return wait_until(predicate, timeout)


class Collector:
    """A running test collector: endpoints, archive readers, own metrics, restart."""

    def __init__(self, name: str, role: str, argv: list[str], env: dict[str, str], log_dir: Path):
        self.name = name
        self.role = role
        self.env = env
        self.argv = argv
        self.log_dir = log_dir
        self.otlp_grpc = f"127.0.0.1:{env['OTELCOL_OTLP_GRPC_PORT']}"
        self.otlp_http = f"http://127.0.0.1:{env['OTELCOL_OTLP_HTTP_PORT']}"
        self.health_url = f"http://127.0.0.1:{env['OTELCOL_HEALTH_PORT']}/"
        self.metrics_url = f"http://127.0.0.1:{env['OTELCOL_METRICS_PORT']}/metrics"
        self.data_dir = Path(env["OTELCOL_DATA_DIR"])
        self.archive = self.data_dir / "archive"
        self.process: ServiceProcess | None = None

    # lifecycle
    def start(self, wait: bool = True, timeout: float = 30.0) -> Collector:
        self.process = ServiceProcess(self.name, self.argv, self.log_dir)
        self.process.env = dict(self.env)  # exactly this environment, nothing inherited
        self.process.start()
        if wait:
            self.process.wait_http(self.health_url, timeout=timeout)
        return self

    def stop(self, timeout: float = 20.0) -> int | None:
        return self.process.stop(timeout=timeout) if self.process else None

    def restart(self) -> Collector:
        self.stop()
        return self.start()

    def log(self) -> str:
        return self.process.log() if self.process else ""

    # archive
    def spans(self) -> list[dict[str, Any]]:
        return Archive(self.archive).spans()

    def metric_points(self, name: str | None = None) -> list[dict[str, Any]]:
        return Archive(self.archive).metric_points(name)

    def log_records(self) -> list[dict[str, Any]]:
        return Archive(self.archive).log_records()

    def wait_until(self, predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
        return wait_until(predicate, timeout)

    # own metrics
    def own_metrics(self) -> list[tuple[str, dict[str, str], float]]:
        return parse_prometheus(requests.get(self.metrics_url, timeout=5).text)

    def own_metric(self, name: str, **labels: str) -> float:
        """Sum of the collector's metric `name` (with or without `_total`) over matching labels."""
        return sum(
            value
            for sample, sample_labels, value in self.own_metrics()
            if sample in (name, f"{name}_total")
            and all(sample_labels.get(k) == v for k, v in labels.items())
        )


def collector_env(
    data_dir: Path, env: Mapping[str, str] | None = None, **ports: int
) -> dict[str, str]:
    """A clean environment for a test collector: loopback, free ports, its own data folder."""
    base = {k: v for k, v in os.environ.items() if k not in CONFIG_VARIABLES}
    base.update(
        SPLUNK_LISTEN_INTERFACE="127.0.0.1",
        OTELCOL_DATA_DIR=str(data_dir),
        OTELCOL_OTLP_GRPC_PORT=str(ports.get("grpc") or free_port()),
        OTELCOL_OTLP_HTTP_PORT=str(ports.get("http") or free_port()),
        OTELCOL_HEALTH_PORT=str(ports.get("health") or free_port()),
        OTELCOL_METRICS_PORT=str(ports.get("metrics") or free_port()),
    )
    base.update(env or {})
    return base


@contextlib.contextmanager
def start_collector(
    tmp_dir: Path,
    mode: str = "local",
    env: Mapping[str, str] | None = None,
    role: str = "agent",
    name: str | None = None,
    wait: bool = True,
) -> Iterator[Collector]:
    """Start build/otelcol-lab with the configs compose.yaml would choose for `env`; always stop it.

    `mode` states the mode `env` is expected to select (local, splunk, gateway); a mismatch is an
    error, so a test cannot silently run another mode. The archive is under tmp_dir/<name>/archive.
    """
    name = name or role
    full_env = collector_env(Path(tmp_dir) / name, env)
    if mode_of(role, full_env) != mode:
        raise ValueError(f"environment selects mode {mode_of(role, full_env)!r}, not {mode!r}")
    argv = [collector_binary(), *config_args(role, full_env)]
    collector = Collector(name, role, argv, full_env, Path(tmp_dir))
    try:
        yield collector.start(wait=wait)
    finally:
        collector.stop()
