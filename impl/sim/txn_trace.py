"""Trace validation for transactions: every marker a partition leader writes, and the
open transactions and last stable offset it keeps, judged by the model's rules
(model/transactions.py) after each step of the simulation.

After each broker step, for each partition that broker leads, the validator reads the
batches appended since its last look (from the start again after a truncation or a
restart) and replays them through the model's partition rule: a marker must be one the
model accepts given the producer's epoch and open transaction there (`marker_accepted`),
a transactional write opens its producer's transaction, a marker closes it. Then the
broker's own state must agree: the same open transactions (producer -> first offset)
and LSO = min(HW, first offset of the earliest open transaction, of a transaction
whose marker is not yet below the HW).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kafkaproof.impl.protocol.messages import TopicPartition
from kafkaproof.impl.protocol.records import parse_control_record
from kafkaproof.impl.sim.cluster import Cluster
from kafkaproof.model.transactions import marker_accepted


@dataclass
class _View:
    log_id: tuple[int, int]  # (the Log object, the leader epoch) the view was read under
    end: int = 0  # next offset to read
    epochs: dict[int, int] = field(default_factory=dict)  # producer -> epoch
    open: dict[int, int] = field(default_factory=dict)  # producer -> first offset of its open txn
    ended: list[tuple[int, int]] = field(default_factory=list)  # (first offset, marker offset)


@dataclass
class TxnTraceValidator:
    cluster: Cluster
    kip890: bool = True
    failures: list[str] = field(default_factory=list)
    markers_checked: int = 0
    _views: dict[tuple[int, TopicPartition], _View] = field(default_factory=dict)

    def attach(self) -> TxnTraceValidator:
        self.cluster.observers.append(self.on_step)
        return self

    def on_step(self, node: str) -> None:
        if not node.startswith("broker-") or node in self.cluster.down:
            return
        b = int(node.split("-")[1])
        for tp, p in sorted(self.cluster.broker(b).partitions.items()):
            if p.is_leader:
                self._check(b, tp, p)

    def _check(self, b: int, tp: TopicPartition, p) -> None:
        v = self._views.get((b, tp))
        if v is None or v.log_id != (id(p.log), p.leader_epoch) or p.log.log_end_offset < v.end:
            # A new process, a new term (it may have been truncated as a follower): read it all.
            v = self._views[(b, tp)] = _View((id(p.log), p.leader_epoch))
        for batch in p.log.iter_batches(start=v.end):
            h = batch.header
            v.end = h.next_offset
            if h.producer_id < 0:
                continue
            if h.is_control:
                state = (v.epochs.get(h.producer_id, -1), h.producer_id in v.open)
                if not marker_accepted(state, h.producer_epoch, self.kip890):
                    self.failures.append(f"t={self.cluster.now} broker-{b} {tp}@{h.base_offset}: a marker of"
                                         f" epoch {h.producer_epoch} over producer state (epoch, open) {state}")
                self.markers_checked += 1
                parse_control_record(batch.records[0])  # a marker must be a well-formed control record
                first = v.open.pop(h.producer_id, None)
                if first is not None:
                    v.ended.append((first, h.base_offset))
            elif h.is_transactional:
                v.open.setdefault(h.producer_id, h.base_offset)
            v.epochs[h.producer_id] = max(v.epochs.get(h.producer_id, -1), h.producer_epoch)
        impl_open = {pid: e.txn_first_offset for pid, e in p.producers.producers.items()
                     if e.txn_first_offset is not None}
        if impl_open != v.open:
            self.failures.append(f"t={self.cluster.now} broker-{b} {tp}: open transactions {impl_open},"
                                 f" the log says {v.open}")
        v.ended = [(f, m) for f, m in v.ended if m >= p.hw]
        lso = min([p.hw] + list(v.open.values()) + [f for f, _ in v.ended])
        if p.lso != lso:
            self.failures.append(f"t={self.cluster.now} broker-{b} {tp}: LSO {p.lso}, the model says {lso}")
