"""Fixtures: the mock LLM as a real process, the official openai SDK as its client."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import pytest
import yaml

from harness.mock_llm import MockLLM, start_mock_llm

QUESTION = [{"role": "user", "content": "How should I plan a small vegetable garden?"}]

# A quick profile set for timing and fault tests: short answers, fixed lengths, no jitter.
FAST_PROFILES = {
    "defaults": {"tps_jitter": 0, "itl_jitter": 0, "ttft_jitter_ms": 0, "rpm": 0, "tpm": 0},
    "models": {
        "fast": {
            "ttft_ms": 100,
            "tokens_per_s": 40,
            "output_tokens": {"min": 64, "mean": 64, "max": 64},
            "quality": {"off_topic": 0.1},
        },
        "timed": {
            "ttft_ms": 300,
            "tokens_per_s": 20,
            "output_tokens": {"min": 64, "mean": 64, "max": 64},
        },
        "instant": {
            "ttft_ms": 0,
            "tokens_per_s": 10000,
            "output_tokens": {"min": 5, "mean": 5, "max": 5},
        },
        "tiny-queue": {
            "ttft_ms": 1000,
            "tokens_per_s": 100,
            "output_tokens": {"min": 5, "mean": 5, "max": 5},
            "max_concurrency": 1,
            "queue_limit": 1,
        },
        "rpm-limited": {
            "ttft_ms": 10,
            "tokens_per_s": 1000,
            "output_tokens": {"min": 3, "mean": 3, "max": 3},
            "rpm": 3,
        },
        "tpm-limited": {
            "ttft_ms": 10,
            "tokens_per_s": 1000,
            "output_tokens": {"min": 3, "mean": 3, "max": 3},
            "tpm": 100,
        },
        "early": {  # the role chunk at once, before the TTFT (the old behaviour)
            "ttft_ms": 200,
            "tokens_per_s": 50,
            "output_tokens": {"min": 8, "mean": 8, "max": 8},
            "role_chunk": "early",
        },
        "steady": {  # jittered TTFT, speed and gaps, and a prefill: a plan differs per request
            "ttft_ms": 150,
            "ttft_jitter_ms": 30,
            "prefill_ms_per_1k_prompt_tokens": 100,
            "tokens_per_s": 60,
            "tps_jitter": 0.1,
            "itl_jitter": 0.3,
            "output_tokens": {"min": 20, "mean": 25, "max": 30},
        },
        "single": {  # one slot: a second request waits in the queue
            "ttft_ms": 100,
            "tokens_per_s": 100,
            "output_tokens": {"min": 20, "mean": 20, "max": 20},
            "max_concurrency": 1,
            "queue_limit": 5,
        },
        "flaky": {
            "ttft_ms": 10,
            "tokens_per_s": 1000,
            "output_tokens": {"min": 3, "mean": 3, "max": 3},
            "context_window": 200,
            "faults": {"500": 0.3},
        },
    },
    "fault_settings": {
        "slow_first_token_ms": 600,
        "slow_stream_factor": 4,
        "after_chunks": 3,
        "retry_after_ms": 300,
    },
}


def write_profiles(directory: Path, document: dict) -> Path:
    path = directory / "profiles.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@contextlib.contextmanager
def profiled_mock(tmp_path_factory, name: str, document: dict, **env: str) -> Iterator[MockLLM]:
    """The service with the profile set `document` (and extra environment) in a folder of its
    own."""
    directory = tmp_path_factory.mktemp(name)
    env = {"MOCK_LLM_PROFILES": str(write_profiles(directory, document)), **env}
    with start_mock_llm(directory, env) as service:
        yield service


@pytest.fixture(scope="module")
def mock(tmp_path_factory) -> Iterator[MockLLM]:
    """The service with its shipped profiles."""
    with start_mock_llm(tmp_path_factory.mktemp("mock-llm")) as service:
        yield service


@pytest.fixture(scope="module")
def fast_mock(tmp_path_factory) -> Iterator[MockLLM]:
    """The service with FAST_PROFILES and a short stall."""
    with profiled_mock(
        tmp_path_factory, "mock-llm-fast", FAST_PROFILES, MOCK_LLM_STALL_S="5"
    ) as service:
        yield service


@pytest.fixture
def client_for() -> Callable[..., openai.OpenAI]:
    clients: list[openai.OpenAI] = []

    def make(service: MockLLM, **options) -> openai.OpenAI:
        options.setdefault("max_retries", 0)
        options.setdefault("timeout", 30)
        client = openai.OpenAI(base_url=service.base_url, api_key=service.api_key, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
