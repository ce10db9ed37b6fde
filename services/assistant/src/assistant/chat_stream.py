"""The SSE body of one chat turn (`ChatStream`): a plain streamed chat call, or with the shop
agent (assistant/agent/) its model calls and tool steps; telemetry finalised on every path."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from assistant import semconv as sc
from assistant.agent.turn import AgentTurn, ToolCallAssembler
from assistant.feedback import RatedResponse
from assistant.genai import ChatCall, ChatParams
from assistant.llm import INCOMPLETE, INTERNAL, stream_chat_completion, user_error
from assistant.services import Services
from assistant.sessions import Turn
from assistant.sse import frame

log = logging.getLogger(__name__)


class ChatStream:
    """The SSE body of one chat: start, deltas, then exactly one of done/error."""

    def __init__(
        self, svc: Services, params: ChatParams, parent, store_key: str, message: str
    ) -> None:
        self.svc = svc
        self.params = params
        self.parent = parent
        self.store_key = store_key
        self.message = message
        self.error_type: str | None = None

    def events(self) -> Iterator[bytes]:
        svc, params, cfg = self.svc, self.params, self.svc.config
        turn: AgentTurn | None = None  # with the shop agent: its steps and tools
        first: ChatCall | None = None  # the turn's first model call: TTFT
        call: ChatCall | None = None  # the current model call
        upstream = None
        finished = False  # the current call's telemetry is finalised
        terminal_sent = False  # done or error was yielded
        t_answer: float | None = None  # the answer's first text delta
        try:
            if svc.agent is not None:
                turn = svc.agent.start_turn(svc.instruments, cfg, params, self.parent)
            context = turn.context if turn is not None else self.parent
            step_params = turn.step_params() if turn is not None else params
            while True:
                call, upstream, finished = (
                    ChatCall(svc.instruments, cfg, step_params, context),
                    None,
                    False,
                )
                if first is None:
                    first = call
                    start = {"response_id": params.response_id, "trace_id": call.trace_id}
                    yield frame("start", {**start, "model": params.model})
                call.begin()
                upstream = stream_chat_completion(
                    svc.client, step_params.create_kwargs(), call.outgoing_headers()
                )
                assembler = ToolCallAssembler() if turn is not None else None
                for chunk in upstream:
                    text = call.on_chunk(chunk)
                    if text:
                        if t_answer is None:
                            t_answer = time.perf_counter()
                        yield frame("delta", {"text": text})
                    if assembler is not None:
                        for started in assembler.add(chunk):
                            yield frame("tool_call", turn.call_event(started))
                upstream.close()
                if call.finish_reason is None:
                    # a stream that just stops raises nothing: report it as cut off
                    self._finish(call, upstream)
                    finished = True
                    self.error_type = call.error_type
                    log.warning(
                        "chat %s failed: %s (%s)", params.model, call.error_type, INCOMPLETE.type
                    )
                    terminal_sent = True
                    yield frame("error", {"type": INCOMPLETE.type, "message": INCOMPLETE.message})
                    return
                # calls cut off by the token limit are incomplete: the answer ends there
                cut = call.finish_reason == "length"
                tool_calls = assembler.assembled() if assembler is not None and not cut else []
                if not tool_calls:
                    break
                call.output_tool_calls = [c.message() for c in tool_calls]
                turn.add_usage(call)
                self._finish(call, upstream)
                finished = True
                if not turn.steps_left:
                    yield from turn.not_run(tool_calls)
                    message = turn.stop_at_step_limit()
                    t_answer = time.perf_counter()  # the text the user gets instead
                    yield frame("delta", {"text": message})
                    break
                yield from turn.run_tools(tool_calls, call)
                step_params = turn.step_params()
            if turn is not None and not finished:
                turn.add_usage(call)
            done = self._done_event(first, call, turn, t_answer)
            if not finished:
                self._finish(call, upstream)
                finished = True
            answer = turn.final_text(call) if turn is not None else call.text
            svc.sessions.append(self.store_key, Turn(self.message, answer))
            terminal_sent = True
            evaluate = svc.evaluator is not None and (turn is None or turn.answered)
            sampled = evaluate and svc.evaluator.sampled(call)
            if sampled:
                done["evaluation"] = "sampled"  # the UI polls for the judge's badge
            yield frame("done", done)
            # resumed once the server has written `done`: a sampled answer is queued for the
            # judge (put_nowait, never waits; assistant/evals/)
            if evaluate:
                svc.evaluator.offer(
                    call,
                    params,
                    self.store_key,
                    self.parent,
                    sampled=sampled,
                    tool_results=turn.tool_results() if turn is not None else (),
                    tool_calls=tuple(turn.judged_calls) if turn is not None else (),
                )
        except GeneratorExit:
            if call is not None and not finished:
                call.stopped_early(sc.ERROR_CLIENT_DISCONNECTED, "client disconnected")
                log.info("chat %s: client disconnected, upstream call closed", params.model)
            if not terminal_sent:
                self.error_type = sc.ERROR_CLIENT_DISCONNECTED
            raise
        except Exception as exc:
            if call is not None and not finished:
                call.failed(exc)
                self.error_type = call.error_type
                error = user_error(exc, answer_started=call.t_first_chunk is not None)
                log.warning("chat %s failed: %s (%s)", params.model, call.error_type, error.type)
                self._finish(call, upstream)
                finished = True
            else:  # a bug, not an LLM failure: still end the stream properly
                log.exception("chat stream failed")
                error = INTERNAL
                self.error_type = self.error_type or sc.ERROR_TYPE_OTHER
            if not terminal_sent:
                terminal_sent = True
                yield frame("error", {"type": error.type, "message": error.message})
        finally:
            if call is not None and not finished:
                self._finish(call, upstream)
            if turn is not None:
                turn.end(self.error_type)

    def _done_event(
        self, first: ChatCall, call: ChatCall, turn: AgentTurn | None, t_answer: float | None
    ) -> dict:
        """The `done` event. TTFT: the first model call's (the span's own value, so that the UI
        and the telemetry agree); usage: summed over the turn's model calls."""
        ttft = first.ttft_s
        now = time.perf_counter()
        if turn is not None:
            tokens = (turn.input_tokens, turn.output_tokens)
        else:
            usage = call.usage
            tokens = (
                (usage.input_tokens, usage.output_tokens) if usage is not None else (None, None)
            )
        done = {
            "finish_reason": turn.stop_reason if turn and turn.stop_reason else call.finish_reason,
            "usage": (
                {"input_tokens": tokens[0], "output_tokens": tokens[1]}
                if tokens[0] is not None and tokens[1] is not None
                else None
            ),
            "ttft_ms": round(ttft * 1000, 3) if ttft is not None else None,
            "duration_ms": round((now - first.t_start) * 1000, 3),
        }
        if turn is not None:
            if t_answer is not None:
                turn.time_to_answer_s = t_answer - first.t_start
            done["time_to_answer_ms"] = (
                round(turn.time_to_answer_s * 1000, 3) if t_answer is not None else None
            )
            done["steps"] = turn.steps
            done["tool_calls"] = turn.tool_calls
            done["tool_errors"] = turn.tool_errors
        return done

    def _finish(self, call: ChatCall, upstream) -> None:
        if upstream is not None:
            try:
                upstream.close()  # stops the upstream generation when the client went away
            except Exception:  # pragma: no cover - closing a broken stream
                log.debug("closing the upstream stream failed", exc_info=True)
        call.finish()
        if call.span is None:
            return  # no LLM call was made: nothing to rate
        cfg = self.svc.config
        self.svc.feedback.remember(
            self.params.response_id,
            RatedResponse(
                session_id=self.store_key,
                span_context=call.span.get_span_context(),
                request_model=self.params.model,
                response_model=call.response_model,
                upstream_response_id=call.response_id,
                server_address=cfg.server_address,
                server_port=cfg.server_port,
            ),
        )
