"""Randomized campaigns for transactions: Hypothesis drives the faults.

Two transactional producer applications (impl/sim/txn_app.py) write transaction after
transaction to `events`; an exactly-once application group (consume-transform-produce,
impl/sim/consumer_app.py) copies `events` to `events-out`; a read_committed consumer
reads both. Rules crash a transaction coordinator or any broker, crash a producer
application (often mid-transaction; it restarts with its transactional.id), start a
zombie instance beside a live one, crash a member of the exactly-once group, and
delay transaction markers (their duplicates arrive seconds late). At teardown the
cluster is healed and the transaction checkers judge the history and the final
read_committed logs.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import event, target
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule
from kafkaproof.impl.protocol.messages import TopicPartition, broker_node
from kafkaproof.impl.sim.campaign import STATS, guarantee_rows, judge, run_campaign
from kafkaproof.impl.sim.cluster import Cluster
from kafkaproof.impl.sim.consumer_app import OUTPUT_SUFFIX, ConsumerApp
from kafkaproof.impl.sim.txn_app import TxnProducerApp
from kafkaproof.impl.sim.workload import settle
from kafkaproof.properties import TXN_GUARANTEES, check_all

TOPIC, GROUP = "events", "eos"
BROKER = {"transaction.state.log.num.partitions": "3", "offsets.topic.num.partitions": "3",
          "group.initial.rebalance.delay.ms": "0", "min.insync.replicas": "2", "replica.lag.time.max.ms": "3000"}
PRODUCER = {"transactional.id": "txn", "transaction.timeout.ms": "10000", "request.timeout.ms": "5000"}
CONSUMER = {"group.id": GROUP, "auto.offset.reset": "earliest", "session.timeout.ms": "6000",
            "heartbeat.interval.ms": "1000", "request.timeout.ms": "5000"}
FAULTS = ("coordinator-crash", "broker-crash", "producer-crash", "late-markers", "zombie", "member-crash")
MUST_HOLD = ("transactions", "exactly-once-processing", "exactly-once")

# name -> (broker settings, guarantees that must hold, description)
TXN_CONFIGS = {
    "kip890": ({}, MUST_HOLD, "the default: epoch bump per transaction, partition verification (KIP-890)"),
    "legacy-kip890": ({"legacy.transactions.without.kip890": "true"}, (),
                      "legacy.transactions.without.kip890=true: Kafka before KIP-890"),
}
STEPS = 15


class TxnMachine(RuleBasedStateMachine):
    config = "kip890"
    record_only = False

    @initialize(seed=st.integers(0, 2**32 - 1))
    def setup(self, seed):
        broker, _, _ = TXN_CONFIGS[self.config]
        self.c = Cluster(seed=seed, broker_props={**BROKER, **broker})
        for topic in (TOPIC, TOPIC + OUTPUT_SUFFIX):
            self.c.create_topic(topic, 2, 3)
        self.tps = [TopicPartition(t, p) for t in (TOPIC, TOPIC + OUTPUT_SUFFIX) for p in range(2)]
        self.apps = [TxnProducerApp(self.c, str(i), PRODUCER, TOPIC) for i in range(2)]
        self.members = [ConsumerApp(self.c, f"eos{i}", "transactional", CONSUMER, topics=[TOPIC]) for i in range(2)]
        self.reader = self.c.consumer("reader", {"isolation.level": "read_committed", "auto.offset.reset": "earliest"})
        self.reader.assign(self.tps)
        self.c.every(50, self.reader.poll)
        self.faults = 0

    def _fault(self, kind: str) -> None:
        self.faults += 1
        STATS[kind] += 1
        event(f"fault: {kind}")
        self.c.run_for(300)

    def _up(self) -> list[int]:
        return [b for b in self.c.broker_ids if broker_node(b) not in self.c.down]

    def _crash_broker(self, b: int, kind: str) -> None:
        node = broker_node(b)
        self.c.crash(node)
        self.c.at(self.c.rng.randint(1000, 5000), lambda: self.c.restart(node) if node in self.c.down else None)
        self._fault(kind)

    @rule(ms=st.sampled_from([100, 1000, 3000]))
    def advance(self, ms):
        self.c.run_for(ms)

    @precondition(lambda self: len(self._up()) == 3)
    @rule(data=st.data())
    def crash_coordinator(self, data):
        app = data.draw(st.sampled_from(self.apps))
        coordinator = self.c.leader(self.c.broker(0).txns.tp_for(app.props["transactional.id"]))
        if coordinator is not None:
            self._crash_broker(coordinator, "coordinator-crash")

    @precondition(lambda self: len(self._up()) == 3)
    @rule(data=st.data())
    def crash_broker(self, data):
        self._crash_broker(data.draw(st.sampled_from(self.c.broker_ids)), "broker-crash")

    @rule(data=st.data())
    def crash_producer(self, data):
        if data.draw(st.sampled_from(self.apps)).crash_instance():
            STATS["producer-crash-mid-transaction"] += 1
        self._fault("producer-crash")

    @rule()
    def delay_markers(self):
        """Duplicates of requests - transaction markers among them - arrive up to 2 s late."""
        self.c.lossy_network(duplicate=0.3, late_ms=2000)
        self.c.at(3000, self.c.heal)
        self._fault("late-markers")

    @rule(data=st.data())
    def zombie(self, data):
        data.draw(st.sampled_from(self.apps)).zombie()
        self._fault("zombie")

    @precondition(lambda self: len(self.members) < 6)
    @rule(data=st.data())
    def crash_member(self, data):
        live = [m for m in self.members if m.alive]
        if live:
            data.draw(st.sampled_from(live)).crash()
        self.members.append(ConsumerApp(self.c, f"eos{len(self.members)}", "transactional", CONSUMER,
                                        topics=[TOPIC]))
        self._fault("member-crash")

    def teardown(self):
        if not hasattr(self, "c"):
            return
        for app in self.apps:
            app.stopped = True
        settle(self.c)
        self.c.run_for(20_000)  # the exactly-once group catches up
        committed = {tuple(tp): self.c.committed(tp) for tp in self.tps}
        verdict = check_all(self.c.history, committed, self.c.group_offsets(GROUP))
        target(float(self.faults), label="faults injected")
        STATS["examples"] += 1
        STATS["transactions committed"] += sum(1 for op in self.c.history.ops if op.f == "txn" and op.type == "ok")
        STATS["fenced"] += sum(app.fenced for app in self.apps)
        STATS["outputs"] += sum(len(committed[(TOPIC + OUTPUT_SUFFIX, p)]) for p in range(2))
        _, must_hold, _ = TXN_CONFIGS[self.config]
        judge(self.config, verdict, must_hold, self.record_only)


def txn_machine_for(config: str, record_only: bool = False) -> type[TxnMachine]:
    return type(f"Txn_{config}", (TxnMachine,), {"config": config, "record_only": record_only})


def txn_guarantee_table(examples: int) -> dict[str, dict[str, int]]:
    machines = {config: txn_machine_for(config, record_only=True) for config in TXN_CONFIGS}
    return guarantee_rows(machines, TXN_GUARANTEES, FAULTS, examples, STEPS)


def run_txn_campaign(machine, **overrides) -> Counter:
    return run_campaign(machine, STEPS, **overrides)
