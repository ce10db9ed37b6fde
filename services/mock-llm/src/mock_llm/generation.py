"""Deterministic per-request choices: token counts, reply text, length and timing."""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

from mock_llm import words
from mock_llm.profiles import FaultSettings, ModelProfile

CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 3  # role and separators, as in OpenAI's own counting recipe
TOKENS_REPLY_PRIMING = 3  # every reply is primed with <|start|>assistant<|message|>
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{3,}")
_TOKEN = re.compile(r"\s*[^\s,.;:!?]+|[,.;:!?]")


def message_text(message: dict) -> str:
    """All text of one message: string content, or the text parts of an array content."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "") for part in content if isinstance(part.get("text"), str)
        )
    return ""


def count_prompt_tokens(messages: Sequence[dict]) -> int:
    """About 4 characters per token, plus a fixed overhead per message and for the reply."""
    total = TOKENS_REPLY_PRIMING
    for message in messages:
        chars = len(message_text(message)) + len(str(message.get("name") or ""))
        total += TOKENS_PER_MESSAGE + math.ceil(chars / CHARS_PER_TOKEN)
    return total


def request_digest(server_seed: int, request_seed: int | None, model: str, messages) -> bytes:
    """The identity of a request for everything deterministic about its answer."""
    canonical = json.dumps(
        [server_seed, request_seed, model, messages],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).digest()


def derived_rng(digest: bytes, purpose: str) -> random.Random:
    """An independent RNG per purpose, so fault settings never change the text."""
    return random.Random(hashlib.sha256(digest + purpose.encode()).digest())


def _topics(messages: Sequence[dict]) -> list[str]:
    for message in reversed(messages):
        if message.get("role") == "user":
            found = (word.lower() for word in _WORD.findall(message_text(message)))
            unique = list(dict.fromkeys(w for w in found if w not in words.STOPWORDS))
            if unique:
                return unique
    return list(words.FALLBACK_TOPICS)


def _sentence(rng: random.Random, topics: list[str]) -> str:
    subject, verb, obj = (
        rng.choice(words.SUBJECTS),
        rng.choice(words.VERBS),
        rng.choice(words.OBJECTS),
    )
    roll = rng.random()
    if roll < 0.45:
        template = rng.choice(words.TOPIC_TEMPLATES)
        return template.format(topic=rng.choice(topics), subject=subject, verb=verb, object=obj)
    if roll < 0.85:
        return f"{rng.choice(words.OPENERS)} {subject} {verb} {obj}."
    return rng.choice(words.CLOSERS)


def reply_tokens(digest: bytes, messages: Sequence[dict], count: int) -> list[str]:
    """Readable sentences about the prompt, split into at least `count` chunks (words, marks)."""
    rng = derived_rng(digest, "text")
    topics = _topics(messages)
    tokens: list[str] = []
    while len(tokens) < count:
        sentence = _sentence(rng, topics)
        sentence = " " + sentence if tokens else sentence[0].upper() + sentence[1:]
        tokens.extend(_TOKEN.findall(sentence))
    return tokens


@dataclass(frozen=True)
class Plan:
    """Everything decided for one answer before the first byte is sent."""

    tokens: tuple[str, ...]
    finish_reason: str
    ttft_s: float  # from admission to the first content chunk: model + prefill + fault delay
    gaps_s: tuple[float, ...]  # pause before each content chunk after the first
    prefill_s: float = 0.0  # the prompt-length part of ttft_s
    fault_delay_s: float = 0.0  # the slow_first_token part of ttft_s

    @property
    def model_ttft_s(self) -> float:
        """The model's own TTFT draw (profile ttft_ms with its jitter)."""
        return self.ttft_s - self.prefill_s - self.fault_delay_s

    def summary(self) -> dict:
        """The plan as the request log shows it (milliseconds, 3 decimals)."""
        return {
            "ttft_ms": round(self.model_ttft_s * 1000, 3),
            "prefill_ms": round(self.prefill_s * 1000, 3),
            "fault_delay_ms": round(self.fault_delay_s * 1000, 3),
            "tokens": len(self.tokens),
            "gaps_ms": array("d", [round(gap * 1000, 3) for gap in self.gaps_s]),
            "finish_reason": self.finish_reason,
        }


def natural_length(digest: bytes, profile: ModelProfile) -> int:
    rng = derived_rng(digest, "length")
    mean = profile.output_tokens_mean
    draw = rng.gammavariate(4.0, mean / 4.0)
    return max(profile.output_tokens_min, min(profile.output_tokens_max, round(draw)))


def make_plan(
    digest: bytes,
    messages: Sequence[dict],
    profile: ModelProfile,
    prompt_tokens: int,
    limit: int | None,
    fault: str | None,
    fault_settings: FaultSettings,
) -> Plan:
    """Text, finish reason and timing for one answer (the same for stream and non-stream)."""
    wanted = natural_length(digest, profile)
    tokens = reply_tokens(digest, messages, wanted)
    # end on a sentence boundary near the drawn length, unless the caller's limit cuts it
    end = wanted
    while end < len(tokens) and tokens[end - 1] not in (".", "!", "?"):
        end += 1
    tokens = tokens[:end]
    finish_reason = "stop"
    if limit is not None and len(tokens) > limit:
        tokens, finish_reason = tokens[:limit], "length"

    rng = derived_rng(digest, "latency")
    model_ttft_ms = profile.ttft_ms
    if profile.ttft_jitter_ms:
        spread = 3 * profile.ttft_jitter_ms
        model_ttft_ms += max(-spread, min(spread, rng.gauss(0, profile.ttft_jitter_ms)))
    model_ttft_ms = max(0.0, model_ttft_ms)
    prefill_ms = profile.prefill_ms_per_1k_prompt_tokens * prompt_tokens / 1000
    fault_ms = fault_settings.slow_first_token_ms if fault == "slow_first_token" else 0.0
    tps = profile.tokens_per_s * (1 + _clamped_gauss(rng, profile.tps_jitter))
    itl = 1.0 / tps
    if fault == "slow_stream":
        itl *= fault_settings.slow_stream_factor
    gaps = tuple(
        itl * (1 + _clamped_gauss(rng, profile.itl_jitter)) for _ in range(max(0, len(tokens) - 1))
    )
    return Plan(
        tuple(tokens),
        finish_reason,
        (model_ttft_ms + prefill_ms + fault_ms) / 1000,
        gaps,
        prefill_ms / 1000,
        fault_ms / 1000,
    )


def _clamped_gauss(rng: random.Random, sigma: float) -> float:
    if not sigma:
        return 0.0
    return max(-0.9, min(0.9, max(-3 * sigma, min(3 * sigma, rng.gauss(0, sigma)))))
