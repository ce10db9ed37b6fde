"""A lean asyncio client holding many concurrent SSE streams; run it in its own process.

It speaks raw HTTP/1.1 over asyncio protocols (no HTTP library in the hot path), timestamps every
socket read, splits the body into SSE events itself, and reports per-request TTFT, token counts and
token rates plus pooled inter-token gaps, so that the client is not the bottleneck it measures.

    python bench/sse_client.py --url http://127.0.0.1:8000/v1/chat/completions --kind openai \
        --concurrency 100 --requests-per-user 2 --ramp 1 --out result.json

`--kind openai` counts chunks whose `delta.content` is non-empty (the mock LLM); `--kind assistant`
counts `event: delta` events (the assistant's /api/chat).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

CONTENT_MARK = b'"content":"'


class StreamProtocol(asyncio.Protocol):
    """One HTTP request whose streamed response is parsed into SSE events as bytes arrive."""

    def __init__(self, request: bytes, kind: str, done: asyncio.Future) -> None:
        self.request = request
        self.kind = kind
        self.done = done
        self.buffer = bytearray()
        self.body = bytearray()
        self.headers_done = False
        self.chunked = False
        self.status = 0
        self.token_times: list[float] = []
        self.finished = False  # saw [DONE] / event: done
        self.error = ""
        self.trace_id = ""  # the assistant's `start` event: matches the mock's request log
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self.buffer += data
        if not self.headers_done:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            del self.buffer[: end + 4]
            self.status = int(head[0].split()[1])
            lowered = [line.lower() for line in head[1:]]
            self.chunked = any(
                line.startswith("transfer-encoding:") and "chunked" in line for line in lowered
            )
            self.headers_done = True
        if self.chunked:
            self._dechunk()
        else:
            self.body += self.buffer
            self.buffer.clear()
        self._events(now)

    def _dechunk(self) -> None:
        while True:
            line_end = self.buffer.find(b"\r\n")
            if line_end < 0:
                return
            size = int(bytes(self.buffer[:line_end]).split(b";")[0] or b"0", 16)
            if size == 0:
                self.buffer.clear()
                if self.transport is not None:
                    self.transport.close()
                return
            if len(self.buffer) < line_end + 2 + size + 2:
                return
            self.body += self.buffer[line_end + 2 : line_end + 2 + size]
            del self.buffer[: line_end + 2 + size + 2]

    def _events(self, now: float) -> None:
        while True:
            end = self.body.find(b"\n\n")
            if end < 0:
                return
            event = bytes(self.body[:end])
            del self.body[: end + 2]
            if self.kind == "openai":
                mark = event.find(CONTENT_MARK)
                after = mark + len(CONTENT_MARK)
                if mark >= 0 and event[after : after + 1] != b'"':
                    self.token_times.append(now)
                elif b"[DONE]" in event:
                    self.finished = True
                elif b'"error"' in event:
                    self.error = event[:200].decode(errors="replace")
            else:
                if event.startswith(b"event: delta"):
                    self.token_times.append(now)
                elif event.startswith(b"event: start"):
                    self.trace_id = _start_trace_id(event)
                elif event.startswith(b"event: done"):
                    self.finished = True
                elif event.startswith(b"event: error"):
                    self.error = event[:200].decode(errors="replace")

    def connection_lost(self, exc) -> None:
        if not self.done.done():
            self.done.set_result(exc)


def _start_trace_id(event: bytes) -> str:
    """The trace id in an assistant `start` event (`data: {"trace_id": ...}`), "" if none."""
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            try:
                return str(json.loads(line[5:]).get("trace_id") or "")
            except (ValueError, AttributeError):
                return ""
    return ""


def build_request(url: str, body: bytes, headers: dict[str, str]) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    if host not in ("127.0.0.1", "localhost"):
        raise SystemExit("benchmarks only talk to 127.0.0.1")
    port = parts.port or 80
    lines = [
        f"POST {parts.path or '/'} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        "Accept: text/event-stream",
        "Accept-Encoding: identity",
        "Connection: close",
        f"Content-Length: {len(body)}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return host, port, ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def one_request(
    loop: asyncio.AbstractEventLoop, host: str, port: int, request: bytes, kind: str, timeout: float
) -> dict:
    done: asyncio.Future = loop.create_future()
    start = time.perf_counter()
    result = {"start": start, "status": 0, "tokens": 0, "ok": False, "error": ""}
    transport = None
    try:
        transport, proto = await asyncio.wait_for(
            loop.create_connection(lambda: StreamProtocol(request, kind, done), host, port), timeout
        )
        await asyncio.wait_for(done, timeout)
    except (OSError, TimeoutError) as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"[:200]
        if transport is not None:
            transport.close()
        return result
    times = proto.token_times
    result.update(
        status=proto.status,
        tokens=len(times),
        ok=proto.status == 200 and proto.finished and not proto.error and bool(times),
        error=proto.error or ("" if proto.status == 200 else f"HTTP {proto.status}"),
        end=time.perf_counter(),
    )
    if proto.trace_id:
        result["trace_id"] = proto.trace_id
    if times:
        result["ttft"] = times[0] - start
        result["first"] = times[0]
        result["last"] = times[-1]
        if len(times) > 1 and times[-1] > times[0]:
            result["rate"] = (len(times) - 1) / (times[-1] - times[0])
            result["gaps"] = [b - a for a, b in itertools.pairwise(times)]
    return result


async def run(args: argparse.Namespace) -> dict:
    loop = asyncio.get_running_loop()
    body = json.dumps(json.loads(args.body)).encode()
    headers = dict(h.split(":", 1) for h in args.header)
    headers = {k: v.strip() for k, v in headers.items()}
    host, port, request = build_request(args.url, body, headers)
    results: list[dict] = []
    counter = iter(range(10**9))

    def next_request() -> bytes:
        """The same request, or with a fresh X-Session-Id (no history build-up) when asked."""
        if not args.unique_session:
            return request
        fresh = {**headers, "X-Session-Id": f"bench-{os.getpid()}-{next(counter):09d}"}
        return build_request(args.url, body, fresh)[2]

    deadline = time.perf_counter() + args.max_seconds

    async def user(index: int) -> None:
        await asyncio.sleep(args.ramp * index / max(args.concurrency, 1))
        for _ in range(args.requests_per_user):
            if time.perf_counter() > deadline:
                return
            results.append(
                await one_request(loop, host, port, next_request(), args.kind, args.timeout)
            )

    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    await asyncio.gather(*(user(i) for i in range(args.concurrency)))
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    gaps = [g for r in results for g in r.pop("gaps", [])]
    gaps.sort()
    keep = max(1, len(gaps) // 20000)
    return {
        "concurrency": args.concurrency,
        "requests": results,
        "gaps_sorted_sample": gaps[::keep],
        "gap_count": len(gaps),
        "client_cpu_s": cpu,
        "wall_s": wall,
        "client_cpu_share": cpu / wall if wall else 0.0,
        "pid": os.getpid(),
    }


def main() -> int:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--url", required=True)
    cli.add_argument("--kind", choices=("openai", "assistant"), required=True)
    cli.add_argument("--body", required=True, help="JSON request body")
    cli.add_argument("--header", action="append", default=[], help="Name: value (repeatable)")
    cli.add_argument("--concurrency", type=int, default=10)
    cli.add_argument("--requests-per-user", type=int, default=1)
    cli.add_argument("--ramp", type=float, default=1.0, help="seconds over which users start")
    cli.add_argument("--timeout", type=float, default=120.0, help="per request")
    cli.add_argument("--max-seconds", type=float, default=600.0, help="no new request after this")
    cli.add_argument("--unique-session", action="store_true", help="new X-Session-Id per request")
    cli.add_argument("--out", type=Path, required=True)
    args = cli.parse_args()
    if not 1 <= args.concurrency <= 5000 or not 1 <= args.requests_per_user <= 10000:
        raise SystemExit("concurrency must be 1..5000 and requests-per-user 1..10000")
    try:
        import resource

        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    except (ImportError, ValueError, OSError):
        pass
    report = asyncio.run(run(args))
    args.out.write_text(json.dumps(report))
    failed = sum(not r["ok"] for r in report["requests"])
    print(
        f"sse_client: {len(report['requests'])} requests, {failed} failed, "
        f"client CPU {report['client_cpu_share']:.0%}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
