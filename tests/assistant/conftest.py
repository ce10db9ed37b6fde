"""Fixtures for the assistant tests: the real mock LLM, collector and assistant processes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness.prereq import ROOT

# Unit tests import the service's pure modules (no Flask needed) straight from its source.
SRC = ROOT / "services" / "assistant" / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("assistant-logs")


@pytest.fixture(scope="module")
def collector(tmp_path_factory):
    """A test collector (local mode) of the test module's own, receiving the assistant's OTLP."""
    from harness.collector import start_collector

    with start_collector(tmp_path_factory.mktemp("collector")) as running:
        yield running


@pytest.fixture(scope="module")
def mock_llm(log_dir):
    from harness.mock_llm import start_mock_llm

    with start_mock_llm(log_dir) as mock:
        yield mock


# The mock's models, answering at once with a few tokens: for tests that send thousands of chats.
FAST_PROFILES = """
defaults:
  {ttft_ms: 0, tokens_per_s: 100000, rpm: 0, tpm: 0, output_tokens: {min: 1, mean: 3, max: 6}}
models:
  gpt-4o-mini: {}
  gpt-4o: {}
  gpt-4.1-mini: {}
  o3-mini: {reasoning: true}
"""


@pytest.fixture(scope="module")
def fast_mock_llm(log_dir):
    """The real mock LLM over HTTP with an instant profile (streams of 1-6 tokens)."""
    from harness.mock_llm import start_mock_llm

    with start_mock_llm(log_dir, profiles=FAST_PROFILES) as mock:
        yield mock
