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


PROBER = """
import socket, sys, time
end, slow, failed, done = time.time() + float(sys.argv[2]), [], [], 0
while time.time() < end:
    started = time.time()
    try:
        socket.getaddrinfo(sys.argv[1], 80)
    except OSError as exc:
        failed.append(repr(exc))
    took = (time.time() - started) * 1000
    if took > 200:
        slow.append(round(took))
    done += 1
    time.sleep(0.01)
print("lookups", done, "slow", slow, "failed", failed[:5], len(failed), flush=True)
"""


def test_name_lookups_never_stall_while_containers_come_and_go(engine: Engine):
    """Debian 12's engine lost lookups whenever a container joined or left a network (a 5 or 10 s
    stall, or the name unknown: "Name lookups" in scripts/container-engine.sh). One container
    resolves another every 10 ms while 16 containers start and stop on the same network, as load
    runs do in the stack tests; not one lookup may take 200 ms or fail."""
    engine.docker("network", "create", "lab-churn-net")  # through the API socket, as compose does
    image = engine.env["BASE_IMAGE"]
    try:
        engine.docker("run", "-d", "--name", "lab-churn-peer", "--network", "lab-churn-net",
                      image, "sleep", "300")  # fmt: skip
        engine.docker("run", "-d", "--name", "lab-churn-prober", "--network", "lab-churn-net",
                      image, "python3", "-c", PROBER, "lab-churn-peer", "45")  # fmt: skip
        for _ in range(16):
            engine.docker("run", "--rm", "--network", "lab-churn-net", image, "true")
        engine.docker("wait", "lab-churn-prober", timeout=120)
        out = engine.docker("logs", "lab-churn-prober").stdout.strip()
        lookups = int(out.split()[1])
        assert lookups > 1000, out
        assert out.endswith("slow [] failed [] 0"), out
    finally:
        engine.docker("rm", "-f", "lab-churn-peer", "lab-churn-prober", check=False)
        engine.docker("network", "rm", "lab-churn-net", check=False)
