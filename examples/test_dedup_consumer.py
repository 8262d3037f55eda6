"""Testing *your* consumer logic against a faulty Kafka, with kafkaproof and Hypothesis.

The application below must turn a stream that may contain duplicates (the producer runs
without idempotence, so a retried batch can be written twice) into exactly one effect
per order. Hypothesis draws fault schedules; kafkaproof runs a deterministic simulated
cluster through them; the test checks the application's output. Run it with:

    pytest examples/test_dedup_consumer.py
"""

from hypothesis import given, settings
from kafkaproof.impl.protocol.messages import TopicPartition

from kafkaproof import Cluster
from kafkaproof.strategies import apply_schedule, fault_schedules, seeds


class DedupingOrderService:
    """The logic under test: apply each order once, whatever the log holds."""

    def __init__(self) -> None:
        self.applied: list[str] = []
        self._seen: set[str] = set()

    def handle(self, value: bytes) -> None:
        order_id = value.decode()
        if order_id not in self._seen:  # a unique id per order makes duplicates harmless
            self._seen.add(order_id)
            self.applied.append(order_id)


def run_service(seed: int, schedule) -> tuple[DedupingOrderService, set[str], list[str]]:
    c = Cluster(seed=seed, broker_props={"min.insync.replicas": "2", "replica.lag.time.max.ms": "3000"})
    c.create_topic("orders", 1, 3)
    tp = TopicPartition("orders", 0)
    producer = c.producer("shop", {"acks": "all", "enable.idempotence": "false", "request.timeout.ms": "500"})
    consumer = c.consumer("service", {"auto.offset.reset": "earliest"})
    consumer.assign([tp])
    service = DedupingOrderService()
    ids = iter(range(10**6))
    c.every(20, lambda: producer.send("orders", None, b"order-%d" % next(ids)), until=15_000)
    c.every(50, lambda: [service.handle(r.value) for _, r in consumer.poll()])
    apply_schedule(c, schedule)
    # Faults end by 28 s; a fetch whose answer was dropped is retried only after the
    # consumer's request.timeout.ms (30 s, Kafka's default): give the service that long.
    c.run_for(75_000)
    acked = {op.value for op in c.history.completions("send", "ok")}
    in_log = [v for _, _, v in c.committed(tp)]
    return service, acked, in_log


@settings(max_examples=15, deadline=None, derandomize=True)  # the same examples on every run
@given(seed=seeds(), schedule=fault_schedules(kinds=("crash", "drop", "duplicate", "pause")))
def test_every_acknowledged_order_is_applied_exactly_once(seed, schedule):
    service, acked, _ = run_service(seed, schedule)
    assert len(service.applied) == len(set(service.applied))  # no order applied twice
    assert acked <= set(service.applied)  # every acknowledged order applied


def test_the_faults_really_produce_duplicates_for_the_service_to_absorb():
    """Not vacuous: with lost answers the log does hold duplicates."""
    service, _, in_log = run_service(seed=1, schedule=[(2000, "drop", 0, 6000)])
    assert len(in_log) > len(set(in_log))
    assert len(service.applied) == len(set(in_log))
