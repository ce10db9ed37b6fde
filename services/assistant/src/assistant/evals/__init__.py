"""LLM-as-judge evaluations of delivered answers, off the request path (docs/evaluations.md).

Hand-written rather than Splunk's util-genai evaluator packages: those cannot be installed with
this service's pins and break its content, cost and memory rules where they do run (README,
"Evaluations (LLM-as-judge): Splunk's packages, measured"). Names and shapes are Splunk's.
"""

from __future__ import annotations

from assistant.evals.evaluator import EvalRequest, Evaluator, stop_all
from assistant.evals.judge import JudgeError, judge_body, parse_judge_response

__all__ = [
    "EvalRequest",
    "Evaluator",
    "JudgeError",
    "judge_body",
    "parse_judge_response",
    "stop_all",
]
