"""Every configuration key, for every guarantee: verify models it, says why it cannot
matter, or answers UNKNOWN naming it - never a silent PROVED (issue 16)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from kafkaproof.impl.engine import build_setup
from kafkaproof.model.symbolic import GUARANTEES

from kafkaproof import reach
from kafkaproof.claims import claims
from kafkaproof.verify import PROVED, UNKNOWN, VIOLATED, judge, values_of

CRASHES = "crash,partition,drop"

# Two values of each key a model reads that the model must tell apart (with the base
# settings that make both legal). A READ key missing here fails the test: add its probe.
PROBES = {
    "default.replication.factor": ([], "1", "3"),
    "min.insync.replicas": (["default.replication.factor=3"], "1", "2"),
    "unclean.leader.election.enable": ([], "false", "true"),
    "eligible.leader.replicas.enable": ([], "false", "true"),
    "log.flush.interval.messages": ([], "1", "2"),
    "acks": (["enable.idempotence=false"], "1", "all"),
    "enable.idempotence": ([], "true", "false"),
    "retries": (["enable.idempotence=false"], "0", "3"),
    "max.in.flight.requests.per.connection": (["enable.idempotence=false"], "1", "5"),
    "enable.auto.commit": ([], "true", "false"),
    "isolation.level": ([], "read_committed", "read_uncommitted"),
}


def test_the_table_sorts_exactly_the_keys_impl_config_declares():
    assert set(reach.KEYS) == reach.all_keys()


@pytest.mark.parametrize("key", sorted(reach.all_keys()))
def test_every_key_is_sorted_for_every_guarantee_with_a_reason(key):
    for g in GUARANTEES:
        kind, why = reach.sort(key, g)
        assert kind in (reach.READ, reach.COVERED, reach.IRRELEVANT, reach.ASSUMED) and len(why) > 10, (key, g)


def test_a_key_the_model_reads_changes_what_the_model_sees():
    """The mutation test: drop a key from verify.values_of (say unclean) and its probe
    gives the model the same values twice - this fails."""
    read = sorted({k for k, r in reach.KEYS.items() for rule in r.rules if rule.kind == reach.READ})
    for key in read:
        if key == "offsets.topic.replication.factor":
            continue  # read through __consumer_offsets' durability: the next test
        assert key in PROBES, f"{key} is READ by the table: give it a probe here"
        base, a, b = PROBES[key]
        va = values_of(build_setup(sets=[*base, f"{key}={a}"]))
        vb = values_of(build_setup(sets=[*base, f"{key}={b}"]))
        assert va != vb, f"{key}={a} and {key}={b} look the same to the model: it no longer reads {key}"


def test_commits_are_only_as_durable_as_consumer_offsets():
    """offsets.topic.replication.factor reaches consumer-no-duplicates: a transactional
    application never processes twice while its commits survive (one replica: nothing
    to elect uncleanly), and only UNKNOWN once __consumer_offsets can lose one."""
    def ask(rf: str):
        return judge("consumer-no-duplicates", build_setup(
            sets=["unclean.leader.election.enable=true", f"offsets.topic.replication.factor={rf}"],
            faults=CRASHES, strategy="transactional"))
    kept, lost = ask("1"), ask("3")
    assert kept.status == PROVED
    assert lost.status == UNKNOWN and lost.proof.startswith("commits may be lost: __consumer_offsets")


@pytest.mark.parametrize("key,variant", [("legacy.truncate.to.high.watermark", "legacy-hw"),
                                         ("legacy.kip101.without.kip279", "kip101"),
                                         ("legacy.no.fetch.epoch.fencing", "kip279")])
def test_a_legacy_switch_is_never_proved_durable(key, variant):
    """The wrong PROVED of issue 16: the verifier read a fixed list of keys and proved a
    configuration known to lose acknowledged writes (KIP-101). z3's model has the fixes;
    the explicit-state explorer has each variant and is that guarantee's back end."""
    two = ["default.replication.factor=2"]  # the explorer's two-replica search: well under a second
    plain = judge("durability", build_setup(sets=two, faults=CRASHES))
    switched = judge("durability", build_setup(sets=[*two, f"{key}=true"], faults=CRASHES))
    assert plain.status == PROVED
    assert switched.status == VIOLATED and switched.model == "explorer"
    assert switched.proof.startswith(f"by the explorer (model/replication.py, variant {variant}")
    assert any(s.action.startswith("BecomeFollowerAndTruncate") for s in switched.trace)
    # At the value the model has (false), the key is reached and the proof stands.
    assert judge("durability", build_setup(sets=[*two, f"{key}=false"], faults=CRASHES)).status == PROVED
    # With another key no model reaches, neither back end speaks for it: UNKNOWN.
    both = judge("durability", build_setup(sets=[*two, f"{key}=true", "log.retention.ms=1000"], faults=CRASHES))
    assert both.status == UNKNOWN and "log.retention.ms=1000" in both.proof


def test_unset_defaults_count_too():
    """A key whose default matters is sorted even when nobody sets it: the engine's
    consumers start from the earliest offset, which the consumer model has; latest is
    not modelled."""
    base = judge("consumer-no-loss", build_setup(faults=CRASHES, strategy="after"))
    latest = judge("consumer-no-loss", build_setup(sets=["auto.offset.reset=latest"], faults=CRASHES,
                                                   strategy="after"))
    assert base.status == PROVED and latest.status == UNKNOWN and "auto.offset.reset=latest" in latest.proof


def test_verify_and_check_give_the_same_answer_and_verify_names_the_setting():
    args = ["--set", "legacy.truncate.to.high.watermark=true", "--set", "default.replication.factor=2",
            "--faults", CRASHES, "--guarantee", "durability", "--no-confirm"]
    out = subprocess.run([sys.executable, "-m", "kafkaproof", "verify", *args], capture_output=True, text=True)
    assert out.returncode == 1, out.stderr
    assert "legacy.truncate.to.high.watermark=true: NOT MODELLED at this value for durability" in out.stdout
    assert "durability               VIOLATED  by the explorer (model/replication.py, variant legacy-hw" in out.stdout
    as_json = json.loads(subprocess.run([sys.executable, "-m", "kafkaproof", "verify", *args, "--json"],
                                        capture_output=True, text=True).stdout)
    assert as_json["settings"]["legacy.truncate.to.high.watermark"]["reach"]["durability"][0] == "NOT MODELLED at this value"
    # check's "verify says" column reads the same judge, with the dangers of the trace.
    setup = build_setup(sets=["legacy.truncate.to.high.watermark=true", "default.replication.factor=2"],
                        faults=CRASHES)
    said = claims(setup, ["durability"])["durability"]
    assert said.status == as_json["verdicts"][0]["status"] == "VIOLATED"
    assert said.dangers == ("follower-truncated-committed", "new-leader-missing-acked")


def test_pre_kip101_truncation_replays_on_the_implementation():
    """The explorer's legacy-hw trace translates into a schedule (verify.to_schedule):
    crash the leader, restart it before its session ends - the controller moves
    leadership to the next replica and the third follows it, truncating to its stale
    high watermark - and crash the new leader at that moment. With the switch the runs
    lose acknowledged writes; without it (the mutation: KIP-101's epochs) the same
    schedules never do."""
    from dataclasses import replace

    from kafkaproof.impl.engine import run_one
    from kafkaproof.impl.engine.setup import steered

    on = build_setup(sets=["legacy.truncate.to.high.watermark=true"], faults="crash")
    schedule = claims(on, ["durability"])["durability"].schedule
    assert [step[1] for step in schedule] == ["crash", "restart", "crash", "restart"]
    off = replace(on, broker={})
    lost = next((seed for seed in range(8) if run_one(steered(on, schedule, seed), seed).violations.get("durability")),
                None)
    assert lost is not None
    # The same seed and schedule without the switch (a run is (setup, seed): only it changed).
    assert not run_one(steered(off, schedule, lost), lost).violations.get("durability")


@pytest.mark.parametrize("key", ["legacy.no.fetch.epoch.fencing", "legacy.kip101.without.kip279"])
def test_unfenced_switches_replay_on_the_implementation(key):
    """Without KIP-320's fencing (both switches; KIP-101 alone has none either), the
    explorer's traces turn on a replica serving one of another leader epoch. Their schedule
    (verify._explorer_schedule: the stale-epoch-served danger's) - a follower that misses
    the leader changes while crashes move leadership 0 -> 1 -> 0 -> it - makes a leader
    count that follower's stale log, and the replicas diverge. With the switch some steered
    seed shows it; the same seed and schedule without it (the mutation) never do, and no
    stale request is ever served."""
    from dataclasses import replace

    from kafkaproof.impl.engine import run_one
    from kafkaproof.impl.engine.setup import steered
    from kafkaproof.impl.sim.dangers import DANGERS

    on = build_setup(sets=[f"{key}=true"], faults=CRASHES)
    template = DANGERS["stale-epoch-served"].schedule(30_000, 9_000)
    if key == "legacy.no.fetch.epoch.fencing":  # (the explorer's answer once: ~20 s)
        said = claims(on, ["durability"])["durability"]
        assert said.status == VIOLATED and said.schedule == template and "stale-epoch-served" in said.dangers
    found = None
    for seed in range(6):
        result = run_one(steered(on, template, seed), seed)
        assert result.dangers.get("stale-epoch-served")
        if result.violations.get("durability"):
            found = seed
            break
    assert found is not None
    off = run_one(steered(replace(on, broker={}), template, found), found)
    assert not off.violations.get("durability") and not off.dangers.get("stale-epoch-served")


def test_elr_is_modelled_for_the_partition_and_the_same_for_availability_either_way():
    """eligible.leader.replicas.enable (KIP-966, on by default as in Kafka 4.1): z3's
    partition model has it - the last ISR member's power loss loses writes without it and
    nothing with it (under KIP-966's bound: a broker that shut down uncleanly counts as down
    until it is back in the ISR). Availability counts live, caught-up replicas against
    min.insync.replicas, which the election order does not change: the same answer with it
    on or off."""
    sets = ["default.replication.factor=3", "min.insync.replicas=2", "acks=all"]
    power = "crash,partition,drop,power"
    off = judge("durability", build_setup(sets=[*sets, "eligible.leader.replicas.enable=false"], faults=power))
    assert off.status == VIOLATED and any("power" in s.action for s in off.trace)
    on = judge("durability", build_setup(sets=sets, faults=power))
    assert on.status == PROVED and "until it is back in the ISR" in on.proof
    for sets, status in ((["default.replication.factor=3", "min.insync.replicas=3"], VIOLATED),
                         (["default.replication.factor=3", "min.insync.replicas=2"], PROVED)):
        for elr in ("true", "false"):
            verdict = judge("availability", build_setup(sets=[*sets, f"eligible.leader.replicas.enable={elr}"],
                                                        faults=CRASHES))
            assert verdict.status == status, (sets, elr, verdict)
