"""Answer quality from the judge's evaluations (docs/evaluations.md) on a hand-built archive:
pass rates and intervals recomputed independently, the latest result per response, the quality
dimension of the ranking, too few evaluations, the mock judge labelled simulated everywhere, a
real judge named, the span-vs-metric consistency rows, and the HTML."""

from __future__ import annotations

import math
import random
import re
import xml.etree.ElementTree as ET

import pytest
from scorecard_archive_builder import (
    FakeCall,
    FakeEvaluation,
    FakeJudgeCall,
    make_calls,
    write_archive,
)
from scorecard_cli import HtmlBalance, close, run_scorecard

from harness.evaluations import EVALUATION_LABELS as LABELS
from harness.evaluations import EVALUATION_NAMES as NAMES

RELAXED = ("--slo-error-rate", "0.2", "--slo-ttft-p90-ms", "5000", "--min-requests", "5")
# pass rates per model: o3-mini answers best, gpt-4o-mini (the fastest, cheapest) worst
RATES = {
    "gpt-4o": {"answer_relevancy": 0.9, "faithfulness": 0.8, "toxicity": 0.95, "answered": 0.9},
    "gpt-4o-mini": {"answer_relevancy": 0.6, "faithfulness": 0.5, "toxicity": 0.8, "answered": 0.6},
    "o3-mini": {"answer_relevancy": 1.0, "faithfulness": 0.95, "toxicity": 1.0, "answered": 0.95},
}
QUALITY_ONLY = ("--weights", "latency=0,cost=0,satisfaction=0", "--weight-quality", "1")


def judged_calls(
    rates=RATES, judges: dict[str, str] | None = None, seed: int = 11, per_model=None
) -> list[FakeCall]:
    """make_calls(), every successful call judged on the four evaluations (0/1 scores drawn at
    the model's pass rate), by the mock judge unless `judges` names another per model."""
    rng = random.Random(seed)
    calls = make_calls(per_model=per_model)
    for call in calls:
        if call.error_type is not None:
            continue
        judge = (judges or {}).get(call.model, "mock-judge")
        for name in NAMES:
            passed = rng.random() < rates[call.model][name]
            label = LABELS[name][0 if passed else 1]
            call.evaluations.append(FakeEvaluation(name, float(passed), label, judge=judge))
    return calls


def wilson(successes: float, n: int) -> tuple[float, float]:
    """The Wilson score interval, written out independently of the scorecard's stats."""
    z = 1.959964
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (0.0 if successes == 0 else centre - half), (1.0 if successes == n else centre + half)


def expected_scores(calls: list[FakeCall], model: str, name: str) -> list[float]:
    """The latest result per response (by time), label -> score when there is no value."""
    scores = []
    for call in calls:
        mine = [e for e in call.evaluations if e.name == name]
        if call.model != model or not mine:
            continue
        latest = max(mine, key=lambda e: e.delay_s)
        if latest.score is not None:
            scores.append(latest.score)
        else:
            scores.append(1.0 if latest.label == LABELS[name][0] else 0.0)
    return scores


def run(tmp_path, calls, *args, name="o", strict=False):
    archive = write_archive(tmp_path / f"archive-{name}", calls)
    result = run_scorecard(
        "--archive",
        str(archive),
        *RELAXED,
        *(("--strict",) if strict else ()),
        *args,
        out=tmp_path / name,
    )
    return result


def test_pass_rates_and_wilson_intervals_per_model_and_evaluation(tmp_path):
    calls = judged_calls()
    ok = [c for c in calls if c.evaluations]
    # the judge ran again on some answers: the latest result wins (log record or span event)
    for call in ok[::7]:
        first = call.evaluations[1]
        first.delay_s = 1.0
        call.evaluations.append(
            FakeEvaluation(
                first.name, 1.0 - first.score, LABELS[first.name][int(first.score)], delay_s=3.0
            )
        )
    # results joined by assistant.response_id only, or by the parent span only, as span events
    for call in ok[1::9]:
        for e in call.evaluations:
            e.join = "app_response_id"
    for call in ok[2::9]:
        for e in call.evaluations:
            e.join, e.as_span_event = "span", True
    # a label and no value; unknown names and the satisfaction event are not quality
    for call in ok[3::11]:
        call.evaluations[0].score = None
    for call in ok[::5]:
        call.evaluations.append(FakeEvaluation("coherence", 0.0, "incoherent"))
        call.evaluations.append(FakeEvaluation("answer_relevancy_v2", 0.0, "irrelevant"))
    result = run(tmp_path, calls, "--min-evaluations", "5")
    assert result.returncode == 0, result.stderr
    report = result.report()
    plain = run_scorecard(
        "--archive",
        str(write_archive(tmp_path / "plain", make_calls())),
        *RELAXED,
        out=tmp_path / "plain-out",
    )
    for model, entry in report["models"].items():
        quality = entry["quality"]
        assert set(quality["evaluations"]) == set(NAMES)
        means = []
        for name in NAMES:
            scores = expected_scores(calls, model, name)
            figures = quality["evaluations"][name]
            assert figures["count"] == len(scores) > 0
            assert close(figures["mean"], sum(scores) / len(scores))
            low, high = wilson(sum(scores), len(scores))
            assert close(figures["ci_low"], low, abs_=1e-4)
            assert close(figures["ci_high"], high, abs_=1e-4)
            assert figures["interval"] == "Wilson 95%"
            assert figures["judges"] == ["mock judge (simulated quality traits)"]
            assert figures["simulated"] is True
            means.append(sum(scores) / len(scores))
        overall = quality["overall"]
        assert close(overall["mean"], sum(means) / 4)
        assert overall["count"] == sum(quality["evaluations"][n]["count"] for n in NAMES)
        assert overall["ci_low"] <= overall["mean"] <= overall["ci_high"]
        assert quality["simulated"] is True and quality["enough_evaluations"] is True
        # user_satisfaction stays the satisfaction figure, unchanged by the evaluations
        assert (
            entry["satisfaction"]["count"]
            == plain.report()["models"][model]["satisfaction"]["count"]
        )
    assert report["quality"]["evaluations"] == list(NAMES)
    assert report["quality"]["results"] == sum(
        e["quality"]["overall"]["count"] for e in report["models"].values()
    )
    assert report["quality"]["simulated_results"] == report["quality"]["results"]


def test_the_quality_dimension_follows_the_pass_rates(tmp_path):
    calls = judged_calls()
    result = run(tmp_path, calls, *QUALITY_ONLY)
    assert result.returncode == 0, result.stderr
    report = result.report()
    models = report["models"]
    best = max(models, key=lambda m: models[m]["quality"]["overall"]["mean"])
    assert best == "o3-mini"
    ranking = report["ranking"]
    assert [r["model"] for r in ranking["ranked"]] == sorted(
        models, key=lambda m: -models[m]["quality"]["overall"]["mean"]
    )
    top = models[best]["quality"]["overall"]["mean"]
    for item in ranking["ranked"]:
        assert close(
            item["components"]["quality"], models[item["model"]]["quality"]["overall"]["mean"] / top
        )
        assert close(item["score"], item["components"]["quality"])
        assert "quality" in item["reasons"][0] and "SIMULATED" in item["reasons"][0]
    assert ranking["weights"]["quality"] == 1.0
    assert ranking["quality_basis"]["in_score"] is True
    assert all(e["quality"]["used_in_ranking"] for e in models.values())
    # on latency, cost and quality together the verdict names the dimensions
    together = run(tmp_path, calls, "--weights", "latency=1,cost=1,satisfaction=0", name="together")
    assert together.returncode == 0, together.stderr
    verdict = together.report()["ranking"]["verdict"]
    assert re.search(r"(Best fit on latency, cost and quality together: |Too close)", verdict)
    # the quality weight from the environment, and as part of --weights
    env = run_scorecard(
        "--archive",
        str(tmp_path / "archive-o"),
        *RELAXED,
        "--weights",
        "latency=1,cost=1,satisfaction=1",
        out=tmp_path / "env",
        env={"SCORECARD_WEIGHT_QUALITY": "2.5"},
    )
    assert env.returncode == 0, env.stderr
    assert env.report()["ranking"]["weights"]["quality"] == 2.5
    listed = run(
        tmp_path, calls, "--weights", "latency=0,cost=0,satisfaction=0,quality=1", name="l"
    )
    assert [r["model"] for r in listed.report()["ranking"]["ranked"]] == [
        r["model"] for r in ranking["ranked"]
    ]


def test_too_few_evaluations_says_so(tmp_path):
    calls = judged_calls()
    # gpt-4o's answers mostly unjudged: fewer than --min-evaluations of each evaluation
    seen = 0
    for call in calls:
        if call.model == "gpt-4o" and call.evaluations:
            seen += 1
            if seen > 5:
                call.evaluations = []
    result = run(tmp_path, calls, *QUALITY_ONLY, "--min-evaluations", "10")
    assert result.returncode == 0, result.stderr
    report = result.report()
    quality = report["models"]["gpt-4o"]["quality"]
    assert quality["enough_evaluations"] is False
    assert all(quality["evaluations"][n]["count"] == 5 for n in NAMES)
    item = next(r for r in report["ranking"]["ranked"] if r["model"] == "gpt-4o")
    assert item["components"]["quality"] == 0.5
    assert any("too few evaluations to judge quality" in reason for reason in item["reasons"])
    assert "Too few evaluations to judge quality for gpt-4o" in report["ranking"]["verdict"]
    assert report["ranking"]["quality_basis"]["models"] == ["gpt-4o-mini", "o3-mini"]
    md = (tmp_path / "o" / "scorecard.md").read_text()
    html = (tmp_path / "o" / "scorecard.html").read_text()
    for text in (md, html):
        assert "too few evaluations to judge quality" in text
    # no model with enough: quality is left out of the score, the other weights decide
    none = run(
        tmp_path,
        calls,
        "--weights",
        "latency=1,cost=0,satisfaction=0",
        "--min-evaluations",
        "1000",
        name="none",
    )
    assert none.returncode == 0, none.stderr
    ranking = none.report()["ranking"]
    assert ranking["quality_basis"]["in_score"] is False
    assert ranking["ranked"][0]["score"] == pytest.approx(1.0)
    assert all(r["components"]["quality"] is None for r in ranking["ranked"])
    assert "left out of the score" in ranking["ranked"][0]["reasons"][-1]
    # an archive without evaluations scores as before (quality left out, said in the report)
    plain = run(tmp_path, make_calls(), "--weights", "latency=1,cost=0,satisfaction=0", name="p")
    assert plain.returncode == 0, plain.stderr
    plain_report = plain.report()
    assert plain_report["ranking"]["ranked"][0]["score"] == pytest.approx(1.0)
    assert plain_report["ranking"]["verdict"].endswith(
        "No evaluations of the ranked models: quality is left out of the score."
    )
    assert all(
        e["quality"]["overall"]["count"] == 0 and e["quality"]["judge_text"] == "no evaluations"
        for e in plain_report["models"].values()
    )


def test_mock_judge_is_labelled_simulated_and_a_real_judge_is_named(tmp_path):
    calls = judged_calls(judges={"o3-mini": "gpt-4o"})
    result = run(tmp_path, calls, "--weights", "latency=1,cost=1,satisfaction=0")
    assert result.returncode == 0, result.stderr
    report = result.report()
    models = report["models"]
    for model in ("gpt-4o", "gpt-4o-mini"):
        quality = models[model]["quality"]
        assert quality["simulated"] is True
        assert quality["judges"] == [
            {
                "judge": "mock-judge",
                "label": "mock judge (simulated quality traits)",
                "simulated": True,
                "results": quality["overall"]["count"],
            }
        ]
        assert "SIMULATED" in quality["judge_text"] and "not measured" in quality["judge_text"]
    real = models["o3-mini"]["quality"]
    assert real["simulated"] is False
    assert real["judges"][0]["judge"] == "gpt-4o" and real["judges"][0]["label"] == "gpt-4o"
    assert all(real["evaluations"][n]["judges"] == ["gpt-4o"] for n in NAMES)
    assert "measured by this judge model" in real["judge_text"]
    verdict = report["ranking"]["verdict"]
    simulated = re.search(r"Quality of ([^.]*) is SIMULATED: judged by the mock judge", verdict)
    assert simulated and sorted(simulated.group(1).split(", ")) == ["gpt-4o", "gpt-4o-mini"]
    assert "Quality of o3-mini is measured by the judge model gpt-4o." in verdict
    assert report["quality"]["simulated_results"] == sum(
        models[m]["quality"]["overall"]["count"] for m in ("gpt-4o", "gpt-4o-mini")
    )
    assert report["quality"]["measured_results"] == real["overall"]["count"]
    md = (tmp_path / "o" / "scorecard.md").read_text()
    html = (tmp_path / "o" / "scorecard.html").read_text()
    assert "## Answer quality (evaluations)" in md
    assert '<h2 id="quality">Answer quality (evaluations)</h2>' in html
    for text in (md, html):
        assert verdict.split(" Quality of")[0].replace("'", "&#x27;") in text or "Best fit" in text
        assert "SIMULATED: mock judge (simulated quality traits)" in text
        assert "measured by gpt-4o" in text
        assert "Quality of o3-mini is measured by the judge model gpt-4o." in text
    # the quality table: every mock-judged row says SIMULATED, the real judge's rows do not
    table = md.split("## Answer quality (evaluations)")[1].split("## Per model")[0].splitlines()
    real_rows = [line for line in table if line.startswith("| o3-mini | ")]
    assert len(real_rows) == 5 and all(line.endswith("| gpt-4o | no |") for line in real_rows)
    mock_rows = [line for line in table if line.startswith("| gpt-4o-mini | ")]
    assert len(mock_rows) == 5 and all(line.endswith("| SIMULATED |") for line in mock_rows)
    assert '<td class="miss">SIMULATED</td>' in html
    assert "SIMULATED: mock judge" in html  # the chart title of the mock-judged models


def test_a_histogram_that_disagrees_with_the_events_is_flagged(tmp_path):
    calls = judged_calls()
    good = run(tmp_path, calls, "--min-evaluations", "5", name="good", strict=True)
    assert good.returncode == 0, good.stderr
    rows = {(r["model"], r["figure"]): r for r in good.report()["consistency"]["rows"]}
    for model in RATES:
        for name in NAMES:
            count = rows[(model, f"{name} evaluations")]
            mean = rows[(model, f"{name} mean score")]
            scores = expected_scores(calls, model, name)
            assert count["spans"] == count["metrics"] == len(scores) and not count["flagged"]
            assert close(mean["spans"], sum(scores) / len(scores)) and not mean["flagged"]
            assert mean["unit"] == "score"
            assert mean["tolerance"] == pytest.approx(max(0.001, 0.02 * mean["metrics"]))
    # gpt-4o's faithfulness histogram recorded a different score, o3-mini lost records
    bad = judged_calls()
    shifted = [c for c in bad if c.model == "gpt-4o" and c.evaluations]
    for call in shifted[:4]:
        e = call.evaluations[1]
        e.metric_score = 1.0 - e.score
    lost = [c for c in bad if c.model == "o3-mini" and c.evaluations]
    lost[0].evaluations[3].metric_lost = True
    flagged = run(tmp_path, bad, "--min-evaluations", "5", name="bad", strict=True)
    assert flagged.returncode == 5
    report = flagged.report()
    rows = {(r["model"], r["figure"]): r for r in report["consistency"]["rows"]}
    assert rows[("gpt-4o", "faithfulness mean score")]["flagged"] is True
    assert rows[("gpt-4o", "faithfulness evaluations")]["flagged"] is False
    assert rows[("o3-mini", "answered evaluations")]["flagged"] is True
    assert rows[("o3-mini", "answered evaluations")]["difference"] == -1
    assert rows[("gpt-4o", "toxicity mean score")]["flagged"] is False
    failures = report["checks"]["failures"]
    assert any(f.startswith("gpt-4o faithfulness mean score: events ") for f in failures)
    assert "gpt-4o faithfulness mean score" in flagged.stderr
    md = (tmp_path / "bad" / "scorecard.md").read_text()
    assert re.search(
        r"\| gpt-4o \| faithfulness mean score \| [0-9.]+ \| [0-9.]+ \| .* DISAGREE", md
    )
    # without such histogram points there are no evaluation rows
    no_metrics = judged_calls()
    for call in no_metrics:
        for e in call.evaluations:
            e.metric_lost = True
    quiet = run(tmp_path, no_metrics, name="quiet", strict=True)
    assert quiet.returncode == 0, quiet.stderr
    assert not any("evaluations" in r["figure"] for r in quiet.report()["consistency"]["rows"])


def test_the_html_is_well_formed_with_one_section_per_model(tmp_path):
    result = run(tmp_path, judged_calls(judges={"o3-mini": "gpt-4o"}))
    assert result.returncode == 0, result.stderr
    html = (tmp_path / "o" / "scorecard.html").read_text()
    parser = HtmlBalance()
    parser.feed(html)
    parser.close()
    assert parser.errors == [] and parser.stack == []
    assert sorted(parser.sections) == sorted(RATES)
    svgs = re.findall(r"<svg.*?</svg>", html, flags=re.S)
    for chart in svgs:
        ET.fromstring(chart)  # each chart is well-formed XML
    quality_charts = [c for c in svgs if "answer quality" in c.lower()]
    assert len(quality_charts) == 1 + len(RATES)  # the overview and one per model
    overview = quality_charts[0]
    assert overview.count("<path ") == len(RATES) * len(NAMES)  # a whisker per bar
    for model in RATES:
        section = html.split(f'data-model="{model}"')[1].split("</section>")[0]
        assert f"{model}: answer quality by evaluation" in section
        assert "Quality (mean of the four evaluations)" in section
        assert ("SIMULATED: mock judge" in section) is (model != "o3-mini")
        assert ("measured by gpt-4o" in section) is (model == "o3-mini")


@pytest.mark.browser
def test_the_quality_section_in_headless_chromium(tmp_path):
    from harness.browser import chromium_browser, record_page_problems

    result = run(tmp_path, judged_calls())
    assert result.returncode == 0, result.stderr
    external: list[str] = []
    with chromium_browser() as browser:
        page = browser.new_page()
        problems = record_page_problems(page)
        page.on(
            "request",
            lambda req: (
                external.append(req.url) if not req.url.startswith(("file:", "data:")) else None
            ),
        )
        page.goto((tmp_path / "o" / "scorecard.html").as_uri())
        assert page.locator("section.model").count() == len(RATES)
        assert page.locator("#quality").is_visible()
        for model in RATES:
            chart = page.locator(f'section[data-model="{model}"] svg').first
            box = chart.bounding_box()
            assert box and box["width"] > 100 and box["height"] > 40
    assert problems == []
    assert external == []


def test_judge_cost_from_the_judge_spans_and_the_price_table(tmp_path):
    """A priced judge: its spans' tokens x the table's gpt-4o-mini price (0.15 / 0.60 USD per 1M)
    = exactly $0.195 per 1,000 answers at 500 + 200 tokens; a dated snapshot name gets the same
    price; the mock judge: tokens, and no cost."""
    judges = {"o3-mini": "gpt-4o-mini", "gpt-4o": "gpt-4o-mini-2024-07-18"}
    calls = judged_calls(judges=judges)
    mock_tokens = [0, 0]
    for n, call in enumerate(c for c in calls if c.evaluations):
        judge = judges.get(call.model, "mock-judge")
        if judge == "mock-judge":
            usage = (300 + n, 90 + n % 5)
            mock_tokens = [mock_tokens[0] + usage[0], mock_tokens[1] + usage[1]]
        else:
            usage = (500, 200)
        call.judge_calls.append(FakeJudgeCall(judge, *usage))
    failed = next(c for c in calls if c.model == "o3-mini" and c.error_type is None)
    failed.judge_calls.append(FakeJudgeCall("gpt-4o-mini", None, None))  # a judge error
    result = run(tmp_path, calls)
    assert result.returncode == 0, result.stderr
    report = result.report()
    rows = {row["judge"]: row for row in report["quality"]["judge_cost"]["judges"]}
    assert set(rows) == {"gpt-4o-mini", "gpt-4o-mini-2024-07-18", "mock-judge"}
    for judge, model in (("gpt-4o-mini", "o3-mini"), ("gpt-4o-mini-2024-07-18", "gpt-4o")):
        answers = sum(1 for c in calls if c.model == model and c.evaluations)
        row = rows[judge]
        assert row["evaluated_answers"] == answers
        assert row["results"] == 4 * answers
        assert row["judge_calls"] == answers + (judge == "gpt-4o-mini")
        assert row["calls_with_usage"] == answers
        assert (row["input_tokens"], row["output_tokens"]) == (500 * answers, 200 * answers)
        assert row["price_per_mtok_usd"] == {"input": 0.15, "output": 0.60}
        assert close(row["cost_usd"], answers * (500 * 0.15 + 200 * 0.60) / 1e6)
        assert close(row["cost_per_1k_evaluated_answers_usd"], 0.195)
        assert row["cost_text"] == "estimated from list prices"
    mock = rows["mock-judge"]
    assert (
        mock["evaluated_answers"]
        == mock["judge_calls"]
        == sum(1 for c in calls if c.model == "gpt-4o-mini" and c.evaluations)
    )
    assert [mock["input_tokens"], mock["output_tokens"]] == mock_tokens
    assert mock["cost_usd"] is None and mock["cost_per_1k_evaluated_answers_usd"] is None
    assert mock["price_per_mtok_usd"] is None and mock["simulated"] is True
    assert mock["cost_text"] == "offline mock judge: no cost"
    # the chat figures are untouched: a judge span is not a request
    assert report["selection"]["calls"] == len(calls)
    md = (tmp_path / "o" / "scorecard.md").read_text()
    html = (tmp_path / "o" / "scorecard.html").read_text()
    as_of = report["prices"]["as_of"]
    for text in (md, html):
        assert "Judge cost: judge cost = the judge spans" in text
        assert f"(as of {as_of})" in text.split("Judge cost:")[1]
        assert "offline mock judge: no cost" in text
        assert "$0.1950" in text
        assert f"{mock_tokens[0]:,}" in text
    table = md.split("Cost / 1k evaluated answers")[1].split("\n\n")[0]
    assert f"| mock judge (simulated quality traits) | {mock['evaluated_answers']} |" in table
