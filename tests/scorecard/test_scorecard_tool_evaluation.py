"""tool_call_correctness (docs/evaluations.md, "The tool evaluation") on the hand-built agent
turns: per model count, pass rate, Wilson interval and judge recomputed from the builder's
verdicts, labelled SIMULATED; the composite quality unchanged by it; an archive without it gives
exactly the reports of the scorecard without the tool evaluation; and its events-vs-histogram
consistency row flags a lost histogram record."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from scorecard_archive_builder import make_turns, tool_verdict, write_archive
from scorecard_cli import SCORECARD_SRC, close, run_scorecard
from test_scorecard_quality import RATES, judged_calls, wilson

RELAXED = ("--slo-error-rate", "0.2", "--slo-ttft-p90-ms", "5000", "--min-requests", "5")
NAME = "tool_call_correctness"
EXIT_CHECKS_FAILED = 5
# the scorecard as it was before it read tool_call_correctness
WITHOUT_TOOL_EVALUATION = (
    "import sys; from scorecard import names; names.TOOL_EVALUATIONS = {}; "
    "names.ALL_EVALUATIONS = dict(names.QUALITY_EVALUATIONS); "
    "from scorecard import cli; sys.exit(cli.main(sys.argv[1:]))"
)


def _calls():
    return judged_calls(rates={m: RATES["gpt-4o"] for m in RATES})


def _outputs(out: Path) -> list[str]:
    return [
        re.sub(r"Generated \S+|\"generated_at\": \"[^\"]+\"", "", (out / name).read_text())
        for name in ("scorecard.json", "scorecard.md", "scorecard.html")
    ]


def test_the_builder_judges_the_turns_that_called_tools():
    turns = make_turns(judged=True)
    judged = [t for t in turns if t.evaluations]
    assert all(e.name == NAME for t in judged for e in t.evaluations)
    assert all(any(s.tools for s in t.steps) for t in judged)
    assert not any(t.stop_reason or t.error_type for t in judged)
    verdicts = [tool_verdict(t) for t in judged]
    assert 0.0 in verdicts and 1.0 in verdicts  # both outcomes, or the rate tests nothing
    assert {t.model for t in judged} == {"gpt-4o", "gpt-4o-mini"}
    # the same turns as without the judge: only the results are added
    assert [t.steps for t in make_turns()] == [t.steps for t in turns]


def test_tool_call_correctness_per_model_recomputed(tmp_path):
    turns = make_turns(judged=True)
    archive = write_archive(tmp_path / "archive", _calls(), turns)
    run = run_scorecard("--archive", str(archive), "--strict", *RELAXED, out=tmp_path / "out")
    assert run.returncode == 0, run.stderr + run.stdout
    report = run.report()
    for model in ("gpt-4o", "gpt-4o-mini"):
        scores = [tool_verdict(t) for t in turns if t.model == model and t.evaluations]
        figures = report["models"][model]["quality"]["tool_evaluations"][NAME]
        low, high = wilson(sum(scores), len(scores))
        assert figures["count"] == len(scores)
        assert close(figures["mean"], sum(scores) / len(scores))
        assert close(figures["ci_low"], low, abs_=1e-4)
        assert close(figures["ci_high"], high, abs_=1e-4)
        assert figures["interval"].startswith("Wilson")
        assert figures["simulated"] is True
        assert figures["in_quality"] is False
        assert figures["judges"] == ["mock judge (simulated quality traits)"]
        assert NAME not in report["models"][model]["quality"]["evaluations"]
    # models without agent turns have no tool block
    assert "tool_evaluations" not in report["models"]["o3-mini"]["quality"]
    markdown = (run.out / "scorecard.md").read_text()
    rows = [line for line in markdown.splitlines() if NAME in line and "gpt-4o-mini" in line]
    assert rows and "SIMULATED" in rows[0] and "not in quality" in rows[0]
    html = (run.out / "scorecard.html").read_text()
    assert f"{NAME} (agent turns with tool calls; not in quality)" in html
    # its consistency rows agree (every result has its histogram record)
    names = {r["figure"] for r in report["consistency"]["rows"] if r["model"] == "gpt-4o"}
    assert {f"{NAME} evaluations", f"{NAME} mean score"} <= names


def test_the_composite_quality_is_unchanged_by_it(tmp_path):
    calls = _calls()
    reports = []
    for judged in (False, True):
        folder = tmp_path / str(judged)
        archive = write_archive(folder / "archive", calls, make_turns(judged=judged))
        run = run_scorecard("--archive", str(archive), *RELAXED, out=folder / "out")
        assert run.returncode == 0, run.stderr
        reports.append(run.report())
    without, with_tool = reports
    for model, entry in with_tool["models"].items():
        before, after = without["models"][model]["quality"], entry["quality"]
        assert after["overall"] == before["overall"]
        assert after["evaluations"] == before["evaluations"]
        assert after["judges"] == before["judges"]
        assert after["overall"]["evaluations"] == 4
    assert with_tool["quality"]["results"] == without["quality"]["results"]
    assert with_tool["ranking"] == without["ranking"]
    assert "tool_evaluations" in with_tool["models"]["gpt-4o"]["quality"]


def test_an_archive_without_it_gives_the_same_reports(tmp_path):
    archive = write_archive(tmp_path / "archive", _calls(), make_turns())
    run = run_scorecard("--archive", str(archive), "--strict", *RELAXED, out=tmp_path / "out")
    assert run.returncode == 0, run.stderr
    for output in _outputs(run.out):
        assert NAME not in output and "tool_evaluations" not in output
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCORECARD_")}
    env["PYTHONPATH"] = str(SCORECARD_SRC)
    before = tmp_path / "before"
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_TOOL_EVALUATION, "--archive", str(archive), "--strict",
         *RELAXED, "--out", str(before)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == run.stdout.splitlines()[0]
    assert _outputs(before) == _outputs(run.out)


def test_a_lost_histogram_record_is_flagged(tmp_path):
    turns = make_turns(judged=True)
    lost = next(t for t in turns if t.model == "gpt-4o" and t.evaluations)
    lost.evaluations[0].metric_lost = True
    archive = write_archive(tmp_path / "archive", _calls(), turns)
    run = run_scorecard("--archive", str(archive), "--strict", *RELAXED, out=tmp_path / "out")
    assert run.returncode == EXIT_CHECKS_FAILED, run.stderr
    rows = {(r["model"], r["figure"]): r for r in run.report()["consistency"]["rows"]}
    row = rows[("gpt-4o", f"{NAME} evaluations")]
    events = sum(1 for t in turns if t.model == "gpt-4o" and t.evaluations)
    assert (row["spans"], row["metrics"], row["flagged"]) == (events, events - 1, True)
    assert rows[("gpt-4o-mini", f"{NAME} evaluations")]["flagged"] is False
    assert f"{NAME} evaluations" in run.stderr
