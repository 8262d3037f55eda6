"""Shared helpers for benchmark scripts: memory figures and one-figure-per-line output."""

import heapq
import os
import random
import resource
import time


def rss_mb() -> float:
    """Current resident set size in MB (Linux /proc; falls back to the peak)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:
        return peak_rss_mb()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3  # ru_maxrss is KiB on Linux


def report(name: str, value: float, unit: str = "") -> None:
    print(f"{name}: {value:.3f}{(' ' + unit) if unit else ''}", flush=True)


def bare_loop(events: int = 300_000) -> float:
    """Events per wall second of a bare heapq loop: pop (time, seq, kind, payload),
    push a successor a random few milliseconds later."""
    rng = random.Random(0)
    queue = [(rng.randrange(100), i, "timer", (i,)) for i in range(100)]
    heapq.heapify(queue)
    seq = len(queue)
    start = time.perf_counter()
    for _ in range(events):
        at, _, kind, payload = heapq.heappop(queue)
        heapq.heappush(queue, (at + rng.randrange(1, 10), seq, kind, payload))
        seq += 1
    return events / (time.perf_counter() - start)
