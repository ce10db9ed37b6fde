"""Rank models: SLO misses marked and put last; the rest ordered by a weighted score.

Score (0-1, higher is better) = sum(weight x component) / sum(weights), where, among the
models that meet the SLOs and have enough data:
- latency component = best E2E p90 / this model's E2E p90 (1.0 for the fastest),
- cost component = cheapest cost per 1k requests / this model's (1.0 for the cheapest),
- satisfaction component = this model's mean satisfaction / the best mean, from real users'
  ratings when at least one of these models has --min-ratings of them, else from the load
  generator's simulated ratings (synthetic_request=true), never a mix of both; a ranking on
  simulated ratings says so in its verdict: they reflect only latency, errors, truncation and
  a content heuristic, not answer quality,
- quality component = this model's quality (the mean of its four evaluations' pass rates:
  answer_relevancy, faithfulness, toxicity, answered) / the best, for models with at least
  --min-evaluations results of every evaluation; a model with fewer has "too few evaluations
  to judge quality" (neutral); when no ranked model has enough, quality is left out of the
  score (its weight not counted), so an archive without evaluations scores as before. Quality
  judged by the mock judge is SIMULATED (the mock's configured quality traits), and the
  verdict says so; by any other judge it is measured by that judge model.
The default weights (1 each) make latency, cost, quality and satisfaction weigh the same.
The TTFT SLO is judged on the client-side TTFT p90 (the first content the user sees, the
assistant and the network included) when a load generator summary of the same run is given,
else on the span attribute (the LLM's first output-bearing chunk as the assistant saw it).
When the assistant added more than --max-added-ttft-ms to a model's TTFT p99, the verdict
says first that the run measured the assistant, not the models.
Ratios keep the score scale-free: a model twice as slow as the best scores 0.5 on latency.
A component without data (no price, or fewer ratings of the chosen kind than --min-ratings)
counts as a neutral 0.5 and is named in the reasons. Scores closer than CLOSE_CALL are called
too close to decide.
"""

from __future__ import annotations

from typing import Any

from . import checks
from .config import Settings
from .quality import NAMES as EVALUATIONS

CLOSE_CALL = 0.05
NEUTRAL = 0.5
SIMULATED_CAVEAT = (
    "simulated ratings reflect only latency, errors, truncation and a content heuristic (the "
    "share of the question's words the answer mentions), not answer quality"
)


def satisfaction_basis(
    models: dict[str, dict[str, Any]], candidates: list[str], min_ratings: int
) -> dict[str, Any]:
    """Which ratings the satisfaction component uses: "real" when any candidate has
    `min_ratings` real ones, else "simulated" when any has that many simulated ones, else None."""
    kind, block, enough = None, None, []
    for option, name in (("real", "real"), ("simulated", "synthetic")):
        have = [m for m in candidates if models[m]["satisfaction"][name]["count"] >= min_ratings]
        if have:
            kind, block, enough = option, name, have
            break
    if kind == "real":
        text = (
            f"satisfaction from real users' ratings ({len(enough)} of {len(candidates)} ranked "
            f"model(s) have at least {min_ratings}); simulated ratings are not used"
        )
    elif kind == "simulated":
        text = (
            f"satisfaction from SIMULATED ratings: no ranked model has {min_ratings} real "
            f"ratings; {SIMULATED_CAVEAT}"
        )
    else:
        text = f"no ranked model has {min_ratings} ratings: satisfaction is neutral for all"
    return {"ratings": kind, "block": block, "models": enough, "text": text}


def _slo_checks(entry: dict[str, Any], settings: Settings) -> list[dict[str, Any]]:
    slo = settings.slo
    client_ttft = ((entry.get("client") or {}).get("ttft_ms") or {}).get("p90")
    ttft = (
        ("TTFT p90 (client)", client_ttft)
        if client_ttft is not None
        else ("TTFT p90", entry["ttft_ms"]["p90"])
    )
    checks = [
        (*ttft, slo.ttft_p90_ms, "ms"),
        ("E2E p90", entry["e2e_ms"]["p90"], slo.e2e_p90_ms, "ms"),
        ("error rate", entry["error_rate"], slo.error_rate, ""),
    ]
    return [
        {
            "name": name,
            "value": value,
            "limit": limit,
            "unit": unit,
            "met": value is not None and value <= limit,
        }
        for name, value, limit, unit in checks
    ]


def _fmt(value: float, unit: str) -> str:
    return f"{value:.0f} {unit}" if unit == "ms" else f"{value:.1%}"


def rank(models: dict[str, dict[str, Any]], settings: Settings) -> dict[str, Any]:
    """Add `slo` and `enough_data` to each model; return the ranking with its reasoning."""
    candidates, misses, insufficient = [], [], []
    for name, entry in models.items():
        checks = _slo_checks(entry, settings)
        entry["slo"] = checks
        entry["slo_met"] = all(check["met"] for check in checks)
        entry["enough_data"] = entry["successes"] >= settings.min_requests
        if not entry["enough_data"]:
            insufficient.append(
                {
                    "model": name,
                    "reason": f"only {entry['successes']} successful request(s); at least "
                    f"{settings.min_requests} are needed to judge p90 latency",
                }
            )
        elif not entry["slo_met"]:
            missed = [
                f"{c['name']} {_fmt(c['value'], c['unit'])} > {_fmt(c['limit'], c['unit'])}"
                if c["value"] is not None
                else f"{c['name']} unknown"
                for c in checks
                if not c["met"]
            ]
            misses.append({"model": name, "missed": missed})
        else:
            candidates.append(name)

    def best(values: dict[str, float | None], lower_is_better: bool) -> float | None:
        present = [v for v in values.values() if v is not None]
        if not present:
            return None
        return min(present) if lower_is_better else max(present)

    latency = {m: models[m]["e2e_ms"]["p90"] for m in candidates}
    cost = {m: models[m]["cost_per_1k_requests_usd"] for m in candidates}
    basis = satisfaction_basis(models, candidates, settings.min_ratings)
    block = basis["block"]
    satisfied = {
        m: models[m]["satisfaction"][block]["mean"] if m in basis["models"] else None
        for m in candidates
    }
    for m in basis["models"]:
        models[m]["satisfaction"]["used_in_ranking"] = basis["ratings"]
    judged = [m for m in candidates if models[m]["quality"]["enough_evaluations"]]
    quality = {
        m: models[m]["quality"]["overall"]["mean"] if m in judged else None for m in candidates
    }
    for m in judged:
        models[m]["quality"]["used_in_ranking"] = True
    best_latency, best_cost, best_satisfaction, best_quality = (
        best(latency, True),
        best(cost, True),
        best(satisfied, False),
        best(quality, False),
    )
    weights = settings.weights
    quality_in_score = bool(judged)
    ranked = []
    for model in candidates:
        reasons = []
        components = {}
        sat = models[model]["satisfaction"]
        real, simulated = sat["real"]["count"], sat["synthetic"]["count"]
        if basis["ratings"] == "real":
            few = f"{real} real rating(s), fewer than the {settings.min_ratings} needed" + (
                f" (its {simulated} simulated rating(s) are not used)" if simulated else ""
            )
        elif basis["ratings"] == "simulated":
            few = f"{simulated} simulated rating(s), fewer than the {settings.min_ratings} needed"
        else:
            few = (
                f"{real} real and {simulated} simulated rating(s), fewer than the "
                f"{settings.min_ratings} needed"
            )
        missing = {
            "latency": "no latency data",
            "cost": "no price for this model",
            "satisfaction": few,
            "quality": too_few_evaluations(models[model]["quality"], settings.min_evaluations),
        }
        for key, value, reference, lower in (
            ("latency", latency[model], best_latency, True),
            ("cost", cost[model], best_cost, True),
            ("satisfaction", satisfied[model], best_satisfaction, False),
            ("quality", quality[model], best_quality, False),
        ):
            if key == "quality" and not quality_in_score:
                components[key] = None
                if weights.get("quality", 0) > 0:
                    reasons.append(
                        f"quality: {missing[key]}; no ranked model has "
                        f"{settings.min_evaluations} results of every evaluation, so quality is "
                        "left out of the score"
                    )
                continue
            if value is None or reference is None:
                components[key] = NEUTRAL
                reasons.append(f"{key}: {missing[key]}, neutral {NEUTRAL}")
                continue
            if lower:
                component = 1.0 if value <= 0 else reference / value
            else:
                component = 1.0 if reference <= 0 else value / reference
            components[key] = component
        used = [k for k in components if components[k] is not None]
        total = sum(weights[k] for k in used)
        score = sum(weights[k] * components[k] for k in used) / total if total > 0 else NEUTRAL
        entry = models[model]
        q = entry["quality"]
        quality_text = (
            f", quality {quality[model]:.2f} from {q['overall']['count']} evaluation results "
            f"({_judged_by(q)}) (quality {components['quality']:.2f})"
            if quality[model] is not None
            else ""
        )
        reasons.insert(
            0,
            (
                f"E2E p90 {latency[model]:.0f} ms (latency {components['latency']:.2f}), "
                + (f"${cost[model]:.3f}/1k req" if cost[model] is not None else "cost unknown")
                + f" (cost {components['cost']:.2f}), "
                + (
                    f"{_basis_word(basis)}satisfaction {satisfied[model]:.2f} "
                    f"from {entry['satisfaction'][block]['count']} {_basis_word(basis)}ratings"
                    if satisfied[model] is not None
                    else f"satisfaction from {real} real and {simulated} simulated rating(s)"
                )
                + f" (satisfaction {components['satisfaction']:.2f})"
                + quality_text
            ),
        )
        ranked.append(
            {"model": model, "score": score, "components": components, "reasons": reasons}
        )
    ranked.sort(key=lambda item: (-item["score"], item["model"]))
    for position, item in enumerate(ranked, 1):
        item["rank"] = position
    dimensions = [
        k
        for k in ("latency", "cost", "quality", "satisfaction")
        if weights.get(k, 0) > 0 and (k != "quality" or quality_in_score)
    ]
    verdict = _with_added(
        _verdict(ranked, misses, insufficient, models, dimensions), models, settings
    )
    if ranked and weights.get("quality", 0) > 0:
        verdict += " " + _quality_sentence(models, [r["model"] for r in ranked], settings)
    if ranked and weights.get("satisfaction", 0) > 0 and basis["ratings"] == "simulated":
        verdict += (
            f" Satisfaction in this ranking is simulated (no model has {settings.min_ratings} "
            f"real ratings): {SIMULATED_CAVEAT}."
        )
    return {
        "method": __doc__.strip(),
        "weights": weights,
        "quality_basis": {
            "in_score": quality_in_score,
            "models": judged,
            "min_evaluations": settings.min_evaluations,
            "simulated": any(models[m]["quality"]["simulated"] for m in judged),
        },
        "satisfaction_basis": {k: v for k, v in basis.items() if k != "block"},
        "ranked": ranked,
        "slo_misses": misses,
        "insufficient_data": insufficient,
        "verdict": verdict,
    }


def _basis_word(basis: dict[str, Any]) -> str:
    return "simulated " if basis["ratings"] == "simulated" else "real " if basis["ratings"] else ""


def _with_added(verdict: str, models: dict, settings: Settings) -> str:
    message = checks.added_overview(models, settings.max_added_ttft_ms)["message"]
    return f"{message} As measured: {verdict}" if message else verdict


def too_few_evaluations(block: dict[str, Any], minimum: int) -> str:
    counts = ", ".join(f"{n} {block['evaluations'][n]['count']}" for n in EVALUATIONS)
    return f"too few evaluations to judge quality ({counts}; at least {minimum} of each needed)"


def _judged_by(block: dict[str, Any]) -> str:
    labels = [j["label"] for j in block["judges"]]
    text = "judged by " + " and ".join(labels)
    return text + (": SIMULATED" if block["simulated"] else "")


def _quality_sentence(models: dict, ranked: list[str], settings: Settings) -> str:
    """What the quality figures of the ranked models are: simulated, measured, too few."""
    parts = []
    simulated = [m for m in ranked if models[m]["quality"]["simulated"]]
    measured = [
        m
        for m in ranked
        if models[m]["quality"]["judges"] and not models[m]["quality"]["simulated"]
    ]
    few = [m for m in ranked if not models[m]["quality"]["enough_evaluations"]]
    if not any(models[m]["quality"]["overall"]["count"] for m in ranked):
        return "No evaluations of the ranked models: quality is left out of the score."
    if simulated:
        parts.append(
            f"Quality of {', '.join(simulated)} is SIMULATED: judged by the mock judge, which "
            "detects the mock LLM's configured quality traits (not measured answer quality)."
        )
    for model in measured:
        judges = ", ".join(j["label"] for j in models[model]["quality"]["judges"])
        parts.append(f"Quality of {model} is measured by the judge model {judges}.")
    if few:
        parts.append(
            f"Too few evaluations to judge quality for {', '.join(few)} (fewer than "
            f"{settings.min_evaluations} results of an evaluation)."
        )
    return " ".join(parts)


def _verdict(
    ranked: list, misses: list, insufficient: list, models: dict, dimensions: list[str]
) -> str:
    if not ranked:
        if insufficient and not misses:
            return "Too few data to decide: no model has enough successful requests."
        if misses and not insufficient:
            return "No model meets the SLOs; see the misses below."
        return "No model both meets the SLOs and has enough data to decide."
    top = ranked[0]
    if len(ranked) == 1:
        others = len(models) - 1
        tail = f" ({others} other model(s) missed the SLOs or had too few data)" if others else ""
        return f"{top['model']} is the only model that meets the SLOs with enough data{tail}."
    second = ranked[1]
    if top["score"] - second["score"] < CLOSE_CALL:
        return (
            f"Too close to call between {top['model']} ({top['score']:.2f}) and "
            f"{second['model']} ({second['score']:.2f}): the scores differ by less than "
            f"{CLOSE_CALL}; collect more data or adjust the weights."
        )
    if len(dimensions) > 1:
        on = " on " + ", ".join(dimensions[:-1]) + f" and {dimensions[-1]} together"
    else:
        on = f" on {dimensions[0]}" if dimensions else ""
    return (
        f"Best fit{on}: {top['model']} (score {top['score']:.2f}, next {second['model']} "
        f"{second['score']:.2f})."
    )
