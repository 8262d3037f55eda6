"""Hypothesis strategies for testing your own Kafka logic against a faulty cluster.

    from hypothesis import given
    from kafkaproof import Cluster
    from kafkaproof.strategies import fault_schedules, apply_schedule

    @given(schedule=fault_schedules(), seed=seeds())
    def test_my_consumer(schedule, seed):
        c = Cluster(seed=seed)
        ...
        apply_schedule(c, schedule)
        c.run_for(30_000)

A fault schedule is a list of (at_ms, kind, target, duration_ms); kinds are the
simulator's: crash, power, partition, pause, drop, duplicate, clock. Hypothesis shrinks
a failing schedule to the fewest, earliest faults.
"""

from __future__ import annotations

from hypothesis import strategies as st

from kafkaproof.impl.protocol.messages import broker_node
from kafkaproof.impl.sim.cluster import Cluster

KINDS = ("crash", "power", "partition", "pause", "drop", "duplicate", "clock")


def seeds() -> st.SearchStrategy[int]:
    return st.integers(0, 2**32 - 1)


def fault_schedules(brokers: int = 3, max_faults: int = 5, within_ms: int = 20_000,
                    kinds: tuple[str, ...] = KINDS) -> st.SearchStrategy[list[tuple[int, str, int, int]]]:
    fault = st.tuples(st.integers(0, within_ms), st.sampled_from(kinds), st.integers(0, brokers - 1),
                      st.integers(200, 8000))
    return st.lists(fault, max_size=max_faults).map(sorted)


def producer_configs() -> st.SearchStrategy[dict[str, str]]:
    """acks and idempotence as Kafka allows them together (idempotence needs acks=all)."""
    return st.sampled_from(["0", "1", "all"]).flatmap(lambda acks: st.fixed_dictionaries({
        "acks": st.just(acks),
        "enable.idempotence": st.just("false") if acks != "all" else st.sampled_from(["true", "false"]),
    }))


def broker_configs() -> st.SearchStrategy[dict[str, str]]:
    return st.fixed_dictionaries({
        "min.insync.replicas": st.sampled_from(["1", "2"]),
        "unclean.leader.election.enable": st.sampled_from(["false", "true"]),
    })


def apply_schedule(c: Cluster, schedule: list[tuple[int, str, int, int]]) -> None:
    """Inject each fault at its time (from now); each one ends after its duration (one
    broker down at a time: a crash or power loss of a broker already down is skipped)."""
    for at, kind, b, duration in schedule:
        node = broker_node(b)

        def inject(kind=kind, b=b, node=node, duration=duration) -> None:
            if kind in ("crash", "power"):
                if c.down:
                    return
                c.crash(node) if kind == "crash" else c.power_loss(b)
                c.at(duration, lambda: c.restart(node) if node in c.down else None)
            elif kind == "partition":
                c.isolate(node)
                c.at(duration, c.heal)
            elif kind == "pause":
                c.pause(node, duration)
            elif kind == "drop":
                c.lossy_network(drop=0.2)
                c.at(duration, c.heal)
            elif kind == "duplicate":
                c.lossy_network(duplicate=0.2, reorder=True)
                c.at(duration, c.heal)
            elif kind == "clock":
                c.clock_jump(node, duration * 100)

        c.at(at, inject)
