"""Fault kinds, their runtime rates, and the seeded choice of a fault for one request."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

# Answered before any body is sent (an HTTP error status).
STATUS_FAULTS = ("429", "quota", "500", "503", "401")
# Change how a successful answer is delivered.
DELIVERY_FAULTS = (
    "slow_first_token",
    "slow_stream",
    "midstream_error",
    "disconnect",
    "truncate",
    "stall",
)
# Shape the answer's text (a defect the mock judge detects); the answer is delivered normally.
# Last in FAULT_KINDS, so adding them leaves the seeded draw of the other kinds unchanged.
QUALITY_FAULTS = ("off_topic", "unsupported_claim", "unsafe", "non_answer")
# Shape a tool-calling answer (tools.py); no effect on a request without `tools`. Last again, so
# the seeded draw of every older kind is unchanged.
TOOL_FAULTS = ("malformed_tool_arguments", "tool_call_loop")
FAULT_KINDS = STATUS_FAULTS + DELIVERY_FAULTS + QUALITY_FAULTS + TOOL_FAULTS
FAULT_HEADER = "x-mock-fault"
MODEL_FAULT_SUFFIX = ":fault-"


class FaultConfigError(ValueError):
    """A fault-rate document that does not validate."""


def validate_rates(rates: object, where: str) -> dict[str, float]:
    """Check a {kind: rate} mapping: known kinds, rates in [0, 1], sum at most 1."""
    if not isinstance(rates, Mapping):
        raise FaultConfigError(f"{where} must be an object of fault kind -> rate")
    clean: dict[str, float] = {}
    for kind, rate in rates.items():
        kind = str(kind)
        if kind not in FAULT_KINDS:
            raise FaultConfigError(
                f"{where}: unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}"
            )
        if isinstance(rate, bool) or not isinstance(rate, (int, float)):
            raise FaultConfigError(f"{where}.{kind} must be a number between 0 and 1")
        if not 0.0 <= float(rate) <= 1.0:
            raise FaultConfigError(f"{where}.{kind} must be between 0 and 1, got {rate}")
        clean[kind] = float(rate)
    if sum(clean.values()) > 1.0 + 1e-9:
        raise FaultConfigError(f"{where}: rates add up to more than 1")
    return clean


@dataclass(frozen=True)
class RuntimeFaults:
    """Rates set through the admin API; they override the profiles' rates kind by kind."""

    rates: Mapping[str, float]
    models: Mapping[str, Mapping[str, float]]

    @classmethod
    def empty(cls) -> RuntimeFaults:
        return cls(rates={}, models={})

    @classmethod
    def parse(cls, body: object, known_models: set[str]) -> RuntimeFaults:
        if not isinstance(body, Mapping):
            raise FaultConfigError('body must be a JSON object like {"rates": {"429": 0.1}}')
        unknown = set(body) - {"rates", "models"}
        if unknown:
            raise FaultConfigError(f"unknown field(s): {', '.join(sorted(map(str, unknown)))}")
        rates = validate_rates(body.get("rates", {}), "rates")
        models_raw = body.get("models", {})
        if not isinstance(models_raw, Mapping):
            raise FaultConfigError("models must be an object of model -> {kind: rate}")
        models: dict[str, dict[str, float]] = {}
        for model, model_rates in models_raw.items():
            if model not in known_models:
                raise FaultConfigError(f"models: unknown model {model!r}")
            models[model] = validate_rates(model_rates, f"models.{model}")
        return cls(rates=rates, models=models)

    def to_json(self) -> dict:
        return {"rates": dict(self.rates), "models": {m: dict(r) for m, r in self.models.items()}}


class FaultState:
    """The live admin overrides, swapped atomically."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runtime = RuntimeFaults.empty()

    @property
    def runtime(self) -> RuntimeFaults:
        with self._lock:
            return self._runtime

    def replace(self, runtime: RuntimeFaults) -> None:
        with self._lock:
            self._runtime = runtime

    def effective_rates(self, model: str, profile_rates: Mapping[str, float]) -> dict[str, float]:
        """Profile rates, overridden per kind by admin global rates, then admin per-model rates."""
        runtime = self.runtime
        rates = {**profile_rates, **runtime.rates, **runtime.models.get(model, {})}
        rates = {kind: rate for kind, rate in rates.items() if rate > 0}
        total = sum(rates.values())
        if total > 1.0:  # overrides from different layers can add up past 1: scale down
            rates = {kind: rate / total for kind, rate in rates.items()}
        return rates


def draw_fault(rates: Mapping[str, float], uniform: float) -> str | None:
    """Pick a fault kind for a draw in [0, 1) by walking the cumulative rates in a fixed order."""
    cumulative = 0.0
    for kind in FAULT_KINDS:
        cumulative += rates.get(kind, 0.0)
        if uniform < cumulative:
            return kind
    return None
