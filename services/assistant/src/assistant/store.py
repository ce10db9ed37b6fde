"""Thread-safe bounded maps with LRU eviction and a TTL per entry (no background thread): one in
process memory, one shared by the worker processes of an instance through a SQLite file."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

V = TypeVar("V")
log = logging.getLogger(__name__)


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


def _degrade(default):
    """A storage failure (disk full, locked for too long) loses that one operation's state, with
    a warning, instead of failing the request: the answer matters more than its history."""

    def wrap(method):
        @functools.wraps(method)
        def guarded(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except sqlite3.Error as exc:
                log.warning("shared %s store: %s failed: %s", self._table, method.__name__, exc)
                return default

        return guarded

    return wrap


class SharedTTLMap(Generic[V]):
    """`BoundedTTLMap`'s contract (LRU over `max_entries`, TTL since last use, atomic `update`),
    kept in one SQLite file so that every gunicorn worker of an instance sees the same entries.

    Why SQLite: with more than one worker process, a conversation's next turn or an answer's
    feedback may reach another worker than the one that stored it; the state must live outside
    the processes, and nothing else is at hand inside the container (no Redis in the stack). It
    is small, local and ephemeral: WAL journal, no fsync (the file lives on the container's /tmp
    tmpfs and is gone with it). Values are JSON, through `encode`/`decode`. Each process opens its
    own connection lazily (never across a fork) and serialises its threads on it; processes
    serialise on SQLite's write lock (`BEGIN IMMEDIATE`), so `update` is atomic across workers.
    Ordering by expiry time is LRU order, because every use moves an entry's expiry forward.
    """

    def __init__(
        self,
        path: str,
        table: str,
        max_entries: int,
        ttl_s: float,
        encode: Callable[[V], object],
        decode: Callable[[object], V],
        clock: Callable[[], float] = time.monotonic,  # system-wide on Linux: same in every worker
    ) -> None:
        if max_entries < 1 or ttl_s <= 0:
            raise ValueError("max_entries must be >= 1 and ttl_s > 0")
        if not table.isidentifier():
            raise ValueError(f"invalid table name {table!r}")
        self._path = path
        self._table = table
        self._max = max_entries
        self._ttl = ttl_s
        self._encode = encode
        self._decode = decode
        self._clock = clock
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._pid = 0

    def _connection(self) -> sqlite3.Connection:
        if self._db is None or self._pid != os.getpid():
            db = sqlite3.connect(
                self._path, timeout=30, isolation_level=None, check_same_thread=False
            )
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=OFF")
            t = self._table
            db.execute(
                f"CREATE TABLE IF NOT EXISTS {t} "
                "(key TEXT PRIMARY KEY, expires REAL NOT NULL, value TEXT NOT NULL)"
            )
            db.execute(f"CREATE INDEX IF NOT EXISTS {t}_expires ON {t} (expires)")
            self._db, self._pid = db, os.getpid()
        return self._db

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[tuple[sqlite3.Connection, float]]:
        """A write transaction with expired entries already removed; yields (db, now)."""
        with self._lock:
            db = self._connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                now = self._clock()
                db.execute(f"DELETE FROM {self._table} WHERE expires <= ?", (now,))
                yield db, now
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:  # also after a failed COMMIT: never leave it open
                    db.execute("ROLLBACK")
                raise

    def _read(self, db: sqlite3.Connection, key: str) -> V | None:
        row = db.execute(f"SELECT value FROM {self._table} WHERE key = ?", (key,)).fetchone()
        return self._decode(json.loads(row[0])) if row else None

    def _write(self, db: sqlite3.Connection, now: float, key: str, value: V) -> None:
        t = self._table
        data = json.dumps(self._encode(value), ensure_ascii=False, separators=(",", ":"))
        db.execute(
            f"INSERT OR REPLACE INTO {t} (key, expires, value) VALUES (?, ?, ?)",
            (key, now + self._ttl, data),
        )
        # over the bound, the least recently used entries go (never the one just written): the
        # excess is counted (COUNT(*) sums the cells of the expiry index page by page) and taken
        # from the front of that index, so a put costs about the same with 0 or 49,000 entries
        # (35-50 us); `ORDER BY expires DESC LIMIT -1 OFFSET max` stepped through every entry on
        # every write (a put: 65 us at 700 entries, 240 us at 5,000, about 1.6 ms at 49,000)
        excess = db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] - self._max
        if excess > 0:
            db.execute(
                f"DELETE FROM {t} WHERE key IN "
                f"(SELECT key FROM {t} WHERE key != ? ORDER BY expires LIMIT ?)",
                (key, excess),
            )

    @_degrade(0)
    def __len__(self) -> int:
        with self._transaction() as (db, _now):
            return db.execute(f"SELECT COUNT(*) FROM {self._table}").fetchone()[0]

    @_degrade(None)
    def get(self, key: str) -> V | None:
        with self._transaction() as (db, now):
            value = self._read(db, key)
            if value is not None:
                db.execute(
                    f"UPDATE {self._table} SET expires = ? WHERE key = ?", (now + self._ttl, key)
                )
            return value

    @_degrade(None)
    def put(self, key: str, value: V) -> None:
        with self._transaction() as (db, now):
            self._write(db, now, key, value)

    @_degrade(None)
    def update(self, key: str, change: Callable[[V | None], V | None]) -> V | None:
        """Atomically replace the value with change(old); None removes the entry."""
        with self._transaction() as (db, now):
            new = change(self._read(db, key))
            if new is None:
                db.execute(f"DELETE FROM {self._table} WHERE key = ?", (key,))
            else:
                self._write(db, now, key, new)
            return new

    @_degrade(None)
    def pop(self, key: str) -> V | None:
        with self._transaction() as (db, _now):
            value = self._read(db, key)
            db.execute(f"DELETE FROM {self._table} WHERE key = ?", (key,))
            return value
