"""Trace validation, in its first form: during random faulty runs of the implementation,
its states are abstracted onto the reference model's and the model's invariants are
checked in each. A mutation that breaks the implementation must show up here."""

import pytest
from kafkaproof.impl.protocol.messages import TopicPartition
from kafkaproof.impl.sim.cluster import Cluster
from kafkaproof.impl.sim.workload import Workload, run_workload
from kafkaproof.properties.conformance import abstract, conformance_violations

TP = TopicPartition("events", 0)
FAULTS = ("crash", "partition", "pause", "drop", "duplicate")  # no power loss: see KIP-966


def run_checked(seed: int, seconds: int = 20) -> list[tuple[int, str, str]]:
    c = Cluster(seed=seed, broker_props={"min.insync.replicas": "2", "replica.lag.time.max.ms": "3000"})
    found = []
    w = Workload(partitions=1, producers=1, consumers=0, faults=FAULTS, fault_interval_ms=2000,
                 producer_props={"acks": "all", "request.timeout.ms": "2000"})
    c.every(250, lambda: found.extend((c.now, name, detail) for name, detail in conformance_violations(c, TP)))
    run_workload(c, w, seconds * 1000)
    # not vacuous: the checks ran over a busy, faulty run
    assert len(c.history.completions("send", "ok")) > 100 and len(c.history.faults()) >= 5
    return found


@pytest.mark.parametrize("seed", range(6))
def test_implementation_states_satisfy_the_model_invariants(seed):
    assert run_checked(seed) == []


def test_abstraction_sees_what_the_cluster_holds():
    c = Cluster(seed=1, broker_props={"min.insync.replicas": "2"})
    c.create_topic("events", 1, 3)
    p = c.producer("p", {"acks": "all"})
    for i in range(5):
        p.send("events", None, b"v%d" % i)
    c.run_for(1000)
    s = abstract(c, TP)
    leader = s.q_leader
    assert [v for v, _ in s.replicas[leader].log] == [f"v{i}" for i in range(5)]
    assert s.committed == tuple((i, f"v{i}") for i in range(5))
    assert all(len(rep.log) == 5 and rep.hw == 5 for rep in s.replicas)


def test_conformance_catches_a_broken_hw(broken_hw):
    assert any(run_checked(seed) for seed in range(6))
