"""Request rate limits on POST /api/chat and /api/feedback (Flask-Limiter, in-memory storage).

Two independent limits, both off unless configured: per session (the `X-Session-Id` header or the
signed cookie's session) and per client IP. The client IP is the TCP peer address
(`request.remote_addr`); no proxy header (`X-Forwarded-For`, `Forwarded`) is trusted, so behind a
reverse proxy or a shared NAT every client counts as one IP. Counters live in each worker's memory:
with ASSISTANT_WORKERS=N a client can get up to N times the limit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from flask import Flask, request
from flask_limiter import Limiter, RateLimitExceeded

from assistant.config import Config

LIMITED_ENDPOINTS = ("api.chat", "api.feedback")
RATE_LIMITED = "rate_limited"


def client_ip() -> str:
    return f"ip:{request.remote_addr or 'unknown'}"


def install_rate_limits(app: Flask, cfg: Config, session_key: Callable[[], str]) -> Limiter | None:
    """Wrap the limited views with the configured limits; None when both limits are off."""
    if not cfg.rate_limit_per_session and not cfg.rate_limit_per_ip:
        return None
    limiter = Limiter(
        client_ip,
        app=app,
        storage_uri="memory://",
        strategy="moving-window",  # no burst of 2N across a window boundary
        headers_enabled=False,  # Retry-After is set by the 429 handler (rounded up, >= 1 s)
    )
    for endpoint in LIMITED_ENDPOINTS:
        view = app.view_functions[endpoint]
        if cfg.rate_limit_per_ip:
            view = limiter.limit(cfg.rate_limit_per_ip, key_func=client_ip, scope="ip")(view)
        if cfg.rate_limit_per_session:
            view = limiter.limit(
                cfg.rate_limit_per_session,
                key_func=lambda: f"session:{session_key()}",
                scope="session",
            )(view)
        app.view_functions[endpoint] = view
    return limiter


def retry_after_seconds(limiter: Limiter | None, exc: RateLimitExceeded) -> int:
    """Whole seconds until the breached limit admits a request again (at least 1)."""
    reset_at = None
    current = limiter.current_limit if limiter is not None else None
    if current is not None:
        reset_at = current.window[0]
    if reset_at is None:
        reset_at = time.time() + exc.limit.limit.get_expiry()
    return max(1, math.ceil(reset_at - time.time()))


def describe(exc: RateLimitExceeded) -> str:
    which = "this session" if exc.limit.scope == "session" else "this client address"
    return f"Too many requests from {which} (limit {exc.limit.limit}). Retry later."
