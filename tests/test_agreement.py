"""One question, three commands: verify (z3), check (seeded random runs) and the Hypothesis
campaign, asked what each configuration of the agreement table keeps under crashes and
under crashes with power losses (kafkaproof/agreement.py; the README shows the table at a
larger budget). None may contradict another: a guarantee verify proves must hold in every
run of both engines. Where verify has a breaking schedule that the random runs did not
reach, the cell says "not reached" - never a bare "held"."""

from kafkaproof.agreement import FAILURE_MODELS, GUARANTEES, ROWS, table
from kafkaproof.claims import PROVED, VIOLATED

RUNS, EXAMPLES = 2, 4  # the CI slice


def test_no_command_contradicts_another_on_any_row_guarantee_or_failure_model():
    cells = table(RUNS, EXAMPLES, seconds=20)
    assert set(cells) == {(r, m) for r in ROWS for m in FAILURE_MODELS}
    contradicted = [(key, g) for key, by_g in cells.items() for g, c in by_g.items() if c.agreement == "contradicted"]
    assert contradicted == []
    # Not vacuous: both engines break what verify says breaks somewhere, and verify both
    # proves and refutes within the table.
    statuses = {c.verify for by_g in cells.values() for c in by_g.values()}
    assert {PROVED, VIOLATED} <= statuses
    agreeing_violations = [(key, g) for key, by_g in cells.items() for g, c in by_g.items()
                           if c.verify == VIOLATED and c.agreement == "agree"]
    assert len(agreeing_violations) >= 5, agreeing_violations
    # Power losses change verify's answer for the safe settings (KIP-966's hazard).
    assert cells[("eight practices", "crashes")]["durability"].verify == PROVED
    assert cells[("eight practices", "crashes+power")]["durability"].verify == VIOLATED
    assert all(len(by_g) == len(GUARANTEES) for by_g in cells.values())


def test_mutation_a_broken_high_watermark_is_a_contradiction(broken_hw):
    """acks=all answered before replication (the shared HW mutation): what verify proves
    for the eight practices under crashes, the runs now break - the table must say so."""
    cells = table(8, 12, seconds=20, rows={"eight practices": ROWS["eight practices"]},
                  models={"crashes": FAILURE_MODELS["crashes"]})
    durability = cells[("eight practices", "crashes")]["durability"]
    assert durability.verify == PROVED and durability.agreement == "contradicted", durability
