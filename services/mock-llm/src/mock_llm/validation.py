"""Parse and validate a chat completion request body into a ChatRequest (or raise a 400/404)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

from mock_llm.errors import (
    ApiError,
    bad_request,
    empty_array,
    invalid_type,
    missing_parameter,
    model_not_found,
)
from mock_llm.faults import FAULT_KINDS, MODEL_FAULT_SUFFIX
from mock_llm.profiles import ModelProfile, Profiles
from mock_llm.tools import ToolRequest, parse_tools

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
MAX_N = 1


@dataclass(frozen=True)
class ChatRequest:
    profile: ModelProfile
    messages: tuple[dict, ...]  # normalised: role, content (str or list of parts), name
    stream: bool
    include_usage: bool
    limit: int | None  # max_completion_tokens, else max_tokens
    seed: int | None
    suffix_fault: str | None
    tools: ToolRequest | None = None  # tools offered or tool turns in the messages (tools.py)


def parse_json_body(raw: bytes) -> object:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise bad_request(
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
            "but what was sent was not valid JSON.)"
        ) from None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _optional_number(body: Mapping, name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if not _is_number(value):
        raise invalid_type(name, "a decimal", value)
    if not low <= value <= high:
        raise bad_request(
            f"Invalid '{name}': expected a value between {low} and {high}, got {value}.",
            name,
            "invalid_value",
        )


def _optional_bool(body: Mapping, name: str) -> bool:
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise invalid_type(name, "a boolean", value)
    return value


def _message(index: int, message: object) -> dict:
    where = f"messages[{index}]"
    if not isinstance(message, Mapping):
        raise invalid_type(where, "an object", message)
    role = message.get("role")
    if role is None:
        raise missing_parameter(f"{where}.role")
    if not isinstance(role, str):
        raise invalid_type(f"{where}.role", "a string", role)
    if role not in ROLES:
        supported = ", ".join(f"'{r}'" for r in ROLES)
        raise bad_request(
            f"Invalid value: '{role[:64]}'. Supported values are: {supported}.",
            f"{where}.role",
            "invalid_value",
        )
    content = message.get("content")
    if content is None and role not in ("assistant", "function"):
        raise missing_parameter(f"{where}.content")
    if isinstance(content, list):
        parts = []
        for part_index, part in enumerate(content):
            part_where = f"{where}.content[{part_index}]"
            if not isinstance(part, Mapping):
                raise invalid_type(part_where, "an object", part)
            kind = part.get("type")
            if not isinstance(kind, str):
                raise invalid_type(f"{part_where}.type", "a string", kind)
            if kind == "text":
                if not isinstance(part.get("text"), str):
                    raise invalid_type(f"{part_where}.text", "a string", part.get("text"))
                parts.append({"type": "text", "text": part["text"]})
            else:
                parts.append({"type": kind})
        content = parts
    elif content is not None and not isinstance(content, str):
        raise invalid_type(f"{where}.content", "one of a string or array of objects", content)
    name = message.get("name")
    if name is not None and not isinstance(name, str):
        raise invalid_type(f"{where}.name", "a string", name)
    return {"role": role, "content": content, "name": name}


def _resolve_model(body: Mapping, profiles: Profiles) -> tuple[ModelProfile, str | None]:
    if "model" not in body or body.get("model") is None:
        raise bad_request("you must provide a model parameter", "model", None)
    model = body["model"]
    if not isinstance(model, str):
        raise invalid_type("model", "a string", model)
    base, suffix_fault = model, None
    if MODEL_FAULT_SUFFIX in model:
        base, _, suffix_fault = model.partition(MODEL_FAULT_SUFFIX)
        if suffix_fault not in FAULT_KINDS:
            raise model_not_found(model[:200])
    profile = profiles.models.get(base)
    if profile is None:
        raise model_not_found(model[:200])
    return profile, suffix_fault


def _limit(body: Mapping, profile: ModelProfile) -> int | None:
    if profile.reasoning and body.get("max_tokens") is not None:
        raise bad_request(
            "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead.",
            "max_tokens",
            "unsupported_parameter",
        )
    limit = None
    for name in ("max_tokens", "max_completion_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if not _is_int(value):
            raise invalid_type(name, "an integer", value)
        if value < 1:
            raise bad_request(
                f"Invalid '{name}': integer below minimum value. "
                f"Expected a value >= 1, but got {value} instead.",
                name,
                "integer_below_min_value",
            )
        if value > profile.max_output_tokens:
            raise bad_request(
                f"{name} is too large: {value}. This model supports at most "
                f"{profile.max_output_tokens} completion tokens, whereas you provided {value}.",
                name,
                "invalid_value",
            )
        limit = value  # max_completion_tokens (checked last) wins
    return limit


def parse_chat_request(body: object, profiles: Profiles) -> ChatRequest:
    if not isinstance(body, Mapping):
        raise bad_request("The request body must be a JSON object.", None, "invalid_type")
    profile, suffix_fault = _resolve_model(body, profiles)
    if "messages" not in body or body.get("messages") is None:
        raise missing_parameter("messages")
    raw_messages = body["messages"]
    if not isinstance(raw_messages, list):
        raise invalid_type("messages", "an array", raw_messages)
    if not raw_messages:
        raise empty_array("messages")
    messages = tuple(_message(i, m) for i, m in enumerate(raw_messages))

    stream = _optional_bool(body, "stream")
    options = body.get("stream_options")
    include_usage = False
    if options is not None:
        if not isinstance(options, Mapping):
            raise invalid_type("stream_options", "an object", options)
        if not stream:
            raise bad_request(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                "stream_options",
                "invalid_value",
            )
        include_usage = _optional_bool(options, "include_usage")

    limit = _limit(body, profile)
    _optional_number(body, "temperature", 0, 2)
    _optional_number(body, "top_p", 0, 1)
    _optional_number(body, "presence_penalty", -2, 2)
    _optional_number(body, "frequency_penalty", -2, 2)
    seed = body.get("seed")
    if seed is not None and not _is_int(seed):
        raise invalid_type("seed", "an integer", seed)
    n = body.get("n")
    if n is not None:
        if not _is_int(n):
            raise invalid_type("n", "an integer", n)
        if not 1 <= n <= MAX_N:
            raise bad_request(
                f"Invalid 'n': this mock answers one choice per request, got {n}.",
                "n",
                "invalid_value",
            )
    stop = body.get("stop")
    if stop is not None and not isinstance(stop, str):
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise invalid_type("stop", "a string or array of strings", stop)
        if len(stop) > 4:
            raise bad_request(
                "Invalid 'stop': at most 4 sequences.", "stop", "array_above_max_length"
            )
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise invalid_type("user", "a string", user)
    tools = parse_tools(body, raw_messages, messages)
    return ChatRequest(profile, messages, stream, include_usage, limit, seed, suffix_fault, tools)


def context_check(profile: ModelProfile, prompt_tokens: int, limit: int | None) -> ApiError | None:
    completion = limit or 0
    if prompt_tokens + completion <= profile.context_window:
        return None
    if limit is None:
        detail = f"However, your messages resulted in {prompt_tokens} tokens."
    else:
        detail = (
            f"However, you requested {prompt_tokens + completion} tokens ({prompt_tokens} in the "
            f"messages, {completion} in the completion)."
        )
    return bad_request(
        f"This model's maximum context length is {profile.context_window} tokens. {detail} "
        "Please reduce the length of the messages or completion.",
        "messages",
        "context_length_exceeded",
    )
