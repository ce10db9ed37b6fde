"""Real and simulated (synthetic_request=true) ratings on a hand-built archive: reported apart,
labelled as simulated wherever shown, and the ranking's satisfaction from real ratings whenever
there are enough of them."""

from __future__ import annotations

import statistics

from scorecard_archive_builder import FakeCall, make_calls, write_archive
from scorecard_cli import close, run_scorecard

RELAXED = ("--slo-error-rate", "0.2", "--slo-ttft-p90-ms", "5000", "--min-requests", "5")
SATISFACTION_ONLY = ("--weights", "latency=0,cost=0,satisfaction=1")
# every way the assistant marks a simulated rating (see the builder's FakeCall.synthetic_on)
MARKERS = (("chat",), ("record",), ("feedback_span",))


def split_calls(real: dict[str, int], simulated: dict[str, int]) -> list[FakeCall]:
    """make_calls(), every other rated call of a model simulated (marked in one of the three
    ways in turn), the rest real; scores base or base - 1 around the given base per model."""
    calls = make_calls()
    seen: dict[str, int] = {}
    for call in calls:
        if call.score is None:
            continue
        n = seen[call.model] = seen.get(call.model, 0) + 1
        call.feedback_span = True  # both copies of every rating, as the assistant writes them
        if n % 2:
            call.synthetic_on = MARKERS[(n // 2) % len(MARKERS)]
            call.score = simulated[call.model] - (n // 2) % 2
        else:
            call.score = real[call.model] - (n // 2) % 2
    return calls


def scored(archive, out, *args: str):
    """The scorecard over `archive` with the relaxed SLOs and 3 ratings enough; it succeeded."""
    run = run_scorecard("--archive", str(archive), *RELAXED, "--min-ratings", "3", *args, out=out)
    assert run.returncode == 0, run.stderr
    return run


def expected(calls: list[FakeCall], model: str, synthetic: bool) -> list[float]:
    return [
        (c.score - 1) / 4
        for c in calls
        if c.model == model and c.score is not None and bool(c.synthetic_on) == synthetic
    ]


def test_real_and_simulated_ratings_are_reported_apart(tmp_path):
    calls = split_calls(
        real={"gpt-4o": 5, "gpt-4o-mini": 3, "o3-mini": 4},
        simulated={"gpt-4o": 3, "gpt-4o-mini": 5, "o3-mini": 4},
    )
    archive = write_archive(tmp_path / "archive", calls)
    run = scored(archive, tmp_path / "o")
    report = run.report()
    for model, entry in report["models"].items():
        sat = entry["satisfaction"]
        real, simulated = expected(calls, model, False), expected(calls, model, True)
        assert len(real) >= 3 and len(simulated) >= 3
        assert sat["real"]["count"] == len(real)
        assert close(sat["real"]["mean"], statistics.fmean(real))
        assert sat["synthetic"]["count"] == len(simulated)
        assert close(sat["synthetic"]["mean"], statistics.fmean(simulated))
        assert sat["synthetic"]["simulated"] is True
        for block in (sat["real"], sat["synthetic"]):
            assert block["ci_low"] <= block["mean"] <= block["ci_high"]
        # the top-level figures are all ratings, each counted once (log record + span event)
        assert sat["count"] == len(real) + len(simulated)
        assert sat["scope"] == "all ratings, real and simulated"
    ratings = report["ratings"]
    assert ratings["real"] == sum(len(expected(calls, m, False)) for m in report["models"])
    assert ratings["synthetic"] == sum(len(expected(calls, m, True)) for m in report["models"])
    assert "not answer quality" in ratings["simulated_meaning"]
    md = (tmp_path / "o" / "scorecard.md").read_text()
    html = (tmp_path / "o" / "scorecard.html").read_text()
    for text in (md, html):
        assert "Satisfaction, real users [95% CI] (n)" in text
        assert "Satisfaction, SIMULATED [95% CI] (n)" in text
        assert "Satisfaction, SIMULATED (events)" in text
        assert "simulated)" in text  # the simulated cells say so: "(n=6 simulated)"
    assert 'id="ratings"' in html


def test_ranking_uses_real_ratings_when_there_are_enough(tmp_path):
    # real users prefer gpt-4o, the simulated ones gpt-4o-mini: the real ones must decide
    calls = split_calls(
        real={"gpt-4o": 5, "gpt-4o-mini": 2, "o3-mini": 3},
        simulated={"gpt-4o": 2, "gpt-4o-mini": 5, "o3-mini": 3},
    )
    archive = write_archive(tmp_path / "archive", calls)
    run = scored(archive, tmp_path / "o", *SATISFACTION_ONLY)
    report = run.report()
    ranking = report["ranking"]
    assert ranking["satisfaction_basis"]["ratings"] == "real"
    assert ranking["ranked"][0]["model"] == "gpt-4o"
    assert "simulated" not in ranking["verdict"].lower()
    assert all(e["satisfaction"]["used_in_ranking"] == "real" for e in report["models"].values())
    assert report["ratings"]["ranking_basis"]["ratings"] == "real"
    html = (tmp_path / "o" / "scorecard.html").read_text()
    assert "Satisfaction (real ratings)" in html
    assert "Cost vs satisfaction (real users&#x27; ratings, 95% interval)" in html


def test_ranking_falls_back_to_simulated_ratings_and_says_so(tmp_path):
    calls = make_calls()
    for call in calls:
        call.synthetic_on = ("record",) if call.score is not None else ()
    archive = write_archive(tmp_path / "archive", calls)
    run = scored(archive, tmp_path / "o", *SATISFACTION_ONLY)
    report = run.report()
    ranking = report["ranking"]
    assert ranking["satisfaction_basis"]["ratings"] == "simulated"
    models = report["models"]
    assert all(e["satisfaction"]["real"]["count"] == 0 for e in models.values())
    best = max(models, key=lambda m: models[m]["satisfaction"]["synthetic"]["mean"])
    assert ranking["ranked"][0]["model"] == best
    verdict = ranking["verdict"]
    assert "Satisfaction in this ranking is simulated" in verdict
    assert "latency, errors, truncation and a content heuristic" in verdict
    assert "not answer quality" in verdict
    for item in ranking["ranked"]:
        assert "simulated satisfaction" in item["reasons"][0]
        assert "simulated ratings" in item["reasons"][0]
    assert all(e["satisfaction"]["used_in_ranking"] == "simulated" for e in models.values())
    md = (tmp_path / "o" / "scorecard.md").read_text()
    html = (tmp_path / "o" / "scorecard.html").read_text()
    assert "Satisfaction in this ranking is simulated" in md
    assert "Satisfaction (SIMULATED ratings)" in html
    assert "Cost vs satisfaction (SIMULATED ratings, 95% interval)" in html
    assert '<p id="ratings" class="warn">' in html
    # with satisfaction weighted 0, the ranking says nothing about it
    quiet = scored(archive, tmp_path / "q", "--weights", "latency=1,cost=0,satisfaction=0")
    assert "simulated" not in quiet.report()["ranking"]["verdict"]


def test_real_ratings_of_one_model_leave_the_others_neutral_not_simulated(tmp_path):
    calls = make_calls()
    for call in calls:
        if call.score is not None and call.model != "gpt-4o":
            call.synthetic_on = ("chat",)
    archive = write_archive(tmp_path / "archive", calls)
    run = scored(archive, tmp_path / "o", *SATISFACTION_ONLY)
    ranking = run.report()["ranking"]
    assert ranking["satisfaction_basis"]["ratings"] == "real"
    assert ranking["satisfaction_basis"]["models"] == ["gpt-4o"]
    by_model = {item["model"]: item for item in ranking["ranked"]}
    for model in ("gpt-4o-mini", "o3-mini"):
        assert by_model[model]["components"]["satisfaction"] == 0.5
        assert any(
            "0 real rating(s)" in reason and "simulated rating(s) are not used" in reason
            for reason in by_model[model]["reasons"]
        )
    assert by_model["gpt-4o"]["components"]["satisfaction"] == 1.0
