"""The span attribute and metric names the scorecard reads: the GenAI semantic conventions
(v1.41.1, what the assistant emits) plus the assistant's own `assistant.*` attributes."""

MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
ERROR_TYPE = "error.type"
TTFT = "gen_ai.response.time_to_first_chunk"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
RESPONSE_ID = "gen_ai.response.id"
EVALUATION_EVENT = "gen_ai.evaluation.result"
EVALUATION_NAME = "gen_ai.evaluation.name"
SCORE_VALUE = "gen_ai.evaluation.score.value"
SCORE_LABEL = "gen_ai.evaluation.score.label"
SATISFACTION = "user_satisfaction"
APP_RESPONSE_ID = "assistant.response_id"
REVISION = "assistant.feedback.revision"
# baggage the assistant copies onto spans and evaluation events: set by the load generator
SYNTHETIC = "synthetic_request"
OPERATION = "gen_ai.operation.name"
CHAT = "chat"
# the shop agent's spans (GenAI semconv "invoke agent" and "execute tool" spans)
INVOKE_AGENT = "invoke_agent"
EXECUTE_TOOL = "execute_tool"
TOOL_NAME = "gen_ai.tool.name"
# the shop agent also records its tool runs here, with gen_ai.operation.name=execute_tool
DURATION_METRIC = "gen_ai.client.operation.duration"
TTFT_METRIC = "gen_ai.client.operation.time_to_first_chunk"
TOKEN_METRIC = "gen_ai.client.token.usage"
TOKEN_TYPE = "gen_ai.token.type"
SCORE_METRIC = "gen_ai.evaluation.score"
JUDGE = "assistant.evaluation.judge"
# on the judge call's own CLIENT span (`judge {judge model}`), which is never a chat call
EVALUATED_MODEL = "assistant.evaluation.evaluated_model"
MOCK_JUDGE = "mock-judge"
# the answer-quality evaluations (docs/evaluations.md): scores in [0, 1], 1 is good; labels
# pass / fail (used when a result has no score value)
QUALITY_EVALUATIONS = {
    "answer_relevancy": ("relevant", "irrelevant"),
    "faithfulness": ("faithful", "unfaithful"),
    "toxicity": ("safe", "toxic"),
    "answered": ("answered", "not_answered"),
}
# the tool evaluation of shop-agent turns that called tools (docs/evaluations.md, "The tool
# evaluation"): reported per model next to the four, never part of the composite quality
TOOL_EVALUATIONS = {"tool_call_correctness": ("correct", "incorrect")}
# every evaluation the scorecard reads (results, consistency rows)
ALL_EVALUATIONS = {**QUALITY_EVALUATIONS, **TOOL_EVALUATIONS}


def is_chat_point(attributes) -> bool:
    """A GenAI metric point of a chat call (points without an operation name count as chat)."""
    return attributes.get(OPERATION, CHAT) == CHAT
