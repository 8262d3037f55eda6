"""A random workload with random faults on a simulated cluster.

Producers send unique values at a steady rate, consumers poll every partition, and
a nemesis draws faults from a chosen set (swarm testing: a run uses only some fault
kinds). Everything draws from the cluster's seeded generator: same seed, same run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kafkaproof.impl.protocol.messages import TopicPartition, broker_node, controller_node
from kafkaproof.impl.sim.cluster import Cluster

FAULT_KINDS = ("crash", "power", "partition", "pause", "drop", "duplicate", "clock")


@dataclass
class Workload:
    topic: str = "events"
    partitions: int = 2
    replication_factor: int = 3
    producers: int = 2
    consumers: int = 2
    send_interval_ms: int = 20
    poll_interval_ms: int = 50
    fault_interval_ms: int = 4000
    faults: tuple[str, ...] = FAULT_KINDS
    producer_props: dict = field(default_factory=dict)
    consumer_props: dict = field(default_factory=lambda: {"auto.offset.reset": "earliest"})
    # Producer i and consumer i are one application ("app-i" in the history), so
    # read-your-writes has something to judge.
    shared_process: bool = False


def run_workload(c: Cluster, w: Workload, duration_ms: int) -> Cluster:
    c.create_topic(w.topic, w.partitions, w.replication_factor)
    tps = [TopicPartition(w.topic, p) for p in range(w.partitions)]
    end = c.now + duration_ms
    for i in range(w.producers):
        p = c.producer(str(i), w.producer_props, process=f"app-{i}" if w.shared_process else None)
        counter = iter(range(10**9))
        c.every(w.send_interval_ms, lambda p=p, i=i, n=counter: p.send(
            w.topic, b"k%d" % c.rng.randrange(16), b"%d-%d" % (i, next(n))), until=end)
    for i in range(w.consumers):
        consumer = c.consumer(str(i), w.consumer_props, process=f"app-{i}" if w.shared_process else None)
        consumer.assign(tps)
        c.every(w.poll_interval_ms, consumer.poll, until=end)
    if w.faults:
        c.every(w.fault_interval_ms, lambda: _random_fault(c, w), until=end - w.fault_interval_ms)
    c.run_for(duration_ms)
    return c


def _random_fault(c: Cluster, w: Workload) -> None:
    kind = c.rng.choice(w.faults)
    brokers = [broker_node(b) for b in c.broker_ids]
    nodes = brokers + [controller_node(x) for x in c.controller_ids]
    last = c.rng.randint(1000, w.fault_interval_ms)
    if kind in ("crash", "power"):
        up = [b for b in c.broker_ids if broker_node(b) not in c.down]
        if not up:
            return
        victim = c.rng.choice(up)
        c.crash(broker_node(victim)) if kind == "crash" else c.power_loss(victim)
        c.at(last, lambda: c.restart(broker_node(victim)) if broker_node(victim) in c.down else None)
    elif kind == "partition":
        shuffled = c.rng.sample(nodes, len(nodes))
        cut = c.rng.randint(1, len(nodes) - 1)
        c.partition(shuffled[:cut], shuffled[cut:])
        c.at(last, c.heal)
    elif kind == "pause":
        c.pause(c.rng.choice(nodes), last)
    elif kind == "drop":
        c.lossy_network(drop=c.rng.choice([0.05, 0.2]))
        c.at(last, c.heal)
    elif kind == "duplicate":
        c.lossy_network(duplicate=0.1, reorder=c.rng.random() < 0.5)
        c.at(last, c.heal)
    elif kind == "clock":
        c.clock_jump(c.rng.choice(nodes), c.rng.choice([-60_000, 60_000, 3_600_000]))


def settle(c: Cluster, ms: int = 20_000) -> None:
    """Heal the network, restart the brokers and controllers that are down (a crashed
    client stays dead: a new instance would be a new client), let replication catch up."""
    c.heal()
    for node in sorted(c.down):
        if node.startswith(("broker-", "controller-")):
            c.restart(node)
    c.run_for(ms)
