"""The transactions model (model/transactions.py): the explorer finds the pre-KIP-890
late-marker anomaly and proves KIP-890 within bounds; the model and the broker agree on
the marker rule; and trace validation judges every marker and LSO the simulated brokers
produce by the model's rules - and notices when a broker breaks them."""

import pytest
from kafkaproof.impl.broker.partition import Partition
from kafkaproof.impl.broker.producer_state import ProducerEntry, ProducerStateManager
from kafkaproof.impl.protocol.errors import KafkaError
from kafkaproof.impl.sim.cluster import Cluster
from kafkaproof.impl.sim.txn_app import TxnProducerApp
from kafkaproof.impl.sim.txn_trace import TxnTraceValidator
from kafkaproof.impl.sim.workload import Workload, run_workload, settle
from kafkaproof.model.explore import explore
from kafkaproof.model.transactions import TxnBounds, TxnModel, marker_accepted


def test_without_kip890_a_late_marker_commits_an_aborted_transaction():
    r = explore(TxnModel(TxnBounds(kip890=False)))
    assert r.invariant == "NoAbortedRead" and len(r.trace) == 10
    assert [a for a, _ in r.trace][-1].startswith("Deliver(COMMIT")


@pytest.mark.parametrize("transactions,duplicates", [(2, 1), (3, 2)])
def test_kip890_holds_within_bounds(transactions, duplicates):
    r = explore(TxnModel(TxnBounds(kip890=True, transactions=transactions, duplicates=duplicates)))
    assert r.holds and r.complete and r.distinct > 2000


def test_model_and_broker_agree_on_the_marker_rule():
    for kip890 in (False, True):
        for current in range(-1, 3):
            for open_ in (False, True):
                for epoch in range(0, 4):
                    s = ProducerStateManager()
                    if current >= 0:
                        s.producers[7] = ProducerEntry(current, txn_first_offset=0 if open_ else None)
                    try:
                        s.check_marker(7, epoch, 0, bumped=kip890)
                        accepted = True
                    except KafkaError:
                        accepted = False
                    model = marker_accepted((current, open_ and current >= 0), epoch, kip890) or current < 0
                    assert accepted == model, (kip890, current, open_, epoch)


def validated(legacy: bool, seed: int) -> TxnTraceValidator:
    c = Cluster(seed=seed, broker_props={"transaction.state.log.num.partitions": "3",
                                         "legacy.transactions.without.kip890": str(legacy).lower()})
    v = TxnTraceValidator(c, kip890=not legacy).attach()
    c.create_topic("events", 2, 3)
    for i in range(2):
        TxnProducerApp(c, str(i), {"transactional.id": "t"}, "events")
    run_workload(c, Workload(producers=0, consumers=1, faults=("crash", "late", "partition", "pause")), 30_000)
    settle(c)
    return v


@pytest.mark.parametrize("legacy", [False, True])
def test_every_marker_and_lso_is_a_model_step(legacy):
    for seed in range(3):
        v = validated(legacy, seed)
        assert v.markers_checked > 200 and v.failures == [], v.failures[:3]


def test_mutation_lenient_markers_with_kip890_on_are_caught(monkeypatch):
    original = ProducerStateManager.check_marker
    monkeypatch.setattr(ProducerStateManager, "check_marker",
                        lambda self, pid, epoch, ce, bumped: original(self, pid, epoch, ce, False))
    assert any(validated(False, seed).failures for seed in range(4))


def test_mutation_lso_equal_to_hw_is_caught(monkeypatch):
    monkeypatch.setattr(Partition, "lso", property(lambda self: self.hw))
    assert validated(False, 0).failures
