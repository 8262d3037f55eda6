"""The transaction coordinator (KIP-98): transactional ids, producer epochs and the
two-phase commit of a transaction across partitions.

It lives in every broker and serves the transactional ids whose `__transaction_state`
partition that broker leads (`abs(transactional.id.hashCode()) % 50`). Each state change
is a record in that partition, answered once the high watermark covers it, so a new
leader rebuilds every transaction from the log and finishes what was half done.

A transaction: InitProducerId (a new epoch fences older instances of the same
transactional.id, and aborts what they left open) -> AddPartitionsToTxn /
AddOffsetsToTxn (Ongoing) -> EndTxn: PrepareCommit or PrepareAbort is written, the
producer is answered, and COMMIT / ABORT markers go to every partition of the
transaction; once all are written, CompleteCommit / CompleteAbort. An Ongoing
transaction older than its transaction.timeout.ms is aborted with a bumped epoch.

KIP-890 (the default): EndTxn bumps the epoch, markers carry the new epoch, and the
producer's next transaction uses it, so a late marker or a late write of an earlier
transaction is fenced at the partition; leaders verify a transaction's first write to
a partition with AddPartitionsToTxn(verify_only). `legacy.transactions.without.kip890`
turns both off, as Kafka was before 3.6/4.0 (KAFKA-17754, Jepsen's Bufstream report).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from kafkaproof.impl.coordinator.group import offsets_partition
from kafkaproof.impl.coordinator.ports import CoordinatorConfig, CoordinatorHost, StatePartition
from kafkaproof.impl.coordinator.state_log import StateLog, partition_for
from kafkaproof.impl.protocol import messages as m
from kafkaproof.impl.protocol.errors import ErrorCode
from kafkaproof.impl.protocol.messages import Effects, TopicPartition
from kafkaproof.impl.protocol.process import Dispatcher, handles

TXN_STATE_TOPIC = "__transaction_state"
EMPTY, ONGOING = "Empty", "Ongoing"
PREPARE_COMMIT, PREPARE_ABORT = "PrepareCommit", "PrepareAbort"
COMPLETE_COMMIT, COMPLETE_ABORT = "CompleteCommit", "CompleteAbort"
# Kafka's TransactionMarkerChannelManager: markers that fail are retried after a backoff;
# an unanswered one is given up after request.timeout.ms and sent again.
MARKER_RETRY_MS = 100
MARKER_TIMEOUT_MS = 30_000
WRITE_TIMEOUT_MS = 5000


@dataclass(frozen=True)
class Txn:
    transactional_id: str
    producer_id: int
    epoch: int
    timeout_ms: int
    state: str = EMPTY
    partitions: tuple[TopicPartition, ...] = ()
    started: int = -1  # when it became Ongoing (what transaction.timeout.ms counts from)
    prev_epoch: int = -1  # before the last bump: a retried EndTxn still carries it
    # KIP-890 part 2 (transaction version 2): this transaction ends with a bumped epoch.
    # Clients on EndTxn below v5 cannot learn a new epoch, so theirs end without one.
    tv2: bool = True
    # When it last changed (Kafka's txnLastUpdateTimestamp: what expiry counts from); not
    # compared, so a change written is still the change asked for.
    updated: int = field(default=-1, compare=False)

    def record(self) -> dict:
        return {"pid": self.producer_id, "epoch": self.epoch, "prev_epoch": self.prev_epoch, "tv2": self.tv2,
                "timeout": self.timeout_ms, "state": self.state, "started": self.started,
                "partitions": [list(tp) for tp in self.partitions], "updated": self.updated}

    @classmethod
    def from_record(cls, tid: str, r: dict, now: int) -> Txn:
        """(`now`: the change time of a record written before it was kept, so nothing
        expires at once after an upgrade)"""
        return cls(tid, r["pid"], r["epoch"], r["timeout"], r["state"],
                   tuple(TopicPartition(t, p) for t, p in r["partitions"]), r["started"], r["prev_epoch"],
                   r.get("tv2", True), r.get("updated", now))


@dataclass
class Markers:
    """The markers of one ending transaction still to be written."""

    txn: Txn
    left: set[TopicPartition] = field(default_factory=set)
    inflight: dict[int, TopicPartition] = field(default_factory=dict)  # correlation id -> partition
    nodes: dict[int, str] = field(default_factory=dict)  # correlation id -> the broker asked


class TransactionCoordinator(Dispatcher):
    def __init__(self, broker_id: int, config: CoordinatorConfig, host: CoordinatorHost) -> None:
        self.broker_id = broker_id
        self.config = config
        self.bump = not config.legacy_transactions_without_kip890
        self.host = host
        self._seq = 0
        self.log = StateLog(host.complete_delayed, WRITE_TIMEOUT_MS, "txn-write-timeout", self._next_id)
        self.txns: dict[str, Txn] = {}
        self.writing: set[str] = set()  # a state change is being written (Kafka's pendingState)
        self.markers: dict[str, Markers] = {}
        self.coordinator_epoch: dict[TopicPartition, int] = {}

    def _next_id(self) -> int:
        self._seq += 1
        return self._seq

    @handles(m.ListTransactionsRequest)
    def list_transactions(self, src: str, req: m.ListTransactionsRequest, now: int, fx: Effects) -> None:
        """The transactions this broker coordinates (an admin client asks every broker)."""
        fx.send(src, m.ListTransactionsResponse(req.correlation_id, tuple(
            (t.transactional_id, t.producer_id, t.state) for tid, t in sorted(self.txns.items())
            if self.tp_for(tid) in self.log.leading and (not req.states or t.state in req.states)
            and (not req.producer_ids or t.producer_id in req.producer_ids))))

    @handles(m.DescribeTransactionRequest)
    def describe_transaction(self, src: str, req: m.DescribeTransactionRequest, now: int, fx: Effects) -> None:
        if self.tp_for(req.transactional_id) not in self.log.leading:
            fx.send(src, m.DescribeTransactionResponse(req.correlation_id, ErrorCode.NOT_COORDINATOR))
            return
        t = self.txns.get(req.transactional_id)
        if t is None:
            fx.send(src, m.DescribeTransactionResponse(req.correlation_id, ErrorCode.TRANSACTIONAL_ID_NOT_FOUND))
            return
        fx.send(src, m.DescribeTransactionResponse(req.correlation_id, ErrorCode.NONE, t.state, t.producer_id, t.epoch,
                                                   t.timeout_ms, t.started, t.partitions))

    def tp_for(self, transactional_id: str) -> TopicPartition:
        return TopicPartition(TXN_STATE_TOPIC, partition_for(transactional_id, self.config.transaction_state_partitions))

    def _lookup(self, tid: str) -> tuple[Txn | None, ErrorCode]:
        if self.tp_for(tid) not in self.log.leading:
            return None, ErrorCode.NOT_COORDINATOR
        if tid in self.writing or tid in self.markers:
            return self.txns.get(tid), ErrorCode.CONCURRENT_TRANSACTIONS
        return self.txns.get(tid), ErrorCode.NONE

    # -- leadership of __transaction_state partitions ----------------------------------------

    def start(self, now: int, fx: Effects) -> None:
        fx.timer(("txn-expire",), now + self.config.transaction_cleanup_interval_ms)
        fx.timer(("txn-id-expire",), now + self.config.transactional_id_cleanup_interval_ms)

    def become_leader(self, p: StatePartition, now: int, fx: Effects) -> None:
        """Load every transaction of this partition from its log and finish the ones that
        were ending (their markers may not all have been written)."""
        self.log.leading[p.tp] = p
        self.coordinator_epoch[p.tp] = p.leader_epoch
        self._forget(p.tp)
        for key, value, _ in StateLog.entries(p):
            if key[0] == "txn" and value is None:
                self.txns.pop(key[1], None)  # expired (a tombstone)
            elif key[0] == "txn":
                self.txns[key[1]] = Txn.from_record(key[1], value, now)
        for tid in sorted(t for t in self.txns if self.tp_for(t) == p.tp):
            t = self.txns[tid]
            if t.state in (PREPARE_COMMIT, PREPARE_ABORT):
                self._send_markers(t, now, fx)

    def resign(self, tp: TopicPartition, fx: Effects) -> None:
        if tp not in self.log.leading:
            return
        self._forget(tp)
        self.log.resign(tp, fx)

    def _forget(self, tp: TopicPartition) -> None:
        for tid in [t for t in self.txns if self.tp_for(t) == tp]:
            del self.txns[tid]
            self.markers.pop(tid, None)
            self.writing.discard(tid)

    def on_hw(self, p: StatePartition, fx: Effects) -> None:
        self.log.on_hw(p, fx)

    def _write(self, new: Txn, now: int, fx: Effects, then: Callable[[ErrorCode, Effects], None]) -> None:
        """Persist `new`; memory changes only once it is committed."""
        tid = new.transactional_id
        new = replace(new, updated=now)
        self.writing.add(tid)

        def done(error: ErrorCode, fx: Effects) -> None:
            self.writing.discard(tid)
            if error == ErrorCode.NONE and self.tp_for(tid) in self.log.leading:
                self.txns[tid] = new
            then(error, fx)

        self.log.write(self.tp_for(tid), [(["txn", tid], new.record())], now, fx, done)

    # -- requests ------------------------------------------------------------------------------

    def init_producer_id(self, src: str, req: m.InitProducerIdRequest, now: int, fx: Effects) -> None:
        def answer(error: ErrorCode, t: Txn | None = None, fx: Effects = fx) -> None:
            ok = error == ErrorCode.NONE and t is not None
            fx.send(src, m.InitProducerIdResponse(req.correlation_id, error, t.producer_id if ok else -1,
                                                  t.epoch if ok else -1))

        tid = req.transactional_id
        if not 0 < req.transaction_timeout_ms <= self.config.transaction_max_timeout_ms:
            return answer(ErrorCode.INVALID_TRANSACTION_TIMEOUT)
        t, error = self._lookup(tid)
        if error != ErrorCode.NONE:
            return answer(error)
        if t is None:
            pid = self.host.allocate_producer_id()
            if pid < 0:
                return answer(ErrorCode.COORDINATOR_NOT_AVAILABLE)
            new = Txn(tid, pid, 0, req.transaction_timeout_ms)
        elif t.state == ONGOING:
            # An earlier instance left a transaction open: abort it with a new epoch, which
            # fences that instance; the caller retries (Kafka answers CONCURRENT_TRANSACTIONS).
            self._end(t, commit=False, now=now, fx=fx, fence=True)
            return answer(ErrorCode.CONCURRENT_TRANSACTIONS)
        else:
            new = replace(t, epoch=t.epoch + 1, prev_epoch=t.epoch, timeout_ms=req.transaction_timeout_ms,
                          state=EMPTY, partitions=(), started=-1)
        self._write(new, now, fx, lambda error, fx: answer(error, new, fx))

    def _check_producer(self, t: Txn | None, pid: int, epoch: int) -> ErrorCode:
        if t is None or t.producer_id != pid:
            return ErrorCode.INVALID_PRODUCER_ID_MAPPING
        if epoch != t.epoch:
            return ErrorCode.PRODUCER_FENCED
        return ErrorCode.NONE

    @handles(m.AddPartitionsToTxnRequest)
    def add_partitions(self, src: str, req: m.AddPartitionsToTxnRequest, now: int, fx: Effects) -> None:
        def answer(error: ErrorCode, fx: Effects = fx) -> None:
            fx.send(src, m.AddPartitionsToTxnResponse(req.correlation_id, error))

        t, error = self._lookup(req.transactional_id)
        if req.verify_only:
            # A leader asks whether its first write of this transaction belongs to it (KIP-890).
            if error == ErrorCode.CONCURRENT_TRANSACTIONS:
                error = ErrorCode.NONE  # being written or ending: judge by the committed state
            if error == ErrorCode.NONE:
                error = self._check_producer(t, req.producer_id, req.producer_epoch)
            if error == ErrorCode.NONE and not (t.state == ONGOING and set(req.tps) <= set(t.partitions)):
                error = ErrorCode.INVALID_TXN_STATE
            return answer(error)
        self._add(t, error, req.producer_id, req.producer_epoch, req.tps, now, fx, answer)

    @handles(m.AddOffsetsToTxnRequest)
    def add_offsets(self, src: str, req: m.AddOffsetsToTxnRequest, now: int, fx: Effects) -> None:
        def answer(error: ErrorCode, fx: Effects = fx) -> None:
            fx.send(src, m.AddOffsetsToTxnResponse(req.correlation_id, error))

        t, error = self._lookup(req.transactional_id)
        self._add(t, error, req.producer_id, req.producer_epoch, (offsets_partition(req.group_id, self.config),), now, fx, answer)

    def _add(self, t: Txn | None, error: ErrorCode, pid: int, epoch: int, tps: tuple[TopicPartition, ...],
             now: int, fx: Effects, answer) -> None:
        if error == ErrorCode.NONE:
            error = self._check_producer(t, pid, epoch)
        if error != ErrorCode.NONE:
            return answer(error)
        if t.state == ONGOING and set(tps) <= set(t.partitions):
            return answer(ErrorCode.NONE)
        started = t.started if t.state == ONGOING else now
        new = replace(t, state=ONGOING, partitions=tuple(sorted(set(t.partitions) | set(tps))), started=started)
        self._write(new, now, fx, lambda error, fx: answer(error, fx))

    @handles(m.EndTxnRequest)
    def end_txn(self, src: str, req: m.EndTxnRequest, now: int, fx: Effects) -> None:
        def answer(error: ErrorCode, t: Txn | None = None, fx: Effects = fx) -> None:
            ok = error == ErrorCode.NONE and t is not None
            fx.send(src, m.EndTxnResponse(req.correlation_id, error, t.producer_id if ok else -1,
                                          t.epoch if ok else -1))

        t, error = self._lookup(req.transactional_id)
        if error != ErrorCode.NONE:
            return answer(error)
        done_state = COMPLETE_COMMIT if req.committed else COMPLETE_ABORT
        if t is not None and t.producer_id == req.producer_id and t.state == done_state and req.producer_epoch in (
                t.epoch, t.prev_epoch if t.tv2 else t.epoch):
            return answer(ErrorCode.NONE, t)  # a retry of an EndTxn that already finished
        error = self._check_producer(t, req.producer_id, req.producer_epoch)
        if error != ErrorCode.NONE:
            return answer(error)
        if t.state != ONGOING:
            return answer(ErrorCode.INVALID_TXN_STATE)
        self._end(t, req.committed, now, fx, then=answer, tv2=self.bump and req.bump_epoch)

    def _end(self, t: Txn, commit: bool, now: int, fx: Effects, fence: bool = False, then=None,
             tv2: bool | None = None) -> None:
        """Write PrepareCommit/PrepareAbort, answer, then send the markers. KIP-890 bumps the
        epoch here; a fencing abort (a new instance, a timeout) bumps it in any case."""
        tv2 = self.bump if tv2 is None else tv2
        epoch = t.epoch + 1 if tv2 or fence else t.epoch
        new = replace(t, state=PREPARE_COMMIT if commit else PREPARE_ABORT, epoch=epoch,
                      prev_epoch=t.epoch if epoch != t.epoch else t.prev_epoch, tv2=tv2)

        def prepared(error: ErrorCode, fx: Effects) -> None:
            if then is not None:
                then(error, new if error == ErrorCode.NONE else None, fx)
            if error == ErrorCode.NONE and self.txns.get(t.transactional_id) == new:
                self._send_markers(new, now, fx)

        self._write(new, now, fx, prepared)

    # -- markers -------------------------------------------------------------------------------

    def _send_markers(self, t: Txn, now: int, fx: Effects) -> None:
        mk = self.markers.setdefault(t.transactional_id, Markers(t, set(t.partitions)))
        for tp in sorted(mk.left - set(mk.inflight.values())):
            leader = self.host.leader_of(tp)
            if leader == m.NO_LEADER:
                fx.timer(("txn-marker-retry", t.transactional_id), now + MARKER_RETRY_MS)
                continue
            corr = self.host.next_correlation_id()
            mk.inflight[corr] = tp
            mk.nodes[corr] = m.broker_node(leader)
            fx.send(m.broker_node(leader), m.WriteTxnMarkersRequest(
                corr, tp, t.producer_id, t.epoch, self.coordinator_epoch[self.tp_for(t.transactional_id)],
                t.state == PREPARE_COMMIT, t.tv2))
            fx.timer(("txn-marker-timeout", t.transactional_id, corr), now + MARKER_TIMEOUT_MS)
        if not mk.left:
            self._complete(mk, now, fx)

    def on_disconnected(self, node: str, now: int, fx: Effects) -> None:
        """A broker we sent markers to died: ask its partitions' new leaders soon, rather
        than after the request timeout."""
        for tid, mk in sorted(self.markers.items()):
            lost = [corr for corr, n in mk.nodes.items() if n == node and corr in mk.inflight]
            for corr in lost:
                del mk.inflight[corr]
            if lost:
                fx.timer(("txn-marker-retry", tid), now + MARKER_RETRY_MS)

    def on_marker_response(self, resp: m.WriteTxnMarkersResponse, now: int, fx: Effects) -> None:
        for tid, mk in sorted(self.markers.items()):
            mk.nodes.pop(resp.correlation_id, None)
            if mk.inflight.pop(resp.correlation_id, None) is None:
                continue
            if resp.error in (ErrorCode.NONE, ErrorCode.INVALID_PRODUCER_EPOCH,
                              ErrorCode.TRANSACTION_COORDINATOR_FENCED):
                # Written, or the partition is past this epoch (a newer marker or a fenced
                # producer's successor has been there): nothing left to do for it.
                mk.left.discard(resp.tp)
                if not mk.left and not mk.inflight:
                    self._complete(mk, now, fx)
            else:
                fx.timer(("txn-marker-retry", tid), now + MARKER_RETRY_MS)
            return

    def _complete(self, mk: Markers, now: int, fx: Effects) -> None:
        t = mk.txn
        new = replace(t, state=COMPLETE_COMMIT if t.state == PREPARE_COMMIT else COMPLETE_ABORT, partitions=(),
                      started=-1)

        def written(error: ErrorCode, fx: Effects) -> None:
            if self.markers.get(t.transactional_id) is mk:
                del self.markers[t.transactional_id]
            if error != ErrorCode.NONE and self.tp_for(t.transactional_id) in self.log.leading:
                self._send_markers(t, now, fx)  # try the completion again (markers are idempotent)

        self._write(new, now, fx, written)

    # -- timers --------------------------------------------------------------------------------

    @handles("txn-write-timeout")
    def _write_timed_out(self, key: tuple, now: int, fx: Effects) -> None:
        self.log.timed_out(key[1], fx)

    @handles("txn-marker-retry")
    def _marker_retry(self, key: tuple, now: int, fx: Effects) -> None:
        mk = self.markers.get(key[1])
        if mk is not None:
            self._send_markers(mk.txn, now, fx)

    @handles("txn-marker-timeout")
    def _marker_timed_out(self, key: tuple, now: int, fx: Effects) -> None:
        mk = self.markers.get(key[1])
        if mk is not None and mk.inflight.pop(key[2], None) is not None:
            # Unanswered: send it again. The first copy may still arrive later - the
            # late marker that, before KIP-890, can end the producer's next transaction.
            self._send_markers(mk.txn, now, fx)

    @handles("txn-expire")
    def _expire_due(self, key: tuple, now: int, fx: Effects) -> None:
        for tid in sorted(self.txns):
            t = self.txns[tid]
            if (t.state == ONGOING and tid not in self.writing and tid not in self.markers
                    and self.tp_for(tid) in self.log.leading and now > t.started + t.timeout_ms):
                self._end(t, commit=False, now=now, fx=fx, fence=True)
        fx.timer(key, now + self.config.transaction_cleanup_interval_ms)

    @handles("txn-id-expire")
    def _ids_expire_due(self, key: tuple, now: int, fx: Effects) -> None:
        """transactional.id.expiration.ms (TransactionStateManager.removeExpiredTransactionalIds):
        an id with no transaction open and no change for that long is forgotten - a tombstone
        in __transaction_state - and its producer id with it: a producer still holding it is
        refused (INVALID_PRODUCER_ID_MAPPING) and InitProducerId gives a new one."""
        for tid in sorted(self.txns):
            t = self.txns[tid]
            if (t.state in (EMPTY, COMPLETE_COMMIT, COMPLETE_ABORT) and tid not in self.writing
                    and tid not in self.markers and self.tp_for(tid) in self.log.leading
                    and now >= t.updated + self.config.transactional_id_expiration_ms):
                self.writing.add(tid)

                def forgotten(error: ErrorCode, fx: Effects, tid=tid) -> None:
                    self.writing.discard(tid)
                    if error == ErrorCode.NONE and self.tp_for(tid) in self.log.leading:
                        self.txns.pop(tid, None)

                self.log.write(self.tp_for(tid), [(["txn", tid], None)], now, fx, forgotten)
        fx.timer(key, now + self.config.transactional_id_cleanup_interval_ms)
