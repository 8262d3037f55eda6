"""The simulated network: a networkx directed graph of links between nodes.

Each link carries two planes (data and control, as Kafka's separate listeners) that
can be cut separately, in one direction or both. Links are FIFO like TCP unless a
reorder fault is on; drop and duplicate faults are per link and per plane.

Reordering is only what TCP allows: never within one connection. Under a reorder fault a
message may stall in a connection its sender then gives up (a request times out, the
client closes the connection and goes on over a new one, as Kafka's NetworkClient does):
it arrives `stall_ms` later, after what was sent since, which does not wait for it.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

import networkx as nx
from kafkaproof.impl.protocol.messages import CONTROL_PLANE, DATA_PLANE

PLANES = (DATA_PLANE, CONTROL_PLANE)
BASE_DELAY_MS = (1, 3)
STALL_FRACTION = 0.2  # of messages, under a reorder fault
# Longer than the clients' and followers' timeouts (request.timeout.ms and
# replica.socket.timeout.ms are 30 s): only a sender that gave up moves to a new connection.
STALL_MS = 31_000


class Network:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.graph = nx.DiGraph()
        # Each link's planes: the graph's own edge dicts, looked up without a networkx view
        # (every message asks; faults change them through the graph).
        self._links: dict[tuple[str, str], dict[str, bool]] = {}
        self._last_delivery: dict[tuple[str, str, str], int] = {}
        self.drop_rate = 0.0
        self.duplicate_rate = 0.0
        self.reorder = False
        self.stall_ms = STALL_MS
        self.extra_delay_ms = 0
        # A duplicate copy may arrive up to this much later: a request resent on a new
        # connection while the first copy sat in a stalled one (a proxy, a retransmission
        # queue), processed after everything the sender did since.
        self.late_ms = 0
        self.out_of_order = 0  # copies sent outside their link's FIFO order (the dangers count them)

    def add_node(self, node: str) -> None:
        if node in self.graph:
            return
        others = list(self.graph.nodes)
        self.graph.add_node(node)
        for other in others:
            for a, b in ((node, other), (other, node)):
                self.graph.add_edge(a, b, **{plane: True for plane in PLANES})
                self._links[a, b] = self.graph.edges[a, b]

    def link_up(self, src: str, dst: str, plane: str) -> bool:
        return src == dst or self._links[src, dst][plane]

    def cut(self, src: str, dst: str, planes: Iterable[str] = PLANES, both_ways: bool = True) -> None:
        for plane in planes:
            self.graph.edges[src, dst][plane] = False
            if both_ways:
                self.graph.edges[dst, src][plane] = False

    def partition(self, *groups: Iterable[str], planes: Iterable[str] = PLANES) -> None:
        """Cut every link between nodes of different groups; nodes in no group stay connected to all."""
        sets = [set(g) for g in groups]
        planes = tuple(planes)
        for a, b in self.graph.edges:
            ga = next((i for i, s in enumerate(sets) if a in s), None)
            gb = next((i for i, s in enumerate(sets) if b in s), None)
            if ga is not None and gb is not None and ga != gb:
                for plane in planes:
                    self.graph.edges[a, b][plane] = False

    def isolate(self, node: str, planes: Iterable[str] = PLANES) -> None:
        for other in list(self.graph.nodes):
            if other != node:
                self.cut(node, other, planes)

    def heal_node(self, node: str) -> None:
        """Every link to and from `node` up again; other cuts and losses stay."""
        for a, b in self.graph.edges:
            if node in (a, b):
                for plane in PLANES:
                    self.graph.edges[a, b][plane] = True

    def heal(self) -> None:
        for a, b in self.graph.edges:
            for plane in PLANES:
                self.graph.edges[a, b][plane] = True
        self.drop_rate = self.duplicate_rate = 0.0
        self.reorder = False
        self.stall_ms = STALL_MS
        self.extra_delay_ms = 0
        self.late_ms = 0

    def components(self, plane: str = DATA_PLANE) -> list[set[str]]:
        """Groups of nodes that can reach each other both ways on `plane`."""
        up = nx.DiGraph((a, b) for a, b, d in self.graph.edges(data=True) if d[plane])
        up.add_nodes_from(self.graph.nodes)
        return sorted((set(c) for c in nx.strongly_connected_components(up)), key=lambda c: sorted(c))

    def arrivals(self, src: str, dst: str, plane: str, now: int) -> list[int]:
        """When copies of a message sent now arrive: [] lost, [t] normal, [t1, t2] duplicated."""
        if not self.link_up(src, dst, plane):
            return []
        if self.drop_rate and self.rng.random() < self.drop_rate:
            return []
        copies = 2 if self.duplicate_rate and self.rng.random() < self.duplicate_rate else 1
        out = []
        for copy in range(copies):
            t = now + self.rng.randrange(BASE_DELAY_MS[0], BASE_DELAY_MS[1] + 1) + self.extra_delay_ms  # (randint's draw)
            if copy and self.late_ms:
                out.append(t + self.rng.randint(0, self.late_ms))  # outside the FIFO order
                self.out_of_order += 1
                continue
            if self.reorder and self.rng.random() < STALL_FRACTION:
                out.append(t + self.stall_ms)  # stalled in an abandoned connection: outside the FIFO
                self.out_of_order += 1
                continue
            channel = (src, dst, plane)
            t = max(t, self._last_delivery.get(channel, 0))  # FIFO, like a TCP connection
            self._last_delivery[channel] = t
            out.append(t)
        return out
