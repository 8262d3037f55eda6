"""kafkaproof as a library: the public import and the Hypothesis strategies."""

from hypothesis import given

from kafkaproof import Cluster
from kafkaproof.strategies import (
    KINDS,
    apply_schedule,
    broker_configs,
    fault_schedules,
    producer_configs,
)


def test_cluster_is_importable_from_the_package():
    from kafkaproof.impl.sim.cluster import Cluster as Impl

    assert Cluster is Impl


@given(producer_configs(), broker_configs())
def test_drawn_configurations_are_ones_kafka_accepts(producer, broker):
    from kafkaproof.impl.broker.config import BrokerConfig
    from kafkaproof.impl.client.config import ProducerConfig

    ProducerConfig.from_properties(producer)
    BrokerConfig.from_properties(broker)


@given(fault_schedules(max_faults=4))
def test_schedules_are_sorted_and_within_bounds(schedule):
    assert schedule == sorted(schedule) and len(schedule) <= 4
    assert all(kind in KINDS and 0 <= b < 3 for _, kind, b, _ in schedule)


def test_an_applied_schedule_injects_its_faults():
    c = Cluster(seed=1)
    apply_schedule(c, [(100, "crash", 0, 1000), (3000, "drop", 1, 500), (5000, "pause", 2, 300)])
    c.run_for(8000)
    assert [op.f for op in c.history.faults() if op.f in ("crash", "restart", "lossy-network", "pause")] == [
        "crash", "restart", "lossy-network", "pause"]
