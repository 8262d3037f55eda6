"""`kafkaproof hunt`: search for a violation of one guarantee, then shrink it.

Search: seeds in turn, each a full random-fault run (impl/engine/run.py) - every other
one steered by verify's breaking schedules when the caller passes them - until one
violates the guarantee or the budget is spent. Runs are cheap (well under a second)
and each seed is a fresh swarm of faults, so plain seed search finds the common
anomalies within seconds. Shrinking is the engine's one shrinker (impl/engine/shrink.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from kafkaproof.impl.engine import RunResult, Setup, run_one
from kafkaproof.impl.engine.executors import iter_runs
from kafkaproof.impl.engine.shrink import Size, size_of
from kafkaproof.impl.engine.shrink import shrink as shrink_run


@dataclass
class Hunt:
    found: bool
    seeds_tried: int
    seconds_spent: float
    setup: Setup | None = None
    result: RunResult | None = None
    first_size: Size | None = None
    shrunk_size: Size | None = None
    shrink_runs: int = 0
    found_after_s: float = 0.0  # wall seconds to the first violating run (before shrinking)
    reached: dict[str, int] = field(default_factory=dict)  # danger events of the guarantee the runs reached


def hunt(setup: Setup, guarantee: str, budget_s: float, seed: int = 0, shrink: bool = True,
         steer: list = (), executor=None, width: int = 8) -> Hunt:
    """`steer`: verify's breaking schedules (kafkaproof/guided.py); every other seed, the
    first included, then runs one of them, its timing drawn from the seed. With an
    `executor`, seeds go out `width` at a time and the first violating one in seed order
    wins, so what is found does not depend on the workers (only how far the budget goes)."""
    from kafkaproof.guided import nth
    from kafkaproof.impl.sim.dangers import relevant

    start = time.perf_counter()
    s = seed
    reached = dict.fromkeys(relevant(guarantee), 0)
    while time.perf_counter() - start < budget_s:
        work = [nth(setup, list(steer), seed, i - seed) for i in range(s, s + (width if executor else 1))]
        # (in seed order; returning at a violation cancels the seeds after it still running)
        for (this, _), result in zip(work, iter_runs(work, executor=executor, keep_history=executor is None),
                                     strict=True):
            for d in reached:
                reached[d] += result.dangers.get(d, 0)
            if result.violations.get(guarantee):
                if result.history is None:  # (a pure function of the run: again, here, with its history)
                    result = run_one(this, result.seed, keep_history=True)
                out = Hunt(True, s - seed + 1, 0.0, this, result, first_size=size_of(this, result),
                           found_after_s=time.perf_counter() - start)
                if shrink:  # (shrinking may outlive a tiny search budget)
                    left = max(budget_s - (time.perf_counter() - start), 30.0)
                    out.setup, out.result, out.shrink_runs = shrink_run(this, result, guarantee, left)
                out.shrunk_size = size_of(out.setup, out.result)
                out.seconds_spent = time.perf_counter() - start
                return out
            s += 1
    return Hunt(False, s - seed, time.perf_counter() - start, reached=reached)


def steering(setup: Setup, guarantee: str) -> list:
    """verify's breaking schedules for `guarantee` under the setup's failure model, for
    `hunt(steer=...)` (none when the setup has a schedule of its own)."""
    from kafkaproof.claims import claims
    from kafkaproof.guided import templates

    return [] if setup.schedule else templates(claims(setup, [guarantee]), setup.faults)
