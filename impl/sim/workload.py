"""A random workload with random faults on a simulated cluster.

Producers send unique values at a steady rate, consumers poll every partition, and
a nemesis draws faults from a chosen set (swarm testing: a run uses only some fault
kinds). Everything draws from the cluster's seeded generator: same seed, same run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kafkaproof.impl.protocol.messages import TopicPartition
from kafkaproof.impl.sim import faults
from kafkaproof.impl.sim.cluster import Cluster

FAULT_KINDS = faults.BY_DEFAULT
# Not drawn unless asked for (the default campaigns, and the counterexamples saved from
# them, stay as they were): e.g. duplicates that arrive seconds late, every broker losing
# power at once (a data-centre outage: the case Kafka's replication without fsync does not cover).
EXTRA_FAULT_KINDS = tuple(k for k in faults.CLUSTER if k not in faults.BY_DEFAULT)


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
    # For shrinking: faults drawn but not injected (by their position in the draw order),
    # and a cap on the sends of all producers together.
    skip_faults: tuple[int, ...] = ()
    max_sends: int | None = None


def run_workload(c: Cluster, w: Workload, duration_ms: int) -> Cluster:
    if c.state(TopicPartition(w.topic, 0)) is None:  # (applications may have made it already)
        c.create_topic(w.topic, w.partitions, w.replication_factor)
    tps = [TopicPartition(w.topic, p) for p in range(w.partitions)]
    end = c.now + duration_ms
    sends = [0]

    def send(p, i, n) -> None:
        key = b"k%d" % c.rng.randrange(16)
        if w.max_sends is None or sends[0] < w.max_sends:
            sends[0] += 1
            p.send(w.topic, key, b"%d-%d" % (i, next(n)))

    for i in range(w.producers):
        p = c.producer(str(i), w.producer_props, process=f"app-{i}" if w.shared_process else None)
        counter = iter(range(10**9))
        c.every(w.send_interval_ms, lambda p=p, i=i, n=counter: send(p, i, n), until=end)
    for i in range(w.consumers):
        consumer = c.consumer(str(i), w.consumer_props, process=f"app-{i}" if w.shared_process else None)
        consumer.assign(tps)
        c.every(w.poll_interval_ms, consumer.poll, until=end)
    if w.faults:
        drawn = [0]

        def fault() -> None:
            drawn[0] += 1
            _random_fault(c, w, inject=drawn[0] - 1 not in w.skip_faults)

        c.every(w.fault_interval_ms, fault, until=end - w.fault_interval_ms)
    c.run_for(duration_ms)
    return c


def _random_fault(c: Cluster, w: Workload, inject: bool = True) -> None:
    """Draw a fault and inject it. With inject=False the same random numbers are drawn
    (so the rest of the run draws what it would have) but nothing happens."""
    kind = c.rng.choice(w.faults)
    last = c.rng.randint(1000, w.fault_interval_ms)
    faults.inject(c if inject else _Inert(c), kind, c.rng, last)


class _Inert:
    """A cluster stand-in for a skipped fault: reads pass through, faults do nothing."""

    def __init__(self, c: Cluster) -> None:
        self._c = c

    def __getattr__(self, name):
        if name in faults.CLUSTER_ACTIONS:
            return lambda *a, **k: None
        return getattr(self._c, name)


def settle(c: Cluster, ms: int = 20_000, converge_ms: int = 60_000) -> None:
    """Heal the network, restart the brokers and controllers that are down (a crashed
    client stays dead: a new instance would be a new client), let replication catch up:
    `ms`, then until every leader's high watermark has reached its log end (a follower
    whose fetch was dropped waits replica.socket.timeout.ms, 30 s by default, before it
    asks again; reading before that would call a write lost that is only late)."""
    c.heal()
    for node in sorted(c.down):
        if node.startswith(("broker-", "controller-")):
            c.restart(node)
    c.run_for(ms)
    c.run_until(Converged(c), timeout_ms=converge_ms)


class Converged:
    """Every partition has a leader whose HW reached its log end, with no transaction left
    open. Asked after every step until it holds: the partition that failed last is asked
    first (a conjunction, in any order; until it passes one partition is read, not a hundred)."""

    def __init__(self, c: Cluster) -> None:
        self.c, self.culprit = c, None

    def __call__(self) -> bool:
        controller = self.c.active_controller()
        if controller is None:
            return False
        if self.culprit in controller.partitions and not self._settled(self.culprit):
            return False
        for tp in controller.partitions:
            if not self._settled(tp):
                self.culprit = tp
                return False
        return True

    def _settled(self, tp: TopicPartition) -> bool:
        leader = self.c.leader(tp)
        if leader is None:
            return False
        p = self.c.broker(leader).partitions[tp]
        return p.hw >= p.log.log_end_offset and p.lso >= p.hw  # replicated, and no transaction left open
