"""Every shipped config in every mode, merged as compose.yaml does: valid and as documented."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from harness.collector import (
    AGENT_COMMAND,
    CONFIG_DIR,
    GATEWAY_COMMAND,
    config_args,
    interpolate,
    mode_of,
)

pytestmark = pytest.mark.timeout(120)

TOKEN = "token-that-must-stay-secret-0123"
REALM = {"SPLUNK_ACCESS_TOKEN": TOKEN, "SPLUNK_REALM": "us1"}
HEC = {"SPLUNK_HEC_URL": "https://hec.example.test/services/collector"}
GATEWAY = {"SPLUNK_GATEWAY_URL": "gateway"}

LOCAL_PIPELINES = {
    "traces": ["file/traces", "debug"],
    "metrics": ["file/metrics", "debug"],
    "logs": ["file/logs", "debug"],
}
TO_GATEWAY = ["otlp_grpc/gateway"]
GATEWAY_ARCHIVE = {f"{name}/upstream": exporters for name, exporters in LOCAL_PIPELINES.items()}

# (id, role, environment, mode, pipelines -> exporters of the merged configuration)
CASES = [
    ("agent-local", "agent", {}, "local", LOCAL_PIPELINES),
    (
        "agent-splunk",
        "agent",
        REALM,
        "splunk",
        {
            **LOCAL_PIPELINES,
            "traces/upstream": ["otlp_http/splunk"],
            "metrics/upstream": ["signalfx"],
        },
    ),
    (
        "agent-splunk-hec",
        "agent",
        {**REALM, **HEC},
        "splunk",
        {
            **LOCAL_PIPELINES,
            "traces/upstream": ["otlp_http/splunk"],
            "metrics/upstream": ["signalfx"],
            "logs/upstream": ["splunk_hec"],
        },
    ),
    (
        "agent-local-hec",
        "agent",
        {**HEC, "SPLUNK_HEC_TOKEN": TOKEN},
        "local",
        {**LOCAL_PIPELINES, "logs/upstream": ["splunk_hec"]},
    ),
    (
        "agent-gateway",
        "agent",
        GATEWAY,
        "gateway",
        {**LOCAL_PIPELINES, **{f"{s}/upstream": TO_GATEWAY for s in LOCAL_PIPELINES}},
    ),
    (
        # One .env for agent and gateway: the agent still only forwards.
        "agent-gateway-with-splunk-settings",
        "agent",
        {**GATEWAY, **REALM, **HEC},
        "gateway",
        {**LOCAL_PIPELINES, **{f"{s}/upstream": TO_GATEWAY for s in LOCAL_PIPELINES}},
    ),
    ("gateway-local", "gateway", {}, "local", GATEWAY_ARCHIVE),
    (
        "gateway-splunk",
        "gateway",
        REALM,
        "splunk",
        {
            "traces/upstream": ["otlp_http/splunk"],
            "metrics/upstream": ["signalfx"],
            "logs/upstream": ["file/logs", "debug"],
        },
    ),
    (
        "gateway-splunk-hec",
        "gateway",
        {**REALM, **HEC},
        "splunk",
        {
            "traces/upstream": ["otlp_http/splunk"],
            "metrics/upstream": ["signalfx"],
            "logs/upstream": ["splunk_hec"],
        },
    ),
]
IDS = [case[0] for case in CASES]


def run_collector(otelcol: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [otelcol, *args],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def merged_config(otelcol: str, role: str, env: dict[str, str]) -> dict:
    """The configuration the collector runs, as printed by `print-config` (secrets redacted)."""
    result = run_collector(otelcol, "print-config", *config_args(role, env), env=env)
    assert result.returncode == 0, result.stderr
    assert TOKEN not in result.stdout + result.stderr
    return yaml.safe_load(result.stdout)


@pytest.mark.parametrize(("case", "role", "env", "mode", "pipelines"), CASES, ids=IDS)
def test_validate(otelcol, case, role, env, mode, pipelines):
    assert mode_of(role, env) == mode
    result = run_collector(otelcol, "validate", *config_args(role, env), env=env)
    assert result.returncode == 0, result.stderr
    assert TOKEN not in result.stdout + result.stderr


@pytest.mark.parametrize(("case", "role", "env", "mode", "pipelines"), CASES, ids=IDS)
def test_merged_pipelines(otelcol, case, role, env, mode, pipelines):
    config = merged_config(otelcol, role, env)
    service = config["service"]
    assert {name: p["exporters"] for name, p in service["pipelines"].items()} == pipelines
    for pipeline in service["pipelines"].values():
        assert pipeline["receivers"] == ["otlp"]
        assert pipeline["processors"] == ["memory_limiter", "resource", "batch"]
    assert "health_check" in service["extensions"]
    reader = service["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]
    assert (reader["host"], reader["port"]) == ("0.0.0.0", 8888)
    assert config["extensions"]["health_check"]["endpoint"] == "0.0.0.0:13133"
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"
    resource = {a["key"]: a for a in config["processors"]["resource"]["attributes"]}
    assert set(resource) == {"deployment.environment.name", "deployment.environment"}
    assert {a["value"] for a in resource.values()} == {"llm-lab"}
    assert {a["action"] for a in resource.values()} == {"upsert" if role == "agent" else "insert"}
    assert config["processors"]["memory_limiter"]["limit_mib"] == 460
    uses_queue = any(
        e != "debug" and not e.startswith("file/") for p in pipelines.values() for e in p
    )
    assert ("file_storage/queue" in service["extensions"]) == uses_queue


def test_realm_derives_ingest_urls(otelcol):
    exporters = merged_config(otelcol, "agent", REALM)["exporters"]
    http = exporters["otlp_http/splunk"]
    assert (
        http["traces_endpoint"] == "https://ingest.us1.observability.splunkcloud.com/v2/trace/otlp"
    )
    assert {h["name"]: h["value"] for h in http["headers"]} == {"X-SF-Token": "[REDACTED]"}
    assert http["sending_queue"]["storage"] == "file_storage/queue"
    assert http["retry_on_failure"]["enabled"] is True
    sfx = exporters["signalfx"]
    assert (sfx["realm"], sfx["ingest_url"], sfx["api_url"]) == ("us1", "", "")
    assert sfx["send_otlp_histograms"] is True
    assert sfx["access_token"] == "[REDACTED]"
    assert sfx["sending_queue"]["storage"] == "file_storage/queue"


def test_explicit_urls_override_the_realm(otelcol):
    env = {
        **REALM,
        "SPLUNK_INGEST_URL": "http://ingest.test:9943",
        "SPLUNK_API_URL": "http://api.test",
    }
    exporters = merged_config(otelcol, "agent", env)["exporters"]
    assert (
        exporters["otlp_http/splunk"]["traces_endpoint"] == "http://ingest.test:9943/v2/trace/otlp"
    )
    assert exporters["signalfx"]["ingest_url"] == "http://ingest.test:9943"
    assert exporters["signalfx"]["api_url"] == "http://api.test"


def test_hec_token_defaults_to_the_access_token(otelcol):
    with_own = merged_config(otelcol, "agent", {**REALM, **HEC, "SPLUNK_HEC_TOKEN": "h"})
    shared = merged_config(otelcol, "agent", {**REALM, **HEC})
    for config in (with_own, shared):
        hec = config["exporters"]["splunk_hec"]
        assert hec["endpoint"] == HEC["SPLUNK_HEC_URL"]
        assert hec["token"] == "[REDACTED]"  # present (empty would fail validation)
        assert hec["sending_queue"]["storage"] == "file_storage/queue"


def test_gateway_forwarding_endpoint(otelcol):
    config = merged_config(otelcol, "agent", {**GATEWAY, "SPLUNK_GATEWAY_OTLP_PORT": "14317"})
    exporter = config["exporters"]["otlp_grpc/gateway"]
    assert exporter["endpoint"] == "gateway:14317"
    assert exporter["tls"]["insecure"] is True
    assert exporter["sending_queue"]["storage"] == "file_storage/queue"
    default = merged_config(otelcol, "agent", GATEWAY)["exporters"]["otlp_grpc/gateway"]
    assert default["endpoint"] == "gateway:4317"


def test_environment_overrides_ports_and_paths(otelcol, tmp_path):
    env = {
        "SPLUNK_LISTEN_INTERFACE": "127.0.0.1",
        "OTELCOL_OTLP_GRPC_PORT": "1",
        "OTELCOL_OTLP_HTTP_PORT": "2",
        "OTELCOL_HEALTH_PORT": "3",
        "OTELCOL_METRICS_PORT": "4",
        "OTELCOL_DATA_DIR": str(tmp_path),
        "SPLUNK_MEMORY_LIMIT_MIB": "123",
        "DEPLOYMENT_ENVIRONMENT": "alice",
        "OTELCOL_DEBUG_VERBOSITY": "detailed",
    }
    config = merged_config(otelcol, "agent", env)
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "127.0.0.1:1"
    assert protocols["http"]["endpoint"] == "127.0.0.1:2"
    assert config["extensions"]["health_check"]["endpoint"] == "127.0.0.1:3"
    reader = config["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]
    assert (reader["prometheus"]["host"], reader["prometheus"]["port"]) == ("127.0.0.1", 4)
    assert config["exporters"]["file/traces"]["path"] == f"{tmp_path}/archive/traces.jsonl"
    assert config["extensions"]["file_storage/queue"]["directory"] == f"{tmp_path}/queue"
    assert config["processors"]["memory_limiter"]["limit_mib"] == 123
    assert {a["value"] for a in config["processors"]["resource"]["attributes"]} == {"alice"}


# --- static properties of the files ---

SHIPPED = sorted(p for p in CONFIG_DIR.rglob("*.yaml") if "ocb" not in p.parts)


def test_every_shipped_config_is_used_by_some_mode():
    used = {arg.split("=", 1)[1] for _, role, env, _, _ in CASES for arg in config_args(role, env)}
    assert {str(p) for p in SHIPPED} == used


# Component types of the Splunk image's upstream release that the configs may use (the manifest).
ALLOWED = {
    "receivers": {"otlp"},
    "processors": {"memory_limiter", "batch", "resource"},
    "exporters": {"debug", "file", "otlp_grpc", "otlp_http", "signalfx", "splunk_hec"},
    "extensions": {"health_check", "file_storage"},
    "connectors": set(),
}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(CONFIG_DIR)))
def test_only_current_upstream_components(path):
    """No sapm, smartagent, signalfx receiver, OpAMP or deprecated names (otlp, otlphttp)."""
    config = yaml.safe_load(path.read_text()) or {}
    for kind, allowed in ALLOWED.items():
        types = {name.split("/")[0] for name in config.get(kind) or {}}
        assert types <= allowed, f"{kind}: {types - allowed}"
    code = "\n".join(line.split("#", 1)[0] for line in path.read_text().splitlines())
    for unwanted in ("SPLUNK_TRACE_URL", "signalfx.com", "sapm", "smartagent", "opamp"):
        assert unwanted not in code


def test_placeholders_are_empty():
    placeholders = [p for p in SHIPPED if p.parent.name == "modes" and not p.stem.endswith("-on")]
    assert [p.name for p in placeholders] == ["hec.yaml", "splunk.yaml", "via-gateway.yaml"]
    for path in placeholders:
        assert yaml.safe_load(path.read_text()) == {}


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, ["agent.yaml", "modes/splunk.yaml", "modes/hec.yaml", "modes/via-gateway.yaml"]),
        (
            {"SPLUNK_ACCESS_TOKEN": "t", "SPLUNK_HEC_URL": "u", "SPLUNK_GATEWAY_URL": "g"},
            [
                "agent.yaml",
                "modes/splunk-on.yaml",
                "modes/hec-on.yaml",
                "modes/via-gateway-on.yaml",
            ],
        ),
        # Compose treats a variable set to "" like an unset one for ${VAR:+word}.
        (
            {"SPLUNK_ACCESS_TOKEN": ""},
            ["agent.yaml", "modes/splunk.yaml", "modes/hec.yaml", "modes/via-gateway.yaml"],
        ),
    ],
)
def test_compose_command_interpolation(env, expected):
    assert [interpolate(a, env) for a in AGENT_COMMAND] == [
        f"--config=/etc/otelcol/{name}" for name in expected
    ]
    assert config_args("agent", env) == [f"--config={CONFIG_DIR}/{name}" for name in expected]
    gateway = [interpolate(a, env) for a in GATEWAY_COMMAND]
    assert gateway[0] == "--config=/etc/otelcol/gateway.yaml"
    assert gateway[1:] == [f"--config=/etc/otelcol/{name}" for name in expected[1:3]]


def test_interpolation_never_puts_a_value_on_the_command_line():
    env = {"SPLUNK_ACCESS_TOKEN": TOKEN, "SPLUNK_HEC_URL": TOKEN, "SPLUNK_GATEWAY_URL": TOKEN}
    for role in ("agent", "gateway"):
        assert not any(TOKEN in arg for arg in config_args(role, env))


def test_compose_runs_the_same_command_lines():
    """compose.yaml and the tests must merge the same files for the same environment."""
    compose_file = CONFIG_DIR.parent / "compose.yaml"
    if not compose_file.exists():
        pytest.skip("compose.yaml not written yet")
    services = yaml.safe_load(compose_file.read_text())["services"]
    assert tuple(services["otel-collector"]["command"]) == AGENT_COMMAND
    assert tuple(services["gateway"]["command"]) == GATEWAY_COMMAND
    for service in ("otel-collector", "gateway"):
        assert "./collector:/etc/otelcol:ro" in services[service]["volumes"]
