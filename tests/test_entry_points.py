"""One engine: the same setup and seed give a byte-identical history whichever entry point
ran them - the library's run_one, check's run_check (in this process, on a process
pool, on any executor), hunt, and replay of the saved counterexample."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

from kafkaproof.impl.engine import build_setup, run_check, run_one

import kafkaproof
from kafkaproof.counterexample import load, replay, save
from kafkaproof.hunt import hunt

CATALOGUED = next((Path(__file__).parent.parent / "counterexamples").glob("acks-1-leader-failure--*.json"))


def test_one_seed_one_history_whichever_entry_point_ran_it(tmp_path):
    setup, known_seed, _, _ = load(CATALOGUED)  # a seed known to lose a write: hunt starts there
    h = hunt(setup, "durability", budget_s=60, seed=known_seed, shrink=False)
    assert h.found and h.result.seed == known_seed
    seed = h.result.seed
    hunted = h.result.history.to_jsonl()
    assert run_one(setup, seed, keep_history=True).history.to_jsonl() == hunted
    assert run_check(setup, 1, seed, keep_history=True)[0].history.to_jsonl() == hunted
    with ProcessPoolExecutor(max_workers=2) as pool:
        pooled = run_check(setup, 2, seed, executor=pool, keep_history=True)
    assert pooled[0].history.to_jsonl() == hunted
    with ThreadPoolExecutor(max_workers=2) as threads:  # any concurrent.futures-style executor
        threaded = run_check(setup, 2, seed, executor=threads, keep_history=True)
    assert [r.history.to_jsonl() for r in threaded] == [r.history.to_jsonl() for r in pooled]
    path = save(tmp_path, setup, h.result, "durability", with_fix=False)
    reproduced, why, replayed, _ = replay(path)
    assert reproduced, why
    assert replayed.to_jsonl() == hunted
    assert kafkaproof.run_one is run_one and kafkaproof.build_setup is build_setup  # the library's entry


def test_verdicts_do_not_depend_on_the_number_of_workers():
    setup = build_setup(sets=["acks=1"], seconds=10)
    alone = run_check(setup, 4, 7)
    pooled = run_check(setup, 4, 7, jobs=2)
    assert [(r.seed, r.violations, r.faults, r.ops) for r in alone] == \
        [(r.seed, r.violations, r.faults, r.ops) for r in pooled]
