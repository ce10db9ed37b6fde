"""The compose stack end to end on a real container engine, from the users' compose.yaml.

In order (one compose project for the whole module, torn down by the last test):
 1. `up --wait` of the default stack: every service healthy, and hardened (non-root, read-only
    root, no capabilities, no-new-privileges, ports on 127.0.0.1), as the kernel sees it.
 2. The demo load that `up` starts finishes with zero errors; memory of the stack under it.
 3. A bounded, seeded load run through the loadgen container: zero errors.
 4. The telemetry archive reconciles exactly with that run's samples and summary.
 5. A chat through the published assistant port, and the UI in headless Chromium; error answers
    are readable and name no key; prompt text stays out of the archive by default.
 6. Splunk mode against a fake ingest container: traces and metrics arrive with the token, logs
    at the fake HEC with the HEC token; with SPAN_ONLY content capture the prompt is recorded.
 7. Gateway profile: agent -> gateway -> fake ingest.
 8. No secret (access token, HEC token, OpenAI key, cookie key) in any container log, the archive,
    the reports or an answer.
 9. Teardown removes what the test created and ends only the processes it started.

The whole module runs with recognisable fake secrets (SECRET_ENV): the assistant reaches the mock
LLM as an OpenAI-compatible server (OPENAI_BASE_URL) with an OPENAI_API_KEY that the mock checks.
"""

from __future__ import annotations

import collections
import json
import operator
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from harness.browser import ask, chromium_browser, open_chat_page
from harness.collector import (
    AGENT_COMMAND,
    interpolate,
    log_records_from_otlp,
    metric_points_from_otlp,
    read_jsonl,
    spans_from_otlp,
    wait_until,
)
from harness.fake_splunk import FakeSplunkClient
from harness.prereq import ROOT
from harness.procs import kernel_status, process_tree
from harness.reconcile import Reconciliation, check_models, join, markdown_table
from harness.stack import FAKE_SPLUNK_OVERRIDE, KEEP_IMAGES, Stack, process_alive

pytestmark = [pytest.mark.stack, pytest.mark.timeout(2400)]

HEALTHCHECKED = ("mock-llm", "collector-health", "assistant", "loadgen")
LOAD_USERS = 4
LOAD_REQUESTS_PER_USER = 5
MEMORY_BUDGET_BYTES = 1.5 * 1024**3
MEASUREMENTS = ROOT / "build" / "reports" / "stack-measurements.json"
COMPOSE_SERVICES = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]

# Recognisable fake secrets: any of them in a log, the archive, a report or an answer is a leak.
OPENAI_KEY = f"sk-test-{secrets.token_hex(16)}"
HEC_TOKEN = f"hec-test-token-{secrets.token_hex(12)}"
COOKIE_KEY = f"cookie-test-key-{secrets.token_hex(12)}"
SECRET_ENV = {
    # the mock as any OpenAI-compatible server: the key is sent on every call and checked
    "OPENAI_BASE_URL": "http://mock-llm:8000/v1",
    "OPENAI_API_KEY": OPENAI_KEY,
    "MOCK_LLM_API_KEY": OPENAI_KEY,
    "ASSISTANT_SECRET_KEY": COOKIE_KEY,
    # OPENAI_API_KEY alone holds the demo load (it would cost money); here it is the mock
    "LOADGEN_AUTOSTART": "true",
}
# A prompt sent with content capture off (the default): it must never be recorded anywhere.
UNCAPTURED_PROMPT = f"uncaptured-probe-{secrets.token_hex(8)}"
# The capabilities a container gets by default (Docker and podman); "drop ALL" removes them all.
DEFAULT_CAPABILITIES = {
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}  # fmt: skip


@pytest.fixture(scope="module")
def measurements() -> dict:
    found: dict = {}
    yield found
    MEASUREMENTS.parent.mkdir(parents=True, exist_ok=True)
    MEASUREMENTS.write_text(json.dumps(found, indent=2) + "\n")


@pytest.fixture(scope="module")
def default_stack(stack: Stack, engine, measurements) -> Stack:
    measurements["engine_setup_s"] = round(engine.timings["setup_s"], 2)
    measurements["up_wait_build_s"] = round(stack.up(SECRET_ENV, build=True), 2)
    return stack


@pytest.fixture(scope="module")
def leak_texts() -> dict[str, str]:
    """Texts the tests saw that must hold no secret (answers, what reached the fake ingest)."""
    return {}


# --- readers of the archive and the reports ---


def archive_spans(folder: Path) -> list[dict]:
    return [s for d in read_jsonl(sorted(folder.glob("traces*.jsonl"))) for s in spans_from_otlp(d)]


def archive_metric_points(folder: Path, name: str) -> list[dict]:
    docs = read_jsonl(sorted(folder.glob("metrics*.jsonl")))
    return [p for d in docs for p in metric_points_from_otlp(d) if p["name"] == name]


def archive_log_records(folder: Path) -> list[dict]:
    return [
        r for d in read_jsonl(sorted(folder.glob("logs*.jsonl"))) for r in log_records_from_otlp(d)
    ]


def histogram_totals(points: list[dict]) -> collections.Counter:
    """Sum of a histogram per (model, token type) over the run, for DELTA or CUMULATIVE points."""
    latest: dict[tuple, dict] = {}
    totals: collections.Counter = collections.Counter()
    for point in points:
        key = (
            point["attributes"]["gen_ai.request.model"],
            point["attributes"]["gen_ai.token.type"],
        )
        if point.get("temporality") == "CUMULATIVE":
            series = (key, point["resource"].get("service.instance.id"), point["start_ns"],
                      tuple(sorted(point["attributes"].items())))  # fmt: skip
            if series not in latest or latest[series]["time_ns"] < point["time_ns"]:
                latest[series] = point
        else:
            totals[key] += round(point["sum"])
    for (key, *_), point in latest.items():
        totals[key] += round(point["sum"])
    return totals


def read_samples(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "llm-samples.jsonl").read_text().splitlines()]


def parse_sse(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def chat_raw(stack: Stack, message: str, model: str, session: str | None = None) -> str:
    """The event stream of one chat, as the user receives it."""
    response = requests.post(
        f"{stack.url('ASSISTANT_PORT')}/api/chat",
        json={"message": message, "model": model, "max_tokens": 64},
        headers={"X-Session-Id": session or f"stacktest-{secrets.token_hex(6)}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/event-stream")
    return response.text


def chat_from_host(
    stack: Stack, message: str, model: str, session: str | None = None
) -> list[tuple[str, dict]]:
    return parse_sse(chat_raw(stack, message, model, session))


def wait_for_chat_span(stack: Stack, trace_id: str, model: str) -> dict:
    archive = stack.telemetry / "archive"

    def found() -> dict | None:
        for span in archive_spans(archive):
            if span["trace_id"] == trace_id and span["name"] == f"chat {model}":
                return span
        return None

    return wait_until(found, timeout=30)


def files_under(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders for p in folder.rglob("*") if p.is_file())


def memory_bytes(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)\s*([kKMG]?i?B)", text.strip()).groups()
    scale = {"B": 1, "kB": 1e3, "KB": 1e3, "KiB": 1024, "MB": 1e6, "MiB": 1024**2, "GB": 1e9,
             "GiB": 1024**3}[unit]  # fmt: skip
    return float(number) * scale


# --- 1. up ---


def test_default_stack_comes_up_healthy(default_stack: Stack, measurements):
    stack = default_stack
    for service in HEALTHCHECKED:
        state = stack.inspect(service)["State"]
        assert state["Running"], f"{service}: {state}"
        assert state["Health"]["Status"] == "healthy", f"{service}: {state['Health']}"
    assert stack.inspect("otel-collector")["State"]["Running"]
    init = stack.inspect("init-dirs")["State"]
    assert (init["Status"], init["ExitCode"]) == ("exited", 0)
    # the collector runs the command line the collector's README documents, in local mode
    args = stack.inspect("otel-collector")["Args"]
    assert args == [interpolate(arg, {}) for arg in AGENT_COMMAND]
    # no second `up` needed to get the archive and reports folders
    assert (stack.telemetry / "archive").is_dir()


def uid_in_container(pid: int) -> int:
    """The real uid of `pid` inside its container's user namespace (rootful: the host uid)."""
    host_uid = int(kernel_status(pid)["Uid"].split()[0])
    for line in Path(f"/proc/{pid}/uid_map").read_text().splitlines():
        inside, outside, count = map(int, line.split())
        if outside <= host_uid < outside + count:
            return inside + host_uid - outside
    raise AssertionError(f"uid {host_uid} of pid {pid} is not mapped in its namespace")


def root_mount_options(pid: int) -> set[str]:
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == "/":
            return set(fields[5].split(","))
    raise AssertionError(f"no root mount in /proc/{pid}/mountinfo")


def granted_capabilities(host_config: dict) -> set[str]:
    """Capabilities on top of none: Docker reports CapDrop [ALL] + CapAdd, podman the drops."""

    def names(key: str) -> set[str]:
        return {c.upper().removeprefix("CAP_") for c in host_config.get(key) or []}

    dropped = DEFAULT_CAPABILITIES if "ALL" in names("CapDrop") else names("CapDrop")
    return (DEFAULT_CAPABILITIES - dropped) | names("CapAdd")


def no_new_privileges(host_config: dict) -> bool:
    options = {o.replace("=", ":") for o in host_config.get("SecurityOpt") or []}
    return bool(options & {"no-new-privileges", "no-new-privileges:true"})


def assert_runs_hardened(stack: Stack, service: str) -> dict:
    """A long-running service as the kernel sees it; returns what was checked."""
    info = stack.inspect(service)
    host = info["HostConfig"]
    assert info["State"]["Running"], f"{service}: {info['State']}"
    user = info["Config"]["User"]
    assert user and user.split(":")[0] not in ("0", "root"), f"{service} runs as {user!r}"
    pids, uids = [], set()
    for pid in process_tree(info["State"]["Pid"]):
        try:
            status, uid = kernel_status(pid), uid_in_container(pid)
        except FileNotFoundError:  # a short-lived child ended meanwhile
            continue
        pids.append(pid)
        uids.add(uid)
        assert int(status["CapEff"], 16) == 0, f"{service}: pid {pid} has capabilities"
        assert status["NoNewPrivs"] == "1", f"{service}: pid {pid} may gain privileges"
    assert pids and 0 not in uids, f"{service}: a process runs as root ({uids})"
    assert granted_capabilities(host) == set(), f"{service}: {host.get('CapAdd')}"
    assert no_new_privileges(host), host.get("SecurityOpt")
    assert host["ReadonlyRootfs"] is True
    assert "ro" in root_mount_options(pids[0]), f"{service}: / is writable"
    published = [
        binding["HostIp"]
        for bindings in (info["NetworkSettings"]["Ports"] or {}).values()
        for binding in bindings or []
    ]
    assert published == ["127.0.0.1"] * len(published), f"{service} publishes on {published}"
    assert len(published) == len(COMPOSE_SERVICES[service].get("ports", [])), service
    return {"uids": sorted(uids), "processes": len(pids), "published_ports": len(published)}


def test_every_container_runs_hardened(default_stack: Stack, measurements):
    checked = {
        service: assert_runs_hardened(default_stack, service)
        for service in (*HEALTHCHECKED, "otel-collector")
    }
    assert checked["otel-collector"]["uids"] == [999]
    # the one root container: a one-shot without network that may only open the bind mounts
    init = default_stack.inspect("init-dirs")
    assert init["Config"]["User"] == "0"
    assert init["HostConfig"]["ReadonlyRootfs"] is True
    assert init["HostConfig"]["NetworkMode"] == "none"
    assert granted_capabilities(init["HostConfig"]) == {"DAC_OVERRIDE", "FOWNER"}
    assert no_new_privileges(init["HostConfig"])
    # ... and it did open them, although they belong to someone else (tests run as root in CI)
    for folder in (default_stack.telemetry, default_stack.reports):
        assert folder.stat().st_mode & 0o777 == 0o777, folder
    measurements["hardened_containers"] = checked


def test_make_up_prints_where_to_look(default_stack: Stack):
    """scripts/stack_info.py, which `make up` runs: the real published addresses and folders."""
    stack = default_stack
    compose = stack.compose_argv()
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "stack_info.py"), *compose],
        env=stack.env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    lines = {line.strip().split("  ")[0]: line for line in result.stdout.splitlines() if line}
    assert f"http://127.0.0.1:{stack.ports['ASSISTANT_PORT']}" in lines["Chat UI"]
    assert f"http://127.0.0.1:{stack.ports['LOCUST_PORT']}" in lines["Locust UI"]
    assert f"http://127.0.0.1:{stack.ports['MOCK_LLM_PORT']}/v1" in lines["Mock LLM"]
    assert "local:" in lines["Collector mode"]
    assert f"{stack.telemetry}/archive/" in lines["Telemetry archive"]
    assert f"{stack.reports}/loadgen/" in lines["Reports"]


def test_compose_file_is_clean_without_any_env(engine):
    """`docker compose config` of the bare file, no .env and no variables: no warning."""
    result = engine.docker(
        "compose", "-f", str(ROOT / "compose.yaml"), "--env-file", "/dev/null", "config", "-q"
    )
    assert result.stderr.strip() == ""
    config = yaml.safe_load(
        engine.docker(
            "compose", "-f", str(ROOT / "compose.yaml"), "--env-file", "/dev/null", "config"
        ).stdout
    )
    services = config["services"]
    assert services["otel-collector"]["image"] == "quay.io/signalfx/splunk-otel-collector:0.158.0"
    for name, service in services.items():
        assert service.get("mem_limit"), f"{name} has no memory limit"
        assert service["logging"]["driver"] == "json-file"
        for port in service.get("ports", []):
            assert port["host_ip"] == "127.0.0.1", f"{name} publishes {port}"
        if name != "init-dirs":
            assert service["restart"] == "unless-stopped", name
        # the shared hardening (a YAML merge key) as Compose resolves it
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert service["security_opt"] == ["no-new-privileges:true"], name


# --- 2. the demo load started by `up` ---


def test_demo_load_finishes_without_errors(default_stack: Stack, engine, measurements):
    summary_path = default_stack.reports / "loadgen" / "llm-summary.json"
    peak: dict[str, float] = {}

    def sample_memory() -> bool:
        # podman's own CLI: the Docker CLI's `stats` gets no numbers from podman's compat API
        result = engine.podman(
            "stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}", check=False
        )
        for line in result.stdout.splitlines():
            name, _, usage = line.partition("\t")
            if name.startswith(default_stack.project) and "/" in usage:
                service = name.removeprefix(default_stack.project + "-").rsplit("-", 1)[0]
                peak[service] = max(peak.get(service, 0), memory_bytes(usage.split("/")[0]))
        return summary_path.exists()

    wait_until(sample_memory, timeout=300, interval=2)
    summary = json.loads(summary_path.read_text())
    overall = summary["overall"]
    assert overall["requests"] > 0
    assert (overall["failed"], overall["errors_by_kind"]) == (0, {})
    assert summary["gate"]["exit_code"] == 0

    total = sum(peak.values())
    measurements["demo_requests"] = overall["requests"]
    measurements["memory_peak_mib"] = {k: round(v / 2**20, 1) for k, v in sorted(peak.items())}
    measurements["memory_total_mib"] = round(total / 2**20, 1)
    assert {"assistant", "mock-llm", "otel-collector", "loadgen"} <= set(peak)
    assert total < MEMORY_BUDGET_BYTES, measurements["memory_peak_mib"]


# --- 3. a bounded, seeded load run through the loadgen container ---


@pytest.fixture(scope="module")
def load_run(default_stack: Stack, measurements) -> dict:
    run_id = f"stacktest-{secrets.token_hex(4)}"
    name = f"{default_stack.project}-loadrun"
    settings = {
        "LOADGEN_HEADLESS": "true",
        "LOADGEN_RUN_ID": run_id,
        "LOADGEN_SEED": "20240611",
        "LOADGEN_USERS": str(LOAD_USERS),
        "LOADGEN_SPAWN_RATE": "4",
        "LOADGEN_REQUESTS_PER_USER": str(LOAD_REQUESTS_PER_USER),
        "LOADGEN_WAIT_SECONDS": "0.1-0.5",
        "LOADGEN_FEEDBACK_RATE": "0.5",
        "LOADGEN_MAX_ERROR_RATE": "0",
        "LOADGEN_REPORT_DIR": f"/app/reports/{run_id}",
    }
    args = ["run", "--no-deps", "--name", name]
    for key, value in settings.items():
        args += ["-e", f"{key}={value}"]
    started = time.monotonic()
    # `run --rm` loses the exit code on this engine: run, read the code, then remove
    result = default_stack.compose(*args, "loadgen", check=False, timeout=600)
    measurements["load_run_s"] = round(time.monotonic() - started, 2)
    default_stack.engine.docker("rm", "-f", name, check=False)
    folder = default_stack.reports / run_id
    return {
        "run_id": run_id,
        "exit_code": result.returncode,
        "output": result.stdout[-3000:] + result.stderr[-3000:],
        "full_output": result.stdout + result.stderr,
        "folder": folder,
    }


def test_seeded_load_run_has_zero_errors(load_run):
    assert load_run["exit_code"] == 0, load_run["output"]
    summary = json.loads((load_run["folder"] / "llm-summary.json").read_text())
    overall = summary["overall"]
    assert overall["requests"] == LOAD_USERS * LOAD_REQUESTS_PER_USER
    assert (overall["failed"], overall["errors_by_kind"]) == (0, {})
    assert summary["metadata"]["run_id"] == load_run["run_id"]
    assert len(read_samples(load_run["folder"])) == overall["requests"]


# --- 4. the archive reconciles with the run ---


def test_archive_reconciles_with_the_load_run(default_stack: Stack, load_run):
    archive = default_stack.telemetry / "archive"
    samples = read_samples(load_run["folder"])
    summary = json.loads((load_run["folder"] / "llm-summary.json").read_text())
    wanted = {s["response_id"] for s in samples}
    rated = {s["response_id"]: s["feedback_score"] for s in samples if s["feedback_score"]}
    assert wanted and rated, "the run should have chats and some feedback"

    def chat_spans() -> dict[str, dict] | None:
        found = {
            s["attributes"]["assistant.response_id"]: s
            for s in archive_spans(archive)
            if s["name"].startswith("chat ")
            and s["attributes"].get("assistant.response_id") in wanted
        }
        return found if len(found) == len(wanted) else None

    chats = wait_until(chat_spans, timeout=60, interval=1)  # one model call of each request
    spans = archive_spans(archive)
    # the stack runs the shop agent: a request is one invoke_agent span (its usage is the sum of
    # its model calls'); without the agent the chat span is the request
    turns = {
        s["attributes"]["assistant.response_id"]: s
        for s in spans
        if s["name"].startswith("invoke_agent ")
        and s["attributes"].get("assistant.response_id") in wanted
    }
    assert not turns or set(turns) == wanted
    requests_of = turns or chats
    servers = {
        s["trace_id"]: s
        for s in spans
        if s["kind"] == "SERVER" and s["attributes"].get("http.route") == "/api/chat"
    }
    for sample in samples:
        chat = chats[sample["response_id"]]
        assert chat["name"] == f"chat {sample['model']}"
        assert chat["kind"] == "CLIENT"
        attributes = requests_of[sample["response_id"]]["attributes"]
        assert attributes["gen_ai.request.model"] == sample["model"]
        assert attributes["gen_ai.usage.input_tokens"] == sample["input_tokens"]
        assert attributes["gen_ai.usage.output_tokens"] == sample["output_tokens"]
        assert attributes["gen_ai.conversation.id"].startswith(f"lg-{load_run['run_id']}-")
        server = servers[chat["trace_id"]]
        assert server["attributes"]["http.status_code"] == 200
        for span in (chat, server):  # the load generator's baggage marks its traffic
            assert span["attributes"]["loadgen.run_id"] == load_run["run_id"]
            assert span["attributes"]["synthetic_request"] == "true"
        assert chat["parent_span_id"] and chat["resource"]["service.name"] == "assistant"
        assert chat["resource"]["deployment.environment.name"] == "llm-lab"

    # the run's spans, counted per model, are exactly the summary's numbers
    per_model = collections.defaultdict(lambda: [0, 0, 0])
    for request in requests_of.values():
        row = per_model[request["attributes"]["gen_ai.request.model"]]
        row[0] += 1
        row[1] += request["attributes"]["gen_ai.usage.input_tokens"]
        row[2] += request["attributes"]["gen_ai.usage.output_tokens"]
    expected = {
        model: [m["requests"], m["input_tokens"]["total"], m["output_tokens"]["total"]]
        for model, m in summary["models"].items()
    }
    assert dict(per_model) == expected

    # one feedback event per rating, in the rated chat's trace, with the score
    trace_of = {rid: chat["trace_id"] for rid, chat in chats.items()}

    def feedback_events() -> dict[str, list] | None:
        found = collections.defaultdict(list)
        for record in archive_log_records(archive):
            if (
                record["event_name"] == "gen_ai.evaluation.result"
                and record["attributes"].get("gen_ai.evaluation.name") == "user_satisfaction"
            ):
                found[record["trace_id"]].append(record)
        return found if all(trace_of[rid] in found for rid in rated) else None

    events = wait_until(feedback_events, timeout=60, interval=1)
    for rid, score in rated.items():
        (event,) = events[trace_of[rid]]
        assert event["attributes"]["gen_ai.evaluation.name"] == "user_satisfaction"
        assert event["attributes"]["assistant.response_id"] == rid
        assert event["attributes"]["gen_ai.evaluation.score.value"] == score
        assert (
            event["attributes"]["gen_ai.request.model"]
            == chats[rid]["attributes"]["gen_ai.request.model"]
        )
    assert len(rated) == summary["overall"]["feedback"]["count"]

    # GenAI metrics by model: every token the spans counted is in the token-usage histogram
    def totals() -> tuple[collections.Counter, collections.Counter]:
        span_totals: collections.Counter = collections.Counter()
        for span in archive_spans(archive):
            if span["name"].startswith("chat "):
                model = span["attributes"]["gen_ai.request.model"]
                for kind in ("input", "output"):
                    tokens = span["attributes"].get(f"gen_ai.usage.{kind}_tokens", 0)
                    span_totals[(model, kind)] += tokens
        points = archive_metric_points(archive, "gen_ai.client.token.usage")
        return span_totals, histogram_totals(points)

    try:
        wait_until(lambda: operator.eq(*totals()), timeout=90, interval=2)
    except TimeoutError:
        span_totals, metric_totals = totals()
        assert metric_totals == span_totals, "token usage: metrics (left) vs spans (right)"
    durations = archive_metric_points(archive, "gen_ai.client.operation.duration")
    assert {p["attributes"]["gen_ai.request.model"] for p in durations} >= set(expected)


def test_every_request_agrees_across_the_layers_in_the_stack(default_stack: Stack, load_run):
    """The reconciliation of tests/reconciliation on the containers: for every request of the load
    run, the mock's ground truth (its admin API on the published port), the chat span and the
    loadgen container's client figures agree (tests/harness/reconcile.py has the tolerances).
    Per model the span TTFT p50 is checked against the mock's scheduled p50: the shipped profiles'
    jitter (about 16 %) over a few requests per model is too wide to compare with the profile
    itself. The histograms are checked at process level: the stack's archive also holds the demo
    load's points, which a delta interval can mix with the run's."""
    samples = [s for s in read_samples(load_run["folder"]) if s["error_kind"] is None]
    mock_log = requests.get(
        f"{default_stack.url('MOCK_LLM_PORT')}/admin/requests", timeout=10
    ).json()["requests"]
    traces = {s["trace_id"] for s in samples}

    def joined() -> Reconciliation | None:
        spans = archive_spans(default_stack.telemetry / "archive")
        found = {s["trace_id"] for s in spans if s["name"].startswith("chat ")}
        return join(samples, spans, mock_log) if traces <= found else None

    result = wait_until(joined, timeout=60, interval=1)
    check_models(result, points=None, profiles=None)
    print("\n" + markdown_table(result.table))
    assert len(result.joined) == len(samples) == LOAD_USERS * LOAD_REQUESTS_PER_USER
    assert result.violations == [], "\n".join(result.violations[:40])


# --- 5. from the host: a chat and the UI ---


def test_chat_through_the_published_port(default_stack: Stack):
    events = chat_from_host(default_stack, "What does a collector do?", "gpt-4o")
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "start" and kinds[-1] == "done" and "delta" in kinds
    start, done = events[0][1], events[-1][1]
    assert start["model"] == "gpt-4o" and re.fullmatch(r"[0-9a-f]{32}", start["trace_id"])
    assert done["usage"]["output_tokens"] > 0
    archive = default_stack.telemetry / "archive"
    wait_until(
        lambda: any(
            s["trace_id"] == start["trace_id"] and s["name"] == "chat gpt-4o"
            for s in archive_spans(archive)
        ),
        timeout=30,
    )


@pytest.mark.browser
def test_ui_loads_in_headless_chromium(default_stack: Stack):
    with chromium_browser() as browser:
        page, problems = open_chat_page(browser, default_stack.url("ASSISTANT_PORT"))
        ask(page, "hello from the stack test")
        page.wait_for_selector(".msg.assistant .metrics", timeout=30000)
        assert len(page.text_content(".msg.assistant .text")) > 0
        assert problems == []


def test_error_answers_are_readable_and_name_no_key(default_stack: Stack, leak_texts):
    stack = default_stack
    mock = stack.url("MOCK_LLM_PORT")
    # the key is really used: the mock refuses calls without it, or with another one
    assert requests.get(f"{mock}/v1/models", timeout=10).status_code == 401
    wrong = f"sk-wrong-{secrets.token_hex(8)}"
    refused = requests.get(
        f"{mock}/v1/models", headers={"Authorization": f"Bearer {wrong}"}, timeout=10
    )
    assert refused.status_code == 401 and wrong not in refused.text
    accepted = requests.get(
        f"{mock}/v1/models", headers={"Authorization": f"Bearer {OPENAI_KEY}"}, timeout=10
    )
    assert accepted.status_code == 200
    # upstream refuses the key (401), then fails (500): the user reads a sentence, never a key
    expected = {"401": "upstream_auth", "500": "upstream_error"}
    try:
        for fault, error_type in expected.items():
            faults = {"models": {"gpt-4.1-mini": {fault: 1.0}}}
            requests.put(f"{mock}/admin/faults", json=faults, timeout=10).raise_for_status()
            text = chat_raw(stack, "Tell me about keys", "gpt-4.1-mini")
            leak_texts[f"chat answer with upstream fault {fault}"] = text
            kind, error = parse_sse(text)[-1]
            assert kind == "error" and error["type"] == error_type, text
            assert re.fullmatch(r"[A-Z][\w ,.'-]{10,120}[.!]", error["message"]), error
    finally:
        requests.put(f"{mock}/admin/faults", json={}, timeout=10).raise_for_status()
    # a request the assistant rejects: a JSON error body
    rejected = requests.post(
        f"{stack.url('ASSISTANT_PORT')}/api/chat",
        json={"message": "hi", "model": "no-such-model"},
        headers={"X-Session-Id": f"stacktest-{secrets.token_hex(6)}"},
        timeout=30,
    )
    assert 400 <= rejected.status_code < 500 and rejected.json()["error"]["message"]
    leak_texts["rejected request"] = rejected.text


def test_prompt_text_stays_out_of_the_archive_by_default(default_stack: Stack):
    start = chat_from_host(default_stack, f"{UNCAPTURED_PROMPT} what is a span?", "gpt-4o")[0][1]
    span = wait_for_chat_span(default_stack, start["trace_id"], "gpt-4o")
    assert not any(key.startswith("gen_ai.input") for key in span["attributes"]), span
    for path in files_under(default_stack.telemetry):
        assert UNCAPTURED_PROMPT.encode() not in path.read_bytes(), path
    # (the last test looks again, in the logs and reports too, once everything is flushed)


# --- 6. Splunk mode against a fake ingest ---


def splunk_env(stack: Stack) -> dict[str, str]:
    return {
        "SPLUNK_ACCESS_TOKEN": stack.fake_token,
        "FAKE_SPLUNK_TOKEN": stack.fake_token,
        "SPLUNK_REALM": "us0",
        "SPLUNK_INGEST_URL": "http://fake-splunk:9943",
        "SPLUNK_API_URL": "http://fake-splunk:9943",
        # logs to the fake's HEC, with a token of their own
        "SPLUNK_HEC_URL": "http://fake-splunk:9943/services/collector",
        "SPLUNK_HEC_TOKEN": HEC_TOKEN,
        "FAKE_SPLUNK_HEC_TOKEN": HEC_TOKEN,
        # prompts and answers on the chat spans from here on (this `up` recreates the assistant)
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_ONLY",
        # the demo load already ran; the modes below need only a few chats
        "LOADGEN_AUTOSTART": "false",
    }


def assert_fake_ingest_receives(stack: Stack, fake: FakeSplunkClient, model: str) -> None:
    start = chat_from_host(stack, f"Hello {model}", model)[0][1]

    def arrived() -> bool:
        spans = fake.spans()
        return any(
            s["trace_id"] == start["trace_id"] and s["name"] == f"chat {model}" for s in spans
        )

    fake.wait_until(arrived, timeout=60)

    def genai_metric_names() -> set[str]:
        # the chat's histograms, sent as OTLP by the signalfx exporter (send_otlp_histograms)
        names = {p["name"] for p in fake.otlp_metric_points()}
        names |= {p["metric"] for p in fake.datapoints()}
        return {name for name in names if name.startswith("gen_ai.client.")}

    # both histograms (they may come in different exports: wait for the two, not the first)
    wanted = {"gen_ai.client.token.usage", "gen_ai.client.operation.duration"}
    fake.wait_until(lambda: wanted <= genai_metric_names(), timeout=60)
    traces = fake.recorded("traces")
    metrics = fake.recorded("otlp_metrics") + fake.recorded("datapoints")
    for record in traces + metrics:
        assert record["headers"]["x-sf-token"] == stack.fake_token
        assert record["status"] == 200
    assert {r["path"] for r in traces} == {"/v2/trace/otlp"}
    assert {r["path"] for r in metrics} == {"/v2/datapoint"}


def test_splunk_mode_sends_to_the_ingest(default_stack: Stack, measurements):
    stack = default_stack
    stack.extra_files = [FAKE_SPLUNK_OVERRIDE]
    measurements["up_wait_splunk_s"] = round(stack.up(splunk_env(stack)), 2)
    args = stack.inspect("otel-collector")["Args"]
    assert "--config=/etc/otelcol/modes/splunk-on.yaml" in args
    fake = FakeSplunkClient(stack.url("FAKE_SPLUNK_PORT"))
    assert_fake_ingest_receives(stack, fake, "gpt-4o-mini")


def upstream_bodies(fake: FakeSplunkClient) -> str:
    """Everything the fake ingest received but the headers (where the tokens belong)."""
    return json.dumps([{k: v for k, v in r.items() if k != "headers"} for r in fake.requests()])


def test_splunk_mode_sends_logs_to_the_hec_with_its_token(default_stack: Stack, leak_texts):
    """A log record sent to the agent's published OTLP/HTTP port, and the assistant's feedback
    event (it has a body: the splunk_hec exporter drops body-less records), arrive at the HEC."""
    stack = default_stack
    fake = FakeSplunkClient(stack.url("FAKE_SPLUNK_PORT"))
    probe = f"hec-probe-{secrets.token_hex(6)}"
    record = {"timeUnixNano": str(time.time_ns()), "body": {"stringValue": probe}}
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "stacktest"}}]}
    document = {"resourceLogs": [{"resource": resource, "scopeLogs": [{"logRecords": [record]}]}]}
    response = requests.post(f"{stack.url('OTLP_HTTP_PORT')}/v1/logs", json=document, timeout=30)
    assert response.status_code == 200, response.text
    (event,) = fake.wait_until(
        lambda: [e for e in fake.hec_events() if e.get("event") == probe], timeout=60
    )
    assert event["fields"]["service.name"] == "stacktest"
    assert event["fields"]["deployment.environment.name"] == "llm-lab"
    hec = fake.recorded("hec")
    assert {r["path"] for r in hec} == {"/services/collector"}
    for request in hec:
        assert request["headers"]["authorization"] == f"Splunk {HEC_TOKEN}"
        assert request["status"] == 200
    session = f"stacktest-{secrets.token_hex(6)}"
    start = dict(chat_from_host(stack, "how do I return a T-shirt?", "gpt-4.1-mini", session))
    feedback = requests.post(
        f"{stack.url('ASSISTANT_PORT')}/api/feedback",
        json={"response_id": start["start"]["response_id"], "score": 4},
        headers={"X-Session-Id": session},
        timeout=30,
    )
    assert feedback.status_code == 204, feedback.text
    (rating,) = fake.wait_until(
        lambda: [
            e
            for e in fake.hec_events()
            if e.get("event") == "user_satisfaction 4/5 for gpt-4.1-mini"
        ],
        timeout=60,
    )
    assert rating["fields"]["service.name"] == "assistant"
    leak_texts["received by the fake ingest (splunk mode)"] = upstream_bodies(fake)


def test_content_capture_span_only_records_the_prompt(default_stack: Stack):
    """OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=SPAN_ONLY (set with Splunk mode)."""
    probe = f"captured-probe-{secrets.token_hex(8)}"
    start = chat_from_host(default_stack, f"{probe} what is a trace?", "gpt-4o")[0][1]
    span = wait_for_chat_span(default_stack, start["trace_id"], "gpt-4o")
    messages = json.loads(span["attributes"]["gen_ai.input.messages"])
    assert any(probe in json.dumps(message) for message in messages), messages
    assert span["attributes"]["gen_ai.output.messages"]


# --- 7. gateway profile ---


def test_gateway_profile_forwards_agent_to_gateway(default_stack: Stack, measurements, leak_texts):
    stack = default_stack
    stack.extra_files = [FAKE_SPLUNK_OVERRIDE]
    stack.profiles = ["gateway"]
    env = {**splunk_env(stack), "SPLUNK_GATEWAY_URL": "gateway"}
    measurements["up_wait_gateway_s"] = round(stack.up(env), 2)
    agent_args = stack.inspect("otel-collector")["Args"]
    assert "--config=/etc/otelcol/modes/via-gateway-on.yaml" in agent_args
    gateway = stack.inspect("gateway")
    assert gateway["State"]["Running"]
    assert "--config=/etc/otelcol/modes/splunk-on.yaml" in gateway["Args"]
    fake = FakeSplunkClient(stack.url("FAKE_SPLUNK_PORT"))
    fake.reset()
    # The agent's upstream pipelines now end at the gateway (no route of its own to the ingest):
    # whatever reaches the fake went agent -> gateway -> ingest.
    assert_fake_ingest_receives(stack, fake, "o3-mini")
    measurements["gateway_hardened"] = assert_runs_hardened(stack, "gateway")
    leak_texts["received by the fake ingest (gateway mode)"] = upstream_bodies(fake)


# --- 8. no secret anywhere ---


def test_no_secret_in_logs_archive_reports_or_answers(
    default_stack: Stack, load_run, leak_texts, measurements
):
    stack = default_stack
    leaks = {
        "SPLUNK_ACCESS_TOKEN": stack.fake_token,
        "SPLUNK_HEC_TOKEN": HEC_TOKEN,
        "OPENAI_API_KEY": OPENAI_KEY,
        "ASSISTANT_SECRET_KEY": COOKIE_KEY,
        "prompt sent with content capture off": UNCAPTURED_PROMPT,
    }
    # the logs of every container of every mode (an `up` that replaced containers saved theirs)
    logs = [*stack.log_snapshots, stack.all_logs()]
    texts = {f"compose logs, mode {i + 1}": text for i, text in enumerate(logs)}
    texts["loadgen run output"] = load_run["full_output"]
    texts.update(leak_texts)
    found = [
        (name, label) for label, text in texts.items() for name, v in leaks.items() if v in text
    ]
    files = files_under(stack.telemetry, stack.reports)
    file_bytes = 0
    for path in files:
        data = path.read_bytes()
        file_bytes += len(data)
        found += [(name, str(path)) for name, value in leaks.items() if value.encode() in data]
    scanned = {
        "compose_log_snapshots": len(logs),
        "compose_log_bytes": sum(len(text.encode()) for text in logs),
        "compose_log_lines": sum(text.count("\n") for text in logs),
        "other_text_bytes": sum(
            len(t.encode()) for label, t in texts.items() if "logs" not in label
        ),
        "files": len(files),
        "file_bytes": file_bytes,
        "secrets": len(leaks) - 1,
        "found": len(found),
    }
    measurements["leak_scan"] = scanned
    assert found == [], found
    # the scan looked at real material: every mode logged, the load and archive are there
    assert len(logs) == 3 and all("assistant-1" in text for text in logs)
    assert scanned["file_bytes"] > 100_000 and scanned["other_text_bytes"] > 1_000


# --- 9. teardown ---


def test_teardown_removes_everything_and_ends_only_our_processes(default_stack: Stack, engine):
    stack = default_stack
    project = stack.project
    images_before = set(engine.docker("images", "--format", "{{.Repository}}").stdout.split())
    assert any(project in image for image in images_before)
    stack.down()
    assert stack.container_ids() == []
    networks = engine.docker("network", "ls", "--format", "{{.Name}}").stdout.split()
    assert not [n for n in networks if n.startswith(project)]
    volumes = engine.docker("volume", "ls", "--format", "{{.Name}}").stdout.split()
    assert not [v for v in volumes if v.startswith(project)]
    images = engine.docker("images", "--format", "{{.Repository}}").stdout.split()
    assert KEEP_IMAGES or not [i for i in images if project in i]

    pids = engine.saved_pids()
    assert pids, "the engine saved the PIDs it started"
    engine.stop()
    deadline = time.monotonic() + 15
    while any(process_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [pid for pid in pids if process_alive(pid)] == []
    assert not (engine.state / "podman.sock").exists()
