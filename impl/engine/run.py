"""The engine's run: one setup, one seed (and the setup's fault schedule) -> a history,
the final logs read back, and every checker's verdict. Producers and consumers work
while a nemesis draws faults of the setup's kinds (impl/sim/faults.py); then the
cluster is healed, every partition read back and the history judged. A run is a pure
function of (setup, seed): impl/engine/executors.py may hand runs to any executor (local
processes, a Dask cluster) and they come back identical, in order.

check, hunt, replay, the catalogue and verify's confirmation all run through here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

from kafkaproof.impl.client.config import ConsumerConfig
from kafkaproof.impl.client.membership import JOIN_LAPSE_MS
from kafkaproof.impl.engine.setup import (
    BROKERS,
    FAULT_INTERVAL_MS,
    RUN_CONSUMER_DEFAULTS,
    TOPIC,
    Setup,
    transactional,
)
from kafkaproof.impl.protocol.messages import TopicPartition, broker_node
from kafkaproof.impl.sim import faults as fault_kinds
from kafkaproof.impl.sim.cluster import Cluster
from kafkaproof.impl.sim.dangers import relevant as relevant_dangers
from kafkaproof.impl.sim.invariants import LeaderInvariants
from kafkaproof.impl.sim.workload import Workload, run_workload, settle
from kafkaproof.properties import (
    AVAILABILITY_GUARANTEES,
    CLUSTER_GUARANTEES,
    GROUP_GUARANTEES,
    GUARANTEES,
    TXN_GUARANTEES,
    Violation,
    check_all,
)
from kafkaproof.properties.availability import judged_stretches
from kafkaproof.properties.history import History


@dataclass
class RunResult:
    seed: int
    violations: dict[str, list[dict]]  # guarantee -> [{name, detail, witness: [op indices]}]
    faults: int
    ops: int
    history: History | None = None  # kept only when asked (counterexamples)
    dangers: dict[str, int] = field(default_factory=dict)  # danger event -> times reached (impl/sim/dangers.py)
    # Only when asked (a report's plots): throughput, latency and real-time lag over time
    # (properties/run_stats.py), with the simulated time of each violated guarantee's first witness.
    stats: dict | None = None

    @property
    def violated(self) -> list[str]:
        return [g for g, vs in self.violations.items() if vs]


POLL_MS = 100  # how often a waiting member fault looks for a member that owns partitions


MAX_PARTITIONS = 4  # add-partitions grows the topic to at most this many


def _group_apps(c: Cluster, setup: Setup, end_ms: int) -> tuple[str, dict]:
    """Two members of a consumer group process the topic with the setup's commit
    strategy. Every application kind of fault (impl/sim/faults.py) the run draws at
    random strikes about every FAULT_INTERVAL_MS; a fixed schedule's steps call the same
    functions (c.applications)."""
    from kafkaproof.impl.sim.consumer_app import ConsumerApp

    group = setup.consumer.get("group.id", "app")
    # An exactly-once application's crashed member should be replaced within a short run:
    # the smallest session timeout the broker allows (Kafka's default is 45 s).
    quick = {"session.timeout.ms": "6000", "heartbeat.interval.ms": "1000"} if setup.strategy == "transactional" else {}
    props = {**RUN_CONSUMER_DEFAULTS, **quick, **setup.consumer, "group.id": group}
    apps = [ConsumerApp(c, f"g{i}", setup.strategy, props, topics=[TOPIC]) for i in range(2)]

    def join() -> None:
        apps.append(ConsumerApp(c, f"g{len(apps)}", setup.strategy, props, topics=[TOPIC]))

    def strike(hit, wait: bool = False) -> None:
        owners = [a for a in apps if a.alive and c.now >= a.stalled_until and a.consumer.proc.group.owned]
        if owners:
            hit(c.rng.choice(owners))
        elif wait:  # the group is still forming or rebalancing: strike once someone owns work
            c.at(POLL_MS, lambda: strike(hit, wait))

    def crash(moment: str = "any"):
        return lambda app: app.crash_at(moment, then=join)

    def leave(app) -> None:
        app.close()
        c.record_fault("member-leave", app.consumer.node)
        join()

    def grow() -> None:
        count = _partitions(c, TOPIC)
        if count < MAX_PARTITIONS:
            c.add_partitions(TOPIC, count + 1)

    # A fixed schedule's member step waits for a member that owns partitions (its time was
    # laid out before the group formed); a random one that finds none is skipped.
    hits = {"member": crash(), "member-pause": ConsumerApp.pause, "member-leave": leave,
            "member-stall": ConsumerApp.stall_past_poll_interval}
    c.applications["member"] = lambda moment="any": strike(crash(moment), wait=True)
    for kind, hit in hits.items():
        if kind != "member":
            c.applications[kind] = lambda hit=hit: strike(hit, wait=True)
    c.applications["add-partitions"] = grow
    randomly = {**{k: lambda hit=hit: strike(hit) for k, hit in hits.items()}, "add-partitions": grow}
    _strike_randomly(c, setup, randomly, end_ms)
    return group, props


def _strike_randomly(c: Cluster, setup: Setup, faults: dict, end_ms: int) -> None:
    """The random run's application faults: each kind of `faults` the setup draws, with
    its own generator (the cluster's draws stay what they were without it). A run with a
    fixed schedule has only the schedule's faults."""
    for kind, fault in faults.items():
        if kind in setup.faults and not setup.schedule:
            _every_now_and_then(c, random.Random(f"{kind}-{c.seed}"), fault, end_ms)


def _partitions(c: Cluster, topic: str) -> int:
    return sum(1 for p in range(MAX_PARTITIONS) if c.state(TopicPartition(topic, p)) is not None)


def _every_now_and_then(c: Cluster, rng: random.Random, fault, end_ms: int) -> None:
    """`fault` about every FAULT_INTERVAL_MS, at a random phase each time: a fixed period
    falls in step with the application's own (auto.commit.interval.ms), and a run then
    never strikes a member inside the few hundred ms that matter."""
    def next_fault() -> None:
        fault()
        at = c.now + rng.randint(FAULT_INTERVAL_MS // 2, FAULT_INTERVAL_MS * 3 // 2)
        if at <= end_ms - FAULT_INTERVAL_MS:
            c.at(at, next_fault)

    c.at(rng.randint(FAULT_INTERVAL_MS // 4, FAULT_INTERVAL_MS), next_fault)


def _txn_apps(c: Cluster, setup: Setup, end_ms: int) -> None:
    """Two transactional producer applications; a zombie fault gives one of them a
    second instance (the first one lives on), a producer-crash kills its instance (often
    mid-transaction) and restarts it with the same transactional.id."""
    from kafkaproof.impl.sim.txn_app import TxnProducerApp

    budget = [setup.max_sends] if setup.max_sends is not None else None
    apps = [TxnProducerApp(c, str(i), setup.producer, TOPIC, max_sends=budget) for i in range(2)]

    def zombie_fault() -> None:
        c.rng.choice(apps).zombie()

    def producer_crash() -> None:
        if c.rng.choice(apps).crash_instance():
            c.dangers.add("producer-crashed-mid-transaction")

    def stop() -> None:
        for app in apps:
            app.stopped = True

    if setup.strategy is not None:  # an application group reads them: it can then catch up
        c.at(end_ms, stop)  # (without one they write on, as saved runs have it)
    c.applications["zombie"] = zombie_fault  # (a fixed schedule's steps)
    c.applications["producer-crash"] = producer_crash
    if "zombie" in setup.faults and not setup.schedule:  # (a fixed period, as saved runs have it)
        c.at(FAULT_INTERVAL_MS // 2, lambda: c.every(FAULT_INTERVAL_MS, zombie_fault, until=end_ms - FAULT_INTERVAL_MS))
    _strike_randomly(c, setup, {"producer-crash": producer_crash}, end_ms)


def run_one(setup: Setup, seed: int, keep_history: bool = False, watch=None, stats: bool = False) -> RunResult:
    """One run. `watch(cluster)`, if given, may attach observers (they must only read);
    `stats`: RunResult.stats filled (it costs a pass over the history in Jepsen's form)."""
    from kafkaproof.impl.sim.consumer_app import OUTPUT_SUFFIX

    c = Cluster(seed=seed, brokers=BROKERS, broker_props=setup.broker)
    c.partition_watchers.append(LeaderInvariants(c))
    c.partition_watchers.append(c.dangers)
    if watch is not None:
        watch(c)
    rf = setup.replication_factor
    if setup.strategy == "transactional":
        # Its input and output exist before the application subscribes (creating its
        # transactional producer runs the cluster, which would answer the group's
        # metadata request before the workload created the input).
        c.create_topic(TOPIC, 2, rf)
        c.create_topic(TOPIC + OUTPUT_SUFFIX, 2, rf)
    group, group_props = _group_apps(c, setup, setup.seconds * 1000) if setup.strategy else (None, {})
    txn = transactional(setup)
    consumer = {**RUN_CONSUMER_DEFAULTS, **({"isolation.level": "read_committed"} if txn else {}),
                **setup.consumer}
    w = Workload(topic=TOPIC, partitions=2, replication_factor=rf, producers=0 if txn else 2, consumers=2,
                 faults=tuple(f for f in setup.faults if f in fault_kinds.CLUSTER),
                 fault_interval_ms=FAULT_INTERVAL_MS, producer_props=dict(setup.producer),
                 consumer_props=consumer, shared_process=True,
                 skip_faults=setup.skip_faults, max_sends=setup.max_sends)
    if txn and c.state(TopicPartition(TOPIC, 0)) is None:
        c.create_topic(TOPIC, w.partitions, rf)
    if txn:
        _txn_apps(c, setup, setup.seconds * 1000)
    if setup.schedule:
        w = replace(w, faults=())
        fault_kinds.apply_fixed(c, setup.schedule, TopicPartition(TOPIC, 0))
    run_workload(c, w, setup.seconds * 1000)
    settle(c)
    if group is not None:
        _catch_up(c, group, group_props)
    topics = [TOPIC] + ([TOPIC + OUTPUT_SUFFIX] if setup.strategy == "transactional" else [])
    if setup.final_read:
        _final_read(c, topics, consumer)
    committed = {(t, p): c.committed(TopicPartition(t, p)) for t in topics for p in range(_partitions(c, t))}
    verdict = check_all(c.history, committed, c.group_offsets(group) if group is not None else None)
    verdict["durability"] += replicas_diverge(c, [TopicPartition(t, p) for t, p in committed])
    if "availability" in judged(setup):
        for _ in judged_stretches(c.history):
            c.dangers.add("broker-down-judged")
    violations = {g: [{"name": v.name, "detail": v.detail, "witness": [op.index for op in v.ops]} for v in vs]
                  for g, vs in verdict.items() if g in judged(setup)}
    return RunResult(seed, violations, len(c.history.faults()), len(c.history.ops),
                     c.history if keep_history else None, dict(sorted(c.dangers.counts.items())),
                     stats_of(c.history, violations) if stats else None)


def stats_of(history: History, violations: dict[str, list[dict]]) -> dict:
    """RunResult.stats of a run's history: its throughput, latency and real-time lag, and
    the time of each violated guarantee's first witness."""
    from kafkaproof.properties.jepsen_kafka import from_history
    from kafkaproof.properties.run_stats import run_stats

    first = {g: min((history.ops[i].time for v in vs for i in v["witness"]), default=None)
             for g, vs in violations.items() if vs}
    return {**run_stats(from_history(history)), "first_violation_ms": first}


FINAL_READ_MS = 30_000  # how long the final read may take


def _final_read(c: Cluster, topics: list[str], props: dict) -> None:
    """Jepsen's final read: assign every partition, read from the beginning, poll until
    each partition's highest acknowledged offset is read - or its high watermark, when the
    log lost its tail (only when to stop peeks at the cluster; what was read is judged).
    A producer still retrying may be acknowledged meanwhile: the target follows it."""
    tps = [TopicPartition(t, p) for t in topics for p in range(_partitions(c, t))]
    acked: dict[TopicPartition, int] = {}
    scanned = [0]

    def target(tp: TopicPartition) -> int:
        for op in c.history.ops[scanned[0]:]:
            if op.f == "send" and op.type == "ok" and op.offset is not None and op.offset >= 0:
                key = TopicPartition(op.topic, op.partition)
                acked[key] = max(acked.get(key, -1), op.offset)
        scanned[0] = len(c.history.ops)
        leader = c.leader(tp)
        return min(acked.get(tp, -1) + 1, c.broker(leader).partitions[tp].hw if leader is not None else 0)

    reader = c.consumer("final-read", {**props, "auto.offset.reset": "earliest"})
    reader.assign(tps)
    c.every(50, reader.poll, until=c.now + FINAL_READ_MS)
    c.run_until(lambda: all(reader.proc.consumed.get(tp, 0) >= target(tp) for tp in tps), timeout_ms=FINAL_READ_MS)
    for tp in tps:  # where the read stopped at a log that no longer reaches what was acknowledged
        end = target(tp)
        if end < acked.get(tp, -1) + 1 and reader.proc.consumed.get(tp, 0) >= end:
            c.history.add(c.now, "consumer-final-read", "info", "log-end", topic=tp.topic, partition=tp.partition,
                          offset=end)


# How long a group may take to catch up after the run: a rebalance after a member crash
# waits out the dead member's session.timeout.ms (45 s), and a coordinator failover starts
# that wait again (the new coordinator's deadlines run from its load).
GROUP_CATCH_UP_MS = 150_000


def _catch_up(c: Cluster, group: str, props: dict) -> None:
    """Run until the group's commits reach every partition's high watermark (at least
    30 s, at most GROUP_CATCH_UP_MS, or longer when the members' own timeouts are): records
    it has not processed by then are unseen, not merely late - a fixed 30 s called a
    rebalance still waiting for a crashed member's session to expire a loss. A JoinGroup
    sent to a coordinator that then lost power is answered by nobody (no connection reset
    from a machine that is off) and waits out max.poll.interval.ms + 5 s, as Kafka's
    client does, before the member looks for the coordinator again: 305 s by default."""
    config = ConsumerConfig.from_properties(props)
    budget = max(GROUP_CATCH_UP_MS, config.max_poll_interval_ms + JOIN_LAPSE_MS + config.session_timeout_ms + 30_000)

    def caught_up() -> bool:
        offsets = c.group_offsets(group)
        for tp in (TopicPartition(TOPIC, p) for p in range(_partitions(c, TOPIC))):
            leader = c.leader(tp)
            if leader is None:
                return False
            # (past the last record: a transaction's marker after it is never consumed)
            end = min(c.broker(leader).partitions[tp].hw, max((o for o, _, _ in c.committed(tp)), default=-1) + 1)
            if offsets.get((tp.topic, tp.partition), 0) < end:
                return False
        return True

    c.run_for(30_000)
    waited = 30_000
    while waited < budget and not caught_up():
        c.run_for(2_000)
        waited += 2_000


def replicas_diverge(c: Cluster, tps) -> list[Violation]:
    """Evidence from the final state, beside the history's: below its own HW every live
    replica holds what the leader holds at the same offsets (the model's
    ReplicaLogConsistency). It breaks with durability: a leader that lost its log (power
    loss without fsync) answers a follower's OffsetsForLeaderEpoch with no epoch, and the
    follower keeps its log up to its HW, as Kafka's AbstractFetcherThread does."""
    out = []
    for tp in tps:
        leader = {o: v for o, _, v in c.committed(tp)}
        for b in c.broker_ids:
            if broker_node(b) in c.down:
                continue
            bad = next(((o, v) for o, _, v in c.replica_records(b, tp) if o in leader and leader[o] != v), None)
            if bad is not None:
                out.append(Violation("inconsistent-offsets", (), f"replicas diverge: broker {b} has {bad[1]!r}"
                                     f" at {tp.topic}-{tp.partition}@{bad[0]}, the leader {leader[bad[0]]!r}"))
    return out


def judged(setup: Setup) -> tuple[str, ...]:
    """The guarantees a run of `setup` judges."""
    eos = setup.strategy == "transactional"
    txn = transactional(setup)
    out = {**CLUSTER_GUARANTEES, **(GROUP_GUARANTEES if setup.strategy else {}),
           **(AVAILABILITY_GUARANTEES if setup.schedule else {}),
           **{g: names for g, names in TXN_GUARANTEES.items()
              if (g == "transactions" and (txn or eos)) or (g == "exactly-once-processing" and eos)}}
    if eos:
        # Processing is the output transaction: whether one the application crashed in
        # committed is the coordinator's to say, so exactly-once-processing judges it from
        # the output log instead of the application's "process" records.
        out = {g: names for g, names in out.items() if g not in ("consumer-no-loss", "consumer-no-duplicates")}
    return tuple(out)


def summarize(results: list[RunResult]) -> dict[str, dict]:
    """Per guarantee the runs judged: how many broke it, the first that did, its
    anomalies, and the danger events that can break it with how often the runs reached
    them ("reached": event -> times; 0 for one no run reached)."""
    table = {}
    for g in [g for g in GUARANTEES if any(g in r.violations for r in results)]:
        judged_by = [r for r in results if g in r.violations]
        bad = [r for r in results if r.violations.get(g)]
        table[g] = {"runs": len(judged_by), "violated": len(bad), "first_violating_seed": bad[0].seed if bad else None,
                    "anomalies": sorted({v["name"] for r in bad for v in r.violations[g]}),
                    "reached": {d: sum(r.dangers.get(d, 0) for r in judged_by) for d in relevant_dangers(g)}}
    return table
