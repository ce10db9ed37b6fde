"""Request validation: JSON objects only, known fields, types and ranges; errors as ApiError."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

from assistant.config import Config

SESSION_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
RESPONSE_ID_MAX_CHARS = 100
# the ids the assistant hands out are resp_<32 hex>; a path segment is checked against this
RESPONSE_ID_PATTERN = re.compile(r"^resp_[0-9a-f]{32}$")


class ApiError(Exception):
    """An error answered as `{"error": {"type", "message"}}` with an HTTP status."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.type = error_type
        self.message = message


@dataclass(frozen=True)
class ChatInput:
    message: str
    model: str
    temperature: float | None
    top_p: float | None
    max_tokens: int


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def parse_json_object(
    mimetype: str, data: bytes, allowed: frozenset[str], empty_ok: bool = False
) -> dict:
    """Decode a JSON object body; unknown fields are an error."""
    if not data and empty_ok:
        return {}
    if mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", "Send the body as application/json.")
    try:
        body = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise ApiError(400, "invalid_json", "The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request", "The body must be a JSON object.")
    unknown = sorted(set(body) - allowed)
    if unknown:
        names = ", ".join(repr(u[:40]) for u in unknown[:5])
        raise ApiError(400, "unknown_field", f"Unknown field(s): {names}.")
    return body


def _number(body: dict, name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ApiError(400, "invalid_field", f"'{name}' must be a number.")
    if not low <= value <= high:
        raise ApiError(400, "invalid_field", f"'{name}' must be between {low:g} and {high:g}.")
    return float(value)


def _integer(body: dict, name: str, low: int, high: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)  # JSON Schema: 5.0 is an integer
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, "invalid_field", f"'{name}' must be an integer.")
    if not low <= value <= high:
        raise ApiError(400, "invalid_field", f"'{name}' must be between {low} and {high}.")
    return value


CHAT_FIELDS = frozenset({"message", "model", "temperature", "top_p", "max_tokens"})
FEEDBACK_FIELDS = frozenset({"response_id", "score"})


def validate_chat(body: dict, cfg: Config) -> ChatInput:
    message = body.get("message")
    if not isinstance(message, str) or not message.strip():
        raise ApiError(400, "invalid_field", "'message' must be a non-empty string.")
    if len(message) > cfg.max_message_chars:
        raise ApiError(
            400, "invalid_field", f"'message' must be at most {cfg.max_message_chars} characters."
        )
    if "\x00" in message:
        raise ApiError(400, "invalid_field", "'message' must not contain NUL characters.")
    if not message.isascii():
        try:
            message.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates, e.g. "\ud800" in the JSON
            raise ApiError(400, "invalid_field", "'message' must be valid Unicode text.") from None
    model = body.get("model")
    if model is None:
        model = cfg.default_model
    elif not isinstance(model, str) or model not in cfg.models:
        raise ApiError(400, "invalid_model", f"'model' must be one of: {', '.join(cfg.models)}.")
    max_tokens = _integer(body, "max_tokens", 1, cfg.max_tokens_limit)
    return ChatInput(
        message=message,
        model=model,
        temperature=_number(body, "temperature", 0.0, 2.0),
        top_p=_number(body, "top_p", 0.0, 1.0),
        max_tokens=max_tokens if max_tokens is not None else cfg.default_max_tokens,
    )


def validate_feedback(body: dict) -> tuple[str, int]:
    response_id = body.get("response_id")
    if not isinstance(response_id, str) or not 0 < len(response_id) <= RESPONSE_ID_MAX_CHARS:
        raise ApiError(400, "invalid_field", "'response_id' must be a response id string.")
    score = body.get("score")
    if score is None:
        raise ApiError(400, "invalid_field", "'score' is required (an integer from 1 to 5).")
    checked = _integer(body, "score", 1, 5)
    assert checked is not None
    return response_id, checked


def validate_session_header(value: str) -> str:
    if not SESSION_ID.fullmatch(value):
        raise ApiError(
            400, "invalid_session", "X-Session-Id must be 8-64 characters of A-Z a-z 0-9 _ -."
        )
    return value
