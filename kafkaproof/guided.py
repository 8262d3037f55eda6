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
from kafkaproof.impl.engine.setup import steering_turn
from kafkaproof.impl.sim.faults import covered, usable

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


def danger_templates(setup: Setup, claimed: dict[str, Claim], kinds: tuple[str, ...]) -> list[tuple]:
    """Schedules that reach the dangers of the guarantees verify does not break here
    (impl/sim/dangers.py), so a "held" comes with the dangers it went through instead of
    whatever random faults happened to reach - for the configurations verify proves most
    of all. Only what the failure model allows, and only dangers the guarantees judged
    here can meet (an ISR to shrink needs followers)."""
    from kafkaproof.impl.broker.config import BrokerConfig
    from kafkaproof.impl.engine.setup import transactional
    from kafkaproof.impl.sim.dangers import DANGERS

    broker = BrokerConfig.from_properties(setup.broker)
    allowed = usable(kinds, setup.strategy is not None, transactional(setup)) | set(CONTROL)
    held = {g for g, c in claimed.items() if c.status != "VIOLATED"}
    out = []
    for d in DANGERS.values():
        if d.schedule is None or not held & set(d.guarantees) or (d.possible and not d.possible(broker)):
            continue
        schedule = d.schedule(broker.replica_lag_time_max_ms, broker.session_timeout_ms)
        replicas = max((step[2] for step in schedule), default=0) + 1
        if replicas <= setup.replication_factor and all(step[1] in allowed for step in schedule) \
                and schedule not in out:
            out.append(schedule)
    return out


def nth(setup: Setup, steer: list, first_seed: int, i: int) -> tuple[Setup, int]:
    """The i-th run from `first_seed`: even ones (the first included: a hunt that verify
    can steer finds in its first run) steered by the schedules in turn."""
    seed, template = first_seed + i, steering_turn(steer, i)
    return (steered(setup, template, seed) if template else setup), seed


def plan(setup: Setup, runs: int, seed: int, claimed: dict[str, Claim] | None) -> list[tuple[Setup, int]]:
    """Runs seed, seed+1, ... (none steered when the setup has its own schedule or was
    not judged by verify): even ones steered by verify's breaking schedules and by
    schedules that reach the dangers of what verify does not break, in turn."""
    steer = [] if setup.schedule or not claimed else steering(setup, claimed)
    return [nth(setup, steer, seed, i) for i in range(runs)]


def steering(setup: Setup, claimed: dict[str, Claim]) -> list[tuple]:
    """The schedules steered runs take, in turn: verify's breaking ones, then those that
    reach the dangers of what it does not break (check, hunt and the campaigns)."""
    return list(dict.fromkeys(templates(claimed, setup.faults) + danger_templates(setup, claimed, setup.faults)))



def check_runs(setup: Setup, runs: int, seed: int = 0, progress=None, verify: bool = True, executor=None,
               stats: bool = False):
    """What `kafkaproof check` runs and concludes - the one place it is done, for the CLI
    and the tables that quote it: verify's claims (availability too: steered runs have a
    fixed schedule, which judges it), the runs (even ones steered), and per guarantee the
    `summarize` row with "expected", "verdict", "evidence" and "hint" added
    (claims.verdict). Returns (rows, claims, [(setup, seed)], results)."""
    from kafkaproof.claims import claims, verdict
    from kafkaproof.impl.engine import judged, run_many, summarize

    expected = claims(setup, judged(setup) + ("availability",)) if verify else {}
    work = plan(setup, runs, seed, expected)
    results = run_many(work, progress, executor, stats=stats)
    rows = summarize(results)
    for guarantee, row in rows.items():
        row["expected"] = expected[guarantee].as_json() if guarantee in expected else None
        row["verdict"], row["evidence"], row["hint"] = verdict({**row, "name": guarantee}, expected.get(guarantee))
    return rows, expected, work, results
