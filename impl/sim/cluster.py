"""`Cluster(seed=...)`: brokers, controllers and clients on one simulated clock.

One seeded `random.Random` drives the network and the faults; events run in (time,
sequence) order, so the same seed and the same calls give the same history, byte
for byte. The code under test is the production state machines of `impl/`; the
simulator only moves their messages, fires their timers and breaks things:

- crash / restart a process (its SimDisk keeps the page cache),
- power loss (only fsynced bytes survive, the last write may tear),
- pause a process (a GC stall: it runs again later, with stale beliefs),
- network partitions of any shape, one-way links, either plane alone,
- message drop, duplication, reordering and extra delay,
- clock jumps (a process's clock moves; timestamps and time-based rules follow).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterable, Mapping

from kafkaproof.impl.broker import topic_config
from kafkaproof.impl.broker.broker import Broker
from kafkaproof.impl.broker.config import BrokerConfig, check_topic_fits
from kafkaproof.impl.client.config import ConsumerConfig, ProducerConfig
from kafkaproof.impl.client.consumer import Consumer, visible_batches
from kafkaproof.impl.client.producer import Producer
from kafkaproof.impl.config import ConfigError
from kafkaproof.impl.controller.config import ControllerConfig
from kafkaproof.impl.controller.controller import Controller
from kafkaproof.impl.controller.store import SimMetadataStore
from kafkaproof.impl.coordinator.group import OFFSETS_TOPIC
from kafkaproof.impl.coordinator.state_log import partition_for
from kafkaproof.impl.coordinator.transaction import TXN_STATE_TOPIC
from kafkaproof.impl.protocol import messages as m
from kafkaproof.impl.protocol.errors import ErrorCode
from kafkaproof.impl.protocol.messages import Note, Send, SetTimer, TopicPartition
from kafkaproof.impl.protocol.process import Process, TimerTable
from kafkaproof.impl.sim.dangers import DangerWatch
from kafkaproof.impl.sim.network import PLANES, Network
from kafkaproof.impl.storage.disk import SimDisk
from kafkaproof.properties.history import CONTROLLER, FAIL, INFO, INVOKE, NEMESIS, OK, History


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", errors="backslashreplace")


class Cluster:
    def __init__(self, seed: int = 0, brokers: int = 3, controllers: int = 1,
                 broker_props: Mapping[str, str | tuple[str, str]] | None = None) -> None:
        if brokers < 1 or controllers < 1:
            raise ConfigError(f"a cluster needs at least one broker and one controller (got {brokers}, {controllers})")
        self.seed = seed
        self.rng = random.Random(seed)
        self.config = BrokerConfig.from_properties(broker_props or {})
        self.now = 0
        self.events = 0
        self._queue: list[tuple[int, int, str, tuple]] = []
        self._seq = 0
        self.network = Network(self.rng)
        self.store = SimMetadataStore()
        self.history = History()
        self._recorded: dict[TopicPartition, tuple] = {}
        # Danger events (impl/sim/dangers.py): the hooks below call it; its per-step check is
        # attached by those who want it (run_one).
        self.dangers = DangerWatch(self)
        self.store.observers.append(self._record_partition_states)
        self.broker_ids = list(range(brokers))
        self.controller_ids = list(range(controllers))
        self.disks = {b: SimDisk() for b in self.broker_ids}
        self.procs: dict[str, Process] = {}
        self.observers: list[Callable[[str], None]] = []  # called after each process step (trace validation)
        # Called after a broker's step with the partitions whose role, HW or log end changed
        # since its last one (Partition.watch): the invariants and danger events (run_one).
        self.partition_watchers: list[Callable[[str, list], None]] = []
        self._changed: dict[str, dict[int, object]] = {}  # node -> id -> partition
        # Called with (src, dst, message, sent at, arrival times, refused) for every message
        # sent (the space-time diagram's arrows: kafkaproof/diagram.py); they must only read.
        self.message_watchers: list[Callable] = []
        self.process_of: dict[str, str] = {}  # client node -> its process in the history
        # The application fault kinds (member, zombie) a run's applications inject, by kind:
        # called with the fault's parameters (impl/sim/faults.inject; impl/engine/run.py).
        self.applications: dict[str, Callable[..., None]] = {}
        self.down: set[str] = set()
        self.machine_off: set[str] = set()  # down without a kernel to refuse connections
        # brokers that crashed or lost power since they were last in sync (faults.recovering)
        self.shut_down_uncleanly: set[int] = set()
        self.incarnation: dict[str, int] = {}
        self.paused_until: dict[str, int] = {}
        self.clock_offset: dict[str, int] = {}
        self.timers = TimerTable()
        self._late_copies: list[list] = []  # [message type, delay, copies left]: see duplicate_late
        for c in self.controller_ids:
            self._spawn(m.controller_node(c), Controller(c, ControllerConfig.of(self.config), self.store))
        for b in self.broker_ids:
            self._spawn(m.broker_node(b), self._new_broker(b))
        self.run_until(lambda: len(self.active_controller().alive) == brokers if self.active_controller() else False,
                       timeout_ms=30_000)

    # -- processes ------------------------------------------------------------------------

    def _new_broker(self, b: int) -> Broker:
        node = m.broker_node(b)
        broker = Broker(b, self.config, self.disks[b], self.controller_ids, incarnation=self.incarnation.get(node, 0))
        changed = self._changed

        def watch(p) -> None:
            changed.setdefault(node, {})[id(p)] = p
        broker.partition_watch = watch
        return broker

    def _spawn(self, node: str, proc) -> None:
        self.network.add_node(node)
        self.procs[node] = proc
        self.down.discard(node)
        self.machine_off.discard(node)
        self.incarnation[node] = self.incarnation.get(node, 0) + 1
        self._apply(node, proc.start(self._local(node)))

    def _local(self, node: str) -> int:
        return self.now + self.clock_offset.get(node, 0)

    def broker(self, b: int) -> Broker:
        return self.procs[m.broker_node(b)]

    def active_controller(self) -> Controller | None:
        for c in self.controller_ids:
            proc = self.procs.get(m.controller_node(c))
            if m.controller_node(c) not in self.down and proc.active:
                return proc
        return None

    # -- the event loop -------------------------------------------------------------------

    def _push(self, at: int, kind: str, payload: tuple) -> None:
        heapq.heappush(self._queue, (at, self._seq, kind, payload))
        self._seq += 1

    def _apply(self, node: str, effects: Iterable) -> None:
        for fx in effects:
            if isinstance(fx, Send):
                before = self.network.out_of_order
                arrivals = self.network.arrivals(node, fx.dst, fx.plane, self.now)
                late = self._late_copy(fx.message, arrivals[0]) if arrivals and self._late_copies else []
                arrivals += late
                if late or self.network.out_of_order > before:
                    self.dangers.out_of_order(fx.message)
                refused = bool(arrivals) and fx.dst in self.down and fx.dst not in self.machine_off
                for watch in self.message_watchers:
                    watch(node, fx.dst, fx.message, self.now, arrivals, refused)
                if refused:
                    # Connection refused: the sender hears about it at once.
                    self._push(arrivals[0], "deliver", (node, fx.dst, m.Disconnected(fx.dst, refused=True)))
                    continue
                for at in arrivals:
                    self._push(at, "deliver", (fx.dst, node, fx.message))
            elif isinstance(fx, SetTimer):
                token = self.timers.set(node, fx.key)
                at = max(self.now, fx.at - self.clock_offset.get(node, 0))
                self._push(at, "timer", (node, fx.key, token, self.incarnation[node]))
            elif isinstance(fx, Note):
                self.dangers.noted(fx)

    def step(self) -> bool:
        if not self._queue:
            return False
        at, _, kind, payload = heapq.heappop(self._queue)
        self.now = max(self.now, at)
        self.events += 1
        if kind == "call":
            payload[0]()
            return True
        node = payload[0]
        if node in self.down or node not in self.procs:
            return True
        if self.paused_until.get(node, -1) > self.now:
            self._push(self.paused_until[node], kind, payload)  # runs after the stall, in order
            return True
        proc = self.procs[node]
        if kind == "deliver":
            _, src, msg = payload
            self.dangers.delivered(src, node, msg)
            if isinstance(msg, m.WriteTxnMarkersRequest) and not msg.tp.topic.startswith("__"):
                # Marker deliveries go into the history (lane: the broker), so a timeline shows
                # a late one arriving (the pre-KIP-890 counterexamples).
                self.history.add(self.now, node, INFO, "txn-marker", topic=msg.tp.topic, partition=msg.tp.partition,
                                 value=f"{'COMMIT' if msg.committed else 'ABORT'} producer {msg.producer_id}"
                                       f" epoch {msg.producer_epoch}")
            self._apply(node, proc.handle(src, msg, self._local(node)))
        else:
            _, key, token, inc = payload
            if inc != self.incarnation[node] or not self.timers.live(node, key, token):
                return True
            self._apply(node, proc.on_timer(key, self._local(node)))
        changed = self._changed.pop(node, None)
        if changed and self.partition_watchers:
            held = proc.partitions  # (one the broker has since dropped is no longer watched)
            parts = [p for p in changed.values() if held.get(p.tp) is p]
            for watch in self.partition_watchers:
                watch(node, parts)
        for observe in self.observers:
            observe(node)
        return True

    def run_for(self, ms: int) -> None:
        end = self.now + ms
        while self._queue and self._queue[0][0] <= end:
            self.step()
        self.now = max(self.now, end)

    def run_until(self, condition: Callable[[], bool], timeout_ms: int = 60_000) -> bool:
        end = self.now + timeout_ms
        while not condition():
            if not self._queue or self._queue[0][0] > end:
                self.now = max(self.now, end)
                return condition()
            self.step()
        return True

    def at(self, delay_ms: int, fn: Callable[[], None]) -> None:
        """Run `fn` (an application action or a fault) `delay_ms` from now."""
        self._push(self.now + delay_ms, "call", (fn,))

    def every(self, period_ms: int, fn: Callable[[], None], until: int | None = None) -> None:
        def tick() -> None:
            if until is None or self.now <= until:
                fn()
                self.at(period_ms, tick)

        self.at(period_ms, tick)

    # -- topics ---------------------------------------------------------------------------

    def create_topic(self, topic: str, partitions: int = 1, replication_factor: int | None = None,
                     configs: dict[str, str] | None = None) -> None:
        """`configs`: the topic's overrides, by Kafka's topic-level names (min.insync.replicas, ...)."""
        rf = replication_factor or self.config.default_replication_factor
        min_isr = topic_config.value(configs or {}, "min.insync.replicas", self.config.min_insync_replicas)
        check_topic_fits(rf, min_isr, len(self.broker_ids))
        controller = self.active_controller()
        if controller is None:
            raise RuntimeError("no active controller to create the topic")
        self._apply(controller.node, controller.create_topic(topic, partitions, rf, self.now,
                                                             configs=tuple(sorted((configs or {}).items()))))
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        self.run_until(lambda: all(self.leader(tp) is not None for tp in tps), timeout_ms=10_000)

    def reassign(self, tp: TopicPartition, replicas: tuple[int, ...] | None) -> None:
        """Move `tp` to `replicas` through the controller (KIP-455: the new replicas join,
        catch up and enter the ISR, then the old ones leave); None cancels."""
        controller = self.active_controller()
        if controller is None:
            raise RuntimeError("no active controller to reassign the partition")
        self._apply(controller.node, controller.reassign(tp, replicas))

    def add_partitions(self, topic: str, total: int) -> None:
        controller = self.active_controller()
        self._apply(controller.node, controller.add_partitions(topic, total, self.now))
        self.record_fault("add-partitions", f"{topic} to {total}")

    def state(self, tp: TopicPartition) -> m.PartitionState | None:
        controller = self.active_controller()
        return controller.partitions.get(tp) if controller else self.store.read().partitions.get(tp)

    def leader(self, tp: TopicPartition) -> int | None:
        """The broker that leads `tp` and knows it, or None."""
        st = self.state(tp)
        if st is None or st.leader == m.NO_LEADER or m.broker_node(st.leader) in self.down:
            return None
        p = self.broker(st.leader).partitions.get(tp)
        return st.leader if p is not None and p.is_leader and p.leader_epoch == st.leader_epoch else None

    # -- clients --------------------------------------------------------------------------

    def producer(self, name: str, props: Mapping[str, str] | None = None, process: str | None = None) -> ProducerHandle:
        """`process`: the name in the history; give a producer and a consumer the same one
        to model one application that writes and reads (read-your-writes)."""
        node, proc = self._client(f"producer-{name}", Producer, ProducerConfig, props)
        if proc.txn is not None:
            self._ensure_internal_topic(TXN_STATE_TOPIC, self.config.transaction_state_partitions,
                                        self.config.transaction_state_replication_factor)
        self.process_of[node] = process or node
        return ProducerHandle(self, node, proc, process or node)

    def consumer(self, name: str, props: Mapping[str, str] | None = None, process: str | None = None) -> ConsumerHandle:
        node, proc = self._client(f"consumer-{name}", Consumer, ConsumerConfig, props)
        if proc.group is not None:
            self._ensure_internal_topic(OFFSETS_TOPIC, self.config.offsets_topic_partitions,
                                        self.config.offsets_topic_replication_factor)
        self.process_of[node] = process or node
        return ConsumerHandle(self, node, proc, process or node)

    def _ensure_internal_topic(self, topic: str, partitions: int, replication_factor: int) -> None:
        """Kafka creates __consumer_offsets / __transaction_state on the first FindCoordinator;
        so does the cluster when the first consumer with a group.id or the first
        transactional producer appears."""
        controller = self.active_controller()
        if controller is not None and not any(tp.topic == topic for tp in controller.partitions):
            self.create_topic(topic, partitions, min(replication_factor, len(self.broker_ids)))

    def _client(self, node: str, cls, config_cls, props) -> tuple[str, object]:
        proc = cls(node, config_cls.from_properties(props or {}), self._bootstrap(), random.Random(self.rng.random()))
        self._spawn(node, proc)
        return node, proc

    def _bootstrap(self) -> list[str]:
        return [m.broker_node(b) for b in self.broker_ids]

    def _record_partition_states(self, metadata) -> None:
        """Leader, epoch and ISR changes go into the history (process "controller"), so a
        timeline can show them beside the faults and client operations, and to the danger
        watch. Internal topics are left out."""
        for tp in sorted(metadata.partitions):
            st = metadata.partitions[tp]
            state, before = (st.leader, st.leader_epoch, st.isr, st.elr), self._recorded.get(tp)
            if tp.topic.startswith("__") or before == state:
                continue
            self._recorded[tp] = state
            if before is not None:
                self.dangers.partition_changed(tp, before, st)
            leader = st.leader if st.leader != m.NO_LEADER else "none"
            elr = f" elr {list(st.elr)}" if st.elr else ""
            self.history.add(self.now, CONTROLLER, INFO, "partition-state", topic=tp.topic, partition=tp.partition,
                             value=f"leader {leader} epoch {st.leader_epoch} isr {list(st.isr)}{elr}")

    # -- faults ---------------------------------------------------------------------------

    def record_fault(self, f: str, value: str) -> None:
        """Into the history, as the nemesis's: a fault, or an operator's action."""
        self.history.add(self.now, NEMESIS, INFO, f, value=value)

    def crash(self, node: str) -> None:
        """The process dies; a broker's disk keeps its page cache. Its peers' connections
        are closed by its kernel, so they learn of it at once (where the network lets the
        close through)."""
        self.down.add(node)
        if node.startswith("broker-"):
            self.shut_down_uncleanly.add(int(node.split("-")[1]))  # (no clean shutdown marker)
        for peer in sorted(self.procs):
            if peer != node and peer not in self.down and self.network.link_up(node, peer, PLANES[0]):
                notice = m.Disconnected(node, crashed_at=self._local(peer))
                self._push(self.now + 1, "deliver", (peer, node, notice))
        self.record_fault("crash", node)

    def shutdown(self, broker: int) -> None:
        """A clean stop: logs flushed and checkpoints written, as a controlled shutdown does;
        the restart then loads the logs instead of scanning them."""
        node = m.broker_node(broker)
        self.broker(broker).shutdown()
        self.down.add(node)
        self.record_fault("shutdown", node)

    def close_client(self, node: str) -> None:
        """An application closes a client (not a fault): it sends and hears nothing more."""
        self.down.add(node)

    def restart(self, node: str) -> None:
        if node.startswith("broker-"):
            self._spawn(node, self._new_broker(int(node.split("-")[1])))
        elif node.startswith("controller-"):
            self._spawn(node, Controller(int(node.split("-")[1]), ControllerConfig.of(self.config), self.store))
        else:
            raise ValueError(f"only brokers and controllers restart, not {node}")
        self.record_fault("restart", node)

    def power_loss(self, broker: int) -> None:
        """The machine loses power: the process dies and unfsynced bytes are gone."""
        node = m.broker_node(broker)
        self.down.add(node)
        self.machine_off.add(node)
        self.shut_down_uncleanly.add(broker)
        self.dangers.power_loss(broker)
        changed = self.disks[broker].power_loss(self.rng)
        self.record_fault("power-loss", f"{node} ({len(changed)} files lost data)")

    def pause(self, node: str, ms: int) -> None:
        self.paused_until[node] = self.now + ms
        self.record_fault("pause", f"{node} for {ms} ms")

    def partition(self, *groups: Iterable[str], planes: Iterable[str] = PLANES) -> None:
        groups = [sorted(g) for g in groups]
        self.network.partition(*groups, planes=planes)
        self.record_fault("partition", f"{groups} on {','.join(planes)}")

    def cut(self, src: str, dst: str, both_ways: bool = False, planes: Iterable[str] = PLANES) -> None:
        self.network.cut(src, dst, planes, both_ways)
        self.record_fault("cut", f"{src} -> {dst}" + (" both ways" if both_ways else "") + f" on {','.join(planes)}")

    def isolate(self, node: str, planes: Iterable[str] = PLANES) -> None:
        self.network.isolate(node, planes)
        self.record_fault("isolate", f"{node} on {','.join(planes)}")

    def heal(self, node: str | None = None) -> None:
        """Every link up and no losses; or only `node`'s links up."""
        if node is not None:
            self.network.heal_node(node)
            self.record_fault("heal", f"{node}'s links up")
            return
        self.network.heal()
        self.record_fault("heal", "all links up, no drops")

    def lossy_network(self, drop: float = 0.0, duplicate: float = 0.0, reorder: bool = False,
                      delay_ms: int = 0, late_ms: int = 0, stall_ms: int | None = None) -> None:
        """`late_ms`: duplicates arrive up to this much later than the original; `reorder`:
        some messages stall `stall_ms` in a connection their sender abandons (network.py)."""
        net = self.network
        net.drop_rate, net.duplicate_rate, net.reorder, net.extra_delay_ms = drop, duplicate, reorder, delay_ms
        net.late_ms = late_ms
        if stall_ms is not None:
            net.stall_ms = stall_ms
        late = f" late={late_ms}" if late_ms else ""  # (older histories have no late field)
        late += f" stall={net.stall_ms}" if reorder else ""
        self.record_fault("lossy-network", f"drop={drop} duplicate={duplicate} reorder={reorder} delay={delay_ms}{late}")

    def duplicate_late(self, message_type: type, delay_ms: int, count: int = 1) -> None:
        """The next `count` messages of this type arrive twice, the copy `delay_ms` late
        (a request resent on a new connection while the first copy was stuck)."""
        self._late_copies.append([message_type, delay_ms, count])
        self.record_fault("duplicate-late", f"next {count} {message_type.__name__} again after {delay_ms} ms")

    def _late_copy(self, message: object, arrival: int) -> list[int]:
        for entry in self._late_copies:
            if isinstance(message, entry[0]):
                entry[2] -= 1
                if entry[2] == 0:
                    self._late_copies.remove(entry)
                return [arrival + entry[1]]
        return []

    def clock_jump(self, node: str, ms: int) -> None:
        self.clock_offset[node] = self.clock_offset.get(node, 0) + ms
        self.record_fault("clock-jump", f"{node} {ms:+d} ms")

    # -- reading the outcome --------------------------------------------------------------

    def committed(self, tp: TopicPartition) -> list[tuple[int, str | None, str | None]]:
        """(offset, key, value) of every record below the leader's HW: the final read."""
        b = self.leader(tp)
        return [] if b is None else self.replica_records(b, tp)

    def coordinator(self, group_id: str) -> int | None:
        """The broker coordinating `group_id`: the leader of its __consumer_offsets partition."""
        return self.leader(TopicPartition(OFFSETS_TOPIC,
                                          partition_for(group_id, self.config.offsets_topic_partitions)))

    def group_offsets(self, group_id: str) -> dict[tuple[str, int], int]:
        """The group's committed offsets as its coordinator holds them: the final read."""
        b = self.coordinator(group_id)
        g = self.broker(b).groups.groups.get(group_id) if b is not None else None
        return {tuple(tp): o for tp, o in g.offsets.items()} if g is not None else {}

    def replica_records(self, broker: int, tp: TopicPartition) -> list[tuple[int, str | None, str | None]]:
        """(offset, key, value) of the records one replica would serve a read_committed
        consumer: below its own HW and last stable offset, aborted transactions left out
        (without transactions, simply everything below the HW)."""
        p = self.broker(broker).partitions.get(tp)
        if p is None:
            return []
        end = p.lso
        aborted = [(t.producer_id, t.first_offset) for t in p.log.aborted_transactions(0, end)]
        return [(r.offset, _text(r.key), _text(r.value))
                for batch in visible_batches(p.log.iter_batches(max_offset=end), aborted) for r in batch.records]


class ProducerHandle:
    """What an application holds: `send` records history and returns at once.

    Transactional producers: a transaction is one history op, f="txn", invoked at
    begin_transaction and completed ok (committed), fail (aborted) or info (unknown: the
    producer was fenced or failed mid-way), with every value it sent in `records`.
    Its sends are recorded as f="txn-send": their "ok" means written, not committed."""

    def __init__(self, cluster: Cluster, node: str, proc: Producer, process: str) -> None:
        self.cluster, self.node, self.proc, self.process = cluster, node, proc, process
        self.outcomes: dict[str, int] = {OK: 0, FAIL: 0, INFO: 0}
        self.txn_sends: list[list] | None = None  # [topic, partition, offset, key, value] of the open txn
        self.txn_count = 0

    def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        c = self.cluster
        f = "send" if self.txn_sends is None else "txn-send"
        c.history.add(c.now, self.process, INVOKE, f, topic=topic, key=_text(key), value=_text(value))
        entry = [topic, -1, -1, _text(key), _text(value)]
        if self.txn_sends is not None:
            self.txn_sends.append(entry)

        def done(outcome: str, tp: TopicPartition | None, offset: int | None, error: ErrorCode | None) -> None:
            self.outcomes[outcome] += 1
            if tp is not None and offset is not None:
                entry[1], entry[2] = tp.partition, offset
            c.history.add(c.now, self.process, outcome, f, topic=topic, key=_text(key), value=_text(value),
                          partition=tp.partition if tp else None, offset=offset,
                          error=error.name if error is not None else None)

        c._apply(self.node, self.proc.send(topic, key, value, c._local(self.node), done))

    # -- transactions ----------------------------------------------------------------------

    def init_transactions(self, on_done: Callable[[ErrorCode], None] | None = None) -> None:
        c = self.cluster
        c._apply(self.node, self.proc.init_transactions(c._local(self.node), on_done or (lambda e: None)))

    def begin_transaction(self) -> None:
        self.proc.begin_transaction()
        self.txn_count += 1
        self.txn_sends = []
        self.cluster.history.add(self.cluster.now, self.process, INVOKE, "txn", value=str(self.txn_count))

    def send_offsets_to_transaction(self, offsets: dict[TopicPartition, int], group: tuple[str, int, str],
                                    on_done: Callable[[ErrorCode], None] | None = None) -> None:
        c = self.cluster
        c._apply(self.node, self.proc.send_offsets_to_transaction(offsets, group, c._local(self.node),
                                                                  on_done or (lambda e: None)))

    def _txn_done(self, outcome: str, error: ErrorCode | None) -> None:
        c = self.cluster
        sends, self.txn_sends = self.txn_sends or [], None
        c.history.add(c.now, self.process, outcome, "txn", value=str(self.txn_count),
                      error=error.name if error is not None else None, records=tuple(tuple(s) for s in sends))

    def commit_transaction(self, on_done: Callable[[ErrorCode], None] | None = None) -> None:
        """Committed: the txn op completes ok. An abortable error leaves it open (the
        application aborts next); a fatal one completes it info."""
        c = self.cluster

        def done(error: ErrorCode) -> None:
            if error == ErrorCode.NONE:
                self._txn_done(OK, None)
            elif self.proc.txn.state == "fatal-error" and self.txn_sends is not None:
                self._txn_done(INFO, error)
            if on_done is not None:
                on_done(error)

        c._apply(self.node, self.proc.commit_transaction(c._local(self.node), done))

    def abort_transaction(self, on_done: Callable[[ErrorCode], None] | None = None) -> None:
        c = self.cluster

        def done(error: ErrorCode) -> None:
            if self.txn_sends is not None:
                self._txn_done(FAIL if error == ErrorCode.NONE else INFO,
                               None if error == ErrorCode.NONE else error)
            if on_done is not None:
                on_done(error)

        c._apply(self.node, self.proc.abort_transaction(c._local(self.node), done))

    def crashed(self) -> None:
        """The application died mid-transaction: its outcome is now the coordinator's."""
        if self.txn_sends is not None:
            self._txn_done(INFO, None)


class ConsumerHandle:
    """What an application holds. Group events (assigned / revoked / lost, with the
    generation) and commits (with their offsets) go into the history, for the group checkers."""

    def __init__(self, cluster: Cluster, node: str, proc: Consumer, process: str) -> None:
        self.cluster, self.node, self.proc, self.process = cluster, node, proc, process
        proc.on_auto_commit = lambda error, offsets: self._commit_done("auto", error, offsets)
        self.listener = None
        self.on_commit: Callable[[ErrorCode], None] | None = None  # after every commit, with its outcome

    def _record(self, type: str, f: str, tps_offsets, value: str | None = None, error: str | None = None) -> None:
        c = self.cluster
        c.history.add(c.now, self.process, type, f, value=value, error=error, records=tuple(
            (tp.topic, tp.partition, offset, None, None) for tp, offset in tps_offsets))

    def subscribe(self, topics: list[str] | None = None, pattern: str | None = None, listener=None) -> None:
        self.listener = listener
        c = self.cluster
        c._apply(self.node, self.proc.subscribe(c._local(self.node), topics, pattern, self))

    # The consumer calls these (as Kafka's ConsumerRebalanceListener); they record and pass on.
    def on_partitions_revoked(self, tps: list[TopicPartition]) -> None:
        self._group_event("revoked", tps, "on_partitions_revoked")

    def on_partitions_assigned(self, tps: list[TopicPartition]) -> None:
        self._group_event("assigned", tps, "on_partitions_assigned")

    def on_partitions_lost(self, tps: list[TopicPartition]) -> None:
        self._group_event("lost", tps, "on_partitions_lost")

    def _group_event(self, f: str, tps: list[TopicPartition], callback: str) -> None:
        group = self.proc.group
        self._record(OK, f, [(tp, -1) for tp in tps], value=f"{group.generation} {group.member_id}")
        if f == "assigned":  # the whole assignment of this generation, for the exclusivity checker
            self._record(OK, "owns", [(tp, -1) for tp in group.owned], value=f"{group.generation} {group.member_id}")
        if self.listener is not None and hasattr(self.listener, callback):
            getattr(self.listener, callback)(tps)

    def commit(self, sync: bool = True, offsets: dict[TopicPartition, int] | None = None,
               on_done: Callable[[ErrorCode], None] | None = None) -> None:
        """commitSync / commitAsync of the positions after what poll returned (or `offsets`)."""
        c = self.cluster
        what = dict(self.proc.consumed) if offsets is None else offsets
        kind = "sync" if sync else "async"
        self._record(INVOKE, "commit", sorted(what.items()), value=kind)

        def done(error: ErrorCode, committed: dict[TopicPartition, int]) -> None:
            self._commit_done(kind, error, committed, invoked=True)
            if on_done is not None:
                on_done(error)

        c._apply(self.node, self.proc.commit(c._local(self.node), done, what, sync))

    def _commit_done(self, kind: str, error: ErrorCode, offsets: dict[TopicPartition, int],
                     invoked: bool = False) -> None:
        group = self.proc.group
        if not invoked:
            self._record(INVOKE, "commit", sorted(offsets.items()), value=kind)
        self._record(OK if error == ErrorCode.NONE else FAIL, "commit", sorted(offsets.items()),
                     value=f"{kind} {group.generation if group else -1}",
                     error=None if error == ErrorCode.NONE else error.name)
        if self.on_commit is not None:
            self.on_commit(error)

    def close(self) -> None:
        c = self.cluster
        c._apply(self.node, self.proc.close(c._local(self.node)))

    def assign(self, tps: list[TopicPartition]) -> None:
        self.cluster._apply(self.node, self.proc.assign(tps, self.cluster._local(self.node)))

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.proc.seek(tp, offset)
        self.cluster.history.add(self.cluster.now, self.process, OK, "seek", topic=tp.topic,
                                 partition=tp.partition, offset=offset)

    def poll(self) -> list:
        c = self.cluster
        records, effects = self.proc.poll(c._local(self.node))
        c._apply(self.node, effects)
        if records:
            c.history.add(c.now, self.process, INVOKE, "poll")
            c.history.add(c.now, self.process, OK, "poll", records=tuple(
                (tp.topic, tp.partition, r.offset, _text(r.key), _text(r.value)) for tp, r in records))
        return records
