"""Everything mutable the service keeps, in one object stored on the Flask app."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

from flask import Flask, current_app

from mock_llm.config import Settings
from mock_llm.faults import FaultState
from mock_llm.limits import ConcurrencyGate, RateLimiter
from mock_llm.metrics import Metrics
from mock_llm.profiles import Profiles

EXTENSION = "mock_llm"
MAX_TRACKED_REQUESTS = 100_000


@dataclass
class ServiceState:
    settings: Settings
    profiles: Profiles
    faults: FaultState = field(default_factory=FaultState)
    limiter: RateLimiter = field(default_factory=RateLimiter)
    metrics: Metrics = field(default_factory=Metrics)
    gates: dict[str, ConcurrencyGate] = field(default_factory=dict)
    recent: deque = field(init=False)  # the request log: MOCK_LLM_REQUEST_LOG_SIZE entries
    _seen: dict[bytes, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    started: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        self.recent = deque(maxlen=self.settings.request_log_size)
        for name, profile in self.profiles.models.items():
            self.gates[name] = ConcurrencyGate(profile.max_concurrency, profile.queue_limit)

    def occurrence(self, digest: bytes) -> int:
        """How many times this exact request was seen before (so retries draw new faults)."""
        with self._lock:
            if len(self._seen) >= MAX_TRACKED_REQUESTS:
                self._seen.clear()
            count = self._seen.get(digest, 0)
            self._seen[digest] = count + 1
            return count

    def record(self, entry: dict) -> None:
        """Append to the request log. An admitted answer keeps the same dict and fills in what it
        actually sent when it ends (chat.Answer), so readers see it update in place."""
        self.recent.append(entry)

    def find(self, request_or_completion_id: str) -> dict | None:
        """The newest log entry with this completion id (chatcmpl-...) or request id (req_...)."""
        key = "completion_id" if request_or_completion_id.startswith("chatcmpl-") else "request_id"
        for entry in reversed(self.recent):
            if entry.get(key) == request_or_completion_id:
                return entry
        return None

    def for_trace(self, trace_id: str) -> list[dict]:
        """The log entries of one caller trace (its traceparent's trace id), oldest first."""
        return [entry for entry in self.recent if entry["trace_id"] == trace_id]

    def reset(self) -> None:
        """Back to the start-up state: no admin faults, full buckets, no history."""
        self.faults.replace(type(self.faults.runtime).empty())
        self.limiter.reset()
        with self._lock:
            self._seen.clear()
        self.recent.clear()


def install(app: Flask, state: ServiceState) -> None:
    app.extensions[EXTENSION] = state


def get_state() -> ServiceState:
    return current_app.extensions[EXTENSION]
