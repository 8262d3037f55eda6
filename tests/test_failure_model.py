"""Every verdict names the failure model it was judged under, in the same vocabulary
(impl/sim/faults.py), so two commands that judge under different models say so."""

from __future__ import annotations

import json
import subprocess
import sys

from kafkaproof.impl.engine import build_setup
from kafkaproof.impl.sim.faults import BY_DEFAULT, FailureModel

from kafkaproof.verify import failure_model


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kafkaproof", *args], capture_output=True, text=True)


def test_a_failure_model_says_what_may_fail_and_how_many_at_once():
    text = FailureModel.of(BY_DEFAULT).describe()
    assert "crash-stop with disk and page cache intact: crash, pause" in text
    assert "power loss: bytes not fsynced are lost, the last write may tear (no fsync: Kafka's default)" in text
    assert "any number of brokers down at once" in text
    fsynced = FailureModel.of(["power"], 1, {"log.flush.interval.messages": "1"}).describe()
    assert "(every message fsynced)" in fsynced and "at most 1 broker(s)" in fsynced
    assert "no power loss" in FailureModel.of(["crash"]).describe()
    assert "not modelled: clock" in FailureModel.of(["crash"], unmodelled=["clock"]).describe()


def test_check_defaults_to_crashes_and_power_losses_without_fsync():
    model = build_setup().failure_model
    assert "crash" in model.kinds and "power" in model.kinds and not model.fsync and model.max_down == 1
    assert "power" not in build_setup(faults="crash,drop").failure_model.kinds
    assert build_setup(faults="blackout").failure_model.max_down is None


def test_one_question_one_answer_check_and_verify_share_the_failure_model():
    """The question of issue 15: replication factor 1. check injected power losses and
    found loss while verify assumed crashes only and proved it. Now both read the same
    --faults with the same default, judge under power loss and say VIOLATED."""
    checked = json.loads(cli("check", "--set", "default.replication.factor=1", "--runs", "4", "--seconds", "10",
                             "--no-save", "--json").stdout)
    verified = json.loads(cli("verify", "--set", "default.replication.factor=1", "--guarantee", "durability",
                              "--no-confirm", "--json").stdout)
    assert checked["guarantees"]["durability"]["violated"] > 0
    assert verified["verdicts"][0]["status"] == "VIOLATED"
    same = ("kinds", "max_down", "fsync")
    modelled = {k: v for k, v in checked["failure_model"].items() if k in same}
    modelled["kinds"] = [k for k in modelled["kinds"] if k not in verified["failure_model"]["unmodelled"]]
    assert modelled == {k: verified["failure_model"][k] for k in same}
    assert verified["failure_model"]["unmodelled"] == []  # duplicates and clock jumps are in the models
    assert verified["failure_model"] == failure_model(build_setup(sets=["default.replication.factor=1"]), 1).as_json()
    # Asked about crashes only, both prove it / hold.
    crashes = ["--faults", "crash,partition,drop"]
    verified = json.loads(cli("verify", "--set", "default.replication.factor=1", "--guarantee", "durability",
                              "--no-confirm", "--json", *crashes).stdout)
    assert verified["verdicts"][0]["status"] == "PROVED" and "power" not in verified["failure_model"]["kinds"]


def test_a_proof_under_faults_no_model_reads_is_unknown_naming_them():
    """PROVED covers only what the model reads: asked under reordering, which no symbolic
    model has, verify answers UNKNOWN and names it - for the claims of check too."""
    from kafkaproof.claims import claims

    asked = ["--set", "min.insync.replicas=2", "--guarantee", "exactly-once", "--no-confirm", "--json"]
    plain = json.loads(cli("verify", *asked, "--faults", "crash,partition,drop").stdout)["verdicts"][0]
    out = cli("verify", *asked, "--faults", "crash,partition,drop,reorder")
    reordered = json.loads(out.stdout)["verdicts"][0]
    assert plain["status"] == "PROVED" and reordered["status"] == "UNKNOWN" and out.returncode == 3
    assert reordered["proof"].startswith("not modelled: reorder")
    setup = build_setup(sets=["min.insync.replicas=2"], faults="crash,partition,drop,reorder")
    assert claims(setup, ["exactly-once"])["exactly-once"].status == "UNKNOWN"


def test_network_duplicates_are_modelled_acks_0_duplicates():
    """The duplicate fault is in the producer model: acks=0 (no idempotence) writes a
    request the network delivered twice twice - check's runs show the same."""
    from kafkaproof.verify import check, values_of

    values = values_of(build_setup(sets=["acks=0"]))
    assert check("exactly-once", values).status == "PROVED"  # without network duplicates
    assert check("exactly-once", values, duplicates=True).status == "VIOLATED"


def test_text_output_prints_the_failure_model():
    out = cli("verify", "--set", "acks=all", "--guarantee", "durability", "--no-confirm")
    assert "failure model: crash-stop with disk and page cache intact: crash, pause" in out.stdout
    assert "not modelled" not in out.stdout
    out = cli("check", "--runs", "1", "--seconds", "5", "--no-save")
    assert "failure model:" in " ".join(out.stdout.split())
