"""Capacity probe: N concurrent streams against one mock process pinned to one core.

Runs the mock (from build/venvs/mock-llm) with a bench profile, opens N streams at once from a
lightweight asyncio client (raw HTTP/1.1, so the client is not the bottleneck), and prints TTFT
and inter-token-gap percentiles against the profile as JSON. Bounded: one round, then it stops.

    build/venvs/test/bin/python services/mock-llm/bench/capacity.py --streams 500 --tps 20
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PYTHON = ROOT / "build" / "venvs" / "mock-llm" / "bin" / "python"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def one_stream(port: int, index: int, tokens: int) -> tuple[float, list[float]]:
    body = json.dumps(
        {
            "model": "bench",
            "stream": True,
            "max_completion_tokens": tokens,
            "messages": [{"role": "user", "content": f"bench request {index}"}],
        }
    ).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    started = time.perf_counter()
    writer.write(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
    )
    await writer.drain()
    stamps: list[float] = []
    while line := await reader.readline():
        if line.startswith(b"data: {") and b'"content":"' in line and b'"content":""' not in line:
            stamps.append(time.perf_counter())
        elif line.startswith(b"data: [DONE]"):
            break
    writer.close()
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    return stamps[0] - started, gaps


async def run(port: int, streams: int, tokens: int) -> list[tuple[float, list[float]]]:
    return await asyncio.gather(*(one_stream(port, i, tokens) for i in range(streams)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--tps", type=float, default=20.0, help="tokens/s per stream")
    parser.add_argument("--ttft-ms", type=float, default=300.0)
    parser.add_argument("--tokens", type=int, default=60)
    parser.add_argument("--server-cpu", default="0", help="taskset CPU list for the mock")
    parser.add_argument("--client-cpu", default="1", help="taskset CPU list for this client")
    args = parser.parse_args()
    if not 1 <= args.streams <= 2000:
        parser.error("--streams must be between 1 and 2000")

    profile = {
        "defaults": {"tps_jitter": 0, "itl_jitter": 0, "rpm": 0, "tpm": 0},
        "models": {
            "bench": {
                "ttft_ms": args.ttft_ms,
                "tokens_per_s": args.tps,
                "output_tokens": {"min": args.tokens, "mean": args.tokens, "max": args.tokens},
                "max_concurrency": args.streams,
                "queue_limit": args.streams,
            }
        },
    }
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        profiles = Path(tmp) / "bench.yaml"
        profiles.write_text(json.dumps(profile))  # JSON is YAML
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT / "services" / "mock-llm" / "src"),
            "MOCK_LLM_HOST": "127.0.0.1",
            "MOCK_LLM_PORT": str(port),
            "MOCK_LLM_PROFILES": str(profiles),
        }
        argv = [str(PYTHON), "-m", "mock_llm"]
        if shutil.which("taskset"):
            argv = ["taskset", "-c", args.server_cpu, *argv]
            os.sched_setaffinity(0, {int(c) for c in args.client_cpu.split(",")})
        server = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        print("mock did not start", file=sys.stderr)
                        return 1
                    time.sleep(0.1)
            cpu_before, wait_before = _sched(server.pid)
            wall = time.perf_counter()
            results = asyncio.run(run(port, args.streams, args.tokens))
            wall = time.perf_counter() - wall
            cpu_after, wait_after = _sched(server.pid)
            cpu, runqueue_wait = cpu_after - cpu_before, wait_after - wait_before
        finally:
            server.terminate()
            server.wait(timeout=10)
    ttfts = [r[0] * 1000 for r in results]
    gaps = [g * 1000 for r in results for g in r[1]]
    tpot = [statistics.fmean(r[1]) * 1000 for r in results if r[1]]
    target_itl = 1000 / args.tps
    report = {
        "streams": args.streams,
        "tokens_per_stream": args.tokens,
        "profile": {"ttft_ms": args.ttft_ms, "itl_ms": round(target_itl, 2)},
        "ttft_ms": {q: round(percentile(ttfts, q), 1) for q in (50, 90, 99)},
        "itl_ms": {q: round(percentile(gaps, q), 2) for q in (50, 90, 99)},
        "tpot_ms_p50": round(statistics.median(tpot), 2),
        "ttft_p99_error": round(percentile(ttfts, 99) / args.ttft_ms - 1, 3),
        "server_cpu_share": round(cpu / wall, 2),
        # time the server was runnable but not running: high means a busy machine, not the mock
        "server_runqueue_wait_share": round(runqueue_wait / wall, 2),
        "wall_s": round(wall, 2),
    }
    print(json.dumps(report, indent=2))
    return 0


def _sched(pid: int) -> tuple[float, float]:
    """(seconds on CPU, seconds waiting for a CPU) of a process, from /proc/PID/schedstat."""
    try:
        on_cpu, waiting, _ = Path(f"/proc/{pid}/schedstat").read_text().split()
        return int(on_cpu) / 1e9, int(waiting) / 1e9
    except (OSError, ValueError):
        return 0.0, 0.0


if __name__ == "__main__":
    sys.exit(main())
