"""Seeded, reproducible LLM load generator built on Locust.

The pure modules (config, plan, prompts, streaming, stats, report, feedback, shapes, tracing) do not
import Locust, so they can be unit-tested anywhere; `locustfile` wires them into Locust.
"""

__version__ = "0.1.0"
