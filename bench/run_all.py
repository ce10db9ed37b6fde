"""Run every benchmark one after the other (`make bench`), then render docs/performance.md.

    build/venvs/test/bin/python bench/run_all.py [--quick] [--only NAME,...] [--results PATH]
        [--doc PATH] [--work-dir DIR]

Each benchmark runs in its own process so that one failure does not stop the others; the exit
code is non-zero only when a benchmark crashed (a missed target is a result, not an error).
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from benchlib import DEFAULT_DOC, DEFAULT_RESULTS  # noqa: E402
from report import render  # noqa: E402

# Cheapest and least dependent first; the profile last (it only explains the others).
SCRIPTS = (
    "bench_mock_capacity",
    "bench_overhead",
    "bench_throughput",
    "bench_streams",
    "bench_loadgen",
    "bench_delivery",
    "bench_footprint",
    "bench_evaluations",
    "profile_chunk_path",
)
TIMEOUT_S = {"bench_streams": 1800}


def stop(child: subprocess.Popen) -> None:
    """Ask a benchmark to stop (it then stops the services it started), kill it if it hangs."""
    child.terminate()
    try:
        child.wait(timeout=60)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(timeout=10)


def main() -> int:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--quick", action="store_true")
    cli.add_argument("--only", default="", help="comma-separated script names (bench_overhead,...)")
    cli.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    cli.add_argument("--doc", type=Path, default=DEFAULT_DOC)
    cli.add_argument("--work-dir", type=Path, default=None)
    args = cli.parse_args()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    chosen = [s for s in SCRIPTS if not args.only or s in args.only.split(",")]
    crashed = []
    for script in chosen:
        argv = [sys.executable, str(BENCH_DIR / f"{script}.py")]
        argv += ["--results", str(args.results), "--doc", str(args.doc)]
        if args.quick:
            argv.append("--quick")
        if args.work_dir:
            argv += ["--work-dir", str(args.work_dir)]
        started = time.monotonic()
        print(f"run_all: {script} ...", file=sys.stderr, flush=True)
        child = subprocess.Popen(argv)
        try:
            code = child.wait(timeout=TIMEOUT_S.get(script, 900))
        except subprocess.TimeoutExpired:
            code = "timeout"
        except BaseException:
            stop(child)
            raise
        if code == "timeout":
            stop(child)
        print(
            f"run_all: {script} finished ({code}) in {time.monotonic() - started:.0f} s",
            file=sys.stderr,
            flush=True,
        )
        if code != 0:
            crashed.append(f"{script} ({code})")
    render(args.results, args.doc)
    if crashed:
        print(f"run_all: crashed: {', '.join(crashed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
