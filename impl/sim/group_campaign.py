"""Randomized campaigns for consumer groups: Hypothesis drives members and faults.

A producer writes to every topic matching `events.*` all along; an application group
(impl/sim/consumer_app.py) consumes them with one commit strategy and one assignor.
Rules add members, close them, crash them, stall them past max.poll.interval.ms, crash
the group coordinator or any broker, create a topic the pattern matches, and add
partitions. At teardown everything is healed, the group catches up, and the group
checkers judge the history: who owned what in each generation, what was committed,
and what the application processed.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import event, target
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from kafkaproof.impl.protocol.messages import TopicPartition, broker_node
from kafkaproof.impl.sim.campaign import STATS, guarantee_rows, judge, run_campaign
from kafkaproof.impl.sim.cluster import Cluster
from kafkaproof.impl.sim.consumer_app import ConsumerApp
from kafkaproof.impl.sim.workload import settle
from kafkaproof.properties import GROUP_GUARANTEES, check_all

GROUP = "app"
PATTERN = "events.*"
BROKER = {"offsets.topic.num.partitions": "3", "group.initial.rebalance.delay.ms": "0",
          "min.insync.replicas": "2", "replica.lag.time.max.ms": "3000"}
CONSUMER = {"group.id": GROUP, "auto.offset.reset": "earliest", "session.timeout.ms": "6000",
            "heartbeat.interval.ms": "1000", "max.poll.interval.ms": "5000", "metadata.max.age.ms": "2000",
            "request.timeout.ms": "5000"}  # auto.commit.interval.ms: Kafka's 5000
FAULTS = ("member-crash", "member-stall", "member-close", "coordinator-crash", "broker-crash")
ALL_GROUP = tuple(GROUP_GUARANTEES)

# name -> (commit strategy, assignor, guarantees that must hold, anomaly it must be able to show)
GROUP_CONFIGS = {
    "commit-after": ("after", "cooperative-sticky", ALL_GROUP[:3], "redelivered"),
    "commit-after-eager": ("after", "range", ALL_GROUP[:3], "redelivered"),
    "commit-before": ("before", "sticky", ("group-exclusivity", "committed-offsets", "consumer-no-duplicates"),
                      "unseen"),
    "auto-commit": ("auto", "range", ALL_GROUP[:3], "redelivered"),
    "auto-commit-async": ("auto-async", "roundrobin", ("group-exclusivity", "committed-offsets"), "unseen"),
}

STEPS = 20  # rules per example: each group run is longer than a cluster run


class GroupMachine(RuleBasedStateMachine):
    config = "commit-after"
    record_only = False

    @initialize(seed=st.integers(0, 2**32 - 1))
    def setup(self, seed):
        self.strategy, self.assignor, _, _ = GROUP_CONFIGS[self.config]
        self.c = Cluster(seed=seed, broker_props=BROKER)
        self.topics = {"events-0": 2}
        self.c.create_topic("events-0", 2, 3)
        self.producer = self.c.producer("writer", {"acks": "all", "request.timeout.ms": "2000"})
        self.apps: list[ConsumerApp] = []
        self.sent = 0
        self.faults = 0
        self.running = True
        self.generations: dict[str, int] = {}
        self.c.every(40, self._produce_one)
        for _ in range(2):
            self._add()

    def _add(self) -> None:
        props = {**CONSUMER, "partition.assignment.strategy": self.assignor}
        self.apps.append(ConsumerApp(self.c, f"m{len(self.apps)}", self.strategy, props, pattern=PATTERN))

    def _produce_one(self) -> None:
        if self.running:
            self.sent += 1
            topic = sorted(self.topics)[self.sent % len(self.topics)]
            self.producer.send(topic, b"k%d" % (self.sent % 7), b"v%d" % self.sent)

    def _live(self) -> list[ConsumerApp]:
        return [a for a in self.apps if a.alive]

    def _victims(self) -> list[ConsumerApp]:
        """Live members that own partitions (failing an idle one shows nothing)."""
        return [a for a in self._live() if a.consumer.proc.group.owned] or self._live()

    def _fault(self, kind: str) -> None:
        self.faults += 1
        STATS[kind] += 1
        event(f"fault: {kind}")

    # -- members ---------------------------------------------------------------------------------

    @precondition(lambda self: len(self.apps) < 6)
    @rule()
    def add_member(self):
        self._add()
        STATS["member-join"] += 1

    @precondition(lambda self: len(self._live()) > 1)
    @rule(data=st.data())
    def close_member(self, data):
        data.draw(st.sampled_from(self._live())).close()
        self._fault("member-close")

    @precondition(lambda self: len(self._live()) > 1)
    @rule(data=st.data())
    def crash_member(self, data):
        self.c.crash(data.draw(st.sampled_from(self._victims())).consumer.node)
        self._fault("member-crash")

    @precondition(lambda self: self._live())
    @rule(data=st.data(), ms=st.sampled_from([2000, 9000]))
    def stall_member(self, data, ms):
        data.draw(st.sampled_from(self._victims())).stall(ms)  # 9 s > max.poll.interval.ms
        self._fault("member-stall")

    # -- the cluster ------------------------------------------------------------------------------

    def _brokers_down(self) -> list[int]:
        return [b for b in self.c.broker_ids if broker_node(b) in self.c.down]

    @rule()
    def crash_coordinator(self):
        leader = self.c.coordinator(GROUP)
        if leader is not None and not self._brokers_down():
            self.c.crash(broker_node(leader))
            self._fault("coordinator-crash")

    @rule(b=st.integers(0, 2))
    def crash_broker(self, b):
        if not self._brokers_down():
            self.c.crash(broker_node(b))
            self._fault("broker-crash")

    @rule()
    def restart_brokers(self):
        for b in self._brokers_down():
            self.c.restart(broker_node(b))

    @precondition(lambda self: len(self.topics) < 3)
    @rule()
    def new_matching_topic(self):
        name = f"events-{len(self.topics)}"
        self.c.create_topic(name, 2, 3)
        self.topics[name] = 2
        STATS["new-topic"] += 1
        event("new topic matching the pattern")

    @precondition(lambda self: max(self.topics.values()) < 5)
    @rule()
    def add_partitions(self):
        topic = sorted(self.topics)[0]
        self.topics[topic] += 1
        self.c.add_partitions(topic, self.topics[topic])
        STATS["partitions-added"] += 1
        event("partitions added")

    @rule(ms=st.sampled_from([500, 3000, 8000]))
    def advance(self, ms):
        self.c.run_for(ms)

    # -- invariants --------------------------------------------------------------------------------

    @invariant()
    def stable_generations_never_go_back(self):
        """A generation becomes Stable only once stored in __consumer_offsets, so a new
        coordinator never loads an older one. (One that never got stored may be lost with
        its coordinator and its number used again: nobody was assigned anything in it.)"""
        if not hasattr(self, "c"):
            return
        for b in self.c.broker_ids:
            if broker_node(b) in self.c.down:
                continue
            g = self.c.broker(b).groups.groups.get(GROUP)
            if g is not None and g.state == "Stable" and g.tp in self.c.broker(b).groups.log.leading:
                assert g.generation >= self.generations.get(GROUP, 0), "a stable generation went back"
                self.generations[GROUP] = g.generation

    # -- the verdict ---------------------------------------------------------------------------------

    def teardown(self):
        if not hasattr(self, "c"):
            return
        self.running = False
        for a in self.apps:
            a.stalled_until = 0
        settle(self.c)
        if not self._live():
            self._add()
        self.c.run_for(40_000)  # rebalances settle and the group catches up
        tps = [TopicPartition(t, p) for t, n in sorted(self.topics.items()) for p in range(n)]
        committed = {tuple(tp): self.c.committed(tp) for tp in tps}
        verdict = check_all(self.c.history, committed, self.c.group_offsets(GROUP))
        target(float(self.faults), label="faults injected")
        STATS["examples"] += 1
        _, _, must_hold, _ = GROUP_CONFIGS[self.config]
        judge(self.config, verdict, must_hold, self.record_only, tuple(GROUP_GUARANTEES))


def group_machine_for(config: str, record_only: bool = False) -> type[GroupMachine]:
    return type(f"Group_{config}", (GroupMachine,), {"config": config, "record_only": record_only})


def group_guarantee_table(examples: int) -> dict[str, dict[str, int]]:
    """For every commit strategy: how many of `examples` runs violated each group guarantee."""
    machines = {config: group_machine_for(config, record_only=True) for config in GROUP_CONFIGS}
    return guarantee_rows(machines, GROUP_GUARANTEES, FAULTS, examples, STEPS)


def run_group_campaign(machine, **overrides) -> Counter:
    return run_campaign(machine, STEPS, **overrides)
