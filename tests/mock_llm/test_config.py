"""Bad configuration stops the service at start-up with a message naming the culprit."""

from __future__ import annotations

import pytest

from harness.prereq import ROOT, service_python
from harness.procs import ServiceProcess


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"MOCK_LLM_PORT": "eighty"}, "MOCK_LLM_PORT must be an integer"),
        ({"MOCK_LLM_SEED": "1.5"}, "MOCK_LLM_SEED must be an integer"),
        ({"MOCK_LLM_STALL_S": "-1"}, "MOCK_LLM_STALL_S must be between"),
        ({"MOCK_LLM_ADMIN": "maybe"}, "MOCK_LLM_ADMIN must be true or false"),
        ({"MOCK_LLM_PROFILES": "/nonexistent.yaml"}, "MOCK_LLM_PROFILES: no such file"),
        ({"MOCK_LLM_REQUEST_LOG_SIZE": "0"}, "MOCK_LLM_REQUEST_LOG_SIZE must be between 1 and"),
        ({"MOCK_LLM_REQUEST_LOG_SIZE": "lots"}, "MOCK_LLM_REQUEST_LOG_SIZE must be an integer"),
        ("bad-profile", "models.m.tokens_per_s must be between"),
        ("unknown-key", "models.m: unknown key(s) ttft"),
        (
            "bad-role-chunk",
            "models.m.role_chunk must be one of with_first_token, early, got 'late'",
        ),
        ("bad-quality-rate", "models.m.quality.unsafe must be between 0 and 1, got 1.5"),
        ("scalar-quality", "models.m.quality must be a mapping of off_topic, unsupported_claim"),
        ("unknown-quality-trait", "models.m.quality: unknown trait(s) rude"),
        ("bad-quality-default", "models.m.quality.non_answer must be a number between 0 and 1"),
    ],
)
def test_bad_configuration_exits_with_a_clear_message(tmp_path, env, needle):
    if isinstance(env, str):
        profile = tmp_path / "p.yaml"
        body = {
            "bad-profile": "m: {tokens_per_s: 0}",
            "unknown-key": "m: {ttft: 5}",
            "bad-role-chunk": "m: {role_chunk: late}",
            "bad-quality-rate": "m: {quality: {unsafe: 1.5}}",
            "scalar-quality": "m: {quality: 0.72}",
            "unknown-quality-trait": "m: {quality: {rude: 0.1}}",
            "bad-quality-default": "m: {quality: {unsafe: 0.1}}",
        }[env]
        defaults = "defaults: {quality: {non_answer: lots}}\n" if "default" in env else ""
        profile.write_text(f"{defaults}models:\n  {body}\n")
        env = {"MOCK_LLM_PROFILES": str(profile)}
    process = ServiceProcess(
        "mock-llm-config",
        [service_python("mock-llm"), "-m", "mock_llm"],
        tmp_path,
        {"PYTHONPATH": str(ROOT / "services" / "mock-llm" / "src"), "MOCK_LLM_PORT": "1", **env},
    )
    with process:
        assert process.wait_exit(timeout=30) == 2
    assert needle in process.log()
