"""Helpers for the load generator's tests: its pure modules on sys.path, a fast mock profile, and
`run_loadgen`, which runs `python -m loadgen` (Locust) from build/venvs/loadgen as a subprocess."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from harness.loadgen import (
    LOADGEN_SRC,
    LoadRun,
    loadgen_env,
    loadgen_process,
    run_loadgen_to_end,
)
from harness.procs import ServiceProcess

if str(LOADGEN_SRC) not in sys.path:
    sys.path.insert(0, str(LOADGEN_SRC))  # the pure modules (no Locust import) for unit tests

# Fast, jitter-free models so timing checks are quick and tight (ITL = 1000 / tokens_per_s ms).
# TTFTs of 250+ ms keep the client's fixed overhead (a few ms, more on a busy CI box) well inside
# the 15 % tolerance.
FAST_PROFILES = """
defaults:
  ttft_jitter_ms: 0
  tps_jitter: 0
  itl_jitter: 0.05
  max_concurrency: 500
  queue_limit: 500
  rpm: 0
  tpm: 0
models:
  gpt-4o-mini:
    ttft_ms: 250
    tokens_per_s: 50
    output_tokens: {min: 14, mean: 18, max: 22}
  gpt-4o:
    ttft_ms: 400
    tokens_per_s: 40
    output_tokens: {min: 14, mean: 18, max: 22}
  gpt-4.1-mini:
    ttft_ms: 300
    tokens_per_s: 50
    output_tokens: {min: 14, mean: 18, max: 22}
  o3-mini:
    reasoning: true
    ttft_ms: 500
    tokens_per_s: 50
    output_tokens: {min: 14, mean: 18, max: 22}
fault_settings:
  after_chunks: 3
  retry_after_ms: 1000
"""
PROFILE_TIMING = {  # model -> (ttft_ms, itl_ms) of FAST_PROFILES
    "gpt-4o-mini": (250.0, 20.0),
    "gpt-4o": (400.0, 25.0),
    "gpt-4.1-mini": (300.0, 20.0),
    "o3-mini": (500.0, 20.0),
}


@pytest.fixture(autouse=True)
def _no_inherited_loadgen_env(monkeypatch):
    """A developer's LOADGEN_* settings must not leak into the runs the tests start."""
    for name in list(os.environ):
        if name.startswith("LOADGEN_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def fast_mock(tmp_path_factory):
    """The real mock LLM with FAST_PROFILES, shared by a test module."""
    from harness.mock_llm import start_mock_llm

    with start_mock_llm(tmp_path_factory.mktemp("mock"), profiles=FAST_PROFILES) as server:
        yield server


@pytest.fixture
def llm(fast_mock):
    """The shared fast mock, with faults, buckets and counters reset around each test."""
    fast_mock.reset()
    yield fast_mock
    fast_mock.reset()


@pytest.fixture
def run_loadgen(tmp_path):
    """`run_loadgen(name, timeout=120, **LOADGEN_settings_without_prefix) -> LoadRun`."""

    def run(name: str, timeout: float = 120.0, **settings: object) -> LoadRun:
        return run_loadgen_to_end(tmp_path, name, timeout, **settings)

    return run


@pytest.fixture
def profile_timing() -> dict[str, tuple[float, float]]:
    return dict(PROFILE_TIMING)


@pytest.fixture
def loadgen_proc(tmp_path):
    """`loadgen_proc(name, report_dir, **settings) -> ServiceProcess` (not started)."""

    def make(name: str, report_dir: Path, **settings: object) -> ServiceProcess:
        return loadgen_process(name, tmp_path, loadgen_env(report_dir, **settings))

    return make
