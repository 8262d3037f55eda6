"""kafkaproof's pytest plugin (installed with the package: the `pytest11` entry point).

Two fixtures:

- `kafka_broker`: a real Kafka-compatible broker (`kafkaproof serve`, in this process on
  background threads, ephemeral ports, a fresh data directory) for any Kafka client.
  One broker serves the whole session; a test marked
  `@pytest.mark.kafka_broker(brokers=3, config={"min.insync.replicas": "2"})` gets its
  own, started for it and stopped after it.
- `kafka_sim_cluster`: the deterministic simulated cluster with the fault API (crash,
  power_loss, cut, heal, run_for, ...); `@pytest.mark.kafka_sim(seed=7, brokers=3,
  config={...})` chooses its seed, size and broker settings.

    def test_roundtrip(kafka_broker):
        topic = kafka_broker.new_topic(partitions=3)
        producer = confluent_kafka.Producer({"bootstrap.servers": kafka_broker.bootstrap})
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # imported when a fixture is first used: pytest itself starts as fast as before
    from kafkaproof.impl.net.server import EmbeddedCluster

# A broker for tests: groups form at once (Kafka's 3 s wait for more members only slows
# a test down) and internal topics fit a one-broker cluster.
TEST_DEFAULTS = {"group.initial.rebalance.delay.ms": "0", "offsets.topic.replication.factor": "1",
                 "transaction.state.log.replication.factor": "1", "offsets.topic.num.partitions": "5",
                 "transaction.state.log.num.partitions": "5"}


@dataclass
class KafkaBroker:
    """A running `serve` for a test: where clients connect, and helpers for topics."""

    cluster: EmbeddedCluster
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def bootstrap(self) -> str:
        """`bootstrap.servers` for any client."""
        return self.cluster.bootstrap

    def create_topic(self, name: str, partitions: int = 1, replication_factor: int | None = None,
                     configs: Mapping[str, str] | None = None) -> str:
        """Create a topic and wait until every partition has a leader; returns its name.
        `configs`: per-topic overrides by Kafka's names (retention.ms, cleanup.policy, ...)."""
        self.cluster.create_topic(name, partitions, replication_factor, configs=configs)
        return name

    def new_topic(self, partitions: int = 1, replication_factor: int | None = None,
                  configs: Mapping[str, str] | None = None, prefix: str = "test") -> str:
        """A topic no other test of the session uses (the session's broker is shared)."""
        return self.create_topic(f"{prefix}-{next(self._names)}", partitions, replication_factor, configs)


def _start(tmp: str, brokers: int = 1, config: Mapping[str, str] | None = None) -> KafkaBroker:
    from kafkaproof.impl.net.server import EmbeddedCluster

    return KafkaBroker(EmbeddedCluster(tmp, brokers=brokers, port=0, props={**TEST_DEFAULTS, **(config or {})}).start())


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "kafka_broker(brokers=1, config=None): this test gets its own"
                            " kafkaproof broker, with these broker settings")
    config.addinivalue_line("markers", "kafka_sim(seed=0, brokers=3, config=None): the simulated cluster's"
                            " seed, size and broker settings")


@pytest.fixture(scope="session")
def _kafka_session_broker() -> Iterator[KafkaBroker]:
    with tempfile.TemporaryDirectory(prefix="kafkaproof-") as tmp:
        broker = _start(tmp)
        try:
            yield broker
        finally:
            broker.cluster.stop()


@pytest.fixture
def kafka_broker(request) -> Iterator[KafkaBroker]:
    """A real Kafka-compatible broker (`kafkaproof serve` in this process): `.bootstrap`
    for clients, `.create_topic(...)` / `.new_topic()`. Shared by the session unless the
    test is marked `kafka_broker(brokers=..., config=...)`."""
    marker = request.node.get_closest_marker("kafka_broker")
    if marker is None:
        yield request.getfixturevalue("_kafka_session_broker")
        return
    with tempfile.TemporaryDirectory(prefix="kafkaproof-") as tmp:
        broker = _start(tmp, marker.kwargs.get("brokers", 1), marker.kwargs.get("config"))
        try:
            yield broker
        finally:
            broker.cluster.stop()


@pytest.fixture
def kafka_sim_cluster(request):
    """The deterministic simulated cluster (kafkaproof.Cluster): same seed, same run.
    Faults: `.crash(node)`, `.power_loss(broker)`, `.cut(a, b)`, `.heal()`, `.restart(node)`;
    time: `.run_for(ms)`, `.run_until(predicate, ms)`; clients: `.producer(...)`,
    `.consumer(...)`; what happened: `.history`."""
    from kafkaproof.impl.sim.cluster import Cluster

    marker = request.node.get_closest_marker("kafka_sim")
    kw = marker.kwargs if marker is not None else {}
    return Cluster(seed=kw.get("seed", 0), brokers=kw.get("brokers", 3), broker_props=dict(kw.get("config") or {}))
