"""Prometheus metrics: the service's telemetry names, defined once, and a tiny text exposition."""

from __future__ import annotations

import threading
from collections import defaultdict

REQUESTS_TOTAL = "mock_llm_requests_total"
ACTIVE_STREAMS = "mock_llm_active_streams"
QUEUED_REQUESTS = "mock_llm_queued_requests"
PROMPT_TOKENS_TOTAL = "mock_llm_prompt_tokens_total"
COMPLETION_TOKENS_TOTAL = "mock_llm_completion_tokens_total"
FAULTS_TOTAL = "mock_llm_faults_total"

_HELP = {
    REQUESTS_TOTAL: ("counter", "Chat completion requests answered, by model and HTTP status."),
    ACTIVE_STREAMS: ("gauge", "Answers (streaming or not) being generated now, by model."),
    QUEUED_REQUESTS: ("gauge", "Requests waiting for a concurrency slot, by model."),
    PROMPT_TOKENS_TOTAL: ("counter", "Prompt tokens of admitted requests, by model."),
    COMPLETION_TOKENS_TOTAL: ("counter", "Content chunks (completion tokens) sent, by model."),
    FAULTS_TOTAL: ("counter", "Faults injected, by model and kind."),
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    """Counters and gauges keyed by label tuples; safe across greenlets and threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)

    def add(self, name: str, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            series = self._values[name]
            series[key] = series.get(key, 0.0) + amount

    def set(self, name: str, value: float, **labels: str) -> None:
        with self._lock:
            self._values[name][tuple(sorted(labels.items()))] = value

    def value(self, name: str, **labels: str) -> float:
        with self._lock:
            return self._values[name].get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            for name, (kind, text) in _HELP.items():
                lines.append(f"# HELP {name} {text}")
                lines.append(f"# TYPE {name} {kind}")
                for key, value in sorted(self._values.get(name, {}).items()):
                    labels = ",".join(f'{k}="{_escape(v)}"' for k, v in key)
                    number = int(value) if value == int(value) else value
                    lines.append(f"{name}{{{labels}}} {number}" if labels else f"{name} {number}")
        return "\n".join(lines) + "\n"
