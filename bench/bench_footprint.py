"""Benchmark 7: stack footprint - resident memory of every service under the demo load, and the
time from start to the first span in the archive.

Process-level measurement (no containers): the collector (build/otelcol-lab, shipped agent
config), the mock LLM (shipped profiles), the assistant (shipped settings, telemetry on) and the
load generator (shipped demo defaults, assistant target, bounded by LOADGEN_RUN_TIME) are started
at t0 exactly as the stack wires them. RSS of each process tree (/proc statm) is sampled every
second; the peak per service and the peak of the sum are reported. Time to first span = t0 ->
first root span in archive/traces.jsonl. Container runtime overhead and image pulls are not
included: the compose-based measurement needs a container engine (see docs/performance.md).
"""

from __future__ import annotations

import contextlib
import sys
import time

import benchlib as h

META = {
    "benchmark": "stack_footprint",
    "title": "7. Stack footprint",
    "metric": "peak total RSS of all services under the demo load (processes, no containers)",
    "unit": "MB",
    "comparison": "<=",
    "target": 1536,
    "anchor": "the OpenTelemetry demo needs 6-7.5 GB",
    "method": (
        "collector, mock, assistant, loadgen started as processes with shipped settings; "
        "RSS of each process tree sampled every 1 s during the demo load; peak of the sum"
    ),
}
META_FIRST_SPAN = {
    **META,
    "benchmark": "first_span",
    "title": "7b. Time to first span",
    "anchor": "none given; compose health checks run every 10 s",
    "metric": "start of the services -> first span in the archive (processes, no containers)",
    "unit": "s",
    "target": 30,
    "method": (
        "t0 = collector start; mock, assistant and loadgen started right after, each when the "
        "previous answers its health check; archive polled every 100 ms"
    ),
}


def first_span_seen(archive) -> bool:
    for path in archive.glob("traces*.jsonl"):
        with contextlib.suppress(OSError):
            if b'"spans"' in path.read_bytes():
                return True
    return False


def run(args) -> None:
    work = h.work_dir(args, "footprint")
    seconds = 6 if args.quick else 40
    mock_profiles = h.ROOT / "services" / "mock-llm" / "src" / "mock_llm" / "profiles.yaml"
    peaks: dict[str, int] = {}
    peak_total = 0
    first_span_s = None
    t0 = time.monotonic()
    with contextlib.ExitStack() as stack:
        collector = stack.enter_context(h.collector(work / "collector"))
        mock, mock_url = stack.enter_context(h.mock_llm(work, mock_profiles))
        assistant, assistant_url = stack.enter_context(
            h.assistant(
                work,
                f"{mock_url}/v1",
                telemetry=True,
                otlp_endpoint=collector.otlp_http,
                env={"ASSISTANT_MODELS": "", "ASSISTANT_DEFAULT_MODEL": ""},
            )
        )
        loadgen = stack.enter_context(
            h.ServiceProcess(
                "loadgen-footprint",
                [h.venv_python("loadgen"), "-m", "loadgen"],
                work,
                env={
                    "PYTHONPATH": str(h.ROOT / "services" / "loadgen" / "src"),
                    "LOADGEN_HOST": assistant_url,
                    "LOADGEN_HEADLESS": "true",
                    "LOADGEN_RUN_TIME": f"{seconds}s",
                    "LOADGEN_REPORT_DIR": str(work / "loadgen-report"),
                    "LOADGEN_WEB_HOST": "127.0.0.1",
                    "LOADGEN_STOP_TIMEOUT_S": "5",
                },
            )
        )
        services = {
            "otel-collector": collector.process.pid,
            "mock-llm": mock.pid,
            "assistant": assistant.pid,
            "loadgen": loadgen.pid,
        }
        deadline = time.monotonic() + seconds + 30
        next_sample = 0.0
        while time.monotonic() < deadline and loadgen.alive():
            now = time.monotonic()
            if first_span_s is None and first_span_seen(collector.archive):
                first_span_s = now - t0
            if now >= next_sample:
                sizes = {name: h.rss_bytes(pid) for name, pid in services.items()}
                for name, size in sizes.items():
                    peaks[name] = max(peaks.get(name, 0), size)
                peak_total = max(peak_total, sum(sizes.values()))
                next_sample = now + 1.0
            time.sleep(0.1)
    mb = 1024 * 1024
    details = h.clean(
        {
            "demo_load_seconds": seconds,
            "peak_rss_mb_by_service": {k: v / mb for k, v in peaks.items()},
            "peak_total_rss_mb": peak_total / mb,
            "first_span_s": first_span_s,
            "not_measured": "container runtime overhead, image build/pull, compose up",
        }
    )
    print(
        f"footprint: peak total {peak_total / mb:.0f} MB "
        f"({', '.join(f'{k} {v / mb:.0f}' for k, v in peaks.items())}), first span "
        f"{first_span_s if first_span_s is None else round(first_span_s, 1)} s",
        file=sys.stderr,
    )
    h.record(args, **META, value=h.finite(peak_total / mb, 0), details=details)
    h.record(
        args,
        **META_FIRST_SPAN,
        value=h.finite(first_span_s, 1) if first_span_s is not None else None,
        details={"see": "stack_footprint"},
    )


if __name__ == "__main__":
    sys.exit(h.main_guard(run, h.parser(__doc__.splitlines()[0]), META))
