"""Simulator speed: 3 brokers, 2 producers, 2 consumers, 60 simulated seconds of random
faults. Prints simulated seconds per wall second, events per second, and the same
events per second as a fraction of a bare heapq event loop measured in the same run
(each event pops a timer and pushes the next: the floor any Python simulator pays), and
peak memory (aim < 300 MB).

    python benchmarks/sim.py [--seconds 60] [--runs 3]
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _util import bare_loop, peak_rss_mb, report  # noqa: E402
from kafkaproof.impl.sim.cluster import Cluster  # noqa: E402
from kafkaproof.impl.sim.workload import Workload, run_workload  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    speeds, rates, ops, bare = [], [], [], []
    for seed in range(args.runs):
        bare.append(bare_loop())
        t0 = time.perf_counter()
        c = run_workload(Cluster(seed=seed, broker_props={"min.insync.replicas": "2"}), Workload(),
                         args.seconds * 1000)
        wall = time.perf_counter() - t0
        speeds.append(args.seconds / wall)
        rates.append(c.events / wall)
        ops.append(len(c.history.ops))
    report("simulated_seconds_per_wall_second", statistics.median(speeds), "(aim >= 100)")
    report("events_per_wall_second", statistics.median(rates))
    report("bare_heapq_loop_events_per_wall_second", statistics.median(bare))
    report("simulator_vs_bare_loop", statistics.median(r / b for r, b in zip(rates, bare, strict=True)),
           "(events/s over the bare loop's, same run)")
    # Simulated seconds per wall second on a machine whose bare loop did 1M events/s: the
    # figure to compare across runs and machines (fewer events per simulated second count).
    report("simulated_seconds_per_bare_loop_mevent", statistics.median(speeds) / (statistics.median(bare) / 1e6),
           "(simulated s per million bare-loop events)")
    report("history_ops_per_run", statistics.median(ops))
    report("peak_rss", peak_rss_mb(), "MB (aim < 300)")


if __name__ == "__main__":
    main()
