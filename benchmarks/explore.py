"""Exhaustive exploration speed of the replication model: distinct states per second,
with and without symmetry reduction, on a bound that finishes in seconds; with --big,
the time to prove kip320 with 3 replicas, 2 records and epochs <= 3 (829,479 states;
aim <= 60 s). Each figure also per million events of a bare heapq loop measured in the
same run, to compare across noisy machines. With --jobs N, the same searches with the
frontier sharded over N local processes, as a ratio to one process (a coordinator merges
what the workers find, so N workers need N + 1 cores to gain).

    python benchmarks/explore.py [--replicas 2] [--records 2] [--max-epoch 3] [--big] [--jobs N]
"""

import argparse
import os
import resource
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _util import bare_loop, peak_rss_mb, report  # noqa: E402
from kafkaproof.impl.engine.executors import LocalPool  # noqa: E402
from kafkaproof.model.explore import explore  # noqa: E402
from kafkaproof.model.replication import Bounds, Model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--records", type=int, default=2)
    parser.add_argument("--max-epoch", type=int, default=3)
    parser.add_argument("--big", action="store_true", help="also prove kip320 with 3 replicas (minutes)")
    parser.add_argument("--jobs", type=int, default=1, help="also shard each search over this many processes")
    args = parser.parse_args()
    pool = LocalPool(args.jobs) if args.jobs > 1 else None
    bounds = Bounds(args.replicas, args.records, args.max_epoch)
    bare = bare_loop()
    report("bare_heapq_loop_events_per_wall_second", bare)
    for symmetry in (False, True):
        r = explore(Model("kip320", bounds), symmetry=symmetry)
        tag = "symmetry" if symmetry else "plain"
        report(f"{tag}_distinct_states", r.distinct)
        report(f"{tag}_transitions", r.transitions)
        report(f"{tag}_seconds", r.seconds)
        report(f"{tag}_states_per_second", r.distinct / r.seconds)
        report(f"{tag}_transitions_per_second", r.transitions / r.seconds)
        report(f"{tag}_states_per_bare_loop_mevent", r.distinct / r.seconds / (bare / 1e6))
        if pool:
            sharded = explore(Model("kip320", bounds), symmetry=symmetry, executor=pool)
            assert sharded.distinct == r.distinct and sharded.transitions == r.transitions
            report(f"{tag}_sharded_{args.jobs}_seconds", sharded.seconds)
            report(f"{tag}_sharded_{args.jobs}_vs_one_process", r.seconds / sharded.seconds, "(speed-up)")
    if args.big:
        r = explore(Model("kip320", Bounds(3, 2, 3)), symmetry=True)
        assert r.holds and r.complete
        report("kip320_3_replicas_distinct_states", r.distinct)
        report("kip320_3_replicas_seconds", r.seconds, "(aim <= 60)")
        report("kip320_3_replicas_states_per_second", r.distinct / r.seconds)
        if pool:
            sharded = explore(Model("kip320", Bounds(3, 2, 3)), symmetry=True, executor=pool)
            assert sharded.distinct == r.distinct and sharded.transitions == r.transitions
            report(f"kip320_3_replicas_sharded_{args.jobs}_seconds", sharded.seconds)
            report(f"kip320_3_replicas_sharded_{args.jobs}_vs_one_process", r.seconds / sharded.seconds, "(speed-up)")
        report("bare_heapq_loop_events_per_wall_second_after", bare_loop())
    report("peak_rss", peak_rss_mb(), "MB (this process)")
    if pool:
        pool.shutdown()
        report("peak_rss_largest_worker", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e3, "MB")


if __name__ == "__main__":
    main()
