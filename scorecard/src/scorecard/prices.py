"""The price table (USD per 1M input/output tokens), shipped as data and overridable."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import EXIT_USAGE, ScorecardError


@dataclass(frozen=True)
class Price:
    input_per_mtok: float
    output_per_mtok: float


@dataclass(frozen=True)
class PriceTable:
    models: dict[str, Price]
    as_of: str
    source: str

    def lookup(self, model: str) -> Price | None:
        """Exact name, else the longest known name the model starts with (dated snapshots)."""
        if model in self.models:
            return self.models[model]
        prefixes = [name for name in self.models if model.startswith(name + "-")]
        return self.models[max(prefixes, key=len)] if prefixes else None


def _parse(data: Any, origin: str) -> tuple[dict[str, Price], str, str]:
    if not isinstance(data, dict):
        raise ScorecardError(f"{origin}: a price table must be a JSON object", EXIT_USAGE)
    table = data.get("models", data)
    if not isinstance(table, dict):
        raise ScorecardError(f"{origin}: 'models' must map model -> {{input, output}}", EXIT_USAGE)
    models: dict[str, Price] = {}
    for model, entry in table.items():
        if model in ("currency", "unit", "as_of", "source"):
            continue
        try:
            price = Price(float(entry["input"]), float(entry["output"]))
        except (TypeError, KeyError, ValueError) as exc:
            raise ScorecardError(
                f"{origin}: price of {model!r} needs numeric 'input' and 'output' "
                f"(USD per 1M tokens): {exc}",
                EXIT_USAGE,
            ) from exc
        values = (price.input_per_mtok, price.output_per_mtok)
        if any(value < 0 or not math.isfinite(value) for value in values):
            raise ScorecardError(f"{origin}: price of {model!r} must be >= 0", EXIT_USAGE)
        models[model] = price
    return models, str(data.get("as_of", "")), str(data.get("source", ""))


def load_prices(override: Path | None = None) -> PriceTable:
    """The shipped table, with models from `override` (same JSON shape) replacing or adding."""
    shipped = json.loads(resources.files("scorecard").joinpath("data/prices.json").read_text())
    models, as_of, source = _parse(shipped, "shipped price table")
    if override is not None:
        try:
            data = json.loads(Path(override).read_text())
        except OSError as exc:
            raise ScorecardError(f"cannot read price file {override}: {exc}", EXIT_USAGE) from exc
        except json.JSONDecodeError as exc:
            raise ScorecardError(
                f"price file {override} is not valid JSON: {exc}", EXIT_USAGE
            ) from exc
        extra, extra_as_of, extra_source = _parse(data, str(override))
        models = {**models, **extra}
        as_of = extra_as_of or as_of
        source = f"{source} + overrides from {override}" + (
            f" ({extra_source})" if extra_source else ""
        )
    return PriceTable(models=models, as_of=as_of, source=source)
