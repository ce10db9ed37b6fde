"""Chat assistant: Flask app streaming OpenAI chat completions with GenAI telemetry."""

__version__ = "1.0.0"
