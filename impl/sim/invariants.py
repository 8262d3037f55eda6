"""Invariants every simulated run checks after every step of a broker (TigerBeetle-style:
a violation stops the run where it happens, not at the verdict): a leader's high
watermark never goes back within its epoch while its process lives (a restarted leader
starts again from its checkpointed HW, as Kafka's does), and a partition has one leader
per epoch (the model's leader-epoch fencing, KIP-101/320). A partition watcher (Cluster):
it only reads, so saved runs replay unchanged."""

from __future__ import annotations


class LeaderInvariants:
    def __init__(self, cluster) -> None:
        self.c = cluster
        self.hw: dict[tuple, int] = {}  # (broker, incarnation, tp, epoch) -> HW last seen
        self.leader: dict[tuple, int] = {}  # (tp, epoch) -> the broker leading it

    def __call__(self, node: str, partitions: list) -> None:
        """After a broker's step, with its partitions whose role, HW or log end changed."""
        if node in self.c.down:
            return
        b = int(node.split("-")[1])
        for p in partitions:
            tp = p.tp
            if not p.is_leader:
                continue
            key = (b, self.c.incarnation.get(node, 0), tp, p.leader_epoch)
            assert p.hw >= self.hw.get(key, 0), f"HW of {tp} went back on leader {b} in epoch {p.leader_epoch}"
            self.hw[key] = p.hw
            first = self.leader.setdefault((tp, p.leader_epoch), b)
            assert first == b, f"two leaders ({first}, {b}) of {tp} in epoch {p.leader_epoch}"
