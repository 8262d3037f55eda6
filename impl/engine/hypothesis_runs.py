"""Hypothesis as the third producer of schedules for the engine's run (besides the seeded
random workload and fixed schedules): it draws a seed and a fixed schedule - faults of
the vocabulary aimed at partition 0's replicas, and verify's breaking schedules when
given - and `run_one` judges the run like any other. Shrinking is Hypothesis's, over
the schedule; a failing example is a plain (setup, seed) that check, hunt and replay run
to the same history.
"""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import replace

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from kafkaproof.impl.engine.executors import iter_runs
from kafkaproof.impl.engine.setup import Setup, identity, steered, steering_turn, transactional
from kafkaproof.impl.sim import faults as fault_kinds


def schedules(setup: Setup, faults: tuple[int, int] = (1, 5)):
    """A fixed schedule within the setup's run: `faults` (how few, how many) of the
    setup's kinds (its applications' too) with their parameters drawn from the
    vocabulary's values, each ended 1-20 s later unless it ends itself. One broker is
    down at a time."""
    allowed = fault_kinds.usable(setup.faults, setup.strategy is not None, transactional(setup))
    kinds = [k for k in fault_kinds.FAULTS if k in allowed and k != "blackout"]
    if not kinds:
        return st.just(())
    end_ms = setup.seconds * 1000 - 5000
    rf = setup.replication_factor

    def one(kind: str):
        f = fault_kinds.FAULTS[kind]
        # (-1 aims at the controller, which a crash or a power loss never takes down here)
        target = st.integers(0 if f.takes_down or kind == "cut" else -1, rf - 1) if f.aimed else st.just(-1)
        value = st.sampled_from(f.params[0].choices) if f.params and f.params[0].drawn else st.none()
        return st.tuples(st.integers(1000, end_ms), st.just(kind), target, value, st.integers(1000, 20_000))

    return st.lists(st.sampled_from(kinds).flatmap(one), min_size=faults[0], max_size=faults[1]) \
        .map(_one_down_at_a_time)


def _one_down_at_a_time(faults) -> tuple:
    """The faults as schedule steps, each with its end; a crash or power loss while
    another broker is down is left out (the failure model: one broker down at a time)."""
    steps, down_until = [], 0
    for at, kind, replica, value, last in sorted(faults, key=lambda f: (f[0], f[1])):
        end = fault_kinds.FAULTS[kind].ended_by
        if fault_kinds.FAULTS[kind].takes_down:
            if at < down_until:
                continue
            down_until = at + last
        steps.append((at, kind, replica) + (() if value is None else (value,)))
        if end is not None:
            steps.append((at + last, end, replica if end == "restart" else -1))
    return tuple(sorted(steps, key=lambda s: s[0]))


def draw_examples(setup: Setup, examples: int, templates=(), derandomize: bool | None = None,
                  faults: tuple[int, int] = (1, 5)) -> list[tuple[Setup, int]]:
    """The (setup, seed) of `examples` Hypothesis runs of `setup`, drawn before any runs
    (Hypothesis's generation without shrinking does not depend on what a run finds, so an
    executor may run them anywhere). The even ones (the first included) take `templates`
    in turn, steered by the drawn seed, as check's do (steering_turn); the others a drawn
    schedule of `faults` (how few, how many). `derandomize`: None follows the Hypothesis
    profile (derandomised in CI, random in the nightly one); tables pass True."""
    work: list[tuple[Setup, int]] = []
    fixed = settings().derandomize if derandomize is None else derandomize

    # Derandomised, the draws follow from the setup and templates alone: Hypothesis's own
    # derandomize seeds from a digest of this function's source, so any edit here would
    # redraw every table and campaign.
    @settings(max_examples=examples, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(seed=st.integers(0, 2**32 - 1), schedule=schedules(setup, faults))
    def one(seed, schedule):
        template = steering_turn(list(templates), len(work))
        this = steered(setup, template, seed) if template else replace(setup, schedule=schedule or ((1000, "none", 0),))
        work.append((this, seed))

    if fixed:
        one = hypothesis_seed(zlib.crc32(f"({identity(setup)}, {tuple(templates)!r})".encode()))(one)
    one()
    return work


def run_examples(setup: Setup, examples: int, templates=(), on_run=None, derandomize: bool | None = None,
                 faults: tuple[int, int] = (1, 5), executor=None, stats: bool = False) -> Counter:
    """`examples` Hypothesis runs of `setup` (draw_examples; no shrinking: a fixed budget,
    the engine's shrinker makes a failure small), run on `executor`; counts runs, faults
    and each violated guarantee. `on_run(setup, seed, result)` sees every run, in the
    order drawn; when it raises, the runs after it are not waited for. `stats`: each
    result's RunResult.stats (a report's plots)."""
    work = draw_examples(setup, examples, templates, derandomize, faults)
    stats: Counter = Counter()
    for (this, seed), result in zip(work, iter_runs(work, executor=executor, stats=stats), strict=True):
        stats["runs"] += 1
        stats["faults"] += result.faults
        for _, kind, *_ in this.schedule:
            if kind in fault_kinds.FAULTS:
                stats[f"fault:{kind}"] += 1
        for g in result.violated:
            stats[f"violated:{g}"] += 1
            for name in {v["name"] for v in result.violations[g]}:
                stats[f"anomaly:{name}"] += 1
        for danger, times in result.dangers.items():
            stats[f"danger:{danger}"] += times
        if on_run is not None:
            on_run(this, seed, result)
    return stats
