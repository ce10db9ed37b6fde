"""Model scorecard: which LLM fits best, from the collector's local telemetry archive."""

__version__ = "0.1.0"
