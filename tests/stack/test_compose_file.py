"""compose.yaml and .env.example read as files (no container engine): the production rules hold and
every variable is documented. The stack itself is proven in test_stack.py."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
import yaml

from harness.collector import AGENT_COMMAND, GATEWAY_COMMAND
from harness.prereq import ROOT, require_file, service_python

COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
ENV_EXAMPLE = (ROOT / ".env.example").read_text()
# Variables that only Compose or the Makefile read (not in compose.yaml's text).
COMPOSE_ONLY = {"COMPOSE_PROFILES"}
ONE_SHOT = {"init-dirs"}
# Images not built here, and the non-root uid they run as (the Splunk image: uid 999, as the CI
# stand-in tests/stack/collector-image; test_stack.py checks the running uid).
COLLECTOR_IMAGES = {"otel-collector", "gateway"}
# What init-dirs needs to create and chmod folders that belong to the user who ran `make up`.
INIT_DIRS_CAPABILITIES = ["DAC_OVERRIDE", "FOWNER"]


def documented() -> set[str]:
    return set(re.findall(r"^# ([A-Z][A-Z0-9_]+)=", ENV_EXAMPLE, flags=re.M))


def referenced() -> set[str]:
    text = (ROOT / "compose.yaml").read_text()
    interpolated = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))
    passed_through = {
        item
        for service in SERVICES.values()
        for item in service.get("environment", [])
        if isinstance(item, str) and "=" not in item
    }
    return interpolated | passed_through


def test_every_variable_is_documented_in_env_example():
    assert sorted(referenced() - documented()) == []


def test_env_example_documents_only_variables_the_stack_reads():
    assert sorted(documented() - referenced() - COMPOSE_ONLY) == []


def test_env_example_sets_nothing():
    """`cp .env.example .env` must behave like no .env: every setting is commented out."""
    active = [
        line for line in ENV_EXAMPLE.splitlines() if line.strip() and not line.startswith("#")
    ]
    assert active == []


def test_collector_command_lines_are_the_documented_ones():
    assert tuple(SERVICES["otel-collector"]["command"]) == AGENT_COMMAND
    assert tuple(SERVICES["gateway"]["command"]) == GATEWAY_COMMAND
    default = "${SPLUNK_OTEL_COLLECTOR_IMAGE:-quay.io/signalfx/splunk-otel-collector:0.158.0}"
    assert SERVICES["otel-collector"]["image"] == SERVICES["gateway"]["image"] == default
    for name in ("otel-collector", "gateway"):
        assert "./collector:/etc/otelcol:ro" in SERVICES[name]["volumes"]
        assert "SPLUNK_LISTEN_INTERFACE=0.0.0.0" in SERVICES[name]["environment"]


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_follows_the_production_rules(name):
    service = SERVICES[name]
    assert service.get("mem_limit"), "memory limit"
    assert service["logging"]["driver"] == "json-file"
    assert service["logging"]["options"]["max-size"] and service["logging"]["options"]["max-file"]
    expected_restart = "no" if name in ONE_SHOT else "unless-stopped"
    assert service["restart"] == expected_restart
    for port in service.get("ports", []):
        assert port.startswith("${BIND_ADDRESS:-127.0.0.1}:"), port
    if "build" in service:
        assert service["build"]["args"] == {"BASE": "${BASE_IMAGE:-python:3.12-slim}"}
    check = service.get("healthcheck")
    if check:
        # string (shell) form: podman splits exec-form arguments that contain spaces
        assert isinstance(check["test"], str), "healthcheck must use the shell form"
    if service.get("command", [None])[0] in ("sh", "sleep"):
        assert service.get("init") is True or name in ONE_SHOT, "a shell as PID 1 needs init"
    networks = service.get("networks", [])
    assert networks == ["lab"] or service.get("network_mode") == "none"


def dockerfile_user(service: dict) -> str:
    """The last USER of the service's Dockerfile (the user its container runs as)."""
    dockerfile = ROOT / service["build"]["context"] / "Dockerfile"
    users = re.findall(r"^USER\s+(\S+)", dockerfile.read_text(), flags=re.M)
    assert users, f"{dockerfile} sets no USER"
    return users[-1]


def is_root(user: str) -> bool:
    return user.split(":")[0] in ("", "0", "root")


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_is_hardened(name):
    """Read-only root filesystem, no capabilities, no privilege gain, a non-root user."""
    service = SERVICES[name]
    assert service.get("read_only") is True
    assert service.get("cap_drop") == ["ALL"]
    assert service.get("security_opt") == ["no-new-privileges:true"]
    assert "privileged" not in service and "pid" not in service and "ipc" not in service
    if name in ONE_SHOT:
        # the only root container: no network, just the two capabilities it needs
        assert service["user"] == "0" and service["network_mode"] == "none"
        assert service["cap_add"] == INIT_DIRS_CAPABILITIES
        return
    assert "cap_add" not in service
    if "user" in service:
        assert not is_root(str(service["user"])), service["user"]
    elif "build" in service:
        assert not is_root(dockerfile_user(service))
    else:
        assert name in COLLECTOR_IMAGES, f"{name}: set `user:` (its image may run as root)"
        stand_in = (ROOT / "tests" / "stack" / "collector-image" / "Dockerfile").read_text()
        assert re.search(r"^USER 999$", stand_in, flags=re.M)
    # Writable places: only a bounded /tmp tmpfs, plus the bind mounts
    for entry in service.get("tmpfs", []):
        path, _, options = entry.partition(":")
        assert path == "/tmp" and re.fullmatch(r"size=\d+m", options), entry
    for volume in service.get("volumes", []):
        target = volume.removesuffix(":ro").rsplit(":", 1)[1]
        assert target in ("/etc/otelcol", "/var/lib/otelcol", "/app/reports"), volume


def test_services_that_write_temporary_files_have_a_tmpfs():
    """gunicorn's worker heartbeat, Locust, the collector: /tmp must be writable on Docker too
    (podman adds a /tmp tmpfs to read-only containers by itself, Docker does not)."""
    needs_tmp = {"mock-llm", "assistant", "loadgen", "loadgen-worker", "otel-collector", "gateway"}
    for name in needs_tmp:
        assert [e.partition(":")[0] for e in SERVICES[name].get("tmpfs", [])] == ["/tmp"], name


def test_python_images_run_as_their_own_user():
    for name in ("mock-llm", "assistant", "loadgen"):
        dockerfile = (ROOT / "services" / name / "Dockerfile").read_text()
        assert re.search(r"useradd .*--uid 10001", dockerfile), name
        assert not is_root(dockerfile_user(SERVICES[name]))


def test_services_that_can_have_a_healthcheck_have_one():
    shell_less = {"otel-collector", "gateway"} | ONE_SHOT
    for name, service in SERVICES.items():
        if name not in shell_less and name != "loadgen-worker":
            assert "healthcheck" in service, name


def test_startup_is_gated_on_health():
    assert SERVICES["assistant"]["depends_on"] == {
        "mock-llm": {"condition": "service_healthy"},
        "collector-health": {"condition": "service_healthy"},
    }
    assert SERVICES["loadgen"]["depends_on"]["assistant"] == {"condition": "service_healthy"}
    assert SERVICES["otel-collector"]["depends_on"]["init-dirs"] == {
        "condition": "service_completed_successfully"
    }


def test_optional_services_are_in_profiles_and_one_network():
    assert SERVICES["gateway"]["profiles"] == ["gateway"]
    assert SERVICES["loadgen-worker"]["profiles"] == ["workers"]
    default = [name for name, service in SERVICES.items() if "profiles" not in service]
    assert sorted(default) == [
        "assistant", "collector-health", "init-dirs", "loadgen", "mock-llm", "otel-collector",
    ]  # fmt: skip
    assert list(COMPOSE["networks"]) == ["lab"]


COMPOSE_CLI = ROOT / "build" / "container-engine" / "compose-venv" / "bin" / "docker-compose"
ASSISTANT_SRC = ROOT / "services" / "assistant" / "src"
SHOW_BACKEND = (
    "from assistant.config import load_config; c = load_config(); "
    "print(c.openai_base_url, c.openai_api_key)"
)
LOADGEN_SRC = ROOT / "services" / "loadgen" / "src"
SHOW_RATINGS = (
    "from loadgen.config import load_config; c = load_config(); "
    "print(c.llm_backend, c.feedback_rate)"
)


def resolved_environment(service: str, env: dict[str, str]) -> dict[str, str]:
    """The service's environment as `docker compose config` resolves it (no engine needed)."""
    require_file(COMPOSE_CLI, "the Docker Compose CLI (scripts/container-engine.sh setup)")
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "LOADGEN_", "MOCK_LLM_"))
    }
    result = subprocess.run(
        [str(COMPOSE_CLI), "--project-directory", str(ROOT), "config", "--format", "json"],
        env={**clean, **env}, cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    environment = json.loads(result.stdout)["services"][service]["environment"]
    return {key: value for key, value in environment.items() if value is not None}


@pytest.mark.parametrize(
    ("env", "backend", "autostart", "ratings"),
    [
        ({}, "http://mock-llm:8000/v1 unused", "", "mock 0.3"),
        ({"MOCK_LLM_API_KEY": "sk-lab"}, "http://mock-llm:8000/v1 sk-lab", "", "mock 0.3"),
        (
            {"OPENAI_API_KEY": "sk-real"},
            "https://api.openai.com/v1 sk-real",
            "false",
            "https://api.openai.com/v1 0.0",
        ),
        (
            {"OPENAI_API_KEY": "sk-real", "LOADGEN_AUTOSTART": "true"},
            "https://api.openai.com/v1 sk-real",
            "true",
            "https://api.openai.com/v1 0.0",
        ),
        (
            {"OPENAI_API_KEY": "sk-real", "LOADGEN_FEEDBACK_RATE": "0.2"},
            "https://api.openai.com/v1 sk-real",
            "false",
            "https://api.openai.com/v1 0.2",
        ),
        (
            {"OPENAI_BASE_URL": "http://vllm:8000/v1"},
            "http://vllm:8000/v1 unused",
            "",
            "http://vllm:8000/v1 0.0",
        ),
    ],
)
def test_openai_api_key_alone_switches_to_the_real_api(env, backend, autostart, ratings):
    """Mock by default; OPENAI_API_KEY alone -> api.openai.com, no paid demo load at start and no
    simulated ratings of the real model (unless LOADGEN_FEEDBACK_RATE is set)."""
    assistant = resolved_environment("assistant", env)
    shown = subprocess.run(
        [service_python("assistant"), "-c", SHOW_BACKEND],
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ASSISTANT_SRC), **assistant},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split("\n")[0] == backend
    loadgen = resolved_environment("loadgen", env)
    assert loadgen["LOADGEN_AUTOSTART"] == autostart
    shown = subprocess.run(
        [service_python("loadgen"), "-c", SHOW_RATINGS],
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(LOADGEN_SRC), **loadgen},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == ratings
