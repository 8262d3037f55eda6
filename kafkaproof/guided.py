"""Runs steered toward the dangers verify names for a configuration. Random faults rarely
shrink an ISR with Kafka's 30 s replica.lag.time.max.ms and then fail its leader in the
same run; verify's breaking schedules do exactly that. `plan` interleaves plain random
runs with runs of those schedules (their timing drawn per seed: impl/engine/steered), so
every run stays a plain (setup, seed) that `replay` re-executes, and check, hunt and the
agreement table reach what the model says can happen - or show, run after run, that the
implementation does not do it.
"""

from __future__ import annotations

from kafkaproof.claims import Claim
from kafkaproof.impl.engine import Setup, steered
from kafkaproof.impl.sim.faults import covered

# A fixed schedule's steps that are not fault kinds of their own.
CONTROL = ("restart", "heal", "none")


def templates(claimed: dict[str, Claim], kinds: tuple[str, ...]) -> list[tuple]:
    """verify's distinct breaking schedules among `claimed`, in guarantee order - those
    whose faults the run's failure model (`kinds`) allows (a `cut` of one replica's
    replication links is a special case of a partition: impl/sim/faults.covered)."""
    allowed = covered(kinds) | set(CONTROL)
    out = []
    for c in claimed.values():
        if c.schedule and c.schedule not in out and all(step[1] in allowed for step in c.schedule):
            out.append(c.schedule)
    return out


def nth(setup: Setup, steer: list, first_seed: int, i: int) -> tuple[Setup, int]:
    """The i-th run from `first_seed`: odd ones steered by the schedules in turn."""
    seed = first_seed + i
    return (steered(setup, steer[(i // 2) % len(steer)], seed) if steer and i % 2 else setup), seed


def plan(setup: Setup, runs: int, seed: int, claimed: dict[str, Claim] | None) -> list[tuple[Setup, int]]:
    """Runs seed, seed+1, ... (none steered when the setup has its own schedule, or
    verify has no breaking schedule for it)."""
    steer = [] if setup.schedule or not claimed else templates(claimed, setup.faults)
    return [nth(setup, steer, seed, i) for i in range(runs)]

