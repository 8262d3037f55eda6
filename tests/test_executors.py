"""Campaigns on a Dask cluster (kafkaproof/executors.py): the same verdicts, first
violating seeds and counterexample files as on one local process; a worker killed
mid-campaign costs no run; an unreachable scheduler or workers running other code are
refused before any run starts."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from distributed import Client, LocalCluster
from kafkaproof.impl.engine import build_setup, run_check
from kafkaproof.impl.engine.campaign import CONFIGS, guarantee_table
from kafkaproof.impl.engine.executors import LocalPool

from kafkaproof import cli, executors
from kafkaproof.executors import fingerprint, opened

CHECK = ["check", "--set", "enable.idempotence=false", "--set", "acks=1", "--faults", "drop,duplicate,partition",
         "--seconds", "10", "--runs", "4", "--no-verify",
         "--seed", "5", "--json"]


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=50) as c:
        yield c


def _check(capsys, out: Path, *more: str) -> dict:
    code = cli.main([*CHECK, "--out", str(out), *more])
    doc = json.loads(capsys.readouterr().out)
    for row in doc["guarantees"].values():  # the file's name, without the directory
        row["counterexample"] = row["counterexample"] and Path(row["counterexample"]).name
    return {"exit": code, **doc}


def test_a_dask_cluster_gives_the_answers_of_one_process(cluster, capsys, tmp_path):
    alone = _check(capsys, tmp_path / "alone")
    on_dask = _check(capsys, tmp_path / "dask", "--scheduler", cluster.scheduler_address)
    assert on_dask == alone
    assert any(row["violated"] for row in alone["guarantees"].values())  # there is a first violating seed to agree on
    files = sorted(p.name for p in (tmp_path / "alone").iterdir())
    assert files and files == sorted(p.name for p in (tmp_path / "dask").iterdir())
    for name in files:
        assert (tmp_path / "alone" / name).read_bytes() == (tmp_path / "dask" / name).read_bytes()


def test_a_campaign_table_is_the_same_on_dask(cluster):
    rows = {"acks=1": CONFIGS["acks=1"]._replace(seconds=10)}
    local = guarantee_table(4, ("durability", "exactly-once"), rows)
    with opened(cluster.scheduler_address) as executor:
        remote = guarantee_table(4, ("durability", "exactly-once"), rows, executor=executor)
    assert remote == local and local["acks=1"]["runs"] == 4


def test_a_worker_killed_mid_campaign_loses_no_run(cluster):
    setup = build_setup(sets=["acks=1"], faults="crash,partition", seconds=10)
    expected = run_check(setup, 4, 11)
    with Client(cluster.scheduler_address, set_as_default=False) as client:
        victim = next(iter(client.run(os.getpid).values()))
    finished = []

    def progress() -> None:
        finished.append(1)
        if len(finished) == 1:
            os.kill(victim, signal.SIGKILL)  # its nanny starts another; its runs go elsewhere

    with opened(cluster.scheduler_address) as executor:
        got = run_check(setup, 4, 11, progress=progress, executor=executor)
    assert len(finished) == 4
    assert [(r.seed, r.violations, r.ops, r.dangers) for r in got] == \
        [(r.seed, r.violations, r.ops, r.dangers) for r in expected]


def test_a_killed_local_worker_is_replaced_and_loses_no_run():
    setup = build_setup(sets=["acks=1"], faults="crash", seconds=10)
    expected = run_check(setup, 4, 3)
    with LocalPool(2) as pool:
        done = []

        def progress() -> None:
            done.append(1)
            if len(done) == 1:
                os.kill(next(iter(pool.pool._processes)), signal.SIGKILL)

        got = run_check(setup, 4, 3, progress=progress, executor=pool)
    assert [(r.seed, r.violations, r.ops) for r in got] == [(r.seed, r.violations, r.ops) for r in expected]
    assert len(done) == 4


def test_an_unreachable_scheduler_is_refused_before_any_run(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(executors, "CONNECT_TIMEOUT_S", 2)
    code = cli.main(["check", "--runs", "2", "--out", str(tmp_path), "--scheduler", "tcp://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in err
    assert not any(tmp_path.iterdir())


def test_workers_running_another_kafkaproof_are_refused(tmp_path, capsys):
    """A worker importing a copy of kafkaproof with one line changed: its fingerprint
    differs, and the command stops before a run."""
    import kafkaproof
    from kafkaproof import impl, model, properties

    copy = tmp_path / "other" / "kafkaproof"
    shutil.copytree(Path(kafkaproof.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    for package in (impl, model, properties):  # the rest of the package, as it is here
        (copy / package.__name__.rsplit(".", 1)[1]).symlink_to(Path(package.__file__).parent)
    (copy / "__init__.py").write_text((copy / "__init__.py").read_text() + "\n# a change\n")
    with LocalCluster(n_workers=0, processes=True, dashboard_address=":0", silence_logs=50) as c:
        env = {**os.environ, "PYTHONPATH": str(tmp_path / "other")}
        worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", c.scheduler_address,
                                   "--nthreads", "1", "--no-dashboard"], env=env, cwd=tmp_path,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            code = cli.main(["check", "--runs", "1", "--seconds", "10", "--no-verify", "--out", str(tmp_path / "out"),
                             "--scheduler", c.scheduler_address])
        finally:
            worker.terminate()
            worker.wait(timeout=30)
    err = capsys.readouterr().err
    assert code == 2 and "run another kafkaproof" in err and fingerprint() in err, err
    assert not (tmp_path / "out").exists()



def test_counterexamples_of_one_signature_are_saved_once(tmp_path):
    """Two seeds breaking availability by the same schedule save one file (whichever
    worker or hunt found them); another broker crashed is another file."""
    from dataclasses import replace

    from kafkaproof.impl.engine import run_one

    from kafkaproof.counterexample import load, save

    setup = build_setup(sets=["min.insync.replicas=3"], faults="crash")
    paths = []
    for schedule, seed in [(((5000, "crash", 1),), 1), (((5000, "crash", 1),), 2),
                           (((5000, "crash", 2),), 1)]:
        this = replace(setup, schedule=schedule)
        result = run_one(this, seed, keep_history=True)
        assert result.violations["availability"], schedule
        paths.append(save(tmp_path, this, result, "availability", with_fix=False))
    assert paths[0] == paths[1] and paths[2] != paths[0]
    assert sorted(tmp_path.iterdir()) == sorted({paths[0], paths[2]})
    assert load(paths[0])[1] == 1  # the first one found is kept


def test_an_installed_layout_has_the_editable_fingerprint(tmp_path):
    """Installed, impl/, model/ and properties/ sit inside kafkaproof/; in this checkout
    beside it: the same code must not be refused for its layout."""
    import kafkaproof
    from kafkaproof import impl, model, properties

    copy = tmp_path / "kafkaproof"
    shutil.copytree(Path(kafkaproof.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    for package in (impl, model, properties):
        shutil.copytree(Path(package.__file__).parent, copy / package.__name__.rsplit(".", 1)[1],
                        ignore=shutil.ignore_patterns("__pycache__"))
    out = subprocess.run([sys.executable, "-c", "from kafkaproof.executors import fingerprint; print(fingerprint())"],
                         env={**os.environ, "PYTHONPATH": str(tmp_path)}, cwd=tmp_path, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == fingerprint()


# -- the explorer's frontier, sharded across an executor -------------------------------------

def _figures(result) -> tuple:
    return (result.distinct, result.transitions, result.depth, result.complete, result.invariant, result.detail,
            [(action, tuple(state)) for action, state in result.trace])


def test_a_sharded_search_gives_the_figures_and_trace_of_one_process(monkeypatch):
    from kafkaproof.model import explore as explorer
    from kafkaproof.model.groups import GroupBounds, GroupModel
    from kafkaproof.model.replication import Bounds, Model

    monkeypatch.setattr(explorer, "CHUNK", 16)  # many chunks per level, merged across both workers
    searches = [
        (lambda: Model("kip320", Bounds(2, 2, 3)), True, None),  # holds
        (lambda: Model("legacy-hw", Bounds(3, 2, 3)), True, None),  # a violation and its shortest trace
        (lambda: Model("kip320", Bounds(3, 1, 2, power_loss=True, min_isr=2)), False, None),
        (lambda: Model("kip320", Bounds(2, 2, 3)), True, 300),  # cut by max_states
        (lambda: explorer.restrict(GroupModel("before", GroupBounds(2, 2, 2)), {"NoLoss"}), False, None),
    ]
    with LocalPool(2) as pool:
        for build, symmetry, most in searches:
            alone = explorer.explore(build(), symmetry=symmetry, max_states=most)
            sharded = explorer.explore(build(), symmetry=symmetry, max_states=most, executor=pool)
            assert _figures(sharded) == _figures(alone)
    assert {explorer.explore(build(), symmetry=symmetry).holds for build, symmetry, _ in searches} == {True, False}


def test_explore_on_dask_prints_what_one_process_prints(cluster, capsys):
    def explore_json(*more: str) -> dict:
        code = cli.main(["explore", "--variant", "kip279", "--replicas", "3", "--json", *more])
        doc = json.loads(capsys.readouterr().out)
        doc.pop("seconds")
        return {"exit": code, **doc}

    alone = explore_json()
    assert alone["exit"] == 1 and alone["invariant"] == "StrongIsr" and alone["trace"]
    assert explore_json("--scheduler", cluster.scheduler_address) == alone
