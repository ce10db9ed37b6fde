"""The reliability lab: a lab mock profile, and the agent collector + assistant pair started the way
compose.yaml wires them, plus what the assistant's worker process holds (for leak checks)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path

from harness.assistant import Assistant, start_assistant, worker_pids
from harness.collector import Collector, start_collector
from harness.procs import resource_counts

# Four models with distinct, realistic-but-short answers (about 1-2 s each), no rate limits: load
# runs of minutes stay within the CPU of a 2-vCPU CI machine.
LAB_PROFILES = """
defaults:
  ttft_ms: 250
  ttft_jitter_ms: 50
  tokens_per_s: 60
  output_tokens: {min: 10, mean: 30, max: 50}
  max_concurrency: 500
  queue_limit: 500
  rpm: 0
  tpm: 0
models:
  gpt-4o-mini: {ttft_ms: 200, tokens_per_s: 80}
  gpt-4o: {ttft_ms: 350, tokens_per_s: 50}
  gpt-4.1-mini: {ttft_ms: 250, tokens_per_s: 70}
  o3-mini: {reasoning: true, ttft_ms: 400, tokens_per_s: 60}
fault_settings:
  after_chunks: 3
  retry_after_ms: 500
"""
MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "o3-mini")
MOCK_STALL_S = 30  # a stalled upstream stream outlives the assistant's read timeout


@contextlib.contextmanager
def lab(
    tmp_path: Path,
    mock,
    assistant_env: Mapping[str, str] | None = None,
    collector_env: Mapping[str, str] | None = None,
    collector_mode: str = "local",
) -> Iterator[tuple[Collector, Assistant]]:
    """The agent collector (archive kept whole) and the assistant exporting to it over OTLP/HTTP,
    as in compose.yaml; both stopped on exit."""
    with (
        start_collector(
            tmp_path / "collector",
            mode=collector_mode,
            env={"OTELCOL_ARCHIVE_MAX_MEGABYTES": "2000", **(collector_env or {})},
        ) as collector,
        start_assistant(
            tmp_path / "assistant", mock.base_url, otlp=collector.otlp_http, env=assistant_env
        ) as assistant,
    ):
        yield collector, assistant


def worker_resources(assistant: Assistant) -> dict[str, int]:
    """Threads, fds, sockets and RSS of all the assistant's workers together."""
    totals: dict[str, int] = {}
    for pid in worker_pids(assistant):
        for name, value in resource_counts(pid).items():
            totals[name] = totals.get(name, 0) + value
    return totals
