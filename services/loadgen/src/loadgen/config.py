"""Configuration: every LOADGEN_* variable, parsed and validated once into a frozen dataclass."""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from loadgen.shapes import Stage, default_stages, parse_duration, parse_stages

TARGETS = ("assistant", "openai")
ROLES = ("standalone", "master", "worker")
SHAPES = ("constant", "staged")
DEFAULT_HOSTS = {"assistant": "http://localhost:8080", "openai": "http://localhost:8000/v1"}
DEFAULT_WEIGHTS = "gpt-4o=3,gpt-4o-mini=5,o3-mini=2"
# Share of answers rated by the simulated users when the assistant's backend is the mock LLM and
# LOADGEN_FEEDBACK_RATE is not set; against any other backend the default is 0 (no invented
# satisfaction about real models: see feedback.py).
MOCK_FEEDBACK_RATE = "0.3"
MOCK_BACKEND = "mock"
_BACKEND = re.compile(r"^\S{1,512}$")
_RUN_ID = re.compile(r"^[A-Za-z0-9_.-]{1,48}$")
_MODEL = re.compile(r"^[A-Za-z0-9_.:/-]{1,64}$")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


class ConfigError(ValueError):
    """A bad LOADGEN_* value; the message names the variable."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.variable = name


@dataclass(frozen=True)
class Config:
    target: str
    host: str
    api_key: str = field(repr=False)
    model_weights: tuple[tuple[str, float], ...]
    seed: int
    users: int
    spawn_rate: float
    run_time_s: int | None
    requests_per_user: int
    turns: tuple[int, int]
    wait_s: tuple[float, float]
    feedback_rate: float  # the rate in effect (see feedback_policy)
    shape: str
    stages: tuple[Stage, ...]
    slo_ttft_ms: float
    slo_tpot_ms: float
    slo_e2e_ms: float
    max_error_rate: float | None
    min_goodput_ratio: float | None
    max_added_ttft_ms: float
    report_dir: Path
    run_id: str
    headless: bool
    autostart: bool
    role: str
    master_host: str
    master_port: int
    expect_workers: int
    web_host: str
    web_port: int
    request_timeout_s: float
    stop_timeout_s: int
    log_level: str
    llm_backend: str = MOCK_BACKEND  # "mock" or a description of the assistant's real backend
    feedback_rate_explicit: bool = False  # LOADGEN_FEEDBACK_RATE was set

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.model_weights)

    @property
    def weights(self) -> tuple[float, ...]:
        return tuple(weight for _, weight in self.model_weights)

    @property
    def chat_path(self) -> str:
        return "/api/chat" if self.target == "assistant" else "/chat/completions"

    @property
    def mock_backend(self) -> bool:
        return self.llm_backend == MOCK_BACKEND

    @property
    def simulated_ratings(self) -> bool:
        """Whether simulated users rate answers in this run."""
        return self.target == "assistant" and self.feedback_rate > 0

    def feedback_policy(self) -> dict:
        """Whether this run sends simulated ratings, at what rate, and why (for the report)."""
        backend = "the mock LLM" if self.mock_backend else f"{self.llm_backend} (not the mock LLM)"
        if self.target != "assistant":
            reason = "direct mode (LOADGEN_TARGET=openai) has no feedback endpoint: no ratings"
        elif self.feedback_rate_explicit:
            reason = (
                f"LOADGEN_FEEDBACK_RATE={self.feedback_rate:g} set explicitly; backend {backend}"
            )
        elif self.mock_backend:
            reason = (
                f"default rate {MOCK_FEEDBACK_RATE} with the mock LLM "
                "(LOADGEN_LLM_BACKEND unset or mock)"
            )
        else:
            reason = (
                f"the backend is {backend} and LOADGEN_FEEDBACK_RATE is not set: no simulated "
                "ratings (they would rate a real model by latency and a word-overlap heuristic)"
            )
        return {
            "simulated": self.simulated_ratings,
            "rate": self.feedback_rate if self.target == "assistant" else 0.0,
            "rate_explicit": self.feedback_rate_explicit,
            "llm_backend": self.llm_backend,
            "mock_backend": self.mock_backend,
            "reason": reason,
            "rating": "experience only: errors, TTFT/E2E vs the SLOs, truncation and the share of "
            "the question's content words the answer mentions (loadgen/feedback.py); no "
            "per-model term",
        }

    def public(self) -> dict:
        """The settings worth recording in a report (no secrets)."""
        return {
            "target": self.target,
            "host": self.host,
            "model_weights": dict(self.model_weights),
            "seed": self.seed,
            "users": self.users,
            "spawn_rate": self.spawn_rate,
            "run_time_s": self.run_time_s,
            "requests_per_user": self.requests_per_user,
            "turns": list(self.turns),
            "wait_s": list(self.wait_s),
            "feedback_rate": self.feedback_rate,
            "feedback_rate_explicit": self.feedback_rate_explicit,
            "llm_backend": self.llm_backend,
            "shape": self.shape,
            "stages": [vars(stage) for stage in self.stages] if self.shape == "staged" else [],
            "slo_ms": {"ttft": self.slo_ttft_ms, "tpot": self.slo_tpot_ms, "e2e": self.slo_e2e_ms},
            "thresholds": {
                "max_error_rate": self.max_error_rate,
                "min_goodput_ratio": self.min_goodput_ratio,
                "max_added_ttft_ms": self.max_added_ttft_ms,
            },
            "role": self.role,
            "headless": self.headless,
        }


def new_run_id() -> str:
    return time.strftime("lg-%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


def parse_weights(text: str) -> tuple[tuple[str, float], ...]:
    """`gpt-4o=3,gpt-4o-mini=5` (or `gpt-4o:3`) -> (("gpt-4o", 3.0), ("gpt-4o-mini", 5.0))."""
    pairs: dict[str, float] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, sep, value = item.rpartition("=") if "=" in item else item.rpartition(":")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"{item!r} must be model=weight")
        if not _MODEL.match(name):
            raise ValueError(f"{name!r} is not a model name")
        try:
            weight = float(value)
        except ValueError:
            raise ValueError(f"weight {value!r} of {name} is not a number") from None
        if weight < 0 or weight != weight or weight == float("inf"):
            raise ValueError(f"weight of {name} must be a finite number >= 0")
        if name in pairs:
            raise ValueError(f"{name} is listed twice")
        pairs[name] = weight
    if not pairs or sum(pairs.values()) <= 0:
        raise ValueError("need at least one model with a positive weight")
    return tuple(pairs.items())


def parse_backend(text: str) -> str:
    """`mock` (any case) or a description of a real backend; URLs lose their user info, query
    and fragment so that no credential reaches a report."""
    if text.lower() == MOCK_BACKEND:
        return MOCK_BACKEND
    if not _BACKEND.match(text):
        raise ValueError("must be `mock` or a URL or name without spaces")
    if "://" in text:
        parts = urlsplit(text)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}".rstrip("/")
    return text


def _range(text: str, cast) -> tuple:
    low, sep, high = text.partition("-")
    low_value = cast(low.strip())
    high_value = cast(high.strip()) if sep else low_value
    if low_value < 0 or high_value < low_value:
        raise ValueError(f"{text!r} must be min-max with 0 <= min <= max")
    return low_value, high_value


class _Reader:
    """Reads one variable at a time and turns any parse failure into a ConfigError naming it."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def raw(self, name: str, default: str) -> str:
        value = self.env.get(name)
        return default if value is None or value.strip() == "" else value.strip()

    def parse(self, name: str, default: str, parser, what: str):
        text = self.raw(name, default)
        try:
            return parser(text)
        except (ValueError, TypeError) as exc:
            raise ConfigError(name, f"{text!r} is not {what} ({exc})") from None

    def number(self, name, default, *, cast=float, low=None, high=None, what="a number"):
        value = self.parse(name, default, cast, what)
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f">= {low}"
            raise ConfigError(name, f"{value} must be {bounds}")
        return value

    def optional_fraction(self, name: str) -> float | None:
        if self.raw(name, "") == "":
            return None
        return self.number(name, "", low=0.0, high=1.0, what="a fraction between 0 and 1")

    def flag(self, name: str, default: bool) -> bool:
        text = self.raw(name, "true" if default else "false").lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ConfigError(name, f"{text!r} is not true/false")

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.raw(name, default).lower()
        if value not in choices:
            raise ConfigError(name, f"{value!r} is not one of {', '.join(choices)}")
        return value


def load_config(env: Mapping[str, str] | None = None) -> Config:
    """Parse LOADGEN_* from `env` (default: the process environment)."""
    read = _Reader(os.environ if env is None else env)
    target = read.choice("LOADGEN_TARGET", "assistant", TARGETS)
    host = read.raw("LOADGEN_HOST", DEFAULT_HOSTS[target]).rstrip("/")
    if not re.match(r"^https?://[^/\s]+", host):
        raise ConfigError("LOADGEN_HOST", f"{host!r} is not an http(s):// URL")
    users = read.number("LOADGEN_USERS", "10", cast=int, low=1, what="an integer")
    spawn_rate = read.number("LOADGEN_SPAWN_RATE", "2", low=0.01)
    run_time_text = read.raw("LOADGEN_RUN_TIME", "")
    run_time_s = (
        read.parse("LOADGEN_RUN_TIME", "", parse_duration, "a duration like 90s, 5m or 1h30m")
        if run_time_text
        else None
    )
    if run_time_s == 0:
        raise ConfigError("LOADGEN_RUN_TIME", "must be longer than 0s (or empty for no limit)")
    shape = read.choice("LOADGEN_SHAPE", "constant", SHAPES)
    stages_text = read.raw("LOADGEN_STAGES", "")
    if stages_text:
        stages = read.parse(
            "LOADGEN_STAGES",
            "",
            lambda text: parse_stages(text, spawn_rate),
            "a list like 30s:10,60s:10,15s:20:10 (duration:users[:spawn_rate])",
        )
    else:
        stages = default_stages(users, spawn_rate)
    requests_per_user = read.number(
        "LOADGEN_REQUESTS_PER_USER", "10", cast=int, low=0, what="an integer (0 = no cap)"
    )
    headless = read.flag("LOADGEN_HEADLESS", False)
    role = read.choice("LOADGEN_ROLE", "standalone", ROLES)
    if (
        headless
        and role != "worker"
        and shape == "constant"
        and requests_per_user == 0
        and run_time_s is None
    ):
        raise ConfigError(
            "LOADGEN_REQUESTS_PER_USER",
            "0 (no cap) with LOADGEN_HEADLESS=true needs LOADGEN_RUN_TIME, or the run never ends",
        )
    turns = read.parse(
        "LOADGEN_CONVERSATION_TURNS", "1-4", lambda text: _range(text, int), "a range like 1-4"
    )
    if turns[0] < 1:
        raise ConfigError("LOADGEN_CONVERSATION_TURNS", "a conversation needs at least 1 turn")
    llm_backend = read.parse(
        "LOADGEN_LLM_BACKEND", MOCK_BACKEND, parse_backend, "`mock` or the backend's URL"
    )
    feedback_rate_explicit = read.raw("LOADGEN_FEEDBACK_RATE", "") != ""
    feedback_default = MOCK_FEEDBACK_RATE if llm_backend == MOCK_BACKEND else "0"
    run_id = read.raw("LOADGEN_RUN_ID", "") or new_run_id()
    if not _RUN_ID.match(run_id):
        raise ConfigError("LOADGEN_RUN_ID", f"{run_id!r} must match [A-Za-z0-9_.-]{{1,48}}")
    return Config(
        target=target,
        host=host,
        api_key=read.raw("LOADGEN_API_KEY", ""),
        model_weights=read.parse(
            "LOADGEN_MODEL_WEIGHTS",
            DEFAULT_WEIGHTS,
            parse_weights,
            "a list like gpt-4o=3,o3-mini=2",
        ),
        seed=read.number("LOADGEN_SEED", "42", cast=int, what="an integer"),
        users=users,
        spawn_rate=spawn_rate,
        run_time_s=run_time_s,
        requests_per_user=requests_per_user,
        turns=turns,
        wait_s=read.parse(
            "LOADGEN_WAIT_SECONDS", "0.5-3", lambda text: _range(text, float), "a range like 0.5-3"
        ),
        feedback_rate=read.number("LOADGEN_FEEDBACK_RATE", feedback_default, low=0.0, high=1.0),
        shape=shape,
        stages=stages,
        slo_ttft_ms=read.number("LOADGEN_SLO_TTFT_MS", "2000", low=0.0),
        slo_tpot_ms=read.number("LOADGEN_SLO_TPOT_MS", "100", low=0.0),
        slo_e2e_ms=read.number("LOADGEN_SLO_E2E_MS", "30000", low=0.0),
        max_error_rate=read.optional_fraction("LOADGEN_MAX_ERROR_RATE"),
        min_goodput_ratio=read.optional_fraction("LOADGEN_MIN_GOODPUT_RATIO"),
        max_added_ttft_ms=read.number("LOADGEN_MAX_ADDED_TTFT_MS", "50", low=0.0),
        report_dir=Path(read.raw("LOADGEN_REPORT_DIR", "reports/loadgen")),
        run_id=run_id,
        headless=headless,
        autostart=read.flag("LOADGEN_AUTOSTART", True),
        role=role,
        master_host=read.raw("LOADGEN_MASTER_HOST", "loadgen"),
        master_port=read.number("LOADGEN_MASTER_PORT", "5557", cast=int, low=1, high=65535),
        expect_workers=read.number("LOADGEN_EXPECT_WORKERS", "1", cast=int, low=1),
        web_host=read.raw("LOADGEN_WEB_HOST", "0.0.0.0"),
        web_port=read.number("LOADGEN_WEB_PORT", "8089", cast=int, low=1, high=65535),
        request_timeout_s=read.number("LOADGEN_REQUEST_TIMEOUT_S", "60", low=0.1),
        stop_timeout_s=read.number("LOADGEN_STOP_TIMEOUT_S", "10", cast=int, low=0),
        log_level=read.choice(
            "LOADGEN_LOG_LEVEL", "info", ("debug", "info", "warning", "error")
        ).upper(),
        llm_backend=llm_backend,
        feedback_rate_explicit=feedback_rate_explicit,
    )


# Settings a master does not pass to its workers: secrets and each process's own wiring.
NOT_FORWARDED = frozenset(
    {
        "LOADGEN_API_KEY",
        "LOADGEN_ROLE",
        "LOADGEN_MASTER_HOST",
        "LOADGEN_MASTER_PORT",
        "LOADGEN_EXPECT_WORKERS",
        "LOADGEN_WEB_HOST",
        "LOADGEN_WEB_PORT",
        "LOADGEN_REPORT_DIR",
        "LOADGEN_LOG_LEVEL",
    }
)


def forwarded_settings(env: Mapping[str, str]) -> dict[str, str]:
    """The master's LOADGEN_* settings that its workers adopt (so they need only its address)."""
    return {k: v for k, v in env.items() if k.startswith("LOADGEN_") and k not in NOT_FORWARDED}


def worker_config(own_env: Mapping[str, str], master_settings: Mapping[str, str]) -> Config:
    """A worker's configuration: the master's traffic settings, the worker's own wiring and key."""
    env = {k: v for k, v in own_env.items() if not k.startswith("LOADGEN_") or k in NOT_FORWARDED}
    env.update(forwarded_settings(master_settings))
    env["LOADGEN_ROLE"] = "worker"
    return load_config(env)
