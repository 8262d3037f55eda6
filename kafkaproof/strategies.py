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

A fault schedule is a list of (at_ms, kind, target broker, duration_ms); the kinds and
what they do are kafkaproof.impl.sim.faults.FAULTS (`kafkaproof check --help` lists
them), `check`'s defaults unless `kinds` says otherwise. Hypothesis shrinks a failing
schedule to the fewest, earliest faults.
"""

from __future__ import annotations

from hypothesis import strategies as st

from kafkaproof.impl.protocol.messages import broker_node
from kafkaproof.impl.sim import faults
from kafkaproof.impl.sim.cluster import Cluster

KINDS = faults.BY_DEFAULT
# Where a kind takes a rate, schedules use its strongest: a short schedule should bite.
RATES = {k: max(f.param("rate").choices) for k, f in faults.FAULTS.items() if any(p.name == "rate" for p in f.params)}


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
    """Inject each fault at its time (from now); each one ends after its duration. The
    target broker is the node of kinds that act on one (crash, power, isolate, cut,
    pause, clock); one broker is down at a time: a crash or power loss while one is
    down is skipped. Parameters not given by the schedule are drawn from the cluster's
    seeded generator."""
    for at, kind, b, duration in schedule:
        if kind not in faults.CLUSTER:
            raise ValueError(f"fault kind {kind!r}: one of {', '.join(faults.CLUSTER)}")

        def inject(kind=kind, b=b, duration=duration) -> None:
            if faults.FAULTS[kind].takes_down and c.down:
                return
            rate = {"rate": RATES[kind]} if kind in RATES else {}
            faults.inject(c, kind, c.rng, duration, broker_node(b), **rate)

        c.at(at, inject)
