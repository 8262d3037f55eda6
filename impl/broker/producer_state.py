"""Idempotent-producer state of one partition (KIP-98).

Per producer id: its epoch and the last five batches' sequence ranges and offsets.
A retried batch that is already in the log is answered with its original offset
instead of being written twice; a batch that skips sequences is refused with
OUT_OF_ORDER_SEQUENCE_NUMBER. Leaders and followers both maintain it from the
batches they append, so a new leader deduplicates as the old one did; after a
truncation or a restart it is rebuilt from the log.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from kafkaproof.impl.protocol.errors import ErrorCode, KafkaError
from kafkaproof.impl.protocol.records import BatchHeader

# Kafka keeps metadata of the last 5 batches per producer (ProducerStateEntry.NUM_BATCHES_TO_RETAIN),
# which is why max.in.flight.requests.per.connection may be at most 5 with idempotence.
BATCHES_TO_RETAIN = 5


@dataclass(frozen=True)
class BatchMetadata:
    first_seq: int
    last_seq: int
    first_offset: int
    last_offset: int


@dataclass
class ProducerEntry:
    epoch: int
    batches: deque = field(default_factory=lambda: deque(maxlen=BATCHES_TO_RETAIN))

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else -1


class ProducerStateManager:
    def __init__(self) -> None:
        self.producers: dict[int, ProducerEntry] = {}

    def check(self, h: BatchHeader) -> BatchMetadata | None:
        """Before a leader appends: the original batch if `h` is a duplicate, None if it
        may be appended; raises KafkaError if it must be refused."""
        if h.producer_id < 0 or h.base_sequence < 0:
            return None
        entry = self.producers.get(h.producer_id)
        if entry is None or h.producer_epoch > entry.epoch:
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

    def update(self, h: BatchHeader) -> None:
        """After any append (leader or follower) of a batch with a producer id."""
        if h.producer_id < 0 or h.base_sequence < 0:
            return
        entry = self.producers.get(h.producer_id)
        if entry is None or h.producer_epoch > entry.epoch:
            entry = self.producers[h.producer_id] = ProducerEntry(h.producer_epoch)
        entry.batches.append(BatchMetadata(h.base_sequence, h.last_sequence, h.base_offset, h.last_offset))

    def rebuild(self, headers) -> None:
        self.producers.clear()
        for h in headers:
            self.update(h)
