"""An OpenAI-compatible mock LLM backend with per-model profiles and fault injection."""

__version__ = "0.1.0"
