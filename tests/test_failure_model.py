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


def test_check_defaults_to_crashes_and_power_losses_without_fsync():
    model = build_setup().failure_model
    assert "crash" in model.kinds and "power" in model.kinds and not model.fsync
    assert "power" not in build_setup(faults="crash,drop").failure_model.kinds


def test_check_and_verify_state_their_failure_models_and_they_differ_where_they_do():
    """The question of issue 15: RF=1 - check (power loss) finds loss, verify (crashes
    only) proves it; each verdict now says which failures it covered."""
    checked = json.loads(cli("check", "--set", "default.replication.factor=1", "--runs", "1", "--seconds", "5",
                             "--no-save", "--json").stdout)
    verified = json.loads(cli("verify", "--set", "default.replication.factor=1", "--guarantee", "durability",
                              "--no-confirm", "--json").stdout)
    assert "power" in checked["failure_model"]["kinds"] and checked["failure_model"]["max_down"] is None
    assert verified["failure_model"] == failure_model(False, 1, {"default.replication.factor": "1"}).as_json()
    assert "power" not in verified["failure_model"]["kinds"] and verified["failure_model"]["max_down"] == 1
    with_power = json.loads(cli("verify", "--set", "default.replication.factor=1", "--guarantee", "durability",
                                "--no-confirm", "--power-loss", "--json").stdout)
    assert "power" in with_power["failure_model"]["kinds"]


def test_text_output_prints_the_failure_model():
    out = cli("verify", "--set", "acks=all", "--guarantee", "durability", "--no-confirm")
    assert "failure model: crash-stop with disk and page cache intact: crash" in out.stdout
    out = cli("check", "--runs", "1", "--seconds", "5", "--no-save")
    assert "failure model:" in " ".join(out.stdout.split())
