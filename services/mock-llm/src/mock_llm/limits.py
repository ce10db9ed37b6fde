"""Per-model admission: RPM/TPM token buckets and a concurrency gate with a bounded queue."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from mock_llm.profiles import ModelProfile


def format_reset(seconds: float) -> str:
    """OpenAI's x-ratelimit-reset-* style: 120ms, 1s, 6m0s."""
    if seconds < 1:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    seconds = math.ceil(seconds)
    if seconds < 60:
        return f"{seconds}s"
    return f"{seconds // 60}m{seconds % 60}s"


class _Bucket:
    """Continuously refilled bucket: `capacity` per minute."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.level = float(capacity)
        self.updated = time.monotonic()

    def refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.level = min(self.capacity, self.level + elapsed * self.capacity / 60.0)
        self.updated = now

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` is available (0 if it already is)."""
        missing = amount - self.level
        return 0.0 if missing <= 0 else missing * 60.0 / self.capacity


@dataclass(frozen=True)
class Admission:
    allowed: bool
    headers: dict[str, str]
    limited_by: str | None = None  # "requests" or "tokens"
    retry_after_s: float = 0.0
    limit: int = 0
    used: int = 0
    requested: int = 0


class RateLimiter:
    """RPM and TPM buckets per model; always reports x-ratelimit-* headers."""

    UNLIMITED = 1_000_000_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()

    def _bucket(self, model: str, kind: str, capacity: int) -> _Bucket:
        key = (model, kind)
        bucket = self._buckets.get(key)
        if bucket is None or bucket.capacity != capacity:
            bucket = self._buckets[key] = _Bucket(capacity)
        return bucket

    def admit(self, profile: ModelProfile, tokens: int) -> Admission:
        now = time.monotonic()
        with self._lock:
            requests = self._bucket(profile.name, "requests", profile.rpm or self.UNLIMITED)
            token_bucket = self._bucket(profile.name, "tokens", profile.tpm or self.UNLIMITED)
            requests.refill(now)
            token_bucket.refill(now)
            verdict = None
            if profile.rpm and requests.wait_for(1) > 0:
                verdict = ("requests", requests.wait_for(1), profile.rpm, 1)
            elif profile.tpm and tokens > profile.tpm:
                verdict = ("tokens", 60.0, profile.tpm, tokens)
            elif profile.tpm and token_bucket.wait_for(tokens) > 0:
                verdict = ("tokens", token_bucket.wait_for(tokens), profile.tpm, tokens)
            if verdict is None:
                requests.level -= 1
                token_bucket.level -= tokens
            headers = {
                "x-ratelimit-limit-requests": str(requests.capacity),
                "x-ratelimit-remaining-requests": str(max(0, math.floor(requests.level))),
                "x-ratelimit-reset-requests": format_reset(requests.wait_for(requests.capacity)),
                "x-ratelimit-limit-tokens": str(token_bucket.capacity),
                "x-ratelimit-remaining-tokens": str(max(0, math.floor(token_bucket.level))),
                "x-ratelimit-reset-tokens": format_reset(
                    token_bucket.wait_for(token_bucket.capacity)
                ),
            }
            if verdict is None:
                return Admission(True, headers)
            kind, wait, limit, requested = verdict
            bucket = requests if kind == "requests" else token_bucket
            used = max(0, math.ceil(bucket.capacity - bucket.level))
            return Admission(False, headers, kind, wait, limit, used, requested)


class ConcurrencyGate:
    """At most `limit` holders; up to `queue_limit` callers wait; the rest are refused."""

    def __init__(self, limit: int, queue_limit: int) -> None:
        self._slots = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self._queue_limit = queue_limit
        self.waiting = 0

    def acquire(self) -> bool:
        if self._slots.acquire(blocking=False):
            return True
        with self._lock:
            if self.waiting >= self._queue_limit:
                return False
            self.waiting += 1
        try:
            self._slots.acquire()
        finally:
            with self._lock:
                self.waiting -= 1
        return True

    def release(self) -> None:
        self._slots.release()
