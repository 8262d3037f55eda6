"""`kafkaproof verify` speed, and its agreement with simulation.

Default: seconds per configuration at the default bound (every guarantee, no
confirmation), for a safe and an unsafe configuration; how the time of the durability
query grows with the bound K and with the broker count; peak RSS. Aim: <= 10 s per
configuration at the default bound.

--grid [N]: the cross-check - for N configurations of the 240-configuration grid (all by
default), every VIOLATED must reproduce on the implementation and no PROVED one may show
a violation in a random-fault campaign; writes the table to --table (markdown). Each
configuration is one task on --jobs local processes or a --scheduler's Dask workers
(the same table).

    python benchmarks/verify.py [--grid [N]] [--runs 3] [--table docs/verify-grid.md]
                                [--jobs J | --scheduler tcp://HOST:8786]
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _util import peak_rss_mb, report  # noqa: E402
from kafkaproof.impl.engine import build_setup  # noqa: E402

from kafkaproof.executors import opened  # noqa: E402
from kafkaproof.verify import GUARANTEES, PROVED, check, cross_check, grid, values_of  # noqa: E402

SIM = ["durability", "read-your-writes", "monotonic-reads", "exactly-once", "partition-order"]


def timing() -> None:
    for name, sets in (("safe", ["min.insync.replicas=2"]), ("acks=1", ["acks=1"])):
        values = values_of(build_setup(sets=sets))
        t0 = time.perf_counter()
        for g in GUARANTEES:
            check(g, values)
        report(f"seconds per configuration, every guarantee, bound 10 ({name})", time.perf_counter() - t0,
               "s (aim <= 10)")
    values = values_of(build_setup(sets=["min.insync.replicas=2"]))
    for bound in (4, 6, 8, 10, 12, 14):
        t0 = time.perf_counter()
        v = check("durability", values, bound=bound)
        report(f"durability, safe, 3 brokers, bound {bound}", time.perf_counter() - t0, f"s ({v.status})")
    for brokers in (3, 4, 5):
        t0 = time.perf_counter()
        v = check("durability", {**values, "rf": brokers}, brokers=brokers)
        report(f"durability, replication factor = brokers = {brokers}, bound 10", time.perf_counter() - t0,
               f"s ({v.status})")


def one_configuration(sets: list[str], runs: int) -> tuple[dict[str, str], list[str]]:
    values = values_of(build_setup(sets=sets))
    return {g: check(g, values).status for g in SIM}, cross_check(sets, SIM, runs=runs)


def cross(n: int | None, runs: int, table: str, executor=None) -> None:
    configs = grid()
    configs = configs[:: max(1, len(configs) // n)][:n] if n else configs
    rows, problems, t0 = [], [], time.perf_counter()
    answers = (map(one_configuration, configs, [runs] * len(configs)) if executor is None
               else [f.result() for f in [executor.submit(one_configuration, sets, runs) for sets in configs]])
    for sets, (verdicts, found) in zip(configs, answers, strict=True):
        problems += found
        rows.append((sets, verdicts, not found))
    report("configurations cross-checked", len(rows))
    report("agreeing with simulation", sum(ok for _, _, ok in rows))
    report("PROVED verdicts", sum(v == PROVED for _, vs, _ in rows for v in vs.values()))
    report("wall seconds", time.perf_counter() - t0, "s")
    with open(table, "w") as f:
        f.write("| configuration | " + " | ".join(SIM) + " | agrees |\n|" + " --- |" * (len(SIM) + 2) + "\n")
        for sets, vs, ok in rows:
            f.write(f"| {' '.join(sets)} | " + " | ".join(vs[g] for g in SIM) + f" | {'yes' if ok else 'NO'} |\n")
        for p in problems:
            f.write(f"\n- {p}")
    for p in problems:
        print("DISAGREEMENT:", p)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", nargs="?", type=int, const=0, default=None)
    parser.add_argument("--runs", type=int, default=3, help="simulation runs per configuration (cross-check)")
    parser.add_argument("--table", default="docs/verify-grid.md")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--scheduler", help="a Dask scheduler, tcp://HOST:8786")
    args = parser.parse_args()
    if args.grid is None:
        timing()
    else:
        with opened(args.scheduler, args.jobs) as executor:
            cross(args.grid or None, args.runs, args.table, executor)
    report("peak RSS", peak_rss_mb(), "MB")


if __name__ == "__main__":
    main()
