#!/usr/bin/env python3
"""Print where to look once the stack is up (`make up`, `make gateway`).

Usage: scripts/stack_info.py [COMPOSE COMMAND...]   (default: docker compose)

Reads the running project through Compose itself: the published addresses (`compose port`), the
collector's mode (its command line) and the bind-mounted folders (`compose config`). Standard
library only.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(compose: list[str], *args: str) -> str:
    result = subprocess.run(
        [*compose, *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    return result.stdout.strip() if result.returncode == 0 else ""


def published(compose: list[str], service: str, port: int) -> str | None:
    address = run(compose, "port", service, str(port)).splitlines()
    return f"http://{address[0]}" if address and address[0] else None


def collector_mode(command: list[str]) -> str:
    if any("via-gateway-on" in arg for arg in command):
        return "gateway: agent -> gateway collector"
    if any("splunk-on" in arg for arg in command):
        return "splunk: Splunk Observability Cloud (and the local archive)"
    return "local: ./telemetry archive only (no outbound connection)"


def mount_source(service: dict, target: str) -> str | None:
    for volume in service.get("volumes", []):
        if isinstance(volume, dict) and volume.get("target") == target:
            source = Path(volume["source"])
            try:
                return "./" + str(source.relative_to(ROOT))
            except ValueError:
                return str(source)
    return None


def main(argv: list[str]) -> int:
    compose = argv or ["docker", "compose"]
    config_text = run(compose, "config", "--format", "json")
    if not config_text:
        print("stack-info: `compose config` failed; is Docker running?", file=sys.stderr)
        return 1
    services = json.loads(config_text).get("services", {})
    collector = services.get("otel-collector", {})
    telemetry = mount_source(collector, "/var/lib/otelcol") or "./telemetry"
    reports = mount_source(services.get("loadgen", {}), "/app/reports") or "./reports"
    chat = published(compose, "assistant", 8080)
    locust = published(compose, "loadgen", 8089)
    mock = published(compose, "mock-llm", 8000)
    lines = [
        "",
        "The LLM observability lab is up.",
        f"  Chat UI            {chat or '(assistant not running)'}",
        f"  Locust UI          {locust or '(loadgen not running)'}  (the demo load runs first)",
        f"  Mock LLM           {mock + '/v1' if mock else '(not running)'}"
        + ("  faults: PUT /admin/faults" if mock else ""),
        f"  Collector mode     {collector_mode(collector.get('command') or [])}",
        f"  Telemetry archive  {telemetry}/archive/  (traces.jsonl, metrics.jsonl, logs.jsonl)",
        f"  Reports            {reports}/loadgen/llm-summary.md  (after a load run; make report)",
        "  Logs: make logs    Another load run: make load    Stop: make down",
        "",
    ]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
