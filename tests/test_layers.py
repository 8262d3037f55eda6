"""The layering of DESIGN.md, read from the source with `ast`: no cycle between impl
packages, properties/ and model/ import nothing of impl/, and the sans-IO core never
imports a runtime (impl/sim, impl/net)."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"impl": "kafkaproof.impl", "model": "kafkaproof.model", "properties": "kafkaproof.properties",
           "kafkaproof": "kafkaproof"}
CORE = ("impl.protocol", "impl.storage", "impl.broker", "impl.controller", "impl.coordinator", "impl.client")
RUNTIMES = ("impl.sim", "impl.net")


def unit(module: str) -> str:
    """kafkaproof.impl.broker.partition -> impl.broker; kafkaproof.model.x -> model;
    kafkaproof.hunt -> cli (the CLI package)."""
    parts = module.split(".")[1:]
    if not parts:
        return "cli"
    if parts[0] == "impl":
        return "impl." + parts[1] if len(parts) > 1 and parts[1] != "config" else "impl.config"
    return parts[0] if parts[0] in ("model", "properties") else "cli"


def imports() -> list[tuple[str, str, str]]:
    """(importing unit, imported unit, file) for every kafkaproof import in the tree."""
    out = []
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            src = unit(".".join([FOLDERS[folder], *rel.parts]))
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else \
                    [a.name for a in node.names] if isinstance(node, ast.Import) else []
                for name in names:
                    if name.startswith("kafkaproof") and unit(name) != src:
                        out.append((src, unit(name), str(path.relative_to(ROOT))))
    return out


def cycles(edges) -> list[list[str]]:
    graph = nx.DiGraph((a, b) for a, b, _ in edges if a.startswith("impl.") and b.startswith("impl."))
    return sorted(sorted(c) for c in nx.simple_cycles(graph))


def test_the_import_walk_sees_the_tree():
    edges = imports()
    assert ("impl.broker", "impl.storage", "impl/broker/partition.py") in edges
    assert ("impl.sim", "impl.broker", "impl/sim/cluster.py") in edges


def test_no_cycle_between_impl_packages():
    assert cycles(imports()) == []


def test_the_cycle_search_would_see_one():
    edges = imports() + [("impl.storage", "impl.broker", "made-up.py")]
    assert ["impl.broker", "impl.storage"] in cycles(edges)


def test_properties_and_model_import_nothing_of_impl():
    bad = [(a, b, f) for a, b, f in imports() if a in ("properties", "model") and b.startswith("impl")]
    assert bad == []


def test_the_core_never_imports_a_runtime():
    bad = [(a, b, f) for a, b, f in imports() if a in CORE and b in RUNTIMES]
    assert bad == []


def test_impl_model_and_properties_never_import_the_cli():
    bad = [(a, b, f) for a, b, f in imports() if b == "cli" and a != "cli"]
    assert bad == []
