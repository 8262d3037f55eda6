"""Hypothesis campaigns over transactions (impl/sim/txn_campaign.py): transactional
producers, an exactly-once consume-transform-produce group and a read_committed reader
under coordinator and broker crashes, producer crashes mid-transaction, zombie
instances, member crashes and late markers. With KIP-890 every transaction guarantee
holds; without it, the late markers break them; and two deliberate bugs are caught.
Also: `hunt` finds a pre-KIP-890 anomaly unaided and none with the defence on."""

import pytest
from kafkaproof.impl.coordinator.group import GroupCoordinator
from kafkaproof.impl.engine import build_setup, run_check
from kafkaproof.impl.sim.campaign import RECORDING
from kafkaproof.impl.sim.txn_campaign import FAULTS, MUST_HOLD, run_txn_campaign, txn_machine_for
from kafkaproof.impl.storage.log import Log

from kafkaproof.hunt import hunt

TXN = "transactional.id=app"
LEGACY = "legacy.transactions.without.kip890=true"


def campaign(config, examples):
    return run_txn_campaign(txn_machine_for(config, record_only=True), max_examples=examples, **RECORDING)


def test_with_kip890_every_transaction_guarantee_holds_under_faults():
    stats = campaign("kip890", 40)
    assert stats["examples"] >= 40
    for guarantee in MUST_HOLD:
        assert stats[f"violated:{guarantee}"] == 0, (guarantee, dict(stats))
    for kind in FAULTS + ("producer-crash-mid-transaction",):  # not vacuous
        assert stats[kind] > 0, (kind, dict(stats))
    assert stats["fenced"] > 0 and stats["transactions committed"] > 500 and stats["outputs"] > 500, dict(stats)


def test_without_kip890_late_markers_abort_reads_and_tear_transactions():
    stats = campaign("legacy-kip890", 25)
    assert stats["G1a"] > 0 and stats["torn-transaction"] > 0, dict(stats)


def test_mutation_aborted_index_ignored_is_caught(monkeypatch):
    """Brokers forget which transactions aborted: read_committed returns their records."""
    monkeypatch.setattr(Log, "aborted_transactions", lambda self, start, end: [])
    stats = campaign("kip890", 15)
    assert stats["violated:transactions"] > 0, dict(stats)


def test_mutation_transactional_offsets_count_before_the_commit_is_caught(monkeypatch):
    """The group coordinator applies TxnOffsetCommit at once instead of at the COMMIT
    marker: an aborted transaction's offsets skip input that was never processed."""
    original = GroupCoordinator.txn_commit

    def eager(self, src, req, now, fx):
        original(self, src, req, now, fx)
        g = self.groups.get(req.group_id)
        if g is not None:
            g.offsets.update(dict(req.offsets))

    monkeypatch.setattr(GroupCoordinator, "txn_commit", eager)
    stats = campaign("kip890", 25)
    assert stats["violated:exactly-once-processing"] > 0, dict(stats)


def test_hunt_finds_a_pre_kip890_anomaly_unaided():
    h = hunt(build_setup(sets=[TXN, LEGACY]), "transactions", budget_s=120, shrink=False)  # (shrinking: test_check)
    assert h.found, f"no anomaly in {h.seeds_tried} runs"
    names = {v["name"] for v in h.result.violations["transactions"]}
    assert names & {"G1a", "torn-transaction", "lost-transaction"}


@pytest.mark.parametrize("faults", [None, "late,zombie,crash"])
def test_check_finds_nothing_with_kip890(faults):
    results = run_check(build_setup(sets=[TXN], faults=faults), runs=6, seed=0)
    assert all(not r.violations["transactions"] for r in results)
    assert all(r.faults > 0 for r in results)


def test_exactly_once_application_holds_under_member_crashes():
    results = run_check(build_setup(strategy="transactional", faults="member,crash"), runs=2, seed=0)
    assert all(r.faults > 0 for r in results)  # not vacuous
    for r in results:
        assert not r.violations["exactly-once-processing"] and not r.violations["transactions"], r.violations
