"""Danger events (impl/sim/dangers.py): each one is reached by some run, counting them
changes nothing, and a "held" without them is NOT SHOWN (issue 16)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from kafkaproof.impl.engine import build_setup, run_one
from kafkaproof.impl.sim.dangers import DANGERS, relevant
from kafkaproof.impl.sim.faults import FailureModel

from kafkaproof.claims import BROKEN, HELD, NOT_SHOWN, Claim, claims, verdict
from kafkaproof.guided import plan


def _steered_unclean():
    setup = build_setup(sets=["unclean.leader.election.enable=true"], faults="crash,partition,drop")
    return [s for s, _ in plan(setup, 2, 0, claims(setup, ["durability"])) if s is not setup][0]


def _stale_follower():
    from kafkaproof.impl.engine.setup import steered
    from kafkaproof.impl.sim.dangers import DANGERS
    setup = build_setup(sets=["legacy.no.fetch.epoch.fencing=true"], faults="crash,partition")
    return steered(setup, DANGERS["stale-epoch-served"].schedule(30_000, 9_000), 0)


def _last_member_powered_off():
    from kafkaproof.impl.engine.setup import steered
    from kafkaproof.impl.sim.dangers import DANGERS
    setup = build_setup(sets=["default.replication.factor=3", "min.insync.replicas=2"], faults="power,partition")
    return steered(setup, DANGERS["last-isr-member-power-lost"].schedule(30_000, 9_000), 0)


def _leader_down_long():
    from kafkaproof.impl.engine.setup import steered
    from kafkaproof.impl.sim.dangers import DANGERS
    return steered(build_setup(faults="crash"), DANGERS["produce-attempt-failed"].schedule(30_000, 9_000), 0)


# A setup and seed that reach each danger (a test per danger, so a new one needs its own).
SCENARIOS = {
    "isr-shrank-to-leader": (lambda: build_setup(sets=["legacy.truncate.to.high.watermark=true",
                                                       "replica.lag.time.max.ms=3000"]), 0),
    "follower-truncated-committed": (lambda: build_setup(sets=["legacy.truncate.to.high.watermark=true",
                                                               "replica.lag.time.max.ms=3000"]), 0),
    "out-of-sync-elected": (_steered_unclean, 1),
    "new-leader-missing-acked": (_steered_unclean, 1),
    "power-lost-unflushed": (lambda: build_setup(), 0),
    "last-isr-member-power-lost": (_last_member_powered_off, 0),
    "stale-epoch-served": (_stale_follower, 0),
    "broker-down-judged": (_leader_down_long, 0),
    "produce-retried-after-lost-answer": (lambda: build_setup(), 0),
    "produce-attempt-failed": (lambda: build_setup(), 0),
    "request-overtaken": (lambda: build_setup(), 0),
    "member-crashed-mid-commit": (lambda: build_setup(strategy="auto-async"), 0),
    "rebalance-during-async-processing": (lambda: build_setup(strategy="auto-async"), 0),
    "txn-marker-late": (lambda: build_setup(sets=["transactional.id=t"], faults="late", seconds=15), 0),
    "zombie-fenced": (lambda: build_setup(sets=["transactional.id=t"], faults="crash,zombie", seconds=15), 0),
    "member-fenced": (lambda: build_setup(strategy="after", faults="member-pause", seconds=15), 0),
    "producer-crashed-mid-transaction": (lambda: build_setup(sets=["transactional.id=t"], faults="producer-crash",
                                                             seconds=15), 1),
}


def test_every_danger_has_a_scenario_and_names_real_guarantees():
    from kafkaproof.model.symbolic import GUARANTEES as MODELLED
    from kafkaproof.properties import GUARANTEES

    assert set(SCENARIOS) == set(DANGERS)
    for d in DANGERS.values():
        assert d.guarantees and set(d.guarantees) <= set(GUARANTEES) | set(MODELLED), d.name
    assert "isr-shrank-to-leader" in relevant("durability")


@pytest.mark.parametrize("danger", sorted(SCENARIOS))
def test_a_run_reaches_each_danger(danger):
    make, seed = SCENARIOS[danger]
    r = run_one(make(), seed)
    assert r.dangers.get(danger, 0) > 0, r.dangers


def test_counting_dangers_changes_nothing():
    """The per-step watch only reads: without it the run is the same, byte for byte."""
    setup = build_setup(sets=["legacy.truncate.to.high.watermark=true", "replica.lag.time.max.ms=3000"],
                        seconds=15)
    watched = run_one(setup, 0, keep_history=True)
    blind = run_one(setup, 0, keep_history=True, watch=lambda c: c.partition_watchers.remove(c.dangers))
    assert watched.history.to_jsonl() == blind.history.to_jsonl()
    assert watched.dangers.get("follower-truncated-committed") and not blind.dangers.get("follower-truncated-committed")


def _claim(status: str, dangers=()) -> Claim:
    return Claim("durability", status, "in 7 steps", FailureModel.of(["crash"]), (), tuple(dangers))


def _row(violated=0, **reached) -> dict:
    return {"name": "durability", "runs": 8, "violated": violated, "anomalies": ["lost-write"] if violated else [],
            "reached": {d: reached.get(d.replace("-", "_"), 0) for d in relevant("durability")}}


def test_a_held_comes_with_its_evidence_or_is_not_shown():
    # Broken is broken, whatever verify says.
    assert verdict(_row(violated=2), _claim("PROVED"))[0] == BROKEN
    # verify breaks it through a danger no run reached: NOT SHOWN, naming the danger.
    status, short, hint = verdict(_row(isr_shrank_to_leader=3),
                                  _claim("VIOLATED", ["isr-shrank-to-leader", "out-of-sync-elected"]))
    assert status == NOT_SHOWN and short == "no run reached out-of-sync-elected" and "kafkaproof hunt" in hint
    # verify proves nothing and nothing threatened it: NOT SHOWN.
    assert verdict(_row(), _claim("UNKNOWN"))[0] == NOT_SHOWN
    assert verdict(_row(), None)[0] == NOT_SHOWN
    # A held beside a proof, or with dangers reached, says what the runs reached.
    status, short, _ = verdict(_row(isr_shrank_to_leader=3), None)
    assert status == HELD and short == "held in 8 runs; reached: isr-shrank-to-leader 3x"
    # A proof with runs that met none of its dangers: held on the proof alone, and it says so.
    status, short, _ = verdict(_row(), _claim("PROVED"))
    assert status == HELD and "reached none of its dangers" in short and "verify's proof" in short


def test_check_exits_4_when_its_runs_never_met_the_danger():
    """Issue 16's example: unclean election, crashes only, a short plain run - the ISR
    never shrinks, nothing is lost, and check must not call that "held": verify breaks
    it through dangers no run reached, named in the answer."""
    out = subprocess.run([sys.executable, "-m", "kafkaproof", "check", "--set", "unclean.leader.election.enable=true",
                          "--faults", "crash", "--runs", "1", "--seconds", "10", "--no-save", "--json"],
                         capture_output=True, text=True)
    row = json.loads(out.stdout)["guarantees"]["durability"]
    assert out.returncode == 4 and row["verdict"] == NOT_SHOWN, (out.returncode, row)
    assert row["reached"]["out-of-sync-elected"] == 0 and "out-of-sync-elected" in row["evidence"]
    assert row["expected"]["dangers"] == ["isr-shrank-to-leader", "out-of-sync-elected", "new-leader-missing-acked"]


def test_the_readme_table_is_the_danger_list():
    import re
    from pathlib import Path

    from kafkaproof.impl.sim.dangers import table_markdown
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert re.search(r"<!-- danger-table -->\n(.*?)\n<!-- /danger-table -->", text, re.S).group(1) == table_markdown()
