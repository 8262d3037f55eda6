"""The broker as a sans-IO state machine: `handle(src, message, now)` and
`on_timer(key, now)` return effects (sends, timers); storage is the injected Disk.

Data plane: Produce, Fetch (consumers and followers), ListOffsets, Metadata,
OffsetsForLeaderEpoch, InitProducerId. Control plane: LeaderAndIsr, StopReplica,
UpdateMetadata from the controller; heartbeats and AlterPartition to it.
The replica fetcher (one outstanding request per followed partition) lives here too.
"""

from __future__ import annotations

from dataclasses import dataclass

from kafkaproof.impl.broker import topic_config
from kafkaproof.impl.broker.config import BrokerConfig
from kafkaproof.impl.broker.partition import Partition
from kafkaproof.impl.broker.purgatory import DelayedFetch, DelayedProduce, Purgatory
from kafkaproof.impl.broker.topic_config import COMPACT
from kafkaproof.impl.coordinator.group import OFFSETS_TOPIC, GroupCoordinator
from kafkaproof.impl.coordinator.transaction import TXN_STATE_TOPIC, TransactionCoordinator
from kafkaproof.impl.protocol import messages as m
from kafkaproof.impl.protocol.errors import CorruptRecordError, ErrorCode, KafkaError
from kafkaproof.impl.protocol.messages import CONTROL_PLANE, Effects, TopicPartition
from kafkaproof.impl.protocol.process import Dispatcher, handles
from kafkaproof.impl.protocol.records import BatchHeader, parse_header
from kafkaproof.impl.storage.checkpoint import read_checkpoint, write_checkpoint
from kafkaproof.impl.storage.cleaner import clean, dirty_ratio
from kafkaproof.impl.storage.disk import Disk, FileRegion
from kafkaproof.impl.storage.log import Log

HW_CHECKPOINT = "replication-offset-checkpoint"
RECOVERY_CHECKPOINT = "recovery-point-offset-checkpoint"
LOG_START_CHECKPOINT = "log-start-offset-checkpoint"
ISR_CHECK_INTERVAL_MS = 1000
MARKER_WRITE_TIMEOUT_MS = 30_000  # markers are appended with acks=all and Kafka's request.timeout.ms
ALTER_PARTITION_RETRY_MS = 5000


def _last_offset(data) -> int:
    if isinstance(data, FileRegion):
        return data.last_offset
    pos, last = 0, -1
    while pos < len(data):
        header = parse_header(data, pos)
        pos, last = pos + header.size, header.last_offset
    return last


@dataclass
class FetcherState:
    """The follower's replica fetcher for one partition."""

    phase: str  # "truncating" (OffsetsForLeaderEpoch) or "fetching"
    inflight: int | None = None  # correlation id of the outstanding request


class Broker(Dispatcher):
    def __init__(self, broker_id: int, config: BrokerConfig, disk: Disk, controllers: list[int],
                 incarnation: int = 0) -> None:
        self.id = broker_id
        self.node = m.broker_node(broker_id)
        self.config = config
        self.disk = disk
        self.controllers = controllers
        self.partitions: dict[TopicPartition, Partition] = {}
        self.partition_watch = None  # the simulator's (Partition.watch)
        self.fetchers: dict[TopicPartition, FetcherState] = {}
        self.purgatory = Purgatory()
        self.groups = GroupCoordinator(broker_id, config, self)
        self.txns = TransactionCoordinator(broker_id, config, self)
        # KIP-890 checks with the coordinator: correlation id -> (client, produce, coordinator)
        self._verifying: dict[int, tuple[str, m.ProduceRequest, str]] = {}
        self.broker_epoch = -1
        self.previous_broker_epoch = -1  # the epoch before a fencing; -1: this process never had one
        self.controller_epoch = -1
        self.metadata: dict[TopicPartition, m.PartitionState] = {}
        self.topic_configs: dict[str, m.Configs] = {}  # topic -> its overrides, as the controller sent them
        self.metadata_version = -1
        self.live_brokers: tuple[int, ...] = ()
        self.acls: tuple[m.AclBinding, ...] = ()  # every ACL, from the controller's UpdateMetadata
        self.pid_next, self.pid_end = -1, -1
        # Correlation ids never repeat across restarts: a response to the previous process
        # (still in flight when this one started) must not match one of our requests.
        # Over TCP it could not arrive at all: the new process has new connections.
        self._corr = incarnation << 32
        self._inflight: dict[int, TopicPartition] = {}
        self._hw_checkpoint = {tuple(k): int(v) for *k, v in self._read_checkpoint(HW_CHECKPOINT)}
        self._recovery_points = {tuple(k): int(v) for *k, v in self._read_checkpoint(RECOVERY_CHECKPOINT)}
        self._log_starts = {tuple(k): int(v) for *k, v in self._read_checkpoint(LOG_START_CHECKPOINT)}
        self._next_retention = self._next_clean = 0

    def _read_checkpoint(self, name: str) -> list[tuple[str, int, str]]:
        return [(t, int(p), o) for t, p, o in read_checkpoint(self.disk, name, 3)]

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, now: int) -> list:
        fx = Effects()
        self._heartbeat(fx)
        fx.timer(("heartbeat",), now + self.config.heartbeat_interval_ms)
        fx.timer(("isr-check",), now + ISR_CHECK_INTERVAL_MS)
        fx.timer(("checkpoint",), now + self.config.hw_checkpoint_interval_ms)
        self.txns.start(now, fx)
        return fx.items

    def next_correlation_id(self) -> int:
        self._corr += 1
        return self._corr

    def _heartbeat(self, fx: Effects) -> None:
        for c in self.controllers:
            fx.send(m.controller_node(c), m.BrokerHeartbeatRequest(self.id, self.broker_epoch, self.metadata_version,
                                                                   self.previous_broker_epoch), CONTROL_PLANE)

    def on_timer(self, key: tuple, now: int) -> list:
        fx = Effects()
        self._route(key[0])(key, now, fx)
        return fx.items

    @handles("heartbeat")
    def _heartbeat_due(self, key: tuple, now: int, fx: Effects) -> None:
        self._heartbeat(fx)
        fx.timer(key, now + self.config.heartbeat_interval_ms)

    @handles("isr-check")
    def _isr_check_due(self, key: tuple, now: int, fx: Effects) -> None:
        retention, cleaning = now >= self._next_retention, now >= self._next_clean
        if retention:  # Kafka's LogManager cleanup task, every log.retention.check.interval.ms
            self._next_retention = now + self.config.retention_check_interval_ms
        if cleaning:  # Kafka's LogCleaner, every log.cleaner.backoff.ms
            self._next_clean = now + self.config.cleaner_backoff_ms
        for p in self._sorted_partitions():
            self._maybe_alter_isr(p, now, fx)
            p.log.maybe_flush(now)  # log.flush.interval.ms
            if retention:
                p.log.delete_old_segments(now)
            if cleaning and COMPACT in p.log.config.cleanup_policy and \
                    dirty_ratio(p.log, p.lso) >= p.log.config.min_cleanable_dirty_ratio:
                clean(p.log, now, upto=p.lso)  # below the last stable offset: only what is decided
        fx.timer(key, now + ISR_CHECK_INTERVAL_MS)

    @handles("checkpoint")
    def _checkpoint_due(self, key: tuple, now: int, fx: Effects) -> None:
        self.write_checkpoints()
        fx.timer(key, now + self.config.hw_checkpoint_interval_ms)

    @handles("delayed")
    def _delayed_due(self, key: tuple, now: int, fx: Effects) -> None:
        self._expire(key[1], now, fx)

    @handles("fetch-timeout")
    def _fetch_timed_out(self, key: tuple, now: int, fx: Effects) -> None:
        tp, corr = key[1], key[2]
        f = self.fetchers.get(tp)
        if f is not None and f.inflight == corr:
            f.inflight = None
            self._inflight.pop(corr, None)
            self._fetch_next(tp, now, fx)

    @handles("verify-timeout")
    def _verify_timed_out(self, key: tuple, now: int, fx: Effects) -> None:
        pending = self._verifying.pop(key[1], None)
        if pending is not None:  # the coordinator did not answer: the producer retries
            self._reply_produce(pending[0], pending[1], ErrorCode.NOT_ENOUGH_REPLICAS, fx)

    @handles("fetch-backoff")
    def _fetch_backoff_over(self, key: tuple, now: int, fx: Effects) -> None:
        f = self.fetchers.get(key[1])
        if f is not None and f.inflight is None:
            self._fetch_next(key[1], now, fx)

    def write_checkpoints(self) -> None:
        """Kafka's replication-offset-checkpoint (HWs) and recovery-point-offset-checkpoint."""
        parts = self._sorted_partitions()
        write_checkpoint(self.disk, HW_CHECKPOINT, [(p.tp.topic, p.tp.partition, p.hw) for p in parts])
        write_checkpoint(self.disk, RECOVERY_CHECKPOINT,
                         [(p.tp.topic, p.tp.partition, p.log.recovery_point) for p in parts])
        starts = [(p.tp.topic, p.tp.partition, p.log.log_start_offset) for p in parts]
        if any(start > 0 for *_, start in starts) or self._log_starts:
            # (Only once some log no longer starts at 0: DeleteRecords or retention. A
            # log starting at a later segment's base needs no checkpoint to say so.)
            write_checkpoint(self.disk, LOG_START_CHECKPOINT, starts)

    def shutdown(self) -> None:
        """Clean shutdown: logs flushed, checkpoints written."""
        for p in self._sorted_partitions():
            p.log.close()
        self.write_checkpoints()

    def _sorted_partitions(self) -> list[Partition]:
        return [self.partitions[tp] for tp in sorted(self.partitions)]

    # -- dispatch -------------------------------------------------------------------------

    def handle(self, src: str, msg: object, now: int) -> list:
        fx = Effects()
        self._route(type(msg))(src, msg, now, fx)
        return fx.items

    def _route(self, what: type | str):
        """The broker's own handlers first, then its coordinators' (they answer group and
        transaction requests, and their timers, on their own)."""
        for part in (self, self.groups, self.txns):
            handler = part.route(what)
            if handler is not None:
                return handler
        name = what if isinstance(what, str) else what.__name__
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"broker {self.id} cannot handle {name}")

    # -- control plane --------------------------------------------------------------------

    def _controller_ok(self, controller_epoch: int, broker_epoch: int | None = None) -> bool:
        if controller_epoch < self.controller_epoch:
            return False  # STALE_CONTROLLER_EPOCH: a deposed controller's message
        if broker_epoch is not None and broker_epoch != self.broker_epoch:
            return False  # STALE_BROKER_EPOCH (KIP-380): meant for another life of this broker
        self.controller_epoch = controller_epoch
        return True

    @handles(m.BrokerHeartbeatResponse)
    def _on_BrokerHeartbeatResponse(self, src, msg: m.BrokerHeartbeatResponse, now, fx) -> None:
        if not self._controller_ok(msg.controller_epoch):
            return
        if msg.error == ErrorCode.NONE and msg.broker_epoch >= 0 and msg.broker_epoch != self.broker_epoch:
            self.broker_epoch = msg.broker_epoch
            if msg.producer_id_block[1] > 0:
                self.pid_next = msg.producer_id_block[0]
                self.pid_end = self.pid_next + msg.producer_id_block[1]
        elif msg.error != ErrorCode.NONE:
            # Fenced, not restarted: register again, saying which epoch we held (a clean
            # return: KIP-966 keeps us eligible).
            self.previous_broker_epoch = max(self.previous_broker_epoch, self.broker_epoch)
            self.broker_epoch = -1

    @handles(m.UpdateMetadataRequest)
    def _on_UpdateMetadataRequest(self, src, msg: m.UpdateMetadataRequest, now, fx) -> None:
        if not self._controller_ok(msg.controller_epoch, msg.broker_epoch) or msg.version < self.metadata_version:
            return
        self.metadata_version = msg.version
        self.live_brokers = msg.live_brokers
        # Every UpdateMetadata carries the whole cluster: what it lacks was deleted.
        self.metadata = {st.tp: st for st in msg.states}
        self.acls = msg.acls  # (read by the gateway's authorizer; replaced whole, never changed in place)
        self._configure(dict(msg.topic_configs), every=True)
        # A LeaderAndIsr lost on the way leaves us behind; the full state repairs it.
        self._apply_states(list(msg.states), now, fx)

    @handles(m.LeaderAndIsrRequest)
    def _on_LeaderAndIsrRequest(self, src, msg: m.LeaderAndIsrRequest, now, fx) -> None:
        if self._controller_ok(msg.controller_epoch, msg.broker_epoch):
            self._configure(dict(msg.topic_configs))
            self._apply_states(list(msg.states), now, fx)

    def _apply_states(self, states: list[m.PartitionState], now: int, fx: Effects) -> None:
        for st in states:
            if self.id not in st.replicas:
                continue
            p = self.partitions.get(st.tp)
            if p is None:
                p = self._open_partition(st.tp, now)
            elif not p.is_newer(st):
                continue
            if st.leader_epoch == p.leader_epoch and st.leader == p.leader:
                p.update_isr(st)
                self.complete_delayed(p, now, fx)
            elif st.leader == self.id:
                self.fetchers.pop(st.tp, None)
                p.make_leader(st, now)
                if st.tp.topic == OFFSETS_TOPIC:
                    self.groups.become_leader(p, now, fx)
                elif st.tp.topic == TXN_STATE_TOPIC:
                    self.txns.become_leader(p, now, fx)
                self.complete_delayed(p, now, fx)
            else:
                self._fail_delayed_produce(p, fx)
                self._resign(st.tp, fx)
                p.make_follower(st)
                self.fetchers[st.tp] = FetcherState("fetching" if self.config.legacy_truncate_to_hw else "truncating")
                if st.leader != m.NO_LEADER:
                    self._fetch_next(st.tp, now, fx)

    @handles(m.StopReplicaRequest)
    def _on_StopReplicaRequest(self, src, msg: m.StopReplicaRequest, now, fx) -> None:
        if self._controller_ok(msg.controller_epoch, msg.broker_epoch):
            for tp in msg.tps:
                self.fetchers.pop(tp, None)
                p = self.partitions.get(tp)
                if p is not None:
                    self._fail_delayed_produce(p, fx)
                    self._resign(tp, fx)
                    p.leader = m.NO_LEADER
                    if msg.delete:  # the topic was deleted: waiting fetches learn it now
                        for op in self.purgatory.pop_where(tp, lambda op: isinstance(op, DelayedFetch)):
                            fx.send(op.src, m.FetchResponse(op.request.correlation_id, tp,
                                                            ErrorCode.UNKNOWN_TOPIC_OR_PARTITION))
                        del self.partitions[tp]
                        self.metadata.pop(tp, None)
                        p.log.delete()

    def _resign(self, tp: TopicPartition, fx: Effects) -> None:
        self.groups.resign(tp, fx)
        self.txns.resign(tp, fx)

    def _open_partition(self, tp: TopicPartition, now: int) -> Partition:
        overrides = self.topic_configs.get(tp.topic, ())
        log = Log.open(self.disk, str(tp), topic_config.log_config(self.config.log, dict(overrides)),
                       recovery_point=self._recovery_points.get(tuple(tp), 0), now_ms=now,
                       log_start_offset=self._log_starts.get(tuple(tp), 0))
        p = Partition(tp, self.id, log, self.config, self._hw_checkpoint.get(tuple(tp), 0))
        p.watch = self.partition_watch
        p.configure(self.config, dict(overrides))
        self.partitions[tp] = p
        return p

    def _configure(self, configs: dict[str, m.Configs], every: bool = False) -> None:
        """Topic overrides from the controller (all of them with `every`: a topic missing
        has none) applied to this broker's partitions of the changed topics."""
        before = self.topic_configs
        self.topic_configs = configs if every else {**before, **configs}
        for p in self._sorted_partitions():
            if self.topic_configs.get(p.tp.topic, ()) != before.get(p.tp.topic, ()):
                p.configure(self.config, dict(self.topic_configs.get(p.tp.topic, ())))

    def _maybe_alter_isr(self, p: Partition, now: int, fx: Effects, shrink: bool = True) -> None:
        if p.pending_isr is not None and now - p.pending_since > ALTER_PARTITION_RETRY_MS:
            p.pending_isr = None  # the controller never answered: propose again
        new_isr = p.isr_to_propose(now, shrink)
        if new_isr is None or self.broker_epoch < 0:
            return
        p.pending_isr, p.pending_since = new_isr, now
        req = m.AlterPartitionRequest(self.id, self.broker_epoch, p.tp, p.leader_epoch, p.partition_epoch, new_isr)
        for c in self.controllers:
            fx.send(m.controller_node(c), req, CONTROL_PLANE)

    @handles(m.AlterPartitionResponse)
    def _on_AlterPartitionResponse(self, src, msg: m.AlterPartitionResponse, now, fx) -> None:
        p = self.partitions.get(msg.tp)
        if p is None or not p.is_leader:
            return
        if msg.error == ErrorCode.NONE and msg.state is not None and p.is_newer(msg.state):
            if msg.state.leader == self.id and msg.state.leader_epoch == p.leader_epoch:
                p.update_isr(msg.state)
                self.complete_delayed(p, now, fx)
        elif msg.error != ErrorCode.NONE:
            p.pending_isr = None

    # -- data plane: produce --------------------------------------------------------------

    def _reply_produce(self, src: str, req: m.ProduceRequest, error: ErrorCode, fx: Effects, base_offset: int = -1,
                       message: str = "") -> None:
        if req.acks != 0:  # acks=0: Kafka sends no response at all
            fx.send(src, m.ProduceResponse(req.correlation_id, req.tp, error, base_offset,
                                           self._log_start(req.tp, error), message=message))

    @handles(m.ProduceRequest)
    def _on_ProduceRequest(self, src, req: m.ProduceRequest, now, fx) -> None:
        if req.acks not in (0, 1, -1):
            return self._reply_produce(src, req, ErrorCode.INVALID_REQUIRED_ACKS, fx, message=f"acks={req.acks}")
        p = self.partitions.get(req.tp)
        if p is None or not p.is_leader:
            return self._reply_produce(src, req, self._not_led(req.tp), fx)
        first_write = self._unverified_transactional_write(p, req)
        if first_write is not None:
            return self._verify(src, req, first_write, now, fx)
        self._produce(src, req, p, now, fx)

    def _produce(self, src: str, req: m.ProduceRequest, p: Partition, now: int, fx: Effects) -> None:
        try:
            info, duplicate = p.append_as_leader(req.records, req.acks, now)
        except CorruptRecordError as exc:
            return self._reply_produce(src, req, ErrorCode.CORRUPT_MESSAGE, fx, message=exc.reason)
        except KafkaError as exc:
            return self._reply_produce(src, req, exc.code, fx, message=exc.reason)
        if duplicate is not None:
            # Already in the log: answer with the original offset. For acks=all it must
            # also be committed; if not yet, wait like the original would have.
            base, required = duplicate.first_offset, duplicate.last_offset + 1
        else:
            base, required = info.first_offset, info.last_offset + 1
            self.complete_delayed(p, now, fx)
        if req.acks != -1 or p.hw >= required:
            return self._reply_produce(src, req, ErrorCode.NONE, fx, base)
        op = DelayedProduce(self.purgatory.next_id(), src, req, base, required, now + req.timeout_ms)
        self.purgatory.add(op)
        fx.timer(("delayed", op.id), op.deadline)

    # -- transactions: the leader's side -------------------------------------------------

    def _unverified_transactional_write(self, p: Partition, req: m.ProduceRequest) -> BatchHeader | None:
        """KIP-890 part 1: a transaction's first write to a partition must be confirmed by
        its coordinator, or a late write of an ended transaction would open a new one.
        Returns the batch's header when it needs that confirmation."""
        if self.config.legacy_transactions_without_kip890 or req.transactional_id is None:
            return None
        try:
            h = parse_header(req.records)
        except CorruptRecordError:
            return None  # refused by the append, with its reason
        return h if h.is_transactional and not p.producers.in_transaction(h.producer_id, h.producer_epoch) else None

    def _verify(self, src: str, req: m.ProduceRequest, h: BatchHeader, now: int, fx: Effects) -> None:
        leader = self.leader_of(self.txns.tp_for(req.transactional_id))
        if leader == m.NO_LEADER:
            return self._reply_produce(src, req, ErrorCode.NOT_ENOUGH_REPLICAS, fx)
        corr = self.next_correlation_id()
        self._verifying[corr] = (src, req, m.broker_node(leader))
        fx.send(m.broker_node(leader), m.AddPartitionsToTxnRequest(
            corr, req.transactional_id, h.producer_id, h.producer_epoch, (req.tp,), verify_only=not req.add_partition))
        fx.timer(("verify-timeout", corr), now + req.timeout_ms)

    @handles(m.AddPartitionsToTxnResponse)
    def _on_AddPartitionsToTxnResponse(self, src, resp: m.AddPartitionsToTxnResponse, now, fx) -> None:
        pending = self._verifying.pop(resp.correlation_id, None)
        if pending is None:
            return
        src, req, _ = pending
        p = self.partitions.get(req.tp)
        if resp.error != ErrorCode.NONE:
            # Not part of the transaction (an ended one's late write), or the coordinator
            # could not say: refuse; a live producer learns it is out of step.
            error = resp.error if resp.error in (ErrorCode.PRODUCER_FENCED, ErrorCode.INVALID_TXN_STATE,
                                                  ErrorCode.INVALID_PRODUCER_ID_MAPPING) \
                else ErrorCode.NOT_ENOUGH_REPLICAS
            return self._reply_produce(src, req, error, fx)
        if p is None or not p.is_leader:
            return self._reply_produce(src, req, ErrorCode.NOT_LEADER_OR_FOLLOWER, fx)
        self._produce(src, req, p, now, fx)

    @handles(m.WriteTxnMarkersRequest)
    def _on_WriteTxnMarkersRequest(self, src, req: m.WriteTxnMarkersRequest, now, fx) -> None:
        def answer(error: ErrorCode, fx: Effects) -> None:
            if error == ErrorCode.NONE and req.tp.topic == OFFSETS_TOPIC:
                self.groups.on_txn_marker(req.tp, req.producer_id, req.committed)
            fx.send(src, m.WriteTxnMarkersResponse(req.correlation_id, req.tp, error))

        p = self.partitions.get(req.tp)
        if p is None or not p.is_leader:
            return answer(ErrorCode.NOT_LEADER_OR_FOLLOWER, fx)
        try:
            info = p.append_marker(req.producer_id, req.producer_epoch, req.coordinator_epoch, req.committed, now,
                                   req.bumped)
        except KafkaError as exc:
            return answer(exc.code, fx)
        self.complete_delayed(p, now, fx)
        if p.hw > info.last_offset:
            return answer(ErrorCode.NONE, fx)
        # Markers are written with acks=all: answered once replicated.
        op = DelayedProduce(self.purgatory.next_id(), src, req, info.first_offset, info.last_offset + 1,
                            now + MARKER_WRITE_TIMEOUT_MS, answer=answer)
        self.purgatory.add(op)
        fx.timer(("delayed", op.id), op.deadline)

    @handles(m.WriteTxnMarkersResponse)
    def _on_WriteTxnMarkersResponse(self, src, resp: m.WriteTxnMarkersResponse, now, fx) -> None:
        self.txns.on_marker_response(resp, now, fx)

    def allocate_producer_id(self) -> int:
        if self.pid_next < 0 or self.pid_next >= self.pid_end:
            return -1
        pid, self.pid_next = self.pid_next, self.pid_next + 1
        return pid

    def _not_led(self, tp: TopicPartition) -> ErrorCode:
        """The error for a request to a partition this broker does not lead: another
        broker leads it, or (not in the metadata) it does not exist."""
        return ErrorCode.NOT_LEADER_OR_FOLLOWER if tp in self.metadata else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION

    def _led(self, src: str, req, answer: type, fx: Effects) -> Partition | None:
        """The partition `req` names if this broker leads it; else `answer` (a response
        of correlation id, partition and error) goes back with _not_led's error."""
        p = self.partitions.get(req.tp)
        if p is None or not p.is_leader:
            fx.send(src, answer(req.correlation_id, req.tp, self._not_led(req.tp)))
            return None
        return p

    def leader_of(self, tp: TopicPartition) -> int:
        st = self.metadata.get(tp)
        return st.leader if st is not None else m.NO_LEADER

    # -- data plane: fetch ----------------------------------------------------------------

    def _fetch_error(self, p: Partition | None, req: m.FetchRequest) -> ErrorCode:
        if p is None:
            return self._not_led(req.tp)
        if not p.is_leader:
            return ErrorCode.NOT_LEADER_OR_FOLLOWER
        if not self.config.legacy_no_fetch_epoch_fencing and req.current_leader_epoch >= 0:
            # KIP-320: a request from an older epoch is fenced; from a newer one, we are stale.
            if req.current_leader_epoch < p.leader_epoch:
                return ErrorCode.FENCED_LEADER_EPOCH
            if req.current_leader_epoch > p.leader_epoch:
                return ErrorCode.UNKNOWN_LEADER_EPOCH
        if not p.log.log_start_offset <= req.fetch_offset <= p.log.log_end_offset:
            return ErrorCode.OFFSET_OUT_OF_RANGE
        return ErrorCode.NONE

    @handles(m.FetchRequest)
    def _on_FetchRequest(self, src, req: m.FetchRequest, now, fx) -> None:
        p = self.partitions.get(req.tp)
        error = self._fetch_error(p, req)
        if error != ErrorCode.NONE:
            fx.send(src, m.FetchResponse(req.correlation_id, req.tp, error,
                                         leader_epoch=p.leader_epoch if p else -1,
                                         log_start_offset=p.log.log_start_offset if p else -1))
            return
        if req.replica_id >= 0 and p.on_follower_fetch(req.replica_id, req.fetch_offset, now):
            self.complete_delayed(p, now, fx)
        if req.replica_id >= 0:
            self._maybe_alter_isr(p, now, fx, shrink=False)
        data = self._read_for(p, req)
        if len(data) >= req.min_bytes or req.max_wait_ms <= 0:
            self._answer_fetch(p, src, req, fx, data)
            return
        op = DelayedFetch(self.purgatory.next_id(), src, req, now + req.max_wait_ms)
        self.purgatory.add(op)
        fx.timer(("delayed", op.id), op.deadline)

    @staticmethod
    def _read_bound(p: Partition, req: m.FetchRequest) -> int | None:
        """Followers read everything the leader has (None); consumers only below the HW, or
        below the last stable offset with isolation.level=read_committed."""
        if req.replica_id >= 0:
            return None
        return p.lso if req.isolation_level == m.READ_COMMITTED else p.hw

    def _read_for(self, p: Partition, req: m.FetchRequest) -> bytes:
        bound = self._read_bound(p, req)
        end = p.log.log_end_offset
        if not p.log.log_start_offset <= req.fetch_offset <= end:
            return b""
        if req.fetch_offset >= (end if bound is None else bound) and not req.zero_copy:
            return b""  # nothing there yet (a caught-up follower's long poll): no segment to look at
        return p.log.read(req.fetch_offset, req.max_bytes, max_offset=bound, region=req.zero_copy)

    def _answer_fetch(self, p: Partition, src: str, req: m.FetchRequest, fx: Effects, data: bytes | None = None) -> None:
        error = self._fetch_error(p, req)
        if error != ErrorCode.NONE:
            data = b""
        elif data is None:
            data = self._read_for(p, req)
        aborted: tuple = ()
        if req.replica_id < 0 and data:
            # Invariant: consumers never see an offset at or above the high watermark.
            last = _last_offset(data)
            assert last < p.hw, f"{p.tp}: serving offset {last} to a consumer with HW {p.hw}"
            if req.isolation_level == m.READ_COMMITTED:
                aborted = tuple((t.producer_id, t.first_offset)
                                for t in p.log.aborted_transactions(req.fetch_offset, last + 1))
        fx.send(src, m.FetchResponse(req.correlation_id, req.tp, error, p.hw, p.log.log_start_offset, data,
                                     p.leader_epoch, p.lso, aborted))

    # -- purgatory ------------------------------------------------------------------------

    def complete_delayed(self, p: Partition, now: int, fx: Effects) -> None:
        """Answer every waiting request on `p` whose condition now holds."""
        reads: dict[int, bytes] = {}  # what a ready fetch read, so it is answered without reading twice

        def ready(op) -> bool:
            if isinstance(op, DelayedProduce):
                return not p.is_leader or p.hw >= op.required_offset
            if not p.is_leader:
                return True
            req = op.request
            bound = self._read_bound(p, req)
            if req.min_bytes > 0 and req.fetch_offset >= (p.log.log_end_offset if bound is None else bound):
                return False  # nothing to read yet: offsets say so without a read (Kafka's DelayedFetch)
            reads[op.id] = self._read_for(p, req)
            return len(reads[op.id]) >= op.request.min_bytes

        for op in self.purgatory.pop_where(p.tp, ready):
            if isinstance(op, DelayedProduce):
                self._answer_produce(p, op, fx)
            else:
                self._answer_fetch(p, op.src, op.request, fx, reads.get(op.id))
        if p.tp.topic == OFFSETS_TOPIC:
            self.groups.on_hw(p, now, fx)
        elif p.tp.topic == TXN_STATE_TOPIC:
            self.txns.on_hw(p, fx)

    def _answer_produce(self, p: Partition, op: DelayedProduce, fx: Effects) -> None:
        if not p.is_leader:
            error = ErrorCode.NOT_LEADER_OR_FOLLOWER
        elif p.hw < op.required_offset:
            error = ErrorCode.REQUEST_TIMED_OUT
        elif not p.enough_replicas_after_append():
            # Written and committed, but by fewer replicas than promised (Kafka's
            # DelayedProduce reports this; the producer retries, which may duplicate).
            error = ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND
        else:
            error = ErrorCode.NONE
        if op.answer is not None:
            op.answer(error, fx)
            return
        base = op.base_offset if error == ErrorCode.NONE else -1
        fx.send(op.src, m.ProduceResponse(op.request.correlation_id, op.request.tp, error, base,
                                          self._log_start(op.request.tp, error)))

    def _log_start(self, tp: TopicPartition, error: ErrorCode) -> int:
        """A produce answer's log_start_offset: the partition's log start, -1 with an error
        (Kafka's PartitionResponse; clients read it to tell a truncated log)."""
        p = self.partitions.get(tp)
        return p.log.log_start_offset if error == ErrorCode.NONE and p is not None else -1

    def _fail_delayed_produce(self, p: Partition, fx: Effects) -> None:
        for op in self.purgatory.pop_where(p.tp, lambda op: isinstance(op, DelayedProduce)):
            if op.answer is not None:
                op.answer(ErrorCode.NOT_LEADER_OR_FOLLOWER, fx)
            else:
                fx.send(op.src, m.ProduceResponse(op.request.correlation_id, p.tp, ErrorCode.NOT_LEADER_OR_FOLLOWER))

    def _expire(self, op_id: int, now: int, fx: Effects) -> None:
        op = self.purgatory.pop_id(op_id)
        if op is None:
            return
        p = self.partitions.get(op.request.tp)
        if p is None:  # deleted meanwhile (DeleteTopics)
            return
        if isinstance(op, DelayedProduce):
            self._answer_produce(p, op, fx)
        else:
            self._answer_fetch(p, op.src, op.request, fx)

    # -- coordinators (impl/coordinator/): most of their requests go by COORDINATOR_REQUESTS --

    @handles(m.FindCoordinatorRequest)
    def _on_FindCoordinatorRequest(self, src, req: m.FindCoordinatorRequest, now, fx) -> None:
        """The coordinator of a group or a transactional id: the leader of its partition."""
        tp = self.txns.tp_for(req.key) if req.key_type == m.TRANSACTION else self.groups.tp_for(req.key)
        leader = self.leader_of(tp)
        if leader == m.NO_LEADER:
            fx.send(src, m.FindCoordinatorResponse(req.correlation_id, ErrorCode.COORDINATOR_NOT_AVAILABLE))
        else:
            fx.send(src, m.FindCoordinatorResponse(req.correlation_id, ErrorCode.NONE, leader))

    # -- data plane: other requests -------------------------------------------------------

    @handles(m.ListOffsetsRequest)
    def _on_ListOffsetsRequest(self, src, req: m.ListOffsetsRequest, now, fx) -> None:
        p = self._led(src, req, m.ListOffsetsResponse, fx)
        if p is None:
            return
        if req.timestamp == m.LATEST_TIERED_TIMESTAMP:  # no tiered storage: nothing tiered (UnifiedLog)
            fx.send(src, m.ListOffsetsResponse(req.correlation_id, req.tp, ErrorCode.NONE, -1, -1))
            return
        latest = p.lso if req.isolation_level == m.READ_COMMITTED else p.hw
        if req.timestamp >= 0 or req.timestamp == m.MAX_TIMESTAMP:  # by time, among what may be read
            found = p.log.offset_for_timestamp(req.timestamp, latest) or (-1, -1)
            fx.send(src, m.ListOffsetsResponse(req.correlation_id, req.tp, ErrorCode.NONE, found[0], p.leader_epoch,
                                               found[1]))
            return
        offset = p.log.log_start_offset if req.timestamp in (m.EARLIEST_TIMESTAMP, m.EARLIEST_LOCAL_TIMESTAMP) else latest
        fx.send(src, m.ListOffsetsResponse(req.correlation_id, req.tp, ErrorCode.NONE, offset, p.leader_epoch))

    @handles(m.DeleteRecordsRequest)
    def _on_DeleteRecordsRequest(self, src, req: m.DeleteRecordsRequest, now, fx) -> None:
        """Move the log start offset up to `offset` (-1: the high watermark); followers
        follow from the log start their fetches return. Kafka refuses an offset above
        the high watermark with OFFSET_OUT_OF_RANGE (Partition.deleteRecordsOnLeader)."""
        p = self._led(src, req, m.DeleteRecordsResponse, fx)
        if p is None:
            return
        offset = p.hw if req.offset == m.HIGH_WATERMARK else req.offset
        if not 0 <= offset <= p.hw:
            fx.send(src, m.DeleteRecordsResponse(req.correlation_id, req.tp, ErrorCode.OFFSET_OUT_OF_RANGE,
                                                 p.log.log_start_offset))
            return
        p.log.advance_start(offset)
        fx.send(src, m.DeleteRecordsResponse(req.correlation_id, req.tp, ErrorCode.NONE, p.log.log_start_offset))

    @handles(m.DescribeLogDirsRequest)
    def _on_DescribeLogDirsRequest(self, src, req: m.DescribeLogDirsRequest, now, fx) -> None:
        fx.send(src, m.DescribeLogDirsResponse(req.correlation_id, getattr(self.disk, "root", "(simulated disk)"),
                                               tuple((p.tp, p.log.size_bytes) for p in self._sorted_partitions())))

    @handles(m.DescribeProducersRequest)
    def _on_DescribeProducersRequest(self, src, req: m.DescribeProducersRequest, now, fx) -> None:
        """The leader's producer state for a partition (Kafka's DescribeProducers, KIP-664)."""
        p = self._led(src, req, m.DescribeProducersResponse, fx)
        if p is None:
            return
        fx.send(src, m.DescribeProducersResponse(req.correlation_id, req.tp, ErrorCode.NONE, tuple(
            (pid, e.epoch, e.last_seq, e.coordinator_epoch, -1 if e.txn_first_offset is None else e.txn_first_offset)
            for pid, e in sorted(p.producers.producers.items()))))

    @handles(m.MetadataRequest)
    def _on_MetadataRequest(self, src, req: m.MetadataRequest, now, fx) -> None:
        states = [st for tp, st in sorted(self.metadata.items()) if req.topics is None or tp.topic in req.topics]
        known = {st.tp.topic for st in states}
        unknown = tuple(t for t in (req.topics or ()) if t not in known)
        fx.send(src, m.MetadataResponse(
            req.correlation_id, self.live_brokers,
            tuple(m.PartitionMetadata(st.tp, st.leader, st.leader_epoch, st.replicas, st.isr, st.elr,
                                 st.last_known_elr) for st in states),
            unknown, tuple((t, self.topic_configs[t]) for t in sorted(req.topics or ()) if t in self.topic_configs)))

    @handles(m.OffsetsForLeaderEpochRequest)
    def _on_OffsetsForLeaderEpochRequest(self, src, req: m.OffsetsForLeaderEpochRequest, now, fx) -> None:
        p = self.partitions.get(req.tp)
        if p is None or not p.is_leader:
            fx.send(src, m.OffsetsForLeaderEpochResponse(req.correlation_id, req.tp, ErrorCode.NOT_LEADER_OR_FOLLOWER))
            return
        if (not self.config.legacy_no_fetch_epoch_fencing and req.current_leader_epoch >= 0
                and req.current_leader_epoch != p.leader_epoch):
            error = (ErrorCode.FENCED_LEADER_EPOCH if req.current_leader_epoch < p.leader_epoch
                     else ErrorCode.UNKNOWN_LEADER_EPOCH)
            fx.send(src, m.OffsetsForLeaderEpochResponse(req.correlation_id, req.tp, error))
            return
        epoch, end = p.log.epochs.end_offset_for(req.leader_epoch, p.log.log_end_offset)
        fx.send(src, m.OffsetsForLeaderEpochResponse(req.correlation_id, req.tp, ErrorCode.NONE, epoch, end))

    @handles(m.InitProducerIdRequest)
    def _on_InitProducerIdRequest(self, src, req: m.InitProducerIdRequest, now, fx) -> None:
        if req.transactional_id is not None:
            self.txns.init_producer_id(src, req, now, fx)
            return
        pid = self.allocate_producer_id()
        if pid < 0:
            fx.send(src, m.InitProducerIdResponse(req.correlation_id, ErrorCode.COORDINATOR_NOT_AVAILABLE))
            return
        fx.send(src, m.InitProducerIdResponse(req.correlation_id, ErrorCode.NONE, pid, 0))

    # -- replica fetcher (follower side) --------------------------------------------------

    def _fetch_next(self, tp: TopicPartition, now: int, fx: Effects) -> None:
        f, p = self.fetchers.get(tp), self.partitions.get(tp)
        if f is None or p is None or p.leader in (m.NO_LEADER, self.id) or f.inflight is not None:
            return
        corr = self.next_correlation_id()
        epoch = -1 if self.config.legacy_no_fetch_epoch_fencing else p.leader_epoch
        if f.phase == "truncating":
            if not p.log.epochs.entries:
                f.phase = "fetching"  # no epochs to compare: keep only what the HW vouches for
                p.truncate_to(p.hw)
            else:
                msg = m.OffsetsForLeaderEpochRequest(corr, tp, self.id, epoch, p.log.epochs.latest_epoch)
        if f.phase == "fetching":
            msg = m.FetchRequest(corr, tp, self.id, p.log.log_end_offset, epoch, self.config.replica_fetch_max_bytes,
                                 self.config.replica_fetch_wait_max_ms, 1, self.broker_epoch)
        f.inflight = corr
        self._inflight[corr] = tp
        fx.send(m.broker_node(p.leader), msg)
        fx.timer(("fetch-timeout", tp, corr), now + self.config.replica_socket_timeout_ms)

    def _fetch_answered(self, corr: int) -> tuple[TopicPartition, FetcherState, Partition] | None:
        tp = self._inflight.pop(corr, None)
        f = self.fetchers.get(tp) if tp is not None else None
        if f is None or f.inflight != corr:
            return None
        f.inflight = None
        return tp, f, self.partitions[tp]

    def _backoff(self, tp: TopicPartition, now: int, fx: Effects) -> None:
        fx.timer(("fetch-backoff", tp), now + self.config.replica_fetch_backoff_ms)

    @handles(m.OffsetsForLeaderEpochResponse)
    def _on_OffsetsForLeaderEpochResponse(self, src, resp: m.OffsetsForLeaderEpochResponse, now, fx) -> None:
        found = self._fetch_answered(resp.correlation_id)
        if found is None:
            return
        tp, f, p = found
        if resp.error != ErrorCode.NONE:
            return self._backoff(tp, now, fx)
        target, agreed = p.truncation_target(resp.leader_epoch, resp.end_offset)
        p.truncate_to(target)
        if agreed:
            f.phase = "fetching"
        self._fetch_next(tp, now, fx)  # fetch, or ask again about our (new) latest epoch

    @handles(m.Disconnected)
    def _on_Disconnected(self, src, msg: m.Disconnected, now, fx) -> None:
        """A broker died: requests to it will not be answered. Fetches from it give up at
        once and back off; transaction markers and verifications go elsewhere or fail."""
        self.txns.on_disconnected(msg.node, now, fx)
        for corr in sorted(c for c, (_, req, node) in self._verifying.items() if node == msg.node):
            src_, req, _ = self._verifying.pop(corr)
            self._reply_produce(src_, req, ErrorCode.NOT_ENOUGH_REPLICAS, fx)
        for tp in sorted(self.fetchers):
            f, p = self.fetchers[tp], self.partitions.get(tp)
            if f.inflight is not None and p is not None and m.broker_node(p.leader) == msg.node:
                self._inflight.pop(f.inflight, None)
                f.inflight = None
                self._backoff(tp, now, fx)

    @handles(m.FetchResponse)
    def _on_FetchResponse(self, src, resp: m.FetchResponse, now, fx) -> None:
        found = self._fetch_answered(resp.correlation_id)
        if found is None:
            return
        tp, f, p = found
        if resp.error == ErrorCode.OFFSET_OUT_OF_RANGE:
            if resp.log_start_offset > p.log.log_end_offset:
                p.log.truncate_fully_and_start_at(resp.log_start_offset)
                p.changed()
            else:
                f.phase = "truncating"  # we are ahead of the leader: reconcile again
            return self._backoff(tp, now, fx)
        if resp.error != ErrorCode.NONE:
            return self._backoff(tp, now, fx)
        try:
            p.append_as_follower(resp.records, resp.high_watermark, now)
        except (KafkaError, CorruptRecordError):
            f.phase = "truncating"
            return self._backoff(tp, now, fx)
        # The leader's log start, as far as we have the log (Kafka's
        # maybeIncrementLogStartOffset on a follower): records deleted there go here too.
        p.log.advance_start(min(resp.log_start_offset, p.log.log_end_offset))
        self._fetch_next(tp, now, fx)
