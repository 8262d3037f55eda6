"""Shared helpers for benchmark scripts: memory figures and one-figure-per-line output."""

import os
import resource


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
