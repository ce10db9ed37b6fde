"""User feedback: a bounded TTL map from response id to the chat span it rates, and the
`gen_ai.evaluation.result` event plus satisfaction metrics.

The event (log record and span event) carries the feedback request's allow-listed baggage, as
the spans do (telemetry.baggage_attributes): a rating sent by the load generator says
`synthetic_request=true` and its `loadgen.run_id`, so real and simulated ratings can be told
apart. The metrics do not (a run id per run would be a new series each time)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from assistant import semconv as sc
from assistant.store import BoundedTTLMap, SharedTTLMap
from assistant.telemetry import Instruments, baggage_attributes


@dataclass(frozen=True)
class RatedResponse:
    """What a later feedback needs to know about an answer."""

    session_id: str
    span_context: SpanContext
    request_model: str
    response_model: str | None
    upstream_response_id: str | None
    server_address: str
    server_port: int
    revisions: int = 0  # feedback received so far


def _encode(answer: RatedResponse) -> dict:
    context = answer.span_context
    return {
        **{f.name: getattr(answer, f.name) for f in fields(answer) if f.name != "span_context"},
        "trace_id": context.trace_id,
        "span_id": context.span_id,
        "trace_flags": int(context.trace_flags),
    }


def _decode(data: dict) -> RatedResponse:
    context = SpanContext(
        data.pop("trace_id"),
        data.pop("span_id"),
        is_remote=False,
        trace_flags=TraceFlags(data.pop("trace_flags")),
    )
    return RatedResponse(span_context=context, **data)


def shared_answer_map(path: str, max_entries: int, ttl_s: float) -> SharedTTLMap[RatedResponse]:
    """Rated answers in the workers' shared SQLite file."""
    return SharedTTLMap(path, "answers", max_entries, ttl_s, encode=_encode, decode=_decode)


def score_label(score: int) -> str:
    if score >= 4:
        return "thumbs_up"
    if score <= 2:
        return "thumbs_down"
    return "neutral"


class FeedbackRecorder:
    def __init__(
        self,
        inst: Instruments,
        max_entries: int,
        ttl_s: float,
        shared: SharedTTLMap[RatedResponse] | None = None,
    ) -> None:
        self._inst = inst
        self._answers = (
            shared if shared is not None else BoundedTTLMap[RatedResponse](max_entries, ttl_s)
        )

    def remember(self, response_id: str, answer: RatedResponse) -> None:
        self._answers.put(response_id, answer)

    def record(self, response_id: str, session_id: str, score: int) -> bool:
        """Record feedback; False when the id is unknown, expired or from another session.

        Semantics of repeated feedback: every feedback emits a new evaluation event (the latest
        one for a response id is its current rating, `assistant.feedback.revision` counts them);
        the satisfaction histograms are recorded once per response id, at the first rating,
        because a recorded metric point cannot be replaced.
        """
        seen: list[RatedResponse] = []

        def bump(old: RatedResponse | None) -> RatedResponse | None:
            if old is None or old.session_id != session_id:
                return old
            new = replace(old, revisions=old.revisions + 1)
            seen.append(new)
            return new

        self._answers.update(response_id, bump)
        if not seen:
            return False
        answer = seen[0]
        attributes = {
            **baggage_attributes(),  # the feedback request's: synthetic_request, loadgen.run_id
            sc.GEN_AI_EVALUATION_NAME: sc.EVALUATION_USER_SATISFACTION,
            sc.GEN_AI_EVALUATION_SCORE_VALUE: score,
            sc.GEN_AI_EVALUATION_SCORE_LABEL: score_label(score),
            sc.GEN_AI_PROVIDER_NAME: sc.PROVIDER_OPENAI,
            sc.GEN_AI_REQUEST_MODEL: answer.request_model,
            sc.ASSISTANT_RESPONSE_ID: response_id,
            sc.ASSISTANT_FEEDBACK_REVISION: answer.revisions,
        }
        if answer.upstream_response_id:
            attributes[sc.GEN_AI_RESPONSE_ID] = answer.upstream_response_id
        if answer.response_model:
            attributes[sc.GEN_AI_RESPONSE_MODEL] = answer.response_model
        parent = trace.set_span_in_context(NonRecordingSpan(answer.span_context))
        # the event, in the chat's trace (parented on the chat span)
        # A short body as well: log pipelines such as Splunk HEC drop records without one.
        self._inst.logger.emit(
            event_name=sc.EVENT_EVALUATION_RESULT,
            context=parent,
            body=f"{sc.EVALUATION_USER_SATISFACTION} {score}/5 for {answer.request_model}",
            attributes=attributes,
        )
        # also visible on the feedback request's own server span, linked to the chat span
        current = trace.get_current_span()
        if current.is_recording():
            current.add_event(sc.EVENT_EVALUATION_RESULT, attributes)
            current.add_link(answer.span_context, {sc.ASSISTANT_RESPONSE_ID: response_id})
        if answer.revisions == 1:
            metric_attrs = {
                sc.GEN_AI_EVALUATION_NAME: sc.EVALUATION_USER_SATISFACTION,
                sc.GEN_AI_OPERATION_NAME: sc.OPERATION_CHAT,
                sc.GEN_AI_PROVIDER_NAME: sc.PROVIDER_OPENAI,
                sc.GEN_AI_REQUEST_MODEL: answer.request_model,
                sc.SERVER_ADDRESS: answer.server_address,
                sc.SERVER_PORT: answer.server_port,
            }
            if answer.response_model:
                metric_attrs[sc.GEN_AI_RESPONSE_MODEL] = answer.response_model
            self._inst.evaluation_score.record((score - 1) / 4, metric_attrs)
            self._inst.user_satisfaction.record(score, metric_attrs)
        return True
