"""W3C trace context for synthetic requests: a fresh traceparent, baggage marking the run."""

from __future__ import annotations

import secrets
from urllib.parse import quote

SYNTHETIC_BAGGAGE_KEY = "synthetic_request"
RUN_ID_BAGGAGE_KEY = "loadgen.run_id"


def traceparent() -> str:
    """A new sampled root context (random ids: traces need not repeat between runs)."""
    trace_id = secrets.token_hex(16)
    span_id = secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-01"


def baggage(run_id: str, model: str | None = None) -> str:
    items = [(SYNTHETIC_BAGGAGE_KEY, "true"), (RUN_ID_BAGGAGE_KEY, run_id)]
    if model:
        items.append(("loadgen.model", model))
    return ",".join(f"{key}={quote(value, safe='')}" for key, value in items)


def trace_headers(run_id: str, model: str | None = None) -> dict[str, str]:
    return {"traceparent": traceparent(), "baggage": baggage(run_id, model)}
