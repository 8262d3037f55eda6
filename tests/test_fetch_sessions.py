"""Incremental fetch sessions (KIP-227) on `serve`: kafka-python's consumer (which
implements the client side) reads everything through them, naming only the partitions
that moved; a stale, evicted or out-of-step session is answered with Kafka's error and
the client starts over."""

from collections import Counter
from datetime import timedelta

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafkaproof.impl.net import fetch_sessions
from kafkaproof.impl.net.server import EmbeddedCluster
from kafkaproof.impl.protocol.errors import ErrorCode
from test_serve_groups import ask

PARTITIONS = 8


@pytest.fixture
def cluster(tmp_path):
    with EmbeddedCluster(str(tmp_path), brokers=1, port=0) as c:
        c.create_topic("many", PARTITIONS, 1)
        yield c


def fetch(c, session_id: int, epoch: int, partitions=(0,), forgotten=()):
    return ask(c, 1, 12, {"replica_id": -1, "max_wait": timedelta(0), "min_bytes": 0, "max_bytes": 1 << 20,
                          "isolation_level": 0, "session_id": session_id, "session_epoch": epoch,
                          "topics": [{"topic": "many", "partitions": [
                              {"partition": p, "fetch_offset": 0, "partition_max_bytes": 1 << 20}
                              for p in partitions]}] if partitions else [],
                          "forgotten_topics_data": [{"topic": "many", "partitions": list(forgotten)}]
                          if forgotten else [], "rack_id": ""})


def test_a_consumer_reads_everything_through_incremental_fetches(cluster, monkeypatch):
    asked = []
    begin = fetch_sessions.FetchSessions.begin

    def recording(self, session_id, epoch, wanted, forgotten):
        asked.append((epoch, len(wanted)))
        return begin(self, session_id, epoch, wanted, forgotten)

    monkeypatch.setattr(fetch_sessions.FetchSessions, "begin", recording)
    producer = KafkaProducer(bootstrap_servers=cluster.bootstrap, acks="all")
    consumer = KafkaConsumer("many", bootstrap_servers=cluster.bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=10_000)
    sent, got = [], []
    for rnd in range(3):  # first a record to every partition, then records to one of them
        partitions = range(PARTITIONS) if rnd == 0 else [rnd] * 5
        for i, partition in enumerate(partitions):
            producer.send("many", f"r{rnd}-{i}".encode(), partition=partition).get(timeout=10)
            sent.append((partition, f"r{rnd}-{i}".encode()))
        got += [(r.partition, r.value) for _, r in zip(range(len(partitions)), consumer, strict=False)]
    producer.close()
    consumer.close()
    assert sorted(got) == sorted(sent)
    epochs = Counter(e > 0 for e, _ in asked)
    assert epochs[False] >= 1 and epochs[True] >= 1, asked  # a full fetch opened it, then incremental ones
    assert any(0 < e and n < PARTITIONS for e, n in asked), asked  # naming fewer than all partitions


def test_stale_and_out_of_step_sessions_get_kafkas_errors(cluster):
    assert fetch(cluster, 424242, 3).error_code == ErrorCode.FETCH_SESSION_ID_NOT_FOUND
    opened = fetch(cluster, 0, 0, partitions=range(PARTITIONS))
    assert opened.error_code == 0 and opened.session_id > 0
    assert sum(len(t.partitions) for t in opened.responses) == PARTITIONS  # a full answer
    assert fetch(cluster, opened.session_id, 5).error_code == ErrorCode.INVALID_FETCH_SESSION_EPOCH
    quiet = fetch(cluster, opened.session_id, 1, partitions=())
    assert quiet.error_code == 0 and quiet.responses == ()  # nothing new: nothing named
    forgot = fetch(cluster, opened.session_id, 2, partitions=(), forgotten=(0, 1))
    assert forgot.error_code == 0
    closed = fetch(cluster, opened.session_id, -1)  # the client closes it
    assert closed.error_code == 0 and closed.session_id == 0
    assert fetch(cluster, opened.session_id, 3).error_code == ErrorCode.FETCH_SESSION_ID_NOT_FOUND
    assert fetch(cluster, 0, -1).error_code == 0  # the broker carries on: a sessionless fetch


def test_an_evicted_session_is_not_found_and_the_consumer_starts_over(tmp_path):
    with EmbeddedCluster(str(tmp_path), brokers=1, port=0,
                         props={"max.incremental.fetch.session.cache.slots": "1"}) as c:
        c.create_topic("many", PARTITIONS, 1)
        first = fetch(c, 0, 0)
        second = fetch(c, 0, 0)
        assert first.session_id != second.session_id
        assert fetch(c, first.session_id, 1).error_code == ErrorCode.FETCH_SESSION_ID_NOT_FOUND
        assert fetch(c, second.session_id, 1).error_code == 0
        producer = KafkaProducer(bootstrap_servers=c.bootstrap)
        producer.send("many", b"after", partition=3).get(timeout=10)
        producer.close()
        consumers = [KafkaConsumer("many", bootstrap_servers=c.bootstrap, auto_offset_reset="earliest",
                                   consumer_timeout_ms=10_000) for _ in range(2)]  # one slot, two sessions
        for consumer in consumers:
            assert [r.value for _, r in zip(range(1), consumer, strict=False)] == [b"after"]
            consumer.close()
