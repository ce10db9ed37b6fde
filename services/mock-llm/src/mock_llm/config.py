"""Settings from environment variables, parsed and validated once at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PROFILES = Path(__file__).with_name("profiles.yaml")


class ConfigError(ValueError):
    """A bad environment variable; the message names it."""


@dataclass(frozen=True)
class Settings:
    host: str = "0.0.0.0"
    port: int = 8000
    api_key: str = ""
    seed: int = 0
    profiles_path: Path = DEFAULT_PROFILES
    stall_s: float = 120.0
    max_body_bytes: int = 4 * 1024 * 1024
    admin_enabled: bool = True
    access_log: bool = False
    tcp_nodelay: bool = True
    request_log_size: int = 5000


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read every MOCK_LLM_* variable; raise ConfigError naming the first bad one."""
    env = os.environ if env is None else env
    profiles_raw = env.get("MOCK_LLM_PROFILES", "").strip()
    profiles_path = Path(profiles_raw) if profiles_raw else DEFAULT_PROFILES
    if not profiles_path.is_file():
        raise ConfigError(f"MOCK_LLM_PROFILES: no such file {str(profiles_path)!r}")
    host = env.get("MOCK_LLM_HOST", "").strip() or "0.0.0.0"
    return Settings(
        host=host,
        port=_int(env, "MOCK_LLM_PORT", 8000, 1, 65535),
        api_key=env.get("MOCK_LLM_API_KEY", "").strip(),
        seed=_int(env, "MOCK_LLM_SEED", 0, -(2**63), 2**63 - 1),
        profiles_path=profiles_path,
        stall_s=_float(env, "MOCK_LLM_STALL_S", 120.0, 0.0, 3600.0),
        max_body_bytes=_int(env, "MOCK_LLM_MAX_BODY_BYTES", 4 * 1024 * 1024, 1024, 1 << 30),
        admin_enabled=_bool(env, "MOCK_LLM_ADMIN", True),
        access_log=_bool(env, "MOCK_LLM_ACCESS_LOG", False),
        tcp_nodelay=_bool(env, "MOCK_LLM_TCP_NODELAY", True),
        request_log_size=_int(env, "MOCK_LLM_REQUEST_LOG_SIZE", 5000, 1, 10_000_000),
    )
