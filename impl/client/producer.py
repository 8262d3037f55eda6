"""The producer as a sans-IO state machine (Kafka's KafkaProducer + Sender + RecordAccumulator).

`send()` puts a record in its partition's open batch; batches are sent to the
partition leader, at most `max.in.flight.requests.per.connection` unanswered per
broker, retried on retriable errors until `retries` or `delivery.timeout.ms` run out.
With `enable.idempotence`, batches carry the producer id, epoch and sequence, so a
retry of a batch that was in fact written is answered with its first offset instead
of being written again.

Each record's outcome goes to its callback exactly once: ("ok", offset), ("fail", error)
when it was certainly not written, or ("info", error) when nobody can know (an attempt
timed out, or failed after the leader may have appended it).
"""

from __future__ import annotations

import random
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from kafkaproof.impl.client.base import ClientBase
from kafkaproof.impl.client.config import ProducerConfig
from kafkaproof.impl.client.partitioner import make_partitioner
from kafkaproof.impl.client.transactions import ABORTABLE, ABORTING, FATAL, TransactionManager
from kafkaproof.impl.protocol import messages as m
from kafkaproof.impl.protocol.errors import ErrorCode
from kafkaproof.impl.protocol.messages import Effects, TopicPartition
from kafkaproof.impl.protocol.process import Dispatcher, handles
from kafkaproof.impl.protocol.records import SimpleRecord, encode_batch

# callback(outcome, partition or None, offset or None, error or None)
Callback = Callable[[str, TopicPartition | None, int | None, ErrorCode | None], None]

RETRIABLE = {
    ErrorCode.NOT_LEADER_OR_FOLLOWER, ErrorCode.LEADER_NOT_AVAILABLE, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    ErrorCode.NOT_ENOUGH_REPLICAS, ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND, ErrorCode.REQUEST_TIMED_OUT,
    ErrorCode.NETWORK_EXCEPTION, ErrorCode.FENCED_LEADER_EPOCH, ErrorCode.UNKNOWN_LEADER_EPOCH,
    ErrorCode.KAFKA_STORAGE_ERROR, ErrorCode.CORRUPT_MESSAGE,
}
# Answers after which the batch may be in the log even though it was not acknowledged:
# the leader appended it, then timed out waiting for the ISR, lost its leadership, or
# found the ISR too small.
# (Timeouts and broken connections decide for themselves; see on_timer and Disconnected.)
MAYBE_WRITTEN = {
    ErrorCode.REQUEST_TIMED_OUT, ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND, ErrorCode.NOT_LEADER_OR_FOLLOWER,
}
MAX_EPOCH = 32767  # an epoch is an int16: past it a producer needs a new id (KIP-360)
REFRESH_METADATA = {
    ErrorCode.NOT_LEADER_OR_FOLLOWER, ErrorCode.LEADER_NOT_AVAILABLE, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    ErrorCode.FENCED_LEADER_EPOCH, ErrorCode.UNKNOWN_LEADER_EPOCH, ErrorCode.NETWORK_EXCEPTION,
    ErrorCode.KAFKA_STORAGE_ERROR,
}


@dataclass
class PendingRecord:
    key: bytes | None
    value: bytes | None
    timestamp: int
    callback: Callback


@dataclass
class ProducerBatch:
    id: int
    tp: TopicPartition
    created_ms: int
    records: list[PendingRecord] = field(default_factory=list)
    size: int = 0
    base_seq: int = -1
    raw: bytes = b""
    attempts: int = 0
    sent_at: int = -1
    maybe_written: bool = False
    retry_at: int = 0


class Producer(ClientBase, Dispatcher):
    def __init__(self, node: str, config: ProducerConfig, bootstrap: list[str], rng: random.Random) -> None:
        super().__init__(node, bootstrap, rng)
        self.config = config
        self.partitioner = make_partitioner(config.partitioner, rng)
        self.metadata: dict[str, list[m.PartitionMetadata]] = {}
        self.unknown: dict[str, list[tuple[bytes | None, bytes | None, int, Callback]]] = {}
        self.open: dict[TopicPartition, ProducerBatch] = {}
        self.queues: dict[TopicPartition, deque[ProducerBatch]] = {}
        self.inflight: dict[int, ProducerBatch] = {}
        self.inflight_node: dict[int, str] = {}
        self.per_node: Counter = Counter()
        self.producer_id, self.producer_epoch = -1, -1
        self.next_seq: dict[TopicPartition, int] = {}
        self._pending_control: dict[int, str] = {}  # correlation id -> "metadata" | "pid"
        self._control_node: dict[int, str] = {}  # correlation id -> the broker asked
        self._batch_ids = 0
        self._metadata_wanted = False
        self._retry_timers: dict[TopicPartition, int] = {}  # tp -> when its retry timer fires
        self._resetting = False  # a broken sequence: waiting for in-flight batches to resolve
        self.txn = TransactionManager(self) if config.transactional_id else None

    # -- application API ------------------------------------------------------------------

    def start(self, now: int) -> list:
        fx = Effects()
        self._request_metadata(now, fx)
        if self.config.idempotence and self.txn is None:
            self._request_pid(now, fx)  # a transactional producer gets its id in init_transactions
        return fx.items

    # -- transactions (impl/client/transactions.py) ----------------------------------------

    def init_transactions(self, now: int, done) -> list:
        fx = Effects()
        self.txn.init(done, now, fx)
        return fx.items

    def begin_transaction(self) -> None:
        self.txn.begin()

    def send_offsets_to_transaction(self, offsets: dict[TopicPartition, int], group: tuple[str, int, str],
                                    now: int, done) -> list:
        fx = Effects()
        self.txn.send_offsets(offsets, group, done, now, fx)
        return fx.items

    def commit_transaction(self, now: int, done) -> list:
        fx = Effects()
        self.txn.commit(done, now, fx)
        self._drain(now, fx)
        return fx.items

    def abort_transaction(self, now: int, done) -> list:
        fx = Effects()
        self.txn.abort(done, now, fx)
        return fx.items

    def has_unfinished(self) -> bool:
        return bool(self.open or self.inflight or any(self.queues.values()) or self.unknown)

    def fail_unsent(self, error: ErrorCode) -> None:
        """An abort: batches not yet sent fail (those in flight are waited for)."""
        for tp in sorted(self.open):
            self._complete(self.open.pop(tp), "fail", None, error)
        for tp in sorted(self.queues):
            while self.queues[tp]:
                b = self.queues[tp].popleft()
                self._complete(b, "info" if b.maybe_written else "fail", None, error)
        for topic in sorted(self.unknown):
            for _key, _value, _ts, callback in self.unknown.pop(topic):
                callback("fail", None, None, error)

    def new_epoch(self, producer_id: int, epoch: int) -> None:
        """A new producer id or epoch: sequence numbers start again from 0."""
        self.producer_id, self.producer_epoch = producer_id, epoch
        self.next_seq.clear()

    def send(self, topic: str, key: bytes | None, value: bytes | None, now: int, callback: Callback) -> list:
        fx = Effects()
        if self.txn is not None and self.txn.state in (ABORTABLE, FATAL):
            callback("fail", None, None, self.txn.error)  # Kafka's send() throws the pending error
            return fx.items
        if self.txn is not None:
            self.txn._require("in-transaction")
        if topic not in self.metadata:
            # Kafka's send() blocks up to max.block.ms for metadata, then throws.
            self.unknown.setdefault(topic, []).append((key, value, now, callback))
            fx.timer(("max-block", topic), now + self.config.max_block_ms)
            self._request_metadata(now, fx)
            return fx.items
        self._accumulate(topic, key, value, now, callback, fx)
        self._drain(now, fx)
        return fx.items

    def _accumulate(self, topic, key, value, now, callback, fx: Effects) -> None:
        parts = self.metadata[topic]
        tp = TopicPartition(topic, self.partitioner(topic, key, len(parts)))
        rec = PendingRecord(key, value, now, callback)
        size = len(key or b"") + len(value or b"") + 21
        batch = self.open.get(tp)
        if batch is not None and batch.size + size > self.config.batch_size:
            self._close(tp)
            batch = None
        if batch is None:
            self._batch_ids += 1
            batch = self.open[tp] = ProducerBatch(self._batch_ids, tp, now)
            fx.timer(("delivery", batch.id), now + self.config.delivery_timeout_ms)
            if self.config.linger_ms > 0:
                fx.timer(("linger", tp), now + self.config.linger_ms)
        batch.records.append(rec)
        batch.size += size
        if self.txn is not None:
            self.txn.wants(tp, now, fx)
        if self.config.linger_ms == 0:
            self._close(tp)

    def _close(self, tp: TopicPartition) -> None:
        batch = self.open.pop(tp, None)
        if batch is not None:
            self.queues.setdefault(tp, deque()).append(batch)

    # -- sending --------------------------------------------------------------------------

    def _leader(self, tp: TopicPartition) -> int:
        parts = self.metadata.get(tp.topic, [])
        return parts[tp.partition].leader if tp.partition < len(parts) else m.NO_LEADER

    def _drain(self, now: int, fx: Effects) -> None:
        for tp in sorted(self.queues):
            queue = self.queues[tp]
            while queue:
                batch = queue[0]
                if batch.retry_at > now:
                    if self._retry_timers.get(tp) != batch.retry_at:
                        self._retry_timers[tp] = batch.retry_at
                        fx.timer(("retry", tp), batch.retry_at)
                    break
                leader = self._leader(tp)
                if leader == m.NO_LEADER:
                    self._request_metadata(now, fx)
                    break
                node = m.broker_node(leader)
                if self.per_node[node] >= self.config.max_in_flight:
                    break
                if self.txn is not None and not self.txn.sendable(tp):
                    break  # waits for AddPartitionsToTxn
                if self.config.idempotence and (self.producer_id < 0 or self._resetting):
                    break
                queue.popleft()
                self._send_batch(batch, node, now, fx)

    def _send_batch(self, batch: ProducerBatch, node: str, now: int, fx: Effects) -> None:
        if not batch.raw:
            pid, epoch, seq = -1, -1, -1
            if self.config.idempotence:
                pid, epoch = self.producer_id, self.producer_epoch
                seq = batch.base_seq = self.next_seq.get(batch.tp, 0)
                self.next_seq[batch.tp] = seq + len(batch.records)
            batch.raw = encode_batch(
                [SimpleRecord(r.value, r.key, r.timestamp) for r in batch.records],
                producer_id=pid, producer_epoch=epoch, base_sequence=seq, is_transactional=self.txn is not None,
            )
        corr = self._next_corr()
        batch.attempts += 1
        batch.sent_at = now
        fx.send(node, m.ProduceRequest(corr, batch.tp, self.config.acks, self.config.request_timeout_ms, batch.raw,
                                       self.config.transactional_id))
        if self.config.acks == 0:
            # No answer will come: Kafka completes the send as soon as it is on the wire.
            self._complete(batch, "ok", None, None)
            return
        self.inflight[corr] = batch
        self.inflight_node[corr] = node
        self.per_node[node] += 1
        fx.timer(("request-timeout", corr), now + self.config.request_timeout_ms)

    def _complete(self, batch: ProducerBatch, outcome: str, base_offset: int | None, error: ErrorCode | None) -> None:
        records, batch.records = batch.records, []
        if self.txn is not None and outcome != "ok":
            self.txn.batch_failed(error, outcome == "info")
        for i, rec in enumerate(records):
            rec.callback(outcome, batch.tp, None if base_offset is None else base_offset + i, error)

    # -- responses ------------------------------------------------------------------------

    def handle(self, src: str, msg: object, now: int) -> list:
        fx = Effects()
        if not isinstance(msg, m.Disconnected):
            self._heard_from(src)
        if self.txn is not None and self.txn.owns(getattr(msg, "correlation_id", None)):
            self.txn.handle(msg, now, fx)
        else:
            handler = self.route(type(msg))
            if handler is not None:  # anything else is an answer nobody waits for any more
                handler(src, msg, now, fx)
        self._finish_reset(now, fx)
        self._drain(now, fx)
        if self.txn is not None:
            self.txn.poll(now, fx)
        return fx.items

    @handles(m.Disconnected)
    def _on_disconnected(self, src: str, msg: m.Disconnected, now: int, fx: Effects) -> None:
        self._gave_up_on(msg.node)
        for corr in sorted(c for c, node in self._control_node.items() if node == msg.node):
            kind = "txn-timeout" if self.txn is not None and self.txn.owns(corr) else "control-timeout"
            fx.items += self.on_timer((kind, corr), now)  # ask another broker now
        for corr in sorted(c for c, node in self.inflight_node.items() if node == msg.node):
            batch = self._take_inflight(corr)
            if batch.records:
                # Only a request that left before the crash can have been processed.
                batch.maybe_written |= not msg.refused and batch.sent_at < msg.crashed_at
                self._failed_attempt(batch, ErrorCode.NETWORK_EXCEPTION, now, fx)

    def _take_inflight(self, corr: int) -> ProducerBatch | None:
        batch = self.inflight.pop(corr, None)
        if batch is not None:
            self.per_node[self.inflight_node.pop(corr)] -= 1
        return batch

    @handles(m.ProduceResponse)
    def _on_produce_response(self, src: str, resp: m.ProduceResponse, now: int, fx: Effects) -> None:
        batch = self._take_inflight(resp.correlation_id)
        if batch is None or not batch.records:
            return  # answered after we gave up waiting; the attempt was counted as unknown
        if resp.error in (ErrorCode.NONE, ErrorCode.DUPLICATE_SEQUENCE_NUMBER):
            self._complete(batch, "ok", resp.base_offset, None)
            return
        self._failed_attempt(batch, resp.error, now, fx)

    def _failed_attempt(self, batch: ProducerBatch, error: ErrorCode, now: int, fx: Effects) -> None:
        batch.maybe_written |= error in MAYBE_WRITTEN
        retriable = error in RETRIABLE and not (self.txn is not None and self.txn.state == ABORTING)
        if error == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER:
            # An earlier batch of this partition is being retried: this one follows it.
            retriable = self._earlier_pending(batch)
        if error in REFRESH_METADATA:
            self._request_metadata(now, fx)
        if error in RETRIABLE:
            fx.note("produce-attempt-failed", f"{batch.tp.topic}-{batch.tp.partition}")
        expired = now >= batch.created_ms + self.config.delivery_timeout_ms
        if retriable and batch.attempts <= self.config.retries and not expired:
            if batch.maybe_written:
                fx.note("produce-retried-after-lost-answer", f"{batch.tp.topic}-{batch.tp.partition}")
            batch.retry_at = now + self.config.retry_backoff_ms
            self._requeue(batch)
            return
        self._complete(batch, "info" if batch.maybe_written else "fail", None, error)
        if self.txn is None and error in (ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, ErrorCode.UNKNOWN_PRODUCER_ID,
                                          ErrorCode.INVALID_PRODUCER_EPOCH):
            # The sequence is broken for good: bump the epoch (KIP-360), once nothing is in
            # flight (Kafka's TransactionManager waits too), or an old batch could land after
            # newer ones. The broker fences the old epoch's batches from then on.
            self._resetting = True

    def _finish_reset(self, now: int, fx: Effects) -> None:
        if not self._resetting or self.inflight:
            return
        self._resetting = False
        for tp in sorted(self.queues):
            keep = deque()
            for b in self.queues[tp]:
                if b.base_seq >= 0 and b.maybe_written:
                    # Perhaps written under the old id: resending could duplicate it or
                    # put it after newer records. Its outcome stays unknown.
                    self._complete(b, "info", None, ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER)
                else:
                    b.raw, b.base_seq = b"", -1  # never written: it takes a new sequence
                    keep.append(b)
            self.queues[tp] = keep
        if self.producer_id >= 0 and self.producer_epoch < MAX_EPOCH:
            # KIP-360: the same producer id, the next epoch, sequences from 0 (an idempotent
            # producer bumps it itself: TransactionManager.bumpIdempotentProducerEpoch).
            self.new_epoch(self.producer_id, self.producer_epoch + 1)
        else:  # epochs exhausted (or no id yet): a new producer id
            self.producer_id = -1
            self.next_seq.clear()
            self._request_pid(now, fx)

    def _earlier_pending(self, batch: ProducerBatch) -> bool:
        others = list(self.queues.get(batch.tp, ())) + [b for b in self.inflight.values() if b.tp == batch.tp]
        return any(0 <= b.base_seq < batch.base_seq for b in others)

    def _requeue(self, batch: ProducerBatch) -> None:
        queue = self.queues.setdefault(batch.tp, deque())
        if self.config.idempotence and batch.base_seq >= 0:
            # Resend in sequence order, or the broker refuses the later ones. The queue is
            # already in that order; a retried batch belongs near its front.
            i = 0
            while i < len(queue) and 0 <= queue[i].base_seq < batch.base_seq:
                i += 1
            queue.insert(i, batch)
        else:
            queue.appendleft(batch)  # Kafka re-enqueues at the front: a reordering source

    # -- metadata and producer id ---------------------------------------------------------

    def _request_metadata(self, now: int, fx: Effects) -> None:
        if "metadata" in self._pending_control.values():
            self._metadata_wanted = True
            return
        corr = self._next_corr()
        self._pending_control[corr] = "metadata"
        node = self._control_node[corr] = self._next_bootstrap()
        fx.send(node, m.MetadataRequest(corr, None))
        fx.timer(("control-timeout", corr), now + self.config.request_timeout_ms)

    def _request_pid(self, now: int, fx: Effects) -> None:
        if "pid" in self._pending_control.values():
            return
        corr = self._next_corr()
        self._pending_control[corr] = "pid"
        node = self._control_node[corr] = self._next_bootstrap()
        fx.send(node, m.InitProducerIdRequest(corr))
        fx.timer(("control-timeout", corr), now + self.config.request_timeout_ms)

    @handles(m.MetadataResponse)
    def _on_metadata(self, src: str, resp: m.MetadataResponse, now: int, fx: Effects) -> None:
        self._control_node.pop(resp.correlation_id, None)
        if self._pending_control.pop(resp.correlation_id, None) is None:
            return
        by_topic: dict[str, list[m.PartitionMetadata]] = {}
        for pm in resp.partitions:
            by_topic.setdefault(pm.tp.topic, []).append(pm)
        for topic, parts in by_topic.items():
            self.metadata[topic] = sorted(parts, key=lambda pm: pm.tp.partition)
        for topic in sorted(self.unknown):
            if topic in self.metadata:
                for key, value, ts, cb in self.unknown.pop(topic):
                    self._accumulate(topic, key, value, ts, cb, fx)
        wanted = self._metadata_wanted or bool(self.unknown) or any(
            pm.leader == m.NO_LEADER for parts in self.metadata.values() for pm in parts)
        self._metadata_wanted = False
        if wanted:
            fx.timer(("metadata-retry",), now + self.config.retry_backoff_ms)

    @handles(m.InitProducerIdResponse)
    def _on_pid(self, src: str, resp: m.InitProducerIdResponse, now: int, fx: Effects) -> None:
        self._control_node.pop(resp.correlation_id, None)
        if self._pending_control.pop(resp.correlation_id, None) is None:
            return
        if resp.error != ErrorCode.NONE:
            fx.timer(("pid-retry",), now + self.config.retry_backoff_ms)
            return
        self.producer_id, self.producer_epoch = resp.producer_id, resp.producer_epoch

    # -- time -----------------------------------------------------------------------------

    def on_timer(self, key: tuple, now: int) -> list:
        fx = Effects()
        self.route(key[0])(key, now, fx)
        self._finish_reset(now, fx)
        self._drain(now, fx)
        if self.txn is not None:
            self.txn.poll(now, fx)
        return fx.items

    @handles("retry", "txn-retry")
    def _backoff_over(self, key: tuple, now: int, fx: Effects) -> None:
        pass  # a wake-up: what is due now goes out in on_timer's common tail (drain, txn.poll)

    @handles("request-timeout")
    def _request_timed_out(self, key: tuple, now: int, fx: Effects) -> None:
        self._gave_up_on(self.inflight_node.get(key[1]))
        batch = self._take_inflight(key[1])
        if batch is not None and batch.records:
            batch.maybe_written = True  # the request may have been written: unknown
            self._failed_attempt(batch, ErrorCode.NETWORK_EXCEPTION, now, fx)

    @handles("control-timeout")
    def _control_timed_out(self, key: tuple, now: int, fx: Effects) -> None:
        self._gave_up_on(self._control_node.pop(key[1], None))
        what = self._pending_control.pop(key[1], None)
        if what == "metadata":
            self._request_metadata(now, fx)
        elif what == "pid":
            self._request_pid(now, fx)

    @handles("txn-timeout")
    def _txn_timed_out(self, key: tuple, now: int, fx: Effects) -> None:
        if self.txn is not None and self.txn.owns(key[1]):
            self._gave_up_on(self._control_node.get(key[1]))
            self.txn.handle(None, now, fx)

    @handles("metadata-retry")
    def _metadata_retry(self, key: tuple, now: int, fx: Effects) -> None:
        self._request_metadata(now, fx)

    @handles("pid-retry")
    def _pid_retry(self, key: tuple, now: int, fx: Effects) -> None:
        self._request_pid(now, fx)

    @handles("linger")
    def _linger_over(self, key: tuple, now: int, fx: Effects) -> None:
        self._close(key[1])

    @handles("delivery")
    def _delivery_timed_out(self, key: tuple, now: int, fx: Effects) -> None:
        self._expire(key[1])

    @handles("max-block")
    def _max_block_over(self, key: tuple, now: int, fx: Effects) -> None:
        waiting = self.unknown.get(key[1], [])
        expired = [r for r in waiting if now - r[2] >= self.config.max_block_ms]
        self.unknown[key[1]] = [r for r in waiting if now - r[2] < self.config.max_block_ms]
        for _key, _value, _ts, callback in expired:
            callback("fail", None, None, ErrorCode.REQUEST_TIMED_OUT)
        if not self.unknown[key[1]]:
            del self.unknown[key[1]]

    def _expire(self, batch_id: int) -> None:
        """delivery.timeout.ms: a batch not yet acknowledged and not in flight fails."""
        for tp in sorted(self.queues):
            for b in list(self.queues[tp]):
                if b.id == batch_id:
                    self.queues[tp].remove(b)
                    self._complete(b, "info" if b.maybe_written else "fail", None, ErrorCode.REQUEST_TIMED_OUT)
        for tp, b in list(self.open.items()):
            if b.id == batch_id:
                del self.open[tp]
                self._complete(b, "fail", None, ErrorCode.REQUEST_TIMED_OUT)
