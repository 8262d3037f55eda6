"""Campaign throughput by executor: runs per minute of one check campaign in this
process, on a Dask LocalCluster with 1 worker and with 2 (aim: 2 workers >= 1.8x one),
with the answers compared (they must be identical), and peak memory per process.

    python benchmarks/campaign.py [--runs 16] [--seconds 20]
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _util import peak_rss_mb, report  # noqa: E402
from kafkaproof.impl.engine import build_setup, run_check  # noqa: E402

from kafkaproof.executors import opened  # noqa: E402


def _peak_rss_mb() -> float:  # (defined here: pickled by value to the workers)
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=20)
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    setup = build_setup(sets=["acks=1"], faults="crash,partition", seconds=args.seconds)
    t0 = time.perf_counter()
    alone = run_check(setup, args.runs, 0)
    per_minute = {"this_process": args.runs / (time.perf_counter() - t0) * 60}
    answers = [(r.seed, r.violations, r.ops) for r in alone]
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                          silence_logs=50) as cluster, opened(cluster.scheduler_address) as executor:
            run_check(setup, workers, 10_000, executor=executor)  # workers import kafkaproof once
            t0 = time.perf_counter()
            got = run_check(setup, args.runs, 0, executor=executor)
            per_minute[f"dask_{workers}_worker"] = args.runs / (time.perf_counter() - t0) * 60
            assert [(r.seed, r.violations, r.ops) for r in got] == answers, "answers differ by executor"
            with Client(cluster.scheduler_address, set_as_default=False) as client:
                rss = client.run(_peak_rss_mb)
            report(f"dask_{workers}_worker_peak_rss_per_worker", max(rss.values()), "MB")
    for name, value in per_minute.items():
        report(f"runs_per_minute_{name}", value)
    report("dask_2_vs_1_worker", per_minute["dask_2_worker"] / per_minute["dask_1_worker"], "(aim >= 1.8)")
    report("dask_1_worker_vs_this_process", per_minute["dask_1_worker"] / per_minute["this_process"])
    report("answers_identical", 1.0, "(asserted)")
    report("peak_rss", peak_rss_mb(), "MB (this process)")


if __name__ == "__main__":
    main()
