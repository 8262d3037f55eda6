"""Every checker over a synthetic history: 100k ops, then 1M ops. Prints the seconds
for each (aim: 1M in <= 5 s), the growth factor (aim: ~10, linear) and peak memory
(aim: < 2 GB).

    python benchmarks/checkers.py [--ops 1000000]
"""

import argparse
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _util import peak_rss_mb, report  # noqa: E402
from kafkaproof.properties import check_all  # noqa: E402
from kafkaproof.properties.history import History  # noqa: E402

PARTITIONS = 8
PRODUCERS = 4
CONSUMERS = 4


def synthetic(n_ops: int, seed: int = 0):
    """A valid history: producers send unique values (invoke + ok), consumers poll them in
    order in batches of 10. Returns (history, final log)."""
    rng = random.Random(seed)
    h = History()
    logs: dict[tuple[str, int], list] = {("t", p): [] for p in range(PARTITIONS)}
    read_at = {(c, p): 0 for c in range(CONSUMERS) for p in range(PARTITIONS)}
    t = 0
    while len(h.ops) < n_ops:
        t += 1
        if rng.random() < 0.8:
            proc, p = f"p{rng.randrange(PRODUCERS)}", rng.randrange(PARTITIONS)
            value = f"v{t}"
            h.add(t, proc, "invoke", "send", topic="t", value=value)
            offset = len(logs[("t", p)])
            logs[("t", p)].append((offset, None, value))
            h.add(t, proc, "ok", "send", topic="t", partition=p, offset=offset, value=value)
        else:
            c, p = rng.randrange(CONSUMERS), rng.randrange(PARTITIONS)
            start = read_at[(c, p)]
            records = tuple(("t", p, o, k, v) for o, k, v in logs[("t", p)][start:start + 10])
            read_at[(c, p)] = start + len(records)
            h.add(t, f"c{c}", "invoke", "poll")
            h.add(t, f"c{c}", "ok", "poll", records=records)
    return h, logs


def timed(n_ops: int) -> tuple[float, int]:
    h, logs = synthetic(n_ops)
    t0 = time.perf_counter()
    verdict = check_all(h, logs)
    elapsed = time.perf_counter() - t0
    assert not any(verdict.values()), "the synthetic history is valid: no checker may complain"
    return elapsed, len(h.ops)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=1_000_000)
    args = parser.parse_args()
    small, n_small = timed(args.ops // 10)
    large, n_large = timed(args.ops)
    report(f"check_all_seconds_{n_small}_ops", small)
    report(f"check_all_seconds_{n_large}_ops", large, "(aim <= 5)")
    report("growth_10x_ops", large / small, "(aim ~10: linear)")
    report("ops_per_second", n_large / large)
    report("peak_rss", peak_rss_mb(), "MB (aim < 2000)")


if __name__ == "__main__":
    main()
