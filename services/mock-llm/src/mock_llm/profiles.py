"""Per-model behaviour profiles, loaded and validated from a YAML file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType

import yaml

from mock_llm.faults import QUALITY_FAULTS, FaultConfigError, validate_rates


class ProfileError(ValueError):
    """A profiles file that does not validate; the message names the field."""


# When the role chunk ({"role": "assistant", "content": ""}) goes out: in the same write as the
# first content chunk, after the TTFT, as OpenAI and vLLM do; or at once, before the TTFT, as
# some proxies and servers do (a client timing the first SSE event then reads a near-zero TTFT).
ROLE_CHUNK_MODES = ("with_first_token", "early")
# Per-model quality traits: the rate (0..1) of each answer defect, drawn per request (see
# generation.draw_defects and docs/evaluations.md). The same names as the quality fault kinds.
QUALITY_TRAITS = QUALITY_FAULTS
# Per-model tool-calling traits (tools.py): rates (0..1) of a wrong tool, arguments that are not
# valid JSON, and one extra tool call before the grounded answer; drawn per request.
TOOL_TRAITS = ("wrong_tool", "malformed_arguments", "extra_step")


def _no_defects() -> Mapping[str, float]:
    return MappingProxyType(dict.fromkeys(QUALITY_TRAITS, 0.0))


def _no_tool_traits() -> Mapping[str, float]:
    return MappingProxyType(dict.fromkeys(TOOL_TRAITS, 0.0))


@dataclass(frozen=True)
class ModelProfile:
    name: str
    ttft_ms: float = 300.0
    ttft_jitter_ms: float = 0.0
    prefill_ms_per_1k_prompt_tokens: float = 0.0
    tokens_per_s: float = 60.0
    tps_jitter: float = 0.0
    itl_jitter: float = 0.0
    output_tokens_min: int = 20
    output_tokens_mean: int = 120
    output_tokens_max: int = 400
    max_output_tokens: int = 16384
    context_window: int = 128000
    max_concurrency: int = 500
    queue_limit: int = 500
    rpm: int = 0
    tpm: int = 0
    quality: Mapping[str, float] = field(default_factory=_no_defects)
    tools: Mapping[str, float] = field(default_factory=_no_tool_traits)
    reasoning: bool = False
    role_chunk: str = "with_first_token"
    created: int = 1700000000
    owned_by: str = "system"
    faults: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def itl_s(self) -> float:
        return 1.0 / self.tokens_per_s

    def public(self) -> dict:
        """The profile as JSON (for /admin/profiles and the /v1/models extension field)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["faults"] = dict(self.faults)
        data["quality"] = dict(self.quality)
        data["tools"] = dict(self.tools)
        return data


@dataclass(frozen=True)
class FaultSettings:
    """How each delivery fault behaves once chosen."""

    slow_first_token_ms: float = 3000.0
    slow_stream_factor: float = 5.0
    after_chunks: int = 5
    retry_after_ms: int = 1000


@dataclass(frozen=True)
class Profiles:
    models: Mapping[str, ModelProfile]
    fault_settings: FaultSettings
    source: str


_NUMBER_RULES: dict[str, tuple[type, float, float]] = {
    "ttft_ms": (float, 0, 600_000),
    "ttft_jitter_ms": (float, 0, 600_000),
    "prefill_ms_per_1k_prompt_tokens": (float, 0, 600_000),
    "tokens_per_s": (float, 0.01, 100_000),
    "tps_jitter": (float, 0, 0.9),
    "itl_jitter": (float, 0, 0.9),
    "output_tokens_min": (int, 1, 1_000_000),
    "output_tokens_mean": (int, 1, 1_000_000),
    "output_tokens_max": (int, 1, 1_000_000),
    "max_output_tokens": (int, 1, 10_000_000),
    "context_window": (int, 16, 100_000_000),
    "max_concurrency": (int, 1, 1_000_000),
    "queue_limit": (int, 0, 1_000_000),
    "rpm": (int, 0, 1_000_000_000),
    "tpm": (int, 0, 1_000_000_000_000),
    "created": (int, 0, 2**40),
    "slow_first_token_ms": (float, 0, 600_000),
    "slow_stream_factor": (float, 1, 1000),
    "after_chunks": (int, 0, 1_000_000),
    "retry_after_ms": (int, 0, 3_600_000),
}


def _number(value: object, key: str, where: str) -> float | int:
    kind, low, high = _NUMBER_RULES[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProfileError(f"{where}.{key} must be a number")
    if kind is int and value != int(value):
        raise ProfileError(f"{where}.{key} must be a whole number")
    if not low <= value <= high:
        raise ProfileError(f"{where}.{key} must be between {low} and {high}, got {value}")
    return kind(value)


def _quality(
    value: object, where: str, key: str = "quality", traits: tuple[str, ...] = QUALITY_TRAITS
) -> Mapping[str, float]:
    """{off_topic, unsupported_claim, unsafe, non_answer} rates in [0, 1]; missing ones are 0.
    (Also the `tools` traits, with key="tools".)"""
    if not isinstance(value, Mapping):
        raise ProfileError(f"{where}.{key} must be a mapping of {', '.join(traits)} -> rate (0..1)")
    unknown = set(map(str, value)) - set(traits)
    if unknown:
        raise ProfileError(
            f"{where}.{key}: unknown trait(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(traits)}"
        )
    rates = dict.fromkeys(traits, 0.0)
    for trait, rate in value.items():
        if isinstance(rate, bool) or not isinstance(rate, (int, float)):
            raise ProfileError(f"{where}.{key}.{trait} must be a number between 0 and 1")
        if not 0 <= rate <= 1:
            raise ProfileError(f"{where}.{key}.{trait} must be between 0 and 1, got {rate}")
        rates[str(trait)] = float(rate)
    return MappingProxyType(rates)


def _model(name: str, raw: Mapping, defaults: Mapping) -> ModelProfile:
    where = f"models.{name}"
    merged = {**defaults, **raw}
    if isinstance(defaults.get("quality"), Mapping) and isinstance(raw.get("quality"), Mapping):
        merged["quality"] = {**defaults["quality"], **raw["quality"]}  # trait by trait
    if isinstance(defaults.get("tools"), Mapping) and isinstance(raw.get("tools"), Mapping):
        merged["tools"] = {**defaults["tools"], **raw["tools"]}
    allowed = {f.name for f in fields(ModelProfile)} - {"name"} | {"output_tokens"}
    unknown = set(merged) - allowed
    if unknown:
        raise ProfileError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    values: dict = {"name": name}
    for key, value in merged.items():
        if key == "output_tokens":
            if not isinstance(value, Mapping) or set(value) - {"min", "mean", "max"}:
                raise ProfileError(f"{where}.output_tokens must be {{min, mean, max}}")
            for part, part_value in value.items():
                part_key = f"output_tokens_{part}"
                values[part_key] = _number(part_value, part_key, where)
        elif key == "faults":
            try:
                values["faults"] = MappingProxyType(validate_rates(value, f"{where}.faults"))
            except FaultConfigError as exc:
                raise ProfileError(str(exc)) from None
        elif key == "quality":
            values["quality"] = _quality(value, where)
        elif key == "tools":
            values["tools"] = _quality(value, where, "tools", TOOL_TRAITS)
        elif key == "reasoning":
            if not isinstance(value, bool):
                raise ProfileError(f"{where}.reasoning must be true or false")
            values[key] = value
        elif key == "role_chunk":
            if value not in ROLE_CHUNK_MODES:
                raise ProfileError(
                    f"{where}.role_chunk must be one of {', '.join(ROLE_CHUNK_MODES)}, "
                    f"got {value!r}"
                )
            values[key] = value
        elif key == "owned_by":
            values[key] = str(value)
        else:
            values[key] = _number(value, key, where)
    profile = ModelProfile(**values)
    if not profile.output_tokens_min <= profile.output_tokens_mean <= profile.output_tokens_max:
        raise ProfileError(f"{where}.output_tokens needs min <= mean <= max")
    return profile


def parse_profiles(document: object, source: str) -> Profiles:
    if not isinstance(document, Mapping):
        raise ProfileError(f"{source}: the top level must be a mapping")
    unknown = set(document) - {"defaults", "models", "fault_settings"}
    if unknown:
        raise ProfileError(f"{source}: unknown top-level key(s) {', '.join(sorted(unknown))}")
    defaults = document.get("defaults") or {}
    models_raw = document.get("models")
    if not isinstance(defaults, Mapping):
        raise ProfileError(f"{source}: defaults must be a mapping")
    if not isinstance(models_raw, Mapping) or not models_raw:
        raise ProfileError(f"{source}: models must be a non-empty mapping of name -> profile")
    models = {}
    for name, raw in models_raw.items():
        if not isinstance(name, str) or not name or ":" in name:
            raise ProfileError(f"{source}: bad model name {name!r}")
        models[name] = _model(name, raw or {}, defaults)
    settings_raw = document.get("fault_settings") or {}
    if not isinstance(settings_raw, Mapping):
        raise ProfileError(f"{source}: fault_settings must be a mapping")
    allowed = {f.name for f in fields(FaultSettings)}
    unknown = set(settings_raw) - allowed
    if unknown:
        raise ProfileError(f"fault_settings: unknown key(s) {', '.join(sorted(unknown))}")
    fault_settings = FaultSettings(
        **{key: _number(value, key, "fault_settings") for key, value in settings_raw.items()}
    )
    return Profiles(MappingProxyType(models), fault_settings, source)


def load_profiles(path: Path) -> Profiles:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ProfileError(f"cannot read profiles {path}: {exc}") from None
    return parse_profiles(document, str(path))
