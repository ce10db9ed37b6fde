"""Line-by-line parsing of streamed answers: OpenAI Chat Completions chunks and the app's events.

`StreamParser.feed(line, at_ms)` is called once per line with the time the line arrived (ms since
the request started); `outcome()` classifies the finished stream.

The assistant's stream is `start`, then `delta` events (the answer's text), then `done` or
`error`; with its shop agent on, `tool_call` events (the model started a tool call) and
`tool_result` events (the tool ran) may come before and between the deltas, and `done` adds the
turn's steps, tool calls, tool errors and time to the answer.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

# Error kinds (the keys of the report's errors_by_kind) that are not HTTP statuses or error events.
TRUNCATED = "truncated"  # the stream ended cleanly but without its terminal event / [DONE]
DROPPED = "dropped"  # the connection broke mid-stream
TIMEOUT = "timeout"  # no byte for LOADGEN_REQUEST_TIMEOUT_S
MALFORMED = "malformed"  # a data line that is not JSON
EMPTY = "empty"  # a finished answer without any content
CONNECTION = "connection_error"  # no HTTP response at all


@dataclass
class StreamParser:
    """Accumulates one streamed answer. `mode` is "openai" or "assistant"."""

    mode: str
    content_ms: list[float] = field(default_factory=list)  # every text event (delta / content)
    tool_call_ms: list[float] = field(default_factory=list)  # every `tool_call` event (agent)
    text_parts: list[str] = field(default_factory=list)
    last_line_ms: float | None = None
    finish_reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    response_id: str | None = None
    trace_id: str | None = None
    model: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    server_ttft_ms: float | None = None  # the assistant's TTFT of this request (its span's)
    server_duration_ms: float | None = None  # the assistant's chat call, request to `done`
    # the shop agent's figures of the turn, from `done` (None when it did not send them: no agent)
    steps: int | None = None
    tool_calls: int | None = None
    tool_errors: int | None = None
    server_time_to_answer_ms: float | None = None  # the first model call's start to the 1st text
    tool_results: int = 0  # `tool_result` events read
    terminal: bool = False
    malformed: bool = False
    _event: str = "message"
    _call_ids: set[str] = field(default_factory=set)  # ids of the `tool_call` events read

    @property
    def ttft_ms(self) -> float | None:
        """The first output event: a `tool_call` or a text event, whichever came first (the
        assistant's TTFT likewise stops at the first output-bearing chunk, a tool-call delta
        included)."""
        first = [times[0] for times in (self.content_ms, self.tool_call_ms) if times]
        return min(first) if first else None

    @property
    def answer_ms(self) -> float | None:
        """The first text event: when the answer's first words arrived (None without text)."""
        return self.content_ms[0] if self.content_ms else None

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    def feed(self, line: str, at_ms: float) -> None:
        line = line.rstrip("\r\n")
        if not line:
            self._event = "message"  # a blank line ends an SSE event
            return
        self.last_line_ms = at_ms
        if line.startswith(":"):
            return  # keep-alive comment
        if line.startswith("event:"):
            self._event = line[6:].strip()
            return
        if not line.startswith("data:"):
            return  # id:, retry: and anything unknown
        payload = line[5:].strip()
        if self.mode == "openai":
            self._openai(payload, at_ms)
        else:
            self._assistant(payload, at_ms)

    def _json(self, payload: str) -> dict | None:
        try:
            value = json.loads(payload)
        except ValueError:
            self.malformed = True
            return None
        if not isinstance(value, dict):
            self.malformed = True
            return None
        return value

    def _content(self, text: object, at_ms: float) -> None:
        if isinstance(text, str) and text:
            self.content_ms.append(at_ms)
            self.text_parts.append(text)

    def _openai(self, payload: str, at_ms: float) -> None:
        if payload == "[DONE]":
            self.terminal = True
            return
        chunk = self._json(payload)
        if chunk is None:
            return
        if chunk.get("error"):
            error = chunk["error"]
            if not isinstance(error, dict):
                error = {"message": error}
            self.error_type = str(error.get("code") or error.get("type") or "error")
            self.error_message = str(error.get("message") or "")
            self.terminal = True
            return
        self.response_id = self.response_id or chunk.get("id")
        self.model = self.model or chunk.get("model")
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            self._content(delta.get("content"), at_ms)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.input_tokens = usage.get("prompt_tokens", self.input_tokens)
            self.output_tokens = usage.get("completion_tokens", self.output_tokens)

    def _assistant(self, payload: str, at_ms: float) -> None:
        data = self._json(payload)
        if data is None:
            return
        event = self._event
        if event == "start":
            self.response_id = data.get("response_id")
            self.trace_id = data.get("trace_id")
            self.model = data.get("model")
        elif event == "delta":
            self._content(data.get("text"), at_ms)
        elif event == "tool_call":
            call_id = data.get("id")
            if not isinstance(call_id, str) or not call_id:
                self.malformed = True
                return
            self._call_ids.add(call_id)
            self.tool_call_ms.append(at_ms)
        elif event == "tool_result":
            # a result answers a call announced before it: anything else is a broken stream
            call_id = data.get("id")
            if not isinstance(call_id, str) or call_id not in self._call_ids:
                self.malformed = True
                return
            self.tool_results += 1
        elif event == "done":
            self.terminal = True
            self.finish_reason = data.get("finish_reason")
            usage = data.get("usage") or {}
            self.input_tokens = usage.get("input_tokens")
            self.output_tokens = usage.get("output_tokens")
            self.server_ttft_ms = _number(data.get("ttft_ms"))
            self.server_duration_ms = _number(data.get("duration_ms"))
            self.server_time_to_answer_ms = _number(data.get("time_to_answer_ms"))
            self.steps = _count(data.get("steps"))
            self.tool_calls = _count(data.get("tool_calls"))
            self.tool_errors = _count(data.get("tool_errors"))
        elif event == "error":
            self.terminal = True
            self.error_type = str(data.get("type") or "error")
            self.error_message = str(data.get("message") or "")

    def outcome(self, status: int, failure: str | None = None) -> str | None:
        """None when the answer is good, else its error kind.

        `failure` is TIMEOUT / DROPPED when reading raised; it does not count once the terminal
        event has arrived (a reset after [DONE] lost nothing).
        """
        if status == 0:
            return CONNECTION
        if status != 200:
            return f"http_{status}"
        if self.malformed:
            return MALFORMED
        if self.error_type is not None:
            return f"error_event:{self.error_type}"
        if failure and not self.terminal:
            return failure
        if not self.terminal:
            return TRUNCATED
        if self.mode == "openai" and self.finish_reason is None:
            return TRUNCATED
        if not self.content_ms:
            return EMPTY
        return None


def _number(value) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _count(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def read_stream(resp, parser: StreamParser, t0: float) -> str | None:
    """Feed every line of a Locust FastHttpUser streamed response to `parser` as it arrives.

    Reads whole lines from the socket (`resp._response.readline`), not Locust's 1 KiB
    `iter_content` chunks, so every content event gets its own arrival time (ms after `t0`, a
    `time.perf_counter()` value). Returns TIMEOUT / DROPPED when reading failed, else None.
    """
    raw = resp._response
    try:
        while True:
            line = raw.readline(b"\n")
            at_ms = (time.perf_counter() - t0) * 1000.0
            if not line:
                return None
            parser.feed(line.decode("utf-8", "replace"), at_ms)
            if parser.malformed:
                raw.release()  # closes the half-read connection instead of reusing it
                return None
    except TimeoutError:
        return TIMEOUT
    except Exception:  # reset, closed mid-chunk, broken HTTP framing
        return DROPPED


def http_error_code(body: bytes) -> str | None:
    """`error.code` (or `error.type`) of a JSON error body, if there is one."""
    try:
        error = json.loads(body.decode("utf-8", "replace")).get("error")
    except (ValueError, AttributeError):
        return None
    if not isinstance(error, dict):
        return None
    code = error.get("code") or error.get("type")
    return str(code) if code else None
