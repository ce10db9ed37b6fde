"""Chat assistant: Flask app streaming OpenAI chat completions with GenAI telemetry."""
