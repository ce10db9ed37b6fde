"""The evaluation names and labels are written in four places besides docs/evaluations.md (the
tests' harness, the assistant, the mock judge, the scorecard): each copy matches the doc's table."""

from __future__ import annotations

import ast
import re

import pytest

from harness.evaluations import EVALUATION_LABELS, FAILED_BY_TRAIT, TOOL_EVALUATION_LABELS
from harness.prereq import ROOT

DOC = ROOT / "docs" / "evaluations.md"
COPIES = [
    ("services/assistant/src/assistant/semconv.py", "EVALUATION_LABELS"),
    ("services/mock-llm/src/mock_llm/judge.py", "LABELS"),
    ("scorecard/src/scorecard/names.py", "QUALITY_EVALUATIONS"),
]


def table_rows(heading: str) -> list[list[str]]:
    """The cells of the first table under a `## heading` of docs/evaluations.md."""
    section = DOC.read_text().split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


TOOL_COPIES = [
    ("services/assistant/src/assistant/semconv.py", "TOOL_EVALUATION_LABELS"),
    ("services/mock-llm/src/mock_llm/judge.py", "TOOL_LABELS"),
    ("scorecard/src/scorecard/names.py", "TOOL_EVALUATIONS"),
]


def documented_labels(heading: str = "The four evaluations") -> dict[str, tuple[str, str]]:
    labels = {}
    for name, _, pair in table_rows(heading):
        passed, failed = (
            re.fullmatch(r"`(\w+)`", part.strip()).group(1) for part in pair.split("/")
        )
        labels[name.strip("`")] = (passed, failed)
    return labels


def constant(path: str, name: str):
    """A module-level literal of a service's source, read without importing the service."""
    for node in ast.parse((ROOT / path).read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{path} has no {name}")


def test_the_doc_table_is_the_tests_copy():
    assert documented_labels() == EVALUATION_LABELS
    assert list(documented_labels()) == list(EVALUATION_LABELS)  # the order too


@pytest.mark.parametrize(("path", "name"), TOOL_COPIES)
def test_the_tool_evaluation_is_the_docs_everywhere(path, name):
    documented = documented_labels("The tool evaluation (agent turns)")
    assert documented == TOOL_EVALUATION_LABELS
    assert constant(path, name) == documented, path


@pytest.mark.parametrize(("path", "name"), COPIES)
def test_each_service_copy_matches_the_doc(path, name):
    copy = constant(path, name)
    assert copy == documented_labels(), path
    assert list(copy) == list(documented_labels()), path


def test_the_mock_traits_table_is_the_tests_copy():
    rows = table_rows("Mock quality traits (services/mock-llm profiles)")
    assert {trait.strip("`"): fails.strip("`") for trait, _, fails in rows} == FAILED_BY_TRAIT
