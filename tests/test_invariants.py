"""The leader invariants every simulated run checks after each broker step
(impl/sim/invariants.py), fed by the partitions a step changed (Partition.watch): a
leader's HW never goes back within its epoch, one leader per epoch. They must fire on a
broker that breaks them - through the change notifications, not a scan of every partition."""

from __future__ import annotations

from dataclasses import replace

import pytest
from kafkaproof.impl.engine import build_setup, run_one


def test_a_second_leader_in_one_epoch_stops_the_run(monkeypatch):
    """Mutation: the controller elects a new leader without bumping the leader epoch
    (what KIP-101's fencing rests on). The first election after a crash gives the epoch
    a second leader; the run stops there."""
    from kafkaproof.impl.controller.controller import Controller

    elect = Controller._election

    def same_epoch(self, st, *args, **kwargs):
        new = elect(self, st, *args, **kwargs)
        return replace(new, leader_epoch=st.leader_epoch)

    monkeypatch.setattr(Controller, "_election", same_epoch)
    setup = build_setup(faults="crash", seconds=30)
    with pytest.raises(AssertionError, match="two leaders"):
        for seed in range(4):
            run_one(setup, seed)


def test_watchers_get_the_partitions_a_step_changed():
    """Each call names one broker's partitions that changed in its step - the leaders and
    the followers of the run's topic and of the internal ones - never another broker's."""
    calls = []
    run_one(build_setup(seconds=5), 0,
            watch=lambda c: c.partition_watchers.append(lambda node, parts: calls.append((node, parts))))
    assert calls and all(parts for _, parts in calls)
    assert all(p.broker_id == int(node.split("-")[1]) for node, parts in calls for p in parts)
    assert {p.is_leader for _, parts in calls for p in parts} == {True, False}
