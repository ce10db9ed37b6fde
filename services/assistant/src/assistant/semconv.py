"""Every telemetry name the assistant emits, in one place (OTel GenAI semconv v1.41.1)."""

from __future__ import annotations

# Span / attribute names (GenAI semconv v1.41.1, all Development)
OPERATION_CHAT = "chat"
PROVIDER_OPENAI = "openai"
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_CONVERSATION_ID = "gen_ai.conversation.id"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_REQUEST_STREAM = "gen_ai.request.stream"
GEN_AI_REQUEST_TEMPERATURE = "gen_ai.request.temperature"
GEN_AI_REQUEST_TOP_P = "gen_ai.request.top_p"
GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_TOKEN_TYPE = "gen_ai.token.type"
GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"
GEN_AI_SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
OPENAI_API_TYPE = "openai.api.type"
OPENAI_API_TYPE_CHAT = "chat_completions"
OPENAI_RESPONSE_SERVICE_TIER = "openai.response.service_tier"
OPENAI_RESPONSE_SYSTEM_FINGERPRINT = "openai.response.system_fingerprint"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"
ERROR_TYPE_OTHER = "_OTHER"

# Agent and tool spans (GenAI semconv v1.41.1: "invoke agent internal span", "execute tool
# span"); the agent runs in-process, so both are INTERNAL (assistant/agent/)
OPERATION_INVOKE_AGENT = "invoke_agent"
OPERATION_EXECUTE_TOOL = "execute_tool"
GEN_AI_AGENT_NAME = "gen_ai.agent.name"
GEN_AI_AGENT_DESCRIPTION = "gen_ai.agent.description"
GEN_AI_TOOL_NAME = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID = "gen_ai.tool.call.id"
GEN_AI_TOOL_TYPE = "gen_ai.tool.type"
GEN_AI_TOOL_DESCRIPTION = "gen_ai.tool.description"
GEN_AI_TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"  # opt-in content
GEN_AI_TOOL_CALL_RESULT = "gen_ai.tool.call.result"  # opt-in content
GEN_AI_TOOL_DEFINITIONS = "gen_ai.tool.definitions"  # opt-in content
TOOL_TYPE_FUNCTION = "function"
AGENT_NAME = "shop-assistant"
AGENT_DESCRIPTION = "Answers questions about the shop's products, stock, orders and policies."
# application-specific: model calls in the turn, and why a turn ended without a model answer
ASSISTANT_AGENT_STEPS = "assistant.agent.steps"
ASSISTANT_AGENT_STOP_REASON = "assistant.agent.stop_reason"
# seconds from the first model call's start to the answer's first text token (the done event's
# time_to_answer_ms): what a user waits for words, tool steps included
ASSISTANT_AGENT_TIME_TO_ANSWER = "assistant.agent.time_to_answer"
STOP_REASON_MAX_STEPS = "max_steps"

# HTTP client attempt spans (HTTP semconv, stable): one CLIENT span per attempt to the LLM
# backend, child of the chat span (assistant/http_spans.py)
HTTP_REQUEST_METHOD = "http.request.method"
HTTP_REQUEST_METHOD_ORIGINAL = "http.request.method_original"
HTTP_REQUEST_RESEND_COUNT = "http.request.resend_count"
HTTP_RESPONSE_STATUS_CODE = "http.response.status_code"
URL_FULL = "url.full"
NETWORK_PROTOCOL_VERSION = "network.protocol.version"

# Evaluation (user feedback) - semconv has no feedback convention, see telemetry note 1.4
EVENT_EVALUATION_RESULT = "gen_ai.evaluation.result"
EVENT_INFERENCE_DETAILS = "gen_ai.client.inference.operation.details"
GEN_AI_EVALUATION_NAME = "gen_ai.evaluation.name"
GEN_AI_EVALUATION_SCORE_VALUE = "gen_ai.evaluation.score.value"
GEN_AI_EVALUATION_SCORE_LABEL = "gen_ai.evaluation.score.label"
EVALUATION_USER_SATISFACTION = "user_satisfaction"
GEN_AI_EVALUATION_EXPLANATION = "gen_ai.evaluation.explanation"

# LLM-as-judge evaluations (docs/evaluations.md): the four evaluations and their labels
EVALUATION_LABELS = {
    "answer_relevancy": ("relevant", "irrelevant"),
    "faithfulness": ("faithful", "unfaithful"),
    "toxicity": ("safe", "toxic"),
    "answered": ("answered", "not_answered"),
}
# the fifth, only for agent turns that called tools (the judge request then has `tool_calls`)
TOOL_EVALUATION = "tool_call_correctness"
TOOL_EVALUATION_LABELS = {"tool_call_correctness": ("correct", "incorrect")}
JUDGE_RUBRIC_VERSION = "llm-lab-judge/1"
JUDGE_SPAN_PREFIX = "judge"
ASSISTANT_EVALUATION_JUDGE = "assistant.evaluation.judge"
ASSISTANT_EVALUATION_EVALUATED_MODEL = "assistant.evaluation.evaluated_model"
ASSISTANT_EVALUATION_OUTCOME = "outcome"
OUTCOME_EVALUATED = "evaluated"
OUTCOME_DROPPED = "dropped"
OUTCOME_JUDGE_ERROR = "judge_error"
OUTCOME_NOT_SAMPLED = "not_sampled"

# Application-specific attributes (namespaced, not semconv)
ASSISTANT_RESPONSE_ID = "assistant.response_id"
ASSISTANT_FEEDBACK_REVISION = "assistant.feedback.revision"

# Baggage entries copied onto the request and chat spans as attributes of the same name, so the
# traces of synthetic traffic, and of one load run, can be told apart (the load generator sets
# them). Only these keys are copied, and only short values: baggage is caller-controlled.
BAGGAGE_SYNTHETIC_REQUEST = "synthetic_request"
BAGGAGE_LOADGEN_RUN_ID = "loadgen.run_id"
BAGGAGE_SPAN_ATTRIBUTES = (BAGGAGE_SYNTHETIC_REQUEST, BAGGAGE_LOADGEN_RUN_ID)
BAGGAGE_VALUE_MAX_CHARS = 128

# Blog-compatible legacy attribute names (ASSISTANT_LEGACY_ATTRIBUTES=true)
LEGACY_MODEL = "GPT-model"
LEGACY_TEMPERATURE = "GPT-temperature"
LEGACY_TOP_P = "GPT-top_p"
LEGACY_TOKENS_USED = "tokens_used"
LEGACY_COMPLETION_TOKENS = "completion_tokens"

# Error types for stream endings without an exception
ERROR_CLIENT_DISCONNECTED = "client_disconnected"
ERROR_UPSTREAM_INCOMPLETE = "upstream_incomplete"

# Metrics
METRIC_OPERATION_DURATION = "gen_ai.client.operation.duration"
METRIC_TOKEN_USAGE = "gen_ai.client.token.usage"
METRIC_TIME_TO_FIRST_CHUNK = "gen_ai.client.operation.time_to_first_chunk"
METRIC_TIME_PER_OUTPUT_CHUNK = "gen_ai.client.operation.time_per_output_chunk"
# Vendor-specific (Splunk), not OTel semconv: normalised 0..1 score
METRIC_EVALUATION_SCORE = "gen_ai.evaluation.score"
# Application metric: the raw 1-5 user rating per model
METRIC_USER_SATISFACTION = "assistant.user_satisfaction.score"
# Application metrics of the evaluator: judge call duration (s), evaluation requests by outcome
METRIC_JUDGE_DURATION = "assistant.evaluation.judge.duration"
METRIC_EVALUATION_REQUESTS = "assistant.evaluation.requests"

SECONDS_BUCKETS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
TOKEN_BUCKETS = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip
EVALUATION_SCORE_BUCKETS = (0.0, 0.25, 0.5, 0.75, 1.0)
SATISFACTION_BUCKETS = (1, 2, 3, 4, 5)

INSTRUMENTATION_SCOPE = "assistant.genai"
