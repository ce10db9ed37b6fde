"""Fixtures of the collector tests: the binary, and telemetry sent with the OpenTelemetry SDK."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogs
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetrics
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpans
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogs
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetrics
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpans
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from harness.prereq import collector_binary

# Histogram boundaries and values with exactly one value per bucket (and one overflow).
HISTOGRAM_BOUNDS = [0.1, 1.0, 10.0]
HISTOGRAM_VALUES = [0.05, 0.5, 5.0, 50.0]


@pytest.fixture(scope="session")
def otelcol() -> str:
    """Path of the test collector; missing -> skip locally, fail under CI=true."""
    return collector_binary()


def exporters(collector, protocol: str, headers: dict[str, str] | None = None):
    """(span, metric, log) OTLP exporters of the SDK aimed at `collector` over gRPC or HTTP."""
    if protocol == "grpc":
        kwargs = {"endpoint": collector.otlp_grpc, "insecure": True, "headers": headers}
        return GrpcSpans(**kwargs), GrpcMetrics(**kwargs), GrpcLogs(**kwargs)
    url, kwargs = collector.otlp_http, {"headers": headers}
    return (
        HttpSpans(endpoint=f"{url}/v1/traces", **kwargs),
        HttpMetrics(endpoint=f"{url}/v1/metrics", **kwargs),
        HttpLogs(endpoint=f"{url}/v1/logs", **kwargs),
    )


@dataclass
class Sent:
    """What `send_telemetry` emitted, to compare with what arrived."""

    service: str
    trace_id: str = ""
    server_span_id: str = ""
    client_span_id: str = ""
    extra: dict = field(default_factory=dict)


def send_telemetry(collector, protocol: str, service: str, headers=None) -> Sent:
    """Two spans, a counter, a histogram and a log record, exported and flushed synchronously."""
    span_exporter, metric_exporter, log_exporter = exporters(collector, protocol, headers)
    resource = Resource({"service.name": service, "service.version": "1.2.3"})
    sent = Sent(service)

    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    tracer = tracer_provider.get_tracer("collector-tests")
    server_attributes = {
        "http.request.method": "POST",
        "http.response.status_code": 200,
        "gen_ai.request.temperature": 0.25,
        "feature.enabled": True,
        "gen_ai.response.finish_reasons": ["stop", "length"],
    }
    # The client span starts once the server span is current: its child.
    with (
        tracer.start_as_current_span(
            "POST /api/chat", kind=SpanKind.SERVER, attributes=server_attributes
        ) as server,
        tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT) as client,
    ):
        client.set_attribute("gen_ai.usage.output_tokens", 42)
        client.add_event("gen_ai.evaluation.result", {"gen_ai.evaluation.score.value": 4})
        client.set_status(Status(StatusCode.ERROR, "rate limited"))
    sent.trace_id = format(server.get_span_context().trace_id, "032x")
    sent.server_span_id = format(server.get_span_context().span_id, "016x")
    sent.client_span_id = format(client.get_span_context().span_id, "016x")
    tracer_provider.shutdown()

    reader = PeriodicExportingMetricReader(metric_exporter, export_interval_millis=3_600_000)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter = meter_provider.get_meter("collector-tests")
    counter = meter.create_counter("lab.requests", unit="{request}")
    counter.add(3, {"gen_ai.request.model": "gpt-4o"})
    counter.add(4, {"gen_ai.request.model": "gpt-4o"})
    histogram = meter.create_histogram(
        "lab.duration", unit="s", explicit_bucket_boundaries_advisory=HISTOGRAM_BOUNDS
    )
    for value in HISTOGRAM_VALUES:
        histogram.record(value, {"gen_ai.request.model": "gpt-4o"})
    meter_provider.shutdown()  # exports once, synchronously

    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
    logger_provider.get_logger("collector-tests").emit(
        body="feedback received",
        severity_number=SeverityNumber.WARN,
        severity_text="WARN",
        attributes={"gen_ai.response.id": "resp_1", "score": 5},
    )
    logger_provider.shutdown()
    return sent


def send_spans(collector, names: list[str], service: str, protocol: str = "grpc") -> None:
    """One root span per name, batched by the SDK as an application would."""
    span_exporter = exporters(collector, protocol)[0]
    provider = TracerProvider(resource=Resource({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(span_exporter, schedule_delay_millis=100))
    tracer = provider.get_tracer("collector-tests")
    for name in names:
        with tracer.start_as_current_span(name, kind=SpanKind.SERVER):
            pass
    provider.shutdown()


@pytest.fixture(scope="session")
def sdk() -> SimpleNamespace:
    """The senders above for test modules (conftest modules are not importable by name)."""
    return SimpleNamespace(
        telemetry=send_telemetry,
        spans=send_spans,
        histogram_bounds=HISTOGRAM_BOUNDS,
        histogram_values=HISTOGRAM_VALUES,
    )
