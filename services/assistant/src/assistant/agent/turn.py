"""One chat turn of the shop agent: model calls and tool runs until a final answer.

The SSE stream (chat_stream.ChatStream) drives it: each step is one streamed `chat {model}` call
(genai.ChatCall); `ToolCallAssembler` collects the tool calls the model streams; when a step
ends with tool calls, `run_tools` executes them (one `execute_tool {tool}` span each) and the
next step sends their results back. All spans of the turn are children of one
`invoke_agent shop-assistant` INTERNAL span (GenAI semconv v1.41.1), which carries the turn's
summed token usage. The turn ends at the first step without tool calls, or after
`max_steps` model calls with a fixed message (STEP_LIMIT_MESSAGE).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from assistant import semconv as sc
from assistant.agent.faults import ERROR_TOOL_FAULT, ToolFault, draw
from assistant.agent.tools import DEFINITIONS_JSON, TOOLS, ShopTools, ToolResult, tool_error
from assistant.config import Config
from assistant.genai import ChatCall, ChatParams
from assistant.sse import frame
from assistant.telemetry import Instruments, baggage_attributes

STEP_LIMIT_MESSAGE = (
    "I could not finish looking this up: I reached my limit of {steps} steps. Please ask again, "
    "perhaps about one thing at a time."
)
ERROR_NOT_RUN = "not_run"  # a tool call of the last allowed step: no model call would read it


@dataclass(frozen=True)
class Agent:
    """The agent's fixed parts, built once per worker (Services.agent)."""

    tools: ShopTools
    max_steps: int
    faults: Mapping[str, ToolFault]

    def start_turn(self, inst: Instruments, cfg: Config, params: ChatParams, parent) -> AgentTurn:
        return AgentTurn(self, inst, cfg, params, parent)


@dataclass
class AssembledCall:
    index: int
    id: str
    name: str
    arguments: str

    def message(self) -> dict:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


class ToolCallAssembler:
    """Tool calls from streamed deltas: the first delta of a call (by `index`) has its id and
    name, later ones append argument fragments (OpenAI's streaming format)."""

    def __init__(self) -> None:
        self.calls: dict[int, AssembledCall] = {}

    def add(self, chunk) -> list[AssembledCall]:
        """Account for one chunk; returns the calls it started."""
        if not isinstance(chunk, dict):
            return []
        choices = chunk.get("choices")
        if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
            return []
        delta = choices[0].get("delta")
        entries = delta.get("tool_calls") if isinstance(delta, dict) else None
        if not entries or not isinstance(entries, list):
            return []
        started = []
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            index = entry.get("index", 0)
            function = entry.get("function") if isinstance(entry.get("function"), dict) else {}
            fragment = function.get("arguments")
            call = self.calls.get(index) if isinstance(index, int) else None
            if call is None:
                if not isinstance(index, int):
                    continue
                call = AssembledCall(index, "", "", "")
                self.calls[index] = call
                started.append(call)
            if isinstance(entry.get("id"), str) and not call.id:
                call.id = entry["id"]
            if isinstance(function.get("name"), str) and not call.name:
                call.name = function["name"]
            if isinstance(fragment, str):
                call.arguments += fragment
        return started

    def assembled(self) -> list[AssembledCall]:
        calls = [self.calls[i] for i in sorted(self.calls)]
        for n, call in enumerate(calls):
            call.id = call.id or f"call_missing_{n}"  # a server that sent none: still answerable
        return calls


class AgentTurn:
    """The `invoke_agent` span, the conversation of the turn (with tool messages), the summed
    usage, and the tool runs. `end()` exactly once, in a finally."""

    def __init__(
        self, agent: Agent, inst: Instruments, cfg: Config, params: ChatParams, parent
    ) -> None:
        self.agent, self._inst, self._cfg, self.params = agent, inst, cfg, params
        self.span = inst.tracer.start_span(
            f"{sc.OPERATION_INVOKE_AGENT} {sc.AGENT_NAME}",
            context=parent,
            kind=SpanKind.INTERNAL,
            attributes={
                sc.GEN_AI_OPERATION_NAME: sc.OPERATION_INVOKE_AGENT,
                sc.GEN_AI_PROVIDER_NAME: sc.PROVIDER_OPENAI,
                sc.GEN_AI_AGENT_NAME: sc.AGENT_NAME,
                sc.GEN_AI_AGENT_DESCRIPTION: sc.AGENT_DESCRIPTION,
                sc.GEN_AI_REQUEST_MODEL: params.model,
                sc.GEN_AI_CONVERSATION_ID: params.conversation_id,
                sc.ASSISTANT_RESPONSE_ID: params.response_id,
                **baggage_attributes(parent),
            },
        )
        self.context = trace.set_span_in_context(self.span, parent)
        self.messages: list[dict] = list(params.messages)
        self.steps = 0
        self.tool_calls = 0
        self.tool_errors = 0
        self.results: list[tuple[str, str]] = []  # (tool name, result content) in order
        self.judged_calls: list[dict] = []  # {name, arguments, error} of each call that ran
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.stop_reason: str | None = None
        self.time_to_answer_s: float | None = None  # set by the stream with the done event
        self._ended = False

    def step_params(self) -> ChatParams:
        """The next model call: the turn's conversation so far, and the tools."""
        self.steps += 1
        return replace(self.params, messages=tuple(self.messages), tools=TOOLS)

    @property
    def steps_left(self) -> bool:
        return self.steps < self.agent.max_steps

    def add_usage(self, call: ChatCall) -> None:
        usage = call.usage
        if usage is None:
            return
        self.input_tokens = (self.input_tokens or 0) + usage.input_tokens
        self.output_tokens = (self.output_tokens or 0) + usage.output_tokens

    def call_event(self, call: AssembledCall) -> dict:
        """The `tool_call` event: the model started a call (its id and name came first)."""
        return {"step": self.steps, "index": call.index, "id": call.id, "name": call.name}

    def stop_at_step_limit(self) -> str:
        """End the turn without a model answer; returns the message the user gets instead."""
        self.stop_reason = sc.STOP_REASON_MAX_STEPS
        return STEP_LIMIT_MESSAGE.format(steps=self.agent.max_steps)

    @property
    def answered(self) -> bool:
        """The model gave the final answer (not the step-limit message): worth judging."""
        return self.stop_reason is None

    def final_text(self, call: ChatCall) -> str:
        if self.stop_reason is not None:
            return STEP_LIMIT_MESSAGE.format(steps=self.agent.max_steps)
        return call.text

    def run_tools(self, calls: list[AssembledCall], call: ChatCall) -> Iterator[bytes]:
        """Run the step's tool calls in order; yields one `tool_result` event per call, and
        extends the conversation with the assistant's calls and the tool messages."""
        self.messages.append(
            {
                "role": "assistant",
                "content": call.text or None,
                "tool_calls": [c.message() for c in calls],
            }
        )
        for tool_call in calls:
            result, seconds = self._execute(tool_call)
            self.messages.append(
                {"role": "tool", "tool_call_id": tool_call.id, "content": result.content}
            )
            self.results.append((tool_call.name, result.content))
            self.judged_calls.append(
                {
                    "name": tool_call.name,
                    "arguments": tool_call.arguments,
                    "error": result.error_type,
                }
            )
            yield frame("tool_result", self._result_event(tool_call, result, seconds))

    def not_run(self, calls: list[AssembledCall]) -> Iterator[bytes]:
        """The tool calls of the last allowed step: reported, never executed."""
        result = tool_error(ERROR_NOT_RUN, "not run: the step limit was reached")
        for tool_call in calls:
            yield frame("tool_result", self._result_event(tool_call, result, 0.0))

    def _execute(self, tool_call: AssembledCall) -> tuple[ToolResult, float]:
        cfg, inst = self._cfg, self._inst
        tools = self.agent.tools
        attributes = {
            sc.GEN_AI_OPERATION_NAME: sc.OPERATION_EXECUTE_TOOL,
            sc.GEN_AI_TOOL_NAME: tool_call.name,
            sc.GEN_AI_TOOL_CALL_ID: tool_call.id,
            sc.GEN_AI_TOOL_TYPE: sc.TOOL_TYPE_FUNCTION,
            sc.GEN_AI_REQUEST_MODEL: self.params.model,
        }
        description = tools.descriptions.get(tool_call.name)
        if description:
            attributes[sc.GEN_AI_TOOL_DESCRIPTION] = description
        if cfg.capture_in_span:
            attributes[sc.GEN_AI_TOOL_CALL_ARGUMENTS] = tool_call.arguments[
                : cfg.attribute_value_limit
            ]
        span = inst.tracer.start_span(
            f"{sc.OPERATION_EXECUTE_TOOL} {tool_call.name}",
            context=self.context,
            kind=SpanKind.INTERNAL,
            attributes=attributes,
        )
        started = time.perf_counter()
        try:
            fault = self.agent.faults.get(tool_call.name)
            if fault is not None and fault.applies(draw()):
                time.sleep(fault.delay_s)
                result = (
                    tool_error(ERROR_TOOL_FAULT, f"{tool_call.name} failed (injected fault)")
                    if fault.error
                    else tools.run(tool_call.name, tool_call.arguments)
                )
            else:
                result = tools.run(tool_call.name, tool_call.arguments)
        except Exception as exc:  # a bug in a tool: an error for the model, never a 500
            result = tool_error("internal_error", "The tool failed.")
            span.record_exception(exc)
        seconds = time.perf_counter() - started
        self.tool_calls += 1
        metric_attributes = {
            sc.GEN_AI_OPERATION_NAME: sc.OPERATION_EXECUTE_TOOL,
            sc.GEN_AI_TOOL_NAME: tool_call.name,
            sc.GEN_AI_REQUEST_MODEL: self.params.model,
        }
        if result.error_type:
            self.tool_errors += 1
            span.set_attribute(sc.ERROR_TYPE, result.error_type)
            span.set_status(Status(StatusCode.ERROR, result.error_type))
            metric_attributes[sc.ERROR_TYPE] = result.error_type
        elif cfg.capture_in_span:
            span.set_attribute(sc.GEN_AI_TOOL_CALL_RESULT, result.content)
        inst.duration.record(seconds, metric_attributes)
        span.end()
        return result, seconds

    def _result_event(self, tool_call: AssembledCall, result: ToolResult, seconds: float) -> dict:
        event = {
            "step": self.steps,
            "id": tool_call.id,
            "name": tool_call.name,
            "duration_ms": round(seconds * 1000, 3),
            "ok": result.ok,
            "summary": result.summary,
            "error": result.error_type,
        }
        if self._cfg.content_capture != "NO_CONTENT":
            event["arguments"] = tool_call.arguments
        return event

    def tool_results(self) -> tuple[str, ...]:
        """What the tools returned, as the evaluator's context ("name: result")."""
        return tuple(f"tool {name}: {content}" for name, content in self.results)

    def end(self, error_type: str | None) -> None:
        if self._ended:
            return
        self._ended = True
        attributes: dict = {sc.ASSISTANT_AGENT_STEPS: self.steps}
        if self.input_tokens is not None:
            attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] = self.input_tokens
        if self.output_tokens is not None:
            attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = self.output_tokens
        if self.stop_reason:
            attributes[sc.ASSISTANT_AGENT_STOP_REASON] = self.stop_reason
        if self.time_to_answer_s is not None:
            attributes[sc.ASSISTANT_AGENT_TIME_TO_ANSWER] = self.time_to_answer_s
        if self._cfg.capture_in_span:
            attributes[sc.GEN_AI_TOOL_DEFINITIONS] = DEFINITIONS_JSON[
                : self._cfg.attribute_value_limit
            ]
        if error_type:
            attributes[sc.ERROR_TYPE] = error_type
            self.span.set_status(Status(StatusCode.ERROR, error_type))
        self.span.set_attributes(attributes)
        self.span.end()
