"""The container engine's own check, as `make test` runs it before any stack test."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from harness.stack import ENGINE_SCRIPT, Engine


def _leftovers(engine: Engine) -> list[str]:
    names = engine.podman("ps", "-a", "--format", "{{.Names}}").stdout.split()
    names += engine.podman("network", "ls", "--format", "{{.Name}}").stdout.split()
    return [name for name in names if name.startswith("lab-smoke-")]


def test_engine_check_resolves_a_container_by_name_and_cleans_up(engine: Engine):
    result = engine.script("check")
    assert "engine works" in result.stderr
    assert _leftovers(engine) == []


def test_missing_iptables_stops_setup_with_one_message_naming_it(engine: Engine, tmp_path: Path):
    """A new machine without iptables: PATH here has every program but iptables/ip6tables."""
    shadow = tmp_path / "bin"
    shadow.mkdir()
    for folder in os.environ["PATH"].split(os.pathsep):
        if not Path(folder).is_dir():
            continue
        for program in Path(folder).iterdir():
            name = program.name
            if name.startswith(("iptables", "ip6tables")) or (shadow / name).exists():
                continue
            (shadow / name).symlink_to(program)
    result = subprocess.run(
        ["bash", str(ENGINE_SCRIPT), "check"],
        env={**engine.env, "CI": "true", "PATH": str(shadow)},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert result.returncode == 1
    assert len(errors) == 1, result.stderr
    assert "'iptables' is missing (Debian package iptables)" in errors[0]
    assert "netavark runs it" in errors[0]
    assert _leftovers(engine) == []
