"""Rank models: SLO misses marked and put last; the rest ordered by a weighted score.

Score (0-1, higher is better) = sum(weight x component) / sum(weights), where, among the
models that meet the SLOs and have enough data:
- latency component = best E2E p90 / this model's E2E p90 (1.0 for the fastest),
- cost component = cheapest cost per 1k requests / this model's (1.0 for the cheapest),
- satisfaction component = this model's mean satisfaction / the best mean, from real users'
  ratings when at least one of these models has --min-ratings of them, else from the load
  generator's simulated ratings (synthetic_request=true), never a mix of both; a ranking on
  simulated ratings says so in its verdict: they reflect only latency, errors, truncation and
  a content heuristic, not answer quality.
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
    best_latency, best_cost, best_satisfaction = (
        best(latency, True),
        best(cost, True),
        best(satisfied, False),
    )
    weights = settings.weights
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
        }
        for key, value, reference, lower in (
            ("latency", latency[model], best_latency, True),
            ("cost", cost[model], best_cost, True),
            ("satisfaction", satisfied[model], best_satisfaction, False),
        ):
            if value is None or reference is None:
                components[key] = NEUTRAL
                reasons.append(f"{key}: {missing[key]}, neutral {NEUTRAL}")
                continue
            if lower:
                component = 1.0 if value <= 0 else reference / value
            else:
                component = 1.0 if reference <= 0 else value / reference
            components[key] = component
        total = sum(weights.values())
        score = sum(weights[k] * components[k] for k in components) / total
        entry = models[model]
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
            ),
        )
        ranked.append(
            {"model": model, "score": score, "components": components, "reasons": reasons}
        )
    ranked.sort(key=lambda item: (-item["score"], item["model"]))
    for position, item in enumerate(ranked, 1):
        item["rank"] = position
    verdict = _with_added(_verdict(ranked, misses, insufficient, models), models, settings)
    if ranked and weights.get("satisfaction", 0) > 0 and basis["ratings"] == "simulated":
        verdict += (
            f" Satisfaction in this ranking is simulated (no model has {settings.min_ratings} "
            f"real ratings): {SIMULATED_CAVEAT}."
        )
    return {
        "method": __doc__.strip(),
        "weights": weights,
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


def _verdict(ranked: list, misses: list, insufficient: list, models: dict) -> str:
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
    return (
        f"Best fit: {top['model']} (score {top['score']:.2f}, next {second['model']} "
        f"{second['score']:.2f})."
    )
