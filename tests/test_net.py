"""The real runtime with real Kafka clients: kafka-python (pure Python), confluent-kafka
(librdkafka, as kcat and most non-Java clients) and kcat itself, against an embedded
3-broker cluster on localhost (`kafkaproof serve`)."""

import shutil
import subprocess
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka import TopicPartition as CTopicPartition
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KTopicPartition
from kafkaproof.impl.net.server import EmbeddedCluster

PROPS = {"default.replication.factor": "3", "min.insync.replicas": "2", "offsets.topic.num.partitions": "3",
         "transaction.state.log.num.partitions": "3", "group.initial.rebalance.delay.ms": "0"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = EmbeddedCluster(str(tmp_path_factory.mktemp("serve")), brokers=3, port=0, props=PROPS).start()
    yield c
    c.stop()


def topic(c: EmbeddedCluster, partitions: int = 3) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    c.create_topic(name, partitions, 3)
    return name


# kafka-python 3.0.12 loses a group join when a poll's timeout ends between its JoinGroup
# answer and its SyncGroup answer: the flag it loops on is already cleared, so the
# finished join is never applied and the member waits in REBALANCING for good (seen 1 in 8
# with 200 ms polls on two busy cores: our coordinator had the group Stable, the client
# logged the SyncGroup answer). Polls of a second leave the round trip room.
POLL_MS = 1000


def drain(consumer, want: int, timeout_s: float = 60) -> list:
    """Poll until `want` records came (a wait, not a timed assertion: the suite runs on both
    cores beside CPU-heavy campaigns, so a group's first join can take a while)."""
    got, deadline = [], time.monotonic() + timeout_s
    while len(got) < want and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=POLL_MS).values():
            got.extend(records)
    return got


def test_kafka_python_keys_headers_and_offsets_per_partition(cluster):
    t = topic(cluster)
    p = KafkaProducer(bootstrap_servers=cluster.bootstrap, acks="all")
    sent = [p.send(t, key=b"k%d" % i, value=b"v%d" % i, headers=[("n", b"%d" % i)]) for i in range(60)]
    p.flush(10)
    meta = [f.get(5) for f in sent]
    p.close()
    # the default partitioner hashes keys: one key, one partition; offsets dense per partition
    by_partition = {}
    for i, md in enumerate(meta):
        by_partition.setdefault(md.partition, []).append((md.offset, i))
    assert len(by_partition) == 3
    for rows in by_partition.values():
        assert [o for o, _ in rows] == list(range(len(rows)))
    c = KafkaConsumer(t, bootstrap_servers=cluster.bootstrap, auto_offset_reset="earliest")
    got = drain(c, 60)
    c.close()
    assert sorted((r.key, r.value, tuple(r.headers)) for r in got) == sorted(
        (b"k%d" % i, b"v%d" % i, (("n", b"%d" % i),)) for i in range(60))
    assert {(r.partition, r.offset) for r in got} == {(md.partition, md.offset) for md in meta}


def test_kafka_python_group_commits_and_a_new_member_resumes_after_them(cluster):
    t = topic(cluster, 2)
    p = KafkaProducer(bootstrap_servers=cluster.bootstrap)
    for i in range(40):
        p.send(t, value=b"first-%d" % i)
    p.flush(10)
    group = f"g-{uuid.uuid4().hex[:6]}"
    c = KafkaConsumer(t, group_id=group, bootstrap_servers=cluster.bootstrap, auto_offset_reset="earliest",
                      enable_auto_commit=False)
    assert len(drain(c, 40)) == 40
    c.commit()
    committed = {tp: c.committed(KTopicPartition(t, tp)) for tp in (0, 1)}
    c.close()
    assert sum(committed.values()) == 40
    for i in range(10):
        p.send(t, value=b"second-%d" % i)
    p.flush(10)
    p.close()
    c = KafkaConsumer(t, group_id=group, bootstrap_servers=cluster.bootstrap, auto_offset_reset="earliest")
    again = drain(c, 10)
    c.close()
    assert sorted(r.value for r in again) == sorted(b"second-%d" % i for i in range(10))


def _confluent(c: EmbeddedCluster, **extra) -> dict:
    return {"bootstrap.servers": c.bootstrap, **extra}


def test_librdkafka_idempotent_producer_and_a_group_commit(cluster):
    t = topic(cluster)
    p = Producer(_confluent(cluster, **{"enable.idempotence": True}))
    reports = []
    for i in range(100):
        p.produce(t, key=b"k%d" % (i % 7), value=b"v%d" % i, headers=[("h", b"x")],
                  on_delivery=lambda err, msg: reports.append((err, msg.partition(), msg.offset())))
    assert p.flush(20) == 0
    assert [r for r in reports if r[0] is not None] == [] and len(reports) == 100
    group = f"g-{uuid.uuid4().hex[:6]}"
    c = Consumer(_confluent(cluster, **{"group.id": group, "auto.offset.reset": "earliest",
                                        "enable.auto.commit": False}))
    c.subscribe([t])
    got, deadline = [], time.monotonic() + 30
    while len(got) < 100 and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            got.append(m)
    c.commit(asynchronous=False)
    committed = c.committed([CTopicPartition(t, p) for p in range(3)], 10)
    c.close()
    assert len(got) == 100 and all(m.headers() == [("h", b"x")] for m in got)
    assert sum(tp.offset for tp in committed) == 100


def test_librdkafka_transactions_hide_aborted_records_from_read_committed(cluster):
    t = topic(cluster, 1)
    p = Producer(_confluent(cluster, **{"transactional.id": f"tx-{uuid.uuid4().hex[:6]}"}))
    p.init_transactions(20)
    p.begin_transaction()
    p.produce(t, b"committed-1")
    p.produce(t, b"committed-2")
    p.commit_transaction(20)
    p.begin_transaction()
    p.produce(t, b"aborted")
    p.flush(10)
    p.abort_transaction(20)
    p.begin_transaction()
    p.produce(t, b"committed-3")
    p.commit_transaction(20)

    def read(isolation: str) -> list[bytes]:
        c = Consumer(_confluent(cluster, **{"group.id": f"r-{uuid.uuid4().hex[:6]}", "auto.offset.reset": "earliest",
                                            "isolation.level": isolation}))
        c.subscribe([t])
        out, deadline = [], time.monotonic() + 20
        while time.monotonic() < deadline and len(out) < (4 if isolation == "read_uncommitted" else 3):
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                out.append(m.value())
        time.sleep(1)  # anything more would show up now
        while (m := c.poll(0.2)) is not None:
            if m.error() is None:
                out.append(m.value())
        c.close()
        return out

    assert read("read_committed") == [b"committed-1", b"committed-2", b"committed-3"]
    assert read("read_uncommitted") == [b"committed-1", b"committed-2", b"aborted", b"committed-3"]


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is not installed (Debian package kcat; CI installs it)")
def test_kcat_lists_produces_and_consumes(cluster):
    t = topic(cluster)
    listing = subprocess.run(["kcat", "-b", cluster.bootstrap, "-L", "-t", t], capture_output=True, text=True,
                             timeout=30, check=True).stdout
    assert "3 brokers" in listing and f'topic "{t}" with 3 partitions' in listing
    subprocess.run(["kcat", "-b", cluster.bootstrap, "-P", "-t", t, "-K:"], input="a:1\nb:2\nc:3\n", text=True,
                   timeout=30, check=True)
    out = subprocess.run(["kcat", "-b", cluster.bootstrap, "-C", "-t", t, "-e", "-q", "-f", "%k=%s\n"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    assert sorted(out.split()) == ["a=1", "b=2", "c=3"]


def test_a_restarted_cluster_keeps_topics_records_and_committed_offsets(tmp_path):
    with EmbeddedCluster(str(tmp_path), brokers=3, port=0, props=PROPS) as c:
        c.create_topic("kept", 2, 3)
        p = KafkaProducer(bootstrap_servers=c.bootstrap, acks="all")
        for i in range(50):
            p.send("kept", key=b"%d" % i, value=b"v%d" % i)
        p.flush(10)
        p.close()
        k = KafkaConsumer("kept", group_id="keeper", bootstrap_servers=c.bootstrap, auto_offset_reset="earliest",
                          enable_auto_commit=False)
        assert len(drain(k, 20)) >= 20
        k.commit()
        before = {p: k.committed(KTopicPartition("kept", p)) for p in (0, 1)}
        k.close()
    with EmbeddedCluster(str(tmp_path), brokers=3, port=0, props=PROPS) as c:
        assert c.has_topic("kept")
        k = KafkaConsumer(bootstrap_servers=c.bootstrap, auto_offset_reset="earliest")
        k.assign([KTopicPartition("kept", 0), KTopicPartition("kept", 1)])
        assert sorted(r.value for r in drain(k, 50)) == sorted(b"v%d" % i for i in range(50))
        k.close()
        g = KafkaConsumer("kept", group_id="keeper", bootstrap_servers=c.bootstrap, enable_auto_commit=False)
        deadline = time.monotonic() + 60
        while not g.assignment() and time.monotonic() < deadline:
            g.poll(timeout_ms=POLL_MS)
        assert {p: g.committed(KTopicPartition("kept", p)) for p in (0, 1)} == before
        g.close()


def _serve(*args: str) -> subprocess.Popen:
    import sys
    return subprocess.Popen([sys.executable, "-m", "kafkaproof", "serve", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_serve_stops_cleanly_on_sigterm_and_restarts_with_everything(tmp_path):
    import signal
    data = str(tmp_path / "data")
    p = _serve("--brokers", "1", "--port", "0", "--data-dir", data, "--topic", "kept:2")
    bootstrap = p.stdout.readline().strip().split("=", 1)[1]
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1)
    for i in range(100):
        producer.send("kept", value=b"v%d" % i)
    producer.flush(10)
    producer.close()
    p.send_signal(signal.SIGTERM)
    assert p.wait(30) == 0
    assert "flushing logs and checkpoints" in p.stderr.read()
    p = _serve("--brokers", "1", "--port", "0", "--data-dir", data)
    bootstrap = p.stdout.readline().strip().split("=", 1)[1]
    try:
        c = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
        c.assign([KTopicPartition("kept", 0), KTopicPartition("kept", 1)])
        assert sorted(r.value for r in drain(c, 100)) == sorted(b"v%d" % i for i in range(100))
        c.close()
    finally:
        p.send_signal(signal.SIGINT)  # Ctrl-C
        assert p.wait(30) == 0


@pytest.mark.parametrize("args, says", [
    (["--set", "no.such.key=1"], "no.such.key"),
    (["--set", "min.insync.replicas=zero"], "min.insync.replicas"),
    (["--broker-id", "0"], "--broker-id needs where the metadata is: --controller HOST:PORT"),
    (["--controller", "127.0.0.1:1"], "--controller and --metadata (zookeeper.connect) need --broker-id"),
    (["--broker-id", "0", "--metadata", "zookeeper://127.0.0.1:9", "--set", "zookeeper.connection.timeout.ms=500"],
     "cannot reach ZooKeeper at 127.0.0.1:9 within 0.5 s"),
    (["--broker-id", "0", "--metadata", "http://x:1"], "expected zookeeper://HOST:PORT"),
    (["--brokers", "0"], "--brokers must be at least 1"),
    (["--topic", "t:x"], "--topic"),
])
def test_serve_refuses_bad_configuration_with_a_clear_error(tmp_path, args, says):
    p = _serve("--port", "0", "--data-dir", str(tmp_path), *args)
    assert p.wait(30) == 2
    assert says in p.stderr.read()


def test_serve_says_when_its_port_is_taken(tmp_path):
    import socket
    with socket.create_server(("127.0.0.1", 0)) as taken:
        p = _serve("--port", str(taken.getsockname()[1]), "--data-dir", str(tmp_path))
        assert p.wait(30) == 2
        assert "cannot listen" in p.stderr.read()


def test_serve_refuses_damaged_cluster_metadata_and_leaves_it_alone(tmp_path):
    (tmp_path / "metadata").write_bytes(b"\x80\x05garbage")
    p = _serve("--port", "0", "--data-dir", str(tmp_path))
    assert p.wait(30) == 2
    assert "unreadable cluster metadata" in p.stderr.read()
    assert (tmp_path / "metadata").read_bytes() == b"\x80\x05garbage"


def test_admin_create_partitions_describe_configs_and_delete_topics(cluster, tmp_path):
    from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    name = f"adm-{uuid.uuid4().hex[:6]}"
    admin.create_topics([NewTopic(name, 1, 3)])[name].result(20)
    admin.create_partitions([NewPartitions(name, 4)])[name].result(20)
    deadline = time.monotonic() + 10
    while len(admin.list_topics(name, timeout=5).topics[name].partitions) < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(admin.list_topics(name, timeout=5).topics[name].partitions) == 4
    configs = {str(r): f.result(10) for r, f in admin.describe_configs(
        [ConfigResource(ConfigResource.Type.BROKER, "0"), ConfigResource(ConfigResource.Type.TOPIC, name)]).items()}
    broker = next(v for k, v in configs.items() if "BROKER" in k)
    topic_cfg = next(v for k, v in configs.items() if "TOPIC" in k)
    assert broker["min.insync.replicas"].value == "2" and broker["default.replication.factor"].value == "3"
    assert topic_cfg["min.insync.replicas"].value == "2" and "segment.bytes" in topic_cfg
    # Kafka's topic configs, each with a value (retention.ms from log.retention.hours)
    assert topic_cfg["cleanup.policy"].value == "delete" and topic_cfg["retention.ms"].value == "604800000"
    assert all(c.value is not None for c in topic_cfg.values()), [c.name for c in topic_cfg.values() if c.value is None]
    # an unknown topic's resource carries UNKNOWN_TOPIC_OR_PARTITION (asked on the wire:
    # librdkafka 2.x never completes that future)
    import socket

    from kafkaproof.impl.net.codec import decode_response, encode_request
    with socket.create_connection(cluster.endpoints[0], timeout=5) as s:
        s.sendall(encode_request(32, 4, 1, {"resources": [{"resource_type": 2, "resource_name": "no-such-topic",
                                                           "configuration_keys": None}]}))
        answer = decode_response(32, 4, s.recv(1 << 16)[4:])
    assert [(r.resource_name, int(r.error_code)) for r in answer.results] == [("no-such-topic", 3)]

    p = KafkaProducer(bootstrap_servers=cluster.bootstrap)
    p.send(name, b"gone soon").get(10)
    p.close()
    admin.delete_topics([name])[name].result(20)
    deadline = time.monotonic() + 10
    while name in admin.list_topics(timeout=5).topics and time.monotonic() < deadline:
        time.sleep(0.1)
    assert name not in admin.list_topics(timeout=5).topics
    import os
    for b in range(3):  # the replicas deleted their logs
        assert not [d for d in os.listdir(cluster.disks[b].root) if d.startswith(name)]
    with pytest.raises(Exception, match="UNKNOWN_TOPIC"):
        admin.delete_topics([name])[name].result(20)


def test_aiokafka_idempotent_producer_and_group_commit(cluster):
    import asyncio

    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka import TopicPartition as ATopicPartition
    t = topic(cluster, 1)

    async def run() -> tuple[list, int]:
        p = AIOKafkaProducer(bootstrap_servers=cluster.bootstrap, acks="all", enable_idempotence=True)
        await p.start()
        for i in range(10):
            await p.send_and_wait(t, b"v%d" % i, key=b"k", headers=[("h", b"1")])
        await p.stop()
        c = AIOKafkaConsumer(t, bootstrap_servers=cluster.bootstrap, group_id=f"a-{t}", auto_offset_reset="earliest",
                             enable_auto_commit=False)
        await c.start()
        got = []
        async for m in c:
            got.append((m.value, m.headers))
            if len(got) == 10:
                break
        await c.commit()
        committed = await c.committed(ATopicPartition(t, 0))
        await c.stop()
        return got, committed

    got, committed = asyncio.run(asyncio.wait_for(run(), 60))
    assert got == [(b"v%d" % i, (("h", b"1"),)) for i in range(10)] and committed == 10
