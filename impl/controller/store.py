"""The metadata store the controller writes through: a linearizable, fenced store.

It stands for ZooKeeper (or the KRaft quorum): it is itself replicated and assumed
correct, so the simulator keeps it as one object. What matters to the protocol is
the fencing: only the holder of the current controller epoch may write, so a
controller that was paused or partitioned and lost its lease cannot overwrite its
successor's decisions (Kafka's controller epoch, KIP-143 / zkVersion checks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from kafkaproof.impl.protocol.messages import PartitionState, TopicPartition

PRODUCER_ID_BLOCK = 1000  # Kafka hands brokers producer ids in blocks of 1000 (KIP-730)


@dataclass
class ClusterMetadata:
    partitions: dict[TopicPartition, PartitionState] = field(default_factory=dict)
    broker_epochs: dict[int, int] = field(default_factory=dict)
    topic_configs: dict[str, dict[str, str]] = field(default_factory=dict)  # overrides, topics that have any
    next_broker_epoch: int = 1
    next_producer_id: int = 0
    acls: tuple = ()  # AclBindings (impl/broker/acl.py), sorted


class MetadataStore(Protocol):
    def acquire(self, node_id: int, now: int, lease_ms: int) -> int | None: ...
    def read(self) -> ClusterMetadata: ...
    def commit(self, controller_epoch: int, change: Callable[[ClusterMetadata], None]) -> bool: ...


class SimMetadataStore:
    def __init__(self) -> None:
        self.data = ClusterMetadata()
        self.controller_id = -1
        self.controller_epoch = 0
        self.lease_until = -1
        self.observers: list[Callable[[ClusterMetadata], None]] = []  # after each commit (trace validation)

    def acquire(self, node_id: int, now: int, lease_ms: int) -> int | None:
        """Become or stay the controller; returns the controller epoch, or None."""
        if self.controller_id == node_id and now <= self.lease_until:
            self.lease_until = now + lease_ms
            return self.controller_epoch
        if now > self.lease_until:
            self.controller_id, self.controller_epoch = node_id, self.controller_epoch + 1
            self.lease_until = now + lease_ms
            return self.controller_epoch
        return None

    def read(self) -> ClusterMetadata:
        return self.data

    def commit(self, controller_epoch: int, change: Callable[[ClusterMetadata], None]) -> bool:
        if controller_epoch != self.controller_epoch:
            return False
        change(self.data)
        for observe in self.observers:
            observe(self.data)
        return True
