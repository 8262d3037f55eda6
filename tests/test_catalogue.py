"""Every saved counterexample is a regression test: it replays exactly with its unsafe
configuration, and with its recorded fix the same seed keeps the guarantee."""

import pathlib

import pytest
from kafkaproof.impl.engine import run_one

from kafkaproof.catalogue import ENTRIES
from kafkaproof.counterexample import FIXES, load, replay

# Catalogue entries are named "<entry>--..."; other files there (a local `kafkaproof check`
# saves into counterexamples/ by default) are not part of it.
FILES = sorted((pathlib.Path(__file__).parent.parent / "counterexamples").glob("*--*.json"))


def test_the_catalogue_has_every_entry():
    names = {f.name.split("--")[0] for f in FILES}
    assert names == {entry[0] for entry in ENTRIES}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name.split("--")[0])
def test_counterexample_replays_and_its_fix_holds(path):
    reproduced, why, _, violation = replay(path)
    assert reproduced, why
    fix = violation["fix"]
    if fix is None:  # only where no configuration can help (processing must be idempotent)
        assert FIXES[violation["name"]] == []
        return
    setup, seed, _, _ = load(path)
    for change in fix["changes"]:
        setup = setup.changed(change["scope"], change["key"], change["value"])
    assert not run_one(setup, seed).violations.get(violation["guarantee"])


def test_the_timeline_shows_the_high_watermark_moving_back_when_a_write_is_lost():
    from kafkaproof.counterexample import timeline
    [path] = [f for f in FILES if f.name.startswith("truncate-to-high-watermark--")]
    moves: list = []
    reproduced, _, history, violation = replay(path, moves)
    assert reproduced and moves
    rows = timeline(history, violation["witness"], hw_moves=moves)
    witness = history.ops[violation["witness"][0]]
    back = [e for _, lane, e, _ in rows if lane.startswith("broker-") and "new leader" in e]
    # the new leader's HW is at or below the lost write's offset: it never had it
    assert any(f"events-{witness.partition}: HW" in e and int(e.split("-> ")[1].split()[0]) <= witness.offset
               for e in back), back


def test_saved_schedules_keep_their_failure_model():
    """Shrinking leaves steps out of a fixed schedule, but never a restart that would put
    two brokers down at once where the hunt allowed one (a blackout takes all by design)."""
    from kafkaproof.impl.sim.faults import most_down

    for path in FILES:
        setup, _, _, _ = load(path)
        if setup.schedule:
            assert most_down(setup.schedule) <= (3 if "blackout" in setup.faults else 1), (path.name, setup.schedule)
