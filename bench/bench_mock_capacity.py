"""Benchmark 4: how many concurrent 20 tokens/s streams the mock LLM serves on ONE core.

The mock runs pinned to CPU 0 (`taskset -c 0`) with a fixed profile (TTFT 300 ms, 20 tokens/s, no
jitter); the asyncio client (bench/sse_client.py) runs in its own process pinned to CPU 1. At each
level N every one of N users issues back-to-back streamed requests; a level passes when no request
fails, TTFT p99 <= 330 ms (profile + 10 %) and the per-stream token rate of 99 % of the streams is
>= 18 tokens/s (profile - 10 %). The result is the largest passing level.
"""

from __future__ import annotations

import sys

import benchlib as h

TTFT_MS = 300.0
TOKENS_PER_S = 20.0
TOLERANCE = 0.10
META = {
    "benchmark": "mock_capacity",
    "title": "4. Mock LLM capacity (one core)",
    "metric": "concurrent 20 tok/s streams within 10 % of the profile",
    "unit": "streams",
    "comparison": ">=",
    "target": 500,
    "anchor": "prototype: 150 streams at 60 tok/s on 2 cores at ~2 % CPU (llm-traffic note)",
    "method": (
        "mock pinned to CPU 0, asyncio raw-HTTP client pinned to CPU 1; levels of N users with "
        "back-to-back streams; pass = 0 failures, TTFT p99 <= 330 ms, p1 stream rate >= 18 tok/s"
    ),
}


def level_passes(stats: dict) -> bool:
    return (
        stats["failed"] == 0
        and stats["ttft_ms"]["p99"] <= TTFT_MS * (1 + TOLERANCE)
        and stats["token_rate_per_stream"]["p1"] >= TOKENS_PER_S * (1 - TOLERANCE)
    )


def run(args) -> None:
    work = h.work_dir(args, "mock_capacity")
    tokens = 10 if args.quick else 100
    levels = [10] if args.quick else [50, 100, 150, 200, 300, 400, 500]
    if args.levels:
        levels = [int(x) for x in args.levels.split(",")]
    requests_per_user = 1
    profiles = h.write_profiles(
        work / "profiles.yaml", {"bench": h.fixed_profile(TTFT_MS, TOKENS_PER_S, tokens)}
    )
    body = {
        "model": "bench",
        "stream": True,
        "max_tokens": tokens,
        "messages": [{"role": "user", "content": "Tell me about observability."}],
    }
    results = []
    best = 0
    repetitions = 1 if args.quick else 3
    with h.mock_llm(work, profiles, cpus=None if args.no_pin else "0") as (mock, url):
        for level in levels:
            runs = []
            for _ in range(repetitions):
                meter = h.CpuMeter(mock.pid)
                report = h.run_client(
                    work,
                    url=f"{url}/v1/chat/completions",
                    kind="openai",
                    body=body,
                    headers={"Authorization": "Bearer sk-mock"},
                    concurrency=level,
                    requests_per_user=requests_per_user,
                    ramp_s=1.0 if args.quick else 2.0,
                    cpus=None if args.no_pin else "1",
                    timeout_s=60,
                    max_seconds=120,
                )
                cpu, wall = meter.read()
                stats = h.stream_stats(report, TTFT_MS / 1000)
                stats["mock_cpu_share_of_one_core"] = cpu / wall if wall else 0.0
                stats["mock_runqueue_wait_share"] = meter.runqueue_wait() / wall if wall else 0.0
                stats["passed"] = level_passes(stats)
                runs.append(stats)
            ttft_p99 = h.summary([r["ttft_ms"]["p99"] for r in runs])
            rate_p1 = h.summary([r["token_rate_per_stream"]["p1"] for r in runs])
            passed = sum(r["passed"] for r in runs) * 2 > len(runs)  # majority of repetitions
            client_share = max(r["client_cpu_share"] or 0 for r in runs)
            results.append(
                {
                    "level": level,
                    "passed": passed,
                    "ttft_p99_ms": ttft_p99,
                    "stream_rate_p1": rate_p1,
                    "client_limited": client_share > 0.8,
                    "repetitions": runs,
                }
            )
            print(
                f"mock capacity: {level} streams: TTFT p99 median {ttft_p99['median']:.0f} ms "
                f"(spread {ttft_p99.get('spread', 0):.0%}), p1 rate median "
                f"{rate_p1['median']:.1f} tok/s, failed {sum(r['failed'] for r in runs)}, "
                f"mock CPU {max(r['mock_cpu_share_of_one_core'] for r in runs):.0%}, waiting for "
                f"a CPU {max(r['mock_runqueue_wait_share'] for r in runs):.0%}, client CPU "
                f"{client_share:.0%} -> {'pass' if passed else 'FAIL'}",
                file=sys.stderr,
            )
            if not passed:
                break
            best = level
    reason = ""
    failed = next((r for r in results if not r["passed"]), None)
    if failed:
        runs = failed["repetitions"]
        reason = (
            f"at {failed['level']} streams TTFT p99 {failed['ttft_p99_ms']['median']:.0f} ms, "
            f"p1 stream rate {failed['stream_rate_p1']['median']:.1f} tok/s, while the mock used "
            f"{max(r['mock_cpu_share_of_one_core'] for r in runs):.0%} of its core and waited "
            f"for a CPU {max(r['mock_runqueue_wait_share'] for r in runs):.0%} of the time"
        )
    h.record(
        args,
        **META,
        reason=reason,
        value=best,
        details=h.clean(
            {
                "profile": {"ttft_ms": TTFT_MS, "tokens_per_s": TOKENS_PER_S, "tokens": tokens},
                "requests_per_user": requests_per_user,
                "repetitions_per_level": repetitions,
                "level_passes_when": "a majority of the repetitions pass",
                "levels": results,
                "chunks_per_s_at_best": best * TOKENS_PER_S,
            }
        ),
    )


if __name__ == "__main__":
    cli = h.parser(__doc__.splitlines()[0])
    cli.add_argument("--levels", default="", help="comma-separated stream counts to try")
    cli.add_argument("--no-pin", action="store_true", help="let the mock use every CPU")
    sys.exit(h.main_guard(run, cli, META))
