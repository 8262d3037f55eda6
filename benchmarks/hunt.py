"""How fast `kafkaproof hunt` finds and shrinks a counterexample, per unsafe choice.

Nothing is tuned: each unsafe choice of the eight practices (kafkaproof/unsafe.py) alone
on Kafka 3's defaults, with the default fault kinds of the failure model its row is
judged under (unsafe.judge_under). For each: over 10 starting seeds, the median wall seconds to the first violating
run (every other seed steered by verify's breaking schedule, as `hunt` does; the same
without steering as the baseline), the median seconds including shrinking, and the shrunk size against the first-found
size (simulated seconds, faults, sends). Then peak RSS. Aim (issue 16): a median <= 10 s
for each, and no start missing within 60 s. With --sets, one configuration instead of
the choices: KIP-966's hazard, for instance (issue 19's aim: a median <= 30 s),

    python benchmarks/hunt.py --sets default.replication.factor=3,min.insync.replicas=2 \
        --faults crash,partition,drop,power --guarantee durability

    python benchmarks/hunt.py [--starts 10] [--budget 60] [--plain-budget 20] [--only NAME-PART]
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _util import peak_rss_mb, report  # noqa: E402
from kafkaproof.impl.engine import build_setup  # noqa: E402
from kafkaproof.impl.engine.shrink import shrink, size_of  # noqa: E402

from kafkaproof.hunt import hunt, steering  # noqa: E402
from kafkaproof.unsafe import CHOICES, judge_under, setup_of  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=10)
    parser.add_argument("--budget", type=float, default=60)
    parser.add_argument("--plain-budget", type=float, default=20,
                        help="the unsteered baseline's budget per start (a miss counts all of it)")
    parser.add_argument("--only", help="choices whose name contains this")
    parser.add_argument("--sets", help="instead of the choices: this configuration (K=V,K=V)")
    parser.add_argument("--faults", default="crash,partition,drop,power", help="with --sets: the fault kinds")
    parser.add_argument("--guarantee", default="durability", help="with --sets: the guarantee hunted")
    args = parser.parse_args()
    if args.sets:
        hunts = [(args.sets, args.guarantee, build_setup(sets=args.sets.split(","), faults=args.faults))]
    else:
        hunts = [(c.name, c.guarantee, setup_of(c, judge_under(c)[0])) for c in CHOICES
                 if not args.only or args.only in c.name]
    for name, guarantee, setup in hunts:
        steer = steering(setup, guarantee)
        to_first, plain, total, first_sizes, shrunk_sizes, missed, missed_plain = [], [], [], [], [], 0, 0
        for start in range(args.starts):
            t0 = time.perf_counter()  # the baseline, in the same run: hunt without steering
            missed_plain += not hunt(setup, guarantee, args.plain_budget, seed=start * 1000, shrink=False).found
            plain.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            found = hunt(setup, guarantee, args.budget, seed=start * 1000, shrink=False, steer=steer)
            if not found.found:
                missed += 1
                continue
            to_first.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            small, result, _ = shrink(found.setup, found.result, guarantee, max(args.budget, 30.0))
            total.append(to_first[-1] + time.perf_counter() - t0)
            first_sizes.append(size_of(found.setup, found.result))
            shrunk_sizes.append(size_of(small, result))
        report(f"{name}: median seconds to the first counterexample", statistics.median(to_first) if to_first
               else float("nan"), "s")
        report(f"{name}: ... without steering (baseline; a miss counts the whole budget), misses {missed_plain}",
               statistics.median(plain), "s")
        if to_first:
            report(f"{name}: steered / plain median time", statistics.median(to_first) / statistics.median(plain))
        report(f"{name}: median seconds including shrinking", statistics.median(total) if total else float("nan"),
               "s")
        for field in ("seconds", "faults", "sends"):
            if first_sizes:
                report(f"{name}: median {field}, first found -> shrunk",
                       statistics.median(getattr(s, field) for s in first_sizes))
                report(f"{name}: median {field} after shrinking",
                       statistics.median(getattr(s, field) for s in shrunk_sizes))
        report(f"{name}: starts without a counterexample within the budget", missed)
    report("peak RSS", peak_rss_mb(), "MB")


if __name__ == "__main__":
    main()
