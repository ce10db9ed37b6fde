"""Prerequisites: skip locally when a tool is missing, fail loudly under CI=true."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build"
VENVS = BUILD / "venvs"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(what: str) -> None:
    """Report a missing prerequisite: a failure under CI, a skip on a developer machine."""
    message = f"prerequisite missing: {what} (run `make test`, which sets it up)"
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def require_file(path: Path, what: str) -> Path:
    if not path.exists():
        missing(f"{what} at {path}")
    return path


def require_tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        missing(f"`{name}` on PATH")
    return found


def service_python(service: str) -> str:
    """The interpreter of a service's own virtualenv (built from its pinned requirements)."""
    return str(require_file(VENVS / service / "bin" / "python", f"virtualenv of {service}"))


def service_bin(service: str, program: str) -> str:
    return str(require_file(VENVS / service / "bin" / program, f"{program} in the {service} venv"))


def collector_binary() -> str:
    return str(require_file(BUILD / "otelcol-lab", "test collector binary"))
