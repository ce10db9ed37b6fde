"""The evaluator: a sampling decision and a non-blocking hand-off on the request path, one daemon
worker thread per gunicorn worker process that calls the judge and emits the results.

Design (README, "Evaluations"):
- sampling by trace id (the ratio `TraceIdRatioBased` uses), decided before anything is copied,
  so a trace is either evaluated or not, whichever worker or instance serves it;
- a bounded queue and `put_nowait`: a full queue drops the answer and counts it, the chat never
  waits; the thread is started lazily by the first sampled answer in a worker (never in the
  gunicorn master, which serves nothing) and stopped at worker exit with a bounded drain;
- one non-streaming judge call per answer through an openai client of its own, traced as a
  CLIENT span `judge {model}` in the chat's trace, timed in assistant.evaluation.judge.duration;
  only chats (`ChatStream`) are offered, so a judge's own answer is never evaluated (whatever
  the models are called: the real API's default judge gpt-4o-mini is a chat model too); the
  client is built by the thread when it starts, and the idle thread blocks on its queue (no
  polling: stop() queues a marker behind the answers still to evaluate);
- results: `gen_ai.evaluation.result` events parented on the chat span, the
  `gen_ai.evaluation.score` histogram, and a short summary in a TTL map for the UI's badge.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import openai
from opentelemetry import trace
from opentelemetry.propagate import inject
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode

from assistant import semconv as sc
from assistant.config import Config
from assistant.evals.judge import (
    ERROR_INVALID_RESPONSE,
    JudgeError,
    judge_body,
    parse_judge_response,
)
from assistant.genai import error_type_of, token_count
from assistant.store import BoundedTTLMap, SharedTTLMap
from assistant.telemetry import Instruments, baggage_attributes

log = logging.getLogger(__name__)

_TRACE_ID_LOW_BITS = (1 << 64) - 1
DRAIN_TIMEOUT_S = 5.0  # at worker exit: queued answers still evaluated within this bound
STATUS_PENDING = "pending"  # queued; the badge endpoint answers 200 with it, so the UI waits
STATUS_DONE = "done"
STATUS_JUDGE_ERROR = "judge_error"
STATUS_DROPPED = "dropped"
_STOP = object()  # queued by stop(): the worker thread blocks on its queue, it never polls it


def trace_sampled(trace_id: int, rate: float) -> bool:
    """The trace-id ratio decision (as `TraceIdRatioBased`): deterministic per trace."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    return (trace_id & _TRACE_ID_LOW_BITS) < round(rate * (1 << 64))


def _response_key(response_id: str) -> int:
    try:
        return int(response_id.removeprefix("resp_"), 16)
    except ValueError:
        return 0


@dataclass(frozen=True)
class EvalRequest:
    """One delivered answer to evaluate (a copy: nothing refers back to the request)."""

    response_id: str
    session_id: str  # the store key: the badge endpoint is session-scoped like feedback
    span_context: SpanContext  # the chat span's
    model: str
    upstream_response_id: str | None
    question: str
    answer: str
    context: tuple[str, ...]
    baggage: Mapping[str, str]
    tool_calls: tuple[Mapping, ...] = ()  # the agent's calls: {name, arguments, error}


def _record_usage(span, usage) -> None:
    """The judge's token usage on its span (Judge cost, docs/evaluations.md): each count only
    when the response's `usage` has it as a non-negative integer."""
    if not isinstance(usage, dict):
        return
    for key, attr in (
        ("prompt_tokens", sc.GEN_AI_USAGE_INPUT_TOKENS),
        ("completion_tokens", sc.GEN_AI_USAGE_OUTPUT_TOKENS),
    ):
        value = token_count(usage.get(key))
        if value is not None:
            span.set_attribute(attr, value)


def _context_strings(messages) -> tuple[str, ...]:
    """Earlier turns (everything but the system prompt and the last user message), as plain
    strings."""
    turns = [m for m in messages if m.get("role") != "system"][:-1]
    return tuple(f"{m['role']}: {m['content']}" for m in turns)


def _result_map(cfg: Config):
    if cfg.state_file:
        return SharedTTLMap(
            cfg.state_file,
            "evaluations",
            cfg.feedback_max,
            cfg.feedback_ttl_s,
            encode=lambda value: value,
            decode=lambda data: data,
        )
    return BoundedTTLMap[dict](cfg.feedback_max, cfg.feedback_ttl_s)


_RUNNING: list[Evaluator] = []
_RUNNING_LOCK = threading.Lock()


def stop_all(timeout_s: float = DRAIN_TIMEOUT_S) -> None:
    """Stop the evaluators of this process (gunicorn's worker_exit), draining within a bound."""
    with _RUNNING_LOCK:
        running = list(_RUNNING)
        _RUNNING.clear()
    for evaluator in running:
        evaluator.stop(timeout_s)


class Evaluator:
    def __init__(self, cfg: Config, inst: Instruments, client: openai.OpenAI | None = None) -> None:
        self._cfg = cfg
        self._inst = inst
        self.rate = cfg.eval_sample_rate
        self.judge_model = cfg.judge_model
        self._client = client
        self._client_pid = os.getpid() if client is not None else 0
        self._results = _result_map(cfg) if self.enabled else None
        self._queue: queue.Queue = queue.Queue(maxsize=cfg.eval_queue_size)  # EvalRequest, _STOP
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._stopping = threading.Event()
        self._deadline = 0.0
        parts = urlsplit(cfg.judge_base_url)
        self._server_address = parts.hostname or ""
        self._server_port = parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    # --- the request path: never blocks ---------------------------------------------------

    def _count(self, outcome: str, n: int = 1) -> None:
        counter = self._inst.evaluation_requests
        if counter is not None:
            counter.add(n, {sc.ASSISTANT_EVALUATION_OUTCOME: outcome})

    def sampled(self, call) -> bool:
        """Whether the chat call's trace is sampled for the judge (pure, no counting). Without
        a trace (telemetry off: the span context is invalid, trace id 0) the app's random
        response id stands in for the trace id, so the rate still holds."""
        span = getattr(call, "span", None)
        if not self.enabled or span is None:
            return False
        context = span.get_span_context()
        key = context.trace_id if context.is_valid else _response_key(call.params.response_id)
        return trace_sampled(key, self.rate)

    def offer(
        self,
        call,
        params,
        session_id: str,
        parent,
        *,
        sampled: bool | None = None,
        tool_results: tuple[str, ...] = (),
        tool_calls: tuple[Mapping, ...] = (),
    ) -> bool:
        """Hand a finished chat (`ChatCall`, `ChatParams`) to the judge when its trace is sampled;
        True when queued. Never raises, never blocks. `sampled`: the caller's `sampled(call)`,
        so that it is decided once; `tool_results`: what the agent's tools returned in this
        turn ("name: result"), part of the context the answer is judged against; `tool_calls`:
        the turn's calls ({name, arguments, error}), judged by tool_call_correctness."""
        if not self.enabled:
            return False
        try:
            span = call.span
            if span is None:
                return False
            span_context = span.get_span_context()
            if not (self.sampled(call) if sampled is None else sampled):
                self._count(sc.OUTCOME_NOT_SAMPLED)
                return False
            request = EvalRequest(
                response_id=params.response_id,
                session_id=session_id,
                span_context=span_context,
                model=params.model,
                upstream_response_id=call.response_id,
                question=params.messages[-1]["content"],
                answer=call.text,
                context=_context_strings(params.messages) + tool_results,
                baggage=baggage_attributes(parent),
                tool_calls=tool_calls,
            )
            self._ensure_worker()
            self._store(request, STATUS_PENDING, [])  # before the worker can store the result
            try:
                self._queue.put_nowait(request)
            except queue.Full:
                self._store(request, STATUS_DROPPED, [])
                raise
            return True
        except queue.Full:
            self._count(sc.OUTCOME_DROPPED)
            log.debug("evaluation queue full: answer %s not evaluated", params.response_id)
            return False
        except Exception:
            log.exception("handing an answer to the evaluator failed")
            return False

    def result(self, response_id: str, session_id: str) -> dict | None:
        """The badge data of a sampled answer of this session (status pending, done, judge_error
        or dropped), or None (unknown, or not sampled)."""
        if self._results is None:
            return None
        data = self._results.get(response_id)
        if not data or data.get("session_id") != session_id:
            return None
        return {k: v for k, v in data.items() if k != "session_id"}

    # --- the worker thread ----------------------------------------------------------------

    def _ensure_worker(self) -> None:
        pid = os.getpid()
        if self._thread is not None and self._pid == pid:
            return
        with self._lock:
            if self._thread is not None and self._pid == pid:
                return
            self._stopping.clear()
            thread = threading.Thread(target=self._run, name="assistant-evaluator", daemon=True)
            thread.start()
            self._thread, self._pid = thread, pid
        with _RUNNING_LOCK:
            _RUNNING.append(self)

    def _judge_client(self) -> openai.OpenAI:
        """The judge's openai client, built in the worker thread (when it starts, not on the
        request path of the first sampled answer) and again in a forked child."""
        pid = os.getpid()
        if self._client is None or self._client_pid != pid:
            self._client, self._client_pid = self._make_client(), pid
        return self._client

    def _make_client(self) -> openai.OpenAI:
        cfg = self._cfg
        return openai.OpenAI(
            api_key=cfg.judge_api_key or "unused",
            base_url=cfg.judge_base_url,
            timeout=openai.Timeout(cfg.eval_timeout_s, connect=min(5.0, cfg.eval_timeout_s)),
            max_retries=1,
        )

    def stop(self, timeout_s: float = DRAIN_TIMEOUT_S) -> None:
        """Stop the thread: what is queued is still evaluated until `timeout_s` passed."""
        thread = self._thread
        if thread is None:
            return
        self._deadline = time.monotonic() + timeout_s
        self._stopping.set()
        # behind what is queued; a full queue makes room as the thread evaluates
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=timeout_s)
        thread.join(max(0.0, self._deadline - time.monotonic()) + 1.0)
        left = 0
        while True:  # taken out, so that a thread still in a judge call cannot count them again
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                left += 1
        if left:
            self._count(sc.OUTCOME_DROPPED, left)
            log.info("evaluator stopped: %d queued answers not evaluated", left)
        self._thread = None

    def _run(self) -> None:
        try:
            self._judge_client()
        except Exception:  # evaluate() tries again, and counts the failure per answer
            log.exception("building the judge client failed")
        while True:
            request = self._queue.get()  # blocks without polling: an idle worker costs no CPU
            if request is _STOP:
                return
            if self._stopping.is_set() and time.monotonic() > self._deadline:
                self._count(sc.OUTCOME_DROPPED)
                return
            try:
                self.evaluate(request)
            except Exception:  # a bug: never kill the thread
                log.exception("evaluation failed")

    def evaluate(self, request: EvalRequest) -> list[dict] | None:
        """One judge call and its results (in the worker thread); None on a judge error."""
        cfg, inst, judge = self._cfg, self._inst, self.judge_model
        parent = trace.set_span_in_context(NonRecordingSpan(request.span_context))
        span = inst.tracer.start_span(
            f"{sc.JUDGE_SPAN_PREFIX} {judge}",
            context=parent,
            kind=SpanKind.CLIENT,
            attributes={
                sc.GEN_AI_OPERATION_NAME: sc.OPERATION_CHAT,
                sc.GEN_AI_PROVIDER_NAME: sc.PROVIDER_OPENAI,
                sc.GEN_AI_REQUEST_MODEL: judge,
                sc.ASSISTANT_EVALUATION_EVALUATED_MODEL: request.model,
                sc.ASSISTANT_RESPONSE_ID: request.response_id,
                sc.SERVER_ADDRESS: self._server_address,
                sc.SERVER_PORT: self._server_port,
            },
        )
        headers: dict[str, str] = {}
        inject(headers, context=trace.set_span_in_context(span, parent))
        started = time.perf_counter()
        error_type: str | None = None
        verdicts: list[dict] | None = None
        try:
            response = self._judge_client().post(
                "/chat/completions",
                cast_to=object,
                body=judge_body(
                    judge,
                    request.question,
                    request.answer,
                    list(request.context),
                    [dict(c) for c in request.tool_calls],
                ),
                options={"headers": headers},
            )
            if isinstance(response, dict):
                for key, attr in (
                    ("id", sc.GEN_AI_RESPONSE_ID),
                    ("model", sc.GEN_AI_RESPONSE_MODEL),
                ):
                    if isinstance(response.get(key), str):
                        span.set_attribute(attr, response[key])
                _record_usage(span, response.get("usage"))
            verdicts = parse_judge_response(response, with_tools=bool(request.tool_calls))
        except JudgeError:
            error_type = ERROR_INVALID_RESPONSE
        except Exception as exc:
            error_type = error_type_of(exc)
        finally:
            duration = time.perf_counter() - started
            metric_attrs = {sc.ASSISTANT_EVALUATION_JUDGE: judge}
            if error_type:
                metric_attrs[sc.ERROR_TYPE] = error_type
                span.set_attribute(sc.ERROR_TYPE, error_type)
                # the type only: an error's message may quote the judge's answer
                span.set_status(Status(StatusCode.ERROR, error_type))
            if inst.judge_duration is not None:
                inst.judge_duration.record(duration, metric_attrs)
            span.end()
        if verdicts is None:
            self._count(sc.OUTCOME_JUDGE_ERROR)
            log.warning(
                "judge %s: evaluating a %s answer failed: %s", judge, request.model, error_type
            )
            self._store(request, STATUS_JUDGE_ERROR, [])
            return None
        self._emit(request, parent, verdicts, cfg.capture_in_event)
        self._count(sc.OUTCOME_EVALUATED)
        self._store(request, STATUS_DONE, verdicts)
        return verdicts

    def _emit(self, request: EvalRequest, parent, verdicts: list[dict], capture: bool) -> None:
        judge = self.judge_model
        for verdict in verdicts:
            name, score, label = verdict["name"], verdict["score"], verdict["label"]
            attributes = {
                **request.baggage,
                sc.GEN_AI_EVALUATION_NAME: name,
                sc.GEN_AI_EVALUATION_SCORE_VALUE: score,
                sc.GEN_AI_EVALUATION_SCORE_LABEL: label,
                sc.ASSISTANT_RESPONSE_ID: request.response_id,
                sc.GEN_AI_REQUEST_MODEL: request.model,
                sc.GEN_AI_PROVIDER_NAME: sc.PROVIDER_OPENAI,
                sc.ASSISTANT_EVALUATION_JUDGE: judge,
            }
            if request.upstream_response_id:
                attributes[sc.GEN_AI_RESPONSE_ID] = request.upstream_response_id
            if capture and verdict["reason"]:
                attributes[sc.GEN_AI_EVALUATION_EXPLANATION] = verdict["reason"]
            # a short body without content: log pipelines such as Splunk HEC drop empty ones
            self._inst.logger.emit(
                event_name=sc.EVENT_EVALUATION_RESULT,
                context=parent,
                body=f"{name} {score} ({label}) for {request.model}",
                attributes=attributes,
            )
            self._inst.evaluation_score.record(
                score,
                {
                    sc.GEN_AI_EVALUATION_NAME: name,
                    sc.GEN_AI_REQUEST_MODEL: request.model,
                    sc.GEN_AI_PROVIDER_NAME: sc.PROVIDER_OPENAI,
                    sc.ASSISTANT_EVALUATION_JUDGE: judge,
                },
            )

    def _store(self, request: EvalRequest, status: str, verdicts: list[dict]) -> None:
        if self._results is None:
            return
        try:
            self._results.put(
                request.response_id,
                {
                    "session_id": request.session_id,
                    "response_id": request.response_id,
                    "status": status,
                    "model": request.model,
                    "judge": self.judge_model,
                    "evaluations": [
                        {k: v[k] for k in ("name", "score", "label")} for v in verdicts
                    ],
                },
            )
        except Exception:  # pragma: no cover - the shared store degrades by itself
            log.exception("storing an evaluation result failed")
