"""Idempotent and transactional producer state of one partition (KIP-98).

Per producer id: its epoch, the last five batches' sequence ranges and offsets, and the
first offset of its ongoing transaction here. A retried batch that is already in the
log is answered with its original offset instead of being written twice; a batch that
skips sequences is refused with OUT_OF_ORDER_SEQUENCE_NUMBER. A transaction begins here
with the producer's first transactional batch and ends with a COMMIT or ABORT marker.
Leaders and followers both maintain it from the batches they append, so a new leader
deduplicates and knows the open transactions as the old one did; after a truncation or
a restart it is rebuilt from the log.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from kafkaproof.impl.protocol.errors import ErrorCode, KafkaError
from kafkaproof.impl.protocol.records import BatchHeader, ControlRecordType

# Kafka keeps metadata of the last 5 batches per producer (ProducerStateEntry.NUM_BATCHES_TO_RETAIN),
# which is why max.in.flight.requests.per.connection may be at most 5 with idempotence.
BATCHES_TO_RETAIN = 5


@dataclass(frozen=True)
class BatchMetadata:
    first_seq: int
    last_seq: int
    first_offset: int
    last_offset: int


@dataclass(frozen=True)
class CompletedTxn:
    producer_id: int
    first_offset: int
    marker_offset: int
    aborted: bool


@dataclass
class ProducerEntry:
    epoch: int
    batches: deque = field(default_factory=lambda: deque(maxlen=BATCHES_TO_RETAIN))
    txn_first_offset: int | None = None  # the open transaction's first offset in this partition
    coordinator_epoch: int = -1

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else -1


class ProducerStateManager:
    def __init__(self) -> None:
        self.producers: dict[int, ProducerEntry] = {}

    def check(self, h: BatchHeader) -> BatchMetadata | None:
        """Before a leader appends: the original batch if `h` is a duplicate, None if it
        may be appended; raises KafkaError if it must be refused."""
        if h.producer_id < 0:
            return None
        entry = self.producers.get(h.producer_id)
        if entry is not None and entry.txn_first_offset is not None and not h.is_transactional:
            raise KafkaError(ErrorCode.INVALID_TXN_STATE,
                             f"producer {h.producer_id} wrote outside its open transaction")
        if h.base_sequence < 0:  # a coordinator's write for the producer (TxnOffsetCommit): epoch only
            if entry is not None and h.producer_epoch < entry.epoch:
                raise KafkaError(ErrorCode.INVALID_PRODUCER_EPOCH,
                                 f"producer {h.producer_id} epoch {h.producer_epoch} is older than {entry.epoch}")
            return None
        if entry is None or h.producer_epoch > entry.epoch:
            # A producer the leader does not know may start at any sequence (Kafka's
            # ProducerAppendInfo.checkSequence: retention may have removed its state).
            if h.base_sequence != 0 and entry is not None:
                raise KafkaError(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
                                 f"new epoch {h.producer_epoch} must start at sequence 0, got {h.base_sequence}")
            return None
        if h.producer_epoch < entry.epoch:
            raise KafkaError(ErrorCode.INVALID_PRODUCER_EPOCH,
                             f"producer {h.producer_id} epoch {h.producer_epoch} is older than {entry.epoch}")
        for b in entry.batches:
            if (b.first_seq, b.last_seq) == (h.base_sequence, h.last_sequence):
                return b
        expected = entry.last_seq + 1
        if h.base_sequence != expected:
            raise KafkaError(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
                             f"producer {h.producer_id}: expected sequence {expected}, got {h.base_sequence}")
        return None

    def in_transaction(self, producer_id: int, epoch: int) -> bool:
        entry = self.producers.get(producer_id)
        return entry is not None and entry.epoch == epoch and entry.txn_first_offset is not None

    def check_marker(self, producer_id: int, epoch: int, coordinator_epoch: int, bumped: bool) -> None:
        """Before a leader writes a transaction marker. With KIP-890's epoch bump (`bumped`)
        the coordinator writes every marker with an epoch above the transaction's data, so a
        marker whose epoch is not higher is a late duplicate from an earlier transaction,
        unless nothing is open (a retried marker, harmless). Before KIP-890 the marker
        carries the data's epoch and a late one cannot be told apart: it ends whatever
        transaction is open (Kafka's ProducerAppendInfo.checkProducerEpoch, TV2 vs TV0/1)."""
        entry = self.producers.get(producer_id)
        if entry is None:
            return
        if coordinator_epoch < entry.coordinator_epoch:
            raise KafkaError(ErrorCode.TRANSACTION_COORDINATOR_FENCED,
                             f"marker from coordinator epoch {coordinator_epoch} < {entry.coordinator_epoch}")
        stale = epoch <= entry.epoch if bumped else epoch < entry.epoch
        if stale and not (bumped and epoch == entry.epoch and entry.txn_first_offset is None):
            raise KafkaError(ErrorCode.INVALID_PRODUCER_EPOCH,
                             f"marker epoch {epoch} for producer {producer_id} is stale (current {entry.epoch})")

    def update(self, h: BatchHeader, marker: tuple[ControlRecordType, int] | None = None) -> CompletedTxn | None:
        """After any append (leader or follower) of a batch with a producer id; `marker` is
        (type, coordinator epoch) for a control batch. Returns the transaction a marker ends."""
        if h.producer_id < 0:
            return None
        entry = self.producers.get(h.producer_id)
        if entry is None or h.producer_epoch > entry.epoch:
            # A new epoch: sequences start again (the marker of a bumped epoch too).
            old = entry
            entry = self.producers[h.producer_id] = ProducerEntry(h.producer_epoch)
            if old is not None:
                entry.txn_first_offset, entry.coordinator_epoch = old.txn_first_offset, old.coordinator_epoch
        if h.is_control:
            if marker is None:
                return None
            kind, coordinator_epoch = marker
            entry.coordinator_epoch = max(entry.coordinator_epoch, coordinator_epoch)
            first, entry.txn_first_offset = entry.txn_first_offset, None
            if first is None:
                return None  # nothing open here: a marker without data changes nothing
            return CompletedTxn(h.producer_id, first, h.base_offset, kind == ControlRecordType.ABORT)
        if h.base_sequence >= 0:
            entry.batches.append(BatchMetadata(h.base_sequence, h.last_sequence, h.base_offset, h.last_offset))
        if h.is_transactional and entry.txn_first_offset is None:
            entry.txn_first_offset = h.base_offset
        return None

    def first_unstable_offset(self) -> int | None:
        """The first offset of the earliest open transaction (what bounds the LSO)."""
        return min((e.txn_first_offset for e in self.producers.values() if e.txn_first_offset is not None),
                   default=None)

    def rebuild(self, batches: Iterable[tuple[BatchHeader, tuple[ControlRecordType, int] | None]]) -> list[CompletedTxn]:
        """From the log: every (header, marker) in order. Returns the completed transactions."""
        self.producers.clear()
        done = []
        for h, marker in batches:
            txn = self.update(h, marker)
            if txn is not None:
                done.append(txn)
        return done
