"""Where campaigns stop scaling: a model of a Dask campaign on W workers, fed by costs
measured here.

Measured in this run:
  - a run's wall time (check-style runs of one campaign setup, this process);
  - the scheduler's cost per task (no-op tasks through a 1-worker LocalCluster: the
    scheduler, the client and the worker's bookkeeping, everything but the run);
  - the pickled size of a run's result.
Assumed (flags): the network's one-way latency and bandwidth between machines.

Then a discrete-event simulation of the campaign: one scheduler serving W workers, each
task costing the scheduler its per-task time (serially: Dask's scheduler is one
thread) and each worker a run drawn from the measured ones plus the transfer of its
result. Prints runs per minute and efficiency (runs per minute / (W x one worker's)) for
W = 1, 2, 10, 100, 1,000, and the W where efficiency falls below one half.

    python benchmarks/scale_model.py [--runs 12] [--latency-ms 0.5] [--bandwidth-mbps 1000]
"""

import argparse
import heapq
import os
import pickle
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _util import peak_rss_mb, report  # noqa: E402
from kafkaproof.impl.engine import build_setup, run_one  # noqa: E402


def _noop(x: int) -> int:
    return x


def measure_scheduler(tasks: int = 2000) -> float:
    """Seconds of overhead per task through Dask (submit, schedule, run a no-op, return)."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=50) as cluster, Client(cluster, set_as_default=False) as client:
        client.gather(client.map(_noop, range(100), pure=False))  # warm
        t0 = time.perf_counter()
        client.gather(client.map(_noop, range(tasks), pure=False))
        return (time.perf_counter() - t0) / tasks


def simulate(workers: int, runs: int, durations: list[float], per_task_s: float, transfer_s: float,
             seed: int = 0) -> float:
    """Wall seconds for `runs` tasks on `workers`: the scheduler handles one task event
    at a time (per_task_s each), a worker runs a drawn duration then ships its result."""
    rng = random.Random(seed)
    scheduler_free = 0.0
    events: list[tuple[float, int]] = []  # (time a worker is free for a new task, worker)
    for w in range(workers):
        heapq.heappush(events, (0.0, w))
    started = finished = 0
    end = 0.0
    while finished < runs:
        free_at, w = heapq.heappop(events)
        # The scheduler hands the worker its next task when both are free.
        at = max(free_at, scheduler_free) + per_task_s
        scheduler_free = at
        if started < runs:
            started += 1
            done = at + transfer_s + rng.choice(durations) + transfer_s
            heapq.heappush(events, (done, w))
        if free_at > 0:
            finished += 1
            end = max(end, at)
    return end


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=12, help="runs measured for the run-time distribution")
    parser.add_argument("--seconds", type=int, default=20, help="simulated seconds per run")
    parser.add_argument("--latency-ms", type=float, default=0.5, help="one-way network latency between machines")
    parser.add_argument("--bandwidth-mbps", type=float, default=1000, help="network bandwidth")
    args = parser.parse_args()

    setup = build_setup(sets=["acks=1"], faults="crash,partition", seconds=args.seconds)
    durations, sizes = [], []
    for seed in range(args.runs):
        t0 = time.perf_counter()
        result = run_one(setup, seed)
        durations.append(time.perf_counter() - t0)
        sizes.append(len(pickle.dumps(result)))
    per_task = measure_scheduler()
    transfer = args.latency_ms / 1e3 + statistics.mean(sizes) * 8 / (args.bandwidth_mbps * 1e6)
    report("run_seconds_mean", statistics.mean(durations))
    report("run_seconds_stdev", statistics.stdev(durations) if len(durations) > 1 else 0.0)
    report("result_bytes_mean", statistics.mean(sizes))
    report("scheduler_seconds_per_task", per_task, "(measured: Dask LocalCluster, no-op tasks)")
    report("transfer_seconds_per_result", transfer, f"(assumed {args.latency_ms} ms, {args.bandwidth_mbps} Mbit/s)")
    one = 2000 / simulate(1, 2000, durations, per_task, transfer) * 60
    knee = half = None
    for w in (1, 2, 10, 100, 200, 500, 1000, 2000, 5000):
        total = 50 * w  # (a campaign long enough that starting and draining the workers is noise)
        rate = total / simulate(w, total, durations, per_task, transfer) * 60
        efficiency = rate / (w * one)
        knee = knee or (w if efficiency < 0.9 else None)
        half = half or (w if efficiency < 0.5 else None)
        report(f"model_runs_per_minute_{w}_workers", rate, f"(efficiency {efficiency:.2f})")
    bound = 1 / per_task * 60
    report("model_ceiling_runs_per_minute", bound, "(1 / scheduler's per-task time)")
    report("model_workers_where_efficiency_below_0.9", knee or float("nan"), "(throughput stops growing in step)")
    report("model_workers_where_efficiency_below_0.5", half or float("nan"))
    report("peak_rss", peak_rss_mb(), "MB")


if __name__ == "__main__":
    main()
