"""Start the mock LLM service as a real process for tests (other areas use it too)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import requests

from harness.prereq import ROOT, service_python
from harness.procs import ServiceProcess, free_port

API_KEY = "sk-mock"

# What each upstream fault of the mock becomes once it ends a chat in the assistant:
# (the type of the user's `error` event, the chat span's error.type).
FAULT_OUTCOMES = {
    "429": ("rate_limited", "openai.RateLimitError"),
    "500": ("upstream_error", "openai.InternalServerError"),
    "503": ("upstream_error", "openai.InternalServerError"),
    "midstream_error": ("upstream_error", "openai.APIError"),
    "disconnect": ("upstream_disconnected", "openai.APIConnectionError"),
    "truncate": ("upstream_disconnected", "upstream_incomplete"),
    "stall": ("timeout", "openai.APITimeoutError"),
}


@dataclass
class MockLLM:
    url: str
    base_url: str
    api_key: str
    process: ServiceProcess

    def set_faults(self, faults: Mapping) -> dict:
        """Replace the runtime fault rates, e.g. {"rates": {"429": 1.0}} (see the README)."""
        response = requests.put(f"{self.url}/admin/faults", json=dict(faults), timeout=10)
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        """Clear runtime faults, rate-limit buckets and request history."""
        requests.post(f"{self.url}/admin/reset", timeout=10).raise_for_status()

    def requests_log(self) -> list[dict]:
        return requests.get(f"{self.url}/admin/requests", timeout=10).json()["requests"]

    def request_entry(self, request_id: str) -> dict:
        """The request-log entry (ground truth: queue wait, scheduled TTFT, plan, tokens sent)
        of one answer, by completion id (the body's `id`) or request id (`x-request-id`)."""
        response = requests.get(f"{self.url}/admin/requests/{request_id}", timeout=10)
        response.raise_for_status()
        return response.json()

    def metric(self, name: str, **labels: str) -> float:
        """One sample of /metrics (0 when the series does not exist yet)."""
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        prefix = f"{name}{{{wanted}}} " if labels else f"{name} "
        for line in requests.get(f"{self.url}/metrics", timeout=10).text.splitlines():
            if line.startswith(prefix):
                return float(line[len(prefix) :])
        return 0.0

    def active_streams(self) -> float:
        """Answers being streamed right now (mock_llm_active_streams summed over the models)."""
        text = requests.get(f"{self.url}/metrics", timeout=10).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("mock_llm_active_streams{")
        )


@contextlib.contextmanager
def start_mock_llm(
    log_dir: Path, env: Mapping[str, str] | None = None, profiles: str | None = None
) -> Iterator[MockLLM]:
    """Run `python -m mock_llm` from its own venv on a free port; stop it on exit.

    The API key is `sk-mock` unless `env` sets MOCK_LLM_API_KEY (an empty value disables it).
    `profiles`: a profiles YAML document to serve instead of the shipped one.
    """
    port = free_port()
    if profiles is not None:
        path = Path(log_dir) / f"profiles-{port}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(profiles, encoding="utf-8")
        env = {**(env or {}), "MOCK_LLM_PROFILES": str(path)}
    full_env = {
        "MOCK_LLM_HOST": "127.0.0.1",
        "MOCK_LLM_PORT": str(port),
        "MOCK_LLM_API_KEY": API_KEY,
        "PYTHONPATH": str(ROOT / "services" / "mock-llm" / "src"),
        **(env or {}),
    }
    process = ServiceProcess(
        f"mock-llm-{port}", [service_python("mock-llm"), "-m", "mock_llm"], Path(log_dir), full_env
    )
    url = f"http://127.0.0.1:{port}"
    with process:
        process.wait_http(f"{url}/healthz")
        yield MockLLM(url, f"{url}/v1", full_env["MOCK_LLM_API_KEY"] or API_KEY, process)
