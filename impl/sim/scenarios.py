"""Fixed runs of one hazard each, which the demo prints and the tests pin.

`last_replica_standing` is KIP-966's: the ISR shrinks to the leader alone (the followers
hold the data but lag behind a cut), the leader loses power with its log unflushed and
comes back; before eligible leader replicas it is elected again, as the last ISR member,
and the followers truncate to its empty log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kafkaproof.impl.protocol.messages import NO_LEADER, TopicPartition, broker_node
from kafkaproof.impl.sim.cluster import Cluster
from kafkaproof.properties.durability import check_durability

TP = TopicPartition("orders", 0)


@dataclass
class Outcome:
    cluster: Cluster
    acked: int  # acknowledged acks=all writes before the fault
    leader: int  # the leader that lost power
    isr: tuple[int, ...]  # the ISR and ELR when it did
    elr: tuple[int, ...]
    elected: int  # the leader after it came back
    lost: list  # durability violations once everything settled


def last_replica_standing(props: dict[str, str], seed: int = 1, writes: int = 10,
                          shrunk: Callable[[Cluster, int], None] | None = None) -> Outcome:
    """`props`: broker settings on top of min.insync.replicas=2 and a 2 s lag time.
    `shrunk(cluster, leader)` runs when the ISR has shrunk, before the power loss."""
    c = Cluster(seed=seed, broker_props={"min.insync.replicas": "2", "replica.lag.time.max.ms": "2000", **props})
    c.create_topic(TP.topic, 1, 3)
    producer = c.producer("p", {"acks": "all"})
    for i in range(writes):
        producer.send(TP.topic, b"k", b"v%d" % i)
    c.run_for(1000)
    acked = len(c.history.completions("send", "ok"))
    leader = c.leader(TP)
    for b in c.broker_ids:
        if b != leader:
            c.cut(broker_node(b), broker_node(leader), both_ways=True, planes=("data",))
    c.run_for(5000)
    st = c.state(TP)
    if shrunk is not None:
        shrunk(c, leader)
    c.power_loss(leader)
    c.restart(broker_node(leader))
    c.heal()
    c.run_for(5000)
    elected = c.state(TP).leader
    for node in sorted(c.down):
        c.restart(node)
    c.run_until(lambda: c.leader(TP) is not None, 60_000)
    c.run_for(15_000)
    lost = check_durability(c.history, {tuple(TP): c.committed(TP)})
    return Outcome(c, acked, leader, st.isr, st.elr, elected if elected is not None else NO_LEADER, lost)
