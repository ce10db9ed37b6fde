"""The OpenAI-compatible backend: client construction and user-readable error mapping."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import openai

from assistant.config import Config
from assistant.http_spans import traced_http_client


def create_client(cfg: Config) -> openai.OpenAI:
    """One client per worker (thread-safe, pooled connections), explicit timeouts and retries.
    With telemetry on, every HTTP attempt (the SDK retries internally) gets its own CLIENT span
    under the chat span (assistant/http_spans.py)."""
    return openai.OpenAI(
        api_key=cfg.openai_api_key,
        base_url=cfg.openai_base_url,
        timeout=openai.Timeout(
            cfg.read_timeout_s, connect=cfg.connect_timeout_s, read=cfg.read_timeout_s
        ),
        max_retries=cfg.max_retries,
        http_client=traced_http_client() if cfg.telemetry_enabled else None,
    )


def stream_chat_completion(client: openai.OpenAI, body: dict, headers: dict) -> openai.Stream:
    """`POST /chat/completions` with `stream: true`: an `openai.Stream` of chunks as plain dicts.

    Why not `client.chat.completions.create`: it turns every chunk into pydantic models, which was
    half of the assistant's CPU per streamed chunk (docs/performance.md, "Where the time goes").
    `client.post` with `cast_to=object` is the SDK's own way to call an endpoint without its typed
    models, and keeps everything else the same: retries, timeouts, the SSE decoder, and the error
    classes (HTTP errors, a mid-stream `error` event as `openai.APIError`, a dropped connection
    as `openai.APIConnectionError`)."""
    return client.post(
        "/chat/completions",
        cast_to=object,
        body=body,
        options={"headers": headers},
        stream=True,
        stream_cls=openai.Stream[object],
    )


class BackendReadiness:
    """Backend reachability, cached briefly so probes do not hammer the LLM endpoint."""

    TTL_S = 5.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._checked_at = -1e9
        self._error: str | None = None

    def check(self, client: openai.OpenAI) -> str | None:
        with self._lock:
            if time.monotonic() - self._checked_at < self.TTL_S:
                return self._error
            try:
                client.with_options(timeout=2.0, max_retries=0).models.list()
                self._error = None
            except openai.APIStatusError as exc:
                self._error = f"the model backend answered HTTP {exc.status_code}"
            except Exception as exc:
                self._error = f"the model backend is unreachable ({type(exc).__name__})"
            self._checked_at = time.monotonic()
            return self._error


@dataclass(frozen=True)
class UserError:
    """What the user sees in the `error` SSE event."""

    type: str
    message: str


def user_error(exc: BaseException, answer_started: bool = True) -> UserError:
    """Map an exception from the LLM call to a stable machine type and a readable message."""
    if isinstance(exc, openai.RateLimitError):
        return UserError(
            "rate_limited", "The model is receiving too many requests. Please try again shortly."
        )
    if isinstance(exc, openai.APITimeoutError) or "Timeout" in type(exc).__name__:
        return UserError("timeout", "The model took too long to answer. Please try again.")
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return UserError(
            "upstream_auth", "The assistant could not authenticate with the model provider."
        )
    if isinstance(exc, openai.BadRequestError | openai.NotFoundError):
        return UserError("upstream_rejected", "The model provider rejected the request.")
    if isinstance(exc, openai.APIConnectionError):
        if not answer_started:
            return UserError(
                "upstream_disconnected", "The model service could not be reached. Please retry."
            )
        return UserError(
            "upstream_disconnected", "The connection to the model was lost. Please try again."
        )
    if isinstance(exc, openai.APIStatusError):
        return UserError(
            "upstream_error", "The model service had an error. Please try again in a moment."
        )
    if isinstance(exc, openai.APIError):
        return UserError(
            "upstream_error", "The model service failed while answering. Please try again."
        )
    name = type(exc).__name__
    if any(k in name for k in ("Protocol", "ReadError", "Connect", "Network")):
        return UserError(
            "upstream_disconnected", "The connection to the model was lost. Please try again."
        )
    return INTERNAL


INTERNAL = UserError("internal_error", "The assistant failed to answer. Please try again.")
INCOMPLETE = UserError(
    "upstream_disconnected", "The model's answer was cut off before it finished. Please retry."
)
