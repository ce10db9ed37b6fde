"""Benchmark 8: what LLM-as-judge evaluations at sample rate 1.0 cost the assistant: CPU, TTFT.

Two assistants run side by side against one mock LLM, both with full telemetry to a local
collector: A with evaluations off (ASSISTANT_EVALUATIONS=false), B with evaluations on at sample
rate 1.0 and the mock's `mock-judge` (one non-streaming judge call per answer, from a daemon thread
per gunicorn worker, after the answer is delivered).

CPU: windows of K sequential 200-token /api/chat requests from a zero-delay model, alternating
A, B, B, A, ...; a window's CPU is the gunicorn tree's (master + workers, all threads, /proc) from
its start to the start of the variant's next window, and each B window ends only when the mock's
request log (/admin/requests, the ground truth) shows the judge calls of all its answers complete,
so the judge work an answer causes is charged to it. The judge's own HTTP call is measured in the
same run by bench/micro_judge_call.py (the same request, the same openai client settings, in the
assistant's venv, process CPU per call) and subtracted: extra = (B - A - judge HTTP) / A.

TTFT: a 300 ms / 50 tokens/s / 100-token model; both assistants driven at the same time with C
concurrent streams each; added TTFT = client TTFT - the TTFT the mock scheduled for that request
(its request log, matched by trace id), pooled over the windows; on - off at p50 and p99.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from pathlib import Path

import benchlib as h
import yaml

TOKENS = 200
TTFT_MS, TTFT_RATE, TTFT_TOKENS = 300, 50, 100
JUDGE = "mock-judge"
MESSAGE = "Tell me about observability."
VARIANTS = ("off", "on")
METHOD_TTFT = (
    f"mock {TTFT_MS} ms TTFT / {TTFT_RATE} tok/s / {TTFT_TOKENS} tokens; both assistants (full "
    "telemetry, A evaluations off, B on at rate 1.0 with mock-judge) driven at the same time, 20 "
    "concurrent streams each (4 back-to-back per user, 6 windows); added TTFT = client TTFT - "
    "the mock's scheduled TTFT for that request (its /admin/requests ground truth, matched by "
    "trace id), pooled over the windows; "
    "value = (on - off)"
)
META = {
    "benchmark": "evaluation_cpu",
    "title": "8. Evaluation overhead (sample rate 1.0)",
    "metric": (
        "assistant CPU per request added by evaluations beyond the judge's own HTTP call, share "
        "of the CPU per request without evaluations"
    ),
    "unit": "%",
    "comparison": "<=",
    "target": 5,
    "anchor": (
        "Splunk's util-genai deepeval evaluator: 11 judge calls and ~0.4 s of in-process CPU per "
        "evaluation (services/assistant/README.md)"
    ),
    "method": (
        "process-tree CPU (/proc, gunicorn master+workers) per sequential 200-token request from "
        "a zero-delay mock, both with full telemetry, A evaluations off / B on at rate 1.0 "
        "(mock-judge), alternating windows, B's charged until the mock's request log shows its "
        "judge calls done; judge HTTP CPU per call measured in the same run (same request, same "
        "openai client settings, bench/micro_judge_call.py); value = median over pairs of "
        "(B - A - judge HTTP) / A"
    ),
}
META_TTFT_P50 = {
    **META,
    "benchmark": "evaluation_ttft_p50",
    "title": "8b. Evaluation and TTFT, p50",
    "metric": "added TTFT p50, evaluations on - off",
    "unit": "ms",
    "target": 1,
    "method": METHOD_TTFT + " at p50",
}
META_TTFT_P99 = {
    **META_TTFT_P50,
    "benchmark": "evaluation_ttft_p99",
    "title": "8c. Evaluation and TTFT, p99",
    "metric": "added TTFT p99, evaluations on - off",
    "target": 5,
    "method": METHOD_TTFT + " at p99",
}


def judge_profile() -> dict:
    """The shipped mock-judge profile (services/mock-llm/src/mock_llm/profiles.yaml), no jitter."""
    shipped = h.ROOT / "services" / "mock-llm" / "src" / "mock_llm" / "profiles.yaml"
    profile = dict(yaml.safe_load(shipped.read_text())["models"][JUDGE])
    profile["ttft_jitter_ms"] = 0
    return profile


def judge_calls(entries: list[dict]) -> tuple[int, int]:
    """(complete, failed) judge calls in a slice of the mock's request log."""
    judge = [e for e in entries if e.get("model") == JUDGE]
    complete = sum(1 for e in judge if e.get("status") == 200 and e.get("completed"))
    return complete, sum(1 for e in judge if e.get("status") not in (200, None))


def wait_for_judge(mock_url: str, answers: int, timeout_s: float = 120.0) -> dict:
    """Wait until the mock's log (reset at the window's start) shows `answers` judge calls done."""
    started = time.monotonic()
    while True:
        complete, failed = judge_calls(h.mock_requests(mock_url))
        if complete + failed >= answers or time.monotonic() - started > timeout_s:
            break
        time.sleep(0.1)
    time.sleep(0.2)  # the worker thread parses the verdict, emits the events, stores the badge
    return {"complete": complete, "failed": failed, "wait_s": time.monotonic() - started}


def cpu_phase(args, work: Path, targets: dict, mock_url: str) -> dict:
    per_window = 3 if args.quick else 20
    repetitions = 1 if args.quick else 10
    body = {"message": MESSAGE, "model": "bench", "max_tokens": TOKENS}
    marks: dict[str, list[float]] = {name: [] for name in VARIANTS}
    answers: dict[str, list[int]] = {name: [] for name in VARIANTS}
    failures = dict.fromkeys(VARIANTS, 0)
    judge_waits: list[dict] = []

    def send(url: str, count: int) -> dict:
        return h.stream_stats(h.sequential_chats(work, url, body, count))

    for _proc, url in targets.values():  # warm-up: imports, connections, the judge thread
        send(url, 3)
    wait_for_judge(mock_url, 3)
    idle_s = 1.0 if args.quick else 3.0  # idle threads (exporters, the judge's queue poll)
    meters = {name: h.CpuMeter(proc.pid) for name, (proc, _url) in targets.items()}
    time.sleep(idle_s)
    idle = {name: meter.read()[0] / idle_s * 1000 for name, meter in meters.items()}

    def window(name: str):
        def measure() -> float:
            proc, url = targets[name]
            h.mock_requests(mock_url, reset=True)
            marks[name].append(h.tree_cpu_seconds(proc.pid))
            stats = send(url, per_window)
            answers[name].append(stats["ok"])
            failures[name] += stats["failed"]
            if name == "on":
                judge_waits.append(wait_for_judge(mock_url, stats["ok"]))
            return 0.0

        return measure

    h.interleaved({name: window(name) for name in VARIANTS}, repetitions)
    time.sleep(7.0)  # longer than the span and log batch delays: the last window's export
    for name, (proc, _url) in targets.items():
        marks[name].append(h.tree_cpu_seconds(proc.pid))
    per_request = {
        name: [
            (marks[name][i + 1] - marks[name][i]) / max(ok, 1) for i, ok in enumerate(answers[name])
        ]
        for name in VARIANTS
    }
    return {
        "requests_per_window": per_window,
        "repetitions": repetitions,
        "per_request_s": per_request,
        "failed_requests": failures,
        "judge_calls_per_window": [w["complete"] for w in judge_waits],
        "judge_failed": sum(w["failed"] for w in judge_waits),
        "judge_wait_s": h.summary([w["wait_s"] for w in judge_waits]),
        "answers_on": sum(answers["on"]),
        "idle_cpu_ms_per_s": idle,
    }


def ttft_phase(args, work: Path, targets: dict, mock_url: str) -> dict:
    concurrency = 3 if args.quick else 20
    per_user = 1 if args.quick else 4
    windows = 1 if args.quick else 6
    body = {"message": MESSAGE, "model": "bench-ttft", "max_tokens": TTFT_TOKENS}
    added: dict[str, list[float]] = {name: [] for name in VARIANTS}
    per_window: list[dict] = []
    unmatched = dict.fromkeys(VARIANTS, 0)
    failures = dict.fromkeys(VARIANTS, 0)
    scheduled_ms: list[float] = []
    judged = judge_failed = 0
    for index in range(windows):
        h.mock_requests(mock_url, reset=True)
        reports: dict[str, dict] = {}

        def drive(name: str, reports: dict = reports) -> None:
            reports[name] = h.run_client(
                work,
                url=f"{targets[name][1]}/api/chat",
                kind="assistant",
                body=body,
                unique_session=True,
                concurrency=concurrency,
                requests_per_user=per_user,
                ramp_s=1.0,
                timeout_s=60,
                max_seconds=300,
            )

        order = VARIANTS if index % 2 == 0 else tuple(reversed(VARIANTS))
        threads = [threading.Thread(target=drive, args=(name,)) for name in order]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if set(reports) != set(VARIANTS):
            raise RuntimeError("a load client of the TTFT phase failed (see its log)")
        time.sleep(1.0)  # the last judge calls (after their answers) land in the log too
        entries = h.mock_requests(mock_url)
        complete, failed = judge_calls(entries)
        judged += complete
        judge_failed += failed
        truth = {
            e["trace_id"]: e["scheduled_ttft_ms"]
            for e in entries
            if e.get("model") == "bench-ttft" and e.get("trace_id") and e.get("status") == 200
        }
        scheduled_ms += truth.values()
        window_added: dict[str, list[float]] = {}
        for name in VARIANTS:
            window_added[name] = []
            for r in reports[name]["requests"]:
                if not r.get("ok"):
                    failures[name] += 1
                elif r.get("trace_id") in truth:
                    window_added[name].append(r["ttft"] * 1000 - truth[r["trace_id"]])
                else:
                    unmatched[name] += 1
            added[name] += window_added[name]
        per_window.append(
            {
                q: h.percentile(window_added["on"], q) - h.percentile(window_added["off"], q)
                for q in (50, 99)
            }
        )
    return {
        "concurrency_per_assistant": concurrency,
        "requests_per_user": per_user,
        "windows": windows,
        "added_ttft_ms": {name: h.distribution(added[name]) for name in VARIANTS},
        "on_minus_off_ms": {
            q: h.percentile(added["on"], q) - h.percentile(added["off"], q) for q in (50, 99)
        },
        "on_minus_off_ms_per_window": per_window,
        "mock_scheduled_ttft_ms": h.distribution(scheduled_ms),
        "unmatched_requests": unmatched,
        "failed_requests": failures,
        "judge_calls_complete": judged,
        "judge_failed": judge_failed,
    }


def run(args) -> None:
    work = h.work_dir(args, "evaluations")
    profiles = h.write_profiles(
        work / "profiles.yaml",
        {
            "bench": h.ZERO_DELAY_200,
            "bench-ttft": h.fixed_profile(TTFT_MS, TTFT_RATE, TTFT_TOKENS),
            JUDGE: judge_profile(),
        },
    )
    models = {"ASSISTANT_MODELS": "bench,bench-ttft"}
    with (
        h.collector(work / "collector") as collector,
        h.mock_llm(work, profiles, env={"MOCK_LLM_REQUEST_LOG_SIZE": "100000"}) as (_, mock_url),
    ):
        judge_env = {
            "ASSISTANT_EVALUATIONS": "true",
            "OTEL_INSTRUMENTATION_GENAI_EVALUATION_SAMPLE_RATE": "1.0",
            "ASSISTANT_JUDGE_MODEL": JUDGE,
            "ASSISTANT_JUDGE_BASE_URL": f"{mock_url}/v1",
        }
        common = {"telemetry": True, "otlp_endpoint": collector.otlp_http}
        with (
            h.assistant(work, f"{mock_url}/v1", **common, env=models, name="off") as off,
            h.assistant(
                work, f"{mock_url}/v1", **common, env={**models, **judge_env}, name="on"
            ) as on,
        ):
            targets = {"off": off, "on": on}
            cpu = cpu_phase(args, work, targets, mock_url)
            ttft = ttft_phase(args, work, targets, mock_url)
            calls = "20" if args.quick else "300"
            judge_http = h.run_venv_script(
                "assistant", "micro_judge_call.py", "--base-url", f"{mock_url}/v1", "--calls", calls
            )
            time.sleep(2.0)
        judge_spans = sum(1 for s in collector.spans() if s["name"] == f"judge {JUDGE}")
        results = [
            r for r in collector.log_records() if r["event_name"] == "gen_ai.evaluation.result"
        ]
    if "error" in judge_http:
        raise RuntimeError(f"bench/micro_judge_call.py failed: {judge_http['error']}")
    report(args, cpu, ttft, judge_http, judge_spans, len(results))


def report(args, cpu: dict, ttft: dict, judge_http: dict, judge_spans: int, events: int) -> None:
    off, on = cpu["per_request_s"]["off"], cpu["per_request_s"]["on"]
    http_s = judge_http["cpu_ms_per_call_mean"] / 1000
    ratios = h.ratio_summary(on, off)
    extra_pct = [(b - a - http_s) / a * 100 for a, b in zip(off, on, strict=True) if a]
    extra = h.summary(extra_pct)
    added_ms = [(b - a) * 1000 for a, b in zip(off, on, strict=True)]
    details = h.clean(
        {
            "cpu": {
                **{k: v for k, v in cpu.items() if k != "per_request_s"},
                "cpu_ms_per_request_off": h.summary([x * 1000 for x in off]),
                "cpu_ms_per_request_on": h.summary([x * 1000 for x in on]),
                "ratio_on_off": ratios,
                "added_cpu_ms_per_request": h.summary(added_ms),
                "judge_http_call": judge_http,
                "extra_beyond_judge_http_ms_per_request": statistics.median(added_ms)
                - judge_http["cpu_ms_per_call_mean"],
                "extra_beyond_judge_http_pct_of_off": extra,
                "judge_spans_in_archive": judge_spans,
                "evaluation_events_in_archive": events,
                "cpu_resolution_ms": 1000 / h.CLK_TCK,
            },
            "ttft": ttft,
        }
    )
    failed = {**cpu["failed_requests"]}
    for name, count in ttft["failed_requests"].items():
        failed[name] += count
    print(
        f"evaluations: off {details['cpu']['cpu_ms_per_request_off']['median']:.1f} ms, on "
        f"{details['cpu']['cpu_ms_per_request_on']['median']:.1f} ms per request, ratio "
        f"{ratios['median']:.3f}, judge HTTP {judge_http['cpu_ms_per_call_mean']:.2f} ms, extra "
        f"{extra['median']:.1f} %; added TTFT on - off p50 {ttft['on_minus_off_ms'][50]:.1f} ms, "
        f"p99 {ttft['on_minus_off_ms'][99]:.1f} ms",
        file=sys.stderr,
    )
    if any(failed.values()):
        raise RuntimeError(f"requests failed during the evaluation benchmark: {failed}")
    cpu_reason = (
        f"evaluations add {statistics.median(added_ms):.1f} ms CPU per request "
        f"(ratio {ratios['median']:.3f}), of which the judge's HTTP call is "
        f"{judge_http['cpu_ms_per_call_mean']:.1f} ms"
    )
    h.record(
        args,
        **META,
        value=h.finite(extra["median"], 2),
        details=details,
        reason=cpu_reason,
        value_range=(extra["min"], extra["max"], extra["n"]),
    )
    added = ttft["added_ttft_ms"]
    for meta, q in ((META_TTFT_P50, 50), (META_TTFT_P99, 99)):
        key = f"p{q}"
        windows = [w[q] for w in ttft["on_minus_off_ms_per_window"]]
        h.record(
            args,
            **meta,
            value=h.finite(ttft["on_minus_off_ms"][q], 2),
            details={"see": "evaluation_cpu", "ttft": details["ttft"]},
            reason=(
                f"added TTFT {key} {added['on'][key]:.1f} ms with evaluations on vs "
                f"{added['off'][key]:.1f} ms off ({ttft['concurrency_per_assistant']} streams "
                "each, side by side)"
            ),
            value_range=(min(windows), max(windows), len(windows)),
        )


if __name__ == "__main__":
    sys.exit(h.main_guard(run, h.parser(__doc__.splitlines()[0]), META))
