"""The agreement table: one question - what does this configuration keep under these
failures? - asked of `verify` (z3), `check` (seeded random runs) and the Hypothesis
campaign, for Kafka 4's defaults, the seed's eight practices and each unsafe choice,
under crashes and under crashes with power losses. The README's table is generated here
(`kafkaproof guarantees --agreement`) and tests/test_agreement.py runs a CI-sized slice.

A cell agrees when all three say the same. Two ways to differ, named in the cell:
"contradicted" (verify proves what a run broke: a bug in the model or the
implementation) and "not shown" (verify has a schedule that breaks it, and neither the
random runs nor those steered by its schedules (kafkaproof/guided.py) broke it within the
budget).
"""

from __future__ import annotations

from dataclasses import dataclass

from kafkaproof.claims import agreement, claims
from kafkaproof.guided import plan, templates
from kafkaproof.impl.engine import build_setup, campaign, run_many, summarize
from kafkaproof.unsafe import PRACTICES

ROWS = {
    "Kafka 4 defaults": [],
    "eight practices": list(PRACTICES),
    "acks=1": ["acks=1"],
    "default.replication.factor=1": ["default.replication.factor=1"],
    "enable.idempotence=false": ["enable.idempotence=false"],
    "unclean.leader.election.enable=true": ["unclean.leader.election.enable=true"],
    "min.insync.replicas=1": ["min.insync.replicas=1"],
}
# Failure models by their fault kinds: crash-stop (disks and page caches survive) with
# network faults, and the default - the same plus power losses without fsync.
FAILURE_MODELS = {"crashes": "crash,partition,drop", "crashes+power": "crash,power,partition,drop"}
GUARANTEES = ("durability", "read-your-writes", "monotonic-reads", "exactly-once", "partition-order")


@dataclass(frozen=True)
class Cell:
    verify: str  # PROVED | VIOLATED | UNKNOWN
    check: tuple[int, int]  # (runs violating, runs)
    campaign: tuple[int, int]

    @property
    def agreement(self) -> str:
        return agreement(self.verify, [self.check[0] > 0, self.campaign[0] > 0])

    def text(self) -> str:
        def seen(n: tuple[int, int]) -> str:
            return f"{n[0]}/{n[1]}" if n[0] else "held"
        mark = "" if self.agreement == "agree" else f" **{self.agreement}**"
        return f"{self.verify} / {seen(self.check)} / {seen(self.campaign)}{mark}"


def table(runs: int, examples: int, seconds: int = 30, rows=ROWS,
          models=FAILURE_MODELS, executor=None) -> dict[tuple[str, str], dict[str, Cell]]:
    """(row, failure model) -> guarantee -> the three verdicts."""
    out = {}
    for row_name, sets in rows.items():
        for model_name, kinds in models.items():
            setup = build_setup(sets=sets, faults=kinds, seconds=seconds)
            said = claims(setup, GUARANTEES)
            checked = summarize(run_many(plan(setup, runs, 0, said), executor=executor))
            # (the campaign's consumers are check's too: the same question asked of all three -
            # and verify's answers for the one are its answers for the other)
            row = campaign.Row(setup.broker, setup.producer, tuple(k for k in campaign.FAULTS if k in kinds.split(",")),
                               consumer=setup.consumer)
            steer = templates(claims(row.setup(), GUARANTEES), row.faults)
            ran = campaign.guarantee_table(examples, GUARANTEES, {row_name: row}, {row_name: steer},
                                          executor=executor)[row_name]
            out[(row_name, model_name)] = {
                g: Cell(said[g].status, (checked[g]["violated"], checked[g]["runs"]), (ran[g], ran["runs"]))
                for g in GUARANTEES}
    return out


def markdown(cells: dict[tuple[str, str], dict[str, Cell]], runs: int, examples: int) -> str:
    lines = [f"| configuration | failures | {' | '.join(GUARANTEES)} |", "|---|---|" + "---|" * len(GUARANTEES)]
    for (row, model), by_g in cells.items():
        lines.append(f"| {row} | {model} | " + " | ".join(by_g[g].text() for g in GUARANTEES) + " |")
    counts = {}
    for by_g in cells.values():
        for c in by_g.values():
            counts[c.agreement] = counts.get(c.agreement, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    return "\n".join(lines) + (f"\n\nEach cell: verify / check ({runs} runs) / campaign ({examples} Hypothesis"
                               f" runs); {summary}.")
