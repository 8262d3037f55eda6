"""Exhaustive exploration speed of the replication model: distinct states per second,
with and without symmetry reduction, on a bound that finishes in seconds.

    python benchmarks/explore.py [--replicas 2] [--records 2] [--max-epoch 3]
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _util import peak_rss_mb, report  # noqa: E402
from kafkaproof.model.explore import explore  # noqa: E402
from kafkaproof.model.replication import Bounds, Model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--records", type=int, default=2)
    parser.add_argument("--max-epoch", type=int, default=3)
    args = parser.parse_args()
    bounds = Bounds(args.replicas, args.records, args.max_epoch)
    for symmetry in (False, True):
        r = explore(Model("kip320", bounds), symmetry=symmetry)
        tag = "symmetry" if symmetry else "plain"
        report(f"{tag}_distinct_states", r.distinct)
        report(f"{tag}_transitions", r.transitions)
        report(f"{tag}_seconds", r.seconds)
        report(f"{tag}_states_per_second", r.distinct / r.seconds)
        report(f"{tag}_transitions_per_second", r.transitions / r.seconds)
    report("peak_rss", peak_rss_mb(), "MB")


if __name__ == "__main__":
    main()
