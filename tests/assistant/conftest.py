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
def mock_llm(log_dir):
    from harness.mock_llm import start_mock_llm

    with start_mock_llm(log_dir) as mock:
        yield mock
