"""How a simulated user rates an answer: only from what that user could observe.

There is no per-model term: two answers with the same observable outcome get the same rating,
whichever model wrote them. The rating is on the assistant's 1-5 scale:

    score = BASE_SCORE + noise                          (ERROR_SCORE + noise if the request failed)
            - 1 if TTFT > the TTFT SLO, - 2 if TTFT > twice the TTFT SLO
            - 1 if E2E > the E2E SLO
            - 1 if the answer was truncated (finish_reason "length")
            + CONTENT_WEIGHT x (coverage - CONTENT_NEUTRAL)   (not when coverage is None)
    rating = score rounded, clamped to 1..5

`noise` is the user's mood for that answer, about N(0, 0.5), drawn from the user's seeded RNG
(plan.py), so the same seed gives the same ratings for the same outcomes. An SLO of 0 is not set
and never lowers the rating. A failed request (any error kind) gets ERROR_SCORE + noise and
nothing else.

Content heuristic ("does the answer address the question?"), `coverage(prompt, answer)`:
the share of the prompt's content words that the answer mentions.
- words: runs of letters and digits, lower-cased, apostrophes dropped ("don't" -> "dont");
- content words: words of 3 or more characters that are not in STOP_WORDS;
- a word's key: its first 5 characters after dropping one trailing "s" from words of 4 or more
  characters ("sizes" and "size" -> "size", "returns" and "returned" -> "retur");
- coverage = (distinct keys of the prompt's content words found among the keys of the
  answer's content words) / (distinct keys of the prompt's content words), in 0..1;
  None when the prompt has no content word (e.g. "And then?"): the rating is not changed.

Limits: it is a proxy, not a judge. It counts shared words, not correctness: an answer that
repeats the question's words and is wrong scores high; a right answer in other words (synonyms,
another language, code, a number) scores low; short follow-ups ("And for kids?") have one or
two content words, so their coverage is coarse; the prompt is the current question only, not
the conversation. The mock LLM writes sentences around the question's words, so with the mock
coverage mostly grows with answer length. Simulated ratings therefore say how fast, reliable,
complete and on-topic the answers looked, never how good they were.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from loadgen.stats import Slo

BASE_SCORE = 4.0
ERROR_SCORE = 1.5
CONTENT_WEIGHT = 2.0  # a fully on-topic answer: +1 point; an off-topic one: -1 point
CONTENT_NEUTRAL = 0.5  # coverage that neither raises nor lowers the rating
KEY_CHARS = 5
MIN_WORD_CHARS = 3

_WORD = re.compile(r"[a-z0-9]+")

# Common English function words and question words: they say nothing about the topic.
_STOP_WORDS_TEXT = """
    a about above after again against all also am an and any are aren as at be because been
    before being below between both but by can cannot could couldn did didn do does doesn doing
    don down during each else ever few for from further get gets got had has have having he her
    here hers herself him himself his how however i if im in into is isn it its itself ive just
    let lets like may me might more most much must my myself need no nor not now of off often on
    once only or other ought our ours ourselves out over own please same shall she should so some
    such than thank thanks that thats the their theirs them themselves then there these they this
    those through to too under until up us usually very was wasn we were what whats when where
    whether which while who whom why will with within without would you your yours yourself
    yourselves youre one two way really still even well want tell know think give make use
    dont doesnt didnt isnt arent wasnt werent cant couldnt wont wouldnt shouldnt hasnt havent
    ill youll youve theyre
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())


def words(text: str) -> list[str]:
    """Lower-cased runs of letters and digits, apostrophes dropped."""
    return _WORD.findall(text.lower().replace("'", "").replace("\u2019", ""))


def key(word: str) -> str:
    """The key a word is compared by: one trailing "s" dropped (4+ characters), first 5 kept."""
    if len(word) >= 4 and word.endswith("s"):
        word = word[:-1]
    return word[:KEY_CHARS]


def content_keys(text: str) -> set[str]:
    return {
        key(word) for word in words(text) if len(word) >= MIN_WORD_CHARS and word not in STOP_WORDS
    }


def coverage(prompt: str, answer: str) -> float | None:
    """The share (0-1) of the prompt's content-word keys found in the answer; None without any."""
    wanted = content_keys(prompt)
    if not wanted:
        return None
    return len(wanted & content_keys(answer)) / len(wanted)


def feedback_score(sample: Mapping, slo: Slo, noise: float) -> int:
    """The 1-5 rating of one answer from its raw sample (error_kind, ttft_ms, e2e_ms,
    finish_reason, answer_coverage); `noise` is the user's seeded mood. Reads no model name."""
    if sample.get("error_kind") is not None:
        score = ERROR_SCORE + noise
    else:
        score = BASE_SCORE + noise
        ttft_ms = sample.get("ttft_ms")
        if slo.ttft_ms > 0 and ttft_ms is not None and ttft_ms > slo.ttft_ms:
            score -= 2.0 if ttft_ms > 2 * slo.ttft_ms else 1.0
        e2e_ms = sample.get("e2e_ms")
        if slo.e2e_ms > 0 and e2e_ms is not None and e2e_ms > slo.e2e_ms:
            score -= 1.0
        if sample.get("finish_reason") == "length":
            score -= 1.0
        covered = sample.get("answer_coverage")
        if covered is not None:
            score += CONTENT_WEIGHT * (covered - CONTENT_NEUTRAL)
    return max(1, min(5, round(score)))
