"""Load shapes: the staged profile (ramp, plateau, spike, plateau, cool-down) as pure data.

The Locust `LoadTestShape` wrapper lives in the locustfile; this module only computes targets so it
can be tested without Locust.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_DURATION = re.compile(r"^(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$")


def parse_duration(text: str) -> int:
    """Seconds from Locust's time format: `90`, `90s`, `5m`, `1h30m`, `2m30s`."""
    text = text.strip().lower()
    if text.isdigit():
        return int(text)
    match = _DURATION.match(text)
    if not text or not match or not any(match.groupdict().values()):
        raise ValueError(f"{text!r} is not a duration like 90s, 5m or 1h30m")
    parts = {k: int(v) if v else 0 for k, v in match.groupdict().items()}
    return parts["h"] * 3600 + parts["m"] * 60 + parts["s"]


@dataclass(frozen=True)
class Stage:
    """Hold `users` (reached at `spawn_rate` users/s) for `duration_s` seconds."""

    name: str
    duration_s: float
    users: int
    spawn_rate: float


def default_stages(users: int, spawn_rate: float) -> tuple[Stage, ...]:
    """Ramp to `users`, hold, spike to twice as many, settle back, cool down to a quarter."""
    quarter = max(1, math.ceil(users / 4))
    return (
        Stage("ramp", 30, users, max(users / 30, 0.1)),
        Stage("plateau", 60, users, spawn_rate),
        Stage("spike", 15, users * 2, max(users / 2, 1.0)),
        Stage("recover", 30, users, max(float(users), 1.0)),
        Stage("cool-down", 30, quarter, max(users / 30, 0.1)),
    )


def parse_stages(text: str, default_rate: float) -> tuple[Stage, ...]:
    """`30s:10,60s:10,15s:20:10,30s:2` -> stages (duration:users[:spawn_rate])."""
    stages = []
    for index, item in enumerate(part.strip() for part in text.split(",")):
        fields = item.split(":")
        if len(fields) not in (2, 3):
            raise ValueError(f"stage {index + 1} {item!r} must be duration:users[:spawn_rate]")
        duration = parse_duration(fields[0])
        try:
            users = int(fields[1])
            rate = float(fields[2]) if len(fields) == 3 else default_rate
        except ValueError:
            raise ValueError(
                f"stage {index + 1} {item!r}: users must be an integer, rate a number"
            ) from None
        if duration <= 0 or users < 0 or rate <= 0:
            raise ValueError(f"stage {index + 1} {item!r}: need duration > 0, users >= 0, rate > 0")
        stages.append(Stage(f"stage-{index + 1}", duration, users, rate))
    if not stages:
        raise ValueError("no stages given")
    return tuple(stages)


def stage_at(elapsed_s: float, stages: tuple[Stage, ...]) -> Stage | None:
    """The stage active `elapsed_s` seconds into the run, or None when the profile is over."""
    end = 0.0
    for stage in stages:
        end += stage.duration_s
        if elapsed_s < end:
            return stage
    return None


def total_duration(stages: tuple[Stage, ...]) -> float:
    return sum(stage.duration_s for stage in stages)
