"""The model's invariants, checked on the implementation's states.

`abstract()` maps one partition of a simulated cluster onto the reference model's
`State` (each replica's log as (value, leader epoch) pairs, its HW, the epoch and role
it believes in, the controller's quorum state, and every acknowledged write as
`committed`), so the very predicates that the explorer proves over the model judge the
running implementation: TypeOk, ReplicaLogConsistency, StrongIsr, LeaderCompleteness.
A violation here is a conformance failure: a state the model says cannot happen.
"""

from __future__ import annotations

from kafkaproof.impl.protocol.messages import NO_LEADER, TopicPartition, broker_node
from kafkaproof.impl.sim.cluster import Cluster
from kafkaproof.model.replication import NONE, Model, Replica, State


def log_entries(log, start: int = 0) -> tuple[tuple[str | None, int], ...]:
    """The model's view of a log from offset `start`: (value, leader epoch) per record."""
    return tuple((r.value.decode() if r.value is not None else None, batch.header.partition_leader_epoch)
                 for batch in log.iter_batches(start=start) for r in batch.records if r.offset >= start)


def abstract(c: Cluster, tp: TopicPartition) -> State:
    st = c.state(tp)
    replicas = []
    for b in c.broker_ids:
        p = None if broker_node(b) in c.down else c.broker(b).partitions.get(tp)
        if p is None:
            replicas.append(Replica((), 0, NONE, NONE, (), ()))
            continue
        leader = p.leader if p.leader != NO_LEADER else NONE
        replicas.append(Replica(log_entries(p.log), p.hw, p.leader_epoch, leader, p.isr, tuple(p.log.epochs.entries)))
    committed = tuple(sorted((op.offset, op.value) for op in c.history.completions("send", "ok")
                             if op.topic == tp.topic and op.partition == tp.partition and op.offset is not None))
    return State(tuple(replicas), st.leader_epoch, st.leader if st.leader != NO_LEADER else NONE,
                 st.isr, 0, committed)


def conformance_violations(c: Cluster, tp: TopicPartition) -> list[tuple[str, str]]:
    """The model invariants the implementation's current state breaks (none, we hope).
    Down brokers are skipped: their memory is gone, only their disk remains."""
    s = abstract(c, tp)
    live = [r for r in range(len(s.replicas)) if broker_node(r) not in c.down]
    model = Model("kip320")
    bad = model.invariants(s._replace(q_isr=tuple(r for r in s.q_isr if r in live)))
    return bad
