"""Run the scorecard CLI as users do (`python -m scorecard`) and check figures independently."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from harness.prereq import ROOT

SCORECARD_SRC = ROOT / "scorecard" / "src"


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    out: Path

    def report(self) -> dict:
        return json.loads((self.out / "scorecard.json").read_text())


def run_scorecard(*args: str, out: Path, env: dict | None = None, timeout: float = 120) -> Run:
    """`python -m scorecard` with any Python >= 3.11 (the scorecard needs only the stdlib)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SCORECARD_")}
    full_env.update(PYTHONPATH=str(SCORECARD_SRC), **(env or {}))
    proc = subprocess.run(
        [sys.executable, "-m", "scorecard", "--out", str(out), *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=ROOT,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr, out)


def pct(values: list[float], p: int) -> float:
    """Exact percentile by linear interpolation, via the standard library (independent check)."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def close(a: float | None, b: float | None, rel: float = 1e-6, abs_: float = 1e-6) -> bool:
    return a is not None and b is not None and abs(a - b) <= max(abs_, rel * abs(b))


class HtmlBalance(HTMLParser):
    """Every opened element of the report's HTML is closed, in order; `sections`: the
    data-model of each <section>."""

    VOID = {"meta", "br", "img", "input", "link", "hr", "col", "wbr", "source"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.sections: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "section":
            self.sections.append(dict(attrs).get("data-model", ""))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        pass

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> (open: {self.stack[-3:]})")
            return
        self.stack.pop()
