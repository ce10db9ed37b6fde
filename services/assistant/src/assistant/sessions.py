"""Conversation history per session, behind a small interface, kept in a bounded LRU + TTL map
(in process memory, or shared by the workers: assistant/store.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from assistant.store import BoundedTTLMap, SharedTTLMap


@dataclass(frozen=True)
class Turn:
    user: str
    assistant: str


class SessionStore(Protocol):
    def history(self, session_id: str) -> tuple[Turn, ...]: ...
    def append(self, session_id: str, turn: Turn) -> None: ...
    def reset(self, session_id: str) -> None: ...


def shared_history_map(
    path: str, max_sessions: int, ttl_s: float
) -> SharedTTLMap[tuple[Turn, ...]]:
    """Histories in the workers' shared SQLite file (turns as [user, assistant] pairs)."""
    return SharedTTLMap(
        path,
        "sessions",
        max_sessions,
        ttl_s,
        encode=lambda turns: [[t.user, t.assistant] for t in turns],
        decode=lambda pairs: tuple(Turn(user, answer) for user, answer in pairs),
    )


class BoundedSessionStore:
    """LRU over sessions, TTL per session, capped history.

    History is trimmed oldest-first to at most `max_turns` turns and `max_chars` characters
    (user + assistant text); a single turn larger than `max_chars` is not kept. Kept in process
    memory unless `shared` (a `shared_history_map`) is given.
    """

    def __init__(
        self,
        max_sessions: int,
        ttl_s: float,
        max_turns: int,
        max_chars: int,
        shared: SharedTTLMap[tuple[Turn, ...]] | None = None,
    ) -> None:
        self._sessions = (
            shared if shared is not None else BoundedTTLMap[tuple[Turn, ...]](max_sessions, ttl_s)
        )
        self._max_turns = max_turns
        self._max_chars = max_chars

    def history(self, session_id: str) -> tuple[Turn, ...]:
        return self._sessions.get(session_id) or ()

    def append(self, session_id: str, turn: Turn) -> None:
        def add(old: tuple[Turn, ...] | None) -> tuple[Turn, ...]:
            turns = [*(old or ()), turn]
            turns = turns[-self._max_turns :] if self._max_turns else []
            total = sum(len(t.user) + len(t.assistant) for t in turns)
            while turns and total > self._max_chars:
                dropped = turns.pop(0)
                total -= len(dropped.user) + len(dropped.assistant)
            return tuple(turns)

        self._sessions.update(session_id, add)

    def reset(self, session_id: str) -> None:
        self._sessions.pop(session_id)

    def __len__(self) -> int:
        return len(self._sessions)
