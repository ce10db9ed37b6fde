"""Run the load generator (`python -m loadgen`, Locust, from build/venvs/loadgen) as a real process
and read what it reports."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from harness.prereq import ROOT, service_python
from harness.procs import ServiceProcess

LOADGEN_SRC = ROOT / "services" / "loadgen" / "src"


@dataclass
class LoadRun:
    exit_code: int
    report_dir: Path
    process: ServiceProcess

    @property
    def summary(self) -> dict:
        path = self.report_dir / "llm-summary.json"
        assert path.exists(), f"no llm-summary.json; log:\n{self.process.log()[-4000:]}"
        return json.loads(path.read_text())

    @property
    def samples(self) -> list[dict]:
        lines = (self.report_dir / "llm-samples.jsonl").read_text().splitlines()
        return [json.loads(line) for line in lines if line]

    def log(self) -> str:
        return self.process.log()


def loadgen_env(report_dir: Path, **settings: object) -> dict[str, str]:
    """A headless, quick run's environment; `settings` are LOADGEN_* names without the prefix."""
    env = {
        "PYTHONPATH": str(LOADGEN_SRC),
        "LOADGEN_HEADLESS": "true",
        "LOADGEN_REPORT_DIR": str(report_dir),
        "LOADGEN_WAIT_SECONDS": "0-0.05",
        "LOADGEN_SPAWN_RATE": "50",
        "LOADGEN_STOP_TIMEOUT_S": "5",
        "LOADGEN_WEB_HOST": "127.0.0.1",
    }
    env.update({f"LOADGEN_{key.upper()}": str(value) for key, value in settings.items()})
    return env


def loadgen_process(name: str, log_dir: Path, env: dict[str, str]) -> ServiceProcess:
    return ServiceProcess(name, [service_python("loadgen"), "-m", "loadgen"], log_dir, env)


def wait_for_loadgen(process: ServiceProcess, timeout: float) -> int:
    """The exit code of a load run, which must stop by itself within `timeout` seconds."""
    try:
        return process.wait_exit(timeout)
    except Exception as exc:
        raise AssertionError(f"loadgen did not stop by itself:\n{process.log()[-4000:]}") from exc


def run_loadgen_to_end(
    tmp_path: Path, name: str, timeout: float = 120.0, **settings: object
) -> LoadRun:
    """Run one bounded headless load run to completion (it must stop by itself)."""
    report_dir = tmp_path / name
    process = loadgen_process(f"loadgen-{name}", tmp_path, loadgen_env(report_dir, **settings))
    with process:
        code = wait_for_loadgen(process, timeout)
    return LoadRun(code, report_dir, process)
