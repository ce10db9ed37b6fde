"""The mock judge (model `mock-judge`): the evaluations of docs/evaluations.md, from the text alone.

Each evaluation is tied to exactly one quality defect of the generator, and decides with the same
words and lexicons the generator uses (mock_llm.words), so a non-defective answer passes all four
and a defect fails exactly its evaluation.

When the judged turn called tools (the request's `tool_calls`), a fifth evaluation,
`tool_call_correctness`, is tied to the tool traits (tools.py): a call whose arguments the tool
rejected (`invalid_json`, `invalid_arguments`, `unknown_tool`: the model's mistake, not an
injected `tool_fault`) or a call to a tool that serves none of the question's intents (a wrong
tool) fails it; the intents and the tool kinds are the ones the mock's own tool planner uses.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from mock_llm import words
from mock_llm.generation import message_text
from mock_llm.tools import HINTS, intents

JUDGE_MODEL = "mock-judge"
# gen_ai.evaluation.name -> (pass label, fail label), as in docs/evaluations.md
LABELS = {
    "answer_relevancy": ("relevant", "irrelevant"),
    "faithfulness": ("faithful", "unfaithful"),
    "toxicity": ("safe", "toxic"),
    "answered": ("answered", "not_answered"),
}
TOOL_LABELS = {"tool_call_correctness": ("correct", "incorrect")}  # turns that called tools
MODEL_MISTAKES = ("invalid_json", "invalid_arguments", "unknown_tool")
NOT_A_JUDGE_REQUEST = json.dumps({"error": "not a judge request"})


def _contains(answer: str, phrases: Sequence[str]) -> str | None:
    text = " ".join(answer.lower().split())
    for phrase in phrases:
        if phrase.lower().rstrip(".") in text:
            return phrase
    return None


def _result(name: str, passed: bool, reason: str) -> dict:
    labels = LABELS.get(name) or TOOL_LABELS[name]
    return {
        "name": name,
        "score": 1 if passed else 0,
        "label": labels[0] if passed else labels[1],
        "reason": reason,
    }


def evaluate(question: str, answer: str) -> list[dict]:
    """The four evaluations of one answer (scores 0 or 1, 1 is good)."""
    asked = words.content_words(question)
    shared = [word for word in words.content_words(answer) if word in set(asked)]
    if not asked:
        relevancy = _result("answer_relevancy", True, "The question has no topic words.")
    elif shared:
        relevancy = _result(
            "answer_relevancy",
            True,
            f"The answer addresses the question ({shared[0]!r}).",
        )
    else:
        relevancy = _result(
            "answer_relevancy",
            False,
            "The answer uses none of the question's topic words.",
        )
    claim = _contains(answer, words.UNSUPPORTED_CLAIMS)
    faithfulness = _result(
        "faithfulness",
        claim is None,
        "No unsupported claims." if claim is None else f"Unsupported claim: {claim!r}",
    )
    advice = _contains(answer, words.UNSAFE_ADVICE)
    toxicity = _result(
        "toxicity",
        advice is None,
        "No unsafe content." if advice is None else f"Unsafe advice: {advice!r}",
    )
    deflects = (
        answer.lstrip()
        .lower()
        .startswith(tuple(opener.lower() for opener in words.DEFLECTION_OPENERS))
    )
    answered = _result(
        "answered",
        not deflects,
        "The answer deflects instead of answering." if deflects else "The answer answers.",
    )
    return [relevancy, faithfulness, toxicity, answered]


def _kinds(tool_name: str) -> set[str]:
    """The intents a tool serves, by the words of its name (tools.HINTS)."""
    name = tool_name.lower()
    return {kind for kind, hints in HINTS.items() if any(h in name for h in hints)}


def tool_call_correctness(question: str, calls: Sequence[dict]) -> dict:
    """Whether the turn's tool calls were the right tools with arguments the tools accepted."""
    for call in calls:
        if call.get("error") in MODEL_MISTAKES:
            return _result(
                "tool_call_correctness",
                False,
                f"The call to {call.get('name')} had {call['error']} arguments.",
            )
    wanted = {intent.kind for intent in intents(question)}
    for call in calls:
        if not _kinds(str(call.get("name", ""))) & wanted:
            return _result(
                "tool_call_correctness",
                False,
                f"{call.get('name')} serves none of the question's needs.",
            )
    return _result("tool_call_correctness", True, "The right tools, with valid arguments.")


def _calls(value) -> list[dict] | None:
    """The request's `tool_calls` (a list of {name, arguments, error}), None when malformed."""
    if not isinstance(value, list):
        return None
    if not all(isinstance(c, dict) and isinstance(c.get("name"), str) for c in value):
        return None
    return value


def verdict(messages: Sequence[dict]) -> str:
    """The judge's answer (message content) for a chat request to mock-judge: the evaluations
    JSON, or {"error": "not a judge request"} when messages[1] is not the judge's JSON object."""
    try:
        payload = json.loads(message_text(messages[1]))
    except (IndexError, ValueError):
        return NOT_A_JUDGE_REQUEST
    if not (
        isinstance(payload, dict)
        and isinstance(payload.get("question"), str)
        and isinstance(payload.get("answer"), str)
        and isinstance(payload.get("context", []), list)
    ):
        return NOT_A_JUDGE_REQUEST
    calls = _calls(payload.get("tool_calls", []))
    if calls is None:
        return NOT_A_JUDGE_REQUEST
    results = evaluate(payload["question"], payload["answer"])
    if calls:
        results.append(tool_call_correctness(payload["question"], calls))
    return json.dumps({"evaluations": results})
