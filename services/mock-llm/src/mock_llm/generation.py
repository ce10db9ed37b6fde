"""Deterministic per-request choices: token counts, reply text, length and timing."""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from mock_llm import words
from mock_llm.faults import QUALITY_FAULTS
from mock_llm.profiles import FaultSettings, ModelProfile

CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 3  # role and separators, as in OpenAI's own counting recipe
TOKENS_REPLY_PRIMING = 3  # every reply is primed with <|start|>assistant<|message|>
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


def question_text(messages: Sequence[dict]) -> str:
    """The last user message: what an answer is about (and what the judge calls the question)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_text(message)
    return ""


def draw_defects(
    digest: bytes, rates: Mapping[str, float], forced: str | None, question: str
) -> tuple[str, ...]:
    """The quality defects of one answer: each trait drawn independently from its own RNG (all
    four uniforms always drawn, so the text, timing and fault draws never depend on the rates),
    plus a forced one (a quality fault). off_topic needs a question with content words."""
    rng = derived_rng(digest, "quality")
    drawn = {trait for trait in QUALITY_FAULTS if rng.random() < rates.get(trait, 0.0)}
    if forced in QUALITY_FAULTS:
        drawn.add(forced)
    if not words.content_words(question):
        drawn.discard("off_topic")  # nothing to stray from: the judge passes it anyway
    return tuple(trait for trait in QUALITY_FAULTS if trait in drawn)


def _topic_sentence(rng: random.Random, topics: Sequence[str]) -> str:
    subject, verb, obj = (
        rng.choice(words.SUBJECTS),
        rng.choice(words.VERBS),
        rng.choice(words.OBJECTS),
    )
    template = rng.choice(words.TOPIC_TEMPLATES)
    return template.format(topic=rng.choice(topics), subject=subject, verb=verb, object=obj)


def _sentence(rng: random.Random, topics: Sequence[str]) -> str:
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


def _avoiding(make: Callable[[], str], banned: set[str], tries: int = 40) -> str:
    """A sentence from `make` that uses none of the banned words (off-topic answers)."""
    if not banned:
        return make()
    for _ in range(tries):
        sentence = make()
        if not banned & set(words.content_words(sentence)):
            return sentence
    for sentence in words.NEUTRAL_SENTENCES:
        if not banned & set(words.content_words(sentence)):
            return sentence
    return sentence


def reply_tokens(
    digest: bytes,
    messages: Sequence[dict],
    count: int,
    defects: Sequence[str] = (),
    minimum: int = 1,
) -> list[str]:
    """Readable sentences about the prompt, split into at least `count` chunks (words, marks).

    Without defects the first sentence names one of the question's content words, so the answer
    always uses one (when the question has any). Defects (docs/evaluations.md): off_topic talks
    about unrelated topics and uses no word of the question; unsupported_claim and unsafe insert
    one lexicon sentence after the first; non_answer is a deflection, padded to `minimum` chunks.
    """
    rng = derived_rng(digest, "text")
    asked = words.content_words(question_text(messages))
    banned: set[str] = set()
    if "off_topic" in defects:
        banned = set(asked)
        topics = [t for t in words.UNRELATED_TOPICS if not banned & set(t.split())]
        topics = topics or [words.UNRELATED_TOPICS[0]]
    else:
        topics = asked or list(words.FALLBACK_TOPICS)
    lexicon_rng = derived_rng(digest, "quality-text")
    inserts = [
        _avoiding(lambda lexicon=lexicon: lexicon_rng.choice(lexicon), banned)
        for trait, lexicon in (
            ("unsupported_claim", words.UNSUPPORTED_CLAIMS),
            ("unsafe", words.UNSAFE_ADVICE),
        )
        if trait in defects
    ]
    if "non_answer" in defects:
        first = _avoiding(
            lambda: f"{rng.choice(words.DEFLECTION_OPENERS)} {rng.choice(topics)}.", banned
        )
        inserts.append(_avoiding(lambda: rng.choice(words.DEFLECTION_FILLERS), banned))
        more = lambda: _avoiding(lambda: rng.choice(words.DEFLECTION_FILLERS), banned)  # noqa: E731
        target = min(count, minimum)
    else:
        first = _avoiding(lambda: _topic_sentence(rng, topics), banned)
        more = lambda: _avoiding(lambda: _sentence(rng, topics), banned)  # noqa: E731
        target = count
    tokens: list[str] = []
    for sentence in (first, *inserts):
        tokens.extend(_TOKEN.findall(" " + sentence if tokens else sentence))
    while len(tokens) < target:
        tokens.extend(_TOKEN.findall(" " + more()))
    return tokens


def text_tokens(text: str) -> list[str]:
    """A fixed text (the judge's JSON) in token-sized pieces of CHARS_PER_TOKEN characters."""
    return [text[i : i + CHARS_PER_TOKEN] for i in range(0, len(text), CHARS_PER_TOKEN)]


@dataclass(frozen=True)
class Plan:
    """Everything decided for one answer before the first byte is sent."""

    tokens: tuple[str, ...]
    finish_reason: str
    ttft_s: float  # from admission to the first content chunk: model + prefill + fault delay
    gaps_s: tuple[float, ...]  # pause before each content chunk after the first
    prefill_s: float = 0.0  # the prompt-length part of ttft_s
    fault_delay_s: float = 0.0  # the slow_first_token part of ttft_s
    quality_defects: tuple[str, ...] = ()  # the defects shaped into the text

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
    defects: Sequence[str] = (),
    text: str | None = None,
    pieces: Sequence[str] | None = None,
    finish: str = "stop",
) -> Plan:
    """Text, finish reason and timing for one answer (the same for stream and non-stream).
    `text`: a fixed answer (the judge's JSON) instead of generated sentences; `pieces`: the
    answer's chunks as they are (tool calls, a grounded answer), finishing with `finish`."""
    if pieces is not None:
        tokens, defects = list(pieces), ()
    elif text is not None:
        tokens, defects = text_tokens(text), ()
    else:
        wanted = natural_length(digest, profile)
        tokens = reply_tokens(digest, messages, wanted, defects, profile.output_tokens_min)
    # whole sentences up to the drawn length (or just past it), unless the caller's limit cuts it
    finish_reason = finish
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
        tuple(defects),
    )


def _clamped_gauss(rng: random.Random, sigma: float) -> float:
    if not sigma:
        return 0.0
    return max(-0.9, min(0.9, max(-3 * sigma, min(3 * sigma, rng.gauss(0, sigma)))))
