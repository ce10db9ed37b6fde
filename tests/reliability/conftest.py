"""Fixtures for the reliability runs (tests/harness/lab.py): real processes on 127.0.0.1, every
run bounded in time. Each test prints the figures it measured; docs/reliability.md collects them."""

from __future__ import annotations

import pytest

from harness.lab import LAB_PROFILES, MOCK_STALL_S
from harness.mock_llm import start_mock_llm


@pytest.fixture(scope="module")
def lab_mock(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lab-mock")
    env = {"MOCK_LLM_STALL_S": str(MOCK_STALL_S)}
    with start_mock_llm(folder, env=env, profiles=LAB_PROFILES) as server:
        yield server


@pytest.fixture
def mock(lab_mock):
    """The shared lab mock, with faults, buckets and history reset around each test."""
    lab_mock.reset()
    yield lab_mock
    lab_mock.reset()
