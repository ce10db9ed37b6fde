"""Benchmark 2: saturation throughput of one assistant, telemetry on vs off.

One assistant with the shipped telemetry (OTLP gRPC to a local collector) and one with
OTEL_SDK_DISABLED=true run side by side, each as shipped (gunicorn gthread, ASSISTANT_WORKERS and
ASSISTANT_THREADS defaults), against one zero-delay mock streaming 200-token answers. Windows
alternate (A,B,B,A,...): in each, a closed-loop client keeps C streams in flight for T seconds;
throughput = completed requests / (last end - first start). Result: the median of the paired
per-repetition ratios instrumented / uninstrumented.
"""

from __future__ import annotations

import sys

import benchlib as h

META = {
    "benchmark": "saturation_throughput",
    "title": "2. Saturation throughput",
    "metric": "requests/s instrumented / uninstrumented (200-token streams)",
    "unit": "x",
    "comparison": ">=",
    "target": 0.90,
    "anchor": "OpenLLMetry's own tracker reports a 4-6x throughput drop",
    "method": (
        "closed loop, C concurrent streams for T s per window against a zero-delay mock, "
        "shipped gunicorn settings, alternating windows, median of paired ratios"
    ),
}


def rps(report: dict) -> float:
    ok = [r for r in report["requests"] if r.get("ok") and "end" in r]
    if len(ok) < 2:
        return 0.0
    span = max(r["end"] for r in ok) - min(r["start"] for r in ok)
    return len(ok) / span if span else 0.0


def run(args) -> None:
    work = h.work_dir(args, "throughput")
    concurrency = 2 if args.quick else 16
    seconds = 2.0 if args.quick else 15.0
    repetitions = 1 if args.quick else 3
    profiles = h.write_profiles(work / "profiles.yaml", {"bench": h.ZERO_DELAY_200})
    body = {"message": "Tell me about observability.", "max_tokens": 200}
    with (
        h.collector(work / "collector") as collector,
        h.mock_llm(work, profiles) as (_mock, mock_url),
        h.assistant(
            work, f"{mock_url}/v1", telemetry=True, otlp_endpoint=collector.otlp_http, name="on"
        ) as (on, on_url),
        h.assistant(work, f"{mock_url}/v1", telemetry=False, name="off") as (off, off_url),
    ):
        targets = {"on": (on, on_url), "off": (off, off_url)}
        cpu_share: dict[str, list[float]] = {"on": [], "off": []}
        failures = {"on": 0, "off": 0}
        errors: dict[str, int] = {}

        def load(name: str, window_s: float) -> float:
            proc, url = targets[name]
            meter = h.CpuMeter(proc.pid)
            report = h.run_client(
                work,
                url=f"{url}/api/chat",
                kind="assistant",
                body=body,
                headers={"X-Session-Id": f"bench-throughput-{name}"},
                unique_session=True,
                concurrency=concurrency,
                requests_per_user=10_000,
                ramp_s=0.2,
                timeout_s=60,
                max_seconds=window_s,
            )
            cpu, wall = meter.read()
            cpu_share[name].append(cpu / wall if wall else 0.0)
            failures[name] += sum(not r.get("ok") for r in report["requests"])
            errors.update(h.stream_stats(report)["errors"])
            return rps(report)

        for name in targets:  # warm-up
            load(name, 1.0)
        cpu_share = {"on": [], "off": []}
        samples = h.interleaved(
            {"on": lambda: load("on", seconds), "off": lambda: load("off", seconds)},
            repetitions,
        )
    ratios = h.ratio_summary(samples["on"], samples["off"])
    details = h.clean(
        {
            "concurrency": concurrency,
            "window_s": seconds,
            "repetitions": repetitions,
            "rps_on": h.summary(samples["on"]),
            "rps_off": h.summary(samples["off"]),
            "ratio_on_off": ratios,
            "assistant_cpu_share_on": h.summary(cpu_share["on"]),
            "assistant_cpu_share_off": h.summary(cpu_share["off"]),
            "failed_requests": failures,
            "errors": errors,
        }
    )
    print(
        f"throughput: on {h.summary(samples['on'])['median']:.1f} rps, off "
        f"{h.summary(samples['off'])['median']:.1f} rps, ratio {ratios['median']:.3f}",
        file=sys.stderr,
    )
    reason = (
        f"{h.summary(samples['on'])['median']:.1f} vs {h.summary(samples['off'])['median']:.1f} "
        "requests/s; the per-chunk telemetry CPU (benchmark 1) comes straight off the one "
        "worker's throughput"
    )
    h.record(
        args,
        **META,
        value=h.finite(ratios["median"]),
        details=details,
        reason=reason,
        value_range=(ratios["min"], ratios["max"], ratios["n"]),
    )


if __name__ == "__main__":
    sys.exit(h.main_guard(run, h.parser(__doc__.splitlines()[0]), META))
