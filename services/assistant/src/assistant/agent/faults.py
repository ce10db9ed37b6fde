"""Tool faults for workshops: make a tool fail or be slow (ASSISTANT_TOOL_FAULTS, off unless set).

Syntax: comma-separated `tool=error`, `tool=delay:SECONDS` or either with `@RATE` (0-1, the
share of calls affected; default 1), for example
`get_order_status=error@0.5,check_inventory=delay:2`. A failing tool returns the error
`tool_fault` to the model (which then explains or retries), visible as `error.type` on its
`execute_tool` span.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

ERROR_TOOL_FAULT = "tool_fault"
MAX_DELAY_S = 60.0
_ENTRY = re.compile(
    r"^(?P<tool>[A-Za-z0-9_-]{1,64})=(?:(?P<error>error)|delay:(?P<delay>\d+(?:\.\d+)?))"
    r"(?:@(?P<rate>0(?:\.\d+)?|1(?:\.0+)?))?$"
)


@dataclass(frozen=True)
class ToolFault:
    error: bool  # fail the call
    delay_s: float  # sleep before running it
    rate: float

    def applies(self, draw: float) -> bool:
        return draw < self.rate


def parse_tool_faults(text: str, known_tools: Iterable[str]) -> Mapping[str, ToolFault]:
    """ASSISTANT_TOOL_FAULTS as {tool: fault}; ValueError naming the bad entry."""
    known = set(known_tools)
    faults: dict[str, ToolFault] = {}
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        match = _ENTRY.match(entry)
        if not match:
            raise ValueError(
                f"{entry!r} is not tool=error, tool=delay:SECONDS, optionally with @RATE"
            )
        tool = match["tool"]
        if tool not in known:
            raise ValueError(f"{tool!r} is not a tool (tools: {', '.join(sorted(known))})")
        delay = float(match["delay"] or 0.0)
        if delay > MAX_DELAY_S:
            raise ValueError(f"{entry!r}: the delay is at most {MAX_DELAY_S:g} seconds")
        faults[tool] = ToolFault(
            error=match["error"] is not None,
            delay_s=delay,
            rate=float(match["rate"]) if match["rate"] else 1.0,
        )
    return faults


def draw() -> float:
    """One uniform draw for a fault's rate (not seeded: faults are a demo, not a measurement)."""
    return random.random()
