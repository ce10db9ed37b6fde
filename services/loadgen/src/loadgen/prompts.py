"""The shipped prompt set: conversation topics with opening questions and follow-ups."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class Prompt:
    id: str
    text: str


@dataclass(frozen=True)
class Topic:
    id: str
    kind: str
    openers: tuple[Prompt, ...]
    follow_ups: tuple[Prompt, ...]


@dataclass(frozen=True)
class PromptSet:
    system: str
    topics: tuple[Topic, ...]

    def by_id(self) -> dict[str, Prompt]:
        return {p.id: p for t in self.topics for p in (*t.openers, *t.follow_ups)}


def parse_prompt_set(data: dict) -> PromptSet:
    topics = []
    for topic in data["topics"]:
        topic_id = topic["id"]
        openers = tuple(Prompt(f"{topic_id}/o{i}", t) for i, t in enumerate(topic["openers"]))
        follow = tuple(Prompt(f"{topic_id}/f{i}", t) for i, t in enumerate(topic["follow_ups"]))
        if not openers or not follow:
            raise ValueError(f"topic {topic_id} needs openers and follow_ups")
        topics.append(Topic(topic_id, topic["kind"], openers, follow))
    return PromptSet(system=data["system"], topics=tuple(topics))


@cache
def load_prompt_set() -> PromptSet:
    text = resources.files("loadgen").joinpath("data/prompts.json").read_text(encoding="utf-8")
    return parse_prompt_set(json.loads(text))
