"""The transactions campaign (impl/engine/campaign.py TXN_CONFIGS): transactional
producer applications and an exactly-once consume-transform-produce group, with a
read_committed reader, under broker crashes (coordinators among them), producer crashes
mid-transaction, zombie instances, member crashes and late duplicate markers - Hypothesis
schedules for the engine's run. With KIP-890 every transaction guarantee holds; without
it, the late markers break them; and two deliberate bugs are caught.
Also: `hunt` finds a pre-KIP-890 anomaly unaided and none with the defence on."""

import pytest
from kafkaproof.impl.coordinator.group import GroupCoordinator
from kafkaproof.impl.engine import build_setup, judged, run_check
from kafkaproof.impl.engine.campaign import TXN_CONFIGS, campaign
from kafkaproof.impl.storage.log import Log

from kafkaproof.claims import claims
from kafkaproof.guided import steering
from kafkaproof.hunt import hunt

TXN = "transactional.id=app"
LEGACY = "legacy.transactions.without.kip890=true"
# verify proves none of these (its transactions explorer can only break them, and no
# model reads an application's processing): the implementation's own promise with KIP-890.
KIP890_KEEPS = ("transactions", "exactly-once-processing", "exactly-once")


def run(config, examples, must_hold=(), steer=False):
    """`steer`: some runs take verify's breaking schedules and the danger schedules, as
    check's do."""
    row = TXN_CONFIGS[config]
    setup = row.setup()
    return campaign(config, row, examples, must_hold,
                    templates=steering(setup, claims(setup, judged(setup))) if steer else ())


def test_with_kip890_every_transaction_guarantee_holds_under_faults():
    stats = run("kip890", 10, KIP890_KEEPS)
    assert stats["runs"] == 10
    for kind in TXN_CONFIGS["kip890"].faults:  # not vacuous
        assert stats[f"fault:{kind}"] > 0, (kind, dict(stats))
    for danger in ("zombie-fenced", "producer-crashed-mid-transaction", "txn-marker-late"):
        assert stats[f"danger:{danger}"] > 0, (danger, dict(stats))


def test_without_kip890_late_markers_abort_reads_and_tear_transactions():
    stats = run("legacy-kip890", 5, steer=True)  # (3 runs of 5 show each)
    assert stats["anomaly:G1a"] > 0 and stats["anomaly:torn-transaction"] > 0, dict(stats)


def test_mutation_aborted_index_ignored_is_caught(monkeypatch):
    """Brokers forget which transactions aborted: read_committed returns their records."""
    monkeypatch.setattr(Log, "aborted_transactions", lambda self, start, end: [])
    stats = run("kip890", 6)
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
    stats = run("kip890", 8)
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
