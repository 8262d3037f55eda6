"""Every saved counterexample is a regression test: it replays exactly with its unsafe
configuration, and with its recorded fix the same seed keeps the guarantee."""

import pathlib

import pytest

from kafkaproof.catalogue import ENTRIES
from kafkaproof.check import run_one
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
