"""Shared benchmark harness: processes, process-tree CPU, percentiles, A/B runs, results.

Every benchmark script imports this module (it sits next to them in bench/), runs real processes on
127.0.0.1 with the tests' process helper (tests/harness/procs.py), and appends one record per
benchmark to a results file; `report.py` renders the latest records into docs/performance.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import signal
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "bench"
DEFAULT_RESULTS = BENCH_DIR / "results.json"
DEFAULT_DOC = ROOT / "docs" / "performance.md"
VENVS = ROOT / "build" / "venvs"

sys.path.insert(0, str(ROOT / "tests"))
from harness.procs import ServiceProcess, free_port  # noqa: E402

__all__ = [
    "ROOT",
    "ServiceProcess",
    "free_port",
]

CLK_TCK = os.sysconf("SC_CLK_TCK")
SHARED_MACHINE_NOTE = (
    "shared 2-vCPU development machine (several developers at once): absolute numbers are noisy; "
    "compare the side-by-side ratios"
)


class BenchSkipped(RuntimeError):
    """A prerequisite (a service, a tool) is missing: the benchmark records why and stops."""


# --- command line -------------------------------------------------------------------------------


def parser(description: str) -> argparse.ArgumentParser:
    """The options every benchmark script accepts."""
    cli = argparse.ArgumentParser(description=description)
    cli.add_argument("--quick", action="store_true", help="tiny smoke run")
    cli.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="results JSON to append")
    cli.add_argument("--doc", type=Path, default=DEFAULT_DOC, help="markdown report to re-render")
    cli.add_argument("--work-dir", type=Path, default=None, help="logs and temporary files")
    return cli


def work_dir(args: argparse.Namespace, name: str) -> Path:
    base = args.work_dir or (ROOT / "build" / "bench")
    path = base / name
    path.mkdir(parents=True, exist_ok=True)
    return path


# --- processes ----------------------------------------------------------------------------------


def venv_python(service: str) -> str:
    python = VENVS / service / "bin" / "python"
    if not python.exists():
        raise BenchSkipped(f"virtualenv of {service} missing at {python} (run make setup)")
    return str(python)


def pinned(argv: Sequence[str], cpus: str | None) -> list[str]:
    """Prefix `argv` with `taskset -c cpus` (when asked for and available)."""
    if not cpus:
        return list(argv)
    if not Path("/usr/bin/taskset").exists():
        raise BenchSkipped("taskset (util-linux) is needed to pin a process to one CPU")
    return ["/usr/bin/taskset", "-c", cpus, *argv]


def write_profiles(path: Path, models: Mapping[str, Mapping[str, Any]]) -> Path:
    """A mock-LLM profiles file (MOCK_LLM_PROFILES) with exactly these models."""
    document = {
        "defaults": {
            "ttft_jitter_ms": 0,
            "tps_jitter": 0,
            "itl_jitter": 0,
            "max_concurrency": 5000,
            "queue_limit": 5000,
            "rpm": 0,
            "tpm": 0,
            "faults": {},
        },
        "models": {name: dict(profile) for name, profile in models.items()},
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


ZERO_DELAY_200 = {
    "ttft_ms": 0,
    "prefill_ms_per_1k_prompt_tokens": 0,
    "tokens_per_s": 100_000,
    "output_tokens": {"min": 200, "mean": 200, "max": 200},
}


def fixed_profile(ttft_ms: float, tokens_per_s: float, tokens: int) -> dict[str, Any]:
    return {
        "ttft_ms": ttft_ms,
        "prefill_ms_per_1k_prompt_tokens": 0,
        "tokens_per_s": tokens_per_s,
        "output_tokens": {"min": tokens, "mean": tokens, "max": tokens},
    }


@contextlib.contextmanager
def mock_llm(
    log_dir: Path, profiles: Path, cpus: str | None = None, env: Mapping[str, str] | None = None
) -> Iterator[tuple[ServiceProcess, str]]:
    """The mock LLM (optionally pinned to `cpus`) with a profiles file; yields (process, url)."""
    port = free_port()
    process = ServiceProcess(
        f"mock-llm-{port}",
        pinned([venv_python("mock-llm"), "-m", "mock_llm"], cpus),
        log_dir,
        env={
            "MOCK_LLM_HOST": "127.0.0.1",
            "MOCK_LLM_PORT": str(port),
            "MOCK_LLM_API_KEY": "sk-mock",
            "MOCK_LLM_PROFILES": str(profiles),
            "MOCK_LLM_ACCESS_LOG": "false",
            "PYTHONPATH": str(ROOT / "services" / "mock-llm" / "src"),
            **(env or {}),
        },
    )
    url = f"http://127.0.0.1:{port}"
    with process:
        process.wait_http(f"{url}/healthz", timeout=60)
        yield process, url


def run_venv_script(service: str, script: str, *args: str, timeout: float = 300) -> dict:
    """bench/`script` run with `service`'s interpreter: its JSON output, or {"error": stderr}."""
    import subprocess

    argv = [venv_python(service), str(BENCH_DIR / script), *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        return {"error": done.stderr[-500:]}
    return json.loads(done.stdout)


def http_json(url: str, method: str = "GET", timeout: float = 30.0) -> Any:
    """One small JSON request to a local service (the mock's admin API)."""
    import urllib.request

    request = urllib.request.Request(url, method=method, data=b"" if method != "GET" else None)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


def mock_requests(mock_url: str, reset: bool = False) -> list[dict[str, Any]]:
    """The mock's ground truth (/admin/requests: what it scheduled and sent per request), oldest
    first; `reset` then clears its request log (POST /admin/reset)."""
    entries = http_json(f"{mock_url}/admin/requests")["requests"]
    if reset:
        http_json(f"{mock_url}/admin/reset", method="POST")
    return entries


@contextlib.contextmanager
def assistant(
    log_dir: Path,
    llm_base_url: str,
    *,
    telemetry: bool,
    otlp_endpoint: str | None = None,
    model: str = "bench",
    env: Mapping[str, str] | None = None,
    argv: Sequence[str] | None = None,
    name: str = "assistant",
) -> Iterator[tuple[ServiceProcess, str]]:
    """The assistant as shipped (`python -m assistant`, gunicorn) on a free port.

    `telemetry=False` sets OTEL_SDK_DISABLED=true; otherwise spans, metrics and logs go over
    OTLP/HTTP, as the shipped image sends them (its Dockerfile sets the protocol), to
    `otlp_endpoint` (a collector's `otlp_http`) with the shipped batch settings.
    """
    port = free_port()
    full_env = {
        "ASSISTANT_HOST": "127.0.0.1",
        "ASSISTANT_PORT": str(port),
        "ASSISTANT_SECRET_KEY": "bench-secret-key-0123456789",
        "ASSISTANT_MODELS": model,
        "ASSISTANT_DEFAULT_MODEL": model,
        "ASSISTANT_LOG_LEVEL": "WARNING",
        "OPENAI_BASE_URL": llm_base_url,
        "OPENAI_API_KEY": "sk-mock",
        "PYTHONPATH": str(ROOT / "services" / "assistant" / "src"),
        "OTEL_SDK_DISABLED": "false" if telemetry else "true",
        "OTEL_SERVICE_NAME": "assistant",
        # never send benchmark telemetry anywhere but the local collector
        "SPLUNK_REALM": "",
        "SPLUNK_ACCESS_TOKEN": "",
        "SPLUNK_PROFILER_ENABLED": "false",
        # the benchmarks measure the chat path; evaluations (one judge call per answer) are off
        "ASSISTANT_EVALUATIONS": "false",
    }
    if telemetry:
        if not otlp_endpoint:
            raise ValueError("telemetry=True needs an OTLP endpoint")
        full_env.update(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            }
        )
    full_env.update(env or {})
    command = list(argv) if argv else [venv_python("assistant"), "-m", "assistant"]
    process = ServiceProcess(f"{name}-{port}", command, log_dir, env=full_env)
    url = f"http://127.0.0.1:{port}"
    with process:
        process.wait_http(f"{url}/healthz", timeout=60)
        yield process, url


@contextlib.contextmanager
def collector(tmp_dir: Path) -> Iterator[Any]:
    """The test collector (build/otelcol-lab) in local mode via the tests' collector harness."""
    binary = ROOT / "build" / "otelcol-lab"
    if not binary.exists():
        raise BenchSkipped(f"collector binary missing at {binary} (run scripts/build-collector.sh)")
    try:
        from harness.collector import start_collector
    except ImportError as exc:  # pragma: no cover - depends on the collector task
        raise BenchSkipped(f"tests/harness/collector.py not usable: {exc}") from None
    with start_collector(tmp_dir) as running_collector:
        yield running_collector


# --- CPU accounting -----------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                text = Path(f"/proc/{pid}/task/{task}/children").read_text()
                kids.extend(int(k) for k in text.split())
    return kids


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (e.g. a taskset wrapper, a gunicorn master and workers)."""
    seen: list[int] = []
    todo = [pid]
    while todo and len(seen) < 10_000:
        current = todo.pop()
        if current in seen:
            continue
        seen.append(current)
        todo.extend(_children(current))
    return seen


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of one live process (all its threads), in seconds; 0 if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of proc(5)


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by `pid` and its live descendants."""
    return sum(process_cpu_seconds(p) for p in process_tree(pid))


def tree_runqueue_wait_seconds(pid: int) -> float:
    """Time `pid` and its descendants spent runnable but waiting for a CPU (/proc/PID/schedstat).

    High values mean other processes on the machine took the CPU: the measurement is noisy.
    """
    total = 0
    for p in process_tree(pid):
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int(Path(f"/proc/{p}/schedstat").read_text().split()[1])
    return total / 1e9


def rss_bytes(pid: int) -> int:
    """Resident set size of `pid` and its descendants."""
    total = 0
    for p in process_tree(pid):
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * os.sysconf(
                "SC_PAGE_SIZE"
            )
    return total


class CpuMeter:
    """CPU seconds of a process tree between two points in time."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.start_cpu = tree_cpu_seconds(pid)
        self.start_wait = tree_runqueue_wait_seconds(pid)
        self.start_wall = time.perf_counter()

    def read(self) -> tuple[float, float]:
        """(cpu seconds, wall seconds) since construction."""
        return tree_cpu_seconds(self.pid) - self.start_cpu, time.perf_counter() - self.start_wall

    def runqueue_wait(self) -> float:
        """Seconds the tree waited for a CPU since construction (contention from others)."""
        return tree_runqueue_wait_seconds(self.pid) - self.start_wait


# --- statistics ---------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation between closest ranks; NaN if empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median, min, max and relative spread ((max - min) / median) of repeated measurements."""
    if not values:
        return {"n": 0, "median": float("nan"), "min": float("nan"), "max": float("nan")}
    median = statistics.median(values)
    return {
        "n": len(values),
        "median": median,
        "min": min(values),
        "max": max(values),
        "spread": (max(values) - min(values)) / median if median else float("nan"),
    }


def distribution(values: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values) if values else float("nan"),
    }


def interleaved(
    variants: Mapping[str, Callable[[], float]], repetitions: int
) -> dict[str, list[float]]:
    """Run every variant `repetitions` times, alternating the order (ABBA...) to cancel drift."""
    names = list(variants)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(repetitions):
        order = names if rep % 2 == 0 else list(reversed(names))
        for name in order:
            samples[name].append(variants[name]())
    return samples


def ratio_summary(numerator: Sequence[float], denominator: Sequence[float]) -> dict[str, float]:
    """Per-repetition ratios (paired, same repetition) summarised."""
    return summary([a / b for a, b in zip(numerator, denominator, strict=True) if b])


# --- machine and results ------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    load = os.getloadavg()
    return {
        "cpu_model": model,
        "cpus": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_avg_1m": round(load[0], 2),
        "note": SHARED_MACHINE_NOTE,
    }


def met(value: float | None, comparison: str, target: float) -> bool | None:
    if value is None or value != value:  # None or NaN
        return None
    return value <= target if comparison == "<=" else value >= target


def record(
    args: argparse.Namespace,
    *,
    benchmark: str,
    title: str,
    metric: str,
    value: float | None,
    unit: str,
    comparison: str,
    target: float,
    anchor: str,
    method: str,
    details: Mapping[str, Any],
    status: str = "measured",
    reason: str = "",
    value_range: tuple[float, float, int] | None = None,
) -> dict[str, Any]:
    """Append one benchmark result to the results file and re-render the report."""
    entry = {
        "benchmark": benchmark,
        "title": title,
        "metric": metric,
        "value": value,
        "unit": unit,
        "target": f"{comparison} {target:g} {unit}".strip(),
        "target_value": target,
        "comparison": comparison,
        "met": met(value, comparison, target) if status == "measured" else None,
        "status": status,
        "reason": reason,
        "value_range": clean(list(value_range)) if value_range else None,
        "anchor": anchor,
        "method": method,
        "quick": bool(args.quick),
        "machine": machine(),
        "date": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "details": dict(details),
    }
    append_result(args.results, entry)
    from report import render  # bench/report.py, next to this file

    render(args.results, args.doc)
    print(json.dumps({k: entry[k] for k in ("benchmark", "value", "unit", "target", "met")}))
    return entry


def append_result(path: Path, entry: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = load_results(path)
    data["runs"].append(dict(entry))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, allow_nan=False, default=_json_default) + "\n")
    tmp.replace(path)


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def load_results(path: Path) -> dict[str, Any]:
    if path.exists():
        data = json.loads(path.read_text())
        if isinstance(data, dict) and isinstance(data.get("runs"), list):
            return data
    return {"schema": 1, "runs": []}


def finite(value: float, digits: int = 3) -> float | None:
    """Round for the results file; NaN/inf become None (JSON has no NaN)."""
    if value is None or value != value or value in (float("inf"), float("-inf")):
        return None
    return round(float(value), digits)


def clean(obj: Any) -> Any:
    """Recursively round floats and replace NaN by None so the results stay valid JSON."""
    if isinstance(obj, float):
        return finite(obj, 4)
    if isinstance(obj, Mapping):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    return obj


def main_guard(
    run: Callable[[argparse.Namespace], None], cli: argparse.ArgumentParser, meta: Mapping
) -> int:
    """Parse options and run; a missing prerequisite becomes a recorded 'not run' entry.

    SIGTERM and SIGINT (even when inherited as ignored, e.g. under nohup) raise SystemExit or
    KeyboardInterrupt, so every started service is stopped on the way out.
    """
    args = cli.parse_args()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        run(args)
    except BenchSkipped as exc:
        print(f"not run: {exc}", file=sys.stderr)
        record(args, **meta, value=None, details={}, status="not run", reason=str(exc))
    return 0


# --- load client --------------------------------------------------------------------------------


def client_python() -> str:
    """The interpreter that runs sse_client.py (stdlib only): the test venv, else this one."""
    candidate = VENVS / "test" / "bin" / "python"
    return str(candidate) if candidate.exists() else sys.executable


def run_client(
    out_dir: Path,
    *,
    url: str,
    kind: str,
    body: Mapping[str, Any],
    concurrency: int,
    requests_per_user: int = 1,
    ramp_s: float = 1.0,
    headers: Mapping[str, str] | None = None,
    cpus: str | None = None,
    timeout_s: float = 120.0,
    max_seconds: float = 600.0,
    unique_session: bool = False,
) -> dict[str, Any]:
    """Run bench/sse_client.py in its own process (optionally pinned) and return its report."""
    import subprocess

    out = out_dir / f"client-{kind}-{concurrency}-{time.monotonic_ns()}.json"
    argv = [
        client_python(),
        str(BENCH_DIR / "sse_client.py"),
        "--url",
        url,
        "--kind",
        kind,
        "--body",
        json.dumps(dict(body)),
        "--concurrency",
        str(concurrency),
        "--requests-per-user",
        str(requests_per_user),
        "--ramp",
        str(ramp_s),
        "--timeout",
        str(timeout_s),
        "--max-seconds",
        str(max_seconds),
        "--out",
        str(out),
    ]
    for name, value in (headers or {}).items():
        argv += ["--header", f"{name}: {value}"]
    if unique_session:
        argv.append("--unique-session")
    budget = max_seconds + timeout_s + 60
    completed = subprocess.run(
        pinned(argv, cpus), capture_output=True, text=True, timeout=budget, check=False
    )
    if completed.returncode != 0 or not out.exists():
        tail = completed.stderr[-2000:]
        raise RuntimeError(f"sse_client failed ({completed.returncode}): {tail}")
    report = json.loads(out.read_text())
    out.unlink()
    return report


def sequential_chats(out_dir: Path, url: str, body: Mapping[str, Any], count: int) -> dict:
    """`count` /api/chat streams one after the other (one client, a fresh session id each, so no
    history builds up): the CPU benchmarks' window. Returns the client's report."""
    return run_client(
        out_dir,
        url=f"{url}/api/chat",
        kind="assistant",
        body=body,
        headers={"X-Session-Id": f"bench-{time.monotonic_ns()}"},
        unique_session=True,
        concurrency=1,
        requests_per_user=count,
        ramp_s=0,
        timeout_s=60,
        max_seconds=300,
    )


def stream_stats(report: Mapping[str, Any], expected_ttft_s: float = 0.0) -> dict[str, Any]:
    """TTFT, added TTFT, token rate and gap statistics of one client report (seconds -> ms)."""
    requests = report["requests"]
    ok = [r for r in requests if r.get("ok")]
    ttft_ms = [r["ttft"] * 1000 for r in ok if "ttft" in r]
    rates = [r["rate"] for r in ok if "rate" in r]
    gaps_ms = [g * 1000 for g in report.get("gaps_sorted_sample", [])]
    errors: dict[str, int] = {}
    for r in requests:
        if not r.get("ok"):
            key = (r.get("error") or f"HTTP {r.get('status')}")[:80]
            errors[key] = errors.get(key, 0) + 1
    span = 0.0
    if ok:
        span = max(r["last"] for r in ok if "last" in r) - min(r["start"] for r in ok)
    tokens = sum(r.get("tokens", 0) for r in ok)
    return {
        "requests": len(requests),
        "ok": len(ok),
        "failed": len(requests) - len(ok),
        "errors": errors,
        "ttft_ms": distribution(ttft_ms),
        "added_ttft_ms": distribution([t - expected_ttft_s * 1000 for t in ttft_ms]),
        "token_rate_per_stream": {
            "p1": percentile(rates, 1),
            "p5": percentile(rates, 5),
            "p50": percentile(rates, 50),
        },
        "gap_ms": {
            "p50": percentile(gaps_ms, 50),
            "p99": percentile(gaps_ms, 99),
            "n": report.get("gap_count", 0),
        },
        "tokens_per_s_total": tokens / span if span else 0.0,
        "client_cpu_share": report.get("client_cpu_share"),
    }
