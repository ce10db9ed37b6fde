"""Timing: TTFT and token rate match the profile at 50 concurrent streams and on keep-alive."""

from __future__ import annotations

import itertools
import statistics
import threading
import time

PROFILE_TTFT_S = 0.300  # FAST_PROFILES["models"]["timed"]
PROFILE_ITL_S = 1 / 20
TOLERANCE = 0.15
FAST_TTFT_S = 0.100  # FAST_PROFILES["models"]["fast"]
NAGLE_MARGIN_S = 0.030  # a missing TCP_NODELAY showed as +40 ms per request


def timed_stream(
    client, content: str, max_tokens: int | None = None, model: str = "timed"
) -> tuple[float, list[float]]:
    """(TTFT, content-chunk gaps) for one streamed answer, measured on the client."""
    started = time.perf_counter()
    stamps = []
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": content}],
        stream=True,
        max_completion_tokens=max_tokens,
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            stamps.append(time.perf_counter())
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    return stamps[0] - started, gaps


def run_fifty_streams(service, client_for) -> dict[str, float]:
    """50 SDK streams (one thread and connection each), started 10 ms apart so that the
    client's own request building does not queue up behind the GIL; each lasts ~2.3 s, so all
    50 are streaming at once. Returns medians in seconds and the observed concurrency."""
    clients = [client_for(service) for _ in range(50)]
    for client in clients:  # open the keep-alive connections first
        client.models.list()
    results: list[tuple[float, list[float]]] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        outcome = timed_stream(clients[index], f"question number {index}", max_tokens=40)
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
        time.sleep(0.01)
    time.sleep(0.3)
    concurrency = service.metric("mock_llm_active_streams", model="timed")
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 50
    assert all(len(r[1]) == 39 for r in results)  # 40 content chunks each
    return {
        "concurrency": concurrency,
        "ttft": statistics.median(r[0] for r in results),
        # token rate: each request's mean gap (TPOT), then the median across requests
        "tpot": statistics.median(statistics.fmean(r[1]) for r in results),
        "itl": statistics.median(g for r in results for g in r[1]),  # pooled gaps
    }


def within(measured: float, target: float) -> bool:
    return abs(measured - target) / target <= TOLERANCE


def test_ttft_and_token_rate_at_50_concurrent_streams(fast_mock, client_for):
    """Medians within 15 % of the profile. The client shares 2 busy cores with other work, so
    a run disturbed by load (seen as client-side chunk batching) gets one more try."""
    for attempt in range(2):
        got = run_fifty_streams(fast_mock, client_for)
        print(
            f"\n50 streams (attempt {attempt + 1}, {got['concurrency']:.0f} active): "
            f"TTFT p50 {got['ttft'] * 1000:.1f} ms (profile 300), "
            f"TPOT p50 {got['tpot'] * 1000:.2f} ms, ITL p50 {got['itl'] * 1000:.2f} ms (profile 50)"
        )
        if within(got["ttft"], PROFILE_TTFT_S) and within(got["tpot"], PROFILE_ITL_S):
            break
    assert got["concurrency"] == 50
    assert within(got["ttft"], PROFILE_TTFT_S), got
    assert within(got["tpot"], PROFILE_ITL_S), got


def test_keep_alive_sequential_ttft(fast_mock, client_for):
    """Catches Nagle + delayed-ACK stalls (~40 ms) on a reused connection: see TCP_NODELAY."""
    client = client_for(fast_mock)
    timed_stream(client, "warm up", max_tokens=3, model="fast")
    ttfts = [timed_stream(client, f"sequential {i}", 3, "fast")[0] for i in range(7)]
    print(f"\nkeep-alive TTFTs (ms): {[round(t * 1000, 1) for t in ttfts]}")
    assert statistics.median(ttfts) <= FAST_TTFT_S + NAGLE_MARGIN_S
    assert min(ttfts) >= FAST_TTFT_S * 0.98
