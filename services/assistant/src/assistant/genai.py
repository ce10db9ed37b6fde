"""Hand-written GenAI instrumentation of one streamed chat completion (the only place that
instruments the openai call; see the README for why no openai instrumentor is used).

`ChatCall` owns the `chat {model}` CLIENT span and the gen_ai.client.* metrics of one call. The
per-chunk path (`on_chunk`) is O(1) and makes no telemetry call: one clock read, the gap to the
previous output chunk appended to an array, attribute reads; the gaps are recorded when the call
finishes (assistant/batch_histogram.py).

The timing definitions (README, "What the numbers mean"), one place in the code:
- TTFT (`gen_ai.response.time_to_first_chunk`, the `..._time_to_first_chunk` histogram and the
  `done` event's `ttft_ms`): from `begin()`, right before the request, to the first chunk that
  carries output (`carries_output`). A role-only or empty delta is not output: servers and proxies
  that send it before the first token would otherwise make every model's TTFT a few ms.
- Time per output chunk: the gaps between consecutive output-bearing chunks after the first.
"""

from __future__ import annotations

import json
from array import array
from dataclasses import dataclass
from time import perf_counter

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import inject
from opentelemetry.trace import SpanKind, Status, StatusCode

from assistant import semconv as sc
from assistant.batch_histogram import record_values
from assistant.config import Config
from assistant.telemetry import Instruments, baggage_attributes

TRUNCATION_MARK = "…[truncated]"


@dataclass(frozen=True)
class ChatParams:
    """One validated chat call: what is sent to the model."""

    model: str
    messages: tuple[dict, ...]  # OpenAI chat format, system prompt first when configured
    temperature: float | None
    top_p: float | None
    max_tokens: int
    conversation_id: str
    response_id: str  # the app's id (resp_<hex>), used for feedback
    tools: tuple[dict, ...] = ()  # function tools offered to the model (the agent's steps)

    def create_kwargs(self) -> dict:
        """Arguments of `chat.completions.create`: only what the user set, plus the limits."""
        kwargs: dict = {
            "model": self.model,
            "messages": list(self.messages),
            "stream": True,
            "stream_options": {"include_usage": True},
            # accepted by every model, required by reasoning models (o-series) instead of max_tokens
            "max_completion_tokens": self.max_tokens,
        }
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        if self.top_p is not None:
            kwargs["top_p"] = self.top_p
        if self.tools:
            kwargs["tools"] = list(self.tools)
        return kwargs


def _text(value) -> str | None:
    return value if isinstance(value, str) else None


def token_count(value) -> int | None:
    """A token count of a `usage` object: a non-negative int (not a bool or float), else None."""
    return value if type(value) is int and value >= 0 else None


@dataclass(frozen=True)
class Usage:
    """Token usage of one call, from the `usage` object of the stream's last chunk."""

    input_tokens: int
    output_tokens: int
    total_tokens: int
    cache_read_tokens: int | None = None
    reasoning_tokens: int | None = None

    @classmethod
    def parse(cls, usage) -> Usage | None:
        """None unless both token counts are there (a partial object is not a usage report)."""
        if not isinstance(usage, dict):
            return None
        input_tokens = token_count(usage.get("prompt_tokens"))
        output_tokens = token_count(usage.get("completion_tokens"))
        if input_tokens is None or output_tokens is None:
            return None
        prompt_details = usage.get("prompt_tokens_details")
        completion_details = usage.get("completion_tokens_details")
        return cls(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            total_tokens=token_count(usage.get("total_tokens")) or input_tokens + output_tokens,
            cache_read_tokens=token_count(prompt_details.get("cached_tokens"))
            if isinstance(prompt_details, dict)
            else None,
            reasoning_tokens=token_count(completion_details.get("reasoning_tokens"))
            if isinstance(completion_details, dict)
            else None,
        )


def carries_output(delta) -> bool:
    """A delta with output: non-empty content, refusal or reasoning text, or a tool-call delta."""
    if not isinstance(delta, dict):
        return False
    for key in ("content", "refusal", "reasoning_content", "reasoning"):
        value = delta.get(key)
        if value and isinstance(value, str):
            return True
    tool_calls = delta.get("tool_calls")
    return bool(tool_calls) and isinstance(tool_calls, list)


def error_type_of(exc: BaseException) -> str:
    """Fully qualified exception type (openai.RateLimitError) for error.type."""
    cls = type(exc)
    module = cls.__module__ or ""
    if module.startswith("openai"):
        return f"openai.{cls.__qualname__}"
    if module == "builtins":
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}" if module else sc.ERROR_TYPE_OTHER


def _message_json(role: str, text: str, finish_reason: str | None = None) -> dict:
    message: dict = {"role": role, "parts": [{"type": "text", "content": text}]}
    if finish_reason is not None:
        message["finish_reason"] = finish_reason
    return message


def _chat_message_json(message: dict) -> dict:
    """A request message in semconv form; tool calls and tool results as their own part types
    (`tool_call`, `tool_call_response`), with the text part first (what truncation shortens)."""
    role = message["role"]
    if role == "tool":
        return {
            "role": "tool",
            "parts": [
                {"type": "text", "content": ""},
                {
                    "type": "tool_call_response",
                    "id": message.get("tool_call_id"),
                    "result": message.get("content") or "",
                },
            ],
        }
    converted = _message_json(role, message.get("content") or "")
    for call in message.get("tool_calls") or ():
        function = call.get("function", {})
        converted["parts"].append(
            {
                "type": "tool_call",
                "id": call.get("id"),
                "name": function.get("name"),
                "arguments": function.get("arguments"),
            }
        )
    return converted


def bounded_messages_json(messages: list[dict], limit: int) -> str:
    """Serialize semconv messages to JSON of at most `limit` characters by truncating the text of
    each message (never cutting the JSON itself), so the attribute always parses."""

    def dumps(items: list[dict]) -> str:
        return json.dumps(items, ensure_ascii=False, separators=(",", ":"))

    text = dumps(messages)
    if len(text) <= limit or not messages:
        return text
    # the first (text) part of each message is shortened; tool-call parts stay whole
    contents = [m["parts"][0]["content"] for m in messages]
    skeleton = [
        {**m, "parts": [{"type": "text", "content": ""}, *m["parts"][1:]]} for m in messages
    ]
    overhead = len(dumps(skeleton)) + len(messages) * len(TRUNCATION_MARK)
    budget = max(0, (limit - overhead) // len(messages))
    for _ in range(8):  # escaping can make text longer than its length; shrink until it fits
        truncated = [
            {
                **m,
                "parts": [
                    {
                        "type": "text",
                        "content": c if len(c) <= budget else c[:budget] + TRUNCATION_MARK,
                    },
                    *m["parts"][1:],
                ],
            }
            for m, c in zip(skeleton, contents, strict=True)
        ]
        text = dumps(truncated)
        if len(text) <= limit:
            return text
        budget = max(0, budget - max(1, (len(text) - limit) // len(messages) + 1))
    return "[]"  # pathological (huge message count): give up on content, stay valid JSON


def bounded_parts_json(text: str, limit: int) -> str:
    """`[{"type": "text", "content": text}]` as JSON of at most `limit` characters."""
    budget = len(text)
    for _ in range(8):
        content = text if len(text) <= budget else text[:budget] + TRUNCATION_MARK
        value = json.dumps([{"type": "text", "content": content}], ensure_ascii=False)
        if len(value) <= limit:
            return value
        budget = max(0, budget - (len(value) - limit) - len(TRUNCATION_MARK))
    return "[]"


class ChatCall:
    """Span and metrics of one streamed chat call. Use: start -> begin -> on_chunk* ->
    (completed | failed | stopped_early) -> finish (always, in a finally)."""

    __slots__ = (
        "_cfg",
        "_inst",
        "_metric_attrs",
        "_parent",
        "_start_attrs",
        "_t_prev",
        "context",
        "error_type",
        "finish_reason",
        "gaps",
        "output_chunks",
        "output_tool_calls",
        "params",
        "parts",
        "response_id",
        "response_model",
        "service_tier",
        "span",
        "system_fingerprint",
        "t_first_chunk",
        "t_first_output",
        "t_start",
        "usage",
    )

    def __init__(self, inst: Instruments, cfg: Config, params: ChatParams, parent) -> None:
        self._inst = inst
        self._cfg = cfg
        self.params = params
        attrs = {
            sc.GEN_AI_OPERATION_NAME: sc.OPERATION_CHAT,
            sc.GEN_AI_PROVIDER_NAME: sc.PROVIDER_OPENAI,
            sc.GEN_AI_REQUEST_MODEL: params.model,
            sc.SERVER_ADDRESS: cfg.server_address,
            sc.SERVER_PORT: cfg.server_port,
            sc.GEN_AI_REQUEST_STREAM: True,
            sc.GEN_AI_CONVERSATION_ID: params.conversation_id,
            sc.GEN_AI_REQUEST_MAX_TOKENS: params.max_tokens,
            sc.ASSISTANT_RESPONSE_ID: params.response_id,
            **baggage_attributes(parent),
        }
        if params.temperature is not None:
            attrs[sc.GEN_AI_REQUEST_TEMPERATURE] = params.temperature
        if params.top_p is not None:
            attrs[sc.GEN_AI_REQUEST_TOP_P] = params.top_p
        if cfg.legacy_attributes:
            attrs[sc.LEGACY_MODEL] = params.model
            if params.temperature is not None:
                attrs[sc.LEGACY_TEMPERATURE] = params.temperature
            if params.top_p is not None:
                attrs[sc.LEGACY_TOP_P] = params.top_p
        self._start_attrs = attrs
        self._parent = parent
        self.span = None  # started by begin(), right before the LLM request
        self.context = parent
        self._metric_attrs = {
            sc.GEN_AI_OPERATION_NAME: sc.OPERATION_CHAT,
            sc.GEN_AI_PROVIDER_NAME: sc.PROVIDER_OPENAI,
            sc.GEN_AI_REQUEST_MODEL: params.model,
            sc.SERVER_ADDRESS: cfg.server_address,
            sc.SERVER_PORT: cfg.server_port,
        }
        self.t_start = perf_counter()
        self._t_prev = 0.0
        self.t_first_chunk: float | None = None  # any chunk: the answer has started
        self.t_first_output: float | None = None  # the first output-bearing chunk: TTFT
        self.output_chunks = 0
        self.gaps = array("d")  # seconds between consecutive output chunks, recorded at finish()
        self.parts: list[str] = []
        self.output_tool_calls: list[dict] = []  # set by the agent: the calls, message form
        self.response_id: str | None = None
        self.response_model: str | None = None
        self.system_fingerprint: str | None = None
        self.service_tier: str | None = None
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.error_type: str | None = None

    def _start_span(self) -> None:
        self.span = self._inst.tracer.start_span(
            f"{sc.OPERATION_CHAT} {self.params.model}",
            context=self._parent,
            kind=SpanKind.CLIENT,
            attributes=self._start_attrs,
        )
        self.context = trace.set_span_in_context(self.span, self._parent)

    @property
    def trace_id(self) -> str:
        """The trace the chat span is (or will be) in: the request's trace."""
        parent = trace.get_current_span(self._parent).get_span_context()
        if not parent.is_valid and self.span is None:
            self._start_span()  # no incoming request span: the chat span starts the trace
        context = self.span.get_span_context() if self.span is not None else parent
        return format(context.trace_id, "032x")

    def outgoing_headers(self) -> dict[str, str]:
        """W3C trace context for the LLM request (no HTTP client instrumentation is installed)."""
        carrier: dict[str, str] = {}
        inject(carrier, context=self.context)
        return carrier

    def begin(self) -> None:
        """Start the span and the clock: call right before `create()`."""
        if self.span is None:
            self._start_span()
        self.t_start = perf_counter()

    def on_chunk(self, chunk: dict) -> str | None:
        """Account for one stream chunk (the JSON object of one SSE event); returns its text, if
        any. O(1), no telemetry call; tolerant of missing fields, like the SDK's own models."""
        now = perf_counter()
        if not isinstance(chunk, dict):
            return None  # not a chunk object: nothing to account for
        if self.t_first_chunk is None:
            self.t_first_chunk = now
            self.response_id = _text(chunk.get("id"))
            self.response_model = _text(chunk.get("model"))
            self.system_fingerprint = _text(chunk.get("system_fingerprint"))
            self.service_tier = _text(chunk.get("service_tier"))
            if self.response_model:
                self._metric_attrs[sc.GEN_AI_RESPONSE_MODEL] = self.response_model
            if self.service_tier:
                self._metric_attrs[sc.OPENAI_RESPONSE_SERVICE_TIER] = self.service_tier
        usage = chunk.get("usage")
        if usage:
            self.usage = Usage.parse(usage)
        choices = chunk.get("choices")
        if not choices or not isinstance(choices, list):  # the usage chunk has none
            return None
        choice = choices[0]
        if not isinstance(choice, dict):
            return None
        finish_reason = choice.get("finish_reason")
        if finish_reason:
            self.finish_reason = _text(finish_reason)
        delta = choice.get("delta")
        if not carries_output(delta):
            return None
        if self.t_first_output is None:
            self.t_first_output = now
        else:
            self.gaps.append(now - self._t_prev)
        self._t_prev = now
        self.output_chunks += 1
        text = delta.get("content")
        if text and isinstance(text, str):
            self.parts.append(text)
            return text
        return None

    @property
    def ttft_s(self) -> float | None:
        """Time to first token, as defined above (None before any output)."""
        return None if self.t_first_output is None else self.t_first_output - self.t_start

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def failed(self, exc: BaseException) -> None:
        self.error_type = error_type_of(exc)
        if self.span is None:
            return
        self.span.record_exception(exc)
        self.span.set_status(Status(StatusCode.ERROR, f"{self.error_type}: {exc}"[:500]))

    def stopped_early(self, error_type: str, description: str) -> None:
        self.error_type = error_type
        if self.span is not None:
            self.span.set_status(Status(StatusCode.ERROR, description))

    def finish(self) -> None:
        """End attributes, metrics, content and the span. Call exactly once. Nothing is
        recorded when the LLM request was never made (client gone before `begin`)."""
        duration = perf_counter() - self.t_start
        span = self.span
        if span is None:
            return
        if self.finish_reason is None and self.error_type is None:
            self.stopped_early(sc.ERROR_UPSTREAM_INCOMPLETE, "stream ended without a finish reason")
        attrs: dict = {sc.OPENAI_API_TYPE: sc.OPENAI_API_TYPE_CHAT}
        if self.response_id:
            attrs[sc.GEN_AI_RESPONSE_ID] = self.response_id
        if self.response_model:
            attrs[sc.GEN_AI_RESPONSE_MODEL] = self.response_model
        if self.system_fingerprint:
            attrs[sc.OPENAI_RESPONSE_SYSTEM_FINGERPRINT] = self.system_fingerprint
        if self.service_tier:
            attrs[sc.OPENAI_RESPONSE_SERVICE_TIER] = self.service_tier
        attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] = [self.finish_reason or "error"]
        metric_attrs = self._metric_attrs
        ttfc = self.ttft_s
        if ttfc is not None:
            attrs[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = ttfc
            self._inst.time_to_first_chunk.record(ttfc, metric_attrs)
            record_values(self._inst.time_per_output_chunk, self.gaps, metric_attrs)
        usage = self.usage
        if usage is not None:
            attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] = usage.input_tokens
            attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = usage.output_tokens
            if usage.cache_read_tokens is not None:
                attrs[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = usage.cache_read_tokens
            if usage.reasoning_tokens is not None:
                attrs[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = usage.reasoning_tokens
            self._inst.token_usage.record(
                usage.input_tokens, {**metric_attrs, sc.GEN_AI_TOKEN_TYPE: "input"}
            )
            self._inst.token_usage.record(
                usage.output_tokens, {**metric_attrs, sc.GEN_AI_TOKEN_TYPE: "output"}
            )
            if self._cfg.legacy_attributes:
                attrs[sc.LEGACY_TOKENS_USED] = usage.total_tokens
                attrs[sc.LEGACY_COMPLETION_TOKENS] = usage.output_tokens
        if self.error_type:
            attrs[sc.ERROR_TYPE] = self.error_type
            self._inst.duration.record(duration, {**metric_attrs, sc.ERROR_TYPE: self.error_type})
        else:
            self._inst.duration.record(duration, metric_attrs)
        if self._cfg.content_capture != "NO_CONTENT":
            self._capture_content(attrs)
        span.set_attributes(attrs)
        span.end()

    def _capture_content(self, attrs: dict) -> None:
        limit = self._cfg.attribute_value_limit
        system = [m for m in self.params.messages if m["role"] == "system"]
        inputs = [_chat_message_json(m) for m in self.params.messages if m["role"] != "system"]
        output = {"role": "assistant", "content": self.text, "tool_calls": self.output_tool_calls}
        outputs = [{**_chat_message_json(output), "finish_reason": self.finish_reason or "error"}]
        content = {
            sc.GEN_AI_INPUT_MESSAGES: bounded_messages_json(inputs, limit),
            sc.GEN_AI_OUTPUT_MESSAGES: bounded_messages_json(outputs, limit),
        }
        if system:
            content[sc.GEN_AI_SYSTEM_INSTRUCTIONS] = bounded_parts_json(
                "\n".join(m["content"] for m in system), limit
            )
        if self._cfg.capture_in_span:
            attrs.update(content)
        if self._cfg.capture_in_event:
            event_attrs = {
                sc.GEN_AI_OPERATION_NAME: sc.OPERATION_CHAT,
                sc.GEN_AI_PROVIDER_NAME: sc.PROVIDER_OPENAI,
                sc.GEN_AI_REQUEST_MODEL: self.params.model,
                **content,
            }
            if self.response_id:
                event_attrs[sc.GEN_AI_RESPONSE_ID] = self.response_id
            self._inst.logger.emit(
                event_name=sc.EVENT_INFERENCE_DETAILS,
                context=self.context,
                attributes=event_attrs,
            )


def current_context():
    """The caller's OTel context, captured in the view and passed explicitly into the stream
    generator (never attached across a `yield`)."""
    return otel_context.get_current()
