"""Unit tests of the load generator's pure parts (no Locust, no network)."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.prereq import ROOT
from loadgen import feedback
from loadgen.__main__ import locust_argv
from loadgen.config import ConfigError, load_config, parse_weights
from loadgen.feedback import content_keys, coverage, feedback_score
from loadgen.plan import UserPlanner
from loadgen.prompts import load_prompt_set
from loadgen.report import (
    EXIT_NO_REQUESTS,
    EXIT_OK,
    EXIT_THRESHOLD,
    build_report,
    render_markdown,
    write_report,
)
from loadgen.shapes import default_stages, parse_duration, parse_stages, stage_at, total_duration
from loadgen.stats import Slo, distribution, peak_tokens_per_s, percentile, summarize, tpot_ms
from loadgen.streaming import DROPPED, EMPTY, MALFORMED, TIMEOUT, TRUNCATED, StreamParser
from loadgen.tracing import baggage, traceparent

LOADGEN_SRC = ROOT / "services" / "loadgen" / "src"

# --- configuration ---------------------------------------------------------------------------


def test_weights_accept_both_separators_and_keep_order():
    assert parse_weights("gpt-4o=3, gpt-4o-mini:5,o3-mini=2") == (
        ("gpt-4o", 3.0),
        ("gpt-4o-mini", 5.0),
        ("o3-mini", 2.0),
    )


@pytest.mark.parametrize(
    "text, problem",
    [
        ("gpt-4o", "model=weight"),
        ("gpt-4o=x", "not a number"),
        ("gpt-4o=-1", ">= 0"),
        ("gpt-4o=1,gpt-4o=2", "twice"),
        ("gpt-4o=0", "positive weight"),
        ("", "positive weight"),
        ("bad model=1", "not a model name"),
    ],
)
def test_bad_weights_are_explained(text, problem):
    with pytest.raises(ValueError, match=problem):
        parse_weights(text)


def test_defaults():
    config = load_config({})
    assert config.target == "assistant"
    assert config.host == "http://localhost:8080"
    assert config.chat_path == "/api/chat"
    assert config.models == ("gpt-4o", "gpt-4o-mini", "o3-mini")
    assert config.weights == (3.0, 5.0, 2.0)
    assert (config.seed, config.users, config.requests_per_user) == (42, 10, 10)
    assert config.autostart and not config.headless
    assert config.max_error_rate is None and config.min_goodput_ratio is None
    assert re.fullmatch(r"lg-\d{8}T\d{6}Z-[0-9a-f]{6}", config.run_id)


def test_openai_target_defaults_to_the_mock_and_hides_the_key():
    config = load_config({"LOADGEN_TARGET": "openai", "LOADGEN_API_KEY": "sk-secret-123"})
    assert config.host == "http://localhost:8000/v1"
    assert config.chat_path == "/chat/completions"
    assert "sk-secret-123" not in repr(config)
    assert "sk-secret-123" not in json.dumps(config.public())


@pytest.mark.parametrize(
    "name, value",
    [
        ("LOADGEN_TARGET", "grpc"),
        ("LOADGEN_HOST", "localhost:8080"),
        ("LOADGEN_USERS", "0"),
        ("LOADGEN_USERS", "ten"),
        ("LOADGEN_SPAWN_RATE", "0"),
        ("LOADGEN_RUN_TIME", "5 minutes"),
        ("LOADGEN_RUN_TIME", "0s"),
        ("LOADGEN_REQUESTS_PER_USER", "-1"),
        ("LOADGEN_CONVERSATION_TURNS", "3-1"),
        ("LOADGEN_CONVERSATION_TURNS", "0-2"),
        ("LOADGEN_WAIT_SECONDS", "a-b"),
        ("LOADGEN_FEEDBACK_RATE", "1.5"),
        ("LOADGEN_SHAPE", "sine"),
        ("LOADGEN_STAGES", "10s"),
        ("LOADGEN_SLO_TTFT_MS", "-5"),
        ("LOADGEN_MAX_ERROR_RATE", "2"),
        ("LOADGEN_MIN_GOODPUT_RATIO", "x"),
        ("LOADGEN_HEADLESS", "maybe"),
        ("LOADGEN_ROLE", "boss"),
        ("LOADGEN_MASTER_PORT", "70000"),
        ("LOADGEN_RUN_ID", "has space"),
        ("LOADGEN_MODEL_WEIGHTS", "gpt-4o"),
        ("LOADGEN_LOG_LEVEL", "chatty"),
        ("LOADGEN_LLM_BACKEND", "two words"),
        ("LOADGEN_LLM_BACKEND", "http://host:notaport/v1"),
    ],
)
def test_bad_values_name_the_variable(name, value):
    with pytest.raises(ConfigError) as info:
        load_config({name: value})
    assert info.value.variable == name
    assert str(info.value).startswith(f"{name}: ")


@pytest.mark.parametrize(
    "env, rate, simulated, why",
    [
        ({}, 0.3, True, "default rate 0.3 with the mock LLM"),
        ({"LOADGEN_LLM_BACKEND": "MOCK"}, 0.3, True, "default rate 0.3 with the mock LLM"),
        ({"LOADGEN_LLM_BACKEND": "https://api.openai.com/v1"}, 0.0, False, "is not set"),
        ({"LOADGEN_LLM_BACKEND": "vllm"}, 0.0, False, "vllm (not the mock LLM)"),
        (
            {"LOADGEN_LLM_BACKEND": "https://api.openai.com/v1", "LOADGEN_FEEDBACK_RATE": "0.2"},
            0.2,
            True,
            "LOADGEN_FEEDBACK_RATE=0.2 set explicitly",
        ),
        ({"LOADGEN_FEEDBACK_RATE": "0"}, 0.0, False, "LOADGEN_FEEDBACK_RATE=0 set explicitly"),
        ({"LOADGEN_FEEDBACK_RATE": "0.5"}, 0.5, True, "set explicitly; backend the mock LLM"),
        ({"LOADGEN_TARGET": "openai"}, 0.0, False, "direct mode"),
    ],
)
def test_simulated_ratings_only_with_the_mock_unless_the_rate_is_set(env, rate, simulated, why):
    config = load_config(env)
    policy = config.feedback_policy()
    assert (policy["rate"], policy["simulated"], config.simulated_ratings) == (
        rate,
        simulated,
        simulated,
    )
    assert why in policy["reason"]
    assert policy["rate_explicit"] == ("LOADGEN_FEEDBACK_RATE" in env)
    assert config.public()["llm_backend"] == policy["llm_backend"]


def test_backend_url_is_reported_without_credentials():
    config = load_config({"LOADGEN_LLM_BACKEND": "https://user:pw@llm.example:8443/v1/?key=k#x"})
    assert config.llm_backend == "https://llm.example:8443/v1"
    assert not config.mock_backend
    assert "pw" not in json.dumps(config.feedback_policy())


def test_workers_adopt_the_masters_backend_and_rate():
    from loadgen.config import forwarded_settings, worker_config

    master = {"LOADGEN_LLM_BACKEND": "https://api.openai.com/v1", "LOADGEN_SEED": "3"}
    worker = worker_config({"LOADGEN_FEEDBACK_RATE": "0.9"}, forwarded_settings(master))
    assert (worker.feedback_rate, worker.simulated_ratings) == (0.0, False)


def test_headless_run_must_be_bounded():
    with pytest.raises(ConfigError, match="LOADGEN_REQUESTS_PER_USER"):
        load_config({"LOADGEN_HEADLESS": "true", "LOADGEN_REQUESTS_PER_USER": "0"})
    bounded = load_config(
        {"LOADGEN_HEADLESS": "true", "LOADGEN_REQUESTS_PER_USER": "0", "LOADGEN_RUN_TIME": "1m"}
    )
    assert bounded.run_time_s == 60


def test_launcher_rejects_a_bad_setting_before_starting_locust():
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(LOADGEN_SRC)}
    result = subprocess.run(
        [sys.executable, "-m", "loadgen"],
        env={**env, "LOADGEN_USERS": "0"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "configuration error: LOADGEN_USERS: 0 must be >= 1" in result.stderr
    printed = subprocess.run(
        [sys.executable, "-m", "loadgen", "--print-command"],
        env={**env, "LOADGEN_HEADLESS": "true", "LOADGEN_RUN_ID": "x1"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert printed.returncode == 0
    assert "-m locust -f " in printed.stdout and "--loadgen-run-id x1" in printed.stdout


def test_launcher_command_lines(tmp_path):
    base = {"LOADGEN_REPORT_DIR": str(tmp_path), "LOADGEN_RUN_ID": "run-1"}
    headless = locust_argv(load_config({**base, "LOADGEN_HEADLESS": "true"}))
    assert headless[:2] == ["-m", "locust"]
    assert {"--headless", "--only-summary", "--html", "--csv"} <= set(headless)
    assert headless[headless.index("--users") + 1] == "10"
    assert headless[headless.index("--loadgen-run-id") + 1] == "run-1"
    assert "--run-time" not in headless  # enforced by the locustfile (workers flush first)

    demo = locust_argv(load_config(base))
    assert "--autostart" in demo and "--headless" not in demo
    assert demo[demo.index("--web-port") + 1] == "8089"

    web = locust_argv(load_config({**base, "LOADGEN_AUTOSTART": "false"}))
    assert "--autostart" not in web and "--web-port" in web

    master = locust_argv(
        load_config({**base, "LOADGEN_ROLE": "master", "LOADGEN_EXPECT_WORKERS": "3"})
    )
    assert master[master.index("--expect-workers") + 1] == "3"
    assert "--master" in master

    worker = locust_argv(
        load_config({**base, "LOADGEN_ROLE": "worker", "LOADGEN_MASTER_HOST": "lg-master"})
    )
    assert worker[worker.index("--master-host") + 1] == "lg-master"
    assert "--users" not in worker and "--csv" not in worker

    staged = locust_argv(load_config({**base, "LOADGEN_SHAPE": "staged"}))
    assert "--users" not in staged  # the shape decides


# --- shapes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, seconds", [("90", 90), ("90s", 90), ("5m", 300), ("1h30m", 5400), ("2m30s", 150)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "m", "1.5m", "-3s"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_stages_run_in_order_then_end():
    stages = parse_stages("10s:5,20s:10:4,5s:0", default_rate=2.0)
    assert [(s.duration_s, s.users, s.spawn_rate) for s in stages] == [
        (10, 5, 2.0),
        (20, 10, 4.0),
        (5, 0, 2.0),
    ]
    assert stage_at(0, stages).users == 5
    assert stage_at(9.9, stages).users == 5
    assert stage_at(10, stages).users == 10
    assert stage_at(34.9, stages).users == 0
    assert stage_at(35, stages) is None


def test_default_staged_profile_ramps_spikes_and_cools_down():
    stages = default_stages(users=10, spawn_rate=2)
    assert [s.name for s in stages] == ["ramp", "plateau", "spike", "recover", "cool-down"]
    assert [s.users for s in stages] == [10, 10, 20, 10, 3]
    assert total_duration(stages) == 165


# --- plan ------------------------------------------------------------------------------------


def planner(seed=7, worker=0, user=0, **kw):
    defaults = {
        "models": ("gpt-4o", "gpt-4o-mini", "o3-mini"),
        "weights": (3.0, 5.0, 2.0),
        "prompts": load_prompt_set(),
        "turns": (1, 4),
        "wait_s": (0.5, 3.0),
        "feedback_rate": 0.3,
    }
    defaults.update(kw)
    return UserPlanner(seed=seed, worker_index=worker, user_index=user, **defaults)


def sequence(p, n=30):
    return [p.next() for _ in range(n)]


def test_same_seed_worker_and_user_give_the_same_requests():
    assert sequence(planner()) == sequence(planner())


def test_seed_worker_and_user_each_change_the_requests():
    reference = [r.signature() for r in sequence(planner())]
    for other in (planner(seed=8), planner(worker=1), planner(user=1)):
        assert [r.signature() for r in sequence(other)] != reference


def test_conversations_open_with_an_opener_then_follow_up():
    requests = sequence(planner(), 200)
    for request in requests:
        assert 1 <= request.turn <= request.turns <= 4
        kind = "o" if request.turn == 1 else "f"
        assert request.prompt.id.split("/")[1].startswith(kind)
        assert 0.5 <= request.wait_s <= 3.0
    conversations = Counter(r.conversation for r in requests)
    assert set(Counter(conversations.values())) <= {1, 2, 3, 4}
    assert len({r.temperature for r in requests}) == 3 and len({r.top_p for r in requests}) == 3


def test_model_split_follows_the_weights_chi_square():
    counts = Counter()
    for user in range(100):
        counts.update(r.model for r in sequence(planner(seed=1, user=user), 100))
    total = sum(counts.values())
    expected = {"gpt-4o": 0.3 * total, "gpt-4o-mini": 0.5 * total, "o3-mini": 0.2 * total}
    chi2 = sum((counts[m] - e) ** 2 / e for m, e in expected.items())
    assert chi2 < 13.82, (counts, chi2)  # chi-square, 2 degrees of freedom, p = 0.001


def test_feedback_share_follows_the_rate():
    requests = [r for u in range(50) for r in sequence(planner(user=u, feedback_rate=0.3), 100)]
    share = sum(r.give_feedback for r in requests) / len(requests)
    assert abs(share - 0.3) < 0.02


def test_prompt_set_is_realistic_and_large_enough():
    prompts = load_prompt_set()
    every = prompts.by_id()
    assert len(every) >= 40
    kinds = Counter(t.kind for t in prompts.topics)
    assert kinds["tshirt-shop"] >= 4 and kinds["general"] >= 2
    assert any("ship" in p.text.lower() for p in every.values())
    assert "T-shirt" in prompts.system


# --- stream parsing --------------------------------------------------------------------------


def chunk(content=None, finish=None, role=False, usage=None, choices=True):
    delta = {"role": "assistant", "content": ""} if role else {}
    if content is not None:
        delta["content"] = content
    body = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "gpt-4o"}
    body["choices"] = (
        [{"index": 0, "delta": delta, "finish_reason": finish}] if choices else choices
    )
    body["usage"] = usage
    return "data: " + json.dumps(body)


def feed(parser, lines):
    for at, line in enumerate(lines):
        parser.feed(line + "\n", float(at * 10))
    return parser


def test_openai_stream_timing_and_usage():
    lines = [
        chunk(role=True),
        "",
        ": keep-alive",
        chunk(" Hello"),
        "",
        chunk(" there"),
        chunk(""),
        chunk(finish="stop"),
        chunk(choices=[], usage={"prompt_tokens": 12, "completion_tokens": 2}),
        "data: [DONE]",
    ]
    parser = feed(StreamParser("openai"), lines)
    assert parser.ttft_ms == 30.0  # the role chunk's empty content does not count
    assert parser.content_ms == [30.0, 50.0]
    assert parser.text == " Hello there"
    assert (parser.input_tokens, parser.output_tokens) == (12, 2)
    assert parser.finish_reason == "stop" and parser.response_id == "chatcmpl-1"
    assert parser.outcome(200) is None


def test_openai_choices_null_is_accepted():
    parser = feed(StreamParser("openai"), [chunk("a", finish="stop"), chunk(choices=None)])
    parser.feed("data: [DONE]", 30.0)
    assert parser.outcome(200) is None


def test_openai_faults_are_classified():
    error = 'data: {"error": {"message": "boom", "type": "server_error", "code": null}}'
    assert feed(StreamParser("openai"), [chunk("a"), error]).outcome(200) == (
        "error_event:server_error"
    )
    assert feed(StreamParser("openai"), [chunk("a"), chunk("b")]).outcome(200) == TRUNCATED
    assert feed(StreamParser("openai"), [chunk("a"), "data: [DONE]"]).outcome(200) == TRUNCATED
    assert feed(StreamParser("openai"), [chunk("a"), "data: {not json"]).outcome(200) == MALFORMED
    done_empty = [chunk(finish="stop"), "data: [DONE]"]
    assert feed(StreamParser("openai"), done_empty).outcome(200) == EMPTY
    assert feed(StreamParser("openai"), [chunk("a")]).outcome(200, DROPPED) == DROPPED
    assert feed(StreamParser("openai"), []).outcome(200, TIMEOUT) == TIMEOUT
    assert StreamParser("openai").outcome(429) == "http_429"
    assert StreamParser("openai").outcome(0) == "connection_error"
    finished = feed(StreamParser("openai"), [chunk("a", finish="stop"), "data: [DONE]"])
    assert finished.outcome(200, DROPPED) is None  # a reset after [DONE] lost nothing


def event(kind, data):
    return [f"event: {kind}", "data: " + json.dumps(data), ""]


def test_assistant_events():
    lines = [
        *event("start", {"response_id": "resp_ab", "trace_id": "1" * 32, "model": "gpt-4o"}),
        *event("delta", {"text": "Hi"}),
        *event("delta", {"text": ""}),
        *event("delta", {"text": " you"}),
        *event(
            "done",
            {
                "finish_reason": "length",
                "usage": {"input_tokens": 9, "output_tokens": 2},
                "ttft_ms": 25.0,
                "duration_ms": 70.0,
            },
        ),
    ]
    parser = feed(StreamParser("assistant"), lines)
    assert parser.response_id == "resp_ab" and parser.trace_id == "1" * 32
    assert parser.content_ms == [40.0, 100.0]
    assert (parser.input_tokens, parser.output_tokens) == (9, 2)
    assert parser.finish_reason == "length" and parser.server_ttft_ms == 25.0
    assert parser.server_duration_ms == 70.0
    assert parser.outcome(200) is None


def test_assistant_error_and_missing_done():
    start = event("start", {"response_id": "resp_1", "trace_id": "2" * 32, "model": "o3-mini"})
    failed = [*start, *event("error", {"type": "rate_limited", "message": "busy"})]
    assert feed(StreamParser("assistant"), failed).outcome(200) == "error_event:rate_limited"
    cut = [*start, *event("delta", {"text": "x"})]
    assert feed(StreamParser("assistant"), cut).outcome(200) == TRUNCATED


# --- statistics --------------------------------------------------------------------------------


def test_percentile_is_exact_linear_interpolation():
    values = list(range(1, 11))
    assert percentile(values, 50) == 5.5
    assert percentile(values, 90) == pytest.approx(9.1)
    assert percentile(values, 99) == pytest.approx(9.91)
    assert percentile([8.85], 99) == 8.85  # no rounding to whole milliseconds
    d = distribution([3.0, 1.0, 2.0])
    assert d == {
        "count": 3,
        "p50": 2.0,
        "p90": 2.8,
        "p95": 2.9,
        "p99": 2.98,
        "mean": 2.0,
        "min": 1.0,
        "max": 3.0,
    }
    assert distribution([])["p50"] is None


@given(st.lists(st.floats(0, 1e6), min_size=1, max_size=50), st.floats(0, 100))
def test_percentile_stays_within_the_data(values, q):
    ordered = sorted(values)
    assert ordered[0] <= percentile(ordered, q) <= ordered[-1]
    assert percentile(ordered, 0) == ordered[0] and percentile(ordered, 100) == ordered[-1]


def sample(model="gpt-4o", start=1000.0, ttft=100.0, gap=10.0, n=11, error=None, **extra):
    content = [ttft + gap * i for i in range(n)] if error is None else []
    return {
        "model": model,
        "error_kind": error,
        "start_s": start,
        "ttft_ms": ttft if error is None else None,
        "e2e_ms": (content[-1] if content else 50.0) + 5.0,
        "content_ms": content,
        "input_tokens": 20,
        "output_tokens": n if error is None else None,
        "finish_reason": "stop" if error is None else None,
        **extra,
    }


def test_summary_figures():
    samples = [
        sample("gpt-4o", start=1000.0, ttft=100.0, gap=10.0, feedback_score=5),
        sample("gpt-4o", start=1000.5, ttft=300.0, gap=30.0, feedback_score=2),
        sample("o3-mini", start=1001.0, error="http_429", error_code="rate_limit_exceeded"),
        sample("o3-mini", start=1001.2, error="truncated"),
    ]
    slo = Slo(ttft_ms=200.0, tpot_ms=50.0, e2e_ms=0.0)
    report = summarize(samples, slo)
    overall = report["overall"]
    assert (overall["requests"], overall["succeeded"], overall["failed"]) == (4, 2, 2)
    assert overall["error_rate"] == 0.5
    assert overall["errors_by_kind"] == {"http_429": 1, "truncated": 1}
    assert overall["errors_by_code"] == {"http_429:rate_limit_exceeded": 1}
    assert overall["ttft_ms"]["p50"] == 200.0 and overall["ttft_ms"]["max"] == 300.0
    assert overall["tpot_ms"]["min"] == 10.0 and overall["tpot_ms"]["max"] == 30.0
    assert overall["itl_ms"]["count"] == 20 and overall["itl_ms"]["p50"] == 20.0
    assert overall["output_tokens"]["total"] == 22
    assert overall["goodput"]["requests_meeting_slo"] == 1  # the 300 ms TTFT misses the SLO
    assert overall["goodput"]["ratio"] == 0.25
    window = report["window"]
    assert window["duration_s"] == pytest.approx(1.2 + 0.055)  # last: the truncated one
    assert overall["requests_per_s"] == pytest.approx(4 / window["duration_s"], rel=1e-3)
    assert overall["feedback"] == {"count": 2, "mean_score": 3.5, "positive_share": 0.5}
    assert report["models"]["gpt-4o"]["error_rate"] == 0.0
    assert report["models"]["o3-mini"]["goodput"]["ratio"] == 0.0
    assert report["models"]["o3-mini"]["ttft_ms"]["count"] == 0


def test_tpot_uses_reported_tokens():
    assert tpot_ms({"content_ms": [100.0, 200.0], "output_tokens": 11}) == 10.0
    assert tpot_ms({"content_ms": [100.0], "output_tokens": 1}) is None


def test_peak_tokens_per_second_buckets_by_wall_clock():
    a = {"start_s": 10.0, "content_ms": [100.0, 200.0, 1100.0], "output_tokens": 3}
    b = {"start_s": 10.5, "content_ms": [100.0, 300.0], "output_tokens": 4}
    # second 10: a gives 2 tokens (1 per event), b 4 (2 per event); second 11: a's last token
    assert peak_tokens_per_s([a, b]) == 6.0


# --- report and gate -------------------------------------------------------------------------


def build(samples, max_error_rate=None, min_goodput_ratio=None):
    settings = load_config({"LOADGEN_RUN_ID": "r1"}).public()
    return build_report(
        samples,
        settings=settings,
        metadata={"run_id": "r1", "locust_version": "2.47.0", "loadgen_version": "0.1.0"},
        slo=Slo(ttft_ms=200.0),
        max_error_rate=max_error_rate,
        min_goodput_ratio=min_goodput_ratio,
    )


def test_gate_exit_codes():
    ok = [sample(), sample(start=1000.1), sample(start=1000.2, error="http_500")]
    assert build(ok)["gate"]["exit_code"] == EXIT_OK
    assert build(ok, max_error_rate=0.5)["gate"]["exit_code"] == EXIT_OK
    failing = build(ok, max_error_rate=0.2)["gate"]
    assert failing["exit_code"] == EXIT_THRESHOLD
    assert "error rate 0.3333 > LOADGEN_MAX_ERROR_RATE 0.2" in failing["violations"]
    slow = build([sample(ttft=500.0)], min_goodput_ratio=0.9)["gate"]
    assert slow["exit_code"] == EXIT_THRESHOLD and "goodput ratio" in slow["violations"][0]
    assert build([])["gate"]["exit_code"] == EXIT_NO_REQUESTS


def build_added(samples, threshold_ms=50.0):
    settings = load_config({"LOADGEN_RUN_ID": "r1"}).public()
    return build_report(
        samples,
        settings=settings,
        metadata={"run_id": "r1", "locust_version": "2.47.0", "loadgen_version": "0.1.0"},
        slo=Slo(),
        max_error_rate=None,
        min_goodput_ratio=None,
        max_added_ttft_ms=threshold_ms,
    )


def test_added_latency_is_client_minus_the_assistant_per_request():
    samples = [
        # e2e = 100 + 10 * 10 + 5 = 205 ms on the client
        sample("gpt-4o", ttft=100.0, server_ttft_ms=90.0, server_duration_ms=195.0),
        sample("gpt-4o", start=1000.1, ttft=100.0, server_ttft_ms=70.0, server_duration_ms=185.0),
        sample("gpt-4o", start=1000.2, error="http_500", server_ttft_ms=1.0),  # failed: left out
        sample("o3-mini", start=1000.3, ttft=400.0, server_ttft_ms=300.0, server_duration_ms=5.0),
    ]
    report = build_added(samples)
    added = report["models"]["gpt-4o"]["assistant_added_ms"]
    assert added["ttft"]["count"] == 2 and added["ttft"]["min"] == 10.0
    assert added["ttft"]["max"] == 30.0 and added["e2e"]["mean"] == 15.0
    bottleneck = report["assistant_bottleneck"]
    assert bottleneck["models"] == {"o3-mini": 100.0}  # gpt-4o's p99 29.6 ms is under 50
    assert "ASSISTANT_WORKERS" in bottleneck["advice"]
    markdown = render_markdown(report)
    assert "## Latency the assistant added (ms)" in markdown
    assert "| gpt-4o | 20.00 | 29.80 | 15.00 | 19.90 |" in markdown
    assert "measured the assistant, not the model" in markdown
    quiet = build_added(samples[:2])
    assert quiet["assistant_bottleneck"]["models"] == {}
    assert "measured the assistant" not in render_markdown(quiet)


@pytest.mark.parametrize(
    "env, line",
    [
        ({}, "- feedback: **simulated** ratings of 30% of the answers (default rate 0.3"),
        (
            {"LOADGEN_LLM_BACKEND": "https://api.openai.com/v1"},
            "- feedback: no simulated ratings (the backend is https://api.openai.com/v1 (not",
        ),
    ],
)
def test_summary_says_whether_ratings_were_simulated_and_why(env, line):
    config = load_config({"LOADGEN_RUN_ID": "r1", **env})
    report = build_report(
        [sample()],
        settings=config.public(),
        metadata={"run_id": "r1", "simulated_ratings": config.feedback_policy()},
        slo=Slo(),
        max_error_rate=None,
        min_goodput_ratio=None,
    )
    assert report["metadata"]["simulated_ratings"]["simulated"] == (not env)
    assert line in render_markdown(report)
    assert "mean simulated score" in render_markdown(report)


def test_openai_target_has_no_added_latency_section():
    report = build_added([sample()])
    assert report["models"]["gpt-4o"]["assistant_added_ms"]["ttft"]["count"] == 0
    assert "Latency the assistant added" not in render_markdown(report)


def test_report_files(tmp_path: Path):
    report = build([sample(), sample("o3-mini", start=1000.3, error="dropped")])
    json_path, md_path = write_report(report, tmp_path / "out")
    loaded = json.loads(json_path.read_text())
    assert loaded["metadata"]["run_id"] == "r1"
    assert loaded["metadata"]["first_request_at"] == "1970-01-01T00:16:40.000Z"
    assert set(loaded["models"]) == {"gpt-4o", "o3-mini"}
    markdown = md_path.read_text()
    assert "# LLM load report - run `r1`" in markdown
    assert "| gpt-4o | 1 | 100.0 |" in markdown  # TTFT row: count, p50
    assert "- dropped: 1" in markdown


# --- feedback and trace context --------------------------------------------------------------


SLO = Slo(ttft_ms=2000.0, tpot_ms=100.0, e2e_ms=30000.0)


def outcome(**kw) -> dict:
    """A successful answer's raw sample as the rating reads it (neutral coverage)."""
    sample = {
        "model": "gpt-4o",
        "error_kind": None,
        "ttft_ms": 300.0,
        "e2e_ms": 3000.0,
        "finish_reason": "stop",
        "answer_coverage": 0.5,
    }
    sample.update(kw)
    return sample


def score(noise=0.0, slo=SLO, **kw):
    return feedback_score(outcome(**kw), slo, noise)


def test_rating_follows_what_the_user_observed():
    assert score() == 4
    assert score(error_kind="http_429") <= 2
    assert score(error_kind="timeout", answer_coverage=1.0) == 2  # an error is an error
    assert score(ttft_ms=2500.0) == 3  # slow first token
    assert score(ttft_ms=4500.0) == 2  # very slow
    assert score(ttft_ms=4500.0, slo=Slo(0.0, 0.0, 0.0)) == 4  # no SLO: no penalty
    assert score(e2e_ms=31000.0) == 3  # slow answer
    assert score(finish_reason="length") == 3  # truncated
    assert score(answer_coverage=1.0) == 5 and score(answer_coverage=0.0) == 3
    assert score(answer_coverage=None) == 4  # a question without content words
    assert score(noise=5.0) == 5 and score(noise=-9.0) == 1  # clamped to 1..5


def test_content_heuristic_definition():
    assert content_keys("What sizes does the classic crew-neck tee come in?") == {
        "size",
        "class",
        "crew",
        "neck",
        "tee",
        "come",
    }
    assert content_keys("Don't you ship?") == {"ship"}  # "dont", "you": stop words
    assert content_keys("Returns, returned, RETURN") == {"retur"}
    assert coverage("And then?", "anything") is None  # no content word at all
    assert coverage("Do you ship to Canada?", "We ship to Canada in 5 days.") == 1.0
    assert coverage("Do you ship to Canada?", "Shipping to canada: yes.") == 0.5  # ship != shipp
    assert coverage("Do you ship to Canada?", "Our cotton is organic.") == 0.0
    assert coverage("Do you ship to Canada?", "") == 0.0


def test_on_topic_answer_rates_higher_than_an_off_topic_one():
    question = "How much is shipping for an order of three shirts to Germany?"
    on_topic = "Shipping three shirts to Germany costs 6 EUR; an order over 50 EUR ships for free."
    off_topic = "Our organic cotton tees are pre-shrunk and come in twelve colours."
    on, off = coverage(question, on_topic), coverage(question, off_topic)
    assert on > 0.8 and off < 0.2
    rng = random.Random(11)
    noises = [rng.gauss(0, 0.5) for _ in range(500)]
    rated_on = [score(noise=n, answer_coverage=on) for n in noises]
    rated_off = [score(noise=n, answer_coverage=off) for n in noises]
    assert all(a >= b for a, b in zip(rated_on, rated_off, strict=True))
    assert sum(rated_on) / 500 > sum(rated_off) / 500 + 1.0


def test_no_per_model_constant_remains():
    """Two models with identical observable outcomes get identical ratings, draw by draw."""
    assert not hasattr(feedback, "MODEL_QUALITY")
    plan_noise = [r.feedback_noise for r in sequence(planner(seed=5), 400)]
    outcomes = [
        outcome(ttft_ms=t, e2e_ms=e, finish_reason=f, answer_coverage=c)
        for t, e, f, c in zip(
            [300.0, 2500.0, 4500.0, 800.0] * 100,
            [3000.0, 40000.0, 9000.0, 1000.0] * 100,
            ["stop", "length", "stop", "stop"] * 100,
            [0.9, 0.1, None, 0.5] * 100,
            strict=True,
        )
    ]
    ratings = {
        model: [
            feedback_score({**o, "model": model}, SLO, n)
            for o, n in zip(outcomes, plan_noise, strict=True)
        ]
        for model in ("o3-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4o-mini", "any-other-model")
    }
    reference = ratings["o3-mini"]
    assert all(values == reference for values in ratings.values())
    assert set(reference) == {1, 2, 3, 4, 5}  # the outcomes do matter


def test_same_seed_gives_the_same_ratings():
    def ratings(seed):
        plans = sequence(planner(seed=seed, feedback_rate=0.5), 200)
        return [
            feedback_score(outcome(answer_coverage=(p.sequence % 5) / 4), SLO, p.feedback_noise)
            if p.give_feedback
            else None
            for p in plans
        ]

    assert ratings(9) == ratings(9)
    assert ratings(9) != ratings(10)


def test_trace_context_marks_synthetic_traffic():
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", traceparent())
    assert traceparent() != traceparent()
    assert baggage("lg-1", "gpt-4o") == (
        "synthetic_request=true,loadgen.run_id=lg-1,loadgen.model=gpt-4o"
    )
