"""Conformance of the implementation to the reference model, two ways, over random
faulty runs: (1) its states, abstracted onto the model's, satisfy the model's
invariants; (2) trace validation: every step a broker takes is replayed in the model
and must be one the model allows. Mutations and mismatched protocol variants must
show up in each."""

import pytest
from conftest import hw_from_leader_alone
from kafkaproof.impl.broker.partition import Partition
from kafkaproof.impl.protocol.messages import TopicPartition, broker_node
from kafkaproof.impl.sim.cluster import Cluster
from kafkaproof.impl.sim.conformance import abstract, conformance_violations
from kafkaproof.impl.sim.trace_validation import TraceValidator
from kafkaproof.impl.sim.workload import Workload, run_workload

TP = TopicPartition("events", 0)
FAULTS = ("crash", "partition", "pause", "drop", "duplicate")  # no power loss: see KIP-966
LEGACY = {"legacy-hw": "legacy.truncate.to.high.watermark", "kip101": "legacy.kip101.without.kip279",
          "kip279": "legacy.no.fetch.epoch.fencing", "kip320": None, "kip966": "eligible.leader.replicas.enable"}


def faulty_run(seed: int, impl_variant: str = "kip320", acks: str = "all", seconds: int = 20):
    props = {"min.insync.replicas": "2", "replica.lag.time.max.ms": "3000"}
    if LEGACY[impl_variant]:
        props[LEGACY[impl_variant]] = "true"
        if impl_variant == "kip101":
            props["legacy.no.fetch.epoch.fencing"] = "true"  # KIP-101 predates KIP-279 and KIP-320
    return Cluster(seed=seed, broker_props=props), Workload(
        partitions=1, producers=1, consumers=0, faults=FAULTS, fault_interval_ms=2000,
        producer_props={"acks": acks, "request.timeout.ms": "2000"}), seconds * 1000


def run_checked(seed: int) -> list[tuple[int, str, str]]:
    c, w, ms = faulty_run(seed)
    found = []
    c.every(250, lambda: found.extend((c.now, name, detail) for name, detail in conformance_violations(c, TP)))
    run_workload(c, w, ms)
    # not vacuous: the checks ran over a busy, faulty run
    assert len(c.history.completions("send", "ok")) > 100 and len(c.history.faults()) >= 5
    return found


def validated(seed: int, impl_variant: str = "kip320", model_variant: str | None = None) -> TraceValidator:
    # acks=1: leaders run ahead of their followers, so failovers leave tails to truncate
    c, w, ms = faulty_run(seed, impl_variant, acks="1")
    v = TraceValidator(c, TP, model_variant or impl_variant)
    run_workload(c, w, ms)
    assert v.steps > 300 and len(c.history.faults()) >= 5
    return v


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


# -- trace validation ------------------------------------------------------------------------


def test_every_broker_step_is_a_model_step():
    seen: dict[str, int] = {}
    for seed in range(36):  # (truncations are rare with acks=1 and these faults: 3 of 36 runs)
        v = validated(seed)
        assert v.failures == [], "\n".join(map(str, v.failures[:5]))
        for action, n in v.actions.items():
            seen[action] = seen.get(action, 0) + n
    # the runs exercised every kind of step, failovers and truncations included
    for action in ("LeaderWrite", "FollowerReplicate", "LeaderIncHighWatermark", "FollowerIncHighWatermark",
                   "BecomeLeader", "BecomeFollower", "BecomeFollowerAndTruncate", "LeaderShrinkIsr",
                   "LeaderExpandIsr", "Restart"):
        assert seen.get(action, 0) > 0, f"no {action} in any run: {seen}"


@pytest.mark.parametrize("variant", ["legacy-hw", "kip101", "kip279"])
def test_legacy_implementations_conform_to_their_own_model_variant(variant):
    for seed in range(6):
        v = validated(seed, variant)
        assert v.failures == [], "\n".join(map(str, v.failures[:5]))


def test_truncating_to_the_hw_is_not_a_kip320_step():
    """The validator tells protocol variants apart: the pre-KIP-101 broker judged by the
    fixed model truncates where the model would not."""
    failures = [f for seed in range(12) for f in validated(seed, "legacy-hw", "kip320").failures]
    assert any("Truncate" in f.action for f in failures), failures[:3]


def test_trace_validation_catches_a_broken_hw(monkeypatch):
    monkeypatch.setattr(Partition, "maybe_advance_hw", hw_from_leader_alone)
    failures = [f for seed in range(4) for f in validated(seed).failures]
    assert any(f.action == "LeaderIncHighWatermark" for f in failures)


def rejoin_with_a_divergent_tail() -> TraceValidator:
    """acks=1, the followers cut off, the leader writes alone and crashes; a follower is
    elected; the old leader restarts and must cut the tail nobody else has."""
    c = Cluster(seed=1, broker_props={"replica.lag.time.max.ms": "3000"})
    c.create_topic(TP.topic, 1, 3)
    v = TraceValidator(c, TP)
    p = c.producer("p", {"acks": "1"})
    p.send(TP.topic, b"k", b"replicated")
    c.run_for(1000)
    leader = c.leader(TP)
    for b in c.broker_ids:
        if b != leader:
            c.cut(broker_node(b), broker_node(leader), both_ways=True, planes=("data",))
    p.send(TP.topic, b"k", b"only-on-the-leader")
    c.run_for(500)
    c.crash(broker_node(leader))
    c.heal()
    c.run_for(10_000)
    p.send(TP.topic, b"k", b"after-failover")
    c.run_for(2000)
    c.restart(broker_node(leader))
    c.run_for(10_000)
    return v


def test_the_old_leader_truncates_as_the_model_says():
    v = rejoin_with_a_divergent_tail()
    assert v.failures == [], "\n".join(map(str, v.failures))
    assert v.actions.get("BecomeFollowerAndTruncate") == 1 and v.actions.get("Restart") == 1


def test_trace_validation_catches_a_follower_that_never_truncates(monkeypatch):
    monkeypatch.setattr(Partition, "truncation_target", lambda self, epoch, end: (self.log.log_end_offset, True))
    failures = rejoin_with_a_divergent_tail().failures
    assert any("before" in f.reason and "truncat" in f.reason for f in failures), failures[:3]


def test_the_kip966_implementation_conforms_to_the_kip966_model():
    """eligible.leader.replicas.enable=true judged by the kip966 variant: every broker step
    (strict min ISR on the HW included) and the controller's (ELR apart from the ISR and
    empty at min.insync.replicas; leaders from the ISR, else the ELR). The runs elect from
    the ELR. (Power loss stays out, as for every variant: the validator reads a power-cut
    log as a truncation.)"""
    seen: dict[str, int] = {}
    for seed in range(6):
        v = validated(seed, "kip966")
        assert v.failures == [], "\n".join(map(str, v.failures[:5]))
        for action, n in v.actions.items():
            seen[action] = seen.get(action, 0) + n
    assert seen.get("ControllerElectFromElr", 0) > 0 and seen.get("ControllerElectLeader", 0) > 0, seen


def test_trace_validation_catches_a_hw_moving_below_min_isr_kip966(monkeypatch):
    """Mutation: the leader's HW ignores KIP-966's strict min ISR."""
    from kafkaproof.impl.broker.partition import Partition

    monkeypatch.setattr(Partition, "strict_min_isr", property(lambda self: False, lambda self, v: None), raising=False)
    failures = [f for seed in range(6) for f in validated(seed, "kip966").failures]
    assert any("strict min ISR" in f.reason for f in failures)


def test_the_last_known_leader_election_conforms_to_the_kip966_model(monkeypatch):
    """The scenario where KIP-966 elects the last known leader (the last ISR member crashed
    and came back, out of the ELR), judged step by step by the kip966 variant."""
    import test_scenarios  # tests/: the scenario, run here with a validator attached

    validators, make = [], test_scenarios.cluster

    def validated_cluster(**props):
        c = make(**props)
        validators.append(TraceValidator(c, test_scenarios.TP, "kip966"))
        return c

    monkeypatch.setattr(test_scenarios, "cluster", validated_cluster)
    test_scenarios.test_the_last_known_leader_keeps_kafkas_defaults_available_kip966()
    v, = validators
    assert v.failures == [], "\n".join(map(str, v.failures[:5]))
    assert v.actions.get("ControllerElectLastKnownLeader") == 1, v.actions
