"""`kafkaproof check`: what does this configuration guarantee under faults?

A check is N independent runs on the simulated cluster, run i with seed S+i: producers
and consumers work while a nemesis draws faults of the chosen kinds; then the cluster
is healed, every partition read back, and every checker judges the history. A run is a
pure function of (setup, seed), so runs can go to parallel processes and come back
identical, and a violating run is saved as a counterexample file that `kafkaproof
replay` re-executes (kafkaproof/counterexample.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from kafkaproof.impl.broker.config import BROKER_KEYS, BrokerConfig, check_topic_fits
from kafkaproof.impl.client.config import (
    CONSUMER_KEYS,
    PRODUCER_KEYS,
    ConsumerConfig,
    ProducerConfig,
)
from kafkaproof.impl.config import ConfigError, load_properties, parse_override
from kafkaproof.impl.protocol.messages import TopicPartition, broker_node
from kafkaproof.impl.sim import faults as fault_kinds
from kafkaproof.impl.sim.cluster import Cluster
from kafkaproof.impl.sim.workload import (
    FAULT_KINDS,
    Workload,
    run_workload,
    settle,
)
from kafkaproof.properties import (
    AVAILABILITY_GUARANTEES,
    CLUSTER_GUARANTEES,
    GROUP_GUARANTEES,
    GUARANTEES,
    TXN_GUARANTEES,
    check_all,
)
from kafkaproof.properties.history import History

TOPIC = "events"
BROKERS = 3  # every run's cluster (the simulator's default)
FAULT_INTERVAL_MS = 4000  # a run draws a fault this often (and none in its last interval)


@dataclass(frozen=True)
class Setup:
    """Everything a run depends on besides its seed (JSON-able: it goes into counterexamples)."""

    broker: dict[str, str] = field(default_factory=dict)
    producer: dict[str, str] = field(default_factory=dict)
    consumer: dict[str, str] = field(default_factory=dict)
    faults: tuple[str, ...] = FAULT_KINDS
    seconds: int = 30
    skip_faults: tuple[int, ...] = ()  # set by shrinking: drawn faults not injected
    max_sends: int | None = None  # set by shrinking: sends of all producers together
    strategy: str | None = None  # a consumer group application with this commit strategy
    # A fixed fault schedule instead of random faults (from `verify`): (at ms, kind, replica)
    # with kinds crash | power | restart | lag | behind | heal | drop | none; replica i of
    # partition 0 (its preferred leader first).
    schedule: tuple[tuple[int, str, int], ...] = ()

    @property
    def replication_factor(self) -> int:
        """Of the runs' topics: 3 unless default.replication.factor says otherwise (Kafka's
        own default, 1, is what BrokerConfig keeps; no one runs it in production)."""
        return int(self.broker.get("default.replication.factor", "3"))

    @property
    def failure_model(self) -> fault_kinds.FailureModel:
        """The random workload may take down any number of brokers at once; a fixed
        schedule (verify's) only those it names."""
        kinds = sorted({k for _, k, _ in self.schedule} & set(fault_kinds.FAULTS)) if self.schedule else self.faults
        return fault_kinds.FailureModel.of(kinds, None, self.broker)

    def slug(self) -> str:
        """A short name for file names: the settings that differ from Kafka's defaults."""
        parts = [f"{k}={v}" for scope in (self.broker, self.producer, self.consumer) for k, v in sorted(scope.items())]
        text = "_".join(parts) or "defaults"
        return "".join(ch if ch.isalnum() or ch in "=._-" else "_" for ch in text)[:80]

    def changed(self, scope: str, key: str | None, value: str) -> Setup:
        """The setup with one property (scope broker / producer / consumer) or the commit
        strategy (scope "strategy", no key) changed."""
        if scope == "strategy":
            return replace(self, strategy=value)
        return replace(self, **{scope: {**getattr(self, scope), key: value}})

    def has(self, scope: str, key: str | None, value: str) -> bool:
        return self.strategy == value if scope == "strategy" else getattr(self, scope).get(key) == value


def _names(keys) -> set[str]:
    return {k.name for k in keys}


def build_setup(broker_file: str | None = None, producer_file: str | None = None,
                consumer_file: str | None = None, sets: list[str] | tuple[str, ...] = (),
                faults: str | None = None, seconds: int = 30, strategy: str | None = None) -> Setup:
    """Read .properties files and key=value overrides; every key is checked against its
    scope now, so a typo is a clear error before anything runs (ConfigError)."""
    scopes: dict[str, dict[str, tuple[str, str]]] = {"broker": {}, "producer": {}, "consumer": {}}
    for scope, path in (("broker", broker_file), ("producer", producer_file), ("consumer", consumer_file)):
        if path is not None:
            scopes[scope].update(load_properties(path))
    known = {"broker": _names(BROKER_KEYS), "producer": _names(PRODUCER_KEYS), "consumer": _names(CONSUMER_KEYS)}
    for item in sets:
        key, value = parse_override(item)
        targets = [scope for scope in scopes if key in known[scope]]
        if not targets:
            raise ConfigError(f"--set {key}: not a broker, producer or consumer configuration key")
        for scope in targets:  # e.g. request.timeout.ms applies to producers and consumers
            scopes[scope][key] = (value, f"--set {key}")
    broker = BrokerConfig.from_properties(scopes["broker"])
    ProducerConfig.from_properties(scopes["producer"])
    ConsumerConfig.from_properties(scopes["consumer"])
    from kafkaproof.impl.sim.consumer_app import STRATEGIES

    if strategy is not None and strategy not in STRATEGIES:
        raise ConfigError(f"--commit-strategy {strategy}: one of {', '.join(STRATEGIES)}")
    transactional = bool(scopes["producer"].get("transactional.id"))
    allowed = fault_kinds.applicable(strategy is not None, transactional)
    default = fault_kinds.defaults(strategy is not None, transactional)
    kinds = default if faults is None else tuple(f.strip() for f in faults.split(",") if f.strip())
    bad = [f for f in kinds if f not in allowed]
    if bad or not kinds:
        raise ConfigError(f"--faults: unknown fault kind(s) {', '.join(bad) or '(none given)'};"
                          f" choose from {', '.join(allowed)}")
    if seconds < 5:
        raise ConfigError("--seconds must be at least 5")
    plain = {scope: {k: v for k, (v, _) in entries.items()} for scope, entries in scopes.items()}
    setup = Setup(plain["broker"], plain["producer"], plain["consumer"], kinds, seconds, strategy=strategy)
    check_topic_fits(setup.replication_factor, broker.min_insync_replicas, BROKERS)
    return setup


def fault_draws(setup: Setup) -> int:
    """How many faults the workload draws in a run (what shrinking may skip by index)."""
    return max(0, setup.seconds * 1000 // FAULT_INTERVAL_MS - 1)


@dataclass
class RunResult:
    seed: int
    violations: dict[str, list[dict]]  # guarantee -> [{name, detail, witness: [op indices]}]
    faults: int
    ops: int
    history: History | None = None  # kept only when asked (counterexamples)

    @property
    def violated(self) -> list[str]:
        return [g for g, vs in self.violations.items() if vs]


def _group_apps(c: Cluster, setup: Setup, end_ms: int) -> str:
    """Two members of a consumer group process the topic with the setup's commit strategy;
    with the "member" fault, every FAULT_INTERVAL_MS a member that owns partitions crashes
    and a new one joins."""
    from kafkaproof.impl.sim.consumer_app import ConsumerApp

    group = setup.consumer.get("group.id", "app")
    # An exactly-once application's crashed member should be replaced within a short run:
    # the smallest session timeout the broker allows (Kafka's default is 45 s).
    quick = {"session.timeout.ms": "6000", "heartbeat.interval.ms": "1000"} if setup.strategy == "transactional" else {}
    props = {"auto.offset.reset": "earliest", **quick, **setup.consumer, "group.id": group}
    apps = [ConsumerApp(c, f"g{i}", setup.strategy, props, topics=[TOPIC]) for i in range(2)]

    def member_fault() -> None:
        owners = [a for a in apps if a.alive and a.consumer.proc.group.owned]
        if owners:
            c.rng.choice(owners).crash()
            apps.append(ConsumerApp(c, f"g{len(apps)}", setup.strategy, props, topics=[TOPIC]))

    if "member" in setup.faults:
        c.at(FAULT_INTERVAL_MS // 2,
             lambda: c.every(FAULT_INTERVAL_MS, member_fault, until=end_ms - FAULT_INTERVAL_MS))
    return group


def _txn_apps(c: Cluster, setup: Setup, end_ms: int) -> None:
    """Two transactional producer applications; with the "zombie" fault, every
    FAULT_INTERVAL_MS one of them gets a second instance (the first one lives on)."""
    from kafkaproof.impl.sim.txn_app import TxnProducerApp

    budget = [setup.max_sends] if setup.max_sends is not None else None
    apps = [TxnProducerApp(c, str(i), setup.producer, TOPIC, max_sends=budget) for i in range(2)]
    if "zombie" in setup.faults:
        c.at(FAULT_INTERVAL_MS // 2,
             lambda: c.every(FAULT_INTERVAL_MS, lambda: c.rng.choice(apps).zombie(), until=end_ms - FAULT_INTERVAL_MS))


def _apply_schedule(c: Cluster, schedule) -> None:
    """Inject a fixed schedule (verify's vocabulary); `replica` i names the i-th replica of
    partition 0 (its preferred leader first), looked up when the fault happens. "lag" and
    "behind" are the vocabulary's `cut` (until a "heal"); "drop" loses 30% for 4 s, enough
    for the producer to retry."""

    def node_of(replica: int) -> str:
        return broker_node(c.state(TopicPartition(TOPIC, 0)).replicas[replica])

    def step(kind: str, replica: int) -> None:
        kind = {"lag": "cut", "behind": "cut"}.get(kind, kind)
        if kind == "restart" and node_of(replica) in c.down:
            c.restart(node_of(replica))
        elif kind == "heal":
            c.heal()
        elif kind == "drop":
            fault_kinds.inject(c, "drop", c.rng, 4000, rate=0.3)
        elif kind in fault_kinds.FAULTS:  # crash, power, cut: until the schedule says otherwise
            fault_kinds.inject(c, kind, c.rng, None, node_of(replica), peers=c.state(TopicPartition(TOPIC, 0)).replicas)

    for at, kind, replica in schedule:
        c.at(at, lambda kind=kind, replica=replica: step(kind, replica))


def transactional(setup: Setup) -> bool:
    return bool(setup.producer.get("transactional.id"))


def run_one(setup: Setup, seed: int, keep_history: bool = False, watch=None) -> RunResult:
    """One run. `watch(cluster)`, if given, may attach observers (they must only read)."""
    from kafkaproof.impl.sim.consumer_app import OUTPUT_SUFFIX

    c = Cluster(seed=seed, brokers=BROKERS, broker_props=setup.broker)
    if watch is not None:
        watch(c)
    rf = setup.replication_factor
    if setup.strategy == "transactional":
        # Its input and output exist before the application subscribes (creating its
        # transactional producer runs the cluster, which would answer the group's
        # metadata request before the workload created the input).
        c.create_topic(TOPIC, 2, rf)
        c.create_topic(TOPIC + OUTPUT_SUFFIX, 2, rf)
    group = _group_apps(c, setup, setup.seconds * 1000) if setup.strategy else None
    txn = transactional(setup)
    consumer = {"auto.offset.reset": "earliest", **({"isolation.level": "read_committed"} if txn else {}),
                **setup.consumer}
    w = Workload(topic=TOPIC, partitions=2, replication_factor=rf, producers=0 if txn else 2, consumers=2,
                 faults=tuple(f for f in setup.faults if f in fault_kinds.CLUSTER),
                 fault_interval_ms=FAULT_INTERVAL_MS, producer_props=dict(setup.producer),
                 consumer_props=consumer, shared_process=True,
                 skip_faults=setup.skip_faults, max_sends=setup.max_sends)
    if txn:
        c.create_topic(TOPIC, w.partitions, rf)
        _txn_apps(c, setup, setup.seconds * 1000)
    if setup.schedule:
        w = replace(w, faults=())
        _apply_schedule(c, setup.schedule)
    run_workload(c, w, setup.seconds * 1000)
    settle(c)
    if group is not None:
        c.run_for(30_000)  # the group catches up and commits
    topics = [TOPIC] + ([TOPIC + OUTPUT_SUFFIX] if setup.strategy == "transactional" else [])
    committed = {(t, p): c.committed(TopicPartition(t, p)) for t in topics for p in range(w.partitions)
                 if c.state(TopicPartition(t, p)) is not None}
    verdict = check_all(c.history, committed, c.group_offsets(group) if group is not None else None)
    eos = setup.strategy == "transactional"
    judged = {**CLUSTER_GUARANTEES, **(GROUP_GUARANTEES if group is not None else {}),
              **(AVAILABILITY_GUARANTEES if setup.schedule else {}),
              **{g: names for g, names in TXN_GUARANTEES.items()
                 if (g == "transactions" and (txn or eos)) or (g == "exactly-once-processing" and eos)}}
    if eos:
        # Processing is the output transaction: whether one the application crashed in
        # committed is the coordinator's to say, so exactly-once-processing judges it from
        # the output log instead of the application's "process" records.
        judged = {g: names for g, names in judged.items() if g not in ("consumer-no-loss", "consumer-no-duplicates")}
    violations = {g: [{"name": v.name, "detail": v.detail, "witness": [op.index for op in v.ops]} for v in vs]
                  for g, vs in verdict.items() if g in judged}
    return RunResult(seed, violations, len(c.history.faults()), len(c.history.ops),
                     c.history if keep_history else None)


def _run_plain(args: tuple[Setup, int]) -> RunResult:
    return run_one(*args)


def run_check(setup: Setup, runs: int, seed: int, jobs: int = 1, progress=None) -> list[RunResult]:
    """Runs seed, seed+1, ...; in `jobs` processes when > 1 (same results, same order)."""
    seeds = [seed + i for i in range(runs)]
    results: list[RunResult] = []
    if jobs <= 1:
        for s in seeds:
            results.append(run_one(setup, s))
            if progress is not None:
                progress()
        return results
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for result in pool.map(_run_plain, [(setup, s) for s in seeds]):
            results.append(result)
            if progress is not None:
                progress()
    return results


def summarize(results: list[RunResult]) -> dict[str, dict]:
    table = {}
    for g in [g for g in GUARANTEES if results and g in results[0].violations]:
        bad = [r for r in results if r.violations.get(g)]
        table[g] = {"runs": len(results), "violated": len(bad), "first_violating_seed": bad[0].seed if bad else None,
                    "anomalies": sorted({v["name"] for r in bad for v in r.violations[g]})}
    return table
