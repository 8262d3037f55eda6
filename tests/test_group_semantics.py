"""The delivery semantics of each commit strategy, shown deterministically (the seed
notes' table): a group member crashes at the worst moment for its strategy, a second
member takes over, and the group checkers name what the application saw.

    commit after processing   at-least-once: redelivered, never unseen
    commit before processing  at-most-once: unseen, never redelivered
    auto commit               redelivered after a crash
    auto commit + async work  unseen: the commit covered records not yet processed
"""

import pytest
from kafkaproof.impl.sim.consumer_app import crash_at_worst_moment


def run(strategy, seed=1):
    c, found = crash_at_worst_moment(strategy, seed)
    assert any(op.f == "process" for op in c.history.ops if op.process == "consumer-first")
    return {v.name for v in found}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_commit_after_processing_is_at_least_once(seed):
    assert run("after", seed) == {"redelivered"}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_commit_before_processing_is_at_most_once(seed):
    assert run("before", seed) == {"unseen"}


def test_auto_commit_redelivers_after_a_crash():
    assert run("auto") == {"redelivered"}


def test_auto_commit_with_asynchronous_processing_loses_records():
    assert "unseen" in run("auto-async")
