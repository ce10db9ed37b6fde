"""Configuration: environment variables parsed and validated once into a frozen dataclass."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from assistant.agent.faults import ToolFault, parse_tool_faults
from assistant.agent.tools import DEFINITIONS

log = logging.getLogger(__name__)

DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "o3-mini")
OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"
CONTENT_CAPTURE_MODES = ("NO_CONTENT", "SPAN_ONLY", "EVENT_ONLY", "SPAN_AND_EVENT")
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")
_RATE_LIMIT = re.compile(r"^([1-9][0-9]{0,8})\s*/\s*(second|minute|hour)$")
RATE_LIMIT_UNITS = {"second": 1, "minute": 60, "hour": 3600}
MOCK_JUDGE_MODEL = "mock-judge"
OPENAI_JUDGE_MODEL = "gpt-4o-mini"
# Off until the rest of the suite tells the judge's span from the chat span (see the README)
EVALUATIONS_DEFAULT_ON = True
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
AGENT_SYSTEM_PROMPT = (
    "You are the assistant of The Splunk T-Shirt Company. Answer questions about products, "
    "sizes, stock, orders and shop policies with the tools, and only from what they return; say "
    "so when a tool finds nothing. Keep answers short and friendly."
)
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the variable."""


STATE_FILE_NAME = "assistant-state.sqlite3"


def _state_dir(env) -> str:
    path = env.get("ASSISTANT_STATE_DIR", "").strip()
    if path and not (os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK)):
        raise ConfigError(f"ASSISTANT_STATE_DIR must be a writable directory: {path}")
    return path


@dataclass(frozen=True)
class Config:
    host: str
    port: int
    workers: int
    threads: int
    state_dir: str  # "" = sessions and feedback in process memory (one worker)
    openai_base_url: str
    openai_api_key: str
    models: tuple[str, ...]
    default_model: str
    connect_timeout_s: float
    read_timeout_s: float
    max_retries: int
    default_max_tokens: int
    max_tokens_limit: int
    max_message_chars: int
    max_body_bytes: int
    history_max_turns: int
    history_max_chars: int
    session_max: int
    session_ttl_s: float
    feedback_max: int
    feedback_ttl_s: float
    system_prompt: str
    secret_key: str
    secret_key_generated: bool
    cookie_secure: bool
    legacy_attributes: bool
    content_capture: str  # one of CONTENT_CAPTURE_MODES
    attribute_value_limit: int
    telemetry_enabled: bool
    telemetry_retry_s: float  # how long a failed telemetry export is retried (0 = SDK default)
    log_level: str
    rate_limit_per_session: str = ""  # "N/second|minute|hour", "" = no limit
    rate_limit_per_ip: str = ""
    # seconds a response write may make no progress (a client that stopped reading) before the
    # connection is dropped; applies once the response starts, never to reading the request
    client_write_timeout_s: float = 30.0
    # LLM-as-judge evaluations (assistant/evals/, docs/evaluations.md); 0 = off, no thread
    eval_sample_rate: float = 0.0
    judge_model: str = MOCK_JUDGE_MODEL
    judge_base_url: str = ""  # "" = the chat backend's
    judge_api_key: str = ""  # "" = the chat backend's; never logged
    eval_queue_size: int = 100
    eval_timeout_s: float = 30.0
    # the shop agent (assistant/agent/): tools offered to the model, model calls per turn
    agent_enabled: bool = False
    agent_max_steps: int = 5
    tool_faults: Mapping[str, ToolFault] = field(default_factory=dict)  # workshops only
    splunk_realm: str = ""  # the UI links an answer's trace to Splunk APM in this realm

    def __repr__(self) -> str:  # keys never appear in a log line or a traceback
        return f"Config(models={self.models!r}, base_url={self.openai_base_url!r}, ...)"

    @property
    def state_file(self) -> str:
        """The SQLite file the workers share sessions and feedback in; "" = process memory."""
        return os.path.join(self.state_dir, STATE_FILE_NAME) if self.state_dir else ""

    @property
    def trace_url_template(self) -> str:
        """Splunk APM's trace page, {trace_id} to replace; "" without a realm."""
        if not self.splunk_realm:
            return ""
        return f"https://app.{self.splunk_realm}.signalfx.com/#/apm/traces/{{trace_id}}"

    @property
    def capture_in_span(self) -> bool:
        return self.content_capture in ("SPAN_ONLY", "SPAN_AND_EVENT")

    @property
    def capture_in_event(self) -> bool:
        return self.content_capture in ("EVENT_ONLY", "SPAN_AND_EVENT")

    @property
    def server_address(self) -> str:
        return urlsplit(self.openai_base_url).hostname or ""

    @property
    def server_port(self) -> int:
        parts = urlsplit(self.openai_base_url)
        return parts.port or (443 if parts.scheme == "https" else 80)


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def raw(self, name: str, default: str) -> str:
        value = self.env.get(name)
        return default if value is None or value.strip() == "" else value.strip()

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        text = self.raw(name, str(default))
        try:
            value = int(text)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {text!r}") from None
        if not low <= value <= high:
            raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
        return value

    def number(self, name: str, default: float, low: float, high: float) -> float:
        text = self.raw(name, str(default))
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {text!r}") from None
        if not low <= value <= high:  # also rejects NaN
            raise ConfigError(f"{name} must be between {low} and {high}, got {text}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        text = self.env.get(name)
        if text is None:
            return default
        lowered = text.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ConfigError(f"{name} must be true or false, got {text!r}")


def _rate_limit(read: _Reader, name: str) -> str:
    """A rate limit as "N/second", "N/minute" or "N/hour" (normalised), or "" for none."""
    text = read.raw(name, "").lower()
    if not text:
        return ""
    match = _RATE_LIMIT.match(text)
    if not match:
        raise ConfigError(
            f"{name} must look like 10/minute (N/second, N/minute or N/hour; empty: off), "
            f"got {text!r}"
        )
    return f"{match.group(1)}/{match.group(2)}"


def _content_capture(value: str | None) -> str:
    """util-genai semantics: the four modes in any case; anything else captures nothing."""
    if value is None or value.strip() == "":
        return "NO_CONTENT"
    mode = value.strip().upper()
    if mode in CONTENT_CAPTURE_MODES:
        return mode
    log.warning(
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=%r is not one of %s: capturing no "
        "content",
        value,
        ", ".join(CONTENT_CAPTURE_MODES),
    )
    return "NO_CONTENT"


def _backend(read: _Reader) -> tuple[str, str]:
    """The LLM endpoint and key: OPENAI_BASE_URL if set; else the real OpenAI API when
    OPENAI_API_KEY is set; else ASSISTANT_MOCK_BASE_URL (compose points it at the mock LLM)."""
    base_url = read.raw("OPENAI_BASE_URL", "")
    api_key = read.raw("OPENAI_API_KEY", "")
    if not base_url and api_key:
        base_url = OPENAI_DEFAULT_BASE_URL
    elif not base_url:
        base_url = read.raw("ASSISTANT_MOCK_BASE_URL", "")
        api_key = read.raw("ASSISTANT_MOCK_API_KEY", "")
        if not base_url:
            raise ConfigError(
                "set OPENAI_BASE_URL (an OpenAI-compatible endpoint such as the mock LLM) or "
                "OPENAI_API_KEY (the real OpenAI API)"
            )
    # the SDK insists on a key; endpoints without authentication ignore it
    return base_url, api_key or "unused"


def _judge(read: _Reader, base_url: str, api_key: str) -> dict:
    """The judge's settings: with the real OpenAI API, gpt-4o-mini on 10 % of the traces (every
    evaluation is one more paid completion); otherwise (the mock LLM) the mock's `mock-judge`
    model on every trace."""
    real_openai = urlsplit(base_url).hostname == urlsplit(OPENAI_DEFAULT_BASE_URL).hostname
    judge_model = read.raw(
        "ASSISTANT_JUDGE_MODEL", OPENAI_JUDGE_MODEL if real_openai else MOCK_JUDGE_MODEL
    )
    if not _MODEL_NAME.match(judge_model):
        raise ConfigError(f"ASSISTANT_JUDGE_MODEL is not a valid model name: {judge_model!r}")
    # ASSISTANT_EVALUATIONS (default on; false turns the evaluator off) applies these defaults; an
    # explicit sample rate always wins (0 = off)
    on = read.boolean("ASSISTANT_EVALUATIONS", EVALUATIONS_DEFAULT_ON)
    default_rate = (0.1 if real_openai else 1.0) if on else 0.0
    rate = read.number("OTEL_INSTRUMENTATION_GENAI_EVALUATION_SAMPLE_RATE", default_rate, 0.0, 1.0)
    judge_url = read.raw("ASSISTANT_JUDGE_BASE_URL", base_url)
    parts = urlsplit(judge_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"ASSISTANT_JUDGE_BASE_URL must be an http(s) URL, got {judge_url!r}")
    return {
        "eval_sample_rate": rate,
        "judge_model": judge_model,
        "judge_base_url": judge_url.rstrip("/"),
        "judge_api_key": read.raw("ASSISTANT_JUDGE_API_KEY", api_key),
        "eval_queue_size": read.integer("ASSISTANT_EVAL_QUEUE_SIZE", 100, 1, 1_000_000),
        "eval_timeout_s": read.number("ASSISTANT_EVAL_TIMEOUT_S", 30.0, 0.1, 3600),
    }


def _agent(read: _Reader) -> dict:
    """The shop agent: off unless ASSISTANT_AGENT=true (see the README, "The shop agent")."""
    enabled = read.boolean("ASSISTANT_AGENT", False)
    try:
        faults = parse_tool_faults(
            read.raw("ASSISTANT_TOOL_FAULTS", ""), (d["name"] for d in DEFINITIONS)
        )
    except ValueError as exc:
        raise ConfigError(f"ASSISTANT_TOOL_FAULTS: {exc}") from None
    # not SPLUNK_REALM itself: with it, the Splunk distribution would export straight to the
    # realm's ingest instead of the collector (compose passes SPLUNK_REALM in as this)
    realm = read.raw("ASSISTANT_APM_REALM", "").lower()
    if realm and not re.fullmatch(r"[a-z0-9]{2,10}", realm):
        raise ConfigError(f"ASSISTANT_APM_REALM must be a realm name such as us1, got {realm!r}")
    return {
        "splunk_realm": realm,
        "agent_enabled": enabled,
        "agent_max_steps": read.integer("ASSISTANT_AGENT_MAX_STEPS", 5, 1, 20),
        "tool_faults": faults,
    }


def load_config(env: Mapping[str, str] | None = None) -> Config:
    """Parse and validate the environment; raise ConfigError naming the variable on bad values."""
    env = os.environ if env is None else env
    read = _Reader(env)

    base_url, api_key = _backend(read)
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"OPENAI_BASE_URL must be an http(s) URL, got {base_url!r}")
    base_url = base_url.rstrip("/")

    models = tuple(
        m.strip() for m in read.raw("ASSISTANT_MODELS", ",".join(DEFAULT_MODELS)).split(",")
    )
    models = tuple(dict.fromkeys(m for m in models if m))
    if not models:
        raise ConfigError("ASSISTANT_MODELS must list at least one model")
    for model in models:
        if not _MODEL_NAME.match(model):
            raise ConfigError(f"ASSISTANT_MODELS contains an invalid model name {model!r}")
    default_model = read.raw("ASSISTANT_DEFAULT_MODEL", models[0])
    if default_model not in models:
        raise ConfigError(
            f"ASSISTANT_DEFAULT_MODEL={default_model!r} is not in ASSISTANT_MODELS "
            f"({', '.join(models)})"
        )

    secret = read.raw("ASSISTANT_SECRET_KEY", "")
    generated = not secret
    if generated:
        secret = os.urandom(32).hex()
    elif len(secret) < 16:
        raise ConfigError("ASSISTANT_SECRET_KEY must be at least 16 characters long")

    max_tokens_limit = read.integer("ASSISTANT_MAX_TOKENS_LIMIT", 4096, 1, 1_000_000)
    default_max_tokens = read.integer("ASSISTANT_DEFAULT_MAX_TOKENS", 512, 1, 1_000_000)
    if default_max_tokens > max_tokens_limit:
        raise ConfigError(
            "ASSISTANT_DEFAULT_MAX_TOKENS must not exceed ASSISTANT_MAX_TOKENS_LIMIT "
            f"({default_max_tokens} > {max_tokens_limit})"
        )
    agent = _agent(read)
    log_level = read.raw("ASSISTANT_LOG_LEVEL", "INFO").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"ASSISTANT_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR: {log_level}")

    return Config(
        host=read.raw("ASSISTANT_HOST", "0.0.0.0"),
        port=read.integer("ASSISTANT_PORT", 8080, 1, 65535),
        workers=read.integer("ASSISTANT_WORKERS", 2, 1, 64),
        threads=read.integer("ASSISTANT_THREADS", 64, 1, 1024),
        state_dir=_state_dir(env),
        openai_base_url=base_url,
        openai_api_key=api_key,
        models=models,
        default_model=default_model,
        connect_timeout_s=read.number("ASSISTANT_LLM_CONNECT_TIMEOUT", 5.0, 0.1, 300),
        read_timeout_s=read.number("ASSISTANT_LLM_READ_TIMEOUT", 60.0, 0.1, 3600),
        max_retries=read.integer("ASSISTANT_LLM_MAX_RETRIES", 1, 0, 10),
        default_max_tokens=default_max_tokens,
        max_tokens_limit=max_tokens_limit,
        max_message_chars=read.integer("ASSISTANT_MAX_MESSAGE_CHARS", 4000, 1, 1_000_000),
        max_body_bytes=read.integer("ASSISTANT_MAX_BODY_BYTES", 16384, 256, 10_000_000),
        history_max_turns=read.integer("ASSISTANT_HISTORY_MAX_TURNS", 10, 0, 1000),
        history_max_chars=read.integer("ASSISTANT_HISTORY_MAX_CHARS", 12000, 0, 10_000_000),
        session_max=read.integer("ASSISTANT_SESSION_MAX", 10000, 1, 10_000_000),
        session_ttl_s=read.number("ASSISTANT_SESSION_TTL_SECONDS", 3600, 1, 30 * 86400),
        feedback_max=read.integer("ASSISTANT_FEEDBACK_MAX", 50000, 1, 10_000_000),
        feedback_ttl_s=read.number("ASSISTANT_FEEDBACK_TTL_SECONDS", 3600, 1, 30 * 86400),
        system_prompt=env.get(
            "ASSISTANT_SYSTEM_PROMPT",
            AGENT_SYSTEM_PROMPT if agent["agent_enabled"] else DEFAULT_SYSTEM_PROMPT,
        ).strip(),
        secret_key=secret,
        secret_key_generated=generated,
        cookie_secure=read.boolean("ASSISTANT_COOKIE_SECURE", False),
        legacy_attributes=read.boolean("ASSISTANT_LEGACY_ATTRIBUTES", False),
        content_capture=_content_capture(
            env.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT")
        ),
        attribute_value_limit=read.integer("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", 12000, 256, 10**8),
        telemetry_enabled=not read.boolean("OTEL_SDK_DISABLED", False),
        telemetry_retry_s=read.number("ASSISTANT_TELEMETRY_RETRY_SECONDS", 120, 0, 3600),
        log_level=log_level,
        rate_limit_per_session=_rate_limit(read, "ASSISTANT_RATE_LIMIT_PER_SESSION"),
        rate_limit_per_ip=_rate_limit(read, "ASSISTANT_RATE_LIMIT_PER_IP"),
        client_write_timeout_s=read.number("ASSISTANT_CLIENT_WRITE_TIMEOUT", 30.0, 0.1, 3600),
        **_judge(read, base_url, api_key),
        **agent,
    )
