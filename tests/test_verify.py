"""`kafkaproof verify`: the z3 encoding's known answers (crash failures, 3 brokers, bound
10), every VIOLATED confirmed on the implementation and saved as a replayable
counterexample, synthesis, and bad input."""

import json
import subprocess
import sys

import pytest
from kafkaproof.impl.engine import build_setup

from kafkaproof.counterexample import replay
from kafkaproof.verify import PROVED, UNKNOWN, VIOLATED, check, confirm, synthesize, values_of


def verdict(sets, guarantee, **kw):
    return check(guarantee, values_of(build_setup(sets=sets)), **kw)


SAFE = ["min.insync.replicas=2", "acks=all", "unclean.leader.election.enable=false"]


@pytest.mark.parametrize("sets,guarantee,status", [
    (SAFE, "durability", PROVED),
    (SAFE, "availability", PROVED),
    (SAFE, "exactly-once", PROVED),
    (SAFE, "partition-order", PROVED),
    (["acks=1"], "durability", VIOLATED),
    (["unclean.leader.election.enable=true"], "durability", VIOLATED),
    (SAFE[:1] + ["default.replication.factor=3", "min.insync.replicas=3"], "availability", VIOLATED),
    (["enable.idempotence=false"], "exactly-once", VIOLATED),
    (["enable.idempotence=false"], "partition-order", VIOLATED),
    (["enable.idempotence=false", "retries=0"], "exactly-once", PROVED),
    (["retries=0"], "delivery", VIOLATED),
    # Never PROVED: retries hide transient errors only until delivery.timeout.ms, which no
    # model reads (mutation: drop `c.retries == 0` from the producer model's delivery).
    (SAFE, "delivery", UNKNOWN),
    (["acks=0", "retries=0"], "delivery", UNKNOWN),  # acks=0 hears of no failure: durability's loss
])
def test_known_answers(sets, guarantee, status):
    assert verdict(sets, guarantee).status == status


def test_power_loss_without_fsync_breaks_even_the_safe_configuration_under_kafka3_elections():
    """ISR shrinks to the leader after the acknowledgement, then the leader loses power and
    is elected again (Kafka 3.x); fsync on every message saves it, and so do KIP-966's
    eligible leader replicas, on by default (under its bound)."""
    kafka3 = [*SAFE, "eligible.leader.replicas.enable=false"]
    v = verdict(kafka3, "durability", power_loss=True)
    assert v.status == VIOLATED and [s.action for s in v.trace][-3:] == ["power-loss", "restart", "elect"]
    assert verdict(kafka3 + ["log.flush.interval.messages=1"], "durability", power_loss=True).status == PROVED
    assert verdict(SAFE, "durability", power_loss=True).status == PROVED


@pytest.mark.parametrize("strategy,loss,dup", [("after", PROVED, VIOLATED), ("before", VIOLATED, PROVED),
                                               ("auto-async", VIOLATED, VIOLATED),
                                               ("transactional", PROVED, PROVED)])
def test_commit_strategies(strategy, loss, dup):
    values = values_of(build_setup(strategy=strategy))
    assert check("consumer-no-loss", values).status == loss
    assert check("consumer-no-duplicates", values).status == dup


@pytest.mark.parametrize("sets,guarantee", [(["acks=1"], "durability"), (["retries=0"], "delivery"),
                                            (["unclean.leader.election.enable=true"], "durability"),
                                            (["enable.idempotence=false"], "exactly-once")])
def test_every_violation_replays_on_the_implementation(sets, guarantee, tmp_path):
    setup = build_setup(sets=sets)
    v = check(guarantee, values_of(setup))
    confirm(v, setup, out=str(tmp_path))
    assert v.confirmed, v.confirmation
    assert replay(v.counterexample)[0]


def test_availability_violation_is_confirmed():
    setup = build_setup(sets=["min.insync.replicas=3"])
    v = check("availability", values_of(setup))
    confirm(v, setup, out=None)
    assert v.status == VIOLATED and v.confirmed, v.confirmation


def test_synthesis_finds_the_cheapest_proved_configuration():
    values, refuted = synthesize(["durability", "exactly-once"])
    assert values["acks"] == -1 and not values["unclean"] and values["rf"] - 1 >= values["min_isr"]
    assert refuted and all(r["status"] != PROVED for r in refuted)
    for g in ("durability", "exactly-once", "availability"):
        assert check(g, values).status == PROVED


def cli(*args):
    return subprocess.run([sys.executable, "-m", "kafkaproof", "verify", *args], capture_output=True, text=True,
                          timeout=600)


def test_cli_exit_codes_and_json(tmp_path):
    ok = cli("--set", "min.insync.replicas=2", "--guarantee", "durability,availability", "--json",
             "--faults", "crash,partition,drop")
    assert ok.returncode == 0, ok.stderr
    assert {v["status"] for v in json.loads(ok.stdout)["verdicts"]} == {"PROVED"}
    # The default failure model has power losses without fsync (check's too): KIP-966's hazard,
    # under Kafka 3.x's elections.
    power = cli("--set", "min.insync.replicas=2", "--set", "eligible.leader.replicas.enable=false", "--guarantee",
                "durability", "--json", "--no-confirm")
    assert power.returncode == 1 and json.loads(power.stdout)["verdicts"][0]["status"] == "VIOLATED"
    bad = cli("--set", "acks=1", "--guarantee", "durability", "--out", str(tmp_path))
    assert bad.returncode == 1 and "VIOLATED" in bad.stdout and "reproduced on the implementation" in bad.stdout


@pytest.mark.parametrize("args,message", [
    (["--broker", "/nonexistent/server.properties"], "No such file"),
    (["--set", "acks.typo=1"], "not a broker, producer or consumer configuration key"),
    (["--set", "enable.idempotence=true", "--set", "acks=1"], "enable.idempotence=true"),
    (["--guarantee", "speed"], "unknown guarantee"),
    (["--max-failures", "5"], "--max-failures"),
])
def test_bad_input_is_exit_2(args, message):
    out = cli(*args)
    assert out.returncode == 2 and message in out.stderr, out.stderr


def test_verifier_and_simulation_agree_on_a_slice_of_the_grid():
    """Every VIOLATED reproduces on the implementation; no PROVED configuration shows a
    violation in a random-fault campaign of the same failure model. (The full 240-config
    grid is `python benchmarks/verify.py --grid`.)"""
    from kafkaproof.verify import cross_check, grid

    configs = grid()
    assert len(configs) >= 200
    problems = []
    for sets in configs[::48]:
        problems += cross_check(sets, ["durability", "read-your-writes", "monotonic-reads", "exactly-once",
                                       "partition-order"], runs=2)
    assert problems == []


def test_isolation_level_read_uncommitted_reads_aborted_data(tmp_path):
    setup = build_setup(sets=["isolation.level=read_uncommitted"])
    v = check("no-aborted-reads", values_of(setup))
    assert v.status == VIOLATED and [s.action for s in v.trace] == ["write", "read", "abort"]
    confirm(v, setup, out=str(tmp_path))
    assert v.confirmed and replay(v.counterexample)[0]
    assert verdict(["isolation.level=read_committed"], "no-aborted-reads").status == PROVED


def test_mutation_hw_from_the_leader_alone_breaks_a_proved_claim(monkeypatch):
    """A PROVED verdict is only as good as the implementation it describes: with acks=all
    answered before replication (the shared HW mutation), the cross-check must report that
    the proved durability does not hold on the implementation."""
    from conftest import hw_from_leader_alone  # tests/conftest.py: shared with other suites
    from kafkaproof.impl.broker.partition import Partition

    from kafkaproof.verify import cross_check

    assert cross_check(["min.insync.replicas=2"], ["durability"], runs=4) == []
    monkeypatch.setattr(Partition, "maybe_advance_hw", hw_from_leader_alone)
    problems = cross_check(["min.insync.replicas=2"], ["durability"], runs=4)
    assert problems and all("durability PROVED, but simulation" in p for p in problems)


def test_transactions_are_judged_by_the_transactions_explorer(tmp_path):
    """verify answers `transactions` from model/transactions.py: VIOLATED without KIP-890
    (a late COMMIT marker ends the next, aborted transaction), replayed on the
    implementation; with it, never PROVED - the model abstracts replication."""
    from kafkaproof.verify import judge

    old = build_setup(sets=["legacy.transactions.without.kip890=true", "transactional.id=app"])
    v = judge("transactions", old)
    assert v.status == VIOLATED and "late" in v.trace[3].action, v.proof
    confirm(v, old, out=str(tmp_path))
    assert v.confirmed, v.confirmation
    assert judge("transactions", build_setup(sets=["transactional.id=app"])).status == UNKNOWN
    assert judge("transactions", build_setup(sets=["transactional.id=app"], faults="crash")).status == UNKNOWN


def test_a_commit_strategy_the_consumer_model_lacks_is_unknown_not_a_crash():
    """commitAsync without retry ("async") has no consumer model: its guarantees are UNKNOWN
    naming it, and the others are judged as ever (it crashed check and hunt before)."""
    from kafkaproof.verify import judge

    setup = build_setup(strategy="async")
    v = judge("consumer-no-duplicates", setup)
    assert v.status == UNKNOWN and "async" in v.proof
    assert judge("durability", setup).status == judge("durability", build_setup()).status


def test_synthesis_answers_for_the_elections_the_setup_has():
    """--synthesize and verify on one configuration give one answer: the synthesizer keeps
    eligible.leader.replicas.enable as the setup has it (it had Kafka 3.x's elections
    whatever the setup said), and with eligible leader replicas it finds a configuration
    durable under power losses without fsync, which verify then proves."""
    values, _ = synthesize(["durability"], power_loss=True, elr=True)
    assert values is not None and values["elr"] and not values["flush"]
    assert check("durability", values, power_loss=True).status == PROVED
    assert check("durability", {**values, "elr": False}, power_loss=True).status == VIOLATED
