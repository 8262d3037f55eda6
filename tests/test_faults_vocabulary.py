"""One fault vocabulary (impl/sim/faults.py): no other module lists fault kinds, and the
CLI help, the README's table and the library's strategies say what it says."""

from __future__ import annotations

import ast
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from kafkaproof.impl.protocol.messages import DATA_PLANE, TopicPartition
from kafkaproof.impl.sim import faults
from kafkaproof.impl.sim.cluster import Cluster
from kafkaproof.impl.sim.network import STALL_MS, Network

from kafkaproof.strategies import KINDS, apply_schedule, fault_schedules

ROOT = Path(__file__).resolve().parent.parent
VOCABULARY = ROOT / "impl" / "sim" / "faults.py"


def kind_lists(tree: ast.AST) -> list[tuple[int, list[str]]]:
    """Literal tuples, lists and sets naming two or more fault kinds: a second definition."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            names = [e.value for e in node.elts if isinstance(e, ast.Constant) and e.value in faults.FAULTS]
            if len(names) >= 2:
                found.append((node.lineno, names))
    return found


def test_no_module_but_the_vocabulary_lists_fault_kinds():
    seen = {}
    for folder in ("impl", "kafkaproof", "model", "properties"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path != VOCABULARY:
                hits = kind_lists(ast.parse(path.read_text()))
                if hits:
                    seen[str(path.relative_to(ROOT))] = hits
    assert seen == {}


def test_the_scan_would_see_a_second_list():
    assert kind_lists(ast.parse('KINDS = ("crash", "power", "other")')) == [(1, ["crash", "power"])]


def test_the_cli_help_names_every_kind_as_the_vocabulary_does():
    out = subprocess.run([sys.executable, "-m", "kafkaproof", "check", "--help"], capture_output=True,
                         text=True, check=True).stdout
    flat = " ".join(out.split())
    for kind, f in faults.FAULTS.items():
        assert f"{kind}: {' '.join(f.does.split())}" in flat, kind


def test_the_readme_table_is_the_vocabulary():
    text = (ROOT / "README.md").read_text()
    [table] = re.findall(r"<!-- fault-table -->\n(.*?)\n<!-- /fault-table -->", text, re.S)
    assert table == faults.table_markdown()


def test_strategies_and_defaults_come_from_the_vocabulary():
    assert KINDS == faults.BY_DEFAULT
    assert set(faults.applicable(True, True)) == set(faults.FAULTS)
    assert "member" not in faults.applicable(False, True) and "zombie" not in faults.applicable(True, False)
    assert set(faults.defaults(False, False)) == set(faults.BY_DEFAULT)


@settings(max_examples=20)
@given(fault_schedules(max_faults=4, kinds=faults.CLUSTER))
def test_strategies_draw_only_vocabulary_kinds(schedule):
    assert all(kind in faults.CLUSTER for _, kind, _, _ in schedule)


def test_a_schedule_with_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="fault kind 'meteor'"):
        apply_schedule(Cluster(seed=1), [(0, "meteor", 0, 100)])


NEMESIS_NAME = {"crash": "crash", "power": "power-loss", "blackout": "power-loss", "partition": "partition",
                "isolate": "isolate", "cut": "cut", "pause": "pause", "drop": "lossy-network",
                "duplicate": "lossy-network", "reorder": "lossy-network", "late": "lossy-network", "clock": "clock-jump"}


@pytest.mark.parametrize("kind", faults.CLUSTER)
def test_every_cluster_kind_does_something_and_heals(kind):
    c = Cluster(seed=3)
    c.create_topic("t", 1, 3)
    c.run_for(2000)
    faults.inject(c, kind, c.rng, 1500, "broker-1")
    c.run_for(3000)
    names = [op.f for op in c.history.faults()]
    assert NEMESIS_NAME[kind] in names, names
    if kind in ("crash", "power", "blackout"):
        assert "restart" in names and not c.down
    elif kind not in ("pause", "clock"):
        assert "heal" in names


def test_application_kinds_need_their_application():
    """A member or zombie fault is the run's applications' to inject; a cluster without
    them says so instead of crashing a broker or doing nothing."""
    with pytest.raises(ValueError, match="needs a commit strategy"):
        faults.inject(Cluster(seed=1), "member", None, 100)
    c, struck = Cluster(seed=1), []
    c.create_topic("t", 1, 3)
    c.applications["member"] = lambda moment="any": struck.append(moment)
    faults.apply_fixed(c, [(c.now + 10, "member", -1, "committed")], TopicPartition("t", 0))
    c.run_for(20)
    assert struck == ["committed"]


def test_reorder_never_reorders_within_a_connection_only_past_an_abandoned_one():
    """TCP delivers one connection in order; a message overtaken by later ones is one that
    stalled in a connection its sender gave up (it arrives STALL_MS late)."""
    net = Network(random.Random(1))
    net.add_node("a")
    net.add_node("b")
    net.reorder = True
    sent = [(t, net.arrivals("a", "b", DATA_PLANE, t)[0]) for t in range(0, 3000, 5)]
    overtaken = [(t, at) for i, (t, at) in enumerate(sent) if any(later < at for _, later in sent[i + 1:])]
    assert overtaken, "the fault must reorder something"
    assert all(at - t >= STALL_MS for t, at in overtaken), overtaken[:3]
    in_order = [at for t, at in sent if (t, at) not in overtaken]
    assert in_order == sorted(in_order)


def test_a_control_plane_cut_leaves_a_broker_registered_but_unaware_of_leader_changes():
    """`cut` with plane=control loses the controller's requests to one broker, one way: its
    heartbeats still arrive (it is not fenced, it stays in the ISR) while it learns no
    leader change. A heal of one replica brings only its links back."""
    c = Cluster(seed=3)
    tp = TopicPartition("t", 0)
    c.create_topic("t", 1, 3)
    c.run_for(2000)
    stale, behind = c.state(tp).replicas[2], c.state(tp).replicas[1]
    faults.apply_fixed(c, [(10, "cut", 2, "control"), (20, "crash", 0)], tp)  # (from now)
    c.run_for(15_000)  # past broker.session.timeout.ms: the crashed leader is fenced
    st = c.state(tp)
    assert st.leader_epoch == 1 and stale in st.isr  # elected anew, the cut broker still a member
    assert c.broker(stale).partitions[tp].leader_epoch == 0  # ... which never heard of it
    faults.apply_fixed(c, [(10, "cut", 1), (20, "heal", 2)], tp)
    c.run_for(100)
    net, controller = c.network, f"controller-{c.controller_ids[0]}"
    assert net.link_up(controller, f"broker-{stale}", "control")
    first = c.state(tp).replicas[0]
    assert not net.link_up(f"broker-{behind}", f"broker-{first}", DATA_PLANE)  # the other cut stays
    assert [op.value for op in c.history.faults() if op.f == "heal"] == [f"broker-{stale}'s links up"]


def test_random_faults_never_draw_a_fixed_schedule_only_parameter():
    """The control plane of `cut` is for fixed schedules: Hypothesis's schedules draw no
    value for it (a parameter added so left every campaign's draws as they were)."""
    assert not faults.FAULTS["cut"].param("plane").drawn
    from kafkaproof.impl.engine.hypothesis_runs import schedules
    from kafkaproof.impl.engine.setup import build_setup

    cuts = []

    @settings(max_examples=50, database=None)
    @given(schedules(build_setup(faults="partition")))
    def never_control(schedule):
        cuts.extend(step for step in schedule if step[1] == "cut")

    never_control()
    assert cuts and all(len(step) == 3 for step in cuts)  # cuts were drawn, none with a plane
