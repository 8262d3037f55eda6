"""Hypothesis campaigns over consumer groups (impl/sim/group_campaign.py): members
join, leave, crash and stall past max.poll.interval.ms; the coordinator and other
brokers crash; topics matching the subscription appear; partitions are added. Each
commit strategy keeps the guarantees it promises in every run, the faults really
happened, and a coordinator that does not bump the generation is caught."""

import hashlib

import pytest
from kafkaproof.impl.coordinator.group import GroupCoordinator
from kafkaproof.impl.sim import group_campaign
from kafkaproof.impl.sim.campaign import RECORDING
from kafkaproof.impl.sim.group_campaign import GROUP_CONFIGS, group_machine_for, run_group_campaign

EXAMPLES = 40
KINDS = ("member-crash", "member-stall", "member-close", "coordinator-crash", "broker-crash", "member-join",
         "new-topic", "partitions-added")


def campaign(config, record_only=True, examples=EXAMPLES):
    return run_group_campaign(group_machine_for(config, record_only=record_only), max_examples=examples,
                              **RECORDING)


@pytest.mark.parametrize("config", list(GROUP_CONFIGS))
def test_each_commit_strategy_keeps_what_it_promises_under_faults(config):
    stats = campaign(config)
    _, _, must_hold, _ = GROUP_CONFIGS[config]
    assert stats["examples"] >= EXAMPLES
    for guarantee in must_hold:
        assert stats[f"violated:{guarantee}"] == 0, (guarantee, dict(stats))
    for kind in KINDS:  # not vacuous: every kind of fault and trigger happened
        assert stats[kind] > 0, (kind, dict(stats))


def test_a_coordinator_that_does_not_bump_the_generation_is_caught(monkeypatch):
    original = GroupCoordinator._maybe_complete_join

    def same_generation(self, g, now, fx, expired=False):
        if g.generation >= 1:  # completing the join will not move it past 1
            g.generation -= 1
        original(self, g, now, fx, expired)
        g.generation = max(g.generation, 1)

    monkeypatch.setattr(GroupCoordinator, "_maybe_complete_join", same_generation)
    stats = campaign("commit-after", examples=20)
    assert stats["violated:group-exclusivity"] > 0


def test_same_seed_same_group_run(monkeypatch):
    monkeypatch.setattr(group_campaign, "event", lambda *a, **k: None)

    def one() -> str:
        m = group_campaign.GroupMachine()
        m.setup(seed=7)
        m.crash_coordinator()
        m.new_matching_topic()
        m.advance(3000)
        m.c.run_for(20_000)
        return hashlib.sha256(m.c.history.to_jsonl().encode()).hexdigest()

    assert one() == one()
