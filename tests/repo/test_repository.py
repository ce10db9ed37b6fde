"""The repository contract: README commands, CI entry point, ignored secrets, documented env."""

from __future__ import annotations

import re
import subprocess

import pytest

from harness.prereq import ROOT


def git_ignored(path: str) -> bool:
    result = subprocess.run(
        ["git", "check-ignore", "-q", "--no-index", path], cwd=ROOT, check=False
    )
    return result.returncode == 0


@pytest.mark.parametrize(
    "path",
    [".env", ".env.override", "build/x", "reports/scorecard.html", "telemetry/traces.jsonl"],
)
def test_secrets_and_outputs_are_ignored(path):
    assert git_ignored(path), f"{path} must be git-ignored"


@pytest.mark.parametrize("path", ["README.md", "compose.yaml", ".env.example", "Makefile"])
def test_shipped_files_are_not_ignored(path):
    assert not git_ignored(path)


def test_readme_names_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make up" in readme
    assert "make test" in readme


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    commands = [
        line.strip()
        for line in ci.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert "make test" in commands
    assert "export CI=true" in commands


def test_every_compose_variable_is_documented_in_env_example():
    compose = ROOT / "compose.yaml"
    if not compose.exists():
        pytest.skip("compose.yaml not written yet")
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", compose.read_text()))
    documented = set(
        re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.M)
    )
    assert used - documented == set(), "variables used in compose.yaml but not in .env.example"
