"""Answer quality end to end, offline: the mock's per-model quality traits, judged by the mock
judge through the assistant's evaluator, come out of the archive as per-model defect rates that
match the profiles, and the scorecard ranks the models' quality in the profiles' order.

Real processes on 127.0.0.1: the mock LLM (three models with distinct trait rates and the
mock-judge), the assistant under gunicorn with evaluations on (as shipped), the test collector and
a real Locust run. A second run raises a quality fault for one model through the mock's admin API:
only that model's judged defect rate rises.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict

import pytest

from harness.collector import wait_until
from harness.evaluations import FAILED_BY_TRAIT, scorecard_report
from harness.lab import lab
from harness.loadgen import run_loadgen_to_end
from harness.mock_llm import start_mock_llm

# trait rates (the same for the four traits of a model), far apart so ~50 answers per model
# separate them; answers are short so the run takes well under a minute
RATES = {"gpt-4o-mini": 0.30, "gpt-4o": 0.15, "o3-mini": 0.03}
TRAIT_OF = {evaluation: trait for trait, evaluation in FAILED_BY_TRAIT.items()}


def _profile(rate: float) -> str:
    traits = ", ".join(f"{trait}: {rate}" for trait in TRAIT_OF.values())
    return (
        "{ttft_ms: 40, tokens_per_s: 400, output_tokens: {min: 20, mean: 30, max: 40}, "
        f"quality: {{{traits}}}}}"
    )


PROFILES = (
    "defaults: {rpm: 0, tpm: 0}\nmodels:\n"
    + "".join(f"  {model}: {_profile(rate)}\n" for model, rate in RATES.items())
    + "  mock-judge: {ttft_ms: 10, tokens_per_s: 5000,"
    " output_tokens: {min: 1, mean: 50, max: 400}}\n"
)
USERS, REQUESTS_PER_USER = 6, 25  # 150 answers, about 50 per model
WEIGHTS = ",".join(f"{model}=1" for model in RATES)


def judged_results(collector, chats: int) -> list[dict] | None:
    records = [
        r["attributes"]
        for r in collector.log_records()
        if r["event_name"] == "gen_ai.evaluation.result"
        and r["attributes"].get("gen_ai.evaluation.name") in TRAIT_OF
    ]
    return records if len(records) >= 4 * chats else None


def defect_rates(records: list[dict], run_id: str) -> dict[tuple[str, str], tuple[int, int]]:
    """(failed, judged) per (model, evaluation) for one load run."""
    counts: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for attrs in records:
        if attrs.get("loadgen.run_id") != run_id:
            continue
        key = (attrs["gen_ai.request.model"], attrs["gen_ai.evaluation.name"])
        counts[key]["judged"] += 1
        counts[key]["failed"] += attrs["gen_ai.evaluation.score.value"] < 0.5
    return {key: (c["failed"], c["judged"]) for key, c in counts.items()}


def within_binomial(failed: int, judged: int, rate: float, sigmas: float = 4.0) -> bool:
    """4 standard errors: a false alarm about once in 16,000 checks (24 checks a run)."""
    spread = sigmas * math.sqrt(rate * (1 - rate) / judged) + 1 / judged
    return abs(failed / judged - rate) <= spread


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("quality")
    with (
        start_mock_llm(tmp / "mock", env={"MOCK_LLM_SEED": "3"}, profiles=PROFILES) as mock,
        lab(tmp, mock, assistant_env={"ASSISTANT_EVALUATIONS": "true"}) as (collector, assistant),
    ):
        common = dict(
            target="assistant", host=assistant.url, users=USERS, model_weights=WEIGHTS,
            requests_per_user=REQUESTS_PER_USER, feedback_rate=0, conversation_turns="1-1",
        )  # fmt: skip
        base = run_loadgen_to_end(tmp, "base", timeout=240, seed=1, run_id="q-base", **common)
        assert base.exit_code == 0, base.log()[-3000:]
        mock.set_faults({"models": {"gpt-4o": {"unsupported_claim": 0.6}}})
        faulted = run_loadgen_to_end(tmp, "fault", timeout=240, seed=2, run_id="q-fault", **common)
        assert faulted.exit_code == 0, faulted.log()[-3000:]
        chats = len(base.samples) + len(faulted.samples)
        records = wait_until(lambda: judged_results(collector, chats), timeout=60)
        spans = collector.spans()
    return {"base": base, "records": records, "spans": spans, "archive": collector.archive}


def test_judged_defect_rates_match_the_profiles(runs):
    rates = defect_rates(runs["records"], "q-base")
    assert {model for model, _ in rates} == set(RATES)
    misses = [
        f"{model} {name}: {failed}/{judged} vs profile {RATES[model]}"
        for (model, name), (failed, judged) in sorted(rates.items())
        if not within_binomial(failed, judged, RATES[model])
    ]
    assert misses == []


def test_every_result_is_linked_to_its_chat_span(runs):
    chat_spans = {
        s["attributes"].get("gen_ai.response.id"): s
        for s in runs["spans"]
        if s["name"].startswith("chat ")
    }
    for attrs in runs["records"]:
        span = chat_spans[attrs["gen_ai.response.id"]]
        assert span["attributes"]["gen_ai.request.model"] == attrs["gen_ai.request.model"]
        assert attrs["assistant.evaluation.judge"] == "mock-judge"
        assert "gen_ai.evaluation.explanation" not in attrs  # no content without opt-in


def test_the_quality_fault_raises_only_the_faulted_models_defect_rate(runs):
    rates = defect_rates(runs["records"], "q-fault")
    failed, judged = rates[("gpt-4o", "faithfulness")]
    # one fault draw per request: 0.6, plus the trait on the other 40 %
    assert within_binomial(failed, judged, 0.6 + 0.4 * RATES["gpt-4o"])
    for (model, name), (failed, judged) in rates.items():
        if (model, name) != ("gpt-4o", "faithfulness"):
            assert within_binomial(failed, judged, RATES[model]), (model, name, failed, judged)


def test_scorecard_ranks_quality_in_the_profiles_order(runs, tmp_path):
    report = scorecard_report(
        runs["archive"], tmp_path, "--run-id", "q-base", "--min-evaluations", "20"
    )
    quality = {m: report["models"][m]["quality"]["overall"]["mean"] for m in RATES}
    assert sorted(quality, key=quality.get, reverse=True) == ["o3-mini", "gpt-4o", "gpt-4o-mini"]
    assert all(report["models"][m]["quality"]["simulated"] for m in RATES)
