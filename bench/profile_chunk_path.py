"""Where the assistant's CPU goes on the per-chunk path: py-spy samples, telemetry on vs off.

For each variant (shipped telemetry to a local collector; OTEL_SDK_DISABLED=true) one assistant
serves sequential 200-token streams from a zero-delay mock while `py-spy record` samples its
worker (non-blocking, 250 Hz, active threads only). Every sample is charged to the innermost frame
that belongs to a known component (telemetry = any opentelemetry/splunk_otel frame, the openai
client and pydantic, the HTTP client, the web server, the app's own modules), walking out from the
leaf, so stdlib work (json, sockets, locks) is charged to whoever called it. The result is a share
per component for each variant, plus the top leaf functions, stored in the results file and shown
in docs/performance.md under "Where the time goes". Needs build/venvs/bench (bench/setup.sh).
"""

from __future__ import annotations

import collections
import re
import subprocess
import sys
import time

import benchlib as h

META = {
    "benchmark": "chunk_path_profile",
    "title": "Profile of the per-chunk path",
    "metric": "share of sampled worker CPU by component",
    "unit": "%",
    "comparison": "<=",
    "target": 100,
    "anchor": "",
    "method": "py-spy record --nonblocking --rate 250 on the gunicorn worker",
}

COMPONENTS = (
    (
        "telemetry (OpenTelemetry SDK, instrumentation, exporters)",
        r"/site-packages/(opentelemetry|splunk_otel|grpc)/",
    ),
    (
        "openai client + pydantic (chunk parsing)",
        r"/site-packages/(openai|pydantic|pydantic_core)/",
    ),
    (
        "HTTP client to the LLM (httpx2/httpcore2/h11)",
        r"/site-packages/(httpx2|httpcore2|h11|anyio)/",
    ),
    ("web server (gunicorn, werkzeug, flask)", r"/site-packages/(gunicorn|werkzeug|flask)/"),
    ("assistant app code", r"/src/assistant/"),
)
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^:()]+)(?::\d+)?\)$")


TELEMETRY = re.compile(COMPONENTS[0][1])


def _file(frame: str) -> str:
    match = FRAME.match(frame)
    return match.group("file") if match else frame


def classify(stack: list[str]) -> str:
    """The component of the innermost frame that belongs to one (stack is root ... leaf)."""
    for frame in reversed(stack):
        where = _file(frame)
        for name, pattern in COMPONENTS:
            if re.search(pattern, where):
                return name
    return "other (interpreter, stdlib outside any component)"


def entry_point(stack: list[str]) -> str:
    """The outermost frame of the innermost run of telemetry frames: the hook that paid."""
    entry = "?"
    for frame in reversed(stack):
        where = _file(frame)
        if TELEMETRY.search(where):
            entry = frame
        elif any(re.search(pattern, where) for _, pattern in COMPONENTS[1:]):
            break
    return entry


def leaf(stack: list[str]) -> str:
    match = FRAME.match(stack[-1]) if stack else None
    if not match:
        return stack[-1] if stack else "?"
    short = re.sub(r".*/(site-packages|src|python3\.\d+)/", "", match.group("file"))
    return f"{match.group('func')} ({short})"


def parse_collapsed(text: str) -> list[tuple[list[str], int]]:
    samples = []
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            samples.append((stack.split(";"), int(count)))
    return samples


def summarise(samples: list[tuple[list[str], int]]) -> dict:
    by_component: collections.Counter = collections.Counter()
    by_leaf: collections.Counter = collections.Counter()
    telemetry_leaf: collections.Counter = collections.Counter()
    total = 0
    for stack, count in samples:
        total += count
        component = classify(stack)
        by_component[component] += count
        by_leaf[leaf(stack)] += count
        if component.startswith("telemetry"):
            telemetry_leaf[leaf([entry_point(stack)])] += count
    return {
        "samples": total,
        "share_by_component": {k: 100 * v / total for k, v in by_component.most_common()},
        "top_leaf_functions": {k: 100 * v / total for k, v in by_leaf.most_common(12)},
        "telemetry_entry_points": {k: 100 * v / total for k, v in telemetry_leaf.most_common(8)},
    }


def profile(work, url: str, worker_pid: int, seconds: float) -> dict:
    py_spy = h.VENVS / "bench" / "bin" / "py-spy"
    if not py_spy.exists():
        raise h.BenchSkipped(f"py-spy missing at {py_spy}: run bench/setup.sh")
    out = work / f"py-spy-{worker_pid}.txt"
    sampler = subprocess.Popen(
        [
            str(py_spy),
            "record",
            "--pid",
            str(worker_pid),
            "--nonblocking",
            "--full-filenames",
            "--rate",
            "250",
            "--duration",
            str(int(seconds)),
            "--format",
            "raw",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.5)
    h.run_client(
        work,
        url=f"{url}/api/chat",
        kind="assistant",
        body={"message": "Tell me about observability.", "max_tokens": 200},
        headers={"X-Session-Id": f"bench-profile-{worker_pid}"},
        unique_session=True,
        concurrency=1,
        requests_per_user=10_000,
        ramp_s=0,
        timeout_s=60,
        max_seconds=seconds - 1,
    )
    try:
        _, err = sampler.communicate(timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        sampler.kill()
        raise
    if not out.exists():
        raise h.BenchSkipped(f"py-spy could not sample the worker: {err[-500:]}")
    return summarise(parse_collapsed(out.read_text()))


def run(args) -> None:
    work = h.work_dir(args, "profile")
    seconds = 4.0 if args.quick else 20.0
    profiles = h.write_profiles(work / "profiles.yaml", {"bench": h.ZERO_DELAY_200})
    results = {}
    with h.collector(work / "collector") as collector, h.mock_llm(work, profiles) as (_m, mock):
        for name, telemetry in (("telemetry on", True), ("telemetry off", False)):
            with h.assistant(
                work,
                f"{mock}/v1",
                telemetry=telemetry,
                otlp_endpoint=collector.otlp_http,
                env={"ASSISTANT_WORKERS": "1"},  # one worker: py-spy sees every request
                name=f"profile-{telemetry}",
            ) as (proc, url):
                workers = [p for p in h.process_tree(proc.pid) if p != proc.pid]
                if not workers:
                    raise RuntimeError("no gunicorn worker found")
                results[name] = profile(work, url, workers[-1], seconds)
    telemetry_share = results["telemetry on"]["share_by_component"].get(COMPONENTS[0][0], 0.0)
    h.record(
        args,
        **META,
        value=h.finite(telemetry_share, 1),
        details=h.clean({"seconds_per_variant": seconds, **results}),
    )


if __name__ == "__main__":
    sys.exit(h.main_guard(run, h.parser(__doc__.splitlines()[0]), META))
