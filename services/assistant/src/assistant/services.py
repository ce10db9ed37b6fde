"""`Services`: everything a request needs, built once per worker by the application factory
(app.py) and read by the routes (routes.py) from `app.extensions["assistant"]`."""

from __future__ import annotations

from dataclasses import dataclass

import openai

from assistant.agent.turn import Agent
from assistant.config import Config
from assistant.evals import Evaluator
from assistant.feedback import FeedbackRecorder
from assistant.llm import BackendReadiness
from assistant.sessions import SessionStore
from assistant.telemetry import Instruments


@dataclass(frozen=True)
class Services:
    """Everything a request needs, built once per worker (stored in app.extensions)."""

    config: Config
    client: openai.OpenAI
    sessions: SessionStore
    feedback: FeedbackRecorder
    instruments: Instruments
    readiness: BackendReadiness
    openapi: dict
    evaluator: Evaluator | None = None  # LLM-as-judge (assistant/evals/); None: not built
    agent: Agent | None = None  # the shop agent (assistant/agent/); None: plain chat
