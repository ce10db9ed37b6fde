"""One CLIENT span per HTTP attempt to the LLM backend, so that the openai SDK's internal retries
are visible as separate spans under the `chat {model}` span (OTel HTTP client semconv).

Why hand-written: a maintained instrumentation exists (`opentelemetry-instrumentation-httpx`
>= 0.65b0 has `HTTPX2ClientInstrumentor`), but it does not fit this app:
- it cannot know that an attempt is an SDK retry, so it never sets `http.request.resend_count`
  (the SDK only tells the transport through its `x-stainless-retry-count` request header);
- it parents its span on the *current* context, and the chat span is deliberately never made
  current (it lives across `yield`s of the SSE generator, telemetry note pitfall 2); here the
  parent is the trace context the chat call puts on the request (`ChatCall.outgoing_headers`);
- it is one more pinned package outside the Splunk distribution's set, for ~100 lines.

`TracedTransport` wraps the real httpx2 transport given to `openai.OpenAI(http_client=...)`:
the span starts when the SDK hands the request over, `traceparent` is re-injected from the
attempt span (so the backend sees the attempt as its parent), and the span ends as soon as the
response headers arrive or the attempt raises: it is never left open, and a streamed body keeps
flowing after it (its duration is the time to response headers, as the HTTP semconv defines).
Attempts made outside any trace (the readiness probe's `models.list`) are not traced.
"""

from __future__ import annotations

import httpx2
import openai
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract, inject
from opentelemetry.trace import SpanKind, Status, StatusCode

from assistant import semconv as sc

# The SDK numbers its attempts in this request header: 0 on the first, n on the n-th retry.
SDK_RETRY_COUNT_HEADER = "x-stainless-retry-count"
_KNOWN_METHODS = frozenset(
    ("CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE")
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def url_without_credentials(url: httpx2.URL) -> str:
    """`url.full` as the semconv wants it: user info removed (never sent to telemetry)."""
    if url.userinfo:
        url = url.copy_with(username=None, password=None)
    return str(url)


def exception_type(exc: BaseException) -> str:
    """`error.type` of a failed attempt: the exception's class, qualified by its top-level package
    (httpx2.ConnectError, httpx2.ReadTimeout), or the bare name for builtins."""
    cls = type(exc)
    package = (cls.__module__ or "").split(".", 1)[0]
    if not package or package == "builtins":
        return cls.__qualname__
    return f"{package}.{cls.__qualname__}"


def resend_count(request: httpx2.Request) -> int:
    try:
        return max(0, int(request.headers.get(SDK_RETRY_COUNT_HEADER, "0")))
    except ValueError:
        return 0


class TracedTransport(httpx2.BaseTransport):
    """An httpx2 transport that traces every attempt it sends through `inner`."""

    def __init__(self, inner: httpx2.BaseTransport, tracer: trace.Tracer | None = None) -> None:
        self._inner = inner
        # a proxy tracer until the worker's SDK is initialised, then the real one
        self._tracer = tracer or trace.get_tracer(sc.INSTRUMENTATION_SCOPE)

    def _parent(self, request: httpx2.Request):
        """The caller's trace context: the `traceparent` already on the request (the chat span's,
        set by the chat call), else the current context; None outside any trace."""
        if "traceparent" in request.headers:
            extracted = extract(request.headers)
            if trace.get_current_span(extracted).get_span_context().is_valid:
                return extracted
        current = otel_context.get_current()
        if trace.get_current_span(current).get_span_context().is_valid:
            return current
        return None

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        parent = self._parent(request)
        if parent is None:
            return self._inner.handle_request(request)
        method = request.method.upper()
        url = request.url
        attributes: dict = {
            sc.HTTP_REQUEST_METHOD: method if method in _KNOWN_METHODS else "_OTHER",
            sc.SERVER_ADDRESS: url.host,
            sc.SERVER_PORT: url.port or _DEFAULT_PORTS.get(url.scheme, 80),
            sc.URL_FULL: url_without_credentials(url),
        }
        if method not in _KNOWN_METHODS:
            attributes[sc.HTTP_REQUEST_METHOD_ORIGINAL] = request.method
        resent = resend_count(request)
        if resent:
            attributes[sc.HTTP_REQUEST_RESEND_COUNT] = resent
        span = self._tracer.start_span(
            method if method in _KNOWN_METHODS else "HTTP",
            context=parent,
            kind=SpanKind.CLIENT,
            attributes=attributes,
        )
        try:
            inject(request.headers, context=trace.set_span_in_context(span, parent))
            response = self._inner.handle_request(request)
        except BaseException as exc:
            error_type = exception_type(exc)
            span.set_attribute(sc.ERROR_TYPE, error_type)
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{error_type}: {exc}"[:500]))
            span.end()
            raise
        status = response.status_code
        span.set_attribute(sc.HTTP_RESPONSE_STATUS_CODE, status)
        version = response.extensions.get("http_version")
        if isinstance(version, bytes) and version.startswith(b"HTTP/"):
            span.set_attribute(sc.NETWORK_PROTOCOL_VERSION, version[5:].decode("ascii", "replace"))
        if status >= 400:  # client spans: 4xx and 5xx are errors (HTTP semconv)
            span.set_attribute(sc.ERROR_TYPE, str(status))
            span.set_status(Status(StatusCode.ERROR))
        span.end()  # at the response headers: a streamed body keeps flowing after this
        return response

    def close(self) -> None:
        self._inner.close()


def traced_http_client() -> httpx2.Client:
    """The openai SDK's default httpx2 client (its timeouts, connection limits, redirects, and
    HTTP(S)_PROXY / NO_PROXY from the environment) with every transport wrapped by
    `TracedTransport`. Wrapped after construction: passing `transport=` would make httpx2 ignore
    the proxy variables, which users behind a corporate proxy need for the real OpenAI API."""
    client = openai.DefaultHttpxClient()
    client._transport = TracedTransport(client._transport)
    client._mounts = {
        pattern: None if transport is None else TracedTransport(transport)
        for pattern, transport in client._mounts.items()
    }
    return client
