"""A real, bounded run: mock LLM + assistant + test collector; yields the collector's archive.

Shared by tests/scorecard and tests/dashboards (computed once per pytest session). The client
here measures TTFT and E2E itself and writes them in the load generator's llm-summary.json
schema, with the latency the assistant added (client figure minus what the assistant's `done`
event reported for the same request, as the load generator's `assistant_added_ms`), so the
client-vs-server comparison is exercised with real numbers. The mock's model profiles as served
(`GET /v1/models`) are kept for tests that check values against them.

Half of the conversations are marked as simulated, as the load generator marks its own: their
chat and feedback requests carry `synthetic_request=true` in the baggage. The other half carry
only the run id (a person testing in a labelled run), so their ratings are real ones.
"""

from __future__ import annotations

import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests

from harness.assistant import start_assistant
from harness.collector import (
    log_records_from_otlp,
    metric_points_from_otlp,
    read_jsonl,
    spans_from_otlp,
    start_collector,
    wait_until,
)
from harness.mock_llm import start_mock_llm

MODELS = ("gpt-4o", "gpt-4o-mini", "gpt-4.1-mini", "o3-mini")
REQUESTS_PER_MODEL = 8
CONCURRENCY = 4
MAX_TOKENS = 24
FAULTS = {"models": {"gpt-4o-mini": {"500": 0.35}}}  # seeded per request: the same every run
RUN_ID = "scorecard-test-run"


@dataclass
class ClientResult:
    index: int
    model: str
    start_s: float
    end_s: float
    ttft_s: float | None
    response_id: str | None
    error: str | None
    score: int | None = None
    server_ttft_ms: float | None = None  # the `done` event's ttft_ms (the chat span's TTFT)
    server_duration_ms: float | None = None  # the `done` event's duration_ms (the chat call)
    synthetic: bool = True  # sent with synthetic_request=true (chat and feedback)


@dataclass
class RealRun:
    archive: Path
    summary: Path
    results: list[ClientResult]
    spans: list[dict] = field(default_factory=list)
    points: list[dict] = field(default_factory=list)
    logs: list[dict] = field(default_factory=list)
    profiles: dict[str, dict] = field(default_factory=dict)  # model -> the mock's mock_profile


_CACHE: dict[str, RealRun] = {}


def is_synthetic(index: int) -> bool:
    """Rounds of requests 0-1, 4-5 simulated, 2-3, 6-7 real: every model has both, rated."""
    return (index // len(MODELS)) % 4 < 2


def _chat(url: str, index: int, model: str) -> ClientResult:
    session = f"scorecard-{index:04d}"
    synthetic = is_synthetic(index)
    baggage = (
        f"synthetic_request=true,loadgen.run_id={RUN_ID}"
        if synthetic
        else f"loadgen.run_id={RUN_ID}"
    )
    start = time.time()
    ttft = response_id = error = done = None
    event = ""
    with requests.post(
        f"{url}/api/chat",
        json={
            "message": f"Question {index}: what is observability?",
            "model": model,
            "max_tokens": MAX_TOKENS,
        },
        headers={"X-Session-Id": session, "baggage": baggage},
        stream=True,
        timeout=60,
    ) as response:
        response.raise_for_status()
        for raw in response.iter_lines(decode_unicode=True):
            if raw.startswith("event: "):
                event = raw[7:]
            elif raw.startswith("data: "):
                data = json.loads(raw[6:])
                if event == "start":
                    response_id = data["response_id"]
                elif event == "delta" and ttft is None and data.get("text"):
                    ttft = time.time() - start
                elif event == "error":
                    error = data["type"]
                elif event == "done":
                    done = data
    result = ClientResult(index, model, start, time.time(), ttft, response_id, error)
    result.synthetic = synthetic
    if done is not None:
        result.server_ttft_ms = done.get("ttft_ms")
        result.server_duration_ms = done.get("duration_ms")
    if error is None and response_id and (index // len(MODELS)) % 2 == 0:
        result.score = index % 5 + 1
        headers = {"X-Session-Id": session}
        if synthetic:  # as the load generator sends its ratings
            headers["baggage"] = baggage
        feedback = requests.post(
            f"{url}/api/feedback",
            json={"response_id": response_id, "score": result.score},
            headers=headers,
            timeout=10,
        )
        assert feedback.status_code == 204, feedback.text
    return result


def _distribution(values: list[float]) -> dict:
    if not values:
        return {"count": 0, "p50": None, "p90": None, "p99": None}
    if len(values) == 1:
        return {"count": 1, "p50": values[0], "p90": values[0], "p99": values[0]}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"count": len(values), "p50": cuts[49], "p90": cuts[89], "p99": cuts[98]}


def _full_distribution(values: list[float]) -> dict:
    """The load generator's distribution: count, p50/p90/p95/p99, mean, min, max."""
    if not values:
        return dict.fromkeys(("p50", "p90", "p95", "p99", "mean", "min", "max"), None) | {
            "count": 0
        }
    cuts = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else None
    return {
        "count": len(values),
        **{f"p{p}": cuts[p - 1] if cuts else values[0] for p in (50, 90, 95, 99)},
        "mean": statistics.fmean(values),
        "min": min(values),
        "max": max(values),
    }


def write_client_summary(path: Path, results: list[ClientResult]) -> Path:
    """The client's view in the load generator's llm-summary.json schema (the fields we read)."""
    models = {}
    for model in MODELS:
        mine = [r for r in results if r.model == model]
        good = [r for r in mine if r.error is None]
        models[model] = {
            "requests": len(mine),
            "failed": len(mine) - len(good),
            "ttft_ms": _distribution([r.ttft_s * 1000 for r in good if r.ttft_s is not None]),
            "e2e_ms": _distribution([(r.end_s - r.start_s) * 1000 for r in good]),
            "assistant_added_ms": {
                "ttft": _full_distribution(
                    [
                        r.ttft_s * 1000 - r.server_ttft_ms
                        for r in good
                        if r.ttft_s is not None and r.server_ttft_ms is not None
                    ]
                ),
                "e2e": _full_distribution(
                    [
                        (r.end_s - r.start_s) * 1000 - r.server_duration_ms
                        for r in good
                        if r.server_duration_ms is not None
                    ]
                ),
            },
        }
    path.write_text(
        json.dumps(
            {
                "schema": "loadgen.llm-summary/1",
                "metadata": {"run_id": RUN_ID},
                "window": {
                    "first_start_s": min(r.start_s for r in results),
                    "last_end_s": max(r.end_s for r in results),
                },
                "models": models,
            },
            indent=2,
        )
    )
    return path


def _docs(archive: Path, signal: str) -> list[dict]:
    return read_jsonl(sorted(archive.glob(f"{signal}*.jsonl"), key=lambda p: p.stat().st_mtime))


def real_run(root: Path) -> RealRun:
    """Run once per session; later calls return the same archive."""
    if "run" in _CACHE:
        return _CACHE["run"]
    root.mkdir(parents=True, exist_ok=True)
    jobs = [(i, MODELS[i % len(MODELS)]) for i in range(REQUESTS_PER_MODEL * len(MODELS))]
    with (
        start_mock_llm(root, env={"MOCK_LLM_SEED": "7"}) as mock,
        start_collector(root) as collector,
    ):
        mock.set_faults(FAULTS)
        served = requests.get(
            f"{mock.base_url}/models",
            headers={"Authorization": f"Bearer {mock.api_key}"},
            timeout=10,
        )
        served.raise_for_status()
        profiles = {m["id"]: m.get("mock_profile") or {} for m in served.json()["data"]}
        env = {"ASSISTANT_LLM_MAX_RETRIES": "0", "ASSISTANT_EVALUATIONS": "true"}  # as shipped
        with start_assistant(root, mock.base_url, otlp=collector.otlp_http, env=env) as assistant:
            with ThreadPoolExecutor(CONCURRENCY) as pool:
                results = list(pool.map(lambda job: _chat(assistant.url, *job), jobs))
            rated = sum(1 for r in results if r.score is not None)

            def complete() -> bool:
                spans = [s for d in _docs(collector.archive, "traces") for s in spans_from_otlp(d)]
                chats = [
                    s for s in spans if s["kind"] == "CLIENT" and s["name"].startswith("chat ")
                ]
                logs = [
                    r for d in _docs(collector.archive, "logs") for r in log_records_from_otlp(d)
                ]
                events = [r for r in logs if r["event_name"] == "gen_ai.evaluation.result"]
                points = [
                    p
                    for d in _docs(collector.archive, "metrics")
                    for p in metric_points_from_otlp(d)
                    if p["name"] == "gen_ai.client.operation.duration"
                ]
                return (
                    len(chats) >= len(jobs)
                    and len(events) >= rated
                    and sum(p["count"] for p in points) >= len(jobs)
                )

            wait_until(complete, timeout=60, interval=0.5)
    archive = collector.archive
    run = RealRun(
        archive=archive,
        summary=write_client_summary(root / "llm-summary.json", results),
        results=results,
        spans=[s for d in _docs(archive, "traces") for s in spans_from_otlp(d)],
        points=[p for d in _docs(archive, "metrics") for p in metric_points_from_otlp(d)],
        logs=[r for d in _docs(archive, "logs") for r in log_records_from_otlp(d)],
        profiles=profiles,
    )
    _CACHE["run"] = run
    return run
