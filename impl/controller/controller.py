"""The controller as a sans-IO state machine.

Several controller nodes may run; the one holding the store's lease is active, the
others only watch heartbeats so they can take over. The active controller:

- registers brokers (a broker epoch each time one starts) and fences those whose
  heartbeats stop for `broker.session.timeout.ms`;
- creates topics (replica assignment) and adds partitions;
- elects leaders: clean (the first live ISR member in assignment order), then with
  `eligible.leader.replicas.enable` (KIP-966) the first live eligible leader replica,
  or, once ISR and ELR are both empty, the last known leader (uncleanly, as Kafka 4
  does without any setting), then, with `unclean.leader.election.enable`, any live
  replica; every election bumps the leader epoch;
- commits ISR changes proposed by leaders (AlterPartition), fenced by partition epoch;
- tells brokers over the control plane (LeaderAndIsr, UpdateMetadata).
"""

from __future__ import annotations

import zlib
from dataclasses import replace

from kafkaproof.impl.broker import acl, topic_config
from kafkaproof.impl.config import ConfigError
from kafkaproof.impl.controller.config import ControllerConfig
from kafkaproof.impl.controller.store import PRODUCER_ID_BLOCK, ClusterMetadata, MetadataStore
from kafkaproof.impl.protocol import messages as m
from kafkaproof.impl.protocol.errors import ErrorCode, KafkaError
from kafkaproof.impl.protocol.messages import CONTROL_PLANE, Effects, PartitionState, TopicPartition
from kafkaproof.impl.protocol.process import Dispatcher, handles

TICK_MS = 500


class Controller(Dispatcher):
    def __init__(self, node_id: int, config: ControllerConfig, store: MetadataStore) -> None:
        self.id = node_id
        self.node = m.controller_node(node_id)
        self.config = config
        self.store = store
        self.epoch: int | None = None  # set while active
        self.partitions: dict[TopicPartition, PartitionState] = {}
        self.alive: dict[int, int] = {}  # broker id -> last heartbeat (ms), for unfenced brokers
        self.last_tick = -1
        self.metadata_version = 0

    @property
    def active(self) -> bool:
        return self.epoch is not None

    def start(self, now: int) -> list:
        fx = Effects()
        self._tick(now, fx)
        return fx.items

    # -- time -----------------------------------------------------------------------------

    def on_timer(self, key: tuple, now: int) -> list:
        fx = Effects()
        self._route_or_fail(key[0])(key, now, fx)
        return fx.items

    @handles("tick")
    def _tick_due(self, key: tuple, now: int, fx: Effects) -> None:
        self._tick(now, fx)

    def _tick(self, now: int, fx: Effects) -> None:
        if self.last_tick >= 0 and now - self.last_tick > self.config.session_timeout_ms:
            # We were paused longer than a session: our view of heartbeats is stale, not
            # the brokers. Give them a fresh grace period instead of fencing everyone.
            self.alive = {b: now for b in self.alive}
        self.last_tick = now
        epoch = self.store.acquire(self.id, now, lease_ms=2 * TICK_MS)
        if epoch is None:
            self.epoch = None
        elif epoch != self.epoch:
            self._become_active(epoch, now, fx)
        if self.active:
            expired = sorted(b for b, seen in self.alive.items() if now - seen > self.config.session_timeout_ms)
            for b in expired:
                del self.alive[b]
                self._on_broker_gone(b, fx)
        fx.timer(("tick",), now + TICK_MS)

    def _become_active(self, epoch: int, now: int, fx: Effects) -> None:
        """Failover: load the committed state, assume registered brokers alive for one session."""
        self.epoch = epoch
        data = self.store.read()
        self.partitions = dict(data.partitions)
        self.alive = {b: self.alive.get(b, now) for b in data.broker_epochs if b in self.alive}
        self._elect(sorted(self.partitions), fx)
        self._send_leader_and_isr(sorted(self.partitions), fx, only=None)
        self._send_metadata(fx)

    # -- messages -------------------------------------------------------------------------

    def handle(self, src: str, msg: object, now: int) -> list:
        fx = Effects()
        self._route_or_fail(type(msg))(src, msg, now, fx)
        return fx.items

    def _route_or_fail(self, what: type | str):
        handler = self.route(what)
        if handler is None:
            name = what if isinstance(what, str) else what.__name__
            raise KafkaError(ErrorCode.INVALID_REQUEST, f"controller cannot handle {name}")
        return handler

    @handles(m.Disconnected)
    def _on_disconnected(self, src: str, msg: m.Disconnected, now: int, fx: Effects) -> None:
        pass  # liveness comes from heartbeats and sessions, not from connections

    @handles(m.BrokerHeartbeatRequest)
    def _on_heartbeat(self, src: str, req: m.BrokerHeartbeatRequest, now: int, fx: Effects) -> None:
        b = req.broker_id
        if not self.active:
            self.alive[b] = now  # a standby watches, to take over with a warm view
            return
        registered = self.store.read().broker_epochs.get(b)
        if req.broker_epoch >= 0 and req.broker_epoch == registered and b in self.alive:
            self.alive[b] = now
            fx.send(src, m.BrokerHeartbeatResponse(self.id, self.epoch, ErrorCode.NONE, req.broker_epoch), CONTROL_PLANE)
            if req.metadata_version < self._version():
                # It missed an update (lost on the way): send the current state again.
                fx.send(src, self._metadata_request(b), CONTROL_PLANE)
            return
        if req.broker_epoch >= 0:
            # A fenced broker, or one from before a restart: it must register again.
            fx.send(src, m.BrokerHeartbeatResponse(self.id, self.epoch, ErrorCode.STALE_BROKER_EPOCH), CONTROL_PLANE)
            return
        if b in self.alive:
            # Re-registration without a missed session: the broker restarted and lost its
            # memory. Treat it as failed first, so it is not trusted as leader (Kafka does).
            del self.alive[b]
            self._on_broker_gone(b, fx)
        block: list[int] = []

        def register(data: ClusterMetadata) -> None:
            data.broker_epochs[b] = data.next_broker_epoch
            data.next_broker_epoch += 1
            block.append(data.next_producer_id)
            data.next_producer_id += PRODUCER_ID_BLOCK

        if not self.store.commit(self.epoch, register):
            self.epoch = None
            return
        self.alive[b] = now
        if self.config.eligible_leader_replicas and (req.previous_broker_epoch < 0
                                                     or req.previous_broker_epoch != registered):
            self._forget_unclean(b)
        epoch = self.store.read().broker_epochs[b]
        fx.send(src, m.BrokerHeartbeatResponse(self.id, self.epoch, ErrorCode.NONE, epoch, (block[0], PRODUCER_ID_BLOCK)),
                CONTROL_PLANE)
        mine = sorted(tp for tp, st in self.partitions.items() if b in st.replicas)
        changed = self._elect(mine, fx)
        self._send_leader_and_isr(mine, fx, only=b)
        self._send_leader_and_isr(changed, fx, only=None, skip=b)
        self._send_metadata(fx)

    @handles(m.AlterPartitionRequest)
    def _on_alter_partition(self, src: str, req: m.AlterPartitionRequest, now: int, fx: Effects) -> None:
        if not self.active:
            return
        st = self.partitions.get(req.tp)
        registered = self.store.read().broker_epochs.get(req.broker_id)

        def answer(error: ErrorCode, state: PartitionState | None = None) -> None:
            fx.send(src, m.AlterPartitionResponse(req.tp, error, state), CONTROL_PLANE)

        if st is None:
            return answer(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
        if registered != req.broker_epoch or req.broker_id not in self.alive:
            return answer(ErrorCode.STALE_BROKER_EPOCH)
        if st.leader != req.broker_id or st.leader_epoch != req.leader_epoch:
            return answer(ErrorCode.FENCED_LEADER_EPOCH)
        if st.partition_epoch != req.partition_epoch:
            return answer(ErrorCode.INVALID_UPDATE_VERSION)
        added = set(req.new_isr) - set(st.isr)
        if (req.broker_id not in req.new_isr or not set(req.new_isr) <= set(st.replicas)
                or any(r not in self.alive for r in added)):
            return answer(ErrorCode.INVALID_REQUEST)  # KIP-841: only live replicas may join
        new = replace(self._with_isr(st, tuple(r for r in st.replicas if r in req.new_isr)),
                      partition_epoch=st.partition_epoch + 1)
        if new.adding and set(new.adding) <= set(new.isr):
            return self._complete_reassignment(new, fx, answer)
        if not self._commit([new]):
            return
        answer(ErrorCode.NONE, new)
        self._send_metadata(fx)

    # -- reassignments (KIP-455) and elections on request ---------------------------------

    @handles(m.ReassignPartitionRequest)
    def _on_reassign(self, src: str, req: m.ReassignPartitionRequest, now: int, fx: Effects) -> None:
        """Grow the replica set to old + target, let the new replicas catch up and join
        the ISR, then shrink to the target (the controller's part of KIP-455; Kafka's
        ReplicationControlManager). A target naming an unregistered broker is refused; a
        registered broker that is down simply keeps the reassignment pending."""
        error, message = ErrorCode.NONE, ""
        try:
            fx.items.extend(self.reassign(req.tp, req.replicas))
        except KafkaError as e:
            error, message = e.code, str(e)
        fx.send(src, m.TopicAdminResponse(req.correlation_id, error, message), CONTROL_PLANE)

    def reassign(self, tp: TopicPartition, target: tuple[int, ...] | None) -> list:
        """Start (or, with None, cancel) a reassignment of `tp`; its effects. Raises KafkaError."""
        fx = Effects()
        self._reassign(tp, target, fx)
        return fx.items

    def _reassign(self, tp: TopicPartition, target: tuple[int, ...] | None, fx: Effects) -> None:
        if not self.active:
            raise KafkaError(ErrorCode.NOT_CONTROLLER, f"controller {self.id} is not active")
        st = self.partitions.get(tp)
        if st is None:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"no partition {tp}")
        original = tuple(r for r in st.replicas if r not in st.adding)
        if target is None:
            if not st.adding and not st.removing:
                raise KafkaError(ErrorCode.NO_REASSIGNMENT_IN_PROGRESS, f"no reassignment of {tp} to cancel")
            target = original  # cancelling: back to where it started
        else:
            _check_assignment((target,), sorted(self.store.read().broker_epochs))
        adding = tuple(r for r in target if r not in original)
        removing = tuple(r for r in original if r not in target)
        grown = replace(st, replicas=tuple(target) + removing, adding=adding, removing=removing,
                        isr=tuple(r for r in st.isr if r in target or r in removing),
                        partition_epoch=st.partition_epoch + 1)
        if not adding:  # only removing, reordering or cancelling: done at once
            return self._complete_reassignment(grown, fx, was=st.replicas)
        if self._commit([grown]):
            self._send_leader_and_isr([tp], fx, only=None)
            self._send_metadata(fx)

    def _complete_reassignment(self, st: PartitionState, fx: Effects, answer=None,
                               was: tuple[int, ...] | None = None) -> None:
        """Every adding replica is in sync: the removing ones go, a removed leader is
        replaced by the first in-sync target replica, and every replica no longer in
        the set (`was`: the set before, when a cancel drops replicas that were joining)
        deletes its copy."""
        target = tuple(r for r in st.replicas if r not in st.removing)
        isr = tuple(r for r in st.isr if r in target) or st.isr
        done = replace(st, replicas=target, isr=isr, adding=(), removing=(), partition_epoch=st.partition_epoch + 1)
        if st.leader not in target:
            live = [r for r in target if r in isr and r in self.alive]
            done = replace(done, leader=live[0] if live else m.NO_LEADER, leader_epoch=st.leader_epoch + 1)
        if not self._commit([done]):
            return
        if answer is not None:
            answer(ErrorCode.NONE, done)
        self._send_leader_and_isr([st.tp], fx, only=None)
        self._delete_replicas([r for r in (was or st.replicas) if r not in target], [st.tp], fx)
        self._send_metadata(fx)

    @handles(m.ListReassignmentsRequest)
    def _on_list_reassignments(self, src: str, req: m.ListReassignmentsRequest, now: int, fx: Effects) -> None:
        ongoing = tuple(st for tp, st in sorted(self.partitions.items())
                        if (st.adding or st.removing) and (req.tps is None or tp in req.tps))
        fx.send(src, m.ListReassignmentsResponse(req.correlation_id, ongoing), CONTROL_PLANE)

    @handles(m.ElectLeadersRequest)
    def _on_elect_leaders(self, src: str, req: m.ElectLeadersRequest, now: int, fx: Effects) -> None:
        """PREFERRED: the first replica leads if it is alive and in sync; UNCLEAN: a
        leaderless partition gets any live replica, whatever the config (Kafka's
        ElectLeaders). ELECTION_NOT_NEEDED where nothing would change."""
        results, changed = [], []
        for tp in (req.tps if req.tps is not None else tuple(sorted(self.partitions))):
            st = self.partitions.get(tp)
            if st is None:
                results.append((tp, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"no partition {tp}"))
                continue
            error, new = self._elect_on_request(st, req.unclean)
            results.append((tp, error, "" if error == ErrorCode.NONE else error.name))
            if new is not None:
                changed.append(new)
        if changed and self._commit(changed):
            self._send_leader_and_isr([st.tp for st in changed], fx, only=None)
            self._send_metadata(fx)
        fx.send(src, m.ElectLeadersResponse(req.correlation_id, tuple(results)), CONTROL_PLANE)

    def _elect_on_request(self, st: PartitionState, unclean: bool) -> tuple[ErrorCode, PartitionState | None]:
        if unclean:
            if st.leader in self.alive:
                return ErrorCode.ELECTION_NOT_NEEDED, None
            new = self._election(st, unclean=True)
            if new.leader == m.NO_LEADER:
                return ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE, None
            return ErrorCode.NONE, new
        preferred = st.replicas[0]
        if st.leader == preferred:
            return ErrorCode.ELECTION_NOT_NEEDED, None
        if preferred not in self.alive or preferred not in st.isr:
            return ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE, None
        return ErrorCode.NONE, replace(st, leader=preferred, leader_epoch=st.leader_epoch + 1,
                                       partition_epoch=st.partition_epoch + 1)

    # -- admin ----------------------------------------------------------------------------

    def create_topic(self, topic: str, partitions: int, replication_factor: int, now: int,
                     first_partition: int = 0, configs: m.Configs = (),
                     assignment: tuple[tuple[int, ...], ...] = ()) -> list:
        """Create a topic (or, with `first_partition`, add partitions to it), with its
        config overrides and, if given, each new partition's replicas."""
        if not self.active:
            raise KafkaError(ErrorCode.NOT_CONTROLLER, f"controller {self.id} is not active")
        brokers = sorted(self.store.read().broker_epochs)
        if first_partition == 0:
            configs = configs or topic_config.INTERNAL_TOPIC_CONFIGS.get(topic, ())
            if topic == topic_config.TXN_STATE_TOPIC and not any(k == "min.insync.replicas" for k, _ in configs):
                # transaction.state.log.min.isr (Kafka's TransactionLog topic config), at most the
                # replication factor: like the factor, capped where there are fewer brokers.
                configs = (*configs, ("min.insync.replicas",
                                      str(min(self.config.transaction_state_min_isr, replication_factor))))
        if assignment:
            _check_assignment(assignment, brokers)
            partitions, replication_factor = len(assignment), len(assignment[0])
        if replication_factor > len(brokers):
            raise KafkaError(ErrorCode.INVALID_REPLICATION_FACTOR,
                             f"replication factor {replication_factor} is larger than the {len(brokers)} registered brokers")
        if partitions < 1:
            raise KafkaError(ErrorCode.INVALID_PARTITIONS, f"{partitions} partitions")
        existing = [tp for tp in self.partitions if tp.topic == topic]
        if first_partition == 0 and existing:
            raise KafkaError(ErrorCode.TOPIC_ALREADY_EXISTS, f"topic {topic!r} already exists")
        # Kafka starts the round-robin assignment at a random broker; a hash keeps it seeded.
        start = zlib.crc32(topic.encode()) % len(brokers)
        new = []
        for p in range(first_partition, first_partition + partitions):
            replicas = (assignment[p - first_partition] if assignment else
                        tuple(brokers[(start + p + j) % len(brokers)] for j in range(replication_factor)))
            live = [r for r in replicas if r in self.alive]
            leader = live[0] if live else m.NO_LEADER
            new.append(PartitionState(TopicPartition(topic, p), leader, 0, tuple(live) or replicas, replicas, 0))
        fx = Effects()
        if self._commit(new, topic_configs={topic: dict(configs)} if configs else None):
            self._send_leader_and_isr([st.tp for st in new], fx, only=None)
            self._send_metadata(fx)
        return fx.items

    @handles(m.CreateTopicRequest, m.CreatePartitionsRequest, m.DeleteTopicRequest, m.AlterTopicConfigRequest)
    def _on_topic_admin(self, src: str, req, now: int, fx: Effects) -> None:
        """CreateTopic, CreatePartitions, DeleteTopic, AlterTopicConfig from a broker (KIP-590
        forwarding)."""
        error, message = ErrorCode.NONE, ""
        try:
            if isinstance(req, m.DeleteTopicRequest):
                self.delete_topic(req.topic, fx)
            elif isinstance(req, m.CreatePartitionsRequest):
                fx.items.extend(self.add_partitions(req.topic, req.total, now, req.assignment))
            elif isinstance(req, m.AlterTopicConfigRequest):
                self.alter_topic_config(req, fx)
            else:
                rf = req.replication_factor if req.replication_factor > 0 else self.config.default_replication_factor
                partitions = req.partitions if req.partitions > 0 else self.config.num_partitions
                if req.if_absent:
                    # Creation on first use (topics, __consumer_offsets) never fails for want of
                    # brokers: a one-broker `serve` with offsets.topic.replication.factor=3 works.
                    rf = min(rf, len(self.store.read().broker_epochs))
                fx.items.extend(self.create_topic(req.topic, partitions, rf, now, configs=req.configs,
                                                  assignment=req.assignment))
        except KafkaError as e:
            if not (getattr(req, "if_absent", False) and e.code == ErrorCode.TOPIC_ALREADY_EXISTS):
                error, message = e.code, str(e)
        fx.send(src, m.TopicAdminResponse(req.correlation_id, error, message), CONTROL_PLANE)

    @handles(m.AlterAclsRequest)
    def _on_alter_acls(self, src: str, req: m.AlterAclsRequest, now: int, fx: Effects) -> None:
        """CreateAcls and DeleteAcls (forwarded): the ACLs are metadata, committed like the
        rest and sent to every broker in UpdateMetadata (KRaft's AccessControlEntryRecords)."""
        if not self.active:
            fx.send(src, m.AlterAclsResponse(req.correlation_id, ErrorCode.NOT_CONTROLLER,
                                             f"controller {self.id} is not active"), CONTROL_PLANE)
            return
        current = set(self.store.read().acls)
        deleted = tuple(tuple(sorted(a for a in current if acl.matches_filter(a, f))) for f in req.delete)
        new = tuple(sorted((current | set(req.create)) - {a for group in deleted for a in group}))

        def apply(data: ClusterMetadata) -> None:
            data.acls = new

        if self.epoch is None or not self.store.commit(self.epoch, apply):
            self.epoch = None
            fx.send(src, m.AlterAclsResponse(req.correlation_id, ErrorCode.NOT_CONTROLLER,
                                             "a newer controller holds the store"), CONTROL_PLANE)
            return
        self._send_metadata(fx)
        fx.send(src, m.AlterAclsResponse(req.correlation_id, ErrorCode.NONE, deleted=deleted), CONTROL_PLANE)

    def delete_topic(self, topic: str, fx: Effects) -> None:
        if not self.active:
            raise KafkaError(ErrorCode.NOT_CONTROLLER, f"controller {self.id} is not active")
        tps = sorted(tp for tp in self.partitions if tp.topic == topic)
        if not tps:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"no topic {topic!r}")

        def remove(data: ClusterMetadata) -> None:
            for tp in tps:
                data.partitions.pop(tp, None)
            data.topic_configs.pop(topic, None)

        if not self.store.commit(self.epoch, remove):
            self.epoch = None
            raise KafkaError(ErrorCode.NOT_CONTROLLER, "a newer controller holds the store")
        replicas = sorted({r for tp in tps for r in self.partitions[tp].replicas})
        for tp in tps:
            del self.partitions[tp]
        self._delete_replicas(replicas, tps, fx)
        self._send_metadata(fx)

    def _delete_replicas(self, brokers: list[int], tps: list[TopicPartition], fx: Effects) -> None:
        """StopReplica with delete: these brokers no longer hold these partitions (a deleted
        topic, a replica a reassignment moved away)."""
        epochs = self.store.read().broker_epochs
        for b in brokers:
            fx.send(m.broker_node(b), m.StopReplicaRequest(self.id, self.epoch, tuple(tps), epochs.get(b, -1),
                                                           delete=True), CONTROL_PLANE)

    def add_partitions(self, topic: str, total: int, now: int, assignment: tuple[tuple[int, ...], ...] = ()) -> list:
        existing = [tp for tp in self.partitions if tp.topic == topic]
        if not existing:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"no topic {topic!r}")
        if total <= len(existing):
            raise KafkaError(ErrorCode.INVALID_PARTITIONS, f"{topic} has {len(existing)} partitions; can only grow")
        if assignment and len(assignment) != total - len(existing):
            raise KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT, f"{len(assignment)} assignments for"
                             f" {total - len(existing)} new partitions")
        rf = len(self.partitions[existing[0]].replicas)
        return self.create_topic(topic, total - len(existing), rf, now, first_partition=len(existing),
                                 assignment=assignment)

    def alter_topic_config(self, req: m.AlterTopicConfigRequest, fx: Effects) -> None:
        """A topic's new overrides, checked, stored and sent to every broker; a change that
        now allows unclean election elects leaders for the topic's offline partitions
        (Kafka's controller does the same on the config change)."""
        if not self.active:
            raise KafkaError(ErrorCode.NOT_CONTROLLER, f"controller {self.id} is not active")
        tps = sorted(tp for tp in self.partitions if tp.topic == req.topic)
        if not tps:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"no topic {req.topic!r}")
        try:
            current = {} if req.replace else self._topic_configs(req.topic)
            new = topic_config.incremental(current, list(req.ops))
        except ConfigError as e:
            raise KafkaError(ErrorCode.INVALID_CONFIG, str(e)) from None
        problem = topic_config.refusal(new)
        if problem is not None:
            raise KafkaError(ErrorCode.INVALID_CONFIG, problem)
        if req.validate_only:
            return
        if not self._commit([], topic_configs={req.topic: new}):
            raise KafkaError(ErrorCode.NOT_CONTROLLER, "a newer controller holds the store")
        changed = self._elect(tps, fx)
        self._send_leader_and_isr(changed, fx, only=None)
        self._send_metadata(fx)

    def _topic_configs(self, topic: str) -> dict[str, str]:
        return self.store.read().topic_configs.get(topic, {})

    # -- elections ------------------------------------------------------------------------

    def _on_broker_gone(self, b: int, fx: Effects) -> None:
        """Fence broker `b`: move leadership away from it and take it out of every ISR."""
        changed = []
        for tp in sorted(self.partitions):
            st = self.partitions[tp]
            if st.leader == b:
                changed.append(self._election(st, exclude=b))
            elif b in st.isr and (len(st.isr) > 1 or self.config.eligible_leader_replicas):
                # (KIP-966 takes out even the last member: it stays eligible, in the ELR.)
                changed.append(replace(self._with_isr(st, tuple(r for r in st.isr if r != b)),
                                       partition_epoch=st.partition_epoch + 1))
        if changed and self._commit(changed):
            self._send_leader_and_isr([st.tp for st in changed], fx, only=None)
        self._send_metadata(fx)

    def _election(self, st: PartitionState, exclude: int | None = None, unclean: bool = False) -> PartitionState:
        """`unclean`: allowed whatever the configuration (ElectLeaders' UNCLEAN)."""
        live = [r for r in st.replicas if r in self.alive and r != exclude]
        clean = [r for r in live if r in st.isr]
        eligible = [r for r in live if r in st.elr] if self.config.eligible_leader_replicas else []
        if clean:
            isr = tuple(r for r in st.isr if r in self.alive and r != exclude)
            leader = clean[0]
        elif eligible:
            # KIP-966: the ISR is empty; an eligible replica holds everything below the HW.
            leader, isr = eligible[0], (eligible[0],)
        elif (last_known := self._last_known_leader(st, live)) is not None:
            # KIP-966 as Kafka 4 runs it: nobody in ISR or ELR (each member left by an
            # unclean shutdown), so the last leader leads again, uncleanly, with no setting
            # asked (PartitionChangeBuilder.canElectLastKnownLeader). It may have lost its tail.
            return self._unclean(st, last_known)
        elif live and (unclean or topic_config.value(self._topic_configs(st.tp.topic), "unclean.leader.election.enable",
                                                     self.config.unclean_leader_election)):
            # Unclean: an out-of-sync replica leads; whatever only the old ISR had is lost.
            return self._unclean(st, live[0])
        elif self.config.eligible_leader_replicas:
            leader, isr = m.NO_LEADER, ()  # offline; the fenced members wait in the ELR
        else:
            # No eligible leader: stay offline, remember the last ISR so its members
            # can lead again when they return (Kafka keeps the last ISR member).
            leader, isr = m.NO_LEADER, st.isr
        return replace(self._with_isr(st, isr), leader=leader, leader_epoch=st.leader_epoch + 1,
                       partition_epoch=st.partition_epoch + 1)

    def _last_known_leader(self, st: PartitionState, live: list[int]) -> int | None:
        """The last known leader, if KIP-966 may elect it: ISR and ELR empty, and it is
        alive (KAFKA-19522: Kafka 4.0 elected it even when fenced; 4.1 does not)."""
        if (self.config.eligible_leader_replicas and not st.isr and not st.elr and len(st.last_known_elr) == 1
                and st.last_known_elr[0] in live):
            return st.last_known_elr[0]
        return None

    @staticmethod
    def _unclean(st: PartitionState, leader: int) -> PartitionState:
        """An unclean election: the ISR is the new leader alone, and nobody is eligible
        (Kafka clears the ELR fields after an unclean election)."""
        return replace(st, leader=leader, leader_epoch=st.leader_epoch + 1, isr=(leader,), elr=(),
                       partition_epoch=st.partition_epoch + 1)

    def _with_isr(self, st: PartitionState, isr: tuple[int, ...]) -> PartitionState:
        """`st` with ISR `isr` and, under KIP-966, its ELR kept as Kafka's controller keeps it
        (PartitionChangeBuilder; UpdateElr in the KIP's TLA+ specification): at or above the
        topic's min.insync.replicas nobody else is eligible; below it, the members that left
        join the eligible ones (an unclean shutdown takes one out: `_forget_unclean`)."""
        if not self.config.eligible_leader_replicas:
            return replace(st, isr=isr)
        min_isr = topic_config.value(self._topic_configs(st.tp.topic), "min.insync.replicas",
                                     self.config.min_insync_replicas)
        if len(isr) >= min_isr:
            return replace(st, isr=isr, elr=())
        left = (set(st.elr) | set(st.isr)).difference(isr)
        return replace(st, isr=isr, elr=tuple(r for r in st.replicas if r in left))

    def _with_last_known_leader(self, new: PartitionState) -> PartitionState:
        """KIP-966's LastKnownElr, kept as Kafka 4 keeps it for balanced recovery
        (PartitionChangeBuilder.maybeUpdateLastKnownLeader): the leader of the moment the
        ISR first empties, forgotten once the partition has a leader."""
        old = self.partitions.get(new.tp)
        if not self.config.eligible_leader_replicas or old is None:
            return new
        if old.isr and not new.isr and old.leader != m.NO_LEADER and old.last_known_elr != (old.leader,):
            return replace(new, last_known_elr=(old.leader,))
        if new.leader != m.NO_LEADER and new.last_known_elr:
            return replace(new, last_known_elr=())
        return new

    def _forget_unclean(self, b: int) -> None:
        """Broker `b` registered after an unclean shutdown (KAFKA-15586: not the epoch it
        last held): it may have lost its unflushed tail, so it is eligible nowhere."""
        changed = [replace(st, elr=tuple(r for r in st.elr if r != b), partition_epoch=st.partition_epoch + 1)
                   for tp, st in sorted(self.partitions.items()) if b in st.elr]
        if changed:
            self._commit(changed)

    def _elect(self, tps: list[TopicPartition], fx: Effects) -> list[TopicPartition]:
        """Elect leaders for partitions whose leader is not alive; returns the changed ones."""
        changed = []
        for tp in tps:
            st = self.partitions[tp]
            if st.leader not in self.alive:
                new = self._election(st)
                if new.leader != st.leader:
                    changed.append(new)
        if changed and not self._commit(changed):
            return []
        return [st.tp for st in changed]

    # -- writing and telling --------------------------------------------------------------

    def _commit(self, states: list[PartitionState], topic_configs: dict[str, dict[str, str]] | None = None) -> bool:
        def apply(data: ClusterMetadata) -> None:
            for st in states:
                data.partitions[st.tp] = st
            for topic, configs in (topic_configs or {}).items():
                if configs:
                    data.topic_configs[topic] = dict(configs)
                else:
                    data.topic_configs.pop(topic, None)

        states = [self._with_last_known_leader(st) for st in states]
        if self.epoch is None or not self.store.commit(self.epoch, apply):
            self.epoch = None  # deposed: a newer controller holds the store
            return False
        for st in states:
            self.partitions[st.tp] = st
        return True

    def _send_leader_and_isr(self, tps: list[TopicPartition], fx: Effects, only: int | None,
                             skip: int | None = None) -> None:
        # Every replica is told, fenced ones included: a leader whose heartbeats cannot
        # reach us may still hear us, and must step down.
        by_broker: dict[int, list[PartitionState]] = {}
        for tp in tps:
            st = self.partitions[tp]
            for r in st.replicas:
                if (only is None or r == only) and r != skip:
                    by_broker.setdefault(r, []).append(st)
        data = self.store.read()
        for b in sorted(by_broker):
            topics = sorted({st.tp.topic for st in by_broker[b]} & set(data.topic_configs))
            fx.send(m.broker_node(b), m.LeaderAndIsrRequest(self.id, self.epoch, tuple(by_broker[b]),
                                                            data.broker_epochs.get(b, -1), _configs(data, topics)),
                    CONTROL_PLANE)

    def _version(self) -> int:
        """Orders metadata snapshots, across controllers too: controller epoch first."""
        return (self.epoch or 0) << 32 | self.metadata_version

    def _metadata_request(self, b: int, states: tuple[PartitionState, ...] | None = None) -> m.UpdateMetadataRequest:
        if states is None:
            states = tuple(self.partitions[tp] for tp in sorted(self.partitions))
        data = self.store.read()
        return m.UpdateMetadataRequest(self.id, self.epoch, tuple(sorted(self.alive)), states, self._version(),
                                       data.broker_epochs.get(b, -1), _configs(data, sorted(data.topic_configs)),
                                       data.acls)

    def _send_metadata(self, fx: Effects) -> None:
        self.metadata_version += 1
        states = tuple(self.partitions[tp] for tp in sorted(self.partitions))  # once, for every broker
        for b in sorted(self.alive):
            fx.send(m.broker_node(b), self._metadata_request(b, states), CONTROL_PLANE)


def _configs(data: ClusterMetadata, topics: list[str]) -> m.TopicConfigs:
    return tuple((t, tuple(sorted(data.topic_configs[t].items()))) for t in topics)


def _check_assignment(assignment: tuple[tuple[int, ...], ...], brokers: list[int]) -> None:
    """Kafka's checks of explicit replica assignments (ReplicationControlManager)."""
    for replicas in assignment:
        if not replicas:
            raise KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT, "a partition with no replicas")
        if len(set(replicas)) != len(replicas):
            raise KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT, f"duplicate replicas in {list(replicas)}")
        if len(replicas) != len(assignment[0]):
            raise KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT, "partitions with different replication factors")
        unknown = [r for r in replicas if r not in brokers]
        if unknown:
            raise KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                             f"broker {unknown[0]} is not registered (replicas {list(replicas)})")
