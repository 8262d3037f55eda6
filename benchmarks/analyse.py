"""The history-only analysis at scale (issue 18): a Jepsen-format history of N operations
(default 1,000,000: sends and polls by 10 processes over 100 keys, every record read
back), written as history.edn, then read and judged.

Prints the EDN read and the analysis in seconds, each beside a baseline from the same
run (json.loads of the same history as JSON lines; one bare pass over its micro-operations),
and peak RSS. Aim: the analysis of 1,000,000 operations in <= 10 s.

    python benchmarks/analyse.py [--ops N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def synthetic(n: int, processes: int = 10, keys: int = 100, seed: int = 0) -> list[dict]:
    """Invocation/completion pairs: a send appends to a key's log, a poll reads the next
    few records of a key from where that process left it."""
    rng = random.Random(seed)
    logs: list[list[int]] = [[] for _ in range(keys)]
    position = [[0] * keys for _ in range(processes)]
    ops, value, t = [], 0, 0
    while len(ops) < n:
        p, k = rng.randrange(processes), rng.randrange(keys)
        t += 1000
        if rng.random() < 0.5:
            value += 1
            ops.append({"time": t, "process": p, "type": "invoke", "f": "send", "value": [["send", k, value]]})
            logs[k].append(value)
            ops.append({"time": t + 500, "process": p, "type": "ok", "f": "send",
                        "value": [["send", k, [len(logs[k]) - 1, value]]]})
        else:
            start = position[p][k]
            got = [[o, logs[k][o]] for o in range(start, min(start + 3, len(logs[k])))]
            position[p][k] = start + len(got)
            ops.append({"time": t, "process": p, "type": "invoke", "f": "poll", "value": [["poll"]]})
            ops.append({"time": t + 500, "process": p, "type": "ok", "f": "poll", "value": [["poll", {k: got}]]})
        if len(ops) >= n - 2 * keys:  # Jepsen's final read: a fresh process reads every key
            for k in range(keys):
                ops.append({"time": t, "process": processes, "type": "invoke", "f": "poll", "value": [["poll"]]})
                ops.append({"time": t + 500, "process": processes, "type": "ok", "f": "poll",
                            "value": [["poll", {k: [[o, v] for o, v in enumerate(logs[k])]}]]})
            break
    return [{"index": i, **op} for i, op in enumerate(ops)]


def main() -> None:
    from kafkaproof.properties import without_cyclic_gc
    from kafkaproof.properties.jepsen_history import parse, write_edn, write_jsonl
    from kafkaproof.properties.jepsen_kafka import analysis

    ap = argparse.ArgumentParser()
    ap.add_argument("--ops", type=int, default=1_000_000)
    args = ap.parse_args()
    history = synthetic(args.ops - args.ops % 2)
    edn, jsonl = write_edn(history), write_jsonl(history)
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "history.edn"), "w") as f:
            f.write(edn)
        size = os.path.getsize(os.path.join(d, "history.edn"))
    t0 = time.perf_counter()
    with without_cyclic_gc():  # as the reader runs
        [json.loads(line) for line in jsonl.splitlines()]
    t_json = time.perf_counter() - t0
    t0 = time.perf_counter()
    ops, _ = parse(edn)
    t_edn = time.perf_counter() - t0
    del edn, jsonl
    t0 = time.perf_counter()
    micro = sum(len(op["value"]) for op in ops if op["value"])
    t_pass = time.perf_counter() - t0
    t0 = time.perf_counter()
    found = analysis(ops, final_read=True)
    t_analysis = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"history: {len(ops):,} operations, {micro:,} micro-operations, {size / 1e6:.0f} MB of EDN")
    print(f"read EDN:  {t_edn:6.2f} s   (json.loads of the same as JSON lines: {t_json:.2f} s; {t_edn / t_json:.1f}x)")
    print(f"analysis:  {t_analysis:6.2f} s   (a bare pass over the micro-operations: {t_pass:.2f} s;"
          f" {t_analysis / t_pass:.0f}x)   aim <= 10 s for 1,000,000")
    print(f"verdict:   {found.verdict[0]} ({', '.join(sorted(found.errors)) or 'no anomalies'})")
    print(f"peak RSS:  {rss:.0f} MB")


if __name__ == "__main__":
    main()
