"""Telemetry set-up per gunicorn worker, metric instruments, and the streaming server span.

The SDK is initialised with the Splunk distribution's `init_splunk_otel()` in gunicorn's
`post_fork` hook (see gunicorn_conf.py and the README): nothing is recorded in the master, every
worker has its own providers, exporters and `service.instance.id`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from opentelemetry import _logs, baggage, metrics, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, Status, StatusCode

from assistant import semconv as sc

log = logging.getLogger(__name__)

# Defaults for the worker's SDK; explicit environment values always win.
SDK_ENV_DEFAULTS = {
    "OTEL_SERVICE_NAME": "assistant",
    # Splunk Observability Cloud requires delta temporality for histograms
    "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "DELTA",
    # export spans every second, not every 5 s: a chat shows up in the archive or in Splunk APM
    # about a second after it ends (p95 1.1 s vs 5.3 s, docs/performance.md benchmark 6)
    "OTEL_BSP_SCHEDULE_DELAY": "1000",
    # defensive: this app instruments the openai call itself (assistant/genai.py)
    "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "openai,openai_v2",
}
EXCLUDED_URLS = "healthz,readyz,api/openapi.json,static/.*"


def init_worker_sdk(enabled: bool, retry_s: float = 0.0) -> bool:
    """Initialise the Splunk distribution in this (forked) worker process; with `retry_s` > 0,
    a failed export is retried for that long (see RetryingExporter)."""
    if not enabled:
        return False
    for key, value in SDK_ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    instance = f"service.instance.id={uuid.uuid4()}"
    existing = os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    if "service.instance.id=" not in existing:
        os.environ["OTEL_RESOURCE_ATTRIBUTES"] = f"{existing},{instance}" if existing else instance
    from splunk_otel import init_splunk_otel  # imported here: nothing OTel-related pre-fork

    init_splunk_otel()
    if retry_s > 0:
        try:
            wrapped = retry_exports(retry_s)
        except AttributeError as exc:  # another SDK version: keep its own retries
            log.warning("telemetry export retries not extended (%s)", exc)
        else:
            log.info("telemetry exports retried for up to %.0f s: %s", retry_s, ", ".join(wrapped))
    return True


class RetryingExporter:
    """Wraps an OTLP span, log or metric exporter: a failed batch is retried until `retry_s` passed.

    Hand-written because the OTLP exporters give up on a batch after six attempts (about 31 s of
    backoff, whatever OTEL_EXPORTER_OTLP_TIMEOUT says), so a collector restart that takes longer
    silently drops the batch in flight. While a batch is retried, the batch processors keep new
    spans and logs in their queues (OTEL_BSP_MAX_QUEUE_SIZE, OTEL_BLRP_MAX_QUEUE_SIZE; only what
    overflows them is dropped, counted by the SDK), and the metric reader's next collection simply
    covers a longer interval, so delta metrics lose nothing either.
    """

    RETRY_PAUSE_S = 1.0

    def __init__(self, inner, retry_s: float) -> None:
        self._inner = inner
        self._retry_s = retry_s
        self._stopping = threading.Event()

    def export(self, batch, *args, **kwargs):
        deadline = time.monotonic() + self._retry_s
        while True:
            result = self._inner.export(batch, *args, **kwargs)
            if result.name == "SUCCESS" or self._stopping.is_set():
                return result
            if time.monotonic() + self.RETRY_PAUSE_S > deadline:
                return result
            self._stopping.wait(self.RETRY_PAUSE_S)

    def shutdown(self, *args, **kwargs):
        self._stopping.set()
        return self._inner.shutdown(*args, **kwargs)

    def __getattr__(self, name: str):  # force_flush, temporality settings, ...
        return getattr(self._inner, name)


def retry_exports(retry_s: float) -> list[str]:
    """Wrap the exporters the distribution configured in RetryingExporter; returns what it wrapped.

    The SDK offers no hook for this, so it reaches into the (pinned) SDK's processors and readers;
    the reliability tests check that all three signals are found (the worker logs what it wrapped).
    """
    wrapped = []
    holders = [
        *getattr(trace.get_tracer_provider()._active_span_processor, "_span_processors", ()),
        *_logs.get_logger_provider()._multi_log_record_processor._log_record_processors,
    ]
    for processor in holders:
        batch = getattr(processor, "_batch_processor", None)
        if batch is not None and not isinstance(batch._exporter, RetryingExporter):
            batch._exporter = RetryingExporter(batch._exporter, retry_s)
            wrapped.append(type(batch._exporter._inner).__name__)
    for reader in metrics.get_meter_provider()._metric_readers:
        exporter = getattr(reader, "_exporter", None)
        if exporter is not None and not isinstance(exporter, RetryingExporter):
            reader._exporter = RetryingExporter(exporter, retry_s)
            wrapped.append(type(exporter).__name__)
    return wrapped


def shutdown_worker_sdk() -> None:
    """Flush and stop this worker's providers (called from gunicorn's worker_exit)."""
    for provider in (
        trace.get_tracer_provider(),
        metrics.get_meter_provider(),
        _logs.get_logger_provider(),
    ):
        shutdown = getattr(provider, "shutdown", None)
        if shutdown is not None:
            try:
                shutdown()
            except Exception:  # pragma: no cover - best effort at exit
                log.exception("telemetry shutdown failed")


def instrument_flask(app) -> None:
    """Flask SERVER spans (only when an SDK is configured in this process)."""
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    FlaskInstrumentor().instrument_app(
        app, excluded_urls=EXCLUDED_URLS, request_hook=_copy_baggage_to_server_span
    )


def baggage_attributes(context: Context | None = None) -> dict[str, str]:
    """The allow-listed baggage entries of `context` (default: the current one), as attributes."""
    return {
        key: value
        for key, value in baggage.get_all(context).items()
        if key in sc.BAGGAGE_SPAN_ATTRIBUTES
        and isinstance(value, str)
        and len(value) <= sc.BAGGAGE_VALUE_MAX_CHARS
    }


def _copy_baggage_to_server_span(span: Span, _environ: dict) -> None:
    # called by the Flask instrumentation once the incoming context (with baggage) is attached
    if span.is_recording():
        span.set_attributes(baggage_attributes())


@dataclass(frozen=True)
class Instruments:
    tracer: trace.Tracer
    logger: _logs.Logger
    duration: metrics.Histogram
    token_usage: metrics.Histogram
    time_to_first_chunk: metrics.Histogram
    time_per_output_chunk: metrics.Histogram
    evaluation_score: metrics.Histogram
    user_satisfaction: metrics.Histogram
    # the evaluator's own (assistant/evals/): never gen_ai.client.*
    judge_duration: metrics.Histogram | None = None
    evaluation_requests: metrics.Counter | None = None


def create_instruments() -> Instruments:
    """Instruments from the global providers (no-op ones when no SDK is configured)."""
    meter = metrics.get_meter(sc.INSTRUMENTATION_SCOPE)
    seconds = list(sc.SECONDS_BUCKETS)
    return Instruments(
        tracer=trace.get_tracer(sc.INSTRUMENTATION_SCOPE),
        logger=_logs.get_logger(sc.INSTRUMENTATION_SCOPE),
        duration=meter.create_histogram(
            sc.METRIC_OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=seconds,
        ),
        token_usage=meter.create_histogram(
            sc.METRIC_TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=list(sc.TOKEN_BUCKETS),
        ),
        time_to_first_chunk=meter.create_histogram(
            sc.METRIC_TIME_TO_FIRST_CHUNK,
            unit="s",
            description="Time from the request to the first response chunk.",
            explicit_bucket_boundaries_advisory=seconds,
        ),
        time_per_output_chunk=meter.create_histogram(
            sc.METRIC_TIME_PER_OUTPUT_CHUNK,
            unit="s",
            description="Time between consecutive response chunks after the first.",
            explicit_bucket_boundaries_advisory=seconds,
        ),
        evaluation_score=meter.create_histogram(
            sc.METRIC_EVALUATION_SCORE,
            unit="1",
            description="Vendor-specific (Splunk), not OTel semconv: evaluation score 0..1.",
            explicit_bucket_boundaries_advisory=list(sc.EVALUATION_SCORE_BUCKETS),
        ),
        user_satisfaction=meter.create_histogram(
            sc.METRIC_USER_SATISFACTION,
            unit="1",
            description="User rating of an answer, 1 (bad) to 5 (good), by model.",
            explicit_bucket_boundaries_advisory=list(sc.SATISFACTION_BUCKETS),
        ),
        judge_duration=meter.create_histogram(
            sc.METRIC_JUDGE_DURATION,
            unit="s",
            description="Duration of one LLM-as-judge call (kept out of gen_ai.client.*).",
            explicit_bucket_boundaries_advisory=seconds,
        ),
        evaluation_requests=meter.create_counter(
            sc.METRIC_EVALUATION_REQUESTS,
            unit="{request}",
            description="Answers offered to the evaluator, by outcome.",
        ),
    )


_FLASK_ACTIVATION_KEY = "opentelemetry-flask.activation_key"


class _DeferredActivation:
    """Stands in for the Flask instrumentation's span activation so that its teardown (which
    runs when the view returns, before the body streams) does nothing."""

    def __exit__(self, *exc_info) -> None:
        return None


def _skip_end(*args, **kwargs) -> None:
    return None


def defer_server_span_end(environ: dict) -> Callable[[str | None], None] | None:
    """Take over ending the current SERVER span; returns `finish(error_type)`, to be called when
    the WSGI response iterable closes, or None when there is no recording server span.

    The Flask instrumentation (0.66b1) ends its span at teardown, when the view returns, long
    before a streamed body is sent. Here, in the view's thread, its activation is exited now
    (detaching the span from the context where it was attached, as teardown would) with the
    span's `end` suppressed on that one span object; `finish` restores it and ends the span.
    Call this after capturing the context the stream needs.
    """
    span: Span = trace.get_current_span()
    activation = environ.get(_FLASK_ACTIVATION_KEY)
    if not span.is_recording() or activation is None:
        return None
    span.end = _skip_end  # instance attribute shadows the method for this span only
    try:
        activation.__exit__(None, None, None)
    finally:
        del span.end
    environ[_FLASK_ACTIVATION_KEY] = _DeferredActivation()

    def finish(error_type: str | None = None) -> None:
        if error_type:
            span.set_attribute(sc.ERROR_TYPE, error_type)
            span.set_status(Status(StatusCode.ERROR, error_type))
        span.end()

    return finish
