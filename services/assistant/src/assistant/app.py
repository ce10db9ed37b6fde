"""Application factory."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from flask_limiter import RateLimitExceeded
from werkzeug.exceptions import HTTPException

from assistant.agent.shop import load_shop
from assistant.agent.tools import ShopTools
from assistant.agent.turn import Agent
from assistant.config import Config, load_config
from assistant.evals import Evaluator
from assistant.feedback import FeedbackRecorder, shared_answer_map
from assistant.llm import BackendReadiness, create_client
from assistant.openapi import build_openapi
from assistant.ratelimit import RATE_LIMITED, describe, install_rate_limits, retry_after_seconds
from assistant.routes import api, current_session, ui
from assistant.services import Services
from assistant.sessions import BoundedSessionStore, shared_history_map
from assistant.telemetry import create_instruments, instrument_flask
from assistant.validation import ApiError

log = logging.getLogger(__name__)

HTTP_ERROR_TYPES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: RATE_LIMITED,
}

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def error_response(status: int, error_type: str, message: str):
    response = jsonify({"error": {"type": error_type, "message": message}})
    response.status_code = status
    return response


def create_app(config: Config | None = None, telemetry: bool | None = None) -> Flask:
    """Build the app. `telemetry` adds Flask server spans (default: when an SDK is configured,
    i.e. in gunicorn workers after post_fork)."""
    cfg = config or load_config()
    app = Flask(__name__, static_folder="static", static_url_path="/static")
    app.config.update(
        SECRET_KEY=cfg.secret_key,
        MAX_CONTENT_LENGTH=cfg.max_body_bytes,
        SESSION_COOKIE_NAME="assistant_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=cfg.cookie_secure,
    )
    app.json.sort_keys = False
    instruments = create_instruments()
    state = cfg.state_file  # set: sessions and feedback are shared by the workers (store.py)
    app.extensions["assistant"] = Services(
        config=cfg,
        client=create_client(cfg),
        sessions=BoundedSessionStore(
            cfg.session_max,
            cfg.session_ttl_s,
            cfg.history_max_turns,
            cfg.history_max_chars,
            shared=shared_history_map(state, cfg.session_max, cfg.session_ttl_s) if state else None,
        ),
        feedback=FeedbackRecorder(
            instruments,
            cfg.feedback_max,
            cfg.feedback_ttl_s,
            shared=shared_answer_map(state, cfg.feedback_max, cfg.feedback_ttl_s)
            if state
            else None,
        ),
        instruments=instruments,
        readiness=BackendReadiness(),
        openapi=build_openapi(cfg),
        evaluator=Evaluator(cfg, instruments),  # its thread starts on the first sampled answer
        agent=Agent(ShopTools(load_shop()), cfg.agent_max_steps, cfg.tool_faults)
        if cfg.agent_enabled
        else None,
    )

    app.register_blueprint(api)
    app.register_blueprint(ui)
    limiter = install_rate_limits(app, cfg, lambda: current_session()[0])

    @app.errorhandler(RateLimitExceeded)
    def _rate_limited(exc: RateLimitExceeded):
        response = error_response(429, RATE_LIMITED, describe(exc))
        response.headers["Retry-After"] = str(retry_after_seconds(limiter, exc))
        return response

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.type, exc.message)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        error_type = HTTP_ERROR_TYPES.get(status, "http_error")
        message = exc.description or exc.name
        response = error_response(status, error_type, message)
        valid_methods = getattr(exc, "valid_methods", None)
        if valid_methods:
            response.headers["Allow"] = ", ".join(valid_methods)
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "Unexpected server error.")

    @app.after_request
    def _security_headers(response):
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    if telemetry is None:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider

        telemetry = isinstance(trace.get_tracer_provider(), TracerProvider)
    if telemetry:
        instrument_flask(app)
    return app
