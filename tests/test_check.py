"""`kafkaproof check` and `kafkaproof replay`: configuration errors, verdicts, parallel
runs equal to serial ones, counterexamples that replay, and files that do not."""

import json
import subprocess
import sys

import pytest
from kafkaproof.impl.config import ConfigError
from kafkaproof.impl.engine import build_setup, run_check, summarize
from kafkaproof.impl.engine.executors import LocalPool


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "kafkaproof", *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize("kwargs, message", [
    ({"sets": ["acks=2"]}, "acks"),
    ({"sets": ["ackss=all"]}, "ackss"),
    ({"sets": ["acks"]}, "key=value"),
    ({"faults": "crash,meteor"}, "meteor"),
    ({"broker_file": "/nonexistent/server.properties"}, "server.properties"),
    ({"sets": ["min.insync.replicas=4"]}, "min.insync.replicas=4 is larger than the replication factor 3"),
    ({"sets": ["default.replication.factor=4"]}, "replication factor 4 is larger than the 3 brokers"),
    ({"faults": "zombie"}, "zombie"),  # needs a transactional.id
])
def test_bad_configuration_is_a_clear_error(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        build_setup(**kwargs)


@pytest.mark.parametrize("command", [["check"], ["hunt", "--guarantee", "durability"], ["verify"]])
def test_a_topic_no_acks_all_write_can_reach_is_exit_2_for_every_command(command):
    out = cli(*command, "--set", "min.insync.replicas=4")
    assert out.returncode == 2, out.stderr
    assert "min.insync.replicas=4 is larger than the replication factor 3" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_properties_file_with_a_bad_value_names_file_line_and_key(tmp_path):
    f = tmp_path / "server.properties"
    f.write_text("# broker\nmin.insync.replicas=two\n")
    out = cli("check", "--broker", str(f), "--runs", "1")
    assert out.returncode == 2
    assert "server.properties:2" in out.stderr and "min.insync.replicas" in out.stderr


def test_set_routes_each_key_to_its_scope():
    s = build_setup(sets=["acks=1", "min.insync.replicas=2", "request.timeout.ms=5000", "auto.offset.reset=latest"])
    assert s.producer == {"acks": "1", "request.timeout.ms": "5000"}
    assert s.broker == {"min.insync.replicas": "2"}
    assert s.consumer == {"request.timeout.ms": "5000", "auto.offset.reset": "latest"}


def test_parallel_runs_equal_serial_runs():
    setup = build_setup(sets=["acks=1"], faults="crash,partition", seconds=10)
    serial = run_check(setup, 4, seed=3)
    with LocalPool(2) as pool:
        parallel = run_check(setup, 4, seed=3, executor=pool)
    assert [(r.seed, r.violations, r.ops) for r in serial] == [(r.seed, r.violations, r.ops) for r in parallel]
    assert summarize(serial) == summarize(parallel)


@pytest.fixture(scope="module")
def acks1_check(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("cx")
    out = cli("check", "--set", "acks=1", "--runs", "4", "--seconds", "20", "--out", str(out_dir), "--json")
    return out, out_dir


def test_acks_1_is_caught_and_its_counterexamples_saved(acks1_check):
    out, out_dir = acks1_check
    assert out.returncode == 1
    result = json.loads(out.stdout)
    violated = {g: row for g, row in result["guarantees"].items() if row["violated"]}
    assert violated  # acks=1 under crashes and power loss: something breaks
    for row in violated.values():
        assert row["counterexample"] and row["first_violating_seed"] is not None
    assert len(list(out_dir.glob("*.json"))) == len(violated)


def test_a_saved_counterexample_replays_exactly(acks1_check):
    _, out_dir = acks1_check
    path = sorted(out_dir.glob("*.json"))[0]
    out = cli("replay", str(path))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "reproduced" in out.stdout and "<- witness" in out.stdout


def test_replay_of_garbage_or_an_edited_file_is_exit_2_naming_the_field(acks1_check, tmp_path):
    _, out_dir = acks1_check
    doc = json.loads(sorted(out_dir.glob("*.json"))[0].read_text())
    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(b"\x00\xffnot json")
    out = cli("replay", str(garbage))
    assert out.returncode == 2 and "not JSON" in out.stderr
    for edit, field in ((lambda d: d.pop("seed"), "'seed'"),
                        (lambda d: d.__setitem__("seed", "seven"), "'seed' must be int"),
                        (lambda d: d["setup"].__setitem__("faults", ["meteor"]), "setup.faults"),
                        (lambda d: d.__setitem__("format", 9), "format")):
        edited = json.loads(json.dumps(doc))
        edit(edited)
        path = tmp_path / "edited.json"
        path.write_text(json.dumps(edited))
        out = cli("replay", str(path))
        assert out.returncode == 2 and field in out.stderr, (field, out.stderr)


def test_replay_of_a_violation_that_no_longer_happens_is_exit_1(acks1_check, tmp_path):
    _, out_dir = acks1_check
    path = sorted(out_dir.glob("*.json"))[0]
    doc = json.loads(path.read_text())
    doc["seed"] += 1000  # another run: not this violation
    edited = tmp_path / "moved.json"
    edited.write_text(json.dumps(doc))
    out = cli("replay", str(edited))
    assert out.returncode == 1 and "NOT reproduced" in out.stdout


def test_hunt_finds_shrinks_saves_and_the_file_replays(tmp_path):
    out = cli("hunt", "--guarantee", "durability", "--set", "acks=1", "--budget", "30", "--out", str(tmp_path),
              "--json")
    assert out.returncode == 1, out.stderr
    result = json.loads(out.stdout)
    first = [int(x.split()[0]) for x in result["first_found"].split(", ")]
    shrunk = [int(x.split()[0]) for x in result["shrunk"].split(", ")]
    assert all(b <= a for a, b in zip(first, shrunk, strict=True)) and shrunk != first  # smaller, still violating
    assert cli("replay", result["counterexample"]).returncode == 0


def test_hunt_without_a_violation_says_what_it_searched():
    out = cli("hunt", "--guarantee", "durability", "--set", "min.insync.replicas=2", "--faults", "crash",
              "--budget", "3", "--seconds", "10")
    assert out.returncode == 0 and "no durability violation in" in out.stdout and "seeds 0.." in out.stdout


def test_hunt_refuses_an_unknown_guarantee():
    out = cli("hunt", "--guarantee", "speed")
    assert out.returncode == 2 and "--guarantee must be one of" in out.stderr


def test_replay_draws_the_diagram_as_html_png_and_svg(acks1_check, tmp_path, capsys):
    from kafkaproof.cli import main

    _, out_dir = acks1_check
    # (the shortest run: these draw it three times)
    path = min(out_dir.glob("*.json"), key=lambda p: json.loads(p.read_text())["history"][-1]["time"])
    svg, html, png = tmp_path / "t.svg", tmp_path / "t.html", tmp_path / "t.png"
    assert main(["replay", str(path), "--svg", str(svg), "--html", str(html), "--png", str(png)]) == 0
    drawing = svg.read_text()
    assert drawing.startswith("<svg") and drawing.count("<line") > 3 and "#c0392b" in drawing  # witness in red
    assert "vegaEmbed" in html.read_text() and png.read_bytes().startswith(b"\x89PNG")
    assert main(["replay", str(path), "--svg", "/nonexistent/dir/t.svg"]) == 2
    # The gallery command draws the same file, and says where.
    assert main(["gallery", str(path), "--out", str(tmp_path / "gallery")]) == 0
    assert len(list((tmp_path / "gallery").glob("*.html"))) == 1 and (tmp_path / "gallery" / "vega-bundle.js").exists()
    assert main(["gallery", str(tmp_path / "nothing.json")]) == 2
    capsys.readouterr()


def test_a_commit_strategy_adds_the_group_guarantees_and_the_member_fault():
    setup = build_setup(strategy="before", faults="crash,member", seconds=10)
    assert setup.strategy == "before" and "member" in setup.faults
    table = summarize(run_check(setup, 1, seed=0))
    assert {"group-exclusivity", "committed-offsets", "consumer-no-loss", "consumer-no-duplicates"} <= set(table)
    with pytest.raises(ConfigError, match="member"):
        build_setup(faults="member")  # a group fault needs a group
    with pytest.raises(ConfigError, match="commit-strategy"):
        build_setup(strategy="sometimes")
    out = cli("hunt", "--guarantee", "consumer-no-loss")
    assert out.returncode == 2 and "--commit-strategy" in out.stderr
