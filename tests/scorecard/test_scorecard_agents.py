"""The scorecard's "Agent turns" (the shop agent's invoke_agent / execute_tool spans) on
hand-built archives: every figure against an independent computation from the builder's
turns, the agent-vs-children and tool span-vs-metric checks, and no change at all for an
archive without agent spans."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from scorecard_archive_builder import BASE_NS, FakeTurn, make_calls, make_turns, write_archive
from scorecard_cli import SCORECARD_SRC, HtmlBalance, close, pct, run_scorecard

RELAXED = ("--slo-error-rate", "0.2", "--slo-ttft-p90-ms", "5000", "--min-requests", "5")
EXIT_CHECKS_FAILED = 5
PRICES = {
    model: (entry["input"], entry["output"])
    for model, entry in json.loads(
        (SCORECARD_SRC / "scorecard" / "data" / "prices.json").read_text()
    )["models"].items()
}


def tools_of(turn: FakeTurn):
    return [tool for step in turn.steps for tool in step.tools]


def tool_spans_ms(tool) -> float:
    return int(tool.duration_s * 1e9) / 1e6  # span times are whole ns


def expected_block(turns: list[FakeTurn]) -> dict:
    """The "Agent turns" figures of one model, from the builder's turns (not from spans)."""
    tools = [t for turn in turns for t in tools_of(turn)]
    answered = [t.time_to_answer_s * 1000 for t in turns if t.time_to_answer_s is not None]
    with_usage = [t for t in turns if any(s.input_tokens is not None for s in t.steps)]
    price_in, price_out = PRICES[turns[0].model]
    costs = [
        sum(
            (s.input_tokens * price_in + s.output_tokens * price_out) / 1e6
            for s in t.steps
            if s.input_tokens is not None
        )
        for t in turns
    ]
    by_tool: dict[str, list] = {}
    for tool in tools:
        by_tool.setdefault(tool.name, []).append(tool)
    return {
        "answers": len(turns),
        "failed": sum(1 for t in turns if t.error_type),
        "tool_calls": len(tools),
        "tool_calls_per_answer": len(tools) / len(turns),
        "tool_errors": sum(1 for t in tools if t.error_type),
        "tool_error_rate": sum(1 for t in tools if t.error_type) / len(tools),
        "steps_per_answer": sum(len(t.steps) for t in turns) / len(turns),
        "step_limit_answers": sum(1 for t in turns if t.stop_reason == "max_steps"),
        "step_limit_rate": sum(1 for t in turns if t.stop_reason == "max_steps") / len(turns),
        "time_to_answer_ms": {
            "count": len(answered),
            "p50": pct(answered, 50),
            "p90": pct(answered, 90),
        },
        "input_tokens_per_answer": sum(
            sum(s.input_tokens for s in t.steps if s.input_tokens is not None) for t in with_usage
        )
        / len(with_usage),
        "output_tokens_per_answer": sum(
            sum(s.output_tokens for s in t.steps if s.output_tokens is not None) for t in with_usage
        )
        / len(with_usage),
        "answers_with_usage": len(with_usage),
        "cost_per_answer_usd": sum(costs) / len(turns),
        "tools": {
            name: {
                "calls": len(runs),
                "errors": sum(1 for r in runs if r.error_type),
                "error_rate": sum(1 for r in runs if r.error_type) / len(runs),
                "durations": [tool_spans_ms(r) for r in runs if not r.error_type],
            }
            for name, runs in by_tool.items()
        },
    }


@pytest.fixture(scope="module")
def turns() -> list[FakeTurn]:
    return make_turns()


@pytest.fixture(scope="module")
def agent_run(tmp_path_factory, turns):
    folder = tmp_path_factory.mktemp("agents")
    calls = make_calls()
    archive = write_archive(folder / "archive", calls, turns)
    run = run_scorecard("--archive", str(archive), "--strict", *RELAXED, out=folder / "out")
    assert run.returncode == 0, run.stderr
    return calls, run


def test_the_builder_writes_what_the_figures_need(turns):
    """The test data have every case the figures distinguish (or the figures test nothing)."""
    assert {t.model for t in turns} == {"gpt-4o", "gpt-4o-mini"}
    assert sum(1 for t in turns if t.stop_reason == "max_steps") == 3
    assert sum(1 for t in turns if t.error_type) == 1
    # the step-limit turns carry a time to their message, the failed turn none
    assert [t.error_type for t in turns if t.time_to_answer_s is None] == ["openai.APITimeoutError"]
    tools = [tool for t in turns for tool in tools_of(t)]
    errors = [tool for tool in tools if tool.error_type]
    assert 0 < len(errors) < len(tools)
    assert {len(t.steps) for t in turns} >= {1, 2, 3}
    assert len({tool.name for tool in tools}) == 4


def test_agent_figures_match_an_independent_computation(agent_run, turns):
    calls, run = agent_run
    report = run.report()
    assert report["agents"]["models"] == ["gpt-4o", "gpt-4o-mini"]
    assert report["agents"]["answers"] == len(turns)
    assert "o3-mini" in report["models"] and "agents" not in report["models"]["o3-mini"]
    for model in ("gpt-4o", "gpt-4o-mini"):
        mine = [t for t in turns if t.model == model]
        want = expected_block(mine)
        got = report["models"][model]["agents"]
        assert got["agents"] == ["shop-assistant"]
        for key in (
            "answers",
            "failed",
            "tool_calls",
            "tool_errors",
            "step_limit_answers",
            "answers_with_usage",
        ):
            assert got[key] == want[key], (model, key)
        for key in (
            "tool_calls_per_answer",
            "tool_error_rate",
            "steps_per_answer",
            "step_limit_rate",
            "input_tokens_per_answer",
            "output_tokens_per_answer",
        ):
            assert close(got[key], want[key]), (model, key, got[key], want[key])
        assert close(got["cost_per_answer_usd"], want["cost_per_answer_usd"], abs_=1e-12)
        assert got["time_to_answer_ms"]["count"] == want["time_to_answer_ms"]["count"]
        for p in ("p50", "p90"):
            assert close(got["time_to_answer_ms"][p], want["time_to_answer_ms"][p], abs_=1e-6)
        assert set(got["tools"]) == set(want["tools"])
        for name, tool in want["tools"].items():
            shown = got["tools"][name]
            assert shown["calls"] == tool["calls"] and shown["errors"] == tool["errors"]
            assert close(shown["error_rate"], tool["error_rate"])
            assert shown["duration_ms"]["count"] == len(tool["durations"])
            if tool["durations"]:
                for p in (50, 90):
                    assert close(shown["duration_ms"][f"p{p}"], pct(tool["durations"], p))
            else:
                assert shown["duration_ms"]["p50"] is None
        # the turns' model calls are chat calls like any other (the chat figures count them)
        steps = sum(len(t.steps) for t in mine)
        assert report["models"][model]["requests"] == sum(c.model == model for c in calls) + steps


def test_agent_checks_agree_on_consistent_data(agent_run, turns):
    _, run = agent_run
    report = run.report()
    assert report["checks"] == {"strict": True, "passed": True, "failures": []}
    rows = {(r["model"], r["figure"]): r for r in report["agents"]["consistency"]["rows"]}
    for model in ("gpt-4o", "gpt-4o-mini"):
        mine = [t for t in turns if t.model == model]
        steps = rows[(model, "Agent steps vs chat spans")]
        assert steps["agent"] == steps["children"] == sum(len(t.steps) for t in mine)
        out = rows[(model, "Agent output tokens vs chat spans")]
        expected = sum(s.output_tokens for t in mine for s in t.steps if s.output_tokens)
        assert out["agent"] == out["children"] == expected
        assert not any(r["flagged"] for r in rows.values())
        # tool runs: execute_tool spans vs the execute_tool points, per model and tool
        tool_rows = {
            r["figure"]: r
            for r in report["consistency"]["rows"]
            if r["model"] == model and r["figure"].startswith("Tool calls ")
        }
        counts: dict[str, int] = {}
        for tool in (tool for t in mine for tool in tools_of(t)):
            counts[tool.name] = counts.get(tool.name, 0) + 1
        assert {f: (r["spans"], r["metrics"]) for f, r in tool_rows.items()} == {
            f"Tool calls {name}": (n, n) for name, n in counts.items()
        }
    assert (
        "spans vs metrics agree; agent turns agree with their spans"
        in (run.out / "scorecard.md").read_text()
    )


def test_the_block_is_in_markdown_and_html(agent_run):
    _, run = agent_run
    report = run.report()
    block = report["models"]["gpt-4o-mini"]["agents"]
    md = (run.out / "scorecard.md").read_text()
    html = (run.out / "scorecard.html").read_text()
    answers = block["time_to_answer_ms"]
    row = (
        f"| gpt-4o-mini | {block['answers']} | {block['failed']} | "
        f"{block['tool_calls_per_answer']:.2f} | {block['tool_error_rate']:.1%} | "
        f"{block['steps_per_answer']:.2f} | {block['step_limit_rate']:.1%} | "
        f"{answers['p50']:,.0f} ms | {answers['p90']:,.0f} ms | "
    )
    assert "## Agent turns" in md and row in md
    assert md.count("Agent turns:") == 2  # in the two agent models' sections, not o3-mini's
    section = md.split("### o3-mini")[1].split("## Method")[0]
    assert "Agent turns" not in section
    assert '<h2 id="agents">Agent turns</h2>' in html
    parser = HtmlBalance()
    parser.feed(html)
    parser.close()
    assert parser.errors == [] and parser.stack == []
    assert html.count("<h3>Agent turns</h3>") == 2
    assert f"<td>{block['tool_calls_per_answer']:.2f}</td>" in html
    assert "assistant.agent.time_to_answer" in report["method"]["agents"]


@pytest.mark.parametrize(
    ("change", "figure", "difference"),
    [
        ({"span_steps": 1}, "Agent steps vs chat spans", None),
        ({"span_input_tokens": 7}, "Agent input tokens vs chat spans", None),
        ({"span_output_tokens": 0}, "Agent output tokens vs chat spans", None),
    ],
)
def test_an_agent_span_disagreeing_with_its_children_fails(tmp_path, change, figure, difference):
    turns = make_turns()
    bad = next(t for t in turns if t.model == "gpt-4o-mini" and len(t.steps) >= 2)
    for key, value in change.items():
        setattr(bad, key, value)
    archive = write_archive(tmp_path / "archive", make_calls(), turns)
    run = run_scorecard("--archive", str(archive), *RELAXED, out=tmp_path / "out")
    assert run.returncode == 0, run.stderr  # without --strict the checks do not fail the run
    report = run.report()
    rows = {(r["model"], r["figure"]): r for r in report["agents"]["consistency"]["rows"]}
    row = rows[("gpt-4o-mini", figure)]
    attributes = bad.agent_attributes()
    key = {
        "Agent steps vs chat spans": "assistant.agent.steps",
        "Agent input tokens vs chat spans": "gen_ai.usage.input_tokens",
        "Agent output tokens vs chat spans": "gen_ai.usage.output_tokens",
    }[figure]
    truth = {
        "assistant.agent.steps": len(bad.steps),
        "gen_ai.usage.input_tokens": sum(s.input_tokens for s in bad.steps),
        "gen_ai.usage.output_tokens": sum(s.output_tokens for s in bad.steps),
    }[key]
    assert row["flagged"] is True and row["turns_disagreeing"] == 1
    assert row["children"] - row["agent"] == truth - attributes[key]
    assert [r["flagged"] for r in rows.values()].count(True) == 1
    assert report["checks"]["passed"] is False
    assert report["checks"]["failures"] == [
        f"gpt-4o-mini {figure}: agent spans {row['agent']:.0f} vs their chat spans "
        f"{row['children']:.0f} {row['unit']}, 1 turn(s) disagree (must be equal)"
    ]
    md = (run.out / "scorecard.md").read_text()
    assert re.search(
        rf"\| gpt-4o-mini \| {figure} \| [\d,]+ \| [\d,]+ \| [-+][\d,]+ \| 1 \| DISAGREE \|", md
    )
    strict = run_scorecard("--archive", str(archive), "--strict", *RELAXED, out=tmp_path / "s")
    assert strict.returncode == EXIT_CHECKS_FAILED
    assert f"gpt-4o-mini {figure}: agent spans" in strict.stderr


def test_turn_differences_that_cancel_out_still_disagree(tmp_path):
    """One turn counts a step too many, another one too few: the sums agree, the turns not."""
    turns = make_turns()
    first, second = [t for t in turns if t.model == "gpt-4o" and len(t.steps) >= 2][:2]
    first.span_steps, second.span_steps = len(first.steps) + 1, len(second.steps) - 1
    archive = write_archive(tmp_path / "archive", make_calls(), turns)
    run = run_scorecard("--archive", str(archive), "--strict", *RELAXED, out=tmp_path / "out")
    assert run.returncode == EXIT_CHECKS_FAILED
    row = next(
        r
        for r in run.report()["agents"]["consistency"]["rows"]
        if r["model"] == "gpt-4o" and r["figure"] == "Agent steps vs chat spans"
    )
    assert row["difference"] == 0 and row["turns_disagreeing"] == 2 and row["flagged"] is True


def test_a_lost_tool_duration_point_is_flagged(tmp_path):
    turns = make_turns()
    lost = next(tool for t in turns if t.model == "gpt-4o" for tool in tools_of(t))
    lost.metric_lost = True
    archive = write_archive(tmp_path / "archive", make_calls(), turns)
    run = run_scorecard("--archive", str(archive), "--strict", *RELAXED, out=tmp_path / "out")
    assert run.returncode == EXIT_CHECKS_FAILED
    report = run.report()
    flagged = [r for r in report["consistency"]["rows"] if r["flagged"]]
    calls = sum(1 for t in turns if t.model == "gpt-4o" for x in tools_of(t) if x.name == lost.name)
    assert [(r["model"], r["figure"], r["spans"], r["metrics"]) for r in flagged] == [
        ("gpt-4o", f"Tool calls {lost.name}", calls, calls - 1)
    ]
    assert not any(r["flagged"] for r in report["agents"]["consistency"]["rows"])


def test_tool_runs_after_the_last_export_are_pending_not_flagged(tmp_path):
    turns = make_turns()
    late = sorted(end for t in turns if t.model == "gpt-4o-mini" for end, _ in t.tool_runs())
    step = 10 * 10**9  # exports every 10 s; the last one in the middle of the tool runs
    until = BASE_NS + (late[len(late) // 2] - BASE_NS) // step * step
    pending = sum(1 for end in late if end > until)
    assert 0 < pending < len(late)
    archive = write_archive(
        tmp_path / "archive", make_calls(), turns, export_every_s=10, exported_until_ns=until
    )
    run = run_scorecard("--archive", str(archive), "--strict", *RELAXED, out=tmp_path / "out")
    assert run.returncode == 0, run.stderr
    report = run.report()
    notes = report["consistency"]["notes"]
    assert f"gpt-4o-mini: {pending} tool call(s) of the selection ended after the archive's" in (
        " ".join(notes)
    )
    rows = [r for r in report["consistency"]["rows"] if r["figure"].startswith("Tool calls ")]
    assert sum(r["spans"] for r in rows if r["model"] == "gpt-4o-mini") == len(late) - pending


def test_turns_are_selected_like_the_chat_calls(tmp_path):
    turns = make_turns()
    since_ns = turns[10].start_ns + 1  # turns[10]'s agent span starts 1 ms after start_ns
    archive = write_archive(tmp_path / "archive", make_calls(), turns)
    run = run_scorecard(
        "--archive", str(archive), "--since", str(since_ns / 1e9), *RELAXED, out=tmp_path / "out"
    )
    assert run.returncode == 0, run.stderr
    report = run.report()
    chosen = [t for t in turns if t.start_ns + 1_000_000 >= since_ns]
    assert report["agents"]["answers"] == len(chosen) == len(turns) - 10
    for model in ("gpt-4o", "gpt-4o-mini"):
        mine = [t for t in chosen if t.model == model]
        assert report["models"][model]["agents"]["answers"] == len(mine)
        assert close(
            report["models"][model]["agents"]["tool_calls_per_answer"],
            sum(len(tools_of(t)) for t in mine) / len(mine),
        )


WITHOUT_AGENT_CODE = (
    "import sys; from scorecard import analysis, cli; "
    "analysis._add_agent_turns = lambda *args: None; sys.exit(cli.main(sys.argv[1:]))"
)


def _outputs(out: Path) -> list[str]:
    """The three reports, without the time they were generated."""
    return [
        re.sub(r"Generated \S+|\"generated_at\": \"[^\"]+\"", "", (out / name).read_text())
        for name in ("scorecard.json", "scorecard.md", "scorecard.html")
    ]


def test_an_archive_without_agent_spans_gives_the_same_report(tmp_path):
    """Nothing changes without invoke_agent spans, even with execute_tool points in the
    duration histogram: the reports equal those of the scorecard without its agent code, and
    say nothing about agent turns or tools."""
    archive = write_archive(tmp_path / "archive", make_calls(), tool_runs=True)
    run = run_scorecard("--archive", str(archive), "--strict", *RELAXED, out=tmp_path / "out")
    assert run.returncode == 0, run.stderr
    for output in _outputs(run.out):
        for word in ("Agent turns", "invoke_agent", "execute_tool", '"agents"', "Tool calls"):
            assert word not in output
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCORECARD_")}
    env["PYTHONPATH"] = str(SCORECARD_SRC)
    before = tmp_path / "before"
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_AGENT_CODE, "--archive", str(archive), "--strict",
         *RELAXED, "--out", str(before)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == run.stdout.splitlines()[0]  # the verdict
    assert _outputs(before) == _outputs(run.out)


def test_turns_of_a_load_run_are_selected_by_its_run_id(tmp_path):
    calls, turns = make_calls(), make_turns()
    for call in calls[::2]:
        call.run_id = "agent-run"
    for turn in turns[::3]:
        turn.run_id = "agent-run"
    archive = write_archive(tmp_path / "archive", calls, turns)
    run = run_scorecard("--archive", str(archive), "--run-id", "agent-run", *RELAXED, out=tmp_path)
    assert run.returncode == 0, run.stderr
    report = run.report()
    chosen = turns[::3]
    assert report["agents"]["answers"] == len(chosen) < len(turns)
    for model in ("gpt-4o", "gpt-4o-mini"):
        mine = [t for t in chosen if t.model == model]
        block = report["models"][model]["agents"]
        assert block["answers"] == len(mine)
        assert close(block["steps_per_answer"], sum(len(t.steps) for t in mine) / len(mine))


def _turn_summary(calls, turns, path: Path, ttft_shift_ms: float = 6.0) -> str:
    """The load generator's view: per request (an agent turn is one request), the client saw
    the server's TTFT (the turn's first model call) plus `ttft_shift_ms`, and its E2E plus 3 ms."""
    models = {}
    for model in sorted({c.model for c in calls} | {t.model for t in turns}):
        ttft = [c.ttft_s * 1000 for c in calls if c.model == model and c.error_type is None]
        e2e = [int(c.server_s * 1e9) / 1e6 for c in calls if c.model == model and not c.error_type]
        for turn in (t for t in turns if t.model == model and not t.error_type):
            ttft.append(turn.steps[0].ttft_s * 1000)
            e2e.append((turn.timeline()[2] + 1_000_000 - turn.start_ns) / 1e6)
        mine = [c for c in calls if c.model == model] + [t for t in turns if t.model == model]
        models[model] = {
            "requests": len(mine),
            "failed": sum(1 for x in mine if x.error_type),
            "ttft_ms": {f"p{p}": pct(ttft, p) + ttft_shift_ms for p in (50, 90, 99)},
            "e2e_ms": {f"p{p}": pct(e2e, p) + 3 for p in (50, 90, 99)},
        }
    path.write_text(
        json.dumps(
            {
                "schema": "loadgen.llm-summary/1",
                "metadata": {"run_id": "agent-run"},
                "window": {
                    "first_start_s": min(c.start_ns for c in calls) / 1e9,
                    "last_end_s": max(t.timeline()[2] for t in turns) / 1e9 + 0.01,
                },
                "models": models,
            }
        )
    )
    return str(path)


def test_e2e_and_ttft_count_an_agent_turn_once(tmp_path):
    """The client measures a turn as one request: so do the E2E and TTFT figures (the turn's
    SERVER span once, its first model call's TTFT), and client vs server agrees; per model call
    (each step with the turn's SERVER span again) the E2E rows would disagree."""
    calls, turns = make_calls(), make_turns()
    archive = write_archive(tmp_path / "archive", calls, turns)
    summary = _turn_summary(calls, turns, tmp_path / "llm-summary.json")
    run = run_scorecard(
        "--archive", str(archive), "--loadgen-summary", summary, "--strict", *RELAXED,
        out=tmp_path / "out",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    report = run.report()
    for model in ("gpt-4o", "gpt-4o-mini"):
        entry = report["models"][model]
        mine = [t for t in turns if t.model == model and not t.error_type]
        plain = [c for c in calls if c.model == model and c.error_type is None]
        e2e = [int(c.server_s * 1e9) / 1e6 for c in plain]
        e2e += [(t.timeline()[2] + 1_000_000 - t.start_ns) / 1e6 for t in mine]
        ttft = [c.ttft_s * 1000 for c in plain] + [t.steps[0].ttft_s * 1000 for t in mine]
        assert entry["e2e_ms"]["count"] == entry["ttft_ms"]["count"] == len(e2e)
        for p in (50, 90, 99):
            assert close(entry["e2e_ms"][f"p{p}"], pct(e2e, p), abs_=1e-3), (model, p)
            assert close(entry["ttft_ms"][f"p{p}"], pct(ttft, p), abs_=1e-6), (model, p)
        rows = {(r["metric"], r["percentile"]): r for r in entry["client_vs_server"]}
        assert close(rows[("E2E", "p90")]["diff_ms"], 3.0, abs_=1e-3)
        assert close(rows[("TTFT", "p50")]["diff_ms"], 6.0, abs_=1e-3)
        assert not any(r["flagged"] for r in entry["client_vs_server"])
        # the per-call figures stay per call: every successful step of every turn
        steps = [s for t in turns if t.model == model for s in t.steps if not s.error_type]
        assert entry["llm_call_ms"]["count"] == len(plain) + len(steps)
        assert entry["requests"] == sum(c.model == model for c in calls) + sum(
            len(t.steps) for t in turns if t.model == model
        )
        assert any("E2E and TTFT are per answer" in note for note in entry["notes"])
    # per model call the client's E2E p90 would be far off (the test data make the difference)
    steps_e2e = [v for c in calls if c.model == "gpt-4o-mini" and not c.error_type
                 for v in [int(c.server_s * 1e9) / 1e6]]  # fmt: skip
    for turn in (t for t in turns if t.model == "gpt-4o-mini" and not t.error_type):
        steps_e2e += [(turn.timeline()[2] + 1_000_000 - turn.start_ns) / 1e6] * len(turn.steps)
    client_p90 = report["models"]["gpt-4o-mini"]["client"]["e2e_ms"]["p90"]
    assert abs(pct(steps_e2e, 90) - client_p90) > max(50, 0.1 * pct(steps_e2e, 90))
    assert not any("per answer" in note for note in report["models"]["o3-mini"]["notes"])
