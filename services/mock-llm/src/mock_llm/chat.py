"""POST /v1/chat/completions: admission, faults, and the streaming / non-streaming answers."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator

from flask import Blueprint, Response, request

from mock_llm import connection, errors
from mock_llm.faults import FAULT_HEADER, FAULT_KINDS, STATUS_FAULTS, draw_fault
from mock_llm.generation import (
    Plan,
    count_prompt_tokens,
    derived_rng,
    draw_defects,
    make_plan,
    question_text,
    request_digest,
)
from mock_llm.judge import JUDGE_MODEL, verdict
from mock_llm.metrics import (
    ACTIVE_STREAMS,
    COMPLETION_TOKENS_TOTAL,
    FAULTS_TOTAL,
    PROMPT_TOKENS_TOTAL,
    QUEUED_REQUESTS,
    REQUESTS_TOTAL,
)
from mock_llm.state import ServiceState, get_state
from mock_llm.tools import ToolTurn, plan_turn
from mock_llm.validation import ChatRequest, context_check, parse_chat_request, parse_json_body

blueprint = Blueprint("chat", __name__)
SYSTEM_FINGERPRINT = "fp_mock"
SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


class Lease:
    """A concurrency slot plus the active-stream gauge, released exactly once."""

    def __init__(self, state: ServiceState, model: str) -> None:
        self._state, self._model = state, model
        self._released = False
        self._lock = threading.Lock()
        state.metrics.add(ACTIVE_STREAMS, 1, model=model)

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        self._state.gates[self._model].release()
        self._state.metrics.add(ACTIVE_STREAMS, -1, model=self._model)


_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")


def _trace_ids(traceparent: str) -> dict:
    """The caller's W3C trace id and parent span id, for the request log (joins a request to the
    client's trace; the mock itself is not instrumented). None when absent or malformed."""
    match = _TRACEPARENT.match(traceparent.strip().lower())
    if not match:
        return {"trace_id": None, "parent_span_id": None}
    return {"trace_id": match.group(1), "parent_span_id": match.group(2)}


def _choose_fault(state: ServiceState, chat: ChatRequest, digest: bytes) -> str | None:
    header = request.headers.get(FAULT_HEADER, "").strip()
    if header:
        if header not in FAULT_KINDS:
            raise errors.bad_request(
                f"Unknown {FAULT_HEADER} {header[:40]!r}; known: {', '.join(FAULT_KINDS)}.",
                FAULT_HEADER,
                "invalid_value",
            )
        return header
    if chat.suffix_fault:
        return chat.suffix_fault
    rates = state.faults.effective_rates(chat.profile.name, chat.profile.faults)
    if not rates:
        return None
    occurrence = state.occurrence(digest)
    uniform = derived_rng(digest + occurrence.to_bytes(8, "big"), "fault").random()
    return draw_fault(rates, uniform)


def _status_fault(kind: str, model: str, retry_after_ms: int) -> errors.ApiError:
    if kind == "429":
        return errors.rate_limited(
            f"Rate limit reached for {model} in organization org-mock on requests per min (RPM): "
            f"Limit 60, Used 60, Requested 1. Please try again in {retry_after_ms}ms.",
            "requests",
            retry_after_ms,
        )
    if kind == "quota":
        return errors.insufficient_quota()
    if kind == "500":
        return errors.server_error()
    if kind == "503":
        return errors.overloaded()
    return errors.invalid_api_key("sk-mock-fault")


def _rate_limit_error(model: str, admission) -> errors.ApiError:
    unit = (
        "requests per min (RPM)" if admission.limited_by == "requests" else "tokens per min (TPM)"
    )
    wait_ms = max(1, round(admission.retry_after_s * 1000))
    return errors.rate_limited(
        f"Rate limit reached for {model} in organization org-mock on {unit}: "
        f"Limit {admission.limit}, Used {admission.used}, Requested {admission.requested}. "
        f"Please try again in {wait_ms}ms.",
        admission.limited_by,
        wait_ms,
    )


@blueprint.post("/v1/chat/completions")
def chat_completions() -> Response:
    arrived, arrived_at = time.monotonic(), time.time()  # ground truth starts here
    state = get_state()
    request_id = f"req_{uuid.uuid4().hex}"
    chat = parse_chat_request(parse_json_body(request.get_data(cache=False)), state.profiles)
    profile = chat.profile
    model = profile.name
    prompt_tokens = count_prompt_tokens(chat.messages)
    if chat.tools:
        prompt_tokens += chat.tools.prompt_tokens()
    too_long = context_check(profile, prompt_tokens, chat.limit)
    if too_long:
        raise too_long
    digest = request_digest(state.settings.seed, chat.seed, model, chat.messages)
    fault = _choose_fault(state, chat, digest)
    expected = min(chat.limit or profile.output_tokens_max, profile.output_tokens_max)
    admission = state.limiter.admit(profile, prompt_tokens + expected)
    headers = {"x-request-id": request_id, "openai-model": model, **admission.headers}
    entry = {
        "request_id": request_id,
        "model": model,
        "stream": chat.stream,
        "fault": fault,
        "prompt_tokens": prompt_tokens,
        "time": time.time(),
        **_trace_ids(request.headers.get("traceparent", "")),
    }

    def refuse(error: errors.ApiError) -> Response:
        error.headers = {**headers, **error.headers}
        state.metrics.add(REQUESTS_TOTAL, model=model, status=str(error.status))
        state.record({**entry, "status": error.status})
        return error.response()

    if fault:
        state.metrics.add(FAULTS_TOTAL, model=model, kind=fault)
    if fault in STATUS_FAULTS:
        return refuse(_status_fault(fault, model, state.profiles.fault_settings.retry_after_ms))
    if not admission.allowed:
        return refuse(_rate_limit_error(model, admission))
    gate = state.gates[model]
    state.metrics.set(QUEUED_REQUESTS, gate.waiting + 1, model=model)
    admitted = gate.acquire()
    admitted_at = time.monotonic()
    state.metrics.set(QUEUED_REQUESTS, gate.waiting, model=model)
    if not admitted:
        return refuse(
            errors.rate_limited(
                f"Too many concurrent requests for {model}: {profile.max_concurrency} in "
                f"progress and {profile.queue_limit} queued. Please try again in 1s.",
                "requests",
                1000,
            )
        )
    lease = Lease(state, model)
    handed_over = False  # a stream releases its lease when the response closes
    try:
        turn: ToolTurn | None = None
        pieces, finish = None, "stop"
        if model == JUDGE_MODEL:  # the judge's verdict JSON; it has no quality defects
            text, defects = verdict(chat.messages), ()
        else:
            text = None
            defects = draw_defects(digest, profile.quality, fault, question_text(chat.messages))
            if chat.tools:  # tool calls, or an answer grounded on tool results (tools.py)
                tool_digest = digest + chat.tools.canonical
                turn = plan_turn(
                    chat.tools,
                    tool_digest,
                    question_text(chat.messages),
                    profile.tools,
                    fault,
                    lambda purpose: derived_rng(tool_digest, purpose),
                )
                entry["tools"] = turn.summary()
                if turn.calls:
                    pieces, finish, defects = turn.pieces, "tool_calls", ()
                elif turn.text is not None:
                    pieces, defects = turn.text_tokens(), ()
        plan = make_plan(
            digest,
            chat.messages,
            profile,
            prompt_tokens,
            chat.limit,
            fault,
            state.profiles.fault_settings,
            defects,
            text,
            pieces,
            finish,
        )
        state.metrics.add(PROMPT_TOKENS_TOTAL, prompt_tokens, model=model)
        entry["arrived_at"] = arrived_at
        answer = Answer(state, chat, plan, fault, prompt_tokens, lease, entry, arrived, admitted_at)
        answer.tool_turn = turn if turn and turn.calls else None
        headers.update(answer.ground_truth_headers())
        if chat.stream:
            state.metrics.add(REQUESTS_TOTAL, model=model, status="200")
            entry["status"] = 200
            state.record(entry)
            response = Response(answer.stream(), headers={**headers, **SSE_HEADERS})
            response.call_on_close(lease.release)
            handed_over = True
            return response
        try:
            body = answer.complete()
        except errors.ApiError as error:
            return refuse(error)
        state.metrics.add(REQUESTS_TOTAL, model=model, status="200")
        entry["status"] = 200
        state.record(entry)
        return Response(body, mimetype="application/json", headers=headers)
    finally:
        if not handed_over:
            lease.release()


class Answer:
    """One admitted answer: its chunks, pacing and delivery fault, and its request-log entry
    (the ground truth of what the mock scheduled and sent)."""

    def __init__(
        self,
        state: ServiceState,
        chat: ChatRequest,
        plan: Plan,
        fault: str | None,
        prompt_tokens: int,
        lease: Lease,
        entry: dict,
        arrived: float,
        admitted: float,
    ) -> None:
        self.state, self.chat, self.plan, self.fault = state, chat, plan, fault
        self.prompt_tokens, self.lease, self.entry = prompt_tokens, lease, entry
        self.arrived, self.admitted = arrived, admitted
        self.completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.sock = request.environ.get(connection.SOCKET_KEY)
        self.send_headers = request.environ.get(connection.SEND_HEADERS_KEY)
        self.model = chat.profile.name
        self.role_early = chat.profile.role_chunk == "early"
        self.tool_turn: ToolTurn | None = None  # set when this answer is tool calls
        entry.update(
            completion_id=self.completion_id,
            queue_ms=_ms(admitted - arrived),
            scheduled_ttft_ms=_ms(admitted - arrived + plan.ttft_s),
            plan=plan.summary(),
            role_chunk=chat.profile.role_chunk,
            quality_defects=list(plan.quality_defects),
            tokens_sent=0,
            first_token_ms=None,
            last_token_ms=None,
            completed=False,
        )

    def ground_truth_headers(self) -> dict[str, str]:
        return {
            "x-mock-queue-ms": str(self.entry["queue_ms"]),
            "x-mock-ttft-ms": str(self.entry["scheduled_ttft_ms"]),
            "x-mock-completion-id": self.completion_id,
        }

    def _ended(self, sent: int, first: float | None, last: float | None, completed: bool) -> None:
        """Write what was actually sent into the log entry, once, when the answer ends."""
        self.entry.update(
            tokens_sent=sent,
            first_token_ms=None if first is None else _ms(first - self.arrived),
            last_token_ms=None if last is None else _ms(last - self.arrived),
            completed=completed,
        )

    def usage(self, completion_tokens: int) -> dict:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": self.prompt_tokens + completion_tokens,
        }

    def _fault_point(self) -> int | None:
        """Content chunks to send before a delivery fault strikes (None: no such fault)."""
        if self.fault in ("midstream_error", "disconnect", "truncate", "stall"):
            after = self.state.profiles.fault_settings.after_chunks
            return min(after, len(self.plan.tokens))
        return None

    @staticmethod
    def _sleep_until(moment: float) -> float:
        """Sleep until `moment` (monotonic); return the time it is then."""
        now = time.monotonic()
        if moment > now:
            time.sleep(moment - now)
            now = time.monotonic()
        return now

    def _schedule(self) -> Iterator[float]:
        moment = self.admitted + self.plan.ttft_s
        yield moment
        for gap in self.plan.gaps_s:
            moment += gap
            yield moment

    def complete(self) -> bytes:
        """The non-streaming answer, after TTFT + one inter-token gap per further token."""
        fault_point = self._fault_point()
        if self.fault in ("disconnect", "stall"):
            self._sleep_until(self.admitted + self.plan.ttft_s)
            if self.fault == "stall":
                connection.wait_until_client_leaves(self.sock, self.state.settings.stall_s)
            connection.drop(self.sock)
            self._ended(0, None, None, False)
            return b""
        *_, finished = self._schedule()
        done = self._sleep_until(finished)
        if self.fault == "midstream_error" and fault_point is not None:
            self._ended(0, None, None, False)
            raise errors.server_error()
        tokens = self.plan.tokens
        self.state.metrics.add(COMPLETION_TOKENS_TOTAL, len(tokens), model=self.model)
        message = {
            "role": "assistant",
            "content": "".join(tokens),
            "refusal": None,
            "annotations": [],
        }
        if self.tool_turn:
            message["content"] = None
            message["tool_calls"] = self.tool_turn.sent_calls(len(tokens))
        body = {
            "id": self.completion_id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": self.plan.finish_reason,
                }
            ],
            "usage": self.usage(len(tokens)),
        }
        self._ended(len(tokens), done, done, True)  # every token arrives at once
        return json.dumps(body, separators=(",", ":")).encode()

    def stream(self) -> Iterator[bytes]:
        """SSE events: role chunk (with the first token, or early), one chunk per token, finish
        chunk, usage chunk, [DONE]."""
        try:
            yield from self._stream()
        finally:
            self.lease.release()

    def _stream(self) -> Iterator[bytes]:
        head = json.dumps(
            {
                "id": self.completion_id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "system_fingerprint": SYSTEM_FINGERPRINT,
            },
            separators=(",", ":"),
        )[:-1]
        usage_null = ',"usage":null' if self.chat.include_usage else ""

        def chunk(delta: str, finish: str = "null") -> bytes:
            return (
                f'data: {head},"choices":[{{"index":0,"delta":{delta},"logprobs":null,'
                f'"finish_reason":{finish}}}]{usage_null}}}\n\n'
            ).encode()

        # with_first_token: the headers go out now, the role chunk is held back and written
        # together with the first content chunk; early: the role chunk goes out now
        turn = self.tool_turn
        if turn:  # tool calls: the role goes in the first tool-call chunk (content null)
            role = chunk('{"role":"assistant","content":null,"refusal":null}')
        else:
            role = chunk('{"role":"assistant","content":"","refusal":null}')

        def content(position: int, token: str, first: bool) -> bytes:
            if turn:
                return chunk(turn.delta(position, first and bool(role)))
            return chunk(json.dumps({"content": token}, separators=(",", ":")))

        if self.role_early:
            yield role
            role = b""
        else:
            connection.send_headers(self.send_headers)
        fault_point = self._fault_point()
        sent = 0
        first = last = None  # monotonic, right before the yield of the first / last content chunk
        completed = False
        try:
            try:
                for token, moment in zip(self.plan.tokens, self._schedule(), strict=False):
                    if sent == fault_point:
                        break
                    now = self._sleep_until(moment)
                    if sent == 0:
                        first = now
                        if turn and role:  # the role rides in the first tool-call chunk
                            yield content(0, token, True)
                        else:
                            yield role + content(0, token, False)
                    else:
                        yield content(sent, token, False)
                    sent += 1
                    last = now
            finally:
                self.state.metrics.add(COMPLETION_TOKENS_TOTAL, sent, model=self.model)
            if sent == 0 and role:  # a fault before any content: the role chunk still goes
                self._sleep_until(self.admitted + self.plan.ttft_s)  # out, at the TTFT moment
                yield role
            if fault_point is not None:
                yield from self._stream_fault()
                return
            tail = chunk("{}", json.dumps(self.plan.finish_reason))
            if self.chat.include_usage:
                usage = json.dumps(self.usage(sent), separators=(",", ":"))
                tail += f'data: {head},"choices":[],"usage":{usage}}}\n\n'.encode()
            yield tail + b"data: [DONE]\n\n"  # one write: no small back-to-back segments
            completed = True
        finally:
            self._ended(sent, first, last, completed)

    def _stream_fault(self) -> Iterator[bytes]:
        if self.fault == "midstream_error":
            body = json.dumps(errors.server_error().body(), separators=(",", ":"))
            yield f"data: {body}\n\n".encode()
        elif self.fault == "disconnect":
            connection.drop(self.sock)
        elif self.fault == "stall":
            connection.wait_until_client_leaves(self.sock, self.state.settings.stall_s)
            connection.drop(self.sock)
        # truncate: the stream simply ends, without finish chunk, usage or [DONE]


def _ms(seconds: float) -> float:
    """Milliseconds, 3 decimals, as the request log and x-mock-* headers show them."""
    return round(seconds * 1000, 3)
