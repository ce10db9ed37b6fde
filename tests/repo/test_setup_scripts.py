"""The set-up scripts: `make test` on a new machine needs nothing installed by hand.

These read the scripts themselves; tests/stack/test_engine.py runs the engine's smoke step.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from harness.prereq import ROOT

ENGINE = ROOT / "scripts" / "container-engine.sh"


def function_body(script: str, name: str) -> str:
    match = re.search(rf"^{name}\(\) \{{(.*?)^\}}", script, re.M | re.S)
    assert match, f"{name}() not found"
    return match.group(1)


def test_engine_setup_ends_with_the_smoke_step():
    script = ENGINE.read_text()
    setup = function_body(script, "cmd_setup")
    steps = [line.split()[0] for line in setup.strip().splitlines() if line.strip()]
    assert "smoke_test" in steps, "setup must prove the engine works before any test runs"
    assert steps.index("smoke_test") > steps.index("build_base_image")
    assert "smoke_test" in function_body(script, "cmd_check").split()


def test_smoke_step_runs_two_containers_on_a_new_network_and_resolves_a_name():
    smoke = function_body(ENGINE.read_text(), "smoke_test")
    assert "podman network create" in smoke
    assert smoke.count('--network "$net"') == 2
    assert "gethostbyname" in smoke and '"$peer"' in smoke
    # cleaned up on success and, through the EXIT trap, when a step dies
    assert "trap smoke_cleanup EXIT" in smoke
    assert smoke.rstrip().endswith("smoke_cleanup\n  trap - EXIT")
    cleanup = function_body(ENGINE.read_text(), "smoke_cleanup")
    assert "podman rm -f" in cleanup and "podman network rm -f" in cleanup


@pytest.mark.parametrize(
    "program",
    ["iptables", "ip6tables", "netavark", "aardvark-dns", "conmon", "runc", "catatonit", "ip"],
)
def test_engine_installs_and_checks_what_podman_and_netavark_call(program):
    listed = re.search(r"^ENGINE_PROGRAMS=\((.*?)^\)", ENGINE.read_text(), re.M | re.S).group(1)
    programs = {pair.split()[1].rsplit("/", 1)[-1] for pair in re.findall(r'"([^"]+)"', listed)}
    assert program in programs


def test_podman_runs_the_aardvark_dns_that_setup_builds():
    """aardvark-dns 1.11 (no lost lookups on reload) from crates.io, first in podman's helper
    path, checked by version, and the one that serves the networks (README, Tests)."""
    script = ENGINE.read_text()
    assert re.search(r"^AARDVARK_PIN=1\.11\.\d+$", script, re.M)
    build = function_body(script, "build_aardvark")
    assert '"$cargo" install --quiet --locked aardvark-dns --version "$AARDVARK_PIN"' in build
    assert 'install -m 0755 "$root/bin/aardvark-dns" "$HELPERS/aardvark-dns"' in build
    assert re.search(r'^helper_binaries_dir = \["HELPERS", ', script, re.M)
    setup = function_body(script, "cmd_setup").split()
    assert setup.index("build_aardvark") < setup.index("check_engine")
    assert '"$HELPERS/aardvark-dns" --version' in function_body(script, "check_programs")
    assert "check_aardvark" in function_body(script, "smoke_test")


def test_start_pins_bridge_macs_and_stop_ends_the_pinner():
    script = ENGINE.read_text()
    start, stop = function_body(script, "cmd_start"), function_body(script, "cmd_stop")
    assert 'ip link set dev "${dev##*/}" address "$(cat "$dev/address")"' in start
    assert 'timeout "$1" ip -o monitor link' in start  # bounded, like the healthcheck driver
    assert 'echo $! > "$state/bridge-pinner.pid"' in start
    assert "bridge-pinner.pid" in stop


@pytest.mark.parametrize(
    "script",
    ["container-engine.sh", "setup-chromium.sh", "setup-venvs.sh", "build-collector.sh"],
)
def test_setup_scripts_parse(script):
    subprocess.run(["bash", "-n", str(ROOT / "scripts" / script)], check=True)


def test_readme_lists_every_package_the_engine_installs():
    tests_section = (ROOT / "README.md").read_text().split("## Tests", 1)[1].split("\n## ", 1)[0]
    listed = re.search(r"^ENGINE_PROGRAMS=\((.*?)^\)", ENGINE.read_text(), re.M | re.S).group(1)
    packages = {pair.split()[0] for pair in re.findall(r'"([^"]+)"', listed)}
    packages |= {"chromium", "docker.io"}
    missing = {p for p in packages if f"`{p}`" not in tests_section}
    assert not missing, f"README's Tests section does not list {sorted(missing)}"
