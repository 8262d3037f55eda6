"""Simulator speed: 3 brokers, 2 producers, 2 consumers, 60 simulated seconds of random
faults. Prints simulated seconds per wall second (aim >= 100), events per second and
peak memory (aim < 300 MB).

    python benchmarks/sim.py [--seconds 60] [--runs 3]
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _util import peak_rss_mb, report  # noqa: E402
from kafkaproof.impl.sim.cluster import Cluster  # noqa: E402
from kafkaproof.impl.sim.workload import Workload, run_workload  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    speeds, rates, ops = [], [], []
    for seed in range(args.runs):
        t0 = time.perf_counter()
        c = run_workload(Cluster(seed=seed, broker_props={"min.insync.replicas": "2"}), Workload(),
                         args.seconds * 1000)
        wall = time.perf_counter() - t0
        speeds.append(args.seconds / wall)
        rates.append(c.events / wall)
        ops.append(len(c.history.ops))
    report("simulated_seconds_per_wall_second", statistics.median(speeds), "(aim >= 100)")
    report("events_per_wall_second", statistics.median(rates))
    report("history_ops_per_run", statistics.median(ops))
    report("peak_rss", peak_rss_mb(), "MB (aim < 300)")


if __name__ == "__main__":
    main()
