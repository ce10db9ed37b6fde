"""The compose stack under test: a container engine, the CI stand-in images, one compose project.

The engine is podman behind a Docker API socket with the Docker Compose CLI from PyPI, set up by
scripts/container-engine.sh exactly as the containers note describes. The stack is the users'
compose.yaml; only what cannot be pulled in CI is substituted, through its image variables
(SPLUNK_OTEL_COLLECTOR_IMAGE, BASE_IMAGE), plus free host ports and per-session folders.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from harness.prereq import ROOT, collector_binary
from harness.procs import free_port

ENGINE_SCRIPT = ROOT / "scripts" / "container-engine.sh"
HERE = ROOT / "tests" / "stack"
COLLECTOR_CI_IMAGE = "localhost/otel-collector-ci"
FAKE_SPLUNK_IMAGE = "localhost/fake-splunk-ci"
FAKE_SPLUNK_OVERRIDE = HERE / "compose.fake-splunk.yaml"
UP_TIMEOUT_S = 300
# Owner of the session's bind-mounted folders when the tests run as root (CI): a laptop user's uid,
# so that init-dirs must really open folders it does not own (with its two capabilities).
FOLDER_OWNER_UID = 1000
# Developers' reruns: keep the images a session built (tagged per project; remove them by hand).
KEEP_IMAGES = os.environ.get("LAB_STACK_KEEP_IMAGES", "") == "1"

# Variables of the stack a developer may have exported; never let them leak into a test run.
_SCRUBBED_PREFIXES = (
    "SPLUNK_", "OPENAI_", "LOADGEN_", "MOCK_LLM_", "ASSISTANT_", "OTEL_", "OTELCOL_", "COMPOSE_",
    "DOCKER_", "LOCUST_", "OTLP_", "FAKE_SPLUNK_",
)  # fmt: skip
_SCRUBBED = ("BIND_ADDRESS", "DEPLOYMENT_ENVIRONMENT", "TELEMETRY_DIR", "REPORTS_DIR", "BASE_IMAGE")


def _clean_environ() -> dict[str, str]:
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(_SCRUBBED_PREFIXES) and key not in _SCRUBBED
    }


def _run(argv: Sequence[str], env: dict[str, str], timeout: float = 600, check: bool = True,
         cwd: Path = ROOT) -> subprocess.CompletedProcess:  # fmt: skip
    result = subprocess.run(
        list(argv), env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"`{' '.join(argv)}` exited {result.returncode}\n"
            f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-6000:]}"
        )
    return result


class Engine:
    """podman's Docker API socket in `state`, with the docker CLI and the compose plugin."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.env = _clean_environ()
        self.timings: dict[str, float] = {}

    def script(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        return _run(["bash", str(ENGINE_SCRIPT), *args], {**self.env, "CI": "true"}, timeout)

    def start(self) -> Engine:
        started = time.monotonic()
        self.script("setup")
        self.timings["setup_s"] = time.monotonic() - started
        self.script("start", str(self.state))
        for line in self.script("env", str(self.state)).stdout.splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            self.env[key] = value
        return self

    def docker(self, *args: str, timeout: float = 600, check: bool = True):
        return _run(["docker", *args], self.env, timeout, check)

    def podman(self, *args: str, timeout: float = 120, check: bool = True):
        return _run(["podman", *args], self.env, timeout, check)

    def saved_pids(self) -> list[int]:
        pids = []
        for name in ("podman-service.pid", "hc-driver.pid", "bridge-pinner.pid", "conmon.pids"):
            path = self.state / name
            if path.exists():
                pids += [int(p) for p in path.read_text().split()]
        return pids

    def stop(self) -> None:
        _run(["bash", str(ENGINE_SCRIPT), "stop", str(self.state)], self.env, 60, check=False)

    def build_ci_images(self, tmp: Path) -> None:
        """The collector stand-in (from build/otelcol-lab) and the fake Splunk ingest image."""
        context = tmp / "collector-image"
        context.mkdir()
        shutil.copy2(collector_binary(), context / "otelcol")  # follows the symlink to the cache
        shutil.copy2(HERE / "collector-image" / "Dockerfile", context / "Dockerfile")
        (context / "passwd").write_text("splunk-otel-collector:x:999:999::/:/sbin/nologin\n")
        shutil.copy2("/etc/ssl/certs/ca-certificates.crt", context / "ca-certificates.crt")
        self.docker("build", "-q", "-t", COLLECTOR_CI_IMAGE, str(context))
        context = tmp / "fake-splunk-image"
        context.mkdir()
        shutil.copy2(HERE / "fake-splunk" / "Dockerfile", context / "Dockerfile")
        shutil.copy2(ROOT / "tests" / "harness" / "fake_splunk.py", context / "fake_splunk.py")
        self.docker(
            "build", "-q", "--build-arg", f"BASE={self.env['BASE_IMAGE']}",
            "-t", FAKE_SPLUNK_IMAGE, str(context),
        )  # fmt: skip


class Stack:
    """One compose project made from the repository's compose.yaml."""

    def __init__(self, engine: Engine, root: Path) -> None:
        self.engine = engine
        self.project = f"labtest-{secrets.token_hex(4)}"
        self.telemetry = root / "telemetry"
        self.reports = root / "reports"
        self.telemetry.mkdir()
        self.reports.mkdir()
        if os.geteuid() == 0:
            for folder in (self.telemetry, self.reports):
                os.chown(folder, FOLDER_OWNER_UID, FOLDER_OWNER_UID)
        # An empty env file: compose must not read a developer's .env (secrets, other settings).
        self.env_file = root / "empty.env"
        self.env_file.write_text("")
        self.ports = {
            name: free_port()
            for name in (
                "ASSISTANT_PORT", "MOCK_LLM_PORT", "LOCUST_PORT", "OTLP_GRPC_PORT",
                "OTLP_HTTP_PORT", "FAKE_SPLUNK_PORT",
            )
        }  # fmt: skip
        # recognisable, so that a leak is found by a plain text search (test_stack.py)
        self.fake_token = f"sfx-test-token-{secrets.token_hex(12)}"
        self.env = {
            **engine.env,
            **{name: str(port) for name, port in self.ports.items()},
            "SPLUNK_OTEL_COLLECTOR_IMAGE": COLLECTOR_CI_IMAGE,
            "TELEMETRY_DIR": str(self.telemetry),
            "REPORTS_DIR": str(self.reports),
            # flush metrics every few seconds instead of every minute
            "OTEL_METRIC_EXPORT_INTERVAL": "3000",
            "FAKE_SPLUNK_TOKEN": self.fake_token,
        }
        self.extra_files: list[Path] = []
        self.profiles: list[str] = []
        self.timings: dict[str, float] = {}
        self.down_done = False
        # full `compose logs` of containers an `up` was about to replace (their logs go with them)
        self.log_snapshots: list[str] = []

    def url(self, port_name: str) -> str:
        return f"http://127.0.0.1:{self.ports[port_name]}"

    def _base(self, files: Sequence[Path] | None = None, profiles: Sequence[str] = ()):
        argv = ["docker", "compose", "-p", self.project, "--env-file", str(self.env_file)]
        for path in [ROOT / "compose.yaml", *(self.extra_files if files is None else files)]:
            argv += ["-f", str(path)]
        for profile in profiles:
            argv += ["--profile", profile]
        return argv

    def compose_argv(self) -> list[str]:
        """The `docker compose ...` prefix of this project with its current files and profiles."""
        return self._base(None, self.profiles)

    def compose(self, *args: str, env: dict[str, str] | None = None, timeout: float = 600,
                check: bool = True, files: Sequence[Path] | None = None,
                profiles: Sequence[str] | None = None) -> subprocess.CompletedProcess:  # fmt: skip
        argv = [*self._base(files, self.profiles if profiles is None else profiles), *args]
        return _run(argv, {**self.env, **(env or {})}, timeout, check)

    def up(self, env: dict[str, str] | None = None, build: bool = False) -> float:
        """`up -d --wait` with this mode's variables; returns the seconds it took."""
        if self.container_ids():
            self.log_snapshots.append(self.all_logs())
        self.env.update(env or {})
        started = time.monotonic()
        args = ["up", "-d", "--wait", "--wait-timeout", str(UP_TIMEOUT_S)]
        if build:
            args.insert(2, "--build")
        result = self.compose(*args, timeout=UP_TIMEOUT_S + 600, check=False)
        if result.returncode != 0:
            raise AssertionError(
                f"compose up failed ({result.returncode}):\n{result.stderr[-5000:]}\n"
                f"--- logs\n{self.logs()[-12000:]}"
            )
        return time.monotonic() - started

    def logs(self) -> str:
        result = self.compose("logs", "--no-color", "--tail", "60", check=False, timeout=120)
        return result.stdout + result.stderr

    def all_logs(self) -> str:
        """Every line every container of the project logged (stdout and stderr), no tail."""
        result = self.compose("logs", "--no-color", check=True, timeout=300)
        return result.stdout + result.stderr

    def container_ids(self) -> list[str]:
        result = self.engine.docker(
            "ps", "-aq", "--filter", f"label=com.docker.compose.project={self.project}"
        )
        return result.stdout.split()

    def inspect(self, service: str) -> dict:
        ids = self.compose("ps", "-aq", service).stdout.split()
        assert ids, f"no container for {service}"
        return json.loads(self.engine.docker("inspect", ids[0]).stdout)[0]

    def down(self) -> None:
        """Remove what this project created: containers, network, volumes, built images."""
        if self.down_done:
            return
        ids = self.container_ids()
        if ids:
            self.engine.script("save-conmon", str(self.engine.state), *ids)
        self.compose(
            "down", "-v", "-t", "3", "--remove-orphans",
            files=[FAKE_SPLUNK_OVERRIDE], profiles=["gateway", "workers"], check=False,
            timeout=300,
        )  # fmt: skip
        # the images this project built (podman names them docker.io/library/<project>-<service>)
        images = self.engine.docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
        built = [i for i in images if i.rsplit("/", 1)[-1].startswith(f"{self.project}-")]
        if built and not KEEP_IMAGES:
            self.engine.docker("rmi", "-f", *built, check=False, timeout=300)
        self.down_done = True


def process_alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, exited but not yet reaped, counts as ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
            return False
    return True
