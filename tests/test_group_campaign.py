"""The consumer-group campaign (impl/engine/campaign.py GROUP_CONFIGS): Hypothesis draws
fault schedules of the vocabulary's kinds - members crashing, leaving, stalling past
max.poll.interval.ms and pausing past their session, brokers (the coordinator among
them) crashing, the topic growing - for the engine's run, judged like any other. Each
commit strategy keeps what verify proves of it and shows what verify breaks; group
membership holds with its danger reached; and a coordinator that does not bump the
generation is caught."""

import hashlib

import pytest
from kafkaproof.impl.coordinator.group import GroupCoordinator
from kafkaproof.impl.engine import run_one
from kafkaproof.impl.engine.campaign import GROUP_CONFIGS, campaign
from kafkaproof.properties import GROUP_GUARANTEES

from kafkaproof.claims import PROVED, VIOLATED, claims
from kafkaproof.guided import steering

EXAMPLES = 8


def said(config):
    return claims(GROUP_CONFIGS[config].setup(), tuple(GROUP_GUARANTEES))


@pytest.mark.parametrize("config", list(GROUP_CONFIGS))
def test_each_commit_strategy_keeps_what_verify_proves_and_shows_what_it_breaks(config):
    row, claimed = GROUP_CONFIGS[config], said(config)
    proved = tuple(g for g, c in claimed.items() if c.status == PROVED)
    # Membership has no model: no two members own a partition, and commits never go back,
    # whatever the strategy (the campaign fails on the first run that breaks them).
    stats = campaign(config, row, EXAMPLES, proved + ("group-exclusivity", "committed-offsets"),
                     templates=steering(row.setup(), claimed))
    assert stats["runs"] == EXAMPLES
    for kind in row.faults:  # not vacuous: every kind of the row's failure model happened
        assert stats[f"fault:{kind}"] > 0, (kind, dict(stats))
    assert stats["danger:member-fenced"] > 0, dict(stats)  # a zombie member met its fence
    for g, c in claimed.items():
        if c.status == VIOLATED:
            assert stats[f"violated:{g}"] > 0, (g, c.why, dict(stats))


def test_a_coordinator_that_does_not_bump_the_generation_is_caught(monkeypatch):
    original = GroupCoordinator._maybe_complete_join

    def same_generation(self, g, now, fx, expired=False):
        if g.generation >= 1:  # completing the join will not move it past 1
            g.generation -= 1
        original(self, g, now, fx, expired)
        g.generation = max(g.generation, 1)

    monkeypatch.setattr(GroupCoordinator, "_maybe_complete_join", same_generation)
    stats = campaign("commit-after", GROUP_CONFIGS["commit-after"], EXAMPLES)
    assert stats["violated:group-exclusivity"] > 0, dict(stats)


def test_same_seed_same_group_run_with_the_topic_growing():
    setup = GROUP_CONFIGS["commit-after+growth"].setup()

    def one() -> str:
        result = run_one(setup, 7, keep_history=True)
        assert any(op.f == "add-partitions" for op in result.history.faults()), "the topic never grew"
        return hashlib.sha256(result.history.to_jsonl().encode()).hexdigest()

    assert one() == one()
