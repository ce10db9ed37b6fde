"""The OpenAPI 3.1 description of the API, built once at start from the configuration: the
documented limits (message length, max_tokens, models, body size, rate limits) are the enforced
ones."""

from __future__ import annotations

from typing import Any

from assistant import __version__
from assistant.config import Config
from assistant.semconv import EVALUATION_LABELS, TOOL_EVALUATION_LABELS
from assistant.validation import RESPONSE_ID_MAX_CHARS, RESPONSE_ID_PATTERN, SESSION_ID

ERROR_TYPES = (
    "invalid_json",
    "invalid_request",
    "unknown_field",
    "invalid_field",
    "invalid_model",
    "invalid_session",
    "unsupported_media_type",
    "payload_too_large",
    "not_found",
    "method_not_allowed",
    "unknown_response",
    "rate_limited",
    "backend_unavailable",
)
STREAM_ERROR_TYPES = (
    "rate_limited",
    "timeout",
    "upstream_error",
    "upstream_disconnected",
    "upstream_auth",
    "upstream_rejected",
    "internal_error",
)
# non-empty, not only whitespace, no NUL (the same rule as validation.validate_chat)
MESSAGE_PATTERN = r"^[^\u0000]*[^\u0000\s][^\u0000]*$"


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str, headers: dict | None = None) -> dict:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _ref("Error")}},
    }
    if headers:
        response["headers"] = headers
    return response


def _status_schema(value: str) -> dict:
    return {
        "type": "object",
        "required": ["status"],
        "additionalProperties": False,
        "properties": {"status": {"const": value}},
    }


SSE_EVENTS = {
    "start": "SseStart",
    "delta": "SseDelta",
    "tool_call": "SseToolCall",  # with the shop agent only
    "tool_result": "SseToolResult",
    "done": "SseDone",
    "error": "SseError",
}


def _sse_event_schema() -> dict:
    """One server-sent event (OpenAPI 3.1: the `schema` of text/event-stream describes each
    event), its `data` a JSON document of the event's schema."""
    variants = []
    for event, name in SSE_EVENTS.items():
        variants.append(
            {
                "type": "object",
                "required": ["event", "data"],
                "properties": {
                    "event": {"const": event},
                    "data": {
                        "type": "string",
                        "contentMediaType": "application/json",
                        "contentSchema": _ref(name),
                    },
                },
            }
        )
    return {"oneOf": variants}


def build_openapi(cfg: Config) -> dict:
    """The document served at GET /api/openapi.json."""
    models = list(cfg.models)
    limited = bool(cfg.rate_limit_per_session or cfg.rate_limit_per_ip)
    rate_note = (
        f" Rate limits: per session {cfg.rate_limit_per_session or 'none'}, per client IP "
        f"{cfg.rate_limit_per_ip or 'none'}."
    )
    session_header = {
        "name": "X-Session-Id",
        "in": "header",
        "required": False,
        "description": "Conversation of an API client; without it the signed cookie is used.",
        "schema": {"type": "string", "pattern": f"^{SESSION_ID.pattern}$"},
    }
    trace_headers = [
        {
            "name": "traceparent",
            "in": "header",
            "required": False,
            "description": "W3C trace context; an invalid value is ignored.",
            "schema": {"type": "string"},
        },
        {
            "name": "baggage",
            "in": "header",
            "required": False,
            "description": "W3C baggage; an invalid value is ignored.",
            "schema": {"type": "string"},
        },
    ]
    common_errors = {
        "400": _error("Invalid body, field or X-Session-Id."),
        "413": _error(f"Body larger than {cfg.max_body_bytes} bytes."),
        "415": _error("Body is not application/json."),
    }
    retry_after = {
        "Retry-After": {
            "description": "Seconds until the limit admits a new request.",
            "required": True,
            "schema": {"type": "string", "pattern": "^[1-9][0-9]*$"},
        }
    }
    limited_errors = dict(common_errors)
    limited_errors["429"] = _error("Rate limit exceeded." + rate_note, retry_after)

    def get(summary: str, schema: dict, extra: dict | None = None) -> dict:
        responses: dict[str, Any] = {
            "200": {
                "description": summary,
                "content": {"application/json": {"schema": schema}},
            }
        }
        responses.update(extra or {})
        return {"get": {"summary": summary, "parameters": trace_headers, "responses": responses}}

    chat_request = {
        "type": "object",
        "additionalProperties": False,
        "required": ["message"],
        "properties": {
            "message": {
                "type": "string",
                "minLength": 1,
                "maxLength": cfg.max_message_chars,
                "pattern": MESSAGE_PATTERN,
                "description": "The user's message (not blank, no NUL, valid Unicode).",
            },
            # null means the same as absent (the default)
            "model": {
                "type": ["string", "null"],
                "enum": [*models, None],
                "default": cfg.default_model,
            },
            "temperature": {"type": ["number", "null"], "minimum": 0, "maximum": 2},
            "top_p": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
            "max_tokens": {
                "type": ["integer", "null"],
                "minimum": 1,
                "maximum": cfg.max_tokens_limit,
                "default": cfg.default_max_tokens,
            },
        },
    }
    feedback_request = {
        "type": "object",
        "additionalProperties": False,
        "required": ["response_id", "score"],
        "properties": {
            "response_id": {"type": "string", "minLength": 1, "maxLength": RESPONSE_ID_MAX_CHARS},
            "score": {"type": "integer", "minimum": 1, "maximum": 5},
        },
    }
    evaluation_result = {
        "type": "object",
        "additionalProperties": False,
        "required": ["response_id", "status", "model", "judge", "evaluations"],
        "properties": {
            "response_id": {"type": "string"},
            "status": {"enum": ["pending", "done", "judge_error", "dropped"]},
            "model": {"type": "string"},
            "judge": {"type": "string"},
            "evaluations": {
                "type": "array",
                "maxItems": len(EVALUATION_LABELS) + len(TOOL_EVALUATION_LABELS),
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name", "score", "label"],
                    "properties": {
                        "name": {"enum": [*EVALUATION_LABELS, *TOOL_EVALUATION_LABELS]},
                        "score": {"type": "number", "minimum": 0, "maximum": 1},
                        "label": {"type": "string"},
                    },
                },
            },
        },
    }
    paths = {
        "/api/chat": {
            "post": {
                "summary": "Send a message; the answer streams as server-sent events.",
                "description": (
                    "Events (`event: <type>` + one-line JSON `data:`): `start` (SseStart), "
                    "`delta` (SseDelta) 0..n times, then exactly one of `done` (SseDone) or "
                    "`error` (SseError). With the shop agent, each tool step adds "
                    "`tool_call` (SseToolCall) when the model starts a call and `tool_result` "
                    "(SseToolResult) when it ran, before the answer's deltas."
                    + (rate_note if limited else "")
                ),
                "parameters": [session_header, *trace_headers],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": chat_request}},
                },
                "responses": {
                    "200": {
                        "description": "The answer as an SSE stream.",
                        "content": {"text/event-stream": {"schema": _sse_event_schema()}},
                    },
                    **(limited_errors if limited else common_errors),
                },
            }
        },
        "/api/feedback": {
            "post": {
                "summary": "Rate an answer of this session (1-5).",
                "parameters": [session_header, *trace_headers],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": feedback_request}},
                },
                "responses": {
                    "204": {"description": "Recorded."},
                    "404": _error("Unknown or expired response_id, or another session's."),
                    **(limited_errors if limited else common_errors),
                },
            }
        },
        "/api/reset": {
            "post": {
                "summary": "Forget this session's conversation.",
                "parameters": [session_header, *trace_headers],
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {"type": "object", "additionalProperties": False}
                        }
                    },
                },
                "responses": {"204": {"description": "Forgotten."}, **common_errors},
            }
        },
        "/api/models": get(
            "The models users may pick.",
            {
                "type": "object",
                "required": ["models", "default"],
                "additionalProperties": False,
                "properties": {
                    "models": {
                        "type": "array",
                        "items": {"enum": models},
                        "minItems": len(models),
                        "maxItems": len(models),
                        "uniqueItems": True,
                    },
                    "default": {"const": cfg.default_model},
                    "agent": {"const": cfg.agent_enabled},
                    "trace_url": {
                        "description": "Link to a trace in Splunk APM ({trace_id} to replace), "
                        "null without ASSISTANT_APM_REALM.",
                        "type": ["string", "null"],
                    },
                },
            },
        ),
        "/healthz": get("Liveness.", _status_schema("ok")),
        "/readyz": get(
            "Readiness: the LLM backend answers.",
            _status_schema("ready"),
            {"503": _error("The LLM backend is unreachable.")},
        ),
        "/api/openapi.json": get("This document.", {"type": "object", "required": ["openapi"]}),
    }
    if cfg.eval_sample_rate > 0:  # documented (and fuzzed) when evaluations are on
        paths["/api/evaluations/{response_id}"] = {
            "get": {
                "summary": "The judge's verdict on an answer of this session (the UI's badge).",
                "description": (
                    "status pending while the judge works, then done, judge_error or dropped; "
                    "404 when the answer is unknown or was not sampled "
                    "(OTEL_INSTRUMENTATION_GENAI_EVALUATION_SAMPLE_RATE); see "
                    "docs/evaluations.md."
                ),
                "parameters": [
                    {
                        "name": "response_id",
                        "in": "path",
                        "required": True,
                        "schema": {
                            "type": "string",
                            "pattern": f"^{RESPONSE_ID_PATTERN.pattern[1:-1]}$",
                        },
                    },
                    session_header,
                    *trace_headers,
                ],
                "responses": {
                    "200": {
                        "description": "The evaluation results.",
                        "content": {"application/json": {"schema": evaluation_result}},
                    },
                    "400": _error("Invalid response_id or X-Session-Id."),
                    "404": _error(
                        "Not evaluated (yet), not sampled, expired or another session's."
                    ),
                },
            }
        }
    usage = {
        "type": ["object", "null"],
        "required": ["input_tokens", "output_tokens"],
        "additionalProperties": False,
        "properties": {
            "input_tokens": {"type": "integer", "minimum": 0},
            "output_tokens": {"type": "integer", "minimum": 0},
        },
    }
    schemas = {
        "Error": {
            "type": "object",
            "required": ["error"],
            "additionalProperties": False,
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["type", "message"],
                    "additionalProperties": False,
                    "properties": {
                        "type": {"type": "string", "enum": list(ERROR_TYPES)},
                        "message": {"type": "string", "minLength": 1},
                    },
                }
            },
        },
        "SseStart": {
            "type": "object",
            "required": ["response_id", "trace_id", "model"],
            "additionalProperties": False,
            "properties": {
                "response_id": {"type": "string", "pattern": "^resp_[0-9a-f]{32}$"},
                "trace_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                "model": {"type": "string", "enum": models},
            },
        },
        "SseDelta": {
            "type": "object",
            "required": ["text"],
            "additionalProperties": False,
            "properties": {"text": {"type": "string", "minLength": 1}},
        },
        "SseDone": {
            "type": "object",
            "required": ["finish_reason", "usage", "ttft_ms", "duration_ms"],
            "additionalProperties": False,
            "properties": {
                "finish_reason": {"type": "string"},
                "usage": usage,
                "ttft_ms": {"type": ["number", "null"], "minimum": 0},
                "duration_ms": {"type": "number", "minimum": 0},
                # with the shop agent: the answer's first token, model calls and tool runs
                "time_to_answer_ms": {"type": ["number", "null"], "minimum": 0},
                "steps": {"type": "integer", "minimum": 1, "maximum": cfg.agent_max_steps},
                "tool_calls": {"type": "integer", "minimum": 0},
                "tool_errors": {"type": "integer", "minimum": 0},
                # only when the answer's trace is sampled for the judge: the UI then polls
                # GET /api/evaluations/{response_id}
                "evaluation": {"const": "sampled"},
            },
        },
        "SseToolCall": {
            "type": "object",
            "required": ["step", "index", "id", "name"],
            "additionalProperties": False,
            "properties": {
                "step": {"type": "integer", "minimum": 1},
                "index": {"type": "integer", "minimum": 0},
                "id": {"type": "string"},
                "name": {"type": "string"},
            },
        },
        "SseToolResult": {
            "type": "object",
            "required": ["step", "id", "name", "duration_ms", "ok", "summary", "error"],
            "additionalProperties": False,
            "properties": {
                "step": {"type": "integer", "minimum": 1},
                "id": {"type": "string", "minLength": 1},
                "name": {"type": "string"},
                "duration_ms": {"type": "number", "minimum": 0},
                "ok": {"type": "boolean"},
                "summary": {"type": "string"},
                "error": {"type": ["string", "null"]},
                # only with content capture (OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT)
                "arguments": {"type": "string"},
            },
        },
        "SseError": {
            "type": "object",
            "required": ["type", "message"],
            "additionalProperties": False,
            "properties": {
                "type": {"type": "string", "enum": list(STREAM_ERROR_TYPES)},
                "message": {"type": "string", "minLength": 1},
            },
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Chat assistant API",
            "version": __version__,
            "description": (
                "Streaming chat over an OpenAI-compatible backend. Every 4xx/5xx answer is "
                'JSON `{"error": {"type", "message"}}`. Request bodies are limited to '
                f"{cfg.max_body_bytes} bytes." + rate_note
            ),
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": schemas},
    }
