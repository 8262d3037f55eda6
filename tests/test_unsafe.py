"""Every unsafe choice found with defaults (issue 16): check, verify and hunt on each
choice of the eight practices set alone on Kafka 3's defaults - a CI slice of
`kafkaproof guarantees --unsafe` (the README's table)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from kafkaproof import unsafe
from kafkaproof.executors import opened
from kafkaproof.unsafe import CHOICES, CRASHES, DEFAULT, found_by_all, judge_under

BY_NAME = {c.name: c for c in CHOICES}


def test_the_failure_model_is_derived_not_tuned():
    """A replication choice is judged under crashes alone because verify proves the
    configuration without it there and not under power loss without fsync (where every
    replication setting loses writes); a consumer's commit strategy under the default."""
    assert judge_under(BY_NAME["acks=1"]) == (CRASHES, "PROVED")
    assert judge_under(BY_NAME["legacy.truncate.to.high.watermark=true"]) == (CRASHES, "PROVED")
    assert judge_under(BY_NAME["--commit-strategy before"]) == (DEFAULT, "PROVED")
    # No failure model separates it: both break alike under power loss without fsync, and
    # neither under crashes - said, not hidden.
    assert judge_under(BY_NAME["default.replication.factor=1"]) == (DEFAULT, "VIOLATED")


# (runs: enough for every template of verify's to steer one run - availability's is last)
@pytest.mark.parametrize("name,runs", [("acks=1", 4), ("min.insync.replicas=3", 8),
                                       ("legacy.transactions.without.kip890=true", 4), ("retries=0", 4),
                                       ("--commit-strategy before", 6)])
def test_check_verify_and_hunt_each_find_it(name, runs):
    row = unsafe.row(BY_NAME[name], runs=runs, hunt_budget=60)
    assert found_by_all(row), (row.check, row.verify, row.hunt)


def test_the_table_quotes_what_check_says():
    """Two commands, one answer: the row's check column is `kafkaproof check`'s verdict on
    the same setup, seeds and runs."""
    choice = BY_NAME["acks=1"]
    row = unsafe.row(choice, runs=4, hunt_budget=5)
    faults = ",".join(unsafe.failure_models(choice)[row.model])
    out = subprocess.run([sys.executable, "-m", "kafkaproof", "check", "--set", "acks=1", "--faults", faults,
                          "--runs", "4", "--json", "--no-save"], capture_output=True, text=True)
    said = json.loads(out.stdout)["guarantees"]["durability"]
    assert f"{said['verdict']} {said['evidence']}" == row.check


NIGHTLY = __import__("os").environ.get("HYPOTHESIS_PROFILE") == "nightly"


def test_the_eight_practices_hold_with_evidence():
    """The seed's eight practices, as check runs them (2,000 seeds nightly, a slice here):
    no run breaks what verify proves, each proved guarantee's "held" names the dangers its
    runs reached, and the dangers the practices defend against were reached - ISR
    shrinks, produces retried after lost answers, member crashes mid-commit, zombie members
    fenced. Never reached,
    by design: an out-of-sync election (unclean.leader.election.enable=false) and a new
    leader missing an acknowledged write (that would be the loss itself). With KIP-966 on
    (Kafka 4.1's default) they are judged under power losses without fsync too."""
    with opened(jobs=2 if NIGHTLY else 1) as executor:
        model, rows, totals, _ = unsafe.safe_campaign(2000 if NIGHTLY else 14, executor=executor)
    print(model, totals)
    assert model == DEFAULT
    proved = [g for g, row in rows.items() if (row["expected"] or {}).get("status") == "PROVED"]
    assert {"durability", "exactly-once", "partition-order", "consumer-no-loss"} <= set(proved)
    for g in proved:
        assert rows[g]["violated"] == 0, (g, rows[g]["anomalies"])
        assert rows[g]["verdict"] == "HELD" and "reached none" not in rows[g]["evidence"], rows[g]
    # (a group member paused past its session: the only danger of group-exclusivity and the
    # only evidence for it, which verify does not judge; 14 runs steer one run there)
    assert rows["group-exclusivity"]["verdict"] == "HELD", rows["group-exclusivity"]
    must = {"produce-retried-after-lost-answer", "produce-attempt-failed", "member-crashed-mid-commit",
            "member-fenced", "power-lost-unflushed"}
    if NIGHTLY:
        must |= {"isr-shrank-to-leader", "request-overtaken"}
    assert all(totals.get(d) for d in must), totals
    assert not totals.get("out-of-sync-elected") and not totals.get("new-leader-missing-acked"), totals


def test_a_rebalance_still_waiting_for_a_dead_member_is_not_a_loss():
    """Seed 12 of the eight practices' campaign: a member crashes at 9 s and a coordinator
    fails over, so the rebalance waits out the dead member's session until ~82 s. A run that
    stopped 30 s after settling called the records not yet processed "unseen" - a loss
    verify proves impossible for commit-after. The run now ends when the group's commits
    reach the log end (mutation: a fixed 30 s catch-up in impl/engine/run._catch_up)."""
    from kafkaproof.impl.engine import run_one

    result = run_one(unsafe.setup_of(unsafe.PRACTICES_CHOICE, CRASHES), 12)
    assert result.dangers.get("member-crashed-mid-commit", 0) + result.faults > 0
    assert result.violations["consumer-no-loss"] == [], result.violations["consumer-no-loss"][:2]


def test_the_safe_command_prints_the_failure_model_and_the_danger_counts():
    out = subprocess.run([sys.executable, "-m", "kafkaproof", "guarantees", "--safe", "--runs", "2"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "failures: crashes" in out.stdout and "durability" in out.stdout
    counts = out.stdout.split("danger events over all runs: ")[1]
    assert "produce-retried-after-lost-answer" in counts, counts


def test_eligible_leader_replicas_keep_writes_through_power_losses_kip966():
    """KIP-966 on, min.insync.replicas=2, power losses among the faults (2,000 seeds
    nightly, a slice here): no run loses an acknowledged write, and the runs reached the
    danger ELR defends against - the last ISR member losing power. The same runs with
    ELR off lose writes: the campaign reaches what it claims to survive."""
    from kafkaproof.impl.engine import build_setup, run_many

    from kafkaproof.guided import check_runs

    sets = ["default.replication.factor=3", "min.insync.replicas=2"]
    setup = build_setup(sets=[*sets, "eligible.leader.replicas.enable=true"], faults="crash,partition,drop,power")
    with opened(jobs=2 if NIGHTLY else 1) as executor:
        rows, _, work, results = check_runs(setup, 2000 if NIGHTLY else 8, executor=executor)
    assert rows["durability"]["violated"] == 0, rows["durability"]["anomalies"]
    assert rows["durability"]["expected"]["status"] == "PROVED"  # verify agrees: KIP-966 modelled
    assert rows["durability"]["verdict"] == "HELD"
    reached = [(s, seed) for (s, seed), r in zip(work, results, strict=True) if r.dangers.get("last-isr-member-power-lost")]
    print(f"last-isr-member-power-lost reached in {len(reached)} of {len(work)} runs")
    assert reached
    # An election from the ELR is clean: unclean election is off, so none is out of sync.
    assert not any(r.dangers.get("out-of-sync-elected") for r in results)
    off = run_many([(s.changed("broker", "eligible.leader.replicas.enable", "false"), seed) for s, seed in reached])
    assert any(r.violations["durability"] for r in off)
