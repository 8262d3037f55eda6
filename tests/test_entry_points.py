"""One engine: the same setup and seed give a byte-identical history whichever entry point
ran them - the library's run_one, check's run_check (in this process, on a process
pool, on any executor), hunt, and replay of the saved counterexample."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

from kafkaproof.impl.engine import build_setup, run_check, run_one
from kafkaproof.impl.engine.executors import LocalPool

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
    with LocalPool(2) as pool:
        pooled = run_check(setup, 4, 7, executor=pool)
    assert [(r.seed, r.violations, r.faults, r.ops) for r in alone] == \
        [(r.seed, r.violations, r.faults, r.ops) for r in pooled]


def test_a_steered_run_is_one_history_from_check_hunt_and_replay(tmp_path):
    """check and hunt steer every other run by verify's breaking schedule (kafkaproof/guided):
    such a run is still a plain (setup, seed) - the same history from run_one, check's
    plan, hunt, and the saved file's replay."""
    from kafkaproof.impl.engine import run_many, steered

    from kafkaproof.claims import claims
    from kafkaproof.guided import plan, templates

    # (Shorter timeouts than Kafka's make a shorter steered run; the schedule follows them.)
    setup = build_setup(sets=["unclean.leader.election.enable=true", "replica.lag.time.max.ms=5000",
                              "request.timeout.ms=5000"], faults="crash,partition,drop", seconds=10)
    steer = templates(claims(setup, ["durability"]), setup.faults)
    assert steer and all(step[1] in ("cut", "crash", "restart", "heal") for step in steer[0])
    work = plan(setup, 2, 5, claims(setup, ["durability"]))
    assert work[0] == (steered(setup, steer[0], 5), 5) and work[1] == (setup, 6)
    ran = run_many(work, keep_history=True)[0]
    h = hunt(setup, "durability", budget_s=60, seed=5, shrink=False, steer=steer)
    assert h.found and h.result.seed == 5 and h.setup == work[0][0], "the steered seed loses a write"
    assert h.result.history.to_jsonl() == ran.history.to_jsonl() == \
        run_one(work[0][0], 5, keep_history=True).history.to_jsonl()
    path = save(tmp_path, h.setup, h.result, "durability", with_fix=False)
    reproduced, why, replayed, _ = replay(path)
    assert reproduced, why
    assert replayed.to_jsonl() == ran.history.to_jsonl()


def test_hypothesis_runs_are_engine_runs(tmp_path):
    """The campaign path: Hypothesis draws (seed, schedule) for the same run function, so a
    drawn run replays to the same history through run_one, check's run_many and a saved
    file - and faults really were injected."""
    from kafkaproof.impl.engine import run_many
    from kafkaproof.impl.engine.hypothesis_runs import run_examples

    setup = build_setup(sets=["acks=1"], faults="crash,power,partition,drop", seconds=15)
    seen = []
    stats = run_examples(setup, 6, on_run=lambda s, seed, r: seen.append((s, seed, r)))
    assert stats["runs"] == 6 and stats["faults"] > 0
    assert any(s.schedule != ((1000, "none", 0),) for s, _, _ in seen)
    for s, _, _ in seen:  # one broker down at a time, as the failure model says
        down = set()
        for _, kind, replica, *_ in s.schedule:
            down = down | {replica} if kind in ("crash", "power") else down - {replica} if kind == "restart" else down
            assert len(down) <= 1, s.schedule
    this, seed, result = next(x for x in seen if x[2].violated)  # acks=1: some run loses or reorders
    one = run_one(this, seed, keep_history=True)
    assert one.violations == result.violations
    assert run_many([(this, seed)], keep_history=True)[0].history.to_jsonl() == one.history.to_jsonl()
    reproduced, why, replayed, _ = replay(save(tmp_path, this, one, one.violated[0], with_fix=False))
    assert reproduced and replayed.to_jsonl() == one.history.to_jsonl(), why


def test_a_group_campaign_run_is_an_engine_run(tmp_path):
    """The group campaign's rows go the same way: a drawn run with member faults replays to
    the same history through run_one and a saved file."""
    from kafkaproof.impl.engine.campaign import GROUP_CONFIGS
    from kafkaproof.impl.engine.hypothesis_runs import run_examples

    seen = []
    row = GROUP_CONFIGS["commit-after"]
    run_examples(row.setup(), 3, on_run=lambda s, seed, r: seen.append((s, seed, r)), faults=row.faults_per_run)
    this, seed, result = next(x for x in seen if x[2].violated)  # commit-after redelivers
    assert any(step[1].startswith("member") for step in this.schedule), this.schedule
    one = run_one(this, seed, keep_history=True)
    assert one.violations == result.violations and one.dangers == result.dangers
    reproduced, why, replayed, _ = replay(save(tmp_path, this, one, one.violated[0], with_fix=False))
    assert reproduced and replayed.to_jsonl() == one.history.to_jsonl(), why
