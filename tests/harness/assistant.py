"""Start the assistant service (gunicorn, from its own venv) as a real process for tests."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import requests

from harness.prereq import ROOT, service_python
from harness.procs import ServiceProcess, child_pids, free_port

TEST_SECRET_KEY = "test-secret-key-not-for-production"


@dataclass
class Assistant:
    url: str
    port: int
    process: ServiceProcess  # the gunicorn master (its workers share its process group)


def worker_pids(assistant: Assistant) -> list[int]:
    """The gunicorn worker processes of a running assistant."""
    return child_pids(assistant.process.pid)


def replaced_workers(log: str) -> int:
    """How many workers were booted beyond the configured count (a worker died and was
    replaced), from the assistant's log: its start-up line names the count."""
    configured = re.search(r"(\d+) worker\(s\) x \d+ threads", log)
    assert configured, "the assistant's start-up line is missing from its log"
    return log.count("Booting worker") - int(configured.group(1))


def assistant_env(
    port: int, llm_base_url: str, otlp: str | None, env: Mapping[str, str] | None
) -> dict[str, str]:
    """The environment of a test assistant: loopback, the given LLM, fast telemetry export."""
    full = {
        "ASSISTANT_HOST": "127.0.0.1",
        "ASSISTANT_PORT": str(port),
        "ASSISTANT_SECRET_KEY": TEST_SECRET_KEY,
        "ASSISTANT_THREADS": "48",
        "OPENAI_BASE_URL": llm_base_url,
        "OPENAI_API_KEY": "sk-mock",
        "PYTHONPATH": str(ROOT / "services" / "assistant" / "src"),
        # never let a developer's Splunk settings send test telemetry anywhere
        "SPLUNK_REALM": "",
        "SPLUNK_ACCESS_TOKEN": "",
        "SPLUNK_PROFILER_ENABLED": "false",
        # evaluations (a judge call after each answer) only where a test turns them on: most test
        # mocks serve no judge model, and the judge's traffic would change what they count
        "ASSISTANT_EVALUATIONS": "false",
    }
    if otlp:
        endpoint = otlp if otlp.startswith("http") else f"http://{otlp}"
        full.update(
            OTEL_SDK_DISABLED="false",
            OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf" if otlp.startswith("http") else "grpc",
            OTEL_SERVICE_NAME="assistant",
            OTEL_METRIC_EXPORT_INTERVAL="1000",
            OTEL_BSP_SCHEDULE_DELAY="200",
            OTEL_BLRP_SCHEDULE_DELAY="200",
        )
    else:
        full["OTEL_SDK_DISABLED"] = "true"
    full.update(env or {})
    return full


@contextlib.contextmanager
def start_assistant(
    log_dir: Path,
    llm_base_url: str,
    otlp: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[Assistant]:
    """Run `python -m assistant` (gunicorn + gthread) on a free port; stop it on exit.

    `otlp`: the collector's OTLP endpoint, "http://127.0.0.1:PORT" (OTLP/HTTP) or
    "127.0.0.1:PORT" (gRPC); None disables telemetry (OTEL_SDK_DISABLED=true).
    """
    port = free_port()
    process = ServiceProcess(
        f"assistant-{port}",
        [service_python("assistant"), "-m", "assistant"],
        Path(log_dir),
        assistant_env(port, llm_base_url, otlp, env),
    )
    url = f"http://127.0.0.1:{port}"
    with process:
        process.wait_http(f"{url}/healthz")
        yield Assistant(url, port, process)


@dataclass
class ChatResult:
    """One `POST /api/chat` as a client saw it."""

    status: int
    events: list[tuple[str, dict]]
    raw: str
    headers: dict

    def first(self, kind: str) -> dict | None:
        return next((data for event, data in self.events if event == kind), None)

    @property
    def text(self) -> str:
        return "".join(data["text"] for event, data in self.events if event == "delta")

    @property
    def deltas(self) -> int:
        return sum(1 for event, _ in self.events if event == "delta")


def parse_sse(text: str) -> list[tuple[str, dict]]:
    """(event, data) pairs of a complete SSE body; every data line must be one JSON document."""
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        lines = block.split("\n")
        assert len(lines) == 2, f"malformed SSE event: {block!r}"
        assert lines[0].startswith("event: ") and lines[1].startswith("data: "), block
        events.append((lines[0][7:], json.loads(lines[1][6:])))
    return events


def chat(
    url: str,
    message: str,
    session_id: str | None = None,
    timeout: float = 60.0,
    **fields,
) -> ChatResult:
    headers = {"X-Session-Id": session_id} if session_id else {}
    response = requests.post(
        f"{url}/api/chat", json={"message": message, **fields}, headers=headers, timeout=timeout
    )
    raw = response.text
    is_sse = response.headers.get("Content-Type", "").startswith("text/event-stream")
    events = parse_sse(raw) if is_sse else []
    return ChatResult(response.status_code, events, raw, dict(response.headers))
