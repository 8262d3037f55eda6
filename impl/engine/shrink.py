"""The one shrinker: a violating run made small in domain terms, always re-checking that
the guarantee is still violated. hunt, the catalogue and the cluster campaign use it (the
campaign's Hypothesis draws are not shrunk by Hypothesis: they are (setup, seed) runs
like any other).

  1. shortest simulated time: a shorter run with the same seed is a prefix of the longer
     one (then healed), so a violation that happened early survives;
  2. fewest faults: each drawn fault is tried without injection (the random numbers are
     still drawn, so everything else stays as it was), each step of a fixed schedule
     without that step;
  3. fewest client operations: the total number of sends is capped, halving while the
     violation persists.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from kafkaproof.impl.engine.run import RunResult, run_one
from kafkaproof.impl.engine.setup import Setup, fault_draws
from kafkaproof.impl.sim.faults import most_down


@dataclass
class Size:
    seconds: int
    faults: int
    sends: int

    def __str__(self) -> str:
        return f"{self.seconds} simulated s, {self.faults} faults, {self.sends} sends"


def size_of(setup: Setup, result: RunResult) -> Size:
    ops = result.history.ops if result.history is not None else []
    faults = sum(1 for op in ops if op.process == "nemesis" and op.f not in ("heal", "restart"))
    sends = sum(1 for op in ops if op.f in ("send", "txn-send") and op.type == "invoke")
    return Size(setup.seconds, faults, sends)


def shrink(setup: Setup, result: RunResult, guarantee: str, budget_s: float = 30.0) -> tuple[Setup, RunResult, int]:
    """The smallest setup found within `budget_s` whose run with `result`'s seed still
    violates `guarantee`: (setup, its result with history, runs spent)."""
    deadline = time.perf_counter() + budget_s
    seed, runs = result.seed, 0
    best = [setup, result if result.history is not None else run_one(setup, seed, keep_history=True)]

    def attempt(candidate: Setup) -> bool:
        nonlocal runs
        if time.perf_counter() > deadline:
            return False
        runs += 1
        r = run_one(candidate, seed, keep_history=True)
        if r.violations.get(guarantee):
            best[:] = [candidate, r]
            return True
        return False

    for seconds in range(5, best[0].seconds, 5):  # 1. the shortest run that still shows it
        if attempt(replace(best[0], seconds=seconds)):
            break
    for i in reversed(range(fault_draws(best[0]))):  # 2. each fault: is it needed?
        if i not in best[0].skip_faults and not best[0].schedule:
            attempt(replace(best[0], skip_faults=tuple(sorted(best[0].skip_faults + (i,)))))
    allowed = most_down(best[0].schedule)  # (leaving out a restart must not take more down at once)
    for i in reversed(range(len(best[0].schedule))):  # ... each step of a fixed schedule
        fewer = best[0].schedule[:i] + best[0].schedule[i + 1:]
        if most_down(fewer) <= allowed:
            attempt(replace(best[0], schedule=fewer))
    sends = size_of(*best).sends  # 3. fewer client operations
    while sends > 1 and attempt(replace(best[0], max_sends=sends // 2)):
        sends //= 2
    return best[0], best[1], runs
