"""Deliberate bugs, each a small in-process patch. The stateful campaign that calls the
safe configuration correct must fail under every one of them within its budget; a
checker or invariant that cannot tell a broken Kafka from a working one proves nothing."""

from dataclasses import replace

import pytest
from conftest import hw_from_leader_alone  # tests/conftest.py: shared with two other suites
from kafkaproof.impl.broker.broker import Broker
from kafkaproof.impl.broker.partition import Partition
from kafkaproof.impl.broker.producer_state import ProducerStateManager
from kafkaproof.impl.controller.controller import Controller
from kafkaproof.impl.protocol.messages import TopicPartition, broker_node
from kafkaproof.impl.sim.cluster import Cluster


def follower_never_truncates(self, leader_epoch, leader_end):
    """Keep whatever the old leader left us: divergent suffixes survive."""
    return self.log.log_end_offset, True


def no_dedupe(self, header):
    """The broker forgets it already has a retried batch."""
    entry = self.producers.get(header.producer_id)
    if entry is not None and any((b.first_seq, b.last_seq) == (header.base_sequence, header.last_sequence)
                                 for b in entry.batches):
        return None
    return ORIGINAL_CHECK(self, header)


def consumers_read_above_hw(self, p, req):
    """Consumers get everything the leader has, committed or not."""
    if not p.log.log_start_offset <= req.fetch_offset <= p.log.log_end_offset:
        return b""
    return p.log.read(req.fetch_offset, req.max_bytes)


def skip_min_insync_check(self, data, acks, now):
    """acks=all accepted whatever the ISR's size."""
    return ORIGINAL_APPEND(self, data, 1 if acks == -1 else acks, now)


def trust_new_replicas(self, tp, target, fx):
    """A reassignment counts its new replicas in sync at once: it completes before they
    hold anything, and one of them leads."""
    ORIGINAL_REASSIGN(self, tp, target, fx)
    st = self.partitions[tp]
    if st.adding:
        self._complete_reassignment(replace(st, isr=st.isr + st.adding), fx)


def reassignment_scenario() -> None:
    from test_scenarios import (
        test_a_reassignment_under_load_loses_nothing,  # tests/: one scenario, two uses
    )

    test_a_reassignment_under_load_loses_nothing(crash_new_leader=False)


ORIGINAL_CHECK = ProducerStateManager.check
ORIGINAL_APPEND = Partition.append_as_leader
ORIGINAL_REASSIGN = Controller._reassign

def unclean_shutdown_scenario() -> None:
    from test_scenarios import (
        test_a_replica_back_from_an_unclean_shutdown_is_no_longer_eligible_kip966 as scenario,
    )

    scenario("crash")


def safe_campaign() -> None:
    from kafkaproof.impl.engine.campaign import CONFIGS, campaign
    from kafkaproof.properties import CLUSTER_GUARANTEES

    from kafkaproof.claims import claims, must_hold

    proved = must_hold(claims(CONFIGS["safe"].setup(), CLUSTER_GUARANTEES))
    campaign("safe", CONFIGS["safe"], 60, proved)


def min_insync_scenario() -> None:
    """min.insync.replicas is invisible to the safe campaign: it only protects data when a
    broker can lose its disk, and crashes keep disks. Its own scenario shows it: with
    min.insync.replicas=3 and a broker down, acks=all must not be acknowledged."""
    # (3.x's elections: KIP-966's strict min ISR would hold the HW, a second guard hiding the first)
    c = Cluster(seed=1, broker_props={"min.insync.replicas": "3", "eligible.leader.replicas.enable": "false"})
    tp = TopicPartition("t", 0)
    c.create_topic("t", 1, 3)
    p = c.producer("p", {"acks": "all"})
    c.crash(broker_node(next(b for b in c.broker_ids if b != c.leader(tp))))
    c.run_for(12_000)
    p.send("t", None, b"x")
    c.run_for(5_000)
    assert not c.history.completions("send", "ok"), "acks=all acknowledged with the ISR below min.insync.replicas"


# name -> ([(what to patch, attribute, replacement), ...], the suite part that must catch it)
MUTATIONS = {
    "hw-from-leader-alone": ([(Partition, "maybe_advance_hw", hw_from_leader_alone)], safe_campaign),
    "follower-never-truncates": ([(Partition, "truncation_target", follower_never_truncates)], safe_campaign),
    "dedupe-window-off": ([(ProducerStateManager, "check", no_dedupe)], safe_campaign),
    "consumer-reads-above-hw": ([(Broker, "_read_for", consumers_read_above_hw)], safe_campaign),
    "isr-check-skipped-for-acks-all": ([(Partition, "append_as_leader", skip_min_insync_check),
                                        (Partition, "enough_replicas_after_append", lambda self: True)],
                                       min_insync_scenario),
    "reassignment-trusts-new-replicas": ([(Controller, "_reassign", trust_new_replicas)], reassignment_scenario),
    # KIP-966 without KAFKA-15586: a replica back from an unclean shutdown stays eligible.
    "elr-ignores-unclean-shutdown": ([(Controller, "_forget_unclean", lambda self, b: None)],
                                     unclean_shutdown_scenario),
}


def test_detectors_pass_without_mutations():
    min_insync_scenario()  # (the safe campaign itself runs in test_cluster_stateful.py)
    reassignment_scenario()
    unclean_shutdown_scenario()


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_the_suite_catches_the_mutation(name, monkeypatch):
    patches, detector = MUTATIONS[name]
    for target, attribute, replacement in patches:
        monkeypatch.setattr(target, attribute, replacement)
    with pytest.raises(AssertionError):
        detector()
