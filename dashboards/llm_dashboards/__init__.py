"""Splunk Observability Cloud dashboards and detectors for the LLM assistant (REST path)."""
