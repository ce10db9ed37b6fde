"""HTTP routes: the JSON/SSE API and the single-page UI."""

from __future__ import annotations

import logging
import secrets

from flask import Blueprint, Response, current_app, jsonify, request, send_from_directory, session
from opentelemetry import trace
from werkzeug.exceptions import RequestEntityTooLarge

from assistant import semconv as sc
from assistant.chat_stream import ChatStream
from assistant.genai import ChatParams, current_context
from assistant.services import Services
from assistant.telemetry import defer_server_span_end
from assistant.validation import (
    CHAT_FIELDS,
    FEEDBACK_FIELDS,
    RESPONSE_ID_PATTERN,
    ApiError,
    parse_json_object,
    validate_chat,
    validate_feedback,
    validate_session_header,
)

log = logging.getLogger(__name__)

api = Blueprint("api", __name__)
ui = Blueprint("ui", __name__)

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_COOKIE_SESSION_KEY = "sid"


def services() -> Services:
    return current_app.extensions["assistant"]


def current_session() -> tuple[str, str]:
    """(store key, conversation id) from `X-Session-Id` (API clients) or the signed cookie."""
    header = request.headers.get("X-Session-Id")
    if header is not None:
        session_id = validate_session_header(header)
        return f"h:{session_id}", session_id
    session_id = session.get(_COOKIE_SESSION_KEY)
    if not isinstance(session_id, str) or not session_id.startswith("web_"):
        session_id = f"web_{secrets.token_hex(16)}"
        session[_COOKIE_SESSION_KEY] = session_id
    return f"c:{session_id}", session_id


def request_body() -> bytes:
    """The body, at most MAX_CONTENT_LENGTH bytes (413 above). Werkzeug enforces the limit on a
    Content-Length; a chunked body is silently cut at the limit, so check that nothing follows."""
    data = request.get_data(cache=False)
    limit = request.max_content_length
    cut = request.content_length is None and limit is not None and len(data) >= limit
    if cut and request.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge()
    return data


def json_body(allowed: frozenset[str], empty_ok: bool = False) -> dict:
    return parse_json_object(request.mimetype, request_body(), allowed, empty_ok)


@api.post("/api/chat")
def chat():
    svc = services()
    cfg = svc.config
    chat_input = validate_chat(json_body(CHAT_FIELDS), cfg)
    store_key, conversation_id = current_session()
    messages: list[dict] = []
    if cfg.system_prompt:
        messages.append({"role": "system", "content": cfg.system_prompt})
    for turn in svc.sessions.history(store_key):
        messages.append({"role": "user", "content": turn.user})
        messages.append({"role": "assistant", "content": turn.assistant})
    messages.append({"role": "user", "content": chat_input.message})
    params = ChatParams(
        model=chat_input.model,
        messages=tuple(messages),
        temperature=chat_input.temperature,
        top_p=chat_input.top_p,
        max_tokens=chat_input.max_tokens,
        conversation_id=conversation_id,
        response_id=f"resp_{secrets.token_hex(16)}",
    )
    server_span = trace.get_current_span()
    server_span.set_attribute(sc.GEN_AI_REQUEST_MODEL, chat_input.model)
    if cfg.legacy_attributes:
        server_span.set_attribute(sc.LEGACY_MODEL, chat_input.model)
        if chat_input.temperature is not None:
            server_span.set_attribute(sc.LEGACY_TEMPERATURE, chat_input.temperature)
        if chat_input.top_p is not None:
            server_span.set_attribute(sc.LEGACY_TOP_P, chat_input.top_p)
    parent = current_context()  # captured here, passed explicitly: never attached across yield
    stream = ChatStream(svc, params, parent, store_key, chat_input.message)
    response = Response(stream.events(), mimetype="text/event-stream", headers=SSE_HEADERS)
    finish_server_span = defer_server_span_end(request.environ)
    if finish_server_span is not None:
        response.call_on_close(lambda: finish_server_span(stream.error_type))
    return response


@api.post("/api/feedback")
def feedback():
    response_id, score = validate_feedback(json_body(FEEDBACK_FIELDS))
    store_key, _ = current_session()
    if not services().feedback.record(response_id, store_key, score):
        raise ApiError(404, "unknown_response", "No answer with this response_id (or it expired).")
    return Response(status=204)


@api.get("/api/evaluations/<response_id>")
def evaluations(response_id: str):
    if not RESPONSE_ID_PATTERN.fullmatch(response_id):
        raise ApiError(400, "invalid_field", "'response_id' must be a response id string.")
    store_key, _ = current_session()
    evaluator = services().evaluator
    result = evaluator.result(response_id, store_key) if evaluator is not None else None
    if result is None:
        raise ApiError(
            404, "not_evaluated", "No evaluation for this response_id (unknown, or not sampled)."
        )
    return jsonify(result)


@api.post("/api/reset")
def reset():
    json_body(frozenset(), empty_ok=True)
    store_key, _ = current_session()
    services().sessions.reset(store_key)
    return Response(status=204)


@api.get("/api/models")
def models():
    """The models, and what the UI shows around them (the agent's examples, the trace link)."""
    cfg = services().config
    return jsonify(
        {
            "models": list(cfg.models),
            "default": cfg.default_model,
            "agent": cfg.agent_enabled,
            "trace_url": cfg.trace_url_template or None,
        }
    )


@api.get("/api/openapi.json")
def openapi_document():
    return jsonify(services().openapi)


@api.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@api.get("/readyz")
def readyz():
    svc = services()
    error = svc.readiness.check(svc.client)
    if error:
        raise ApiError(503, "backend_unavailable", error)
    return jsonify({"status": "ready"})


@ui.get("/")
def index():
    return send_from_directory(current_app.static_folder, "index.html", max_age=0)
