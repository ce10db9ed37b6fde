"""A thread-safe bounded map with LRU eviction and a TTL per entry (no background thread)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class BoundedTTLMap(Generic[V]):
    """At most `max_entries` values; an entry expires `ttl_s` after its last write or read."""

    def __init__(
        self, max_entries: int, ttl_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_entries < 1 or ttl_s <= 0:
            raise ValueError("max_entries must be >= 1 and ttl_s > 0")
        self._max = max_entries
        self._ttl = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._items: OrderedDict[str, tuple[float, V]] = OrderedDict()

    def __len__(self) -> int:
        with self._lock:
            self._expire(self._clock())
            return len(self._items)

    def _expire(self, now: float) -> None:
        # entries are ordered by last use, so expired ones are at the front
        while self._items:
            key, (expires, _) = next(iter(self._items.items()))
            if expires > now:
                break
            del self._items[key]

    def get(self, key: str) -> V | None:
        with self._lock:
            now = self._clock()
            self._expire(now)
            item = self._items.get(key)
            if item is None:
                return None
            self._items[key] = (now + self._ttl, item[1])
            self._items.move_to_end(key)
            return item[1]

    def put(self, key: str, value: V) -> None:
        with self._lock:
            now = self._clock()
            self._expire(now)
            self._items[key] = (now + self._ttl, value)
            self._items.move_to_end(key)
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def update(self, key: str, change: Callable[[V | None], V | None]) -> V | None:
        """Atomically replace the value with change(old); None removes the entry."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            item = self._items.get(key)
            new = change(item[1] if item else None)
            if new is None:
                self._items.pop(key, None)
                return None
            self._items[key] = (now + self._ttl, new)
            self._items.move_to_end(key)
            while len(self._items) > self._max:
                self._items.popitem(last=False)
            return new

    def pop(self, key: str) -> V | None:
        with self._lock:
            item = self._items.pop(key, None)
            return item[1] if item else None
