"""HTTP routes: the JSON/SSE API and the single-page UI."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterator

from flask import Blueprint, Response, current_app, jsonify, request, send_from_directory, session
from opentelemetry import trace
from werkzeug.exceptions import RequestEntityTooLarge

from assistant import semconv as sc
from assistant.agent.turn import AgentTurn, ToolCallAssembler
from assistant.feedback import RatedResponse
from assistant.genai import ChatCall, ChatParams, current_context
from assistant.llm import INCOMPLETE, INTERNAL, stream_chat_completion, user_error
from assistant.services import Services
from assistant.sessions import Turn
from assistant.sse import frame
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
                )
        except GeneratorExit:
            if call is not None and not finished:
                call.stopped_early(sc.ERROR_CLIENT_DISCONNECTED, "client disconnected")
                log.info("chat %s: client disconnected, upstream call closed", params.model)
            self.error_type = sc.ERROR_CLIENT_DISCONNECTED if not terminal_sent else None
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
