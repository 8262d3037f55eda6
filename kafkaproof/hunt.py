"""`kafkaproof hunt`: search for a violation of one guarantee, then shrink it.

Search: seeds in turn, each a full random-fault run (impl/engine/run.py) - every other
one steered by verify's breaking schedules when the caller passes them - until one
violates the guarantee or the budget is spent. Runs are cheap (well under a second)
and each seed is a fresh swarm of faults, so plain seed search finds the common
anomalies within seconds; Hypothesis would add little, because the run is not a choice
sequence it can shrink in domain terms.

Shrink, in domain terms and always re-checking that the guarantee is still violated:
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

from kafkaproof.impl.engine import RunResult, Setup, fault_draws, run_one, steered


@dataclass
class Size:
    seconds: int
    faults: int
    sends: int

    def __str__(self) -> str:
        return f"{self.seconds} simulated s, {self.faults} faults, {self.sends} sends"


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


def size_of(setup: Setup, result: RunResult) -> Size:
    ops = result.history.ops if result.history is not None else []
    faults = sum(1 for op in ops if op.process == "nemesis" and op.f not in ("heal", "restart"))
    sends = sum(1 for op in ops if op.f in ("send", "txn-send") and op.type == "invoke")
    return Size(setup.seconds, faults, sends)


def hunt(setup: Setup, guarantee: str, budget_s: float, seed: int = 0, shrink: bool = True,
         steer: list = ()) -> Hunt:
    """`steer`: verify's breaking schedules (kafkaproof/guided.py); every other seed then
    runs one of them, its timing drawn from the seed."""
    start = time.perf_counter()
    s = seed
    while time.perf_counter() - start < budget_s:
        i = s - seed
        this = steered(setup, steer[(i // 2) % len(steer)], s) if steer and i % 2 else setup
        result = run_one(this, s, keep_history=True)
        if result.violations.get(guarantee):
            out = Hunt(True, s - seed + 1, 0.0, this, result, first_size=size_of(this, result))
            if shrink:
                _shrink(out, guarantee, budget_s - (time.perf_counter() - start))
            out.shrunk_size = size_of(out.setup, out.result)
            out.seconds_spent = time.perf_counter() - start
            return out
        s += 1
    return Hunt(False, s - seed, time.perf_counter() - start)


def _shrink(h: Hunt, guarantee: str, budget_s: float) -> None:
    deadline = time.perf_counter() + max(budget_s, 30.0)  # shrinking may outlive a tiny search budget
    seed = h.result.seed

    def attempt(candidate: Setup) -> bool:
        if time.perf_counter() > deadline:
            return False
        h.shrink_runs += 1
        r = run_one(candidate, seed, keep_history=True)
        if r.violations.get(guarantee):
            h.setup, h.result = candidate, r
            return True
        return False

    for seconds in range(5, h.setup.seconds, 5):  # 1. the shortest run that still shows it
        if attempt(replace(h.setup, seconds=seconds)):
            break
    for i in reversed(range(fault_draws(h.setup))):  # 2. each fault: is it needed?
        if i not in h.setup.skip_faults and not h.setup.schedule:
            attempt(replace(h.setup, skip_faults=tuple(sorted(h.setup.skip_faults + (i,)))))
    for i in reversed(range(len(h.setup.schedule))):  # ... each step of a fixed schedule
        attempt(replace(h.setup, schedule=h.setup.schedule[:i] + h.setup.schedule[i + 1:]))
    sends = size_of(h.setup, h.result).sends  # 3. fewer client operations
    while sends > 1 and attempt(replace(h.setup, max_sends=sends // 2)):
        sends //= 2
