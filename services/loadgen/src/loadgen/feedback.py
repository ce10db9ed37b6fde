"""How a simulated user rates an answer: experience (speed, errors, truncation) + model quality."""

from __future__ import annotations

# How much better or worse than average users find each model's answers (in score points).
# Same order as the mock's `quality` trait (o3-mini > gpt-4o > gpt-4.1-mini > gpt-4o-mini).
MODEL_QUALITY = {
    "o3-mini": 0.5,
    "gpt-4o": 0.35,
    "gpt-4.1-mini": 0.1,
    "gpt-4o-mini": -0.3,
}
BASE_SCORE = 4.0
ERROR_SCORE = 1.5


def feedback_score(
    *,
    model: str,
    error_kind: str | None,
    ttft_ms: float | None,
    slo_ttft_ms: float,
    finish_reason: str | None,
    noise: float,
) -> int:
    """A 1-5 score. `noise` is the user's seeded mood (about N(0, 0.5))."""
    if error_kind is not None:
        score = ERROR_SCORE + noise
    else:
        score = BASE_SCORE + MODEL_QUALITY.get(model, 0.0) + noise
        if slo_ttft_ms > 0 and ttft_ms is not None and ttft_ms > slo_ttft_ms:
            score -= 2.0 if ttft_ms > 2 * slo_ttft_ms else 1.0
        if finish_reason == "length":
            score -= 1.0
    return max(1, min(5, round(score)))
