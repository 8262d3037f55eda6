"""The stop-the-world cost of a rebalance: eager (range) versus cooperative-sticky.

8 members consume 32 partitions (a producer writes to all of them); then a 9th member
joins, and later one of the 8 leaves. Every 10 simulated ms the script samples which
partitions some live member is consuming (assigned, position known). Per event it
prints, for each assignor: simulated ms the rebalance took, the mean and worst ms a
partition went unconsumed, the share of partitions consumed throughout (aim for
cooperative-sticky: >= 75%), and partitions that changed owner. Then peak RSS.

    python benchmarks/rebalance.py [--members 8] [--partitions 32] [--seed 1]
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _util import peak_rss_mb, report  # noqa: E402
from kafkaproof.impl.sim.cluster import Cluster  # noqa: E402

BROKER = {"offsets.topic.num.partitions": "3", "group.initial.rebalance.delay.ms": "0"}


def consuming(members) -> set:
    out = set()
    for h in members:
        if h.node in h.cluster.down or h.proc.group.member_id == "":
            continue
        out |= {tp for tp, pos in h.proc.assignment.items() if pos.ready}
    return out


def owners(members) -> dict:
    return {tp: h.process for h in members for tp in h.proc.group.owned}


def measure(strategy: str, n_members: int, n_partitions: int, seed: int) -> list[dict]:
    c = Cluster(seed=seed, broker_props=BROKER)
    c.create_topic("t", n_partitions, 3)
    p = c.producer("p", {"acks": "1"})
    c.every(5, lambda: p.send("t", None, b"x"))
    props = {"group.id": "g", "auto.offset.reset": "latest", "enable.auto.commit": "false",
             "partition.assignment.strategy": strategy, "session.timeout.ms": "10000",
             "heartbeat.interval.ms": "1000"}
    members = []

    def add(name):
        h = c.consumer(name, props)
        h.subscribe(["t"])
        members.append(h)

    for i in range(n_members):
        add(f"m{i}")
    c.every(50, lambda: [h.poll() for h in members if h.node not in c.down and not getattr(h, "gone", False)])
    c.run_for(15_000)
    every = {tp for tp in owners(members)}
    assert len(every) == n_partitions, "the group did not settle"
    results = []
    for event in ("a member joins", "a member leaves"):
        before = owners(members)
        start = c.now
        if event == "a member joins":
            add(f"m{len(members)}")
        else:
            leaving = members[0]
            leaving.close()
            leaving.gone = True
            members.remove(leaving)
        idle = {tp: 0 for tp in every}
        settled_at = None
        while c.now - start < 20_000:
            c.run_for(10)
            now_consuming = consuming(members)
            for tp in every - now_consuming:
                idle[tp] += 10
            stable = all(h.proc.group.state == "stable" and not h.proc.group.rejoin_needed for h in members)
            if stable and len(now_consuming) == n_partitions and settled_at is None and c.now - start > 100:
                settled_at = c.now
            if settled_at is not None and c.now - settled_at > 2000:
                break
        after = owners(members)
        results.append({
            "event": event,
            "rebalance_ms": (settled_at or c.now) - start,
            "mean_idle_ms": sum(idle.values()) / len(idle),
            "worst_idle_ms": max(idle.values()),
            "consumed_throughout": sum(1 for v in idle.values() if v == 0) / len(idle),
            "moved": sum(1 for tp in every if before.get(tp) != after.get(tp)),
        })
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--partitions", type=int, default=32)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    for strategy in ("range", "cooperative-sticky"):
        for r in measure(strategy, args.members, args.partitions, args.seed):
            name = f"{strategy}, {r['event']}"
            report(f"{name}: rebalance", r["rebalance_ms"], "simulated ms")
            report(f"{name}: mean partition idle", r["mean_idle_ms"], "simulated ms")
            report(f"{name}: worst partition idle", r["worst_idle_ms"], "simulated ms")
            report(f"{name}: partitions consumed throughout", 100 * r["consumed_throughout"], "%")
            report(f"{name}: partitions moved", r["moved"])
    report("peak RSS", peak_rss_mb(), "MB")


if __name__ == "__main__":
    main()
