"""What each simulated user asks, drawn from its own seeded RNG.

Every request consumes exactly the same number of draws whatever happens to earlier answers, so the
sequence of (model, prompt, parameters) depends only on (seed, worker index, user index).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from loadgen.prompts import Prompt, PromptSet, Topic

TEMPERATURES = (0.2, 0.7, 1.0)
TOP_PS = (1.0, 0.95, 0.9)
# One answer in four is capped, so some finish with "length" (counted apart, lowers feedback).
MAX_TOKENS = (None, None, None, 160)


@dataclass(frozen=True)
class RequestPlan:
    worker_index: int
    user_index: int
    sequence: int
    conversation: int
    turn: int
    turns: int
    model: str
    prompt: Prompt
    temperature: float
    top_p: float
    max_tokens: int | None
    request_seed: int
    wait_s: float
    give_feedback: bool
    feedback_noise: float

    def signature(self) -> tuple:
        """What must be identical between two runs with the same seed, users and cap."""
        return (self.model, self.prompt.id, self.temperature, self.top_p, self.max_tokens)


def user_rng(seed: int, worker_index: int, user_index: int) -> random.Random:
    """One RNG per user; a string seed is hashed with SHA-512, so it is stable across processes."""
    return random.Random(f"{seed}:{worker_index}:{user_index}")


class UserPlanner:
    """Draws one user's conversations and requests."""

    def __init__(
        self,
        *,
        seed: int,
        worker_index: int,
        user_index: int,
        models: tuple[str, ...],
        weights: tuple[float, ...],
        prompts: PromptSet,
        turns: tuple[int, int],
        wait_s: tuple[float, float],
        feedback_rate: float,
    ) -> None:
        self.rng = user_rng(seed, worker_index, user_index)
        self.worker_index = worker_index
        self.user_index = user_index
        self.models = models
        self.weights = weights
        self.prompts = prompts
        self.turns = turns
        self.wait_s = wait_s
        self.feedback_rate = feedback_rate
        self.sequence = 0
        self.conversation = 0
        self._turn = 0
        self._turns_in_conversation = 0
        self._topic: Topic | None = None

    @property
    def new_conversation(self) -> bool:
        return self._turn == 1

    def next(self) -> RequestPlan:
        rng = self.rng
        if self._topic is None or self._turn >= self._turns_in_conversation:
            self.conversation += 1
            self._turn = 0
            self._turns_in_conversation = rng.randint(*self.turns)
            self._topic = rng.choice(self.prompts.topics)
        self._turn += 1
        self.sequence += 1
        pool = self._topic.openers if self._turn == 1 else self._topic.follow_ups
        model = rng.choices(self.models, weights=self.weights)[0]
        prompt = rng.choice(pool)
        return RequestPlan(
            worker_index=self.worker_index,
            user_index=self.user_index,
            sequence=self.sequence,
            conversation=self.conversation,
            turn=self._turn,
            turns=self._turns_in_conversation,
            model=model,
            prompt=prompt,
            temperature=rng.choice(TEMPERATURES),
            top_p=rng.choice(TOP_PS),
            max_tokens=rng.choice(MAX_TOKENS),
            request_seed=rng.getrandbits(31),
            wait_s=rng.uniform(*self.wait_s),
            give_feedback=rng.random() < self.feedback_rate,
            feedback_noise=rng.gauss(0.0, 0.5),
        )
