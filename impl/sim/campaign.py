"""Randomized fault campaigns: Hypothesis drives a simulated cluster.

Each example first draws a swarm: which fault kinds this run may use (Groce et al.).
A workload runs continuously (like Jepsen's clients) while rules inject faults and
let time pass. Invariants hold after every step (and the broker asserts its own on
every consumer fetch); at teardown the cluster is healed, every partition is read
back and every checker judges the whole history. Named configurations say which
guarantees must hold; the tests and `kafkaproof guarantees` use the same machine.
"""

from __future__ import annotations

from collections import Counter
from typing import NamedTuple

from hypothesis import HealthCheck, Phase, event, settings, target
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from kafkaproof.impl.broker.config import judged_replication_factor
from kafkaproof.impl.protocol.messages import TopicPartition, broker_node, controller_node
from kafkaproof.impl.sim import faults
from kafkaproof.impl.sim.cluster import Cluster
from kafkaproof.impl.sim.workload import settle
from kafkaproof.properties import CLUSTER_GUARANTEES, check_all

TOPIC = "events"
PARTITIONS = 2
# The vocabulary's kinds (impl/sim/faults.py) the campaign's rules inject; each rule lets
# Hypothesis draw the target and parameters (so it shrinks them) among the vocabulary's values.
FAULTS = faults.BY_DEFAULT + ("isolate",)

# Shorter than Kafka's defaults so that ISR changes, retries and timeouts happen within
# a short run; the guarantees do not depend on these durations.
COMMON_BROKER = {"replica.lag.time.max.ms": "3000"}
COMMON_PRODUCER = {"request.timeout.ms": "2000", "delivery.timeout.ms": "20000"}

WITHOUT_POWER_LOSS = tuple(f for f in FAULTS if f != "power")



class Row(NamedTuple):
    """A named configuration of the campaign. What it must keep is not written here: the
    caller passes the verifier's claims (kafkaproof/claims.py) as `must_hold`."""

    broker: dict
    producer: dict
    faults: tuple[str, ...]  # the kinds its runs draw from (its failure model)


# "safe" is Kafka's advice (acks=all, min.insync.replicas=2, idempotence) with Kafka's
# default flush policy, judged under crashes; "safe+power-loss" the same under power
# losses too (the ISR may shrink to the leader, which then loses power and is still
# elected: KIP-966); "safe-fsync" fsyncs every message.
SAFE = {"min.insync.replicas": "2"}
IDEMPOTENT = {"acks": "all", "enable.idempotence": "true"}
CONFIGS = {
    "safe": Row(SAFE, IDEMPOTENT, WITHOUT_POWER_LOSS),
    "safe-fsync": Row({**SAFE, "log.flush.interval.messages": "1"}, IDEMPOTENT, FAULTS),
    "safe+power-loss": Row(SAFE, IDEMPOTENT, FAULTS),
    "acks=1": Row({"min.insync.replicas": "1"}, {"acks": "1"}, FAULTS),
    "acks=0": Row({"min.insync.replicas": "1"}, {"acks": "0"}, FAULTS),
    "unclean": Row({"min.insync.replicas": "1", "unclean.leader.election.enable": "true"}, {"acks": "all"}, FAULTS),
    "no-idempotence": Row({"min.insync.replicas": "2"},
                          {"acks": "all", "enable.idempotence": "false", "request.timeout.ms": "300"}, FAULTS),
}

STATS: Counter = Counter()  # faults injected and anomalies found, across examples


def judge(config: str, verdict: dict, must_hold: tuple[str, ...], record_only: bool,
          guarantees: tuple[str, ...] | None = None) -> None:
    """Count each violation of `guarantees` (default: all in the verdict) in STATS and as a
    Hypothesis event; unless `record_only`, fail on one of a guarantee in `must_hold`."""
    for guarantee in guarantees or tuple(verdict):
        violations = verdict[guarantee]
        for v in violations:
            STATS[v.name] += 1
            event(f"violation: {v.name}")
        STATS[f"violated:{guarantee}"] += bool(violations)
        if violations and not record_only and guarantee in must_hold:
            raise AssertionError(f"[{config}] {guarantee} violated: " + "; ".join(str(v) for v in violations[:3]))


class ClusterMachine(RuleBasedStateMachine):
    config = "safe"
    row = CONFIGS["safe"]
    must_hold: tuple[str, ...] = ()  # the guarantees the verifier proves for the row
    single_failure = True  # the verifier's claims are about one broker down at a time
    record_only = False  # True: count violations instead of failing (for the table)

    @initialize(seed=st.integers(0, 2**32 - 1),
                swarm=st.sets(st.sampled_from(FAULTS), min_size=1, max_size=4))
    def setup(self, seed, swarm):
        broker, producer, allowed = self.row
        self.swarm = swarm & set(allowed) or {allowed[0]}
        self.c = Cluster(seed=seed, broker_props={**COMMON_BROKER, **broker})
        self.c.create_topic(TOPIC, PARTITIONS, judged_replication_factor(broker))
        self.tps = [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]
        self.producer = self.c.producer("app", {**COMMON_PRODUCER, **producer}, process="app")
        self.consumer = self.c.consumer("app", {"auto.offset.reset": "earliest"}, process="app")
        self.consumer.assign(self.tps)
        self.sent = 0
        self.faults = 0
        self.leader_hw: dict[tuple, int] = {}  # (broker, tp, epoch) -> HW last seen
        self.epoch_leader: dict[tuple, int] = {}  # (tp, epoch) -> the broker leading it
        self.running = True
        # The workload runs on its own, like Jepsen's clients; rules inject faults and let
        # time pass, so every example writes and reads whatever its faults are.
        self.c.every(20, self._produce_one)
        self.c.every(50, self._poll)
        for kind in sorted(swarm):
            event(f"swarm includes {kind}")

    def _fault(self, kind: str) -> None:
        self.faults += 1
        STATS[kind] += 1
        event(f"fault: {kind}")
        self.c.run_for(500)

    # -- what applications do ----------------------------------------------------------

    def _produce_one(self) -> None:
        if self.running:
            self.sent += 1
            key = b"k%d" % (self.sent % 5) if self.sent % 3 else None
            self.producer.send(TOPIC, key, b"v%d" % self.sent)

    def _poll(self) -> None:
        # "No consumer receives an offset at or above the HW" is asserted by the broker on
        # every consumer fetch it answers (an invariant in the code that owns it).
        self.consumer.poll()

    @rule(ms=st.sampled_from([100, 1000, 3000, 8000]))
    def advance(self, ms):
        self.c.run_for(ms)

    # -- faults ----------------------------------------------------------------------------

    def _down(self) -> list[int]:
        return [b for b in self.c.broker_ids if broker_node(b) in self.c.down]

    def _can_fail_another(self) -> bool:
        return not (self.single_failure and self._down())

    def _inject(self, kind: str, target: str | None = None, duration_ms: int | None = None, **params) -> None:
        """No duration: the `heal` and `restart_all` rules end what these start."""
        faults.inject(self.c, kind, self.c.rng, duration_ms, target, **params)
        self._fault(kind)

    @precondition(lambda self: "crash" in self.swarm)
    @rule(data=st.data())
    def crash(self, data):
        up = [b for b in self.c.broker_ids if b not in self._down()]
        if up and self._can_fail_another():
            self._inject("crash", broker_node(data.draw(st.sampled_from(up))))

    @precondition(lambda self: "power" in self.swarm)
    @rule(data=st.data())
    def power_off(self, data):
        up = [b for b in self.c.broker_ids if b not in self._down()]
        if up and self._can_fail_another():
            self._inject("power", broker_node(data.draw(st.sampled_from(up))))

    @rule()
    def restart_all(self):
        for b in self._down():
            self.c.restart(broker_node(b))

    @precondition(lambda self: "partition" in self.swarm)
    @rule(data=st.data())
    def partition(self, data):
        nodes = [broker_node(b) for b in self.c.broker_ids] + [controller_node(x) for x in self.c.controller_ids]
        self._inject("partition", side=data.draw(st.sets(st.sampled_from(nodes), min_size=1,
                                                         max_size=len(nodes) - 1)))

    @precondition(lambda self: "isolate" in self.swarm)
    @rule(p=st.integers(-1, PARTITIONS - 1))
    def isolate(self, p):
        """A partition's leader (p >= 0) or the controller (p = -1) cut off from all."""
        leader = self.c.leader(self.tps[p]) if p >= 0 else None
        if p < 0 or leader is not None:
            self._inject("isolate", broker_node(leader) if p >= 0 else controller_node(self.c.controller_ids[0]))

    @rule()
    def heal(self):
        self.c.heal()

    @precondition(lambda self: "pause" in self.swarm)
    @rule(b=st.integers(0, 2), ms=st.sampled_from([500, 5000, 15000]))
    def pause(self, b, ms):
        self._inject("pause", broker_node(b), ms)

    @precondition(lambda self: "drop" in self.swarm)
    @rule(rate=st.sampled_from(faults.FAULTS["drop"].param("rate").choices))
    def drop(self, rate):
        self._inject("drop", rate=rate)

    @precondition(lambda self: "duplicate" in self.swarm)
    @rule(reorder=st.booleans())
    def duplicate(self, reorder):
        self._inject("duplicate", rate=max(faults.FAULTS["duplicate"].param("rate").choices), reorder=reorder)

    @precondition(lambda self: "clock" in self.swarm)
    @rule(b=st.integers(0, 2), ms=st.sampled_from(faults.FAULTS["clock"].param("jump_ms").choices))
    def clock_jump(self, b, ms):
        self._inject("clock", broker_node(b), jump_ms=ms)

    # -- invariants, after every step ------------------------------------------------------

    @invariant()
    def leaders_hws_and_epochs(self):
        if not hasattr(self, "c"):
            return
        for b in self.c.broker_ids:
            if broker_node(b) in self.c.down:
                continue
            for tp, p in self.c.broker(b).partitions.items():
                if not p.is_leader:
                    continue
                key = (b, tp, p.leader_epoch)
                assert p.hw >= self.leader_hw.get(key, 0), f"HW of {tp} went back on leader {b} in one epoch"
                self.leader_hw[key] = p.hw
                first = self.epoch_leader.setdefault((tp, p.leader_epoch), b)
                assert first == b, f"two leaders ({first}, {b}) of {tp} in epoch {p.leader_epoch}"

    # -- the verdict -------------------------------------------------------------------------

    def teardown(self):
        if not hasattr(self, "c"):
            return
        self.running = False
        settle(self.c)
        self.c.run_for(10_000)
        committed = {tuple(tp): self.c.committed(tp) for tp in self.tps}
        self._replicas_agree(committed)
        verdict = check_all(self.c.history, committed)
        target(float(self.faults), label="faults injected")
        STATS["examples"] += 1
        judge(self.config, verdict, self.must_hold, self.record_only)


    def _replicas_agree(self, committed) -> None:
        """ReplicaLogConsistency (as in the model): below its own HW, every replica holds
        exactly what the leader holds at the same offsets."""
        for tp in self.tps:
            leader = dict((o, v) for o, _, v in committed[tuple(tp)])
            for b in self.c.broker_ids:
                for offset, _, value in self.c.replica_records(b, tp):
                    if offset in leader and leader[offset] != value:
                        raise AssertionError(f"[{self.config}] replicas diverge: broker {b} has {value!r} at"
                                             f" {tp}@{offset}, the leader {leader[offset]!r}")


def machine_for(config: str, must_hold: tuple[str, ...] = (), single_failure: bool = True,
                record_only: bool = False, row: Row | None = None) -> type[ClusterMachine]:
    """A campaign over CONFIGS[config] (or `row`), failing on a violation of `must_hold`."""
    return type(f"Cluster_{config}", (ClusterMachine,),
                {"config": config, "row": row or CONFIGS[config], "must_hold": tuple(must_hold),
                 "single_failure": single_failure, "record_only": record_only})


# Settings for counting violations over a fixed budget rather than stopping at the first:
# the same examples every time, no shrinking, no example database.
RECORDING = {"derandomize": True, "deadline": None, "database": None, "phases": [Phase.generate],
             "suppress_health_check": list(HealthCheck)}


def guarantee_rows(machines: dict[str, type[RuleBasedStateMachine]], guarantees, fault_kinds, examples: int,
                   steps: int = 30) -> dict[str, dict[str, int]]:
    """For each named record-only machine: how many of `examples` runs violated each
    guarantee, how many runs there were, and the faults injected."""
    table = {}
    for name, machine in machines.items():
        stats = run_campaign(machine, steps, max_examples=examples, **RECORDING)
        row = {g: stats[f"violated:{g}"] for g in guarantees}
        row["runs"] = stats["examples"]
        row["faults"] = sum(stats[k] for k in fault_kinds)
        table[name] = row
    return table


def guarantee_table(examples: int, rows: dict[str, Row] | None = None) -> dict[str, dict[str, int]]:
    """For every named configuration, under its fault set (one broker down at a time)."""
    rows = CONFIGS if rows is None else rows
    return guarantee_rows({c: machine_for(c, record_only=True, row=r) for c, r in rows.items()},
                          CLUSTER_GUARANTEES, FAULTS, examples)


def run_campaign(machine, steps: int = 30, **overrides) -> Counter:
    """Run Hypothesis over `machine` (at most `steps` rules per example); returns what
    was injected and found."""
    STATS.clear()
    run_state_machine_as_test(machine, settings=settings(settings(), stateful_step_count=steps, **overrides))
    return Counter(STATS)
