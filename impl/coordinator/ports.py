"""What the coordinators need of the broker that hosts them, as structural types.

The coordinators write their state into partitions the broker leads, and read a few
broker settings; naming just that (instead of importing Broker, Partition and
BrokerConfig) keeps the broker -> coordinator dependency one way.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from kafkaproof.impl.protocol.messages import Effects, TopicPartition
from kafkaproof.impl.protocol.records import RecordBatch


class StateLogView(Protocol):
    def iter_batches(self) -> Iterator[RecordBatch]: ...

    def marker(self, header) -> tuple: ...


class StatePartition(Protocol):
    """A partition of `__consumer_offsets` or `__transaction_state` this broker leads."""

    tp: TopicPartition
    hw: int
    leader_epoch: int
    log: StateLogView

    def append_as_leader(self, data: bytes, required_acks: int, now: int) -> tuple: ...


class CoordinatorConfig(Protocol):
    """The server.properties keys the group and transaction coordinators read."""

    offsets_topic_partitions: int
    offsets_commit_timeout_ms: int
    group_initial_rebalance_delay_ms: int
    group_min_session_timeout_ms: int
    group_max_session_timeout_ms: int
    transaction_state_partitions: int
    transaction_max_timeout_ms: int
    transaction_cleanup_interval_ms: int
    transactional_id_expiration_ms: int
    transactional_id_cleanup_interval_ms: int
    legacy_transactions_without_kip890: bool


class CoordinatorHost(Protocol):
    """The broker the coordinators run in: the one way they reach beyond their partitions."""

    def complete_delayed(self, p: StatePartition, now: int, fx: Effects) -> None:
        """Answer what waits on a partition that just grew (the Purgatory)."""

    def allocate_producer_id(self) -> int: ...

    def leader_of(self, tp: TopicPartition) -> int: ...

    def next_correlation_id(self) -> int: ...
