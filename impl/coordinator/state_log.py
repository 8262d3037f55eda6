"""What both coordinators share: their state is records in an internal topic partition
they lead (`__consumer_offsets`, `__transaction_state`), and a change counts only once
the partition's high watermark covers it, so that a coordinator failover - the new
leader reading the log - can never forget something a client was told.

Records are JSON key/value pairs (a null value is a tombstone); the loader keeps the
last value per key, so the topics' compaction (impl/storage/cleaner.py) changes nothing
it reads.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from kafkaproof.impl.coordinator.ports import StatePartition
from kafkaproof.impl.protocol.errors import ErrorCode, KafkaError
from kafkaproof.impl.protocol.messages import Effects, TopicPartition
from kafkaproof.impl.protocol.records import SimpleRecord, encode_batch

Done = Callable[[ErrorCode, Effects], None]


def java_string_hash(s: str) -> int:
    h = 0
    for ch in s.encode("utf-16-be").decode("utf-16-be"):
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def partition_for(key: str, partitions: int) -> int:
    """Kafka's GroupMetadataManager / TransactionStateManager.partitionFor:
    Utils.abs(key.hashCode) % n."""
    return (java_string_hash(key) & 0x7FFFFFFF) % partitions


@dataclass
class PendingWrite:
    tp: TopicPartition
    required: int  # the HW must reach this
    id: int
    done: Done


class StateLog:
    def __init__(self, wake: Callable[[StatePartition, int, Effects], None], timeout_ms: int, timer_kind: str,
                 next_id: Callable[[], int]) -> None:
        self.wake = wake  # the broker: answer what waits on a partition that just grew
        self.timeout_ms = timeout_ms
        self.timer_kind = timer_kind
        self.next_id = next_id  # the owner's counter (the group coordinator numbers member ids with it too)
        self.leading: dict[TopicPartition, StatePartition] = {}  # partitions we lead, loaded
        self.pending: list[PendingWrite] = []

    @staticmethod
    def entries(p: StatePartition) -> Iterator[tuple[list, object, object]]:
        """(key, value, batch header) of every record in `p`, in log order."""
        for batch in p.log.iter_batches():
            if batch.header.is_control:
                yield ["marker"], None, batch.header
                continue
            for r in batch.records:
                yield json.loads(r.key), (json.loads(r.value) if r.value is not None else None), batch.header

    def write(self, tp: TopicPartition, entries: list[tuple[list, object]], now: int, fx: Effects, done: Done,
              producer: tuple[int, int] | None = None) -> None:
        """Append the records (transactional, for `producer` = (id, epoch)) and call `done`
        once they are committed, or with the error that stopped them."""
        p = self.leading[tp]
        records = [SimpleRecord(key=json.dumps(k).encode(), value=json.dumps(v).encode() if v is not None else None,
                                timestamp=now) for k, v in entries]  # (None: a tombstone)
        pid, epoch = producer or (-1, -1)
        data = encode_batch(records, producer_id=pid, producer_epoch=epoch, is_transactional=producer is not None)
        try:
            info, _ = p.append_as_leader(data, -1, now)
        except KafkaError as exc:
            if exc.code in (ErrorCode.INVALID_PRODUCER_EPOCH, ErrorCode.INVALID_TXN_STATE):
                done(exc.code, fx)  # the producer's own fault: it is fenced or out of step
            else:
                done(ErrorCode.NOT_COORDINATOR if exc.code == ErrorCode.NOT_LEADER_OR_FOLLOWER
                     else ErrorCode.COORDINATOR_NOT_AVAILABLE, fx)
            return
        w = PendingWrite(tp, info.last_offset + 1, self.next_id(), done)
        self.pending.append(w)
        fx.timer((self.timer_kind, w.id), now + self.timeout_ms)
        self.wake(p, now, fx)

    def on_hw(self, p: StatePartition, fx: Effects) -> None:
        for w in [w for w in self.pending if w.tp == p.tp and p.hw >= w.required]:
            self.pending.remove(w)
            w.done(ErrorCode.NONE, fx)

    def resign(self, tp: TopicPartition, fx: Effects) -> bool:
        """No longer the leader of `tp`: what waits on it fails. False if we did not lead it."""
        if self.leading.pop(tp, None) is None:
            return False
        for w in [w for w in self.pending if w.tp == tp]:
            self.pending.remove(w)
            w.done(ErrorCode.NOT_COORDINATOR, fx)
        return True

    def timed_out(self, write_id: int, fx: Effects) -> None:
        for w in [w for w in self.pending if w.id == write_id]:
            self.pending.remove(w)
            w.done(ErrorCode.REQUEST_TIMED_OUT, fx)
