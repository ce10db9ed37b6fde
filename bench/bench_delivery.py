"""Benchmark 6: telemetry delivery latency, from a request's end to its span in the archive.

A real local collector (build/otelcol-lab with the shipped collector/agent.yaml: batch 1 s, file
exporter) and two assistants side by side: the shipped settings (the assistant sets
OTEL_BSP_SCHEDULE_DELAY=1000) and the SDK's default (5000 ms), to show the trade-off. Requests
alternate between them at a demo-like pace (a few per second); the client notes the wall-clock
time at the end of each stream and the trace id from the `start` event, while a tailer thread
reads new lines of the archive every 50 ms and notes when each trace's root (SERVER) span first
appears. Latency = appearance - request end.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from pathlib import Path

import benchlib as h

META = {
    "benchmark": "delivery_latency",
    "title": "6. Telemetry delivery latency",
    "metric": "request end -> root span in the collector archive, p95 (shipped settings)",
    "unit": "s",
    "comparison": "<=",
    "target": 5.0,
    "anchor": "SDK default OTEL_BSP_SCHEDULE_DELAY 5 s + collector batch 1 s + file flush",
    "method": (
        "client end-of-stream wall clock vs first sight of the trace's root span in "
        "archive/traces*.jsonl (polled every 50 ms); shipped (span export every 1 s) vs the SDK "
        "default OTEL_BSP_SCHEDULE_DELAY=5000, requests alternating between the two"
    ),
}


class ArchiveTailer(threading.Thread):
    """Notes the wall-clock time at which each root span first appears in the trace archive."""

    def __init__(self, archive: Path) -> None:
        super().__init__(daemon=True)
        self.archive = archive
        self.offsets: dict[Path, int] = {}
        self.partial: dict[Path, bytes] = {}
        self.seen: dict[str, float] = {}
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.05):
            now = time.time()
            for path in sorted(self.archive.glob("traces*.jsonl")):
                self._read(path, now)

    def _read(self, path: Path, now: float) -> None:
        with contextlib.suppress(OSError), path.open("rb") as handle:
            handle.seek(self.offsets.get(path, 0))
            data = self.partial.pop(path, b"") + handle.read()
            self.offsets[path] = handle.tell()
        lines = data.split(b"\n")
        if lines and lines[-1]:
            self.partial[path] = lines[-1]
        for line in lines[:-1]:
            with contextlib.suppress(ValueError):
                self._spans(json.loads(line), now)

    def _spans(self, doc: dict, now: float) -> None:
        for resource_spans in doc.get("resourceSpans", []):
            for scope_spans in resource_spans.get("scopeSpans", []):
                for span in scope_spans.get("spans", []):
                    if not span.get("parentSpanId"):
                        self.seen.setdefault(span.get("traceId", ""), now)


def one_chat(url: str, session: str) -> tuple[str, float]:
    """POST /api/chat, read the whole stream; (trace id, wall-clock end)."""
    import requests

    response = requests.post(
        f"{url}/api/chat",
        json={"message": "Tell me about observability.", "max_tokens": 20},
        headers={"X-Session-Id": session},
        timeout=30,
    )
    end = time.time()
    response.raise_for_status()
    for block in response.text.split("\n\n"):
        if block.startswith("event: start"):
            return json.loads(block.split("data: ", 1)[1])["trace_id"], end
    raise RuntimeError(f"no start event in {response.text[:200]!r}")


def run(args) -> None:
    work = h.work_dir(args, "delivery")
    count = 3 if args.quick else 40
    pace_s = 0.3
    profiles = h.write_profiles(work / "profiles.yaml", {"bench": h.fixed_profile(50, 200, 20)})
    variants = {
        "shipped (BSP 1000 ms)": {},
        "SDK default (BSP 5000 ms)": {"OTEL_BSP_SCHEDULE_DELAY": "5000"},
    }
    ends: dict[str, dict[str, float]] = {name: {} for name in variants}
    with contextlib.ExitStack() as stack:
        collector = stack.enter_context(h.collector(work / "collector"))
        _mock, mock_url = stack.enter_context(h.mock_llm(work, profiles))
        urls = {}
        for index, (name, env) in enumerate(variants.items()):
            _proc, urls[name] = stack.enter_context(
                h.assistant(
                    work,
                    f"{mock_url}/v1",
                    telemetry=True,
                    otlp_endpoint=collector.otlp_http,
                    env=env,
                    name=f"delivery-{index}",
                )
            )
        tailer = ArchiveTailer(collector.archive)
        tailer.start()
        try:
            for i in range(count):
                for name, url in urls.items():
                    trace_id, end = one_chat(url, f"bench-delivery-{i:04d}")
                    ends[name][trace_id] = end
                    time.sleep(pace_s)
            deadline = time.monotonic() + 30
            wanted = {t for per in ends.values() for t in per}
            while time.monotonic() < deadline and not wanted <= set(tailer.seen):
                time.sleep(0.2)
        finally:
            tailer.stopping.set()
            tailer.join(timeout=5)
    results = {}
    for name, per in ends.items():
        latencies = [tailer.seen[t] - end for t, end in per.items() if t in tailer.seen]
        results[name] = {
            **h.distribution(latencies),
            "missing_spans": len(per) - len(latencies),
        }
        print(
            f"delivery [{name}]: p50 {results[name]['p50']:.2f} s, p95 {results[name]['p95']:.2f}"
            f" s, missing {results[name]['missing_spans']}",
            file=sys.stderr,
        )
    shipped = results["shipped (BSP 1000 ms)"]
    details = h.clean(
        {
            "requests_per_variant": count,
            "pace_s": pace_s,
            "latency_s_by_variant": results,
            "collector_batch_timeout_s": 1.0,
        }
    )
    value = shipped["p95"] if shipped["n"] else None
    default = results["SDK default (BSP 5000 ms)"]
    reason = (
        "span export every 1 s + collector batch 1 s + file flush; side by side, the SDK "
        f"default OTEL_BSP_SCHEDULE_DELAY=5000 gave p95 {default['p95']:.2f} s"
    )
    h.record(
        args,
        **META,
        value=h.finite(value, 2) if value is not None else None,
        details=details,
        reason=reason,
    )


if __name__ == "__main__":
    sys.exit(h.main_guard(run, h.parser(__doc__.splitlines()[0]), META))
