"""What a run depends on besides its seed: the configuration of brokers, producers and
consumers, the fault kinds, the run's length, and (set by shrinking or by `verify`) the
faults skipped or a fixed schedule. Read from .properties files and --set overrides,
every key checked before anything runs."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

from kafkaproof.impl.broker.config import (
    BROKER_KEYS,
    BrokerConfig,
    check_topic_fits,
    judged_replication_factor,
)
from kafkaproof.impl.client.config import (
    CONSUMER_KEYS,
    PRODUCER_KEYS,
    ConsumerConfig,
    ProducerConfig,
)
from kafkaproof.impl.config import ConfigError, load_properties, parse_override
from kafkaproof.impl.sim import faults as fault_kinds
from kafkaproof.impl.sim.workload import FAULT_KINDS

TOPIC = "events"
BROKERS = 3  # every run's cluster (the simulator's default)
FAULT_INTERVAL_MS = 4000  # a run draws a fault this often (and none in its last interval)


# What the engine's consumers run with unless the setup says otherwise: a run judges
# every record written, and Kafka's default (latest) would skip those written before a
# consumer joined.
RUN_CONSUMER_DEFAULTS = {"auto.offset.reset": "earliest"}


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
    # A fixed fault schedule instead of random faults (verify's, the catalogue's, steered
    # and Hypothesis runs'): (at ms, kind, replica[, value]) steps in the fault vocabulary
    # plus restart | heal | none (impl/sim/faults.apply_fixed).
    schedule: tuple[tuple, ...] = ()
    # Jepsen's final read after the run: a new consumer assigned every partition reads
    # from the beginning up to the highest acknowledged offset, into the history - the
    # reads a history-only analysis needs (properties/jepsen_kafka.py). Off in saved runs.
    final_read: bool = False

    @property
    def replication_factor(self) -> int:
        return judged_replication_factor(self.broker)

    @property
    def failure_model(self) -> fault_kinds.FailureModel:
        """The random workload takes down one broker at a time (all, with a blackout); a
        fixed schedule (verify's) only those it names."""
        if self.schedule:
            return fault_kinds.FailureModel.of(fault_kinds.fixed_kinds(self.schedule), None, self.broker)
        return fault_kinds.FailureModel.of(self.faults, fault_kinds.random_max_down(self.faults), self.broker)

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

    def given(self) -> dict[str, str]:
        """The keys the user set (a key of two scopes, e.g. request.timeout.ms, once)."""
        return {**self.consumer, **self.producer, **self.broker}

    def settings(self) -> dict[str, str | None]:
        """Every configuration key with the value a run uses (None: unset), as text: what
        the setup gives, else the engine's or Kafka's default."""
        out: dict[str, str | None] = {}
        for keys, given in ((BROKER_KEYS, self.broker), (PRODUCER_KEYS, self.producer),
                            (CONSUMER_KEYS, {**RUN_CONSUMER_DEFAULTS, **self.consumer})):
            for k in keys:
                out[k.name] = given[k.name] if k.name in given else _text(k.default)
        return out


# Fields added after the campaign tables were drawn: at their defaults they stay out of
# `identity`, so derandomised draws seeded from it (hypothesis_runs) stay what they were.
LATER_FIELDS = {"final_read": False}


def identity(setup: Setup) -> str:
    """The setup as text, for seeding draws from it."""
    text = repr(setup)
    for name, default in LATER_FIELDS.items():
        if getattr(setup, name) == default:
            text = text.replace(f", {name}={default!r}", "")
    return text


def _text(default) -> str | None:
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, list):
        return ",".join(default)
    return None if default is None else str(default)


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


def transactional(setup: Setup) -> bool:
    return bool(setup.producer.get("transactional.id"))


def steered(setup: Setup, template: tuple[tuple[int, str, int], ...], seed: int) -> Setup:
    """The setup with a fixed schedule instead of random faults: `template` (a breaking
    schedule of verify's, laid out for this configuration's timeouts) with its start and
    the gaps between its steps drawn from `seed`, so steered runs differ from each other
    and each stays a plain, replayable (setup, seed). The run lasts `seconds_after` its
    last step."""
    rng = random.Random(f"steer-{seed}")
    shift, out, last = rng.randint(0, 3000), [], None
    for at, *step in template:
        if last is not None and at > last:
            shift += rng.randint(0, 1500)  # a longer gap, never a reordering
        last = at
        out.append((at + shift, *step))
    return replace(setup, schedule=tuple(out), seconds=max(setup.seconds, seconds_after(setup, out)))


def steering_turn(steer: list, i: int) -> tuple | None:
    """The schedule the i-th run of a series takes: the even ones (the first included,
    so that a hunt verify can steer finds in its first run) take `steer`'s in turn; the
    odd ones none (their own faults)."""
    return steer[(i // 2) % len(steer)] if steer and i % 2 == 0 else None


def seconds_after(setup: Setup, schedule) -> int:
    """How long a run with this fixed schedule lasts: after its last step, long enough for
    the controller to fence a dead broker (broker.session.timeout.ms, 9 s) and for a client
    whose request went unanswered to give up on it and read again (request.timeout.ms)."""
    wait_s = int(setup.consumer.get("request.timeout.ms", "30000")) // 1000
    return max(step[0] for step in schedule) // 1000 + 15 + wait_s
