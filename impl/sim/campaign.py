"""What the stateful campaigns of applications share (group_campaign.py,
txn_campaign.py): counting what was injected and found, judging a verdict, running a
machine for a table. (The cluster campaign runs on the engine: impl/engine/campaign.py.)
"""

from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, Phase, event, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    run_state_machine_as_test,
)

STATS: Counter = Counter()  # faults injected and anomalies found, across examples


def judge(config: str, verdict: dict, must_hold: tuple[str, ...], record_only: bool,
          guarantees: tuple[str, ...] | None = None) -> None:
    """Count each violation of `guarantees` (default: all in the verdict) in STATS and as a
    Hypothesis event; unless `record_only`, fail on one of a guarantee in `must_hold`."""
    for guarantee in guarantees or tuple(verdict):
        violations = verdict[guarantee]
        for v in violations:
            STATS[v.name] += 1
            event(f"violation: {v.name}")
        STATS[f"violated:{guarantee}"] += bool(violations)
        if violations and not record_only and guarantee in must_hold:
            raise AssertionError(f"[{config}] {guarantee} violated: " + "; ".join(str(v) for v in violations[:3]))


# Settings for counting violations over a fixed budget rather than stopping at the first:
# the same examples every time, no shrinking, no example database.
RECORDING = {"derandomize": True, "deadline": None, "database": None, "phases": [Phase.generate],
             "suppress_health_check": list(HealthCheck)}


def guarantee_rows(machines: dict[str, type[RuleBasedStateMachine]], guarantees, fault_kinds, examples: int,
                   steps: int = 30) -> dict[str, dict[str, int]]:
    """For each named record-only machine: how many of `examples` runs violated each
    guarantee, how many runs there were, and the faults injected."""
    table = {}
    for name, machine in machines.items():
        stats = run_campaign(machine, steps, max_examples=examples, **RECORDING)
        row = {g: stats[f"violated:{g}"] for g in guarantees}
        row["runs"] = stats["examples"]
        row["faults"] = sum(stats[k] for k in fault_kinds)
        table[name] = row
    return table


def run_campaign(machine, steps: int = 30, **overrides) -> Counter:
    """Run Hypothesis over `machine` (at most `steps` rules per example); returns what
    was injected and found."""
    STATS.clear()
    run_state_machine_as_test(machine, settings=settings(settings(), stateful_step_count=steps, **overrides))
    return Counter(STATS)
