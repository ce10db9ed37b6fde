"""Server-sent events framing: `event: <type>\\ndata: <one-line JSON>\\n\\n`."""

from __future__ import annotations

import json
import re

_EVENT_TYPE = re.compile(r"^[a-z_]+$")


def frame(event: str, data: dict) -> bytes:
    """One SSE event. JSON never contains a raw newline (json.dumps escapes \\n, \\r and
    U+2028/2029 are escaped too), so multi-line text stays inside one `data:` line."""
    if not _EVENT_TYPE.match(event):
        raise ValueError(f"invalid SSE event type {event!r}")
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    payload = payload.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return f"event: {event}\ndata: {payload}\n\n".encode()


def parse(stream_text: str) -> list[tuple[str, dict]]:
    """Parse a complete SSE body into (event, data) pairs (used by tests and tools)."""
    events = []
    for block in stream_text.split("\n\n"):
        if not block.strip():
            continue
        event, data_lines = "message", []
        for line in block.split("\n"):
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                event = value
            elif field == "data":
                data_lines.append(value)
        if data_lines:
            events.append((event, json.loads("\n".join(data_lines))))
    return events
