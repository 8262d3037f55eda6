"""One replica of one partition on one broker: leader or follower.

Leader side: log end offset (LEO), high watermark (HW = min LEO over the ISR, never
decreasing), follower progress learnt from their fetch offsets, ISR shrink/expand
proposals. Follower side: where to truncate when following a new leader (KIP-101
epochs, KIP-279's fix, or the legacy truncate-to-HW), and how to apply fetched data.
The broker moves messages; this class decides.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kafkaproof.impl.broker import topic_config
from kafkaproof.impl.broker.config import BrokerConfig
from kafkaproof.impl.broker.producer_state import BatchMetadata, CompletedTxn, ProducerStateManager
from kafkaproof.impl.protocol.errors import ErrorCode, KafkaError
from kafkaproof.impl.protocol.messages import NO_LEADER, PartitionState, TopicPartition
from kafkaproof.impl.protocol.records import ControlRecordType, control_batch, parse_header
from kafkaproof.impl.storage.epoch_cache import UNDEFINED_EPOCH
from kafkaproof.impl.storage.log import AppendInfo, Log
from kafkaproof.impl.storage.txn_index import AbortedTxn


@dataclass
class FollowerProgress:
    """What the leader knows of a follower (Kafka's ReplicaState)."""

    leo: int = -1  # unknown until it fetches
    last_caught_up_ms: int = 0
    last_fetch_ms: int = 0
    last_fetch_leader_leo: int = 0


class Partition:
    # Called with the partition after its role, high watermark or log end changed: the
    # simulator's invariants and danger events look at what a step changed instead of at
    # every partition (a hundred on a broker with the internal topics) after every step.
    watch: Callable[[Partition], None] | None = None

    def changed(self) -> None:
        if self.watch is not None:
            self.watch(self)

    def __init__(self, tp: TopicPartition, broker_id: int, log: Log, config: BrokerConfig, hw: int) -> None:
        self.tp = tp
        self.broker_id = broker_id
        self.log = log
        self.config = config
        self.leader = NO_LEADER
        self.leader_epoch = -1
        self.partition_epoch = -1
        self.isr: tuple[int, ...] = ()
        self.replicas: tuple[int, ...] = ()
        self.hw = min(hw, log.log_end_offset)
        self.followers: dict[int, FollowerProgress] = {}
        self.pending_isr: tuple[int, ...] | None = None  # an AlterPartition in flight
        self.pending_since = 0
        self.min_insync_replicas = config.min_insync_replicas  # the topic's, once configured
        self.strict_min_isr = config.eligible_leader_replicas
        self.producers = ProducerStateManager()
        self.unreplicated: list[CompletedTxn] = []  # ended, but the marker is not below the HW yet
        self._rebuild_producers()

    def _rebuild_producers(self) -> None:
        """Producer state, open transactions and the aborted-transaction index, from the log."""
        done = self.producers.rebuild((h, self.log.marker(h) if h.is_control else None)
                                      for h in self.log.batch_headers())
        self.log.rewrite_aborted([AbortedTxn(t.producer_id, t.first_offset, t.marker_offset) for t in done if t.aborted])
        self.unreplicated = [t for t in done if t.marker_offset >= self.hw]

    def _note_appended(self, headers, marker_of) -> None:
        for h in headers:
            txn = self.producers.update(h, marker_of(h) if h.is_control else None)
            if txn is not None:
                if txn.aborted:
                    self.log.append_aborted(AbortedTxn(txn.producer_id, txn.first_offset, txn.marker_offset,
                                                       self.lso))
                self.unreplicated.append(txn)

    @property
    def lso(self) -> int:
        """The last stable offset: read_committed consumers read below it. The HW, or the
        first offset of a transaction still open, or ended by a marker not yet replicated
        (Kafka's firstUnstableOffset: until then its outcome could still be lost)."""
        lso = self.hw
        if self.unreplicated:
            self.unreplicated = [t for t in self.unreplicated if t.marker_offset >= lso]
            lso = min([lso] + [t.first_offset for t in self.unreplicated])
        first = self.producers.first_unstable_offset()
        return lso if first is None or first >= lso else first

    def configure(self, config: BrokerConfig, overrides: dict[str, str]) -> None:
        """The broker's settings with the topic's overrides (impl/broker/topic_config.py)."""
        self.log.config = topic_config.log_config(config.log, overrides)
        self.min_insync_replicas = topic_config.value(overrides, "min.insync.replicas", config.min_insync_replicas)

    # -- role changes ---------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        return self.leader == self.broker_id

    def is_newer(self, st: PartitionState) -> bool:
        return (st.leader_epoch, st.partition_epoch) > (self.leader_epoch, self.partition_epoch)

    def _adopt(self, st: PartitionState) -> None:
        self.leader, self.leader_epoch, self.isr = st.leader, st.leader_epoch, st.isr
        self.replicas, self.partition_epoch = st.replicas, st.partition_epoch
        self.pending_isr = None
        self.changed()

    def make_leader(self, st: PartitionState, now: int) -> None:
        new_term = st.leader_epoch != self.leader_epoch or not self.is_leader
        self._adopt(st)
        if new_term:
            # Followers start "caught up now", so a new leader does not shrink the ISR at once.
            self.followers = {r: FollowerProgress(last_caught_up_ms=now, last_fetch_ms=now)
                              for r in st.replicas if r != self.broker_id}
            self.log.epochs.assign(st.leader_epoch, self.log.log_end_offset)
        self.maybe_advance_hw()

    def make_follower(self, st: PartitionState) -> None:
        self._adopt(st)
        self.followers = {}
        if self.config.legacy_truncate_to_hw:
            # Pre-KIP-101: trust the local HW, drop the rest. Loses committed data when
            # the HW was stale (the follower had fetched but not yet learnt the new HW).
            self.truncate_to(self.hw)

    def update_isr(self, st: PartitionState) -> None:
        """Same leader epoch, new ISR (a committed AlterPartition) or replica set (a
        reassignment growing or shrinking it)."""
        self.isr, self.partition_epoch, self.pending_isr = st.isr, st.partition_epoch, None
        self.replicas = st.replicas
        self.maybe_advance_hw()

    # -- leader: appends ------------------------------------------------------------------

    def append_as_leader(self, data: bytes, acks: int, now: int) -> tuple[AppendInfo | None, BatchMetadata | None]:
        """(append info, None) or (None, original batch) for a duplicate; raises KafkaError."""
        if not self.is_leader:
            raise KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER, f"broker {self.broker_id} does not lead {self.tp}")
        if acks == -1 and len(self.isr) < self.min_insync_replicas:
            raise KafkaError(ErrorCode.NOT_ENOUGH_REPLICAS,
                             f"ISR {list(self.isr)} is smaller than min.insync.replicas={self.min_insync_replicas}")
        header = parse_header(data)
        if header.is_control:
            raise KafkaError(ErrorCode.INVALID_RECORD, "clients may not write control batches")
        duplicate = self.producers.check(header)
        if duplicate is not None:
            return None, duplicate
        info = self.log.append_as_leader(data, self.leader_epoch, now)
        self.changed()
        self._note_appended(info.headers, None)
        self.maybe_advance_hw()
        return info, None

    def append_marker(self, producer_id: int, epoch: int, coordinator_epoch: int, commit: bool,
                      now: int, tv2: bool = True) -> AppendInfo:
        """Write a COMMIT or ABORT marker for the coordinator (WriteTxnMarkers); raises KafkaError."""
        if not self.is_leader:
            raise KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER, f"broker {self.broker_id} does not lead {self.tp}")
        bumped = tv2 and not self.config.legacy_transactions_without_kip890
        self.producers.check_marker(producer_id, epoch, coordinator_epoch, bumped)
        kind = ControlRecordType.COMMIT if commit else ControlRecordType.ABORT
        data = control_batch(kind, producer_id=producer_id, producer_epoch=epoch,
                             coordinator_epoch=coordinator_epoch, timestamp=now)
        info = self.log.append_as_leader(data, self.leader_epoch, now)
        self.changed()
        self._note_appended(info.headers, lambda h: (kind, coordinator_epoch))
        self.maybe_advance_hw()
        return info

    def enough_replicas_after_append(self) -> bool:
        return len(self.isr) >= self.min_insync_replicas

    # -- leader: followers, HW and ISR ----------------------------------------------------

    @property
    def maximal_isr(self) -> tuple[int, ...]:
        """ISR for HW purposes: while an expansion is pending, count the new member too
        (KIP-497: the HW must not depend on an ISR change the controller may reject)."""
        if self.pending_isr is None:
            return self.isr
        return tuple(sorted(set(self.isr) | set(self.pending_isr)))

    def maybe_advance_hw(self) -> bool:
        if not self.is_leader:
            return False
        leos = [self.log.log_end_offset]
        for r in self.maximal_isr:
            if r != self.broker_id:
                progress = self.followers.get(r)
                leos.append(progress.leo if progress else -1)
        new_hw = min(leos)
        if self.strict_min_isr and len(self.isr) < self.min_insync_replicas:
            return False  # KIP-966: the HW waits for min.insync.replicas in the ISR
        if new_hw > self.hw:
            self.hw = new_hw
            self.changed()
            return True
        return False

    def on_follower_fetch(self, replica: int, fetch_offset: int, now: int) -> bool:
        """Record a follower's position (Kafka's updateFetchState). Returns True if the HW moved."""
        p = self.followers.setdefault(replica, FollowerProgress(last_caught_up_ms=now))
        leader_leo = self.log.log_end_offset
        if fetch_offset >= leader_leo:
            p.last_caught_up_ms = max(p.last_caught_up_ms, now)
        elif fetch_offset >= p.last_fetch_leader_leo:
            p.last_caught_up_ms = max(p.last_caught_up_ms, p.last_fetch_ms)
        p.leo, p.last_fetch_ms, p.last_fetch_leader_leo = fetch_offset, now, leader_leo
        return self.maybe_advance_hw()

    def isr_to_propose(self, now: int, shrink: bool = True) -> tuple[int, ...] | None:
        """A new ISR to send to the controller, or None. One change in flight at a time.
        Kafka expands on follower fetches and shrinks from a periodic task (`shrink`)."""
        if not self.is_leader or self.pending_isr is not None:
            return None
        lag = self.config.replica_lag_time_max_ms
        out = {r for r in self.isr if r != self.broker_id
               and now - self.followers.get(r, FollowerProgress()).last_caught_up_ms > lag} if shrink else set()
        epoch_start = self.log.epochs.entries[-1][1] if self.log.epochs.entries else 0
        join = {r for r, p in self.followers.items()
                if r not in self.isr and r in self.replicas and p.leo >= self.hw and p.leo >= epoch_start
                and now - p.last_caught_up_ms <= lag}
        if not out and not join:
            return None
        return tuple(sorted((set(self.isr) - out) | join))

    # -- follower: truncation and appends --------------------------------------------------

    def truncation_target(self, leader_epoch: int, leader_end: int) -> tuple[int, bool]:
        """Where to truncate, given the leader's answer to OffsetsForLeaderEpoch for our
        latest epoch (largest epoch <= ours it knows, where that epoch ends there), and
        whether the logs then agree or we must ask again (AbstractFetcherThread's
        getOffsetTruncationState)."""
        leo = self.log.log_end_offset
        if leader_epoch == UNDEFINED_EPOCH:
            return min(self.hw, leo), True  # no common epoch known: fall back to the HW
        if self.config.legacy_kip101_without_kip279:
            # KIP-101 alone: trust the leader's end offset, even when it answered for an
            # older epoch than ours, which can keep a divergent suffix (KIP-279's case).
            return min(leader_end, leo), True
        ours_epoch, ours_end = self.log.epochs.end_offset_for(leader_epoch, leo)
        if ours_epoch == leader_epoch:
            return min(leader_end, ours_end, leo), True
        # We never wrote the epoch the leader answered for: cut to the end of our largest
        # smaller epoch and ask again with what is then our latest (KIP-279).
        target = min(ours_end, leo) if ours_end >= 0 else leo
        return target, target == leo

    def truncate_to(self, offset: int) -> int:
        dropped = self.log.truncate_to(offset)
        if dropped:
            self.hw = min(self.hw, self.log.log_end_offset)
            self._rebuild_producers()
            self.changed()
        return dropped

    def append_as_follower(self, data: bytes, leader_hw: int, now: int) -> None:
        if data:
            info = self.log.append_as_follower(data, now)
            self._note_appended(info.headers, self.log.marker)
        self.hw = max(self.hw, min(leader_hw, self.log.log_end_offset))
        self.changed()
