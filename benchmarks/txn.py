"""Transactions against plain idempotent produce, in the same run: one application
writes `--records` records per unit of work, the next unit once the last completed -
as an idempotent producer (send them, wait for every acknowledgement) or as one
transaction (begin, send them, commit, wait for the commit). Prints units per
simulated second for both, the wall cost of each, their ratios, and peak memory.

    python benchmarks/txn.py [--seconds 20] [--records 5] [--runs 3]
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _util import peak_rss_mb, report  # noqa: E402
from kafkaproof.impl.sim.cluster import Cluster  # noqa: E402

BROKER = {"min.insync.replicas": "2", "transaction.state.log.num.partitions": "3"}


def closed_loop(seed: int, seconds: int, records: int, transactional: bool) -> tuple[int, float]:
    """(units completed, wall seconds spent running them)."""
    c = Cluster(seed=seed, broker_props=BROKER)
    c.create_topic("t", 2, 3)
    props = {"transactional.id": "bench"} if transactional else {}
    p = c.producer("app", props)
    if transactional:
        ready = []
        p.init_transactions(ready.append)
        c.run_until(lambda: ready, timeout_ms=10_000)
    done = [0]
    values = iter(range(10**9))

    def unit() -> None:
        if transactional:
            p.begin_transaction()
        waiting = [records]

        def acked(*_):
            waiting[0] -= 1
            if waiting[0] == 0 and not transactional:
                finished()

        def finished(*_):
            done[0] += 1
            c.at(0, unit)

        for _ in range(records):
            send(b"%d" % next(values), acked)
        if transactional:
            p.commit_transaction(finished)

    def send(value: bytes, on_done) -> None:  # (the bare producer: no history to keep)
        c._apply(p.node, p.proc.send("t", value, value, c._local(p.node), on_done))

    t0 = time.perf_counter()
    unit()
    c.run_for(seconds * 1000)
    return done[0], time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--records", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows = {False: [], True: []}
    for seed in range(args.runs):
        for transactional in (False, True):
            rows[transactional].append(closed_loop(seed, args.seconds, args.records, transactional))
    plain_rate = statistics.median(n / args.seconds for n, _ in rows[False])
    txn_rate = statistics.median(n / args.seconds for n, _ in rows[True])
    plain_wall = statistics.median(w / n * 1e3 for n, w in rows[False])
    txn_wall = statistics.median(w / n * 1e3 for n, w in rows[True])
    report("idempotent_units_per_simulated_second", plain_rate, f"({args.records} records each)")
    report("transactions_per_simulated_second", txn_rate, f"({args.records} records each)")
    report("transaction_rate_vs_idempotent", txn_rate / plain_rate, "x (same run)")
    report("wall_ms_per_idempotent_unit", plain_wall)
    report("wall_ms_per_transaction", txn_wall)
    report("wall_cost_transaction_vs_idempotent", txn_wall / plain_wall, "x (same run)")
    report("peak_rss", peak_rss_mb(), "MB")


if __name__ == "__main__":
    main()
