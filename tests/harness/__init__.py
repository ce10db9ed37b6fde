"""Shared test harness: real processes on 127.0.0.1, prerequisites, archive readers."""
