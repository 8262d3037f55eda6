"""kafkaproof's pytest plugin in a user's test suite: a real Kafka-compatible broker per
session (or per test) for any client, no JVM and no Docker. Installing kafkaproof is all
it takes (a `pytest11` entry point); `pytest --fixtures` lists `kafka_broker` and
`kafka_sim_cluster`.

    pytest examples/test_pytest_plugin.py
"""

import pytest
from confluent_kafka import Consumer, Producer
from kafka import KafkaConsumer, KafkaProducer
from kafkaproof.impl.protocol.messages import TopicPartition


def test_a_confluent_kafka_roundtrip(kafka_broker):
    topic = kafka_broker.new_topic(partitions=2)
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap, "enable.idempotence": True})
    for i in range(10):
        producer.produce(topic, key=str(i % 2).encode(), value=f"order-{i}".encode())
    assert producer.flush(10) == 0
    consumer = Consumer({"bootstrap.servers": kafka_broker.bootstrap, "group.id": "billing",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    seen = []
    while len(seen) < 10:
        msg = consumer.poll(10)
        assert msg is not None, f"only {len(seen)} of 10 records arrived"
        assert msg.error() is None, msg.error()
        seen.append(msg.value().decode())
    consumer.close()
    assert sorted(seen) == sorted(f"order-{i}" for i in range(10))


def test_a_kafka_python_roundtrip(kafka_broker):
    topic = kafka_broker.new_topic()
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all")
    offsets = [producer.send(topic, f"v{i}".encode()).get(timeout=10).offset for i in range(3)]
    producer.close()
    assert offsets == [0, 1, 2]
    consumer = KafkaConsumer(topic, bootstrap_servers=kafka_broker.bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=10_000)
    assert [r.value for _, r in zip(range(3), consumer, strict=False)] == [b"v0", b"v1", b"v2"]
    consumer.close()


@pytest.mark.kafka_broker(brokers=3, config={"min.insync.replicas": "2", "default.replication.factor": "3"})
def test_a_broker_of_its_own_with_settings(kafka_broker):
    """A marked test gets its own cluster: here three brokers with min.insync.replicas=2."""
    topic = kafka_broker.create_topic("payments", partitions=1, configs={"retention.ms": "3600000"})
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all")
    assert producer.send(topic, b"paid").get(timeout=10).offset == 0
    producer.close()
    assert len(kafka_broker.cluster.brokers) == 3


@pytest.mark.kafka_sim(seed=3, brokers=3, config={"min.insync.replicas": "2"})
def test_the_simulated_cluster_under_a_crash(kafka_sim_cluster):
    """The same code, simulated: a leader crash, deterministic from the seed."""
    c = kafka_sim_cluster
    c.create_topic("orders", 1, 3)
    producer = c.producer("p", {"acks": "all", "enable.idempotence": "true"})
    for i in range(5):
        producer.send("orders", b"k", f"v{i}".encode())
    c.run_for(2000)
    tp = TopicPartition("orders", 0)
    c.crash(f"broker-{c.leader(tp)}")
    c.run_until(lambda: c.leader(tp) is not None, 30_000)
    acked = [op.value for op in c.history.completions("send", "ok")]
    assert acked == [f"v{i}" for i in range(5)]
    assert [value for _, _, value in c.committed(tp)] == [f"v{i}" for i in range(5)]
