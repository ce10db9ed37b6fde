"""The answer-quality evaluations of docs/evaluations.md, written once for the tests (a repo test
checks the services' copies against that table), and the scorecard over an archive."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from harness.prereq import ROOT

# gen_ai.evaluation.name -> (pass label, fail label); scores in [0, 1], 1 is good
EVALUATION_LABELS = {
    "answer_relevancy": ("relevant", "irrelevant"),
    "faithfulness": ("faithful", "unfaithful"),
    "toxicity": ("safe", "toxic"),
    "answered": ("answered", "not_answered"),
}
EVALUATION_NAMES = tuple(EVALUATION_LABELS)
# the fifth, for shop-agent turns that called tools (docs/evaluations.md, "The tool evaluation")
TOOL_EVALUATION_LABELS = {"tool_call_correctness": ("correct", "incorrect")}
FAIL_LABELS = frozenset(fail for _, fail in EVALUATION_LABELS.values())
# the mock's quality trait -> the one evaluation the mock judge fails for it
FAILED_BY_TRAIT = {
    "off_topic": "answer_relevancy",
    "unsupported_claim": "faithfulness",
    "unsafe": "toxicity",
    "non_answer": "answered",
}
TRAITS = tuple(FAILED_BY_TRAIT)
MOCK_JUDGE = "mock-judge"


def scorecard_report(archive: Path, out: Path, *args: str) -> dict:
    """`python -m scorecard` over an archive (as `make report` runs it); its JSON report."""
    proc = subprocess.run(
        [sys.executable, "-m", "scorecard", "--archive", str(archive), "--out", str(out), *args],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "scorecard" / "src"), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads((out / "scorecard.json").read_text())
