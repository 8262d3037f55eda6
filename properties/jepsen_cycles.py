"""G0 and G1c for Jepsen's Kafka analysis (properties/jepsen_kafka.py): cycles in the
dependency graph of operations, searched with networkx - Elle's phenomena as Jepsen's
Kafka checker reports them, with the same witnesses (the operations around the cycle,
each step's dependency and micro-operation indexes)."""

from __future__ import annotations

from itertools import pairwise

import networkx as nx
from kafkaproof.properties.jepsen_kafka import send_value


def cycles(rows: list[tuple], by_index: dict, ww_deps: bool) -> dict[str, list[dict]]:
    """G0 and G1c (Adya's phenomena, as Elle names them) over the dependency graph of
    operations: ww when T1 sent the value directly before one T2 sent in a key's version
    order (only with `ww_deps`: Kafka's offsets order sends, not transactions), wr when
    T2 polled a value T1 sent. One witness per strongly connected component: its
    shortest cycle through the right kind of edge, each step explained."""
    writer: dict[tuple, int] = {}  # (key, value) -> the row of the last operation that sent it
    for i, (_, ss, _) in enumerate(rows):
        for k, _, v in ss:
            writer[(k, v)] = i
    ww: dict[tuple, tuple] = {}  # (row a, row b) -> (key, value, value'), the first that links them
    wr: dict[tuple, tuple] = {}  # (row a, row b) -> (key, value)
    if ww_deps:
        for k, names in by_index.items():
            for i in sorted(names)[1:]:
                a, b = writer.get((k, names.get(i - 1))), writer.get((k, names[i]))
                if a is not None and b is not None and a != b:
                    ww.setdefault((a, b), (k, names[i - 1], names[i]))
    for b, (_, _, ps) in enumerate(rows):
        for k, _, v in ps:
            a = writer.get((k, v))
            if a is not None and a != b:
                wr.setdefault((a, b), (k, v))
    out: dict[str, list[dict]] = {"G0": [], "G1c": []}
    graph = nx.DiGraph(_trimmed({*ww, *wr}))
    for component in nx.strongly_connected_components(graph):
        if len(component) < 2:
            continue
        sub = graph.subgraph(component)
        g0 = _shortest_cycle(nx.DiGraph([e for e in sub.edges if e in ww]), [e for e in sub.edges if e in ww])
        if g0:
            out["G0"].append(_witness("G0", g0, ww, wr, rows, prefer="ww"))
        g1c = _shortest_cycle(sub, [e for e in sub.edges if e in wr])
        if g1c:
            out["G1c"].append(_witness("G1c", g1c, ww, wr, rows, prefer="wr"))
    return out


def _trimmed(edges: set[tuple]) -> set[tuple]:
    """`edges` without those no cycle can use: repeatedly drop an edge whose source has
    no edge in or whose target has none out. A history without transactions (each
    operation only sends or only polls) has no cycle, and so nothing left for networkx."""
    while True:
        into, out_of = {b for _, b in edges}, {a for a, _ in edges}
        kept = {(a, b) for a, b in edges if a in into and b in out_of}
        if len(kept) == len(edges):
            return kept
        edges = kept


def _shortest_cycle(graph: nx.DiGraph, through: list[tuple]) -> list | None:
    """The shortest cycle of `graph` through one of the edges `through` (None if none):
    the edge (a, b), then the shortest path from b back to a."""
    best = None
    for a, b in sorted(through):
        try:
            back = nx.shortest_path(graph, b, a)
        except nx.NetworkXNoPath:
            continue
        if best is None or len(back) + 1 < len(best):
            best = [a, *back]
    return best


def _witness(name: str, cycle: list, ww: dict, wr: dict, rows: list, prefer: str) -> dict:
    """Jepsen's form: the operations around the cycle (the first repeated at the end) and
    the dependency behind each step (`prefer`'s kind where an edge has both)."""
    steps = []
    for a, b in pairwise(cycle):
        kind = "ww" if (a, b) in ww and (prefer == "ww" or (a, b) not in wr) else "wr"
        opa, opb = rows[a][0], rows[b][0]
        if kind == "ww":
            k, v1, v2 = ww[(a, b)]
            steps.append({"type": "ww", "key": k, "value": v1, "value'": v2,
                          "a-mop-index": _mop_index(opa, "send", k, v1), "b-mop-index": _mop_index(opb, "send", k, v2)})
        else:
            k, v = wr[(a, b)]
            steps.append({"type": "wr", "key": k, "value": v,
                          "a-mop-index": _mop_index(opa, "send", k, v), "b-mop-index": _mop_index(opb, "poll", k, v)})
    return {"type": name, "cycle": [rows[i][0] for i in cycle], "steps": steps}


def _mop_index(op: dict, f: str, k, v) -> int | None:
    """Which micro-operation of `op` sent (or polled) `v` to (from) `k`."""
    for i, mop in enumerate(op.get("value") or ()):
        if mop[0] != f:
            continue
        if f == "send" and mop[1] == k and send_value(mop[2])[1] == v:
            return i
        if f == "poll" and len(mop) > 1 and any(r[1] == v for r in (mop[1] or {}).get(k, ())):
            return i
    return None
